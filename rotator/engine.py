"""The rotation protocol (DESIGN.md), one credential at a time, readable as the protocol.

``rotate_one`` is the whole story: plan without the lock (an idle pass writes nothing), lock,
finish whatever an earlier run left in the journal (roll forward, never a separate recovery
path), retire what has served its grace or settle period, then - if due or forced - check
capacity, intent, mint (or prepare), stage, apply, verify, promote, push, clear, unlock. Every
step writes one audit event and passes two fault points (``rotator.faults``). When the plan
found the lock free and nothing in flight or due for retirement, the lease is taken with the
intent (``LeaseKeeper``: one write; a run that lost the race to it did nothing and is
``locked``), or with the first thing that would reach a target before it.

The journal (one per credential, in the store, written only under the lease) is typed in
``rotator.journal``: a ``Rotation`` in flight, the ``Retirement`` list, and what readers without
the config need (current's dates, the credential, the last outcome).

Rules the code below keeps (each was once a defect):

- Rotator revokes only what its own store recorded (current, previous, the retire list, the
  journal's intent), and only names it ``owns`` exactly. A token that looks like ours but that
  the store never recorded (a second install, a store opened from the wrong place) is reported.
- A password (``StagedIssuer``) is staged before it is applied and never dropped while Airflow
  may hold it: after ``apply`` the journal and the staged value stay until a run proves which
  value Airflow holds; only a definite refusal of ``apply`` drops it.
- An unknown outcome is read back before anything is undone (a promote that answered
  ``Conflict`` may have been applied by an SDK retry).
- ``settle``: a value that stopped being current less than ``settle`` ago is not revoked, and
  at most ``max_alive`` of ours are alive at once.
- Every store write under the lease is fenced (``LeaseKeeper.fence``), and no step starts when
  less than a third of the lease is left.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from backends.store import Lease, Store, Version
from rotator import faults
from rotator.audit import Audit
from rotator.config import Config
from rotator.durations import format_duration
from rotator.errors import (
    ConfigError,
    Conflict,
    ExitCode,
    LeaseLost,
    LockHeld,
    NotFound,
    Overtaken,
    RotationError,
    RotatorError,
    TargetAuthError,
    TargetError,
)
from rotator.issuers import ForeignCredential, Issued, Issuer, Secret, StagedIssuer
from rotator.journal import Journal, Retirement, Rotation, Step
from rotator.sinks import Sink
from rotator.spec import CredentialSpec

REFUSED_AT_TARGET = "current refused at target"
INTERRUPTED = "an interrupted rotation"
RETIREMENT_DUE = "a retirement is due"
LATE_CREATE = timedelta(minutes=2)
PROVABLE = frozenset({"not-due", "rotated", "rolled-back"})
"""Pass outcomes after which the current still wants its periodic proof."""
"""How long a create whose answer was lost may still land at the target (a servlet finishing a
request its client gave up on): a name abandoned that way is revoked again after this."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_rotation_id(now: datetime) -> str:
    """Sortable and short: it becomes part of a TeamCity token's name."""
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


Result = Literal["rotated", "rolled-back", "verified", "not-due", "dry-run", "failed", "locked"]


