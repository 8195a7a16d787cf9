"""``rotator doctor``: is everything Rotator depends on reachable, allowed and on time?

Each check says what it looked at and, when it fails, what to do. No check changes anything:
the CLI hands it a read-only store, so it creates no store, key or directory either, and
notification URLs are parsed, never sent to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rotator.config import Config
from rotator.errors import RotatorError

MAX_SKEW_SECONDS = 60


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except RotatorError as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # a doctor reports, it does not crash
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def run_checks(config: Config, store: Callable[[], Any]) -> list[Check]:
    checks = [Check("config", True, f"{config.source}: {len(config.credentials)} credential(s)")]

    def store_probe() -> str:
        opened = store()
        check = getattr(opened, "check", None)
        if callable(check):  # the file store: where it is, its permissions, that the key fits
            return f"{config.store_kind} store: {check()}"
        opened.read_lease("rotator-doctor-probe")
        return f"{config.store_kind} store answers"

    checks.append(_run("store", store_probe))
    if config.teamcity is not None:
        checks.extend(_teamcity_checks(config))
    if config.airflow is not None:
        checks.extend(_airflow_checks(config))
    checks.extend(_notify_checks(config))
    return checks


def _notify_checks(config: Config) -> list[Check]:
    """Each ``[[notify]]`` URL is there and apprise parses it; nothing is sent (a doctor that
    pinged Slack on every run would train people to ignore Rotator's messages)."""
    if not config.notify:
        return []
    from rotator.notify import parse_check

    return [_run(t.where, lambda t=t: parse_check(t)) for t in config.notify]


def _skew(remote: datetime) -> str:
    skew = abs((datetime.now(UTC) - remote).total_seconds())
    if skew > MAX_SKEW_SECONDS:
        raise RotatorError(
            f"clock skew of {skew:.0f}s with the server: token expiry and grace periods would be "
            "off; fix NTP on this host or the server"
        )
    return f"clock skew {skew:.0f}s"


def _teamcity_checks(config: Config) -> list[Check]:
    from rotator.targets.teamcity import TeamCityClient, parse_tc_date

    settings = config.teamcity
    assert settings is not None
    holder: dict[str, Any] = {}

    def server() -> str:
        client = holder["client"] = TeamCityClient.from_settings(settings)
        info = client.server()
        remote = parse_tc_date(info.get("currentTime"))
        skew = _skew(remote) if remote else "no server time"
        return f"{settings.url}: TeamCity {info.get('version')}, {skew}"

    checks = [_run("teamcity", server)]
    if checks[0].ok:
        for spec in config.credentials:
            if spec.type == "teamcity-token" and spec.user:
                checks.append(
                    _run(
                        f"teamcity user {spec.user}",
                        lambda user=spec.user: (
                            f"{len(holder['client'].list_tokens(user))} token(s) of {user} visible"
                        ),
                    )
                )
    return checks


def _airflow_checks(config: Config) -> list[Check]:
    from rotator.targets.airflow_api import AirflowApi

    settings = config.airflow
    assert settings is not None

    def reach() -> str:
        api = AirflowApi(settings)
        version = api.version()
        api.admin_token()
        return f"{settings.url}: Airflow {version}, admin login from ${settings.username_env} works"

    return [_run("airflow", reach)]
