"""Issuers: each knows one kind of credential at one target system.

Contract (every issuer, every target):

- ``check_ready(spec)`` proves, without a request, that the bootstrap credential the issuer
  needs is configured (``ConfigError`` if not): the engine calls it before it writes anything.
- ``target_name(spec, rotation_id)`` is computed *before* minting and written to the journal,
  so a crash after ``mint`` can find and revoke what was minted. Rotator names what it mints
  ``rotator-<credential>-<rotation id>`` where the target allows a name, and owns exactly the
  names matching that whole pattern (``owns``): credential ``ci`` does not own
  ``rotator-ci-prod-20260101T000000-abcdef``.
- ``mint`` creates the credential at the target and returns it; it never logs the value.
- ``verify`` proves the value works at the target (raises ``TargetAuthError`` if not).
- ``revoke`` is idempotent: an already missing credential is not an error.
- ``list_issued`` lists what Rotator minted for this credential at the target (to find orphans).

An issuer whose value can be produced without touching the target (``StagedIssuer``, e.g. a
password) lets the engine stage the value *before* ``apply`` sets it at the target, so the target
can never hold a value the store does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from rotator.errors import RotatorError
from rotator.spec import CredentialSpec


class ForeignCredential(RotatorError):
    """Refusing to revoke a credential Rotator did not mint for this credential."""


@dataclass(frozen=True)
class Secret:
    """A freshly minted credential: the connection document to store, plus non-secret facts."""

    value: dict[str, Any] = field(repr=False)
    """An Airflow connection in JSON form (conn_type, host, login, password, ...)."""
    target_name: str | None
    issued: datetime
    expires: datetime | None = None


@dataclass(frozen=True)
class Issued:
    """A credential seen at the target, without its value."""

    name: str
    created: datetime | None
    expires: datetime | None


@runtime_checkable
class Issuer(Protocol):
    type: ClassVar[str]

    def check_ready(self, spec: CredentialSpec) -> None:
        """``ConfigError`` if the bootstrap credential is missing; no request is made."""
        ...

    def target_name(self, spec: CredentialSpec, rotation_id: str) -> str | None:
        """The name the new credential will carry at the target (``None``: it has none)."""
        ...

    def mint(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        """Create the credential at the target; the value never reaches a log."""
        ...

    def verify(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        """Prove ``value`` works at the target; ``TargetAuthError`` when it is refused."""
        ...

    def revoke(self, spec: CredentialSpec, target_name: str) -> None:
        """Revoke what Rotator minted; idempotent; ``ForeignCredential`` if not ours."""
        ...

    def list_issued(self, spec: CredentialSpec) -> list[Issued]:
        """What Rotator minted for ``spec`` and the target still has (names it ``owns``)."""
        ...


@runtime_checkable
class StagedIssuer(Issuer, Protocol):
    """A credential the engine stages before the target learns it (a password)."""

    def prepare(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        """A new value, with no side effect at the target."""
        ...

    def apply(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        """Set ``value`` at the target (idempotent: applying it twice is harmless)."""
        ...


def rotator_name(spec: CredentialSpec, rotation_id: str) -> str:
    """The name Rotator gives what it mints for ``spec`` in rotation ``rotation_id``."""
    return f"{name_prefix(spec)}{rotation_id}"


def name_prefix(spec: CredentialSpec) -> str:
    """Every name Rotator mints for ``spec`` starts with this (necessary, not sufficient: see
    ``owns``)."""
    return f"rotator-{spec.name}-"


_ROTATION_ID = r"\d{8}T\d{6}-[0-9a-f]{6}"


def owns(spec: CredentialSpec, name: str) -> bool:
    """Whether ``name`` is exactly what Rotator mints for ``spec``: the whole pattern, so that a
    credential whose name is a prefix of another's never claims the other's tokens."""
    return re.fullmatch(re.escape(name_prefix(spec)) + _ROTATION_ID, name) is not None
