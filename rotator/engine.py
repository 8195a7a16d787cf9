"""The rotation protocol (DESIGN.md), one credential at a time, readable as the protocol.

``rotate_one`` is the whole story: lock, finish whatever an earlier run left in the journal
(roll forward, never a separate recovery path), retire what has served its grace period, sweep
orphans, then - if due or forced - intent, mint, stage, verify, promote, push, clear, unlock.
Every step writes one audit event and passes two fault points (``rotator.faults``).

The journal record (one per credential, in the store, written only under the lease) is::

    {"rotation": {"id", "step", "target_name", "expected", "current_target",
                  "previous_target", "started", "reason"},
     "retire": [{"target_name", "not_before", "why"}]}

Issuers that can produce a value without touching the target (``prepare``/``apply``, e.g. an
Airflow password) stage it *before* applying it, so a crash can never leave the target holding
a value the store does not have.
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
from typing import Any

from backends.store import Lease, Store, Version
from rotator import faults
from rotator.audit import Audit
from rotator.config import Config
from rotator.durations import format_duration
from rotator.errors import (
    ConfigError,
    Conflict,
    LeaseLost,
    LockHeld,
    NotFound,
    RotationError,
    RotatorError,
    TargetError,
)
from rotator.issuers import Issuer, Secret, name_prefix
from rotator.sinks import Sink
from rotator.spec import CredentialSpec

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_rotation_id(now: datetime) -> str:
    """Sortable and short: it becomes part of a TeamCity token's name."""
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class Outcome:
    credential: str
    result: str  # rotated | not-due | dry-run | failed | locked
    reason: str = ""
    rotation_id: str | None = None
    version: str | None = None
    step: str | None = None
    error: str | None = None
    resumed: str | None = None
    revoked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bad_input: bool = False

    @property
    def exit_code(self) -> int:
        if self.bad_input:
            return EXIT_BAD_INPUT
        if self.result == "locked":
            return EXIT_LOCKED
        if self.result == "failed" or self.warnings:
            return EXIT_FAILED
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], "", False)}


