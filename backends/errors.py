"""The one exception tree shared by the stores, the engine and the CLI.

It lives in ``backends`` because the stores raise it and ``backends`` may not import
``rotator``; ``rotator.errors`` re-exports it and adds the engine's own classes.

::

    RotatorError
     +-- ConfigError (also ValueError)          bad input: exit code 2
     +-- StoreError                            the secret store failed or refused us
     |    +-- NotFound (also KeyError)         nothing at that path / stage / version
     |    +-- Conflict                         compare-and-set lost: someone else wrote first
     |    +-- CorruptDocument                  a document we cannot parse, or one we did not write
     |    +-- AccessDenied                     the store authenticated us and said no
     |    +-- StoreUnavailable                 connection refused, timeout, 5xx: worth a retry
     +-- LockHeld                              another rotator holds the lease: exit code 3
     +-- LeaseLost                             our lease expired or was taken over while we worked

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


class StoreUnavailable(StoreError):
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
