"""Rotator's exceptions and exit codes: the tree, drawn here and nowhere else.

::

    RotatorError                            raised on purpose, never with a secret   exit 1
     +-- ConfigError (also ValueError)      bad input; nothing was changed           exit 2
     +-- LockHeld                           another rotator holds the lease          exit 3
     +-- Overtaken                          another rotator changed the journal between this
     |                                      run's plan and its intent; nothing done  exit 3
     +-- LeaseLost                          our lease lapsed and was taken while we worked
     +-- Unavailable                        the other side did not answer: retry later
     |    +-- StoreUnavailable              (also StoreError) connection, timeout, 5xx
     |    +-- TargetUnavailable             (also TargetError) connection, timeout, 5xx, retried
     |    +-- JwksUnavailable               rotator.identity.jwks: the issuer's keys are stale
     |    |                                 and cannot be fetched again
     |    +-- Unverifiable                  rotator.identity.verify: so no token verifies (503)
     +-- StoreError                         the secret store failed or refused us
     |    +-- NotFound (also KeyError)      nothing at that path / stage / version
     |    +-- Conflict                      compare-and-set lost: someone else wrote first
     |    +-- CorruptDocument               a document we cannot parse, or one we did not write
     |    +-- AccessDenied                  the store authenticated us and said no
     |    +-- StoreUnavailable              (also Unavailable)
     +-- TargetError                        TeamCity or Airflow failed or refused us
     |    +-- TargetUnavailable             (also Unavailable)
     |    +-- TargetAuthError               401: our bootstrap credential is missing/expired/revoked
     |    +-- TargetDenied                  403: authenticated but not allowed
     |    +-- TargetNotFound                404
     |    +-- TargetMalformed               2xx whose body is not what the API promises (an HTML
     |    |                                 login page, truncated JSON, a missing field, a bad date)
     |    +-- AssetUnknown                  rotator.announce: no DAG uses the asset
     +-- Refused                            Rotator said no: it would be unsafe; nothing changed
     |    +-- ForeignCredential             rotator.issuers: revoke a credential we did not mint
     |    +-- RefusedPush                   rotator.sinks.teamcity_parameters: a secret into a
     |                                      non-password parameter, or no project to push to
     +-- RotationError                      one credential's rotation failed; carries secret, step
     +-- Rejected                           rotator.identity.verify: the token proves nothing (401)
     +-- NotifyError                        rotator.notify.delivery: a notification was not sent
     +-- ServerStartError                   rotator.servers.process: a local server did not start
     +-- AirflowError (also RuntimeError)   rotator.servers.airflow: an Airflow CLI command failed

The root and the store classes are defined in ``backends.errors`` (the stores may not import
``rotator``); a class drawn with a module name is defined there and importable from there.
Outside the tree on purpose: ``rotator.faults.InjectedFault`` (a ``BaseException``, so no
handler catches a simulated crash), the Airflow provider's ``TeamCityError`` tree (an
``AirflowException``, drawn in ``rotator.provider.teamcity.errors``) and the TeamCity
simulator's ``HttpError`` answers (``rotator.sim``; the simulator stands in for TeamCity).

Exit codes (``ExitCode``) are mapped here only: ``exit_code_for`` maps an exception, and
``worst`` makes one process's code of several (one per credential).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

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
    Unavailable,
)


class ExitCode(IntEnum):
    """What a ``rotator`` process's exit status tells the script, unit or DAG that ran it.

    ====  ===========  ==========================================================================
    0     OK           success, or nothing was due
    1     FAILED       a rotation, push or check failed (the current credential was left as it
                       was), ``rotator audit`` flagged something; any other exception
    2     BAD_INPUT    bad input (``ConfigError``): config, arguments, unknown credential names,
                       a missing bootstrap credential; nothing was changed
    3     LOCKED       another rotator holds the lock of a named credential (``LockHeld``),
                       or took it between this run's plan and its intent (``Overtaken``);
                       nothing was done for it
    130   INTERRUPTED  stopped by Ctrl-C (SIGINT)
    ====  ===========  ==========================================================================
    """

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    LOCKED = 3
    INTERRUPTED = 130


_WORST_FIRST = (ExitCode.BAD_INPUT, ExitCode.FAILED, ExitCode.LOCKED)
"""Bad input outranks a failure (fix the call first), and a failure a held lock (the holder is
doing the work, so "locked" alone is no failure)."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code of a command that ended with ``exc`` (any exception, ours or not)."""
    if isinstance(exc, ConfigError):
        return ExitCode.BAD_INPUT
    if isinstance(exc, LockHeld | Overtaken):
        return ExitCode.LOCKED
    return ExitCode.FAILED


def worst(codes: Iterable[int]) -> ExitCode:
    """One process's exit code for several results (one per credential): the worst wins."""
    seen = set(codes)
    return next((code for code in _WORST_FIRST if code in seen), ExitCode.OK)


class Overtaken(RotatorError):
    """A run that planned on the credential's journal found it changed by another run when it
    went to take the lease with its intent (``rotator.engine.LeaseKeeper``): nothing was taken
    or done, and the plan is void."""


class TargetError(RotatorError):
    """TeamCity or Airflow failed or refused a request. Never carries a token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TargetUnavailable(TargetError, Unavailable):
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


class Refused(RotatorError):
    """Rotator refused to act because acting would be unsafe; nothing was changed."""


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
    "ExitCode",
    "LeaseLost",
    "LockHeld",
    "NotFound",
    "Overtaken",
    "Refused",
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
    "Unavailable",
    "exit_code_for",
    "worst",
]
