"""Lease records, shared by every store: what a lock document holds and when it is free.

A store keeps one record per lock key and replaces it only with compare-and-set, so the
"is it free?" decision below is the only logic the stores share; how the record is stored and
swapped is each store's own business.

Stores whose only primitive is compare-and-set on one document (Vault KV, AWS) keep a
credential's rotation journal *inside* its lock document: a journal write is then a
compare-and-set of the lock, so it lands only while the writer still holds the lease (the
fencing DESIGN.md asks for), and a holder whose lease lapsed and was taken over cannot overwrite
the new holder's journal, however late its write arrives.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from backends.errors import ConfigError, Conflict, CorruptDocument, LeaseLost, LockHeld
from backends.store import Lease, check_document, check_path

MARKER = "rotator_lease"
MAX_TTL = 300.0
"""Leases are short by design (the engine asks for <= 30 s and renews); this bounds mistakes."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_ttl(ttl: float) -> float:
    if not 0 < ttl <= MAX_TTL:
        raise ConfigError(f"lease ttl must be in (0, {MAX_TTL:.0f}] seconds, got {ttl!r}")
    return float(ttl)


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    token: str
    expires: datetime
    released: bool = False
    journal: dict[str, Any] | None = None
    """The credential's rotation journal, for stores that keep it in the lock document."""
    state: dict[str, Any] | None = None
    """Stage state (previous, per-version metadata) of the documents bound to this lock, by
    path (``CasLeases.bind``): kept here so that a rotation's last journal write records it."""

    def free(self, now: datetime) -> bool:
        return self.released or self.expires <= now

    def as_lease(self, key: str) -> Lease:
        return Lease(key=key, holder=self.holder, token=self.token, expires=self.expires)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            MARKER: 1,
            "holder": self.holder,
            "token": self.token,
            "expires": self.expires.isoformat(),
            "released": self.released,
        }
        if self.journal is not None:
            data["journal"] = self.journal
        if self.state:
            data["state"] = self.state
        return json.dumps(data)

    @classmethod
    def from_data(cls, key: str, data: Any) -> LeaseRecord:
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError:
                raise CorruptDocument(f"lock {key!r}: not JSON; refusing to touch it") from None
        if not isinstance(data, dict) or data.get(MARKER) != 1:
            raise CorruptDocument(f"lock {key!r}: not a Rotator lease record; refusing to touch it")
        journal = data.get("journal")
        if journal is not None and not isinstance(journal, dict):
            raise CorruptDocument(f"lock {key!r}: its journal is not a JSON object")
        state = data.get("state")
        if state is not None and not (
            isinstance(state, dict) and all(isinstance(v, dict) for v in state.values())
        ):
            raise CorruptDocument(f"lock {key!r}: its document state is not a JSON object")
        try:
            return cls(
                holder=str(data["holder"]),
                token=str(data["token"]),
                expires=datetime.fromisoformat(data["expires"]),
                released=bool(data.get("released", False)),
                journal=journal,
                state=state,
            )
        except (KeyError, ValueError, TypeError):
            raise CorruptDocument(f"lock {key!r}: malformed lease record") from None


