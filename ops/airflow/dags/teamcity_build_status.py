"""Triggered by a TeamCity build step: waits for that build, then starts the follow-up build
and waits for it, with Rotator's TeamCity provider and the token Rotator keeps fresh.

- ``wait_for_build`` (``TeamCityBuildSensor``) waits for the build that triggered this run
  (``conf.teamcity_build_id``; ``ops/teamcity/trigger-airflow-dag.sh`` sends it) and fails with
  TeamCity's status text if that build failed.
- ``deploy`` (``TeamCityRunBuildOperator``) queues a build of ``params.follow_up_build_type``
  (default ``DataPipelines_Deploy``) with the upstream build id as ``env.UPSTREAM_BUILD_ID``,
  and waits for it. A retry waits on the build the first try queued instead of queueing a
  second one; the task's ``execution_timeout`` or marking it failed cancels the build.

Both wait in the triggerer (``deferrable=True``): a waiting run holds no worker slot, so run a
triggerer (``airflow triggerer``). Both read the ``teamcity_default`` connection, a ``teamcity``
or the ``http`` connection Rotator writes (host = TeamCity URL, password = token), from the
secrets backend on every poll; on a 401 the hook reads it again past every cache and retries
once, so a rotation in the middle of a wait is picked up, not failed.

The build id is checked before the run exists: Airflow validates ``params`` when the run is
triggered and answers 400 for anything but a positive number, so a hostile ``conf`` never reaches
TeamCity's build locator (the sensor refuses a non-number too). Polls every 5 s, which suits a
demo; the provider's default (10 s) is kinder to a busy TeamCity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag

from rotator.provider.teamcity.operators import TeamCityRunBuildOperator
from rotator.provider.teamcity.sensors import TeamCityBuildSensor

CONN_ID = "teamcity_default"
POLL_SECONDS = 5


@dag(
    dag_id="teamcity_build_status",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["rotator", "teamcity"],
    doc_md=__doc__,
    params={
        "teamcity_build_id": Param(
            type=["string", "integer"],
            pattern=r"^[1-9][0-9]{0,17}$",
            minimum=1,
            description="the TeamCity build that triggered this run (digits only)",
        ),
        "follow_up_build_type": Param(
            "DataPipelines_Deploy",
            type="string",
            pattern=r"^[A-Za-z0-9_]{1,225}$",
            description="the build configuration to start once that build succeeded",
        ),
    },
)
def teamcity_build_status() -> None:
    wait_for_build = TeamCityBuildSensor(
        task_id="wait_for_build",
        build_id="{{ params.teamcity_build_id }}",
        teamcity_conn_id=CONN_ID,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=2),
    )
    deploy = TeamCityRunBuildOperator(
        task_id="deploy",
        build_type_id="{{ params.follow_up_build_type }}",
        properties={"env.UPSTREAM_BUILD_ID": "{{ params.teamcity_build_id }}"},
        comment="started by Airflow run {{ run_id }}",
        teamcity_conn_id=CONN_ID,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        execution_timeout=timedelta(hours=1),
    )
    wait_for_build >> deploy


teamcity_build_status()
