"""What needs a person's attention about one credential right after a pass, read from the store.

Both the metrics (``rotator.metrics``: what Prometheus alerts on) and the notifications
(``rotator.followup``: what is sent to Slack and friends) ask the same questions, so they read
the answers here and cannot drift apart:

- expiring: the current value expires within its lead time. The engine rotates a credential
  the moment it is that close, so after a pass this only holds when the rotation did not
  succeed (failed, locked, refused by ``max_alive``);
- retirements overdue: a retire entry whose ``not_before`` is more than ``OVERDUE_AFTER`` past
  (each pass retires what is due, so one that old keeps failing or keeps being skipped);
- lock held: for how long this process has seen the same lease (its token is unique per
  acquisition) on the credential. The lease record has no acquisition time, so a lock is timed
  from the first pass that saw it: a one-shot ``rotator rotate`` never sees a stuck lock, the
  daemon sees it one tick late at most.

Reads only: no lock is taken, nothing is written. One read per credential at most: the lock
document (lease and journal together), whose journal records current's dates; a credential the
pass just found not due costs none (the engine keeps what its idle check read).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rotator.engine import Engine
    from rotator.spec import CredentialSpec

OVERDUE_AFTER = timedelta(minutes=15)
"""A retirement this far past its time is overdue (one missed pass is not)."""
LOCK_STUCK_AFTER = timedelta(minutes=5)
"""A rotation takes seconds (the lease is at most 30 s, renewed while work goes on): a lock held
this long belongs to a holder that is alive but not getting anywhere."""


@dataclass(frozen=True)
class Health:
    credential: str
    issued: datetime | None
    expires: datetime | None
    lead: timedelta | None
    next_due: datetime | None
    retirements_overdue: int
    lock_holder: str | None
    lock_held: timedelta | None
    """Since this process first saw the lease now held; None when nobody holds it."""

    def expiring(self, now: datetime) -> bool:
        return (
            self.expires is not None and self.lead is not None and self.expires - now <= self.lead
        )

    @property
    def lock_stuck(self) -> bool:
        return self.lock_held is not None and self.lock_held >= LOCK_STUCK_AFTER


class HealthReader:
    """Reads ``Health``; keeps the lease tokens it has seen (and when) between calls."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def read(self, engine: Engine, spec: CredentialSpec, now: datetime) -> Health:
        from rotator.engine import _lead
        from rotator.journal import parse_time as _time
        from rotator.journal import recorded_current

        seen = engine.idle.get(spec.name)
        lease, read = seen if seen is not None else engine.store.read_lock(spec.name)
        journal = read or {}
        current = recorded_current(journal.get("current")) or engine.current(spec)
        issued = expires = lead = None
        if current is not None:
            issued, expires = current.issued, current.expires
            if expires is not None:
                lead = _lead(spec, issued, expires)
        overdue = sum(
            _time(e.get("not_before")) < now - OVERDUE_AFTER for e in journal.get("retire") or []
        )
        held = None
        with self._lock:
            if lease is None:
                self._seen.pop(spec.name, None)
            else:
                token, since = self._seen.get(spec.name, (None, now))
                if token != lease.token:
                    since = now
                self._seen[spec.name] = (lease.token, since)
                held = now - since
        return Health(
            spec.name,
            issued,
            expires,
            lead,
            engine.next_due(spec, current),
            overdue,
            lease.holder if lease else None,
            held,
        )
