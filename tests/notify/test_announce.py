"""Asset events after a rotation, on a real Airflow 3.3 (the session's ``airflow_stack``:
api-server, scheduler, dag-processor, triggerer): a DAG scheduled on
``Asset("rotator://<conn_id>")`` runs after ``rotator rotate`` of a credential with
``announce = true``; an announcement that cannot be made is a warning (exit 1) and the
rotation stands."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.fixtures.airflow_stack import poll
from tests.fixtures.leaks import record_output, register_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CONFIG = """
[store]
kind = "file"
path = "{store}"

[teamcity]
url = "{teamcity}"
timeout = 2
retries = 0

[airflow]
url = "{airflow}"
timeout = 10

[[credentials]]
name = "poll"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "{conn_id}"
every = "7d"
lifetime = "10d"
announce = true
"""

CONSUMER = """
from datetime import datetime

from airflow.sdk import DAG, Asset, task

with DAG(
    "{dag_id}",
    schedule=[Asset("rotator://{conn_id}")],
    start_date=datetime(2025, 1, 1),
    catchup=False,
):
    @task
    def reconnect(**context):
        events = context["triggering_asset_events"][Asset("rotator://{conn_id}")]
        return events[-1].extra["rotation_id"]

    reconnect()
"""


def _rotate(tmp_path, stack, teamcity_sim, admin_token, conn_id):
    config = tmp_path / "rotator.toml"
    config.write_text(
        CONFIG.format(
            store=tmp_path / "store.db",
            teamcity=teamcity_sim.url,
            airflow=stack.url,
            conn_id=conn_id,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env |= {
        "TEAMCITY_TOKEN": admin_token,
        "AIRFLOW_ADMIN_USER": stack.admin[0],
        "AIRFLOW_ADMIN_PASSWORD": stack.admin[1],
    }
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "--config", str(config), "rotate", "poll", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    record_output("rotator rotate (announce) [stdout]", result.stdout)
    record_output("rotator rotate (announce) [stderr]", result.stderr)
    for user in teamcity_sim.state.users.values():
        for token in user.tokens.values():
            register_secret(token.value)
    return result


def test_a_dag_scheduled_on_the_asset_runs_after_a_rotation(
    airflow_stack, tmp_path, teamcity_sim, teamcity_admin_token
):
    stack = airflow_stack
    suffix = secrets.token_hex(3)
    conn_id, dag_id = f"tc_announce_{suffix}", f"rotator_consumer_{suffix}"
    stack.write_dag(f"{dag_id}.py", CONSUMER.format(dag_id=dag_id, conn_id=conn_id))
    stack.wait_dag(dag_id)
    assert stack.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).ok
    uri = f"rotator://{conn_id}"

    def listed() -> list:
        answer = stack.api("GET", "/api/v2/assets", params={"uri_prefix_pattern": uri})
        return answer.json()["assets"]

    # the scheduler activates the assets a parsed DAG references shortly after the parse
    [asset] = poll(f"Airflow to list {uri}", listed, timeout=60)

    result = _rotate(tmp_path, stack, teamcity_sim, teamcity_admin_token, conn_id)
    assert result.returncode == 0, result.stdout + result.stderr
    [outcome] = json.loads(result.stdout)["outcomes"]
    assert outcome["result"] == "rotated" and "warnings" not in outcome
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [announced] = [e for e in events if e["step"] == "announce"]
    assert announced["outcome"] == "ok" and announced["target"] == f"rotator://{conn_id}"

    runs = poll(
        f"a run of {dag_id}",
        lambda: stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns").json()["dag_runs"],
        timeout=90,
    )
    [run] = runs
    assert run["run_type"] == "asset_triggered"
    assert stack.wait_run(dag_id, run["dag_run_id"]) == "success"
    assert stack.xcom(dag_id, run["dag_run_id"], "reconnect") == outcome["rotation_id"]
    answer = stack.api("GET", "/api/v2/assets/events", params={"asset_id": asset["id"]})
    [event] = answer.json()["asset_events"]
    assert set(event["extra"]) == {"credential", "rotation_id", "version", "from_rest_api"}
    for token in teamcity_sim.state.users.values():
        for issued in token.tokens.values():
            assert issued.value not in json.dumps(event)


def test_an_asset_no_dag_uses_is_a_warning_and_the_rotation_stands(
    airflow_stack, tmp_path, teamcity_sim, teamcity_admin_token
):
    conn_id = f"tc_unused_{secrets.token_hex(3)}"
    result = _rotate(tmp_path, airflow_stack, teamcity_sim, teamcity_admin_token, conn_id)
    assert result.returncode == 1, result.stdout + result.stderr
    [outcome] = json.loads(result.stdout)["outcomes"]
    assert outcome["result"] == "rotated"
    [warning] = outcome["warnings"]
    assert warning.startswith("announce to Airflow failed (the rotation stands)")
    assert f"no DAG is scheduled on Asset('rotator://{conn_id}')" in warning
    tokens = teamcity_sim.state.find_user("airflow-bot").tokens  # the new token is alive
    assert any(name.endswith(outcome["rotation_id"]) for name in tokens)