def new_record(
    holder: str,
    ttl: float,
    now: datetime | None = None,
    journal: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> LeaseRecord:
    now = now or utcnow()
    expires = now + timedelta(seconds=check_ttl(ttl))
    return LeaseRecord(holder, secrets.token_hex(16), expires, journal=journal, state=state)


def renewed(record: LeaseRecord, ttl: float, now: datetime | None = None) -> LeaseRecord:
    now = now or utcnow()
    return replace(record, expires=now + timedelta(seconds=check_ttl(ttl)))


def released(record: LeaseRecord) -> LeaseRecord:
    return replace(record, released=True)


NO_LEASE = LeaseRecord("", "", datetime.min.replace(tzinfo=UTC), released=True)
"""The record a journal is written into when no lease was ever taken (free from the start)."""


def _with_states(record: LeaseRecord, changes: dict[str, Any]) -> LeaseRecord:
    """``record`` with bound documents' states changed (a ``None`` state: forgotten)."""
    states = {**(record.state or {}), **changes}
    return replace(record, state={p: s for p, s in states.items() if s is not None} or None)


def still_held(key: str, current: LeaseRecord | None, lease: Lease, now: datetime) -> None:
    """Raise ``LeaseLost`` unless ``lease`` is the unexpired holder of ``current``."""
    if current is None or current.token != lease.token or current.free(now):
        raise LeaseLost(f"lease {key!r} is no longer held by {lease.holder}; nothing written")


def held_by_other(key: str, current: LeaseRecord | None, now: datetime) -> None:
    """Raise ``LockHeld`` if ``current`` is an unexpired lease."""
    if current is not None and not current.free(now):
        raise LockHeld(key, current.holder, current.expires)


V = TypeVar("V")
RECENT = 5.0
"""Seconds a lock record this object read stands in for a read of the stage state it holds: a
run's reads between its plan and its first write (``bound_state``)."""
SWAP_ATTEMPTS = 5
"""Compare-and-set retries when the lock document changed under us but the lease is still ours
(our own keeper renewed it between our read and our write)."""


class CasLeases(Generic[V]):
    """``LeaseLock`` and ``JournalStore`` (``backends.store``) for stores whose only primitive
    is compare-and-set on a small document (Vault KV ``cas``, an AWS label move): read the
    record with its version, write a new one only if that version is still the latest. The
    journal lives in the same document (see the module docstring). A subclass supplies
    ``_lease`` and ``_swap_lease``, and ``lock_names`` (listing the lock documents is each
    store's own request); ``tests/contract/test_protocols.py`` holds this class to both
    protocols, whose docstrings state the contracts it keeps.

    Each store object remembers the last record it read or wrote per key with its version
    (``_known``), and a write first tries that version: the compare-and-set refuses it if
    anything changed since, and only then is the document read again. A holder's journal
    writes, renewals and release therefore cost one request each instead of two; the holder's
    own reads of its journal cost none (nobody else may write it while the lease is held)."""

    def _lease(self, key: str) -> tuple[LeaseRecord | None, V | None]:
        """The lease record of ``key`` and its version (``None``: there is none yet)."""
        raise NotImplementedError

    def _swap_lease(self, key: str, record: LeaseRecord, expected: V | None) -> V:
        """Write ``record`` if ``expected`` is still the latest version; ``Conflict`` if not.
        Returns the new version."""
        raise NotImplementedError

    # -- what this object last saw of each lock document ----------------------------------
    def _known_lock(self) -> threading.Lock:
        lock = self.__dict__.get("_known_guard")
        if lock is None:
            lock = self.__dict__.setdefault("_known_guard", threading.Lock())
        return lock

    def _remember(self, key: str, record: LeaseRecord | None, version: V | None) -> None:
        with self._known_lock():
            known = self.__dict__.setdefault("_known", {})
            if version is None and record is None:
                known.pop(key, None)
            else:
                known[key] = (record, version)
                self.__dict__.setdefault("_known_at", {})[key] = time.monotonic()

    def _recent(self, key: str) -> LeaseRecord | None:
        """What this object read or wrote of ``key`` less than ``RECENT`` seconds ago."""
        with self._known_lock():
            known = self.__dict__.get("_known", {}).get(key)
            at = self.__dict__.get("_known_at", {}).get(key, float("-inf"))
        return known[0] if known is not None and time.monotonic() - at < RECENT else None

    def _recall(self, key: str) -> tuple[LeaseRecord | None, V | None] | None:
        with self._known_lock():
            return self.__dict__.get("_known", {}).get(key)

    def _read_lock(self, key: str) -> tuple[LeaseRecord | None, V | None]:
        current, version = self._lease(key)
        self._remember(key, current, version)
        return current, version

    def _swap(self, key: str, record: LeaseRecord, expected: V | None) -> None:
        deferred = self._deferred(key, record.token)
        if deferred:
            record = _with_states(record, deferred)
        try:
            version = self._swap_lease(key, record, expected)
        except Conflict:
            self._remember(key, None, None)
            raise
        except Exception:
            self._remember(key, None, None)  # applied or not: unknown, read it next time
            raise
        self._remember(key, record, version)
        if deferred:
            with self._known_lock():
                waiting = self.__dict__.get("_waiting", {})
                if key in waiting and waiting[key][1] is deferred:
                    del waiting[key]  # written; a later change made meanwhile waits on

    def _latest(self, key: str, token: str | None) -> tuple[LeaseRecord | None, V | None, bool]:
        """What this object last saw of ``key`` if it is the record of lease ``token`` (a
        compare-and-set will prove it still is), else a fresh read. The flag: it was recalled."""
        known = self._recall(key)
        if token is not None and known is not None and known[0] is not None:
            if known[0].token == token:
                return known[0], known[1], True
        current, version = self._read_lock(key)
        return current, version, False

    # -- the stage state of bound documents, inside their lock document ------------------
    def bind(self, path: str, key: str) -> None:
        """Keep ``path``'s stage state (which version is previous, each version's metadata)
        in lock ``key``'s document rather than in a document of its own: a rotation then
        reads it with the lock it takes and records it with its last journal write, two
        requests fewer per rotation, and the release records journal and state together."""
        with self._known_lock():
            self.__dict__.setdefault("_bound", {})[check_path(path)] = key

    def _bound_key(self, path: str) -> str | None:
        return self.__dict__.get("_bound", {}).get(path)

    def _holding(self, key: str) -> LeaseRecord | None:
        """What this object last wrote of ``key``, if that is a lease it took and has not let
        go, unexpired by its clock: nobody else writes the document meanwhile (the same trust
        ``read_journal`` places in a holder's own writes), so it needs no read."""
        known = self._recall(key)
        if known is None or known[0] is None:
            return None
        record = known[0]
        if record.token not in self.__dict__.get("_mine", ()) or record.free(utcnow()):
            return None
        return record

    def _deferred(self, key: str, token: str) -> dict[str, Any] | None:
        """State changes of ``key``'s bound documents waiting for lease ``token``'s next write
        of the lock document (a change made under another lease is never written)."""
        with self._known_lock():
            waiting = self.__dict__.get("_waiting", {}).get(key)
        return waiting[1] if waiting is not None and waiting[0] == token else None

    def bound_state_copy(self, path: str, marker: str) -> dict[str, Any] | None:
        """``bound_state`` as a copy the caller may change, checked to be Rotator's (its
        ``marker`` set, a ``meta`` object), or ``None`` when the lock records none."""
        state = self.bound_state(path)
        if state is None:
            return None
        if state.get(marker) != 1 or not isinstance(state.get("meta"), dict):
            raise CorruptDocument(f"the state of {path} in its lock is not Rotator's")
        return json.loads(json.dumps(state))

    def bound_state(self, path: str) -> dict[str, Any] | None:
        """The stage state recorded for bound ``path`` (changes waiting to be written
        included), or ``None`` if its lock document records none. No request while this object
        holds the lock, or just after it read it (``RECENT``: the read a run plans on, whose
        lease is then taken by compare-and-set against that very record); else the lock is
        read."""
        key = self._bound_key(path)
        assert key is not None, f"{path!r} is not bound to a lock"
        record = self._holding(key) or self._recent(key) or self._read_lock(key)[0]
        if record is None:
            return None
        deferred = self._deferred(key, record.token) or {}
        if path in deferred:
            return deferred[path]
        return (record.state or {}).get(path)

    def record_state(self, path: str, state: dict[str, Any] | None) -> None:
        """Record bound ``path``'s stage state (``None``: forget it). Under a lease this
        object holds, it rides on the holder's next write of the lock document (its next
        journal write, renewal or release: no request of its own; until then ``bound_state``
        answers it, and a holder that dies first leaves the change unwritten, which a resuming
        run recovers from the pending value it left). Otherwise it is written now, by
        compare-and-set on the lock document."""
        key = self._bound_key(path)
        assert key is not None, f"{path!r} is not bound to a lock"
        held = self._holding(key)
        if held is not None:
            with self._known_lock():
                waiting = self.__dict__.setdefault("_waiting", {})
                token, changes = waiting.get(key, (held.token, {}))
                changes = dict(changes) if token == held.token else {}
                changes[path] = state
                waiting[key] = (held.token, changes)
            return
        for _ in range(SWAP_ATTEMPTS):
            current, version = self._read_lock(key)
            try:
                self._swap(key, _with_states(current or NO_LEASE, {path: state}), version)
            except Conflict:
                continue
            return
        raise Conflict(f"lock {key!r} kept changing; the state of {path!r} was not recorded")

    def acquire_lease(
        self,
        key: str,
        holder: str,
        ttl: float,
        *,
        journal: tuple[dict[str, Any] | None, dict[str, Any] | None] | None = None,
    ) -> Lease:
        # What this object read moments ago (a run reads the journal before it locks) serves
        # as the expected version if it shows a free lock: the compare-and-set proves it is
        # still the latest, and if it is not, the lock is read again and tried once more.
        if journal is not None and journal[1] is not None:
            check_document(f"journal {key}", journal[1])
        known = self._recall(key)
        recalled = known is not None and (known[0] is None or known[0].free(utcnow()))
        current, version = known if recalled else self._read_lock(key)  # type: ignore[misc]
        while True:
            now = utcnow()
            held_by_other(key, current, now)
            found = current.journal if current else None
            if journal is not None and found != journal[0]:
                raise Conflict(f"lock {key!r}: its journal changed since it was read; not taken")
            record = new_record(
                holder,
                ttl,
                now,
                journal[1] if journal is not None else found,
                current.state if current else None,
            )
            try:
                self._swap(key, record, version)
            except Conflict:
                current, version = self._read_lock(key)
                held_by_other(key, current, utcnow())
                if recalled:
                    recalled = False
                    continue
                raise
            with self._known_lock():
                self.__dict__.setdefault("_mine", set()).add(record.token)
            return record.as_lease(key)

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        for _ in range(SWAP_ATTEMPTS):
            current, version, _ = self._latest(lease.key, lease.token)
            if current is None or current.token != lease.token or current.released:
                raise LeaseLost(f"lease {lease.key!r} is no longer held by {lease.holder}")
            record = renewed(current, ttl)
            try:
                self._swap(lease.key, record, version)
            except Conflict:
                continue  # our own journal write moved the version: read it again
            return record.as_lease(lease.key)
        # Every read above found the lease still ours: the holder's own writes kept moving the
        # document. That is no takeover (which would stop the holder and skip its release);
        # the next renewal tries again, and the holder's margin check stops it in time.
        raise Conflict(f"lease {lease.key!r}: the lock document kept changing; not renewed")

    def release_lease(self, lease: Lease) -> None:
        try:
            for _ in range(2):
                current, version, recalled = self._latest(lease.key, lease.token)
                if current is None or current.token != lease.token:
                    return
                try:
                    self._swap(lease.key, released(current), version)
                except Conflict:
                    if recalled:
                        continue  # what we remembered was stale: read, and try once more
                return
        finally:
            self._let_go(lease)

    def _let_go(self, lease: Lease) -> None:
        """Forget a lease this object took: its unwritten state changes go with it."""
        with self._known_lock():
            self.__dict__.get("_mine", set()).discard(lease.token)
            waiting = self.__dict__.get("_waiting", {})
            if lease.key in waiting and waiting[lease.key][0] == lease.token:
                del waiting[lease.key]

    def read_lease(self, key: str) -> Lease | None:
        current, _ = self._read_lock(key)
        if current is None or current.free(utcnow()):
            return None
        return current.as_lease(key)

    def read_lock(self, key: str) -> tuple[Lease | None, dict[str, Any] | None]:
        current, _ = self._read_lock(key)
        if current is None:
            return None, None
        lease = None if current.free(utcnow()) else current.as_lease(key)
        return lease, current.journal

    # -- journal, inside the lock document -----------------------------------------------
    def read_journal(self, key: str, *, lease: Lease | None = None) -> dict[str, Any] | None:
        """The journal of ``key``; with the ``lease`` that holds it, as this object last wrote
        it (no request: only the holder writes a journal)."""
        if lease is not None:
            known = self._recall(key)
            if known is not None and known[0] is not None and known[0].token == lease.token:
                return known[0].journal
        current, _ = self._read_lock(key)
        return current.journal if current is not None else None

    def write_journal(
        self,
        key: str,
        record: dict[str, Any],
        *,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        checked = check_document(f"journal {key}", record)
        if not (release and lease is not None):
            self._put_journal(key, checked, lease)
            return
        try:
            self._put_journal(key, checked, lease, release=True)
        finally:
            self._let_go(lease)

    def clear_journal(self, key: str, *, lease: Lease | None = None) -> None:
        current, _, _ = self._latest(key, lease.token if lease is not None else None)
        if current is not None and current.journal is not None:
            self._put_journal(key, None, lease)

    def _put_journal(
        self,
        key: str,
        record: dict[str, Any] | None,
        lease: Lease | None,
        *,
        release: bool = False,
    ) -> None:
        token = lease.token if lease is not None else None
        for _ in range(SWAP_ATTEMPTS):
            current, version, _ = self._latest(key, token)
            if lease is not None:
                still_held(key, current, lease, utcnow())
            base = current or NO_LEASE
            try:
                self._swap(
                    key, replace(base, journal=record, released=release or base.released), version
                )
            except Conflict:
                continue  # a renewal (ours) or a takeover: the next read tells which
            return
        raise LeaseLost(f"lock {key!r} kept changing; journal not written")
