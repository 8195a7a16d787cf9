"""A thin delegating proxy around a real store: store faults for the model, and a record of
every ``current`` the store ever had (for I2, a consumer's view).

One proxy stands for one rotator *process*: the engine that crashed (``InjectedFault``) is
dead, and ``kill()`` makes its proxy refuse everything from then on, so the lease keeper
thread it leaves behind lets the lease lapse, as after SIGKILL.

A ``StoreFault`` strikes the ``nth`` call (0-based) of one method, once:

- ``unavailable``: raises ``StoreUnavailable`` before delegating (nothing written);
- ``conflict``: raises ``Conflict`` before delegating (a lost compare-and-set);
- ``applied-unavailable`` / ``applied-conflict``: delegates (the write happened), then raises,
  like an SDK whose answer was lost, or that retried a call that had succeeded and got a
  conflict from the replay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.errors import Conflict, LeaseLost, StoreUnavailable

MODES = ("unavailable", "conflict", "applied-unavailable", "applied-conflict")
WRITES = (
    "put_pending",
    "promote",
    "write_journal",
    "discard_pending",
    "rollback",
    "acquire_lease",
    "release_lease",
    "clear_journal",
    "put_current",
)
READS = ("read", "read_journal", "read_lock", "get_document", "versions", "read_lease")
CAS = ("promote", "rollback", "put_current", "write_journal", "put_pending")
"""Calls for which a ``Conflict`` is a plausible answer."""
CURRENT_CHANGERS = ("promote", "rollback", "put_current")


@dataclass(frozen=True)
class StoreFault:
    method: str
    nth: int
    mode: str

    def __str__(self) -> str:
        return f"{self.mode} at {self.method}#{self.nth}"


class Dead(StoreUnavailable):
    """Every call of a crashed process's proxy."""


class FaultyStore:
    """Delegates every call to ``inner``; strikes ``fault`` once; tells ``on_current`` about
    each version that became ``current`` through it."""

    def __init__(
        self,
        inner: Any,
        fault: StoreFault | None = None,
        *,
        on_current: Callable[[str, Any], None] | None = None,
        on_lease: Callable[[str, str, Any], None] | None = None,
        on_pending: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._inner = inner
        self._fault = fault
        self._calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._dead = False
        self._on_current = on_current
        self._on_lease = on_lease
        self._on_pending = on_pending
        self.struck: StoreFault | None = None
        self.kind = inner.kind

    def kill(self) -> None:
        self._dead = True

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target) or name.startswith("_"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._dead:
                if name == "renew_lease":
                    raise LeaseLost("the process that held this lease is dead")
                raise Dead(f"store call {name} from a dead process")
            mode = self._strike(name)
            if mode == "unavailable":
                raise StoreUnavailable(f"injected: store unavailable at {name}")
            if mode == "conflict":
                raise Conflict(f"injected: conflict at {name}")
            result = target(*args, **kwargs)
            self._observe(name, args, kwargs, result)
            if mode == "applied-unavailable":
                raise StoreUnavailable(f"injected: {name} applied, then the answer was lost")
            if mode == "applied-conflict":
                raise Conflict(f"injected: {name} applied, then a replay conflicted")
            return result

        return call

    def _strike(self, name: str) -> str | None:
        with self._lock:
            n = self._calls.get(name, 0)
            self._calls[name] = n + 1
            fault = self._fault
            if (
                fault is not None
                and self.struck is None
                and fault.method == name
                and fault.nth == n
            ):
                self.struck = fault
                return fault.mode
        return None

    def _observe(self, name: str, args: tuple, kwargs: dict, result: Any) -> None:
        if name == "put_pending" and self._on_pending is not None:
            value = args[1] if len(args) > 1 else kwargs.get("value")
            if isinstance(value, dict):
                self._on_pending(value)
        if name in CURRENT_CHANGERS and self._on_current is not None:
            path = args[0] if args else kwargs.get("path")
            self._on_current(str(path), result)
        if name in ("acquire_lease", "release_lease") and self._on_lease is not None:
            lease = result if name == "acquire_lease" else (args[0] if args else None)
            self._on_lease(name, getattr(lease, "key", ""), lease)
        if name == "write_journal" and kwargs.get("release") and self._on_lease is not None:
            lease = kwargs.get("lease")  # a run's last journal write releases its lease
            self._on_lease("release_lease", getattr(lease, "key", ""), lease)
