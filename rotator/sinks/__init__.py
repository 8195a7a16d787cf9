"""Sinks push a promoted credential to a consumer. A sink failure is retried and reported;
it never undoes a promotion."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rotator.spec import PushTarget


@runtime_checkable
class Sink(Protocol):
    def push(self, target: PushTarget, value: str) -> None:
        """Write ``value`` to ``target``. Raises ``TargetError`` subclasses on failure."""
        ...
