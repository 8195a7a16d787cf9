"""Issuers: each knows one kind of credential at one target system.

Contract (every issuer, every target):

- ``target_name(spec, rotation_id)`` is computed *before* minting and written to the journal,
  so a crash after ``mint`` can find and revoke what was minted. Rotator names what it mints
  ``rotator-<credential>-<rotation id>`` where the target allows a name, and never revokes a
  credential whose name does not start with ``rotator-<credential>-``.
- ``mint`` creates the credential at the target and returns it; it never logs the value.
- ``verify`` proves the value works at the target (raises ``TargetAuthError`` if not).
- ``revoke`` is idempotent: an already missing credential is not an error.
- ``list_issued`` lists what Rotator minted for this credential at the target (to find orphans).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from rotator.spec import CredentialSpec


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

    def target_name(self, spec: CredentialSpec, rotation_id: str) -> str | None: ...

    def mint(self, spec: CredentialSpec, rotation_id: str) -> Secret: ...

    def verify(self, spec: CredentialSpec, value: dict[str, Any]) -> None: ...

    def revoke(self, spec: CredentialSpec, target_name: str) -> None: ...

    def list_issued(self, spec: CredentialSpec) -> list[Issued]: ...


def rotator_name(spec: CredentialSpec, rotation_id: str) -> str:
    """The name Rotator gives what it mints for ``spec`` in rotation ``rotation_id``."""
    return f"{name_prefix(spec)}{rotation_id}"


def name_prefix(spec: CredentialSpec) -> str:
    """Every name Rotator mints for ``spec`` starts with this; nothing else is ever revoked."""
    return f"rotator-{spec.name}-"