@dataclass
class Outcome:
    credential: str
    result: Result
    reason: str = ""
    rotation_id: str | None = None
    version: str | None = None
    step: str | None = None
    error: str | None = None
    """What went wrong, in words a user acts on (the class is ``error_class``)."""
    error_class: str | None = None
    resumed: str | None = None
    revoked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Facts worth telling that are not failures (e.g. tokens this store never recorded)."""
    bad_input: bool = False

    @property
    def exit_code(self) -> int:
        if self.bad_input:
            return ExitCode.BAD_INPUT
        if self.result == "locked":
            return ExitCode.LOCKED
        if self.result == "failed" or self.warnings:
            return ExitCode.FAILED
        return ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], "", False)}


class LeaseKeeper:
    """Renews the lease every third of its TTL in a thread.

    ``check`` raises once the lease is lost or when less than a third of it is left (a holder
    cut off from the store stops before its lease can lapse under it); ``fence`` also reads the
    lease back from the store, so a write never follows a takeover it could have seen.

    A keeper made with ``read`` (the journal the run planned on) instead of a lease takes the
    lease with the run's first write (``write``: the intent, one request for both), or when
    asked to ``hold`` it before anything else reaches a target; until then it holds nothing
    and no step can have written anything. The take lands only if the journal is still
    ``read``: ``LockHeld`` or ``Overtaken`` otherwise, before anything was done.
    """

    def __init__(
        self,
        store: Store,
        lease: Lease | None,
        ttl: float,
        *,
        key: str = "",
        holder: str = "",
        read: dict[str, Any] | None = None,
        on_take: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.lease, self.ttl = store, lease, ttl
        self.key, self.holder = (lease.key, lease.holder) if lease is not None else (key, holder)
        self.margin = timedelta(seconds=ttl / 3)
        self._read, self._on_take = read, on_take
        self._stop = threading.Event()
        self._lost: BaseException | None = None
        self._thread: threading.Thread | None = None
        if lease is not None:
            self._start()

    @property
    def held(self) -> bool:
        return self.lease is not None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.key}", daemon=True)
        self._thread.start()

    def _take(self, journal: dict[str, Any] | None) -> None:
        faults.point("before:lock")
        try:
            self.lease = self.store.acquire_lease(
                self.key, self.holder, self.ttl, journal=(self._read, journal)
            )
        except Conflict as exc:
            raise Overtaken(
                f"another run changed {self.key!r} since this one planned; nothing was done"
            ) from exc
        self._start()
        faults.point("after:lock")
        if self._on_take is not None:
            self._on_take()

    def hold(self) -> None:
        """Take the lease now if it is not held yet (its journal as read)."""
        if self.lease is None:
            self._take(self._read)

    def write(self, journal: dict[str, Any]) -> None:
        """Write the journal under the lease (taking it with this write if not held yet)."""
        if self.lease is None:
            self._take(journal)
            return
        self.store.write_journal(self.key, journal, lease=self.lease)

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            assert self.lease is not None  # started once taken
            try:
                self.lease = self.store.renew_lease(self.lease, self.ttl)
            except LeaseLost as exc:
                self._lost = exc
                return
            except RotatorError:
                continue  # a store hiccup: ``check`` stops us before the lease can lapse

    def check(self) -> None:
        if self._lost is not None:
            raise LeaseLost(f"lost the lock on {self.key!r}; stopping before the next step")
        if self.lease is not None and utcnow() > self.lease.expires - self.margin:
            raise LeaseLost(
                f"the lock on {self.key!r} could not be renewed in time; stopping before "
                "the next step"
            )

    def lost(self) -> None:
        """The store said the lease is no longer ours: stop renewing, write nothing more."""
        self._lost = self._lost or LeaseLost(f"lock on {self.key!r} taken over")

    def fence(self) -> None:
        """``check``, then prove from the store that the lease is still ours (a lease not
        taken yet is taken: that write is the proof)."""
        self.check()
        if self.lease is None:
            self.hold()
            return
        held = self.store.read_lease(self.key)
        if held is None or held.token != self.lease.token:
            self._lost = LeaseLost(f"lock on {self.key!r} taken over")
            raise LeaseLost(f"the lock on {self.key!r} was taken over; nothing written")

    def release(self, journal: dict[str, Any] | None = None) -> None:
        """Stop renewing and release; with ``journal``, write it in the same request (fenced:
        ``LeaseLost`` or a store error propagates, and the lease is then released on its own or
        left to expire)."""
        if self.lease is None:  # never taken: nothing was written, nothing to release
            if journal is None:
                return
            self._take(journal)
        assert self.lease is not None and self._thread is not None
        self._stop.set()
        self._thread.join(timeout=self.ttl)
        if self._lost is not None:
            if journal is not None:  # not written: say so (the unlock reports it)
                raise LeaseLost(f"lost the lock on {self.key!r}; the journal was not updated")
            return
        if journal is not None:
            self.check()
            try:
                self.store.write_journal(self.lease.key, journal, lease=self.lease, release=True)
                return
            except RotatorError:
                if self._landed(journal):
                    return
                with contextlib.suppress(RotatorError):
                    self.store.release_lease(self.lease)
                raise
        with contextlib.suppress(RotatorError):
            self.store.release_lease(self.lease)

    def _landed(self, journal: dict[str, Any]) -> bool:
        """Whether a releasing journal write whose answer was lost (or that a retry found
        already gone, as ``LeaseLost``) was applied: the lock is free and holds exactly this
        journal, which only this holder could have written (its ``last`` record carries this
        run's time). A read that fails proves nothing."""
        try:
            lease, stored = self.store.read_lock(self.lease.key)
        except RotatorError:
            return False
        return lease is None and stored == journal


@dataclass(frozen=True)
class Plan:
    """What a run found before taking the lock (``Engine._work``)."""

    why: str | None
    """Why it rotates (``None``: not due)."""
    current: Version | None
    """The current it judged by, when it read one."""
    journal: dict[str, Any] | None
    lease: Lease | None
    """The lease holding the lock then, if any."""


@dataclass(frozen=True)
class Proof:
    """The last time ``prove`` (or ``verify``) checked a credential's current value."""

    at: datetime
    ok: bool
    refused: bool = False
    """The target refused the value (as opposed to being unreachable)."""
    detail: str = ""


@dataclass
class Run:
    """One locked run for one credential: what every step below ``rotate_one`` works with."""

    spec: CredentialSpec
    issuer: Issuer
    keeper: LeaseKeeper
    outcome: Outcome
    journal: Journal
    unsaved: bool = False
    """The journal changed since it was last written: the unlock writes it (one request)."""
    written: bool = False
    """This run wrote the journal: its outcome is recorded (``Journal.last``) with the release.
    A run that changed nothing (a refused plan) leaves the store exactly as it found it."""

    staged: bool = field(init=False)
    """The issuer stages a value the target is then told (a password), rather than minting
    one (a token); asked at every step, so checked once (a protocol check is slow)."""

    def __post_init__(self) -> None:
        self.staged = isinstance(self.issuer, StagedIssuer)

    @property
    def rotation(self) -> Rotation:
        """The rotation in flight (only asked for while there is one)."""
        assert self.journal.rotation is not None
        return self.journal.rotation


class Engine:
    def __init__(
        self,
        config: Config,
        store: Store,
        issuers: Mapping[str, Issuer],
        sink: Sink | None,
        audit: Audit,
        *,
        clock: Callable[[], datetime] = utcnow,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.config = config
        self.store = config.bind(store)
        self.issuers = issuers
        self.sink = sink
        self.audit = audit
        self.clock = clock
        self.observe = observe
        self.lock_ttl = config.engine.lock_ttl.total_seconds()
        self.proven: dict[str, Proof] = {}
        self.idle: dict[str, tuple[Lease | None, dict[str, Any]]] = {}
        """The lock and journal an idle check just read, per credential found not due (so a
        health check after the pass reads nothing more); dropped when the credential runs."""

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: Store | None = None,
        audit: Audit | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> Engine:
        """The engine ``config`` describes: its store (opened here unless given), an issuer
        per credential type, the TeamCity parameter sink when anything is pushed. The one
        wiring the CLI, the daemon, the DAG, the benchmarks and the tests share."""
        from rotator.issuers.registry import build_issuers, build_sink

        store = store if store is not None else config.open_store()
        return cls(
            config,
            store,
            build_issuers(config, store),
            build_sink(config),
            audit if audit is not None else Audit(None),
            clock=clock,
            observe=observe,
        )

    # -- planning ------------------------------------------------------------------------
    def current(self, spec: CredentialSpec) -> Version | None:
        return self._stage_version(spec, "current")

    def due(self, spec: CredentialSpec, current: Version | None, now: datetime) -> str | None:
        """Why ``spec`` should rotate now, or ``None``."""
        if current is None:
            return "nothing stored yet"
        by_age, by_expiry = _deadlines(spec, current)
        if now >= by_age:
            age = now - current.issued
            return f"age {format_duration(age)} >= every {format_duration(spec.every)}"
        if by_expiry is not None and now >= by_expiry:
            expires = current.expires or now
            return f"expires in {format_duration(max(expires - now, timedelta()))}"
        return None

    def next_due(self, spec: CredentialSpec, current: Version | None) -> datetime | None:
        if current is None:
            return None
        by_age, by_expiry = _deadlines(spec, current)
        return by_age if by_expiry is None else min(by_age, by_expiry)

    def _work(self, spec: CredentialSpec, forced: bool) -> Plan:
        """What this run has to do, read without the lock, and what it judged by.

        An idle pass writes nothing (AWS keeps every secret version for a day and caps them
        per secret), and reads one document per credential: the journal, which records when
        the current value was issued and expires (``Journal.current``); only a journal without that
        record (nothing rotated yet by this version of Rotator) costs a read of ``current``.
        """
        self.idle.pop(spec.name, None)
        lease, read = self.store.read_lock(spec.name)
        journal = Journal.from_dict(read)
        if journal.rotation is not None:
            return Plan(INTERRUPTED, None, read, lease)
        now = self.clock()
        if journal.due_retirements(now):
            return Plan(RETIREMENT_DUE, None, read, lease)
        if forced:
            return Plan("forced", None, read, lease)
        current = journal.recorded_current or self.current(spec)
        why = self.due(spec, current, now)
        if why is None:
            self.idle[spec.name] = (lease, read or {})
        return Plan(why, current, read, lease)

    # -- the protocol --------------------------------------------------------------------
    def rotate_one(
        self,
        spec: CredentialSpec,
        *,
        force: bool = False,
        dry_run: bool = False,
        revoke_previous: bool = False,
        reason: str | None = None,
    ) -> Outcome:
        """Rotate ``spec`` if due (or ``force``); ``revoke_previous`` is the break glass for a
        leaked credential: it rotates and revokes every older one at once, settling or not."""
        if dry_run:
            return self._dry_run(spec, force)
        force = force or revoke_previous or reason is not None
        outcome = Outcome(spec.name, "not-due")
        issuer = self.issuers[spec.type]
        try:
            issuer.check_ready(spec)  # a missing bootstrap credential: exit 2, nothing written
            plan = self._work(spec, force)
            if plan.why is None:
                outcome.reason = _not_due(self.next_due(spec, plan.current), self.clock())
                return outcome
        except RotatorError as exc:
            return self._failed(outcome, "plan", exc)
        read = plan.journal
        # A free lock, nothing in flight, nothing to retire: the lease comes with the intent.
        later = plan.lease is None and plan.why not in (INTERRUPTED, RETIREMENT_DUE)
        keeper = self._lock(spec, outcome, read=read, later=later)
        if keeper is None:
            return outcome
        run: Run | None = None
        try:
            if keeper.held:
                read = self.store.read_journal(spec.name, lease=keeper.lease)
            run = Run(spec, issuer, keeper, outcome, Journal.from_dict(read))
            unseen = False
            if run.journal.rotation is not None:
                unseen = self._resume(run)
                if outcome.result == "failed":
                    return outcome
            self._retire(run)
            if unseen and force and not revoke_previous:
                outcome.reason += " (it counts as the forced rotation: no consumer had seen it)"
                return outcome
            current = self.current(spec)
            why = reason or ("forced" if force else self.due(spec, current, self.clock()))
            if why is None:
                if outcome.result != "rotated":
                    outcome.reason = _not_due(self.next_due(spec, current), self.clock())
                return outcome
            self._rotate(run, why, current, revoke_previous=revoke_previous, forced=force)
            return outcome
        except (LockHeld, Overtaken) as exc:  # taken with the intent: another run was first
            outcome.result, outcome.reason, outcome.rotation_id = "locked", str(exc), None
            return outcome
        except LeaseLost as exc:
            return self._failed(outcome, outcome.step or "lock", exc)
        except RotatorError as exc:
            return self._failed(outcome, outcome.step or "plan", exc)
        finally:
            self._unlock(spec, keeper, outcome, run)

    def _dry_run(self, spec: CredentialSpec, force: bool) -> Outcome:
        current = self.current(spec)
        reason = "forced" if force else self.due(spec, current, self.clock())
        journal = self.store.read_journal(spec.name) or {}
        pending = (
            " (an interrupted rotation would be finished first)" if journal.get("rotation") else ""
        )
        if reason is None:
            return Outcome(
                spec.name,
                "not-due",
                _not_due(self.next_due(spec, current), self.clock()) + pending,
            )
        return Outcome(spec.name, "dry-run", f"would rotate: {reason}{pending}")

    def _lock(
        self,
        spec: CredentialSpec,
        outcome: Outcome,
        *,
        read: dict[str, Any] | None = None,
        later: bool = False,
    ) -> LeaseKeeper | None:
        """The run's lease; ``later``: taken with its first write (``LeaseKeeper``), its
        journal as ``read`` until then."""
        holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        if later:
            return LeaseKeeper(
                self.store,
                None,
                self.lock_ttl,
                key=spec.name,
                holder=holder,
                read=read,
                on_take=lambda: self.audit.event(spec.name, "lock", "ok", holder=holder),
            )
        faults.point("before:lock")
        try:
            lease = self.store.acquire_lease(spec.name, holder, self.lock_ttl)
        except LockHeld as exc:
            outcome.result, outcome.reason = "locked", str(exc)
            self.audit.event(spec.name, "lock", "held", holder=exc.holder)
            return None
        faults.point("after:lock")
        self.audit.event(spec.name, "lock", "ok", holder=holder)
        return LeaseKeeper(self.store, lease, self.lock_ttl)

    def _unlock(
        self,
        spec: CredentialSpec,
        keeper: LeaseKeeper | None,
        outcome: Outcome,
        run: Run | None = None,
    ) -> None:
        """Release the lease, writing the run's last journal changes in the same request."""
        if keeper is None:
            return
        faults.point("before:unlock")
        if run is not None and outcome.result in RECORDED and (run.unsaved or run.written):
            _record_run(run.journal, spec, outcome, self.clock())
            run.unsaved = True  # rides on the release write: no extra request
        journal = run.journal.to_dict() if run is not None and run.unsaved else None
        try:
            keeper.release(journal)
        except RotatorError as exc:
            if outcome.result != "failed":
                outcome.warnings.append(
                    f"{outcome.result}, but the journal could not be updated ({exc}); the next "
                    "run finishes it"
                )
            self.audit.event(
                spec.name, "unlock", "failed", rotation_id=outcome.rotation_id, error=exc
            )
            faults.point("after:unlock")
            return
        self.audit.event(spec.name, "unlock", "ok", rotation_id=outcome.rotation_id)
        faults.point("after:unlock")

    @contextlib.contextmanager
    def _step(
        self,
        spec: CredentialSpec,
        step: str,
        outcome: Outcome,
        keeper: LeaseKeeper | None = None,
        **details: Any,
    ) -> Iterator[dict[str, Any]]:
        """One protocol step: lease check, fault points, timing, one audit event."""
        if keeper is not None:
            keeper.check()
        outcome.step = step
        faults.point(f"before:{step}")
        started = time.monotonic()
        extra: dict[str, Any] = dict(details)
        try:
            yield extra
        except BaseException as exc:
            self.audit.event(
                spec.name, step, "failed", rotation_id=outcome.rotation_id, error=exc, **extra
            )
            raise
        elapsed = time.monotonic() - started
        if self.observe is not None:
            self.observe(spec.name, step, elapsed)
        self.audit.event(
            spec.name,
            step,
            "ok",
            rotation_id=outcome.rotation_id,
            seconds=round(elapsed, 4),
            **extra,
        )
        faults.point(f"after:{step}")

    def _save(self, run: Run) -> None:
        """Write the journal, fenced by the lease in the store itself (``LeaseLost`` if a newer
        holder took over, however late this write arrives)."""
        run.keeper.check()
        try:
            run.keeper.write(run.journal.to_dict())
        except LeaseLost:
            run.keeper.lost()
            raise
        run.unsaved, run.written = False, True

    def _rotate(
        self,
        run: Run,
        reason: str,
        current: Version | None,
        *,
        revoke_previous: bool,
        forced: bool,
    ) -> None:
        spec, outcome = run.spec, run.outcome
        previous = self._stage_version(spec, "previous", value=False)  # its names only
        now = self.clock()
        rid = new_rotation_id(now)
        earlier, outcome.rotation_id = outcome.rotation_id, rid
        # Before anything is written: the bootstrap credential is accepted, and whatever looks
        # like ours at the target without being recorded here is reported (never revoked).
        with self._step(spec, "plan", outcome, run.keeper):
            issued = run.issuer.list_issued(spec)
        # Unknown names are told once the lease is held (taken with the intent, or below): a
        # run that raced this one from plan to lease may have minted one meanwhile.
        if run.issuer.target_name(spec, rid) is not None and not revoke_previous:
            at_target = {i.name for i in issued}
            waiting = self._over_capacity(run, current, previous, now, at_target)
            if waiting is not None:
                run.keeper.hold()
                self._report_unknown(run, issued, current, previous)
                outcome.rotation_id = earlier  # this one never started
                if forced:
                    raise RotationError(
                        f"refused, nothing changed: {waiting}; or use --revoke-previous if the "
                        "credential leaked",
                        secret=spec.name,
                        step="plan",
                    )
                outcome.reason = f"due ({reason}) but waiting: {waiting}"
                return
        outcome.reason = reason
        rotation = _rotation_record(run.issuer, spec, rid, reason, current, previous, now)
        rotation.revoke_previous = revoke_previous
        self._intent(run, rotation)
        self._report_unknown(run, issued, current, previous)
        if isinstance(run.issuer, StagedIssuer):
            with self._step(spec, "mint", outcome, run.keeper):
                secret = run.issuer.prepare(spec, rid)
            self._stage(run, secret)
            self._apply(run, secret.value, may_drop=True)
        else:
            try:
                with self._step(spec, "mint", outcome, run.keeper, target=rotation.target_name):
                    secret = run.issuer.mint(spec, rid)
            except LeaseLost:
                raise  # the journal's intent names what may have been minted: the next run
            except RotatorError as exc:
                # Minted or not (a lost answer): revoke by name, which is idempotent, and once
                # more after a late create could have landed.
                self._abandon(run, late=not _definitely_refused(exc))
                raise
            self._stage(run, secret)
        self._finish(run, secret.value, expected=rotation.expected)

    def _intent(self, run: Run, rotation: Rotation) -> None:
        """Record what may come to exist at the target before it can."""
        with self._step(
            run.spec,
            "intent",
            run.outcome,
            run.keeper,
            target=rotation.target_name,
            reason=rotation.reason,
        ):
            run.journal.rotation = rotation
            self._save(run)

    def _report_unknown(
        self,
        run: Run,
        issued: Sequence[Issued],
        current: Version | None,
        previous: Version | None,
    ) -> None:
        # A pending value needs no read: a rotation that staged it is in the journal until it
        # ends, and one that was given up revoked its name or kept it on the retire list.
        known = recorded_names(run.journal, current, previous)
        for item in issued:
            if item.name in known:
                continue
            run.outcome.notes.append(
                f"{item.name} at the target is named like this credential's but this store never "
                "recorded it (a second install, or a store opened from another place?); not "
                "revoked"
            )
            self.audit.event(run.spec.name, "sweep", "unknown", target=item.name)

    def _over_capacity(
        self,
        run: Run,
        current: Version | None,
        previous: Version | None,
        now: datetime,
        at_target: set[str],
    ) -> str | None:
        """Why a new credential would exceed ``max_alive`` (and until when), or ``None``. Only
        names the target still lists count: a current revoked by hand, or a retire entry
        already gone, is not alive."""
        spec = run.spec
        entries = run.journal.retire
        alive = {e.target_name for e in entries}
        alive |= {v.meta.get("target_name") for v in (current, previous) if v is not None}
        alive &= at_target
        settling: list[datetime] = [e.not_before for e in entries]
        pushed_out = previous.meta.get("target_name") if previous is not None else None
        if pushed_out:
            settled_at = _superseded(run.journal, pushed_out, current, now) + spec.settle
            if settled_at <= now:
                alive.discard(pushed_out)
            settling.append(settled_at)
        if len(alive) + 1 <= spec.max_alive:
            return None
        until = min((t for t in settling if t > now), default=now)
        return (
            f"{len(alive) + 1} of Rotator's credentials would be alive (max_alive "
            f"{spec.max_alive}) while older ones settle; possible from {_iso(until)}"
        )

    def _stage(self, run: Run, secret: Secret) -> None:
        spec, rotation = run.spec, run.rotation
        meta = {"issued": secret.issued.isoformat()}
        if secret.target_name:
            meta["target_name"] = secret.target_name
        if secret.expires:
            meta["expires"] = secret.expires.isoformat()
        try:
            with self._step(spec, "stage", run.outcome, run.keeper) as extra:
                if run.staged:
                    # The target is told the value next: the journal says it is staged first.
                    run.keeper.fence()
                # A token's intent, written just before it was minted, fenced this write;
                # its journal says "staged" right before the promotion, which it fences.
                pending = self.store.put_pending(
                    spec.path, secret.value, rotation_id=rotation.id, meta=meta
                )
                extra["version"] = pending.id
                if run.staged:
                    rotation.step = Step.STAGED
                    self._save(run)
        except LeaseLost:
            raise
        except RotatorError as exc:
            # Not applied anywhere yet (a password is applied after this step), and a minted
            # token must not outlive a value that may never have reached the store.
            self._abandon(run)
            raise _error(str(exc), run, "stage") from exc

    def _apply(self, run: Run, value: dict[str, Any], *, may_drop: bool) -> None:
        """Set a staged value at the target. Only a definite refusal of the first attempt
        drops it (``may_drop``): after a lost answer, or once an earlier run may have applied
        it, the target may hold it, so it stays staged for a later run to settle."""
        assert isinstance(run.issuer, StagedIssuer)
        try:
            with self._step(run.spec, "apply", run.outcome, run.keeper):
                run.issuer.apply(run.spec, value)
        except LeaseLost:
            raise
        except RotatorError as exc:
            if not (may_drop and _definitely_refused(exc)):
                raise _error(
                    f"the target may or may not have taken the new value ({exc}); it stays "
                    "staged and the next run that reaches the target settles it",
                    run,
                    "apply",
                ) from exc
            self._undo(run)
            raise _error(
                f"the target refused the new value ({exc}); the current one was kept",
                run,
                "apply",
            ) from exc

    def _finish(self, run: Run, value: dict[str, Any], *, expected: str | None) -> None:
        """verify -> promote -> push -> clear -> retire, from a staged value."""
        spec = run.spec
        try:
            with self._step(spec, "verify", run.outcome, run.keeper):
                run.issuer.verify(spec, value)
        except LeaseLost:
            raise
        except RotatorError as exc:
            if run.staged:
                raise _error(
                    f"the new value could not be proven at the target ({exc}); it stays staged "
                    "and the next run proves which value the target holds",
                    run,
                    "verify",
                ) from exc
            what = "the version rolled back to" if run.rotation.rollback else "the new credential"
            self._undo(run)
            raise _error(
                f"{what} did not work at the target ({exc}); the current one was kept",
                run,
                "verify",
            ) from exc
        if not run.staged:
            # Proven: the journal says so, and its compare-and-set on the lock proves the lease
            # is still ours right before the store's current changes (a resumed run judges by
            # the pending value the store holds, whichever step its journal names).
            run.rotation.step = Step.STAGED
            self._save(run)
        promoted = self._promote(run, expected)
        self.proven[spec.name] = Proof(self.clock(), True)
        self._conclude(run, promoted)

    def _conclude(self, run: Run, promoted: Version) -> None:
        """The rotation's value is current: say so, then retire, push and clear."""
        run.outcome.version = promoted.id
        run.outcome.result = "rolled-back" if run.rotation.rollback else "rotated"
        self._after_promote(run, promoted)

    def _promote(self, run: Run, expected: str | None) -> Version:
        spec, rid = run.spec, run.rotation.id
        try:
            with self._step(spec, "promote", run.outcome, run.keeper) as extra:
                if run.staged:  # a token's journal write just fenced it
                    run.keeper.fence()
                try:
                    promoted = self.store.promote(spec.path, rotation_id=rid, expected=expected)
                except Conflict:
                    # An SDK may have retried a promote whose answer was lost: read it back.
                    promoted = self._promoted(spec, rid)
                    if promoted is None:
                        raise
                extra["version"] = promoted.id
                return promoted
        except LeaseLost:
            raise
        except Conflict as exc:
            if not run.staged:
                self._undo(run)
            kept = "it stays staged for the next run" if run.staged else "nothing was promoted"
            raise _error(f"current changed while rotating ({exc}); {kept}", run, "promote") from exc
        except RotatorError as exc:
            read_back = None
            with contextlib.suppress(RotatorError):
                read_back = self._promoted(spec, rid)
            if read_back is not None:
                return read_back
            raise _error(
                f"the store did not confirm the promotion ({exc}); the next run reads it back "
                "and finishes",
                run,
                "promote",
            ) from exc

    def _promoted(self, spec: CredentialSpec, rid: str) -> Version | None:
        """``current`` if it is this rotation's value (it was promoted), else ``None``; a read
        that fails raises: it resolved nothing, so nothing may be undone on its word."""
        current = self.current(spec)
        if current is not None and current.meta.get("rotation_id") == rid:
            return current
        return None

    def _after_promote(self, run: Run, promoted: Version) -> None:
        """Schedule retirements, push, clear the journal (recording the new current's dates
        for the next idle pass), retire what is due."""
        rotation, outcome = run.rotation, run.outcome
        if rotation.step != Step.PROMOTED:
            self._schedule_retirement(run)
            rotation.step = Step.PROMOTED
            run.unsaved = True
            if run.spec.push:
                # A push can take long: the retirements are recorded before it. Without one,
                # a crash before the unlock's write resumes from the store's current, which
                # schedules the same retirements.
                try:
                    self._save(run)
                except LeaseLost:
                    raise
                except RotatorError as exc:
                    outcome.warnings.append(
                        f"promoted, but the journal could not be updated ({exc}); the next run "
                        "finishes the retirements"
                    )
                    return
        self._push(run, promoted.value)
        if not outcome.warnings:
            run.journal.rotation = None
            run.journal.current = _dates_of(promoted, self.next_due(run.spec, promoted))
            run.unsaved = True
        self._retire(run)
        if rotation.revoke_previous and outcome.revoked:
            outcome.notes.append(
                f"--revoke-previous: revoked {len(outcome.revoked)} older credential(s) at once"
            )

    def _schedule_retirement(self, run: Run) -> None:
        """The replaced current keeps working for ``grace``; the one pushed out of ``previous``
        is revoked once it has settled (``settle`` after it stopped being current); with
        ``revoke_previous`` every older one is revoked now. The new current is never listed."""
        spec, rotation, now = run.spec, run.rotation, self.clock()
        entries = {e.target_name: e for e in run.journal.retire}
        replaced, pushed_out = rotation.current_target, rotation.previous_target
        if pushed_out and pushed_out != replaced:
            earlier = entries.get(pushed_out)
            superseded = (earlier.superseded if earlier else None) or rotation.current_since or now
            entries[pushed_out] = Retirement(
                pushed_out, max(now, superseded + spec.settle), "pushed out of previous", superseded
            )
        if replaced:
            why = "rolled back" if rotation.rollback else "grace over"
            entries[replaced] = Retirement(replaced, now + spec.grace, why, now)
        if rotation.revoke_previous:
            for entry in entries.values():
                entry.not_before, entry.why = now, "revoke-previous"
        for name in (rotation.target_name, rotation.restores):
            entries.pop(name, None)  # type: ignore[arg-type]
        run.journal.retire = list(entries.values())

    def _push(self, run: Run, value: dict[str, Any]) -> None:
        spec, outcome = run.spec, run.outcome
        if not spec.push:
            return
        attempts = self.config.engine.push_attempts
        for target in spec.push:
            where = f"{target.teamcity_project or target.teamcity_build_type}/{target.parameter}"
            try:
                with self._step(spec, "push", outcome, run.keeper, target=where):
                    if self.sink is None:
                        raise RotatorError("no sink configured for push targets")
                    for attempt in range(1, attempts + 1):
                        try:
                            self.sink.push(target, str(value[target.field]))
                            break
                        except TargetError:
                            if attempt == attempts:
                                raise
                            time.sleep(min(2.0, 0.2 * 2**attempt))  # backoff between attempts
            except LeaseLost:
                raise
            except (RotatorError, KeyError) as exc:
                outcome.warnings.append(f"push to {where} failed: {exc}")

    def _undo(self, run: Run) -> None:
        """A value that is known not to be in use: drop it from the store, revoke it."""
        with contextlib.suppress(RotatorError):
            run.keeper.fence()
            self.store.discard_pending(run.spec.path, rotation_id=run.rotation.id)
        self._abandon(run)

    def _abandon(self, run: Run, *, late: bool = False) -> None:
        """Forget an unfinished rotation; what it may have minted is revoked now or listed for
        retirement, by the name the journal recorded before minting. ``late``: the create's
        answer was lost, so the target may still carry it out after our revoke: the name stays
        on the retire list until ``LATE_CREATE`` has passed."""
        spec, outcome, rotation = run.spec, run.outcome, run.rotation
        name = rotation.target_name
        if name and late:
            run.journal.retire.append(
                Retirement(
                    name,
                    self.clock() + LATE_CREATE,
                    "create answer lost: revoked again once a late create has landed",
                )
            )
        if name:
            try:
                run.keeper.check()
                self.issuers[spec.type].revoke(spec, name)
                outcome.revoked.append(name)
                self.audit.event(
                    spec.name,
                    "revoke",
                    "ok",
                    rotation_id=rotation.id,
                    target=name,
                    why="abandoned rotation",
                )
            except RotatorError as exc:
                if run.journal.retiring(name) is None:
                    run.journal.retire.append(Retirement(name, self.clock(), "abandoned"))
                self.audit.event(
                    spec.name, "revoke", "failed", rotation_id=rotation.id, target=name, error=exc
                )
        run.journal.rotation = None
        with contextlib.suppress(RotatorError):
            self._save(run)

    def _resume(self, run: Run) -> bool:
        """Finish what an interrupted run started, judging by what the store actually holds.

        Returns whether it finished a rotation no consumer had seen yet (its value was never
        ``current``): that one counts as the rotation ``--force`` asked for.
        """
        spec, outcome, rotation = run.spec, run.outcome, run.rotation
        outcome.rotation_id, outcome.resumed = rotation.id, str(rotation.step)
        self.audit.event(
            spec.name, "resume", "started", rotation_id=rotation.id, found=str(rotation.step)
        )
        outcome.reason = "finished an interrupted rotation"
        current = self.current(spec)
        if current is not None and current.meta.get("rotation_id") == rotation.id:
            self._conclude(run, current)
            return False
        pending = self._stage_version(spec, "pending")
        if pending is not None and pending.meta.get("rotation_id") == rotation.id:
            try:
                if isinstance(run.issuer, StagedIssuer):
                    # The target may hold this value or the current one: applying it again and
                    # proving it settles which, and current may have moved meanwhile.
                    self._reapply(run, pending.value, current)
                    expected = current.id if current is not None else None
                else:
                    expected = rotation.expected
                self._finish(run, pending.value, expected=expected)
            except RotationError as exc:
                self._failed(outcome, exc.step, exc)
            return outcome.result != "failed"
        # Nothing reached the store: whatever was minted is revoked, and we start over.
        outcome.reason = ""
        self._abandon(run)
        self.audit.event(
            spec.name,
            "resume",
            "abandoned",
            rotation_id=rotation.id,
            target=rotation.target_name,
        )
        outcome.rotation_id = None
        return False

    def _reapply(self, run: Run, value: dict[str, Any], current: Version | None) -> None:
        """Apply a staged value again. If the target refuses outright, read back which value
        it holds: the staged one (go on to promote), the current one (the staged value was
        never taken: drop it, nothing is lost), or neither that we can tell (keep it)."""
        try:
            self._apply(run, value, may_drop=False)
        except RotationError as exc:
            if not _definitely_refused(exc.__cause__ or exc):
                raise
            if self._holds(run, value):
                return  # it was applied by an earlier run: verify and promote it
            if current is not None and self._holds(run, current.value):
                self._undo(run)
                raise _error(
                    f"the target refused the staged value ({exc.__cause__}) and still holds the "
                    "current one, so the staged value was dropped; the current one was kept",
                    run,
                    "apply",
                ) from exc
            raise

    def _holds(self, run: Run, value: dict[str, Any]) -> bool:
        """Whether the target accepts ``value`` now (``False`` also when it cannot be told)."""
        try:
            run.issuer.verify(run.spec, value)
        except RotatorError:
            return False
        return True

    def _retire(self, run: Run) -> None:
        """Revoke what is due. An entry is dropped only when revoked, already gone, or not
        ours; any other failure keeps it for the next run (and says so)."""
        spec, outcome = run.spec, run.outcome
        entries = run.journal.retire
        if not entries:
            return
        now = self.clock()
        keep = []
        for entry in entries:
            if entry.not_before > now:
                keep.append(entry)
                continue
            run.keeper.hold()  # nothing reaches a target before the lease is ours
            try:
                with self._step(
                    spec, "retire", outcome, run.keeper, target=entry.target_name, why=entry.why
                ):
                    self.issuers[spec.type].revoke(spec, entry.target_name)
                outcome.revoked.append(entry.target_name)
            except LeaseLost:
                raise
            except ForeignCredential:
                continue  # not ours to revoke: dropped, the audit event says why
            except RotatorError as exc:
                keep.append(entry)
                outcome.warnings.append(f"could not revoke {entry.target_name}: {exc}")
        if keep != entries:
            run.journal.retire = keep
            run.unsaved = True  # written by the next journal write or the unlock

    def _stage_version(
        self, spec: CredentialSpec, stage: str, *, value: bool = True
    ) -> Version | None:
        try:
            return self.store.read(spec.path, stage, value=value)
        except NotFound:
            return None

    def _failed(self, outcome: Outcome, step: str | None, exc: BaseException) -> Outcome:
        outcome.result = "failed" if not isinstance(exc, LockHeld) else "locked"
        outcome.bad_input = isinstance(exc, ConfigError)
        outcome.step = step
        outcome.error, outcome.error_class = str(exc), type(exc).__name__
        if isinstance(exc, RotationError) and isinstance(exc.__cause__, RotatorError):
            outcome.error_class = type(exc.__cause__).__name__  # the cause is what to act on
        return outcome

    # -- operator commands ---------------------------------------------------------------
    def rollback(self, spec: CredentialSpec, to: str | None = None) -> Outcome:
        """Make ``previous`` (or version ``to``) current again, through the same journaled
        steps as a rotation: the value is staged, applied at the target when it is a password,
        proven, promoted and pushed. A value the target no longer accepts (revoked, expired) is
        refused, and nothing changes."""
        outcome = Outcome(spec.name, "rolled-back")
        issuer = self.issuers[spec.type]
        try:
            issuer.check_ready(spec)
        except RotatorError as exc:
            return self._failed(outcome, "rollback", exc)
        keeper = self._lock(spec, outcome)
        if keeper is None:
            return outcome
        run: Run | None = None
        try:
            journal = self.store.read_journal(spec.name, lease=keeper.lease)
            run = Run(spec, issuer, keeper, outcome, Journal.from_dict(journal))
            if run.journal.rotation is not None:
                raise RotatorError(
                    f"{spec.name!r} has an interrupted rotation; run 'rotator rotate "
                    f"{spec.name}' to finish it before rolling back"
                )
            current = self.current(spec)
            previous = self._stage_version(spec, "previous")
            chosen = self._rollback_target(spec, current, previous, to)
            now = self.clock()
            expires = chosen.expires
            if expires is not None and expires <= now:
                raise RotatorError(
                    f"version {chosen.id} of {spec.name!r} expired at {_iso(expires)}; "
                    "refusing to roll back to it"
                )
            rid = new_rotation_id(now)
            outcome.rotation_id = rid
            rotation = _rotation_record(
                issuer, spec, rid, f"rollback to version {chosen.id}", current, previous, now
            )
            restores = chosen.meta.get("target_name")
            if restores is None and issuer.target_name(spec, rid) is not None:
                # Without the token's name its pending retirement cannot be called off: it
                # would revoke the value this rollback makes current.
                raise ConfigError(
                    f"version {chosen.id} of {spec.name!r} has no record of which token it is "
                    "(this store keeps that for the current and previous versions only); "
                    "refusing to roll back to it, nothing changed"
                )
            rotation.kind, rotation.target_name, rotation.restores = "rollback", None, restores
            self._intent(run, rotation)
            secret = Secret(
                value=dict(chosen.value),
                target_name=chosen.meta.get("target_name"),
                issued=chosen.issued,
                expires=expires,
            )
            self._stage(run, secret)
            if isinstance(issuer, StagedIssuer):
                self._apply(run, secret.value, may_drop=True)
            self._finish(run, secret.value, expected=rotation.expected)
            return outcome
        except RotatorError as exc:
            return self._failed(outcome, outcome.step or "rollback", exc)
        finally:
            self._unlock(spec, keeper, outcome, run)

    def _rollback_target(
        self,
        spec: CredentialSpec,
        current: Version | None,
        previous: Version | None,
        to: str | None,
    ) -> Version:
        if current is None:
            raise NotFound(f"{spec.name!r} has nothing stored to roll back")
        if to is None:
            if previous is None:
                raise NotFound(f"{spec.name!r} has no previous version to roll back to")
            return previous
        try:
            chosen = self.store.read_version(spec.path, to)
        except NotFound:
            raise ConfigError(
                f"{spec.name!r} has no version {to!r} (see 'rotator history {spec.name}')"
            ) from None
        if chosen.id == current.id:
            raise ConfigError(f"version {to!r} of {spec.name!r} is already current")
        return chosen

    def verify(self, spec: CredentialSpec) -> Outcome:
        """Prove the current value works at its target."""
        outcome = Outcome(spec.name, "verified")
        current = self.current(spec)
        if current is None:
            return self._failed(outcome, "verify", NotFound(f"{spec.name!r} has no current value"))
        try:
            with self._step(spec, "verify", outcome, version=current.id):
                self.issuers[spec.type].verify(spec, current.value)
        except RotatorError as exc:
            refused = isinstance(exc, TargetAuthError)
            self.proven[spec.name] = Proof(self.clock(), False, refused, str(exc))
            return self._failed(outcome, "verify", exc)
        self.proven[spec.name] = Proof(self.clock(), True)
        outcome.version = current.id
        return outcome

    def prove(self, spec: CredentialSpec) -> Outcome:
        """``verify``, and a current the target refuses is rotated at once: a token revoked by
        hand or a password changed outside Rotator must not wait until it is due."""
        outcome = self.verify(spec)
        proof = self.proven.get(spec.name)
        if proof is not None and proof.refused:
            return self.rotate_one(spec, reason=REFUSED_AT_TARGET)
        return outcome

    def proofs_due(self, specs: Sequence[CredentialSpec]) -> list[CredentialSpec]:
        """The credentials whose current was last proven ``verify_every`` ago or never."""
        now = self.clock()
        return [
            s
            for s in specs
            if s.name not in self.proven or now - self.proven[s.name].at >= s.verify_every
        ]

    # -- many credentials ----------------------------------------------------------------
    def run_pass(self, specs: Sequence[CredentialSpec]) -> list[Outcome]:
        """One daemon pass: rotate what is due, then prove each current whose last proof is
        ``verify_every`` old (one authenticated request), rotating a refused one at once."""
        outcomes = self.rotate_all(specs)
        for i, spec in enumerate(specs):
            # A rotation that verified its new value recorded the proof; one that only finished
            # an interrupted rotation (retire, push) proved nothing, so its current is proven here.
            if outcomes[i].result in PROVABLE and self.proofs_due([spec]):
                proved = self.prove(spec)
                if proved.result != "verified":
                    outcomes[i] = proved
        return outcomes

    def rotate_all(
        self,
        specs: Sequence[CredentialSpec],
        *,
        force: bool = False,
        dry_run: bool = False,
        revoke_previous: bool = False,
        parallel: int | None = None,
        progress: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Rotate ``specs`` with a bounded pool; a ``login_from`` credential goes first."""
        results: dict[str, Outcome] = {}
        workers = max(1, parallel or self.config.engine.parallel)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rotate") as pool:
            for wave in waves(specs):
                futures = {
                    s.name: pool.submit(self._safe_rotate, s, force, dry_run, revoke_previous)
                    for s in wave
                }
                for name, future in futures.items():
                    results[name] = future.result()
                    if progress is not None:
                        progress(results[name])
        return [results[s.name] for s in specs]

    def _safe_rotate(
        self, spec: CredentialSpec, force: bool, dry_run: bool, revoke_previous: bool = False
    ) -> Outcome:
        try:
            return self.rotate_one(
                spec, force=force, dry_run=dry_run, revoke_previous=revoke_previous
            )
        except RotatorError as exc:  # e.g. the store down before the lock: per credential
            return self._failed(Outcome(spec.name, "failed"), "lock", exc)


def waves(specs: Sequence[CredentialSpec]) -> list[list[CredentialSpec]]:
    """Groups to run one after another: each credential after the one it logs in with."""
    names = {s.name for s in specs}
    remaining = list(specs)
    done: set[str] = set()
    out: list[list[CredentialSpec]] = []
    while remaining:
        ready = [s for s in remaining if s.login_from not in names or s.login_from in done]
        if not ready:  # a cycle cannot pass config validation; be safe anyway
            ready = remaining
        out.append(ready)
        done |= {s.name for s in ready}
        remaining = [s for s in remaining if s.name not in done]
    return out


def _error(message: str, run: Run, step: str) -> RotationError:
    """The error of one credential's run at ``step``: the current credential was kept."""
    return RotationError(
        message, secret=run.spec.name, step=step, rotation_id=run.outcome.rotation_id
    )


def _rotation_record(
    issuer: Issuer,
    spec: CredentialSpec,
    rid: str,
    reason: str,
    current: Version | None,
    previous: Version | None,
    now: datetime,
) -> Rotation:
    return Rotation(
        id=rid,
        reason=reason,
        started=now,
        target_name=issuer.target_name(spec, rid),
        expected=current.id if current else None,
        current_target=current.meta.get("target_name") if current else None,
        previous_target=previous.meta.get("target_name") if previous else None,
        current_since=current.created if current else None,
    )


def recorded_names(journal: Journal, *versions: Version | None) -> set[str]:
    """Every name at the target that this store knows to be ours."""
    names = journal.names()
    names |= {
        v.meta["target_name"] for v in versions if v is not None and v.meta.get("target_name")
    }
    return names


def _superseded(journal: Journal, name: str, current: Version | None, now: datetime) -> datetime:
    """When ``name`` (the previous value) stopped being current: recorded on its retire entry,
    else when the current version was written."""
    entry = journal.retiring(name)
    if entry is not None and entry.superseded is not None:
        return entry.superseded
    return current.created if current is not None else now


def _definitely_refused(exc: BaseException) -> bool:
    """A 4xx answer (or our own refusal before sending) means the value was not applied."""
    if isinstance(exc, ConfigError):
        return True
    status = getattr(exc, "status", None)
    return isinstance(exc, TargetError) and isinstance(status, int) and 400 <= status < 500


def _lead(spec: CredentialSpec, issued: datetime, expires: datetime) -> timedelta:
    return spec.lead or (spec.lifetime / 5 if spec.lifetime else (expires - issued) / 5)


def _deadlines(spec: CredentialSpec, current: Version) -> tuple[datetime, datetime | None]:
    """When ``current`` is due by age (``every``), and by expiry (``lead`` before it expires;
    ``None`` for a value that does not expire): the one formula ``due`` and ``next_due`` use."""
    issued, expires = current.issued, current.expires
    by_expiry = expires - _lead(spec, issued, expires) if expires is not None else None
    return issued + spec.every, by_expiry


RECORDED = frozenset({"rotated", "rolled-back", "failed"})
"""The outcomes a run records in its journal (``Journal.last``)."""


def _dates_of(version: Version, next_due: datetime | None = None) -> dict[str, str | None]:
    expires = version.expires
    return {
        "id": version.id,
        "issued": version.issued.isoformat(),
        "expires": expires.isoformat() if expires else None,
        "next_due": next_due.isoformat() if next_due else None,
    }


def _record_run(journal: Journal, spec: CredentialSpec, outcome: Outcome, now: datetime) -> None:
    """``Journal.credential`` and ``Journal.last``, from this run. Words only: an outcome's
    error and reason never hold a secret (the redaction in ``rotator.output`` is the second
    line)."""
    journal.credential = {
        "type": spec.type,
        "conn_id": spec.conn_id,
        "path": spec.path,
        "login_from": spec.login_from,
    }
    journal.last = {
        "rotation_id": outcome.rotation_id,
        "result": outcome.result,
        "step": outcome.step if outcome.result == "failed" else None,
        "reason": outcome.error if outcome.result == "failed" else outcome.reason,
        "at": now.isoformat(),
    }


def _not_due(when: datetime | None, now: datetime) -> str:
    """``not due (next in 6d 23h, 2026-12-02T18:54:34+00:00)``: how long first, for people."""
    from rotator.output import human_duration

    if when is None:
        return "not due"
    return f"not due (next in {human_duration(max(when - now, timedelta()))}, {_iso(when)})"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "now"
