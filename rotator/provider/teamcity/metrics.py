"""Event latency through Airflow's own metrics (``airflow.sdk.observability.stats``: StatsD or
OpenTelemetry, whatever the deployment configured), so it reaches the dashboards that exist.

- ``teamcity.build_event_latency`` (timer, ms, tags ``dag_id``, ``task_id``, ``build_type_id``,
  ``outcome``): from the build's ``finishDate`` at TeamCity to the moment Airflow noticed it.
  TeamCity's ``finishDate`` has whole seconds, so a value below 1000 ms is within its rounding.
- ``teamcity.dag_run_trigger_latency`` (timer, ms, tag ``dag_id``): from the moment a TeamCity
  build step sent the trigger (``conf.teamcity_sent_at``, written by
  ``ops/teamcity/trigger-airflow-dag.sh``) to the DAG run's start.

Clocks: both are differences between two hosts' clocks, which NTP keeps within milliseconds; a
negative value (a clock behind) is reported as 0.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

BUILD_EVENT_LATENCY = "teamcity.build_event_latency"
DAG_RUN_TRIGGER_LATENCY = "teamcity.dag_run_trigger_latency"


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        from datetime import UTC

        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _timing(name: str, start: datetime, end: datetime, tags: dict[str, str]) -> float:
    from airflow.sdk.observability import stats

    delta = max(end - start, timedelta(0))
    stats.timing(name, delta, tags=tags)
    return delta.total_seconds()


def build_event_latency(
    finish_date: Any,
    noticed_at: Any,
    *,
    dag_id: str,
    task_id: str,
    build_type_id: str | None,
    outcome: str,
) -> float | None:
    """Emit and return the seconds from ``finish_date`` to ``noticed_at`` (``None`` if unknown)."""
    start, end = _when(finish_date), _when(noticed_at)
    if start is None or end is None:
        return None
    tags = {
        "dag_id": dag_id,
        "task_id": task_id,
        "build_type_id": build_type_id or "",
        "outcome": outcome,
    }
    return _timing(BUILD_EVENT_LATENCY, start, end, tags)


def dag_run_trigger_latency(dag_run: Any) -> float | None:
    """Emit and return the seconds from ``conf.teamcity_sent_at`` to the run's start."""
    conf = getattr(dag_run, "conf", None) or {}
    sent, started = _when(conf.get("teamcity_sent_at")), _when(getattr(dag_run, "start_date", None))
    if sent is None or started is None:
        return None
    return _timing(DAG_RUN_TRIGGER_LATENCY, sent, started, {"dag_id": str(dag_run.dag_id)})
