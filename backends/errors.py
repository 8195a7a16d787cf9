"""The root of Rotator's exception tree and the classes the stores raise.

They live in ``backends`` because the stores raise them and ``backends`` may not import
``rotator``; ``rotator.errors`` re-exports them, adds the rest, and draws the whole tree once in
its docstring (with the exit code each class maps to).

Messages name paths, stages and versions, never a secret value. SDK exceptions are
translated at the store's edge and kept as ``__cause__``.
"""

from __future__ import annotations

from datetime import datetime


class RotatorError(Exception):
    """Root of every error Rotator raises on purpose."""


class ConfigError(RotatorError, ValueError):
    """Bad input: a config file, a kwarg, a command-line argument. Nothing was changed."""


class StoreError(RotatorError):
    """The secret store failed or refused an operation."""


class NotFound(StoreError, KeyError):
    """Nothing stored at that path, stage or version."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a sentence.
        return str(self.args[0]) if self.args else "not found"


class Conflict(StoreError):
    """A compare-and-set write lost: the stored state is not what the caller expected."""


class CorruptDocument(StoreError):
    """A stored document cannot be parsed or was not written by Rotator; it is left untouched."""


class AccessDenied(StoreError):
    """The store authenticated us and refused the operation (Vault 403, AWS AccessDenied)."""


class Unavailable(RotatorError):
    """The other side (a store, a target, a key issuer) did not answer: worth a retry later.

    One class for a caller that retries on "unreachable", whichever side it was.
    """


class StoreUnavailable(StoreError, Unavailable):
    """The store could not be reached or answered 5xx/timeouts; safe to retry later."""


class LockHeld(RotatorError):
    """Another rotator holds the credential's lease."""

    def __init__(self, key: str, holder: str, expires: datetime) -> None:
        super().__init__(f"lock {key!r} is held by {holder} until {expires.isoformat()}")
        self.key = key
        self.holder = holder
        self.expires = expires


class LeaseLost(RotatorError):
    """Our lease is no longer ours (it lapsed and someone else took it)."""
