"""Faults the simulator can inject, for tests of retries, timeouts and partial failures.

Each armed fault hits the next ``n`` requests that match it (a path substring ``only``, a
``method``), in the order the faults were armed. What a fault does, and whether the request was
processed before it struck:

=========  ==========================================================  =================
action     what the client sees                                        request processed
=========  ==========================================================  =================
drop       the connection closes before any answer                     no
fail       an error status (``status``: 5xx, 401, ...) with a body     no
html       200 ``text/html``: an SSO login page instead of the API     no
slow       the answer, ``seconds`` late (a client timeout, if shorter) yes (after delay)
lose       the connection closes without an answer                     **yes**
truncate   200 with the JSON body cut in half (``Content-Length`` of   **yes**
           the cut body: a proxy that gave up, not a reset)
=========  ==========================================================  =================

``lose`` is the "applied, then the response is lost" case: a token was created (or deleted)
although the client saw a connection reset.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

ACTIONS = ("drop", "fail", "html", "slow", "lose", "truncate")
PROCESSED = frozenset({"slow", "lose", "truncate"})
"""Actions after which the request has been carried out at the server."""

LOGIN_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="UTF-8">'
    "<title>Log in to TeamCity &mdash; TeamCity</title></head>\n"
    '<body class="loginPage"><form action="/sso/login" method="post">'
    '<input type="text" name="username"><input type="password" name="password">'
    '<input type="submit" value="Log in"></form></body></html>\n'
)
"""What a TeamCity behind a single-sign-on proxy answers to an API call: 200, HTML."""


@dataclass(frozen=True)
class Fault:
    """One fault taken for one request."""

    action: str
    status: int = 503
    seconds: float = 0.0

    @property
    def processed(self) -> bool:
        return self.action in PROCESSED


@dataclass
class _Armed:
    fault: Fault
    count: int
    only: str | None
    method: str | None

    def matches(self, path: str, method: str | None) -> bool:
        if self.only is not None and self.only not in path:
            return False
        return self.method is None or method is None or self.method == method.upper()


@dataclass
class Faults:
    """Thread-safe fault switches. ``fail_next``/``drop_next``/... count down per request;
    ``only`` limits one to request paths containing that text, ``method`` to one HTTP method.
    ``delay`` (``latency``) slows every request."""

    delay: float = 0.0
    _armed: list[_Armed] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _model: object = field(default=None, repr=False)
    taken: dict[str, int] = field(default_factory=dict)
    """How many times each action struck since the simulator started."""
    _in_flight: int = field(default=0, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def latency(self, seconds: float) -> None:
        self.delay = max(0.0, float(seconds))

    def inject(
        self,
        action: str,
        n: int = 1,
        *,
        only: str | None = None,
        method: str | None = None,
        status: int = 503,
        seconds: float = 0.0,
    ) -> None:
        """Arm ``action`` for the next ``n`` matching requests."""
        if action not in ACTIONS:
            raise ValueError(f"unknown fault {action!r}; expected one of {', '.join(ACTIONS)}")
        if action == "fail" and not 400 <= int(status) <= 599:
            raise ValueError(f"a failing status must be 4xx or 5xx, not {status}")
        if action == "slow" and not float(seconds) > 0:
            raise ValueError("a slow fault needs seconds > 0")
        fault = Fault(action, int(status), max(0.0, float(seconds)))
        with self._lock:
            if action in ("fail", "drop"):
                # As before: a new fail_next/drop_next replaces the one still armed.
                self._armed = [a for a in self._armed if a.fault.action != action]
            if int(n) > 0:
                self._armed.append(_Armed(fault, int(n), only, method.upper() if method else None))

    def fail_next(
        self, n: int, status: int = 503, only: str | None = None, method: str | None = None
    ) -> None:
        self.inject("fail", n, only=only, method=method, status=status)

    def drop_next(self, n: int, only: str | None = None, method: str | None = None) -> None:
        """Close the connection before the request is read or processed."""
        self.inject("drop", n, only=only, method=method)

    def lose_next(self, n: int, only: str | None = None, method: str | None = None) -> None:
        """Process the request fully, then close the connection without an answer."""
        self.inject("lose", n, only=only, method=method)

    def html_next(self, n: int, only: str | None = None, method: str | None = None) -> None:
        """Answer 200 with an HTML login page, without processing the request."""
        self.inject("html", n, only=only, method=method)

    def truncate_next(self, n: int, only: str | None = None, method: str | None = None) -> None:
        """Process the request, answer 200 with half of its body."""
        self.inject("truncate", n, only=only, method=method)

    def slow_next(
        self, n: int, seconds: float, only: str | None = None, method: str | None = None
    ) -> None:
        """Wait ``seconds`` before processing and answering (a client timeout if shorter)."""
        self.inject("slow", n, only=only, method=method, seconds=seconds)

    def read_only_project(self, project_id: str, read_only: bool = True) -> None:
        """Mark a project's settings as kept in VCS (``readOnlyUI``)."""
        model = self._model
        assert model is not None
        model.projects[project_id].read_only_ui = read_only  # type: ignore[attr-defined]

    def clear(self) -> None:
        with self._lock:
            self.delay = 0.0
            self._armed = []

    @property
    def armed(self) -> int:
        """Requests still to be hit by an armed fault."""
        with self._lock:
            return sum(a.count for a in self._armed)

    def configure(self, data: dict[str, object]) -> None:
        """The control surface's ``POST /__sim/faults`` body: ``clear``, ``latency``,
        ``fail_next`` (+ ``status``), ``drop_next``, ``lose_next``, ``html_next``,
        ``truncate_next``, ``slow_next`` (+ ``seconds``), each with optional ``only`` and
        ``method``. Raises ``KeyError``/``TypeError``/``ValueError`` on a bad specification."""
        only = data.get("only")
        method = data.get("method")
        if only is not None and not isinstance(only, str):
            raise TypeError("only must be a string")
        if method is not None and not isinstance(method, str):
            raise TypeError("method must be a string")
        if data.get("clear"):
            self.clear()
        if "latency" in data:
            self.latency(float(data["latency"]))  # type: ignore[arg-type]
        for action in ACTIONS:
            key = f"{action}_next"
            if key in data:
                self.inject(
                    action,
                    int(data[key]),  # type: ignore[call-overload]
                    only=only,
                    method=method,
                    status=int(data.get("status", 503)),  # type: ignore[call-overload]
                    seconds=float(data.get("seconds", 0.0)),  # type: ignore[arg-type]
                )

    # -- requests in flight: a slow request is carried out after its client gave up ------
    def enter(self) -> None:
        with self._idle:
            self._in_flight += 1

    def leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight <= 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (a late ``slow`` one has been carried out);
        False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight <= 0, timeout)

    def take_fault(self, path: str, method: str | None = None) -> Fault | None:
        """The fault for this request, if one is armed for it (and count it down)."""
        with self._lock:
            for armed in self._armed:
                if armed.count > 0 and armed.matches(path, method):
                    armed.count -= 1
                    if armed.count == 0:
                        self._armed.remove(armed)
                    self.taken[armed.fault.action] = self.taken.get(armed.fault.action, 0) + 1
                    return armed.fault
            return None

    def take(self, path: str, method: str | None = None) -> str | None:
        """What to do with this request: an action name (``"drop"``, ``"fail"``...) or
        ``None``. Kept for callers of the first version; the handler uses ``take_fault``."""
        fault = self.take_fault(path, method)
        return fault.action if fault else None

    # -- the first version's counters, read by older tests -------------------------------
    def _count(self, action: str) -> int:
        with self._lock:
            return sum(a.count for a in self._armed if a.fault.action == action)

    @property
    def fail_count(self) -> int:
        return self._count("fail")

    @property
    def drop_count(self) -> int:
        return self._count("drop")

    @property
    def fail_status(self) -> int:
        with self._lock:
            for armed in self._armed:
                if armed.fault.action == "fail":
                    return armed.fault.status
        return 503
