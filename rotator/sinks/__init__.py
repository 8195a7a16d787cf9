"""Sinks push a promoted credential to a consumer. A sink failure is retried and reported;
it never undoes a promotion."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rotator.spec import PushTarget


@runtime_checkable
class Sink(Protocol):
    """Delivers one field of a promoted credential to where a consumer reads it."""

    def push(self, target: PushTarget, value: str) -> None:
        """Write ``value`` to ``target`` and check it landed as a secret; idempotent (pushing
        the same value again is harmless). A ``TargetError`` subclass when the target fails
        (the engine retries those); ``RefusedPush`` and nothing written when the push would
        expose the value or ``target`` cannot be written as configured. ``value`` never
        reaches a log or an exception message."""
        ...
