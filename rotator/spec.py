"""What the validated configuration hands to issuers, sinks and the engine.

``rotator.config`` parses ``rotator.toml`` into these; everything downstream takes them and
never looks at raw TOML. None of them holds a secret value: bootstrap credentials are named by
``*_env`` / ``*_file`` keys and read when needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class PushTarget:
    """One sink destination: a TeamCity project or build-configuration parameter."""

    parameter: str
    teamcity_project: str | None = None
    teamcity_build_type: str | None = None
    field: str = "password"
    """Which field of the stored connection document is pushed."""
    settings_token: str | None = None
    """For a project whose settings live in VCS (``readOnlyUI``): the name behind the
    parameter's ``credentialsJSON:<name>`` reference, updated through the versioned-settings
    tokens endpoint instead of the read-only parameter."""


@dataclass(frozen=True)
class CredentialSpec:
    """One ``[[credentials]]`` entry."""

    name: str
    type: str  # "teamcity-token" | "airflow-password" | "airflow-token"
    conn_id: str | None = None
    user: str | None = None
    every: timedelta = timedelta(days=7)
    lifetime: timedelta | None = None
    grace: timedelta = timedelta(days=1)
    settle: timedelta = timedelta(minutes=15)
    """Never revoke a value that stopped being ``current`` less than this ago (consumers cache
    it); at most ``grace``. The config defaults it to ``min(15m, grace)``."""
    max_alive: int = 4
    """Rotator credentials alive at the target at once for this one, settling ones included."""
    verify_every: timedelta = timedelta(hours=1)
    """How often the daemon proves ``current`` still works at its target."""
    lead: timedelta | None = None
    """Rotate when the credential expires within this; default: a fifth of ``lifetime``."""
    permissions: tuple[dict[str, str], ...] = ()
    login_from: str | None = None
    push: tuple[PushTarget, ...] = ()
    path: str = ""
    """Store path of the consumer document: ``<connections_prefix>/<conn_id>`` by default."""
    options: dict[str, Any] = field(default_factory=dict)
    announce: bool = False
    """After a rotation, emit an Airflow asset event for ``Asset("rotator://<conn_id>")`` so
    that DAGs scheduled on it run (``rotator.announce``); needs ``conn_id`` and ``[airflow]``."""


NOTIFY_EVENTS = (
    "failed",
    "rotated",
    "expiring",
    "retire-overdue",
    "lock-stuck",
    "foreign-expiring",
)
"""What a ``[[notify]]`` table may subscribe to (``on = [...]``); see ``rotator.notify``."""


@dataclass(frozen=True)
class NotifySpec:
    """One ``[[notify]]`` table: where to send (an apprise URL, read from ``url_env`` or
    ``url_file`` at send time, never written in the file: apprise URLs carry tokens), which
    events, and optionally only for some credentials."""

    where: str
    """``notify[0]``: how messages name this target, since its URL is a secret."""
    on: tuple[str, ...]
    url_env: str | None = None
    url_file: str | None = None
    credentials: tuple[str, ...] = ()
    """Only these credentials (empty: all); ``foreign-expiring`` is about no credential and
    always passes."""


@dataclass(frozen=True)
class StandingAudit:
    """``[audit.teamcity]``: the daemon audits standing TeamCity tokens every ``every`` and
    notifies ``foreign-expiring`` (``rotator.standing``)."""

    every: timedelta | None = None
    """None: the daemon does not audit (``rotator audit teamcity`` still works)."""
    users: tuple[str, ...] = ()
    """Empty: the users of the config's teamcity-token credentials and the admin itself."""
    within: timedelta = timedelta(days=14)
    """A foreign token expiring within this is flagged."""


@dataclass(frozen=True)
class TeamCitySettings:
    """``[teamcity]``: where TeamCity is and how Rotator itself authenticates there."""

    url: str
    token_env: str = "TEAMCITY_TOKEN"  # noqa: S105 - the name of a variable, not a secret
    token_file: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout: float = 10.0
    retries: int = 3


@dataclass(frozen=True)
class AirflowSettings:
    """``[airflow]``: the Airflow API server and the admin login used for the users API."""

    url: str
    username_env: str = "AIRFLOW_ADMIN_USER"
    password_env: str = "AIRFLOW_ADMIN_PASSWORD"  # noqa: S105 - a variable name
    password_file: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout: float = 10.0
    retries: int = 3
