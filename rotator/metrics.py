"""Prometheus metrics for ``rotator run --metrics-port``: what an on-call engineer alerts on.

- ``rotator_credential_age_seconds{credential}``: how old the current value is;
- ``rotator_credential_expiry_seconds{credential}``: seconds until it expires (if it does);
- ``rotator_last_success_timestamp_seconds{credential}``: last rotation that completed;
- ``rotator_rotation_failures_total{credential,step}``;
- ``rotator_step_seconds{step}``: latency of each protocol step.
"""

from __future__ import annotations

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

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe_step(self, credential: str, step: str, seconds: float) -> None:
        self.steps.labels(step).observe(seconds)

    def record(self, outcome: Outcome) -> None:
        if outcome.result == "failed":
            self.failures.labels(outcome.credential, outcome.step or "unknown").inc()
        elif outcome.result == "rotated":
            self.last_success.labels(outcome.credential).set_to_current_time()

    def refresh(self, engine: Engine, specs: list[CredentialSpec], now: datetime) -> None:
        from rotator.engine import _meta_time

        for spec in specs:
            current = engine.current(spec)
            if current is None:
                continue
            issued = _meta_time(current, "issued") or current.created
            self.age.labels(spec.name).set((now - issued).total_seconds())
            expires = _meta_time(current, "expires")
            if expires is not None:
                self.expiry.labels(spec.name).set((expires - now).total_seconds())
