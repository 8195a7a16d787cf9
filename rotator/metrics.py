"""Prometheus metrics for ``rotator run --metrics-port``: what an on-call engineer alerts on.

- ``rotator_credential_age_seconds{credential}``: how old the current value is;
- ``rotator_credential_expiry_seconds{credential}``: seconds until it expires (if it does);
- ``rotator_last_success_timestamp_seconds{credential}``: last rotation that completed;
- ``rotator_rotation_failures_total{credential,step}``;
- ``rotator_step_seconds{step}``: latency of each protocol step;
- ``rotator_credential_lead_seconds{credential}``: its lead time (expiry below it: expiring);
- ``rotator_credential_failing{credential}``: 1 while the latest attempt failed;
- ``rotator_retirements_overdue{credential}``: retirements past their time (``rotator.health``);
- ``rotator_lock_held_seconds{credential}``: how long the lock has been seen held;
- ``rotator_last_pass_success_timestamp_seconds``, ``rotator_pass_interval_seconds``: the
  daemon's heartbeat (a pass with no failure) and its longest tick;
- ``rotator_notify_failures_total{event}``, ``rotator_notifications_total{event}``.

``ops/prometheus/rotator-alerts.yml`` alerts on these; ``ops/grafana/rotator-dashboard.json``
draws them (a test checks both use only names served here).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from rotator.engine import Engine, Outcome
    from rotator.spec import CredentialSpec


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.age = Gauge(
            "rotator_credential_age_seconds",
            "Age of the current value",
            ["credential"],
            registry=self.registry,
        )
        self.expiry = Gauge(
            "rotator_credential_expiry_seconds",
            "Seconds until the current value expires",
            ["credential"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "rotator_last_success_timestamp_seconds",
            "Last completed rotation",
            ["credential"],
            registry=self.registry,
        )
        self.failures = Counter(
            "rotator_rotation_failures",
            "Failed rotations",
            ["credential", "step"],
            registry=self.registry,
        )
        self.steps = Histogram(
            "rotator_step_seconds",
            "Latency of each protocol step",
            ["step"],
            registry=self.registry,
        )
        self._attention_gauges()
        self.pass_success = Gauge(
            "rotator_last_pass_success_timestamp_seconds",
            "Last daemon pass in which no credential failed (the start time until then)",
            registry=self.registry,
        )
        self.pass_success.set(time.time())
        self.interval = Gauge(
            "rotator_pass_interval_seconds",
            "Longest time between two daemon passes (tick plus jitter)",
            registry=self.registry,
        )
        self.notify_failures = Counter(
            "rotator_notify_failures",
            "Notifications given up after their retries",
            ["event"],
            registry=self.registry,
        )
        self.notified_ok = Counter(
            "rotator_notifications",
            "Notifications delivered",
            ["event"],
            registry=self.registry,
        )

    def _attention_gauges(self) -> None:
        """What ``rotator.health`` reads after each pass, per credential."""
        from rotator.health import HealthReader

        labels = ["credential"]
        self.health = HealthReader()
        self.lead = Gauge(
            "rotator_credential_lead_seconds",
            "Lead time: rotate when the expiry is this close",
            labels,
            registry=self.registry,
        )
        self.failing = Gauge(
            "rotator_credential_failing",
            "1 while the latest rotation attempt of the credential failed",
            labels,
            registry=self.registry,
        )
        self.overdue = Gauge(
            "rotator_retirements_overdue",
            "Retirements more than 15 minutes past their time",
            labels,
            registry=self.registry,
        )
        self.lock_held = Gauge(
            "rotator_lock_held_seconds",
            "How long the credential's lock has been seen held (0: free)",
            labels,
            registry=self.registry,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe_step(self, credential: str, step: str, seconds: float) -> None:
        self.steps.labels(step).observe(seconds)

    def record(self, outcome: Outcome) -> None:
        if outcome.result == "failed":
            self.failures.labels(outcome.credential, outcome.step or "unknown").inc()
        elif outcome.result == "rotated":
            self.last_success.labels(outcome.credential).set_to_current_time()
        if outcome.result != "locked":  # a lock held elsewhere says nothing about failing
            self.failing.labels(outcome.credential).set(outcome.result == "failed")

    def pass_finished(self, outcomes: Iterable[Outcome]) -> None:
        if all(o.result != "failed" for o in outcomes):
            self.pass_success.set_to_current_time()

    def watch_notifications(self, events: Iterable[str]) -> None:
        """Create the counters at 0, so that the first failure is an increase."""
        for event in events:
            self.notify_failures.labels(event)
            self.notified_ok.labels(event)

    def notified(self, event: str, ok: bool) -> None:
        (self.notified_ok if ok else self.notify_failures).labels(event).inc()

    def refresh(self, engine: Engine, specs: list[CredentialSpec], now: datetime) -> None:
        for spec in specs:
            health = self.health.read(engine, spec, now)
            self.overdue.labels(spec.name).set(health.retirements_overdue)
            held = health.lock_held.total_seconds() if health.lock_held is not None else 0
            self.lock_held.labels(spec.name).set(held)
            if health.issued is None:
                continue
            self.age.labels(spec.name).set((now - health.issued).total_seconds())
            if health.expires is not None:
                self.expiry.labels(spec.name).set((health.expires - now).total_seconds())
            if health.lead is not None:
                self.lead.labels(spec.name).set(health.lead.total_seconds())
