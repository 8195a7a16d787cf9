"""Triggered by a TeamCity build step: polls that build's status with the TeamCity token that
Rotator keeps fresh in the ``teamcity_default`` connection.

The connection comes from Airflow's secrets backend (Rotator's, or the official Vault / AWS
ones: the stored document is the same). It is an ``http`` connection whose ``host`` is the
TeamCity URL, ``login`` the TeamCity user and ``password`` the access token; this DAG turns it
into an ``Authorization: Bearer`` header. The connection is read on every poke, so a rotation
in the middle of a run is picked up without a restart.

Trigger it with ``conf = {"teamcity_build_id": "<id>"}`` (ops/teamcity/trigger-airflow-dag.sh
does that).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook, dag, get_current_context, task
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

CONN_ID = "teamcity_default"


def teamcity_build(build_id: str) -> dict:
    conn = BaseHook.get_connection(CONN_ID)
    # build_id comes from the DAG run's conf (anyone who may trigger the DAG writes it): encoded,
    # it stays one path segment, and cannot reach another endpoint or extend the locator
    response = requests.get(
        f"{conn.host.rstrip('/')}/app/rest/builds/id:{quote(str(build_id), safe='')}",
        headers={"Authorization": f"Bearer {conn.password}", "Accept": "application/json"},
        timeout=10,
    )
    if response.status_code == 401:
        raise AirflowFailException(
            f"TeamCity refused the token in connection {CONN_ID!r} (401): expired or revoked?"
        )
    response.raise_for_status()
    return response.json()


@dag(
    dag_id="teamcity_build_status",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["rotator", "teamcity"],
    doc_md=__doc__,
)
def teamcity_build_status() -> None:
    @task.sensor(poke_interval=2, timeout=600, mode="poke")
    def wait_for_build() -> PokeReturnValue:
        build_id = str(get_current_context()["dag_run"].conf["teamcity_build_id"])
        build = teamcity_build(build_id)
        done = build.get("state") == "finished"
        return PokeReturnValue(is_done=done, xcom_value=build if done else None)

    @task
    def report(build: dict) -> str:
        summary = f"TeamCity build {build['id']} ({build.get('number')}): {build.get('status')}"
        print(summary)
        if build.get("status") != "SUCCESS":
            raise AirflowFailException(summary)
        return summary

    report(wait_for_build())


teamcity_build_status()
