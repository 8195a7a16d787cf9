"""``rotator run``: the daemon. Every tick (with jitter) it asks the store what is due and
rotates it, so a restart loses nothing and doubles nothing: the store, not this process,
remembers when each credential was rotated, and the store's lease keeps two daemons (two hosts)
off the same credential.

Stopping: SIGINT (Ctrl-C) and SIGTERM let the pass in progress finish (no rotation is cut in
the middle), then ``run_forever`` returns: 130 after SIGINT, as a shell expects of Ctrl-C, and
0 after SIGTERM, the ordinary way systemd and Kubernetes stop a service. A second Ctrl-C while
a rotation runs stops at once (exit 130); the journal lets the next run roll that rotation
forward, as after a crash.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import schedule

from rotator.engine import Engine, Outcome
from rotator.errors import ExitCode
from rotator.metrics import Metrics
from rotator.spec import CredentialSpec

After = Callable[..., None]
"""``Followup.after(specs, outcomes, watch=True)``: announce and notify around the engine."""


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        *,
        tick: float = 60.0,
        jitter: float = 0.2,
        metrics: Metrics | None = None,
        report: Callable[[list[Outcome]], None] | None = None,
        after: After | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.report = report
        self.after = after
        self.stop_event = threading.Event()
        self.stopped_by: int | None = None  # the signal that stopped us
        self.in_pass = False
        self.passes = 0
        self.jobs = schedule.Scheduler()
        low = max(1, int(tick * (1 - jitter)))
        high = max(low, int(tick * (1 + jitter)))
        self.jobs.every(low).to(high).seconds.do(self.run_pass)
        if metrics is not None:
            metrics.interval.set(high)

    def run_pass(self) -> list[Outcome]:
        specs = list(self.engine.config.credentials)
        self.in_pass = True
        try:
            outcomes = self.engine.run_pass(specs)
        finally:
            self.in_pass = False
        self.passes += 1
        if self.after is not None:  # before metrics and report: announce adds warnings
            self._follow_up(specs, outcomes)
        if self.metrics is not None:
            for outcome in outcomes:
                self.metrics.record(outcome)
            self.metrics.pass_finished(outcomes)
            self.metrics.refresh(self.engine, specs, datetime.now(UTC))
        if self.report is not None:
            self.report(outcomes)
        return outcomes

    def _follow_up(self, specs: list[CredentialSpec], outcomes: list[Outcome]) -> None:
        assert self.after is not None
        try:
            self.after(specs, outcomes, watch=True)
        except Exception as exc:  # what follows a pass never stops the daemon
            os.write(2, f"rotator: after the pass: {type(exc).__name__}\n".encode())

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # os.write, not print: the main thread may be inside a print to the same stream
        if self.stop_event.is_set():
            if signum == signal.SIGINT and self.in_pass:
                os.write(2, b"rotator: stopped at once; the next run finishes what was cut\n")
                os._exit(ExitCode.INTERRUPTED)  # no cleanup: a crash, which the journal survives
            return
        self.stopped_by = signum
        # Not ``stop_event.set()`` here: a handler runs in the main thread between two of its
        # bytecodes, possibly inside ``stop_event.wait`` while it holds the event's lock, and
        # that lock is not reentrant (the daemon then hung on Ctrl-C). Another thread takes it.
        threading.Thread(target=self.stop_event.set, name="rotator-stop", daemon=True).start()
        if self.in_pass:
            os.write(
                2, b"rotator: stopping once the rotations under way are done (Ctrl-C again: now)\n"
            )

    @property
    def exit_code(self) -> int:
        return ExitCode.INTERRUPTED if self.stopped_by == signal.SIGINT else ExitCode.OK

    def run_forever(self) -> int:
        """Pass after pass until a signal; returns the exit code (see the module docstring)."""
        self.run_pass()  # at start: whatever became due while we were down
        while not self.stop_event.is_set():
            idle = self.jobs.idle_seconds
            if self.stop_event.wait(timeout=max(0.0, idle if idle is not None else 1.0)):
                break
            self.jobs.run_pending()
        return self.exit_code
