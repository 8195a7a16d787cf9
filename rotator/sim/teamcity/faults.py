"""Faults the simulator can inject, for tests of retries, timeouts and partial failures."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Thread-safe fault switches. ``fail_next``/``drop_next`` count down per request;
    ``only`` limits them to request paths containing that text."""

    delay: float = 0.0
    fail_count: int = 0
    fail_status: int = 503
    drop_count: int = 0
    only: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _model: object = field(default=None, repr=False)

    def latency(self, seconds: float) -> None:
        self.delay = max(0.0, float(seconds))

    def fail_next(self, n: int, status: int = 503, only: str | None = None) -> None:
        with self._lock:
            self.fail_count, self.fail_status, self.only = int(n), int(status), only

    def drop_next(self, n: int, only: str | None = None) -> None:
        with self._lock:
            self.drop_count, self.only = int(n), only

    def read_only_project(self, project_id: str, read_only: bool = True) -> None:
        """Mark a project's settings as kept in VCS (``readOnlyUI``)."""
        model = self._model
        assert model is not None
        model.projects[project_id].read_only_ui = read_only  # type: ignore[attr-defined]

    def clear(self) -> None:
        with self._lock:
            self.delay, self.fail_count, self.drop_count, self.only = 0.0, 0, 0, None

    def take(self, path: str) -> str | None:
        """What to do with this request: ``"drop"``, ``"fail"`` or ``None``."""
        with self._lock:
            if self.only is not None and self.only not in path:
                return None
            if self.drop_count > 0:
                self.drop_count -= 1
                return "drop"
            if self.fail_count > 0:
                self.fail_count -= 1
                return "fail"
            return None