class LeaseKeeper:
    """Renews the lease every third of its TTL in a thread; ``check`` raises once it is lost."""

    def __init__(self, store: Store, lease: Lease, ttl: float) -> None:
        self.store, self.lease, self.ttl = store, lease, ttl
        self._stop = threading.Event()
        self._lost: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"lease-{lease.key}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.lease = self.store.renew_lease(self.lease, self.ttl)
            except LeaseLost as exc:
                self._lost = exc
                return
            except RotatorError:
                continue  # a store hiccup: the lease is still ours until it lapses

    def check(self) -> None:
        if self._lost is not None:
            raise LeaseLost(f"lost the lock on {self.lease.key!r}; stopping before the next step")

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.ttl)
        if self._lost is None:
            with contextlib.suppress(RotatorError):
                self.store.release_lease(self.lease)


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
        self.store = store
        self.issuers = issuers
        self.sink = sink
        self.audit = audit
        self.clock = clock
        self.observe = observe
        self.lock_ttl = config.engine.lock_ttl.total_seconds()

    # -- planning ------------------------------------------------------------------------
    def current(self, spec: CredentialSpec) -> Version | None:
        try:
            return self.store.read(spec.path)
        except NotFound:
            return None

    def due(self, spec: CredentialSpec, current: Version | None, now: datetime) -> str | None:
        """Why ``spec`` should rotate now, or ``None``."""
        if current is None:
            return "nothing stored yet"
        issued = _meta_time(current, "issued") or current.created
        age = now - issued
        if age >= spec.every:
            return f"age {format_duration(age)} >= every {format_duration(spec.every)}"
        expires = _meta_time(current, "expires")
        if expires is not None:
            lead = spec.lead or (spec.lifetime / 5 if spec.lifetime else (expires - issued) / 5)
            if expires - now <= lead:
                return f"expires in {format_duration(max(expires - now, timedelta()))}"
        return None

    def next_due(self, spec: CredentialSpec, current: Version | None) -> datetime | None:
        if current is None:
            return None
        issued = _meta_time(current, "issued") or current.created
        when = issued + spec.every
        expires = _meta_time(current, "expires")
        if expires is not None:
            lead = spec.lead or (spec.lifetime / 5 if spec.lifetime else (expires - issued) / 5)
            when = min(when, expires - lead)
        return when

    # -- the protocol --------------------------------------------------------------------
    def rotate_one(
        self, spec: CredentialSpec, *, force: bool = False, dry_run: bool = False
    ) -> Outcome:
        if dry_run:
            return self._dry_run(spec, force)
        outcome = Outcome(spec.name, "not-due")
        keeper = self._lock(spec, outcome)
        if keeper is None:
            return outcome
        try:
            journal = self.store.read_journal(spec.name) or {}
            if journal.get("rotation"):
                self._resume(spec, journal, keeper, outcome)
                if outcome.result == "failed":
                    return outcome
            self._retire(spec, journal, outcome)
            self._sweep_orphans(spec, journal, outcome)
            current = None if force else self.current(spec)
            reason = "forced" if force else self.due(spec, current, self.clock())
            if reason is None:
                if outcome.result != "rotated":
                    outcome.reason = f"not due (next {_iso(self.next_due(spec, current))})"
                return outcome
            self._rotate(spec, journal, keeper, outcome, reason)
            return outcome
        except LeaseLost as exc:
            return self._failed(outcome, "lock", exc)
        except RotatorError as exc:
            return self._failed(outcome, outcome.step or "plan", exc)
        finally:
            self._unlock(spec, keeper, outcome)

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
                f"not due (next {_iso(self.next_due(spec, current))}){pending}",
            )
        return Outcome(spec.name, "dry-run", f"would rotate: {reason}{pending}")

    def _lock(self, spec: CredentialSpec, outcome: Outcome) -> LeaseKeeper | None:
        holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
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

    def _unlock(self, spec: CredentialSpec, keeper: LeaseKeeper | None, outcome: Outcome) -> None:
        if keeper is None:
            return
        faults.point("before:unlock")
        keeper.release()
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

    def _save(self, spec: CredentialSpec, journal: dict[str, Any]) -> None:
        self.store.write_journal(spec.name, journal)

    def _rotate(
        self,
        spec: CredentialSpec,
        journal: dict[str, Any],
        keeper: LeaseKeeper,
        outcome: Outcome,
        reason: str,
    ) -> None:
        issuer = self.issuers[spec.type]
        now = self.clock()
        rid = new_rotation_id(now)
        outcome.rotation_id, outcome.reason = rid, reason
        current = self.current(spec)
        previous = self._stage_version(spec, "previous")
        rotation = {
            "id": rid,
            "step": "intent",
            "target_name": issuer.target_name(spec, rid),
            "expected": current.id if current else None,
            "current_target": (current.meta.get("target_name") if current else None),
            "previous_target": (previous.meta.get("target_name") if previous else None),
            "started": now.isoformat(),
            "reason": reason,
        }
        with self._step(
            spec, "intent", outcome, keeper, target=rotation["target_name"], reason=reason
        ):
            journal["rotation"] = rotation
            self._save(spec, journal)
        prepare = getattr(issuer, "prepare", None)
        if prepare is not None:
            with self._step(spec, "mint", outcome, keeper, target=rotation["target_name"]):
                secret = prepare(spec, rid)
            self._stage(spec, secret, rotation, journal, keeper, outcome)
            self._apply(spec, issuer, secret.value, keeper, outcome)
        else:
            with self._step(spec, "mint", outcome, keeper, target=rotation["target_name"]):
                secret = issuer.mint(spec, rid)
            self._stage(spec, secret, rotation, journal, keeper, outcome)
        self._finish(spec, secret.value, rotation, journal, keeper, outcome)

    def _stage(
        self,
        spec: CredentialSpec,
        secret: Secret,
        rotation: dict[str, Any],
        journal: dict[str, Any],
        keeper: LeaseKeeper,
        outcome: Outcome,
    ) -> None:
        meta = {"issued": secret.issued.isoformat()}
        if secret.target_name:
            meta["target_name"] = secret.target_name
        if secret.expires:
            meta["expires"] = secret.expires.isoformat()
        try:
            with self._step(spec, "stage", outcome, keeper) as extra:
                pending = self.store.put_pending(
                    spec.path, secret.value, rotation_id=rotation["id"], meta=meta
                )
                extra["version"] = pending.id
                rotation["step"] = "staged"
                self._save(spec, journal)
        except RotatorError as exc:
            # The value never reached the store: it must not survive at the target either.
            self._abandon(spec, rotation, journal, outcome, exc, revoke=True)
            raise RotationError(
                str(exc), secret=spec.name, step="stage", rotation_id=rotation["id"]
            ) from exc

    def _apply(
        self,
        spec: CredentialSpec,
        issuer: Issuer,
        value: dict[str, Any],
        keeper: LeaseKeeper,
        outcome: Outcome,
    ) -> None:
        with self._step(spec, "apply", outcome, keeper):
            issuer.apply(spec, value)  # type: ignore[attr-defined]

    def _finish(
        self,
        spec: CredentialSpec,
        value: dict[str, Any],
        rotation: dict[str, Any],
        journal: dict[str, Any],
        keeper: LeaseKeeper,
        outcome: Outcome,
    ) -> None:
        """verify -> promote -> push -> clear, from a staged value."""
        issuer = self.issuers[spec.type]
        rid = rotation["id"]
        try:
            with self._step(spec, "verify", outcome, keeper):
                issuer.verify(spec, value)
        except TargetError as exc:
            self._undo_unproven(spec, issuer, rotation, journal, outcome, exc)
            raise RotationError(
                f"the new credential did not work at the target ({exc}); the current one was kept",
                secret=spec.name,
                step="verify",
                rotation_id=rid,
            ) from exc
        try:
            with self._step(spec, "promote", outcome, keeper) as extra:
                promoted = self.store.promote(
                    spec.path, rotation_id=rid, expected=rotation["expected"]
                )
                extra["version"] = promoted.id
                outcome.version = promoted.id
                self._schedule_retirement(spec, rotation, journal)
                rotation["step"] = "promoted"
                self._save(spec, journal)
        except Conflict as exc:
            self._undo_unproven(spec, issuer, rotation, journal, outcome, exc)
            raise RotationError(
                f"current changed while rotating ({exc}); nothing was promoted",
                secret=spec.name,
                step="promote",
                rotation_id=rid,
            ) from exc
        outcome.result = "rotated"
        self._push(spec, value, keeper, outcome)
        if not outcome.warnings:
            journal.pop("rotation", None)
            self._save(spec, journal)
        self._retire(spec, journal, outcome)

    def _schedule_retirement(
        self, spec: CredentialSpec, rotation: dict[str, Any], journal: dict[str, Any]
    ) -> None:
        """The old current keeps working for the grace period; the one it pushed out of
        ``previous`` is revoked at once (at most two of ours alive at the target)."""
        now = self.clock()
        entries = {e["target_name"]: e for e in journal.get("retire") or []}
        pushed_out = rotation.get("previous_target")
        if pushed_out:
            entries[pushed_out] = {
                "target_name": pushed_out,
                "not_before": now.isoformat(),
                "why": "pushed out of previous",
            }
        replaced = rotation.get("current_target")
        if replaced and replaced not in entries:
            entries[replaced] = {
                "target_name": replaced,
                "why": "grace period over",
                "not_before": (now + spec.grace).isoformat(),
            }
        journal["retire"] = list(entries.values())

    def _push(
        self, spec: CredentialSpec, value: dict[str, Any], keeper: LeaseKeeper, outcome: Outcome
    ) -> None:
        if not spec.push:
            return
        attempts = self.config.engine.push_attempts
        for target in spec.push:
            where = f"{target.teamcity_project or target.teamcity_build_type}/{target.parameter}"
            try:
                with self._step(spec, "push", outcome, keeper, target=where):
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
            except (RotatorError, KeyError) as exc:
                outcome.warnings.append(f"push to {where} failed: {exc}")

    def _undo_unproven(
        self,
        spec: CredentialSpec,
        issuer: Issuer,
        rotation: dict[str, Any],
        journal: dict[str, Any],
        outcome: Outcome,
        error: BaseException,
    ) -> None:
        """A value that failed verification or promotion: drop it, revoke it, keep current."""
        with contextlib.suppress(RotatorError):
            self.store.discard_pending(spec.path, rotation_id=rotation["id"])
        restore = getattr(issuer, "restore", None)
        current = self.current(spec)
        if restore is not None and current is not None:
            with contextlib.suppress(RotatorError):
                restore(spec, current.value)  # put the stored password back at the target
        self._abandon(spec, rotation, journal, outcome, error, revoke=True)

    def _abandon(
        self,
        spec: CredentialSpec,
        rotation: dict[str, Any],
        journal: dict[str, Any],
        outcome: Outcome,
        error: BaseException | None,
        *,
        revoke: bool,
    ) -> None:
        name = rotation.get("target_name")
        if revoke and name:
            try:
                self.issuers[spec.type].revoke(spec, name)
                outcome.revoked.append(name)
                self.audit.event(
                    spec.name,
                    "revoke",
                    "ok",
                    rotation_id=rotation["id"],
                    target=name,
                    why="abandoned rotation",
                )
            except RotatorError as exc:
                # Not revoked now: keep it on the retire list so a later run does it.
                journal.setdefault("retire", []).append(
                    {
                        "target_name": name,
                        "not_before": self.clock().isoformat(),
                        "why": "abandoned",
                    }
                )
                self.audit.event(
                    spec.name,
                    "revoke",
                    "failed",
                    rotation_id=rotation["id"],
                    target=name,
                    error=exc,
                )
        journal.pop("rotation", None)
        with contextlib.suppress(RotatorError):
            self._save(spec, journal)

    def _resume(
        self, spec: CredentialSpec, journal: dict[str, Any], keeper: LeaseKeeper, outcome: Outcome
    ) -> None:
        """Finish what an interrupted run started, judging by what the store actually holds."""
        rotation = journal["rotation"]
        rid = rotation["id"]
        outcome.rotation_id, outcome.resumed = rid, rotation.get("step")
        self.audit.event(
            spec.name, "resume", "started", rotation_id=rid, found=rotation.get("step")
        )
        current = self.current(spec)
        if current is not None and current.meta.get("rotation_id") == rid:
            outcome.version = current.id
            if rotation.get("step") != "promoted":
                self._schedule_retirement(spec, rotation, journal)
                rotation["step"] = "promoted"
                self._save(spec, journal)
            outcome.result, outcome.reason = "rotated", "finished an interrupted rotation"
            self._push(spec, current.value, keeper, outcome)
            if not outcome.warnings:
                journal.pop("rotation", None)
                self._save(spec, journal)
            return
        pending = self._stage_version(spec, "pending")
        if pending is not None and pending.meta.get("rotation_id") == rid:
            outcome.reason = "finished an interrupted rotation"
            issuer = self.issuers[spec.type]
            try:
                if getattr(issuer, "prepare", None) is not None:
                    self._apply(spec, issuer, pending.value, keeper, outcome)
                self._finish(spec, pending.value, rotation, journal, keeper, outcome)
            except RotationError as exc:
                self._failed(outcome, exc.step, exc)
            return
        # Nothing reached the store: whatever was minted is an orphan. Revoke it, start over.
        self._abandon(spec, rotation, journal, outcome, None, revoke=True)
        self.audit.event(
            spec.name, "resume", "abandoned", rotation_id=rid, target=rotation.get("target_name")
        )
        outcome.rotation_id = None

    def _retire(self, spec: CredentialSpec, journal: dict[str, Any], outcome: Outcome) -> None:
        entries = journal.get("retire") or []
        if not entries:
            return
        now = self.clock()
        keep = []
        for entry in entries:
            if datetime.fromisoformat(entry["not_before"]) > now:
                keep.append(entry)
                continue
            try:
                with self._step(
                    spec, "retire", outcome, target=entry["target_name"], why=entry.get("why")
                ):
                    self.issuers[spec.type].revoke(spec, entry["target_name"])
                outcome.revoked.append(entry["target_name"])
            except TargetError as exc:
                keep.append(entry)
                outcome.warnings.append(f"could not revoke {entry['target_name']}: {exc}")
            except RotatorError:
                continue  # not ours to revoke (ForeignCredential): drop it, the audit says why
        if keep != entries:
            journal["retire"] = keep
            self._save(spec, journal)

    def _sweep_orphans(
        self, spec: CredentialSpec, journal: dict[str, Any], outcome: Outcome
    ) -> None:
        """Revoke credentials of ours at the target that the store knows nothing about (e.g. a
        token minted by a run that died before its answer arrived)."""
        issuer = self.issuers[spec.type]
        try:
            issued = issuer.list_issued(spec)
        except RotatorError as exc:
            outcome.warnings.append(f"could not list issued credentials: {exc}")
            return
        if not issued:
            return
        known = {e["target_name"] for e in journal.get("retire") or []}
        if journal.get("rotation"):
            known.add(journal["rotation"].get("target_name"))
        for stage in ("current", "previous", "pending"):
            version = self._stage_version(spec, stage)
            if version is not None:
                known.add(version.meta.get("target_name"))
        prefix = name_prefix(spec)
        for item in issued:
            if item.name in known or not item.name.startswith(prefix):
                continue
            with (
                contextlib.suppress(TargetError),
                self._step(spec, "retire", outcome, target=item.name, why="orphan"),
            ):
                issuer.revoke(spec, item.name)
                outcome.revoked.append(item.name)

    def _stage_version(self, spec: CredentialSpec, stage: str) -> Version | None:
        try:
            return self.store.read(spec.path, stage)
        except NotFound:
            return None

    def _failed(self, outcome: Outcome, step: str | None, exc: BaseException) -> Outcome:
        outcome.result = "failed" if not isinstance(exc, LockHeld) else "locked"
        outcome.bad_input = isinstance(exc, ConfigError)
        outcome.step = step
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome

    # -- operator commands ---------------------------------------------------------------
    def rollback(self, spec: CredentialSpec) -> Outcome:
        """Make ``previous`` current again, under the lock, and push it to the sinks.

        The restored credential must still be alive at the target, so its pending retirement is
        cancelled; the one rolled away from becomes ``previous`` and gets its own grace period.
        """
        outcome = Outcome(spec.name, "rolled-back")
        keeper = self._lock(spec, outcome)
        if keeper is None:
            return outcome
        try:
            current = self.current(spec)
            previous = self._stage_version(spec, "previous")
            if current is None or previous is None:
                raise NotFound(f"{spec.name!r} has no previous version to roll back to")
            journal = self.store.read_journal(spec.name) or {}
            if journal.get("rotation"):
                raise RotatorError(
                    f"{spec.name!r} has an interrupted rotation; run 'rotator rotate "
                    f"{spec.name}' to finish it before rolling back"
                )
            restored_name = previous.meta.get("target_name")
            if restored_name and restored_name not in self._alive(spec):
                raise RotatorError(
                    f"the previous credential {restored_name!r} was already revoked at the "
                    "target; rolling back to it would break consumers"
                )
            with self._step(spec, "promote", outcome, keeper, why="rollback") as extra:
                restored = self.store.rollback(spec.path, expected=current.id)
                extra["version"] = restored.id
                outcome.version = restored.id
                retire = [
                    e for e in journal.get("retire") or [] if e["target_name"] != restored_name
                ]
                away = current.meta.get("target_name")
                if away:
                    retire.append(
                        {
                            "target_name": away,
                            "why": "rolled back",
                            "not_before": (self.clock() + spec.grace).isoformat(),
                        }
                    )
                journal["retire"] = retire
                self._save(spec, journal)
            self._push(spec, restored.value, keeper, outcome)
            return outcome
        except RotatorError as exc:
            return self._failed(outcome, outcome.step or "rollback", exc)
        finally:
            self._unlock(spec, keeper, outcome)

    def _alive(self, spec: CredentialSpec) -> set[str]:
        try:
            return {i.name for i in self.issuers[spec.type].list_issued(spec)}
        except RotatorError:
            return set()

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
            return self._failed(outcome, "verify", exc)
        outcome.version = current.id
        return outcome

    # -- many credentials ----------------------------------------------------------------
    def rotate_all(
        self,
        specs: Sequence[CredentialSpec],
        *,
        force: bool = False,
        dry_run: bool = False,
        parallel: int | None = None,
        progress: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Rotate ``specs`` with a bounded pool; a ``login_from`` credential goes first."""
        results: dict[str, Outcome] = {}
        workers = max(1, parallel or self.config.engine.parallel)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rotate") as pool:
            for wave in waves(specs):
                futures = {s.name: pool.submit(self._safe_rotate, s, force, dry_run) for s in wave}
                for name, future in futures.items():
                    results[name] = future.result()
                    if progress is not None:
                        progress(results[name])
        return [results[s.name] for s in specs]

    def _safe_rotate(self, spec: CredentialSpec, force: bool, dry_run: bool) -> Outcome:
        try:
            return self.rotate_one(spec, force=force, dry_run=dry_run)
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


def _meta_time(version: Version, key: str) -> datetime | None:
    raw = version.meta.get(key)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "now"
