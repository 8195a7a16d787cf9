"""Issuers: each knows one kind of credential at one target system.

Each method of ``Issuer`` and ``StagedIssuer`` states its contract. The two the engine's crash
safety rests on:

- ``target_name(spec, rotation_id)`` is computed *before* minting and written to the journal,
  so a crash after ``mint`` can find and revoke what was minted. Rotator names what it mints
  ``rotator-<credential>-<rotation id>`` where the target allows a name, and owns exactly the
  names matching that whole pattern (``owns``): credential ``ci`` does not own
  ``rotator-ci-prod-20260101T000000-abcdef``.
- ``revoke`` is idempotent and refuses (``ForeignCredential``) a name Rotator does not own.

An issuer whose value can be produced without touching the target (``StagedIssuer``, e.g. a
password) lets the engine stage the value *before* ``apply`` sets it at the target, so the target
can never hold a value the store does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from rotator.errors import Refused
from rotator.spec import CredentialSpec


class ForeignCredential(Refused):
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
    """Mints, proves and revokes one type of credential at one target system.

    No method logs, raises or returns a secret except inside a ``Secret``. A failed request
    at the target raises a ``TargetError`` subclass (``TargetUnavailable`` after retries).
    """

    type: ClassVar[str]
    """The credential ``type`` it serves (``teamcity-token``...): the engine picks it by this."""

    def check_ready(self, spec: CredentialSpec) -> None:
        """``ConfigError`` if a setting or bootstrap credential the issuer needs is missing
        (``RotatorError`` if ``spec`` names no user); no request to the target. The engine
        calls it before it writes anything. (``airflow-token`` reads its ``login_from``
        credential from the store here.)"""
        ...

    def target_name(self, spec: CredentialSpec, rotation_id: str) -> str | None:
        """The name the new credential will carry at the target (``None``: it has none);
        pure: the same arguments give the same name, with no request."""
        ...

    def mint(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        """Create the credential at the target (named ``target_name``) and return it. Not
        idempotent; an error may follow a create that landed (a lost answer), so the caller
        revokes ``target_name`` after any failure."""
        ...

    def verify(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        """Prove ``value`` works at the target, changing nothing there; ``TargetAuthError``
        when it is refused."""
        ...

    def revoke(self, spec: CredentialSpec, target_name: str) -> None:
        """Revoke what Rotator minted under ``target_name``; idempotent (already gone is no
        error); ``ForeignCredential`` and nothing revoked if Rotator does not own the name. A
        no-op for a credential the target cannot revoke by name (a password, a JWT)."""
        ...

    def list_issued(self, spec: CredentialSpec) -> list[Issued]:
        """What Rotator minted for ``spec`` and the target still has (only names it ``owns``),
        ``[]`` for a credential without names; changes nothing at the target (may call it:
        ``airflow-password`` proves its admin login here)."""
        ...


@runtime_checkable
class StagedIssuer(Issuer, Protocol):
    """A credential the engine stages before the target learns it (a password): ``prepare``
    makes the value, the store keeps it as pending, then ``apply`` sets it at the target, so
    the target never holds a value the store does not have. The engine chooses this path with
    ``isinstance(issuer, StagedIssuer)``; ``mint`` stays ``prepare`` then ``apply``."""

    def prepare(self, spec: CredentialSpec, rotation_id: str) -> Secret:
        """A new value, with no request and no side effect at the target; each call makes a
        new one (so the caller stages the first and keeps it)."""
        ...

    def apply(self, spec: CredentialSpec, value: dict[str, Any]) -> None:
        """Set ``value`` at the target; idempotent (applying it twice is harmless).
        ``ConfigError`` for a value the issuer would never produce (a weak password), before
        any request."""
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
