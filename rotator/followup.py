"""What happens after rotations, around the engine: announce, notify, watch.

``rotator rotate`` and the daemon (``rotator.scheduler``) both hand their outcomes to
``Followup.after``, the one after-rotation step, so the two cannot drift apart:

1. announce: a rotated credential with ``announce = true`` gets its Airflow asset event
   (``rotator.announce``); a failure is appended to the outcome's warnings (exit code 1, as
   for a sink that could not be reached) and written to the audit trail. The rotation stands;
2. notify ``failed`` and ``rotated`` (``rotator.notify``), after the announcement so that a
   rotated notice carries its warning;
3. with ``watch`` (the daemon): notify the lasting states ``rotator.health`` reads after a pass
   (``expiring``, ``retire-overdue``, ``lock-stuck``), each once until it changes or a day has
   passed, and run the standing-token audit every ``[audit.teamcity] every``
   (``foreign-expiring``).

Nothing here raises into the caller: a rotation is never failed or undone by what follows it.
Notifications are queued; only ``close`` waits for them, and at most its bound.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rotator.config import Config
from rotator.errors import RotatorError
from rotator.health import HealthReader
from rotator.notify import Notice, Notifier
from rotator.notify.message import from_outcome

FLUSH_BOUND = 10.0
"""Seconds a one-shot command waits for its notifications after printing its result."""


class Followup:
    def __init__(
        self,
        config: Config,
        engine: Any,
        *,
        notifier: Notifier | None = None,
        announcer: Any = None,
        teamcity: Any = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.notifier = notifier
        self.announcer = announcer
        self.teamcity = teamcity
        """A ``TeamCityClient`` for the scheduled standing-token audit (None: no audit)."""
        self.health = HealthReader()
        self._audited_at: float | None = None

    @classmethod
    def build(cls, config: Config, engine: Any, metrics: Any = None) -> Followup:
        notifier = None
        if config.notify:
            notifier = Notifier(
                config.notify,
                audit=engine.audit,
                on_result=metrics.notified if metrics is not None else None,
            )
            if metrics is not None:
                metrics.watch_notifications({e for t in config.notify for e in t.on})
        announcer = None
        if config.airflow is not None and any(s.announce for s in config.credentials):
            from rotator.announce import Announcer

            announcer = Announcer(config.airflow)
        return cls(config, engine, notifier=notifier, announcer=announcer)

    def after(self, specs: Sequence[Any], outcomes: Sequence[Any], *, watch: bool = False) -> None:
        by_name = {s.name: s for s in specs}
        for outcome in outcomes:
            spec = by_name.get(outcome.credential)
            if spec is None:
                continue
            if outcome.result == "rotated" and spec.announce:
                self._announce(spec, outcome)
            if self.notifier is not None:
                if outcome.result == "rotated":
                    self.notifier.clear(spec.name)
                # Only a failure or a rotation is told, and only then is next_due worth a read.
                told = outcome.result in ("failed", "rotated")
                notice = from_outcome(outcome, self._next_due(spec) if told else None)
                if notice is not None:
                    self.notifier.submit(notice)
        if watch and self.notifier is not None:
            now = datetime.now(UTC)
            for spec in specs:
                self._watch(spec, now)
            self._standing(now)

    def close(self, bound: float = FLUSH_BOUND) -> bool:
        """Wait for queued notifications, at most ``bound`` seconds; False if some were cut."""
        return self.notifier is None or self.notifier.flush(bound)

    # -- steps ---------------------------------------------------------------------------
    def _announce(self, spec: Any, outcome: Any) -> None:
        audit = self.engine.audit
        if self.announcer is None:  # config guarantees [airflow]; be safe
            return
        try:
            event_id = self.announcer.announce(spec, outcome.rotation_id, outcome.version)
        except RotatorError as exc:
            outcome.warnings.append(f"announce to Airflow failed (the rotation stands): {exc}")
            audit.event(spec.name, "announce", "failed", rotation_id=outcome.rotation_id, error=exc)
            return
        audit.event(
            spec.name,
            "announce",
            "ok",
            rotation_id=outcome.rotation_id,
            target=f"rotator://{spec.conn_id}",
            asset_event=event_id,
        )

    def _next_due(self, spec: Any) -> datetime | None:
        try:
            return self.engine.next_due(spec, self.engine.current(spec))
        except RotatorError:  # the store went away: the notice goes out without it
            return None

    def _watch(self, spec: Any, now: datetime) -> None:
        assert self.notifier is not None
        try:
            health = self.health.read(self.engine, spec, now)
        except RotatorError:
            return  # the store is down: the pass's own outcomes said so
        if health.expiring(now):
            assert health.expires is not None
            self.notifier.submit(
                Notice(
                    "expiring",
                    spec.name,
                    f"{spec.name} expires at {health.expires.isoformat(timespec='seconds')}, "
                    "within its lead time, and was not replaced",
                    next_due=health.next_due,
                    state=health.expires.isoformat(),
                )
            )
        if health.retirements_overdue:
            self.notifier.submit(
                Notice(
                    "retire-overdue",
                    spec.name,
                    f"{health.retirements_overdue} old credential(s) of {spec.name} are past "
                    "their revocation time and still alive",
                    state=str(health.retirements_overdue),
                )
            )
        if health.lock_stuck:
            assert health.lock_held is not None
            self.notifier.submit(
                Notice(
                    "lock-stuck",
                    spec.name,
                    f"the lock on {spec.name} has been held for "
                    f"{int(health.lock_held.total_seconds())}s by {health.lock_holder}",
                    state=str(health.lock_holder),
                )
            )

    def _standing(self, now: datetime) -> None:
        every = self.config.standing.every
        if every is None or self.config.teamcity is None:
            return
        due = (
            self._audited_at is None or time.monotonic() - self._audited_at >= every.total_seconds()
        )
        if not due:
            return
        self._audited_at = time.monotonic()
        from rotator import standing
        from rotator.targets.teamcity import TeamCityClient

        try:
            client = self.teamcity or TeamCityClient.from_settings(self.config.teamcity)
            users = standing.default_users(self.config, client)
            report = standing.audit(
                self.config, client, self.engine.store, users, self.config.standing.within, now
            )
        except RotatorError as exc:
            self.engine.audit.event("-", "standing-audit", "failed", error=exc)
            return
        assert self.notifier is not None
        flagged = report.flagged
        self.engine.audit.event(
            "-", "standing-audit", "ok", tokens=len(report.tokens), flagged=len(flagged)
        )
        if flagged:
            self.notifier.submit(standing_notice(report))


def standing_notice(report: Any) -> Notice:
    lines = tuple(
        f"{t.user}/{t.name}: "
        + ("never expires" if t.expires is None else f"expires {t.expires:%Y-%m-%d %H:%M}Z")
        for t in report.flagged
    )
    return Notice(
        "foreign-expiring",
        None,
        f"{len(lines)} standing TeamCity token(s) Rotator does not manage never expire or "
        "expire soon",
        details=lines,
        state="|".join(lines),
    )
