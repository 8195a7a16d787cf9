"""``rotator run``: the daemon. Every tick (with jitter) it asks the store what is due and
rotates it, so a restart loses nothing and doubles nothing: the store, not this process,
remembers when each credential was rotated, and the store's lease keeps two daemons (two hosts)
off the same credential. SIGTERM/SIGINT stop it after the pass in progress.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import schedule

from rotator.engine import Engine, Outcome
from rotator.metrics import Metrics


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        *,
        tick: float = 60.0,
        jitter: float = 0.2,
        metrics: Metrics | None = None,
        report: Callable[[list[Outcome]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.report = report
        self.stop_event = threading.Event()
        self.passes = 0
        self.jobs = schedule.Scheduler()
        low = max(1, int(tick * (1 - jitter)))
        high = max(low, int(tick * (1 + jitter)))
        self.jobs.every(low).to(high).seconds.do(self.run_pass)

    def run_pass(self) -> list[Outcome]:
        specs = list(self.engine.config.credentials)
        outcomes = self.engine.rotate_all(specs)
        self.passes += 1
        if self.metrics is not None:
            for outcome in outcomes:
                self.metrics.record(outcome)
            self.metrics.refresh(self.engine, specs, datetime.now(UTC))
        if self.report is not None:
            self.report(outcomes)
        return outcomes

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def run_forever(self) -> int:
        self.run_pass()  # at start: whatever became due while we were down
        while not self.stop_event.is_set():
            idle = self.jobs.idle_seconds
            if self.stop_event.wait(timeout=max(0.0, idle if idle is not None else 1.0)):
                break
            self.jobs.run_pending()
        return 0
