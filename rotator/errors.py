"""Rotator's exception tree: the stores' (``backends.errors``) plus the engine's own.

::

    RotatorError
     +-- ConfigError (also ValueError)   exit 2
     +-- StoreError -> NotFound, Conflict, CorruptDocument, AccessDenied, StoreUnavailable
     +-- LockHeld                        exit 3
     +-- LeaseLost
     +-- TargetError                     TeamCity or Airflow failed or refused us
     |    +-- TargetUnavailable          connection error, timeout, 5xx: retried, then raised
     |    +-- TargetAuthError            401: our bootstrap credential is missing/expired/revoked
     |    +-- TargetDenied               403: authenticated but not allowed
     |    +-- TargetNotFound             404
     |    +-- TargetMalformed            2xx whose body is not what the API promises (an HTML
     |                                   login page, truncated JSON, a missing field, a bad date)
     +-- RotationError                   one credential's rotation failed; carries secret, step

The CLI maps these classes to exit codes in one place (``rotator.cli``).
"""

from __future__ import annotations

from backends.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    CorruptDocument,
    LeaseLost,
    LockHeld,
    NotFound,
    RotatorError,
    StoreError,
    StoreUnavailable,
)


class TargetError(RotatorError):
    """TeamCity or Airflow failed or refused a request. Never carries a token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TargetUnavailable(TargetError):
    """The target could not be reached, timed out or answered 5xx (after retries)."""


class TargetAuthError(TargetError):
    """401: the credential we used is missing, expired or revoked."""


class TargetDenied(TargetError):
    """403: authenticated but not allowed."""


class TargetNotFound(TargetError):
    """404: the user, project, token or parameter does not exist (or is not visible)."""


class TargetMalformed(TargetError):
    """The target answered, but not what its API promises: an HTML page (an SSO login page in
    front of it), a truncated or non-JSON body, a JSON array where an object belongs, a missing
    required field, an unparsable date.

    Not retried: the same proxy or misconfiguration will answer the same way. For a call that
    changes something (a token ``POST``), the change may have happened all the same: the
    answer, not the request, was bad. The message names the target, method, path, status and
    content type, never the body. ``method``, ``path`` and ``content_type`` are kept when known.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        content_type: str | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.method = method
        self.path = path
        self.content_type = content_type


class RotationError(RotatorError):
    """One credential's rotation failed at ``step``; the current credential was left as is."""

    def __init__(self, message: str, *, secret: str, step: str, rotation_id: str | None = None):
        super().__init__(message)
        self.secret = secret
        self.step = step
        self.rotation_id = rotation_id


__all__ = [
    "AccessDenied",
    "ConfigError",
    "Conflict",
    "CorruptDocument",
    "LeaseLost",
    "LockHeld",
    "NotFound",
    "RotationError",
    "RotatorError",
    "StoreError",
    "StoreUnavailable",
    "TargetAuthError",
    "TargetDenied",
    "TargetError",
    "TargetMalformed",
    "TargetNotFound",
    "TargetUnavailable",
]
