"""What can go wrong between Airflow and TeamCity, as one tree::

    TeamCityError                      (an AirflowException: a task that raises it fails)
     +-- TeamCityConfigError           (also ValueError) bad connection or arguments; never retried
     +-- TeamCityRequestError          TeamCity answered with an error status
     |    +-- TeamCityAuthError        401 (after one fresh read of the connection) or 403
     |    +-- TeamCityNotFound         404, e.g. an unknown build type or build id
     +-- TeamCityBadResponse           a 2xx that is not TeamCity's JSON (an SSO login page)
     +-- TeamCityUnreachable           connection errors, timeouts, 429 or 5xx after the retries
     +-- TeamCityOutcomeUnknown        a POST that may have queued a build, and nothing proves
                                       whether it did
     +-- TeamCityBuildFailed           the build finished with FAILURE, was canceled or timed out

Messages name the URL (never with credentials), the status and TeamCity's own text, and never
the token: TeamCity does not echo it, and nothing here puts it into a message.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class TeamCityError(AirflowException):
    """Anything that went wrong talking to TeamCity."""


class TeamCityConfigError(TeamCityError, ValueError):
    """The connection or the task's arguments cannot work; retrying will not help."""


class TeamCityRequestError(TeamCityError):
    """TeamCity answered ``status`` with ``text`` (its ``Details:`` line, or the body)."""

    def __init__(self, method: str, url: str, status: int, text: str) -> None:
        self.method, self.url, self.status, self.text = method, url, status, text
        super().__init__(f"TeamCity answered {status} to {method} {url}: {text}")


class TeamCityAuthError(TeamCityRequestError):
    """401 (the token is missing, expired or revoked, even after re-reading it) or 403."""


class TeamCityNotFound(TeamCityRequestError):
    """404: TeamCity does not know the entity, or the token's user may not see it."""


class TeamCityBadResponse(TeamCityError):
    """A success status with a body that is not TeamCity's JSON."""


class TeamCityUnreachable(TeamCityError):
    """Connection errors, timeouts, 429 or 5xx, still there after the last retry."""


class TeamCityOutcomeUnknown(TeamCityError):
    """A request that changes state failed in a way that leaves its effect unknown."""


class TeamCityBuildFailed(TeamCityError):
    """The build ended without success: failed, canceled, failed to start, or timed out."""

    def __init__(self, message: str, build_id: int | None = None) -> None:
        self.build_id = build_id
        super().__init__(message)
