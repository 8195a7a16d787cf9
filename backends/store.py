"""The contract every secret store keeps, whatever sits behind it.

A *path* names one consumer-facing document, e.g. ``airflow/connections/teamcity_default``.
Reading its ``current`` stage must be what the official Airflow providers read at that path
(Vault KV v2 latest version; AWS ``AWSCURRENT``), so that they and we see the same thing.
Everything the rotation protocol needs besides the value (stages, per-version metadata such
as the token's name at the target, the journal, the lease) lives *beside* the document, under
the store's ``state_prefix``, never inside it.

Stage semantics, identical on every store:

- ``current``: what consumers read. Exactly one version, once anything was promoted.
- ``previous``: the version ``current`` replaced at the last promotion (or rollback).
- ``pending``: written by a rotation before its value is proven; invisible to consumers.
  At most one; a new ``put_pending`` replaces an older one.

Outcomes, identical on every store (see ``backends.errors``): a missing path, stage or version
raises ``NotFound``; a lost compare-and-set raises ``Conflict`` and changes nothing; a document
that cannot be parsed or that Rotator did not write where Rotator expects its own raises
``CorruptDocument`` and is left untouched; a refusal raises ``AccessDenied``; an unreachable
store raises ``StoreUnavailable``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from backends.errors import ConfigError

STAGES = ("current", "previous", "pending")


@dataclass(frozen=True)
class Version:
    """One stored version of a document. ``value`` never appears in ``repr``."""

    id: str
    """Store-native version id: Vault KV version number, AWS VersionId, file-store row id."""
    value: dict[str, Any] = field(repr=False)
    stages: frozenset[str]
    created: datetime
    """When the store wrote this version (timezone-aware, UTC)."""
    meta: Mapping[str, str] = field(default_factory=dict)
    """Non-secret facts recorded with the version: ``rotation_id``, ``target_name`` (the
    credential's name at the target), ``issued``, ``expires`` (ISO 8601), ..."""

    def _meta_time(self, key: str) -> datetime | None:
        try:
            return datetime.fromisoformat(self.meta[key]) if self.meta.get(key) else None
        except ValueError:
            return None

    @property
    def issued(self) -> datetime:
        """When the target issued the value (recorded at rotation), else when it was stored:
        what ``every`` counts from."""
        return self._meta_time("issued") or self.created

    @property
    def expires(self) -> datetime | None:
        """When the target stops accepting the value, if it said (a TeamCity token does)."""
        return self._meta_time("expires")


@dataclass(frozen=True)
class Lease:
    """A held lock. ``token`` is unique per acquisition, so a lapsed holder cannot renew."""

    key: str
    holder: str
    token: str
    expires: datetime


@runtime_checkable
class VersionStore(Protocol):
    """Documents and their versions, with stages and compare-and-set.

    Common to every method: a ``path`` that ``check_path`` refuses raises ``ConfigError`` before
    any request; an unreachable store raises ``StoreUnavailable``, a refusal ``AccessDenied``, a
    document Rotator expects to be its own but cannot parse ``CorruptDocument`` (left as found).
    None of these methods is fenced by a lease: the engine holds the credential's lease around
    them, the store does not check it.
    """

    def get_document(self, path: str) -> dict[str, Any] | str:
        """What consumers read at ``path``: the current value only, in ONE round trip, with no
        metadata lookup (the Airflow backend's hot path). ``NotFound`` if nothing is current.
        Read-only.

        Vault and the file store hold JSON objects and return a dict. AWS returns the
        ``SecretString`` as stored (a str): the official SecretsManagerBackend stores variables
        as plain strings, so only the caller knows whether to parse it.
        """
        ...

    def read(self, path: str, stage: str = "current", *, value: bool = True) -> Version:
        """The version holding ``stage`` at ``path``, value and meta included; read-only.
        ``NotFound`` if no version holds it (or nothing is stored), ``ConfigError`` for a
        stage not in ``STAGES``. ``value=False``: the caller needs the id, stages and meta
        only; a store may then leave ``value`` empty and ``created`` as the recorded issue
        time (Vault skips reading ``previous``'s version)."""
        ...

    def bind(self, path: str, key: str) -> None:
        """From now on, keep ``path``'s stage state beside lock ``key`` (the credential whose
        document it is), where a store can read and write it with the lock, fewer requests per
        rotation (Vault); a store that already writes them together ignores it. Every reader
        that binds sees the same state; one that does not (the Airflow backend, which reads
        only ``get_document``) is unaffected. ``ConfigError`` for an invalid ``path``."""
        ...

    def read_version(self, path: str, version_id: str) -> Version:
        """One version by the id a ``Version`` of this store carried; read-only. ``NotFound``
        if the store no longer has it, or if the id is not one of its ids. (AWS: also for the
        id of a first pending value, which waits beside a secret that does not exist yet.)"""
        ...

    def versions(self, path: str) -> list[Version]:
        """The versions still stored, newest first, values included; ``[]`` when nothing is
        stored; read-only. What "still stored" covers is the store's: every version (file),
        pending plus what the KV mount keeps (Vault), versions carrying a label (AWS; a first
        pending value beside a secret not created yet is not listed)."""
        ...

    def put_current(
        self,
        path: str,
        value: dict[str, Any],
        *,
        expected: str | None,
        meta: Mapping[str, str] | None = None,
    ) -> Version:
        """Write ``value`` straight to ``current`` (the old current becomes ``previous``) and
        return the new version, ``meta`` recorded with it.

        Compare-and-set: ``expected`` is the id of the version the caller believes is current,
        ``None`` for "nothing is stored yet"; anything else current raises ``Conflict`` and
        nothing changes. Not idempotent (a repeat finds its own write current: ``Conflict``).
        ``ConfigError`` if ``value`` is not a JSON object. Used to seed a credential and by the
        Airflow backend's tests; rotations go through pending.
        """
        ...

    def put_pending(
        self,
        path: str,
        value: dict[str, Any],
        *,
        rotation_id: str,
        meta: Mapping[str, str] | None = None,
    ) -> Version:
        """Store ``value`` as ``pending`` for ``rotation_id``, invisible to consumers.

        Idempotent for the same ``rotation_id`` and value while it is pending (returns the
        staged version); ``Conflict`` if that rotation already staged another value. Once it
        was promoted, the file store and AWS return the promoted version, Vault stages it
        again. Replaces a pending version left by another rotation. ``meta`` always records
        ``rotation_id``. ``ConfigError`` if ``value`` is not a JSON object.
        """
        ...

    def discard_pending(self, path: str, *, rotation_id: str | None = None) -> None:
        """Drop the pending version (only if it belongs to ``rotation_id``, when given).
        Idempotent: nothing pending, another rotation's pending or a missing path is a no-op."""
        ...

    def promote(self, path: str, *, rotation_id: str, expected: str | None) -> Version:
        """Pending -> current, current -> previous, in one compare-and-set that consumers see
        at once. Returns the new current.

        ``Conflict`` (and nothing changes) if current's id is not ``expected``, or nothing is
        pending for ``rotation_id``. Promoting the version that is already current for this
        ``rotation_id`` returns it unchanged (idempotent roll-forward after a crash).
        """
        ...

    def rollback(self, path: str, *, expected: str) -> Version:
        """Make ``previous``'s value current again (the old current becomes ``previous``) and
        return the new current. Compare-and-set: ``Conflict`` if current's id is not
        ``expected``, then ``NotFound`` if there is no previous; either way nothing changes.
        Not idempotent. Vault writes the value as a new version (a new id); the others move
        the stages."""
        ...

    def delete(self, path: str) -> None:
        """Remove the document, its versions and their stages and metadata (not the
        credential's lease or journal, which are keyed by credential name). Idempotent:
        missing is not an error."""
        ...


@runtime_checkable
class LeaseLock(Protocol):
    """A lease per key (a credential name): one holder at a time across processes and hosts.

    A ``Lease`` names one acquisition by its ``token``; an expired or released lease is free.
    ``ConfigError`` for a ``ttl`` outside (0, ``backends.lease.MAX_TTL``]; a lock document
    Rotator did not write raises ``CorruptDocument`` and is left as found; an unreachable store
    raises ``StoreUnavailable``.
    """

    def acquire_lease(
        self,
        key: str,
        holder: str,
        ttl: float,
        *,
        journal: tuple[dict[str, Any] | None, dict[str, Any] | None] | None = None,
    ) -> Lease:
        """Take the lock ``key`` for ``ttl`` seconds with a fresh token. ``LockHeld`` if any
        unexpired, unreleased lease holds it (whoever ``holder`` is); an expired or released
        lease is taken over. On Vault and AWS, a race lost to a writer that left the lock free
        may raise ``Conflict`` (nothing taken: try again).

        ``journal``, ``(read, new)``: the journal the caller read (``None``: there was none)
        and the one to write instead (``None``: none), in the same write that takes the lock,
        only if the journal is still ``read`` (``Conflict`` otherwise: nothing taken, nothing
        written). A run that planned on what it read takes the lock and records its intent at
        once."""
        ...

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease to ``ttl`` seconds from now; returns it with the new expiry.
        ``LeaseLost`` if its token no longer holds the lock (taken over) or it was released;
        a lapsed lease nobody took is renewed."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lock up. Idempotent, and a no-op if the lock is no longer ours; never
        ``LeaseLost``. On Vault and AWS, a lost compare-and-set leaves it to expire."""
        ...

    def read_lease(self, key: str) -> Lease | None:
        """The unexpired, unreleased lease on ``key``, if any (for ``rotator status``);
        read-only."""
        ...

    def read_lock(self, key: str) -> tuple[Lease | None, dict[str, Any] | None]:
        """``read_lease`` and ``read_journal`` of ``key`` at once: one request on the stores
        that keep both in the lock document (what an idle pass and its health check read);
        read-only. The file store reads them in two transactions, not one snapshot."""
        ...

    def lock_names(self) -> list[str]:
        """The keys of every lock document under ``state_prefix`` (the credentials Rotator has
        locked or journaled at least once), sorted; read-only, one listing request per page.
        The file store holds one prefix per database and lists all its keys."""
        ...


@runtime_checkable
class JournalStore(Protocol):
    """One rotation journal record per key (a credential name): a JSON object, no secret.

    (Named apart from ``rotator.journal.Journal``, the typed record the engine keeps in it.)
    Writes may be fenced by the writer's ``Lease``: a holder cut off from the store can never
    overwrite a newer holder's journal. A lock document Rotator did not write, or a journal
    that is not a JSON object, raises ``CorruptDocument``.
    """

    def read_journal(self, key: str, *, lease: Lease | None = None) -> dict[str, Any] | None:
        """The journal record for ``key``, or ``None``; read-only. A caller that holds
        ``key``'s ``lease`` passes it: a store may then answer from what it wrote under that
        lease without a request (only the holder writes the journal)."""
        ...

    def write_journal(
        self,
        key: str,
        record: dict[str, Any],
        *,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        """Replace the journal record (idempotent for the same record); ``ConfigError`` if it
        is not a JSON object. With ``lease``, the write lands only if that lease still holds
        ``key``, unexpired, at the moment of writing (one transaction on the file store; a
        compare-and-set of the lock document, which holds the journal, on Vault and AWS);
        otherwise ``LeaseLost`` and nothing changes. ``release`` (with ``lease``) releases the
        lease in the same write: a run's last journal write and its unlock cost one request.
        Vault and AWS raise ``LeaseLost`` too when the lock document keeps changing."""
        ...

    def clear_journal(self, key: str, *, lease: Lease | None = None) -> None:
        """Remove the journal record, fenced like ``write_journal``; a missing record is no
        error (Vault and AWS then return without checking ``lease``; the file store still
        raises ``LeaseLost`` for a lease it no longer holds)."""
        ...


@runtime_checkable
class Store(VersionStore, LeaseLock, JournalStore, Protocol):
    """A secret store: versions with stages (``VersionStore``), a lease lock (``LeaseLock``)
    and a journal (``JournalStore``). The file store implements all three itself; Vault and
    AWS implement ``VersionStore`` and ``lock_names`` and take the rest from
    ``backends.lease.CasLeases``.

    Every method is safe to call from several processes and hosts at once.
    """

    kind: ClassVar[str]
    """The ``[store] kind`` that names the class (``file``, ``vault``, ``aws``)."""

    def close(self) -> None:
        """Release what this object holds (the file store's connections of the calling
        thread; Vault and AWS share clients per process and release nothing). Idempotent."""
        ...


def issued_at(meta: Mapping[str, Any]) -> datetime:
    """A version's time when its value was not read (``read(..., value=False)``): when it was
    issued, if its metadata records it, else the epoch."""
    try:
        return datetime.fromisoformat(str(meta["issued"]))
    except (KeyError, ValueError):
        return datetime.fromtimestamp(0, UTC)


def check_path(path: str) -> str:
    """Paths are ``/``-separated names: no empty parts, no ``.``/``..``, no leading slash."""
    parts = path.split("/") if isinstance(path, str) else [""]
    if (
        not path
        or any(p in ("", ".", "..") for p in parts)
        or any(ch in path for ch in ("\\", "\x00", "?", "#"))
    ):
        raise ConfigError(f"invalid store path {path!r}")
    return path


def check_document(path: str, value: object) -> dict[str, Any]:
    """A stored document is a JSON object of JSON values; anything else is bad input."""
    import json

    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"document for {path!r} must be a JSON object with string keys")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ConfigError(f"document for {path!r} is not JSON-serialisable") from None
    return value


def expect_current(path: str, actual: str | int | None, expected: str | None) -> None:
    """The compare half of compare-and-set, with one message for every store."""
    actual = None if actual is None else str(actual)
    if actual != expected:
        from backends.errors import Conflict

        raise Conflict(
            f"{path!r}: current is {actual or 'nothing'}, caller expected {expected or 'nothing'}"
        )


_REGISTRY: dict[str, str] = {}


def register(kind: str, target: str) -> None:
    """Name a store class by ``module:Class``; a kind registered twice is a programming error."""
    if kind in _REGISTRY and _REGISTRY[kind] != target:
        raise RuntimeError(f"store kind {kind!r} registered twice")
    _REGISTRY[kind] = target


register("file", "backends.file:FileStore")
register("vault", "backends.vault:VaultStore")
register("aws", "backends.aws:AwsStore")


def store_class(kind: str) -> Callable[..., Store]:
    """The class behind ``kind``, imported only now (keeps ``import backends`` cheap)."""
    try:
        target = _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown store kind {kind!r}; expected one of: {known}") from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def open_store(kind: str, **options: Any) -> Store:
    """Build a store from the keys of ``rotator.toml``'s ``[store]`` table (minus ``kind``)."""
    return store_class(kind)(**options)
