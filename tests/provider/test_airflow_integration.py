"""The operator, sensor and trigger in a real Airflow 3.3 (API server, scheduler, DAG
processor, triggerer; LocalExecutor) against the TeamCity simulator, with the token read
through Rotator's secrets backend from its file store.

Builds are driven through ``sim.builds`` (hold, finish, cancel) and every wait polls a
condition with a deadline. Each test has its own conn id and DAG file.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.airflow_stack import poll
from tests.fixtures.leaks import record_output, register_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

HELD = "DataPipelines_Deploy"  # waits for the test to start/finish/cancel it
FAILING = "DataPipelines_IntegrationTests"  # FAILURE "Tests failed: 3 (1 new), passed: 120"

DAG_HEAD = """
from datetime import datetime, timedelta
from airflow.sdk import dag
from rotator.provider.teamcity.operators import TeamCityRunBuildOperator
from rotator.provider.teamcity.sensors import TeamCityBuildSensor
"""


def token_for_bot(sim, name: str) -> str:
    value = f"tc-{secrets.token_urlsafe(20)}"
    register_secret(value)
    sim.add_token("airflow-bot", name, value)
    return value


def connect(stack, sim, conn_id: str) -> str:
    token = token_for_bot(sim, f"{conn_id}-token")
    stack.put_connection(
        conn_id,
        {"conn_type": "teamcity", "host": sim.url, "login": "airflow-bot", "password": token},
    )
    return token


def dag_file(stack, dag_id: str, body: str) -> None:
    source = (
        DAG_HEAD
        + f"""
@dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def the_dag():
{body}
the_dag()
"""
    )
    stack.write_dag(f"{dag_id}.py", source)
    stack.wait_dag(dag_id)


def builds_of(sim, build_type: str, tag_prefix: str = "airflow-") -> list:
    return [b for b in sim.builds.all(build_type) if any(t.startswith(tag_prefix) for t in b.tags)]


def wait_for_build(sim, build_type: str, count: int = 1) -> list:
    return poll(
        f"{count} build(s) of {build_type} queued by Airflow",
        lambda: (found := builds_of(sim, build_type)) and len(found) >= count and found,
        timeout=90,
    )


def test_deferrable_run_succeeds_without_holding_a_worker_slot(airflow_stack, teamcity_sim):
    stack, sim = airflow_stack, teamcity_sim
    sim.builds.hold(HELD)
    connect(stack, sim, "tc_ok")
    dag_file(
        stack,
        "tc_ok",
        """
    TeamCityRunBuildOperator(task_id="run", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_ok", deferrable=True, poll_interval=1, branch="main",
        properties={"env.RUN": "{{ run_id }}"})
""",
    )
    run_id = stack.trigger("tc_ok")
    (build,) = wait_for_build(sim, HELD)
    ti = stack.wait_task("tc_ok", run_id, "run", {"deferred"}, timeout=90)
    assert ti["state"] == "deferred"  # no worker slot: the triggerer polls
    stack.wait_trigger_running("tc_ok", run_id, "run")
    stack.wait_deferral_settled("tc_ok", "run")
    assert stack.xcom("tc_ok", run_id, "run", "build_id") == build.id
    sim.builds.start(build.id)
    sim.builds.finish(build.id, "SUCCESS", "Deployed")
    assert stack.wait_run("tc_ok", run_id) == "success"
    assert stack.xcom("tc_ok", run_id, "run") == build.id
    url = stack.xcom("tc_ok", run_id, "run", "build_url")
    assert url.startswith(sim.url) and url.endswith(f"/{build.id}"), url
    links = stack.api("GET", f"/api/v2/dags/tc_ok/dagRuns/{run_id}/taskInstances/run/links").json()
    assert links["extra_links"].get("TeamCity build") == url, links
    assert len(builds_of(sim, HELD)) == 1
    # the event latency reached Airflow's StatsD
    lines = poll(
        "the build event latency metric",
        lambda: stack.statsd.matching("teamcity.build_event_latency"),
        timeout=30,
    )
    value = float(lines[-1].split(":")[1].split("|")[0])
    assert 0 <= value < 10_000, lines


def test_failed_and_canceled_builds_fail_the_task_with_teamcitys_text(airflow_stack, teamcity_sim):
    stack, sim = airflow_stack, teamcity_sim
    sim.builds.plan(
        FAILING,
        queue_seconds=0,
        run_seconds=1,
        status="FAILURE",
        status_text="Tests failed: 3 (1 new), passed: 120",
    )
    sim.builds.hold(HELD)
    connect(stack, sim, "tc_bad_builds")
    dag_file(
        stack,
        "tc_bad_builds",
        """
    TeamCityRunBuildOperator(task_id="fails", build_type_id="DataPipelines_IntegrationTests",
        teamcity_conn_id="tc_bad_builds", deferrable=True, poll_interval=1)
    TeamCityRunBuildOperator(task_id="canceled", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_bad_builds", deferrable=False, poll_interval=1)
""",
    )
    run_id = stack.trigger("tc_bad_builds")
    (held,) = wait_for_build(sim, HELD)
    sim.builds.cancel(held.id, comment="stopped from the UI")
    assert stack.wait_run("tc_bad_builds", run_id) == "failed"
    for task in ("fails", "canceled"):
        assert stack.task_instance("tc_bad_builds", run_id, task)["state"] == "failed"
    assert "failed: Tests failed: 3 (1 new), passed: 120" in stack.task_log(
        "tc_bad_builds", run_id, "fails"
    )
    assert f"TeamCity build {held.id} canceled: Canceled" in stack.task_log(
        "tc_bad_builds", run_id, "canceled"
    )


def test_marking_failed_or_timing_out_cancels_the_build(airflow_stack, teamcity_sim):
    stack, sim = airflow_stack, teamcity_sim
    sim.builds.hold(HELD)
    connect(stack, sim, "tc_stop")
    dag_file(
        stack,
        "tc_stop",
        """
    TeamCityRunBuildOperator(task_id="marked", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_stop", deferrable=True, poll_interval=1, tags=["marked"])
    TeamCityRunBuildOperator(task_id="timeout", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_stop", deferrable=True, poll_interval=1, tags=["timeout"],
        execution_timeout=timedelta(seconds=8))
    TeamCityRunBuildOperator(task_id="sync_timeout", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_stop", deferrable=False, poll_interval=1, tags=["sync"],
        execution_timeout=timedelta(seconds=8))
""",
    )
    run_id = stack.trigger("tc_stop")
    wait_for_build(sim, HELD, count=3)
    stack.wait_task("tc_stop", run_id, "marked", {"deferred"}, timeout=60)
    stack.wait_trigger_running("tc_stop", run_id, "marked")
    stack.set_task_state("tc_stop", run_id, "marked", "failed")

    def by_tag(tag):
        return next(b for b in sim.builds.all(HELD) if tag in b.tags)

    for tag in ("marked", "timeout", "sync"):
        poll(f"the {tag!r} build canceled", lambda t=tag: by_tag(t).state == "finished", timeout=90)
        assert by_tag(tag).status == "UNKNOWN" and by_tag(tag).status_text.startswith("Canceled")
    assert stack.wait_run("tc_stop", run_id) == "failed"
    assert "did not finish within the task's execution_timeout; Airflow canceled it" in (
        stack.task_log("tc_stop", run_id, "timeout")
    )


def test_a_retry_after_a_kill_reuses_the_queued_build(airflow_stack, teamcity_sim):
    stack, sim = airflow_stack, teamcity_sim
    sim.builds.hold(HELD)
    connect(stack, sim, "tc_retry")
    # the first try dies (as from SIGKILL, no cleanup) right after queueing the build
    stack.write_dag(
        "tc_retry.py",
        DAG_HEAD
        + """
import os

class DiesAfterQueueing(TeamCityRunBuildOperator):
    def _poll(self, hook, build, deadline, context):
        if context["ti"].try_number == 1:
            os._exit(1)
        return super()._poll(hook, build, deadline, context)

@dag(dag_id="tc_retry", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def the_dag():
    DiesAfterQueueing(task_id="run", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_retry", deferrable=False, poll_interval=1, retries=1,
        retry_delay=timedelta(seconds=1))
the_dag()
""",
    )
    stack.wait_dag("tc_retry")
    run_id = stack.trigger("tc_retry")
    (build,) = wait_for_build(sim, HELD)
    poll(
        "the second try to find the build",
        lambda: "already queued TeamCity build" in stack.task_log("tc_retry", run_id, "run"),
        timeout=120,
    )
    sim.builds.start(build.id)
    sim.builds.finish(build.id, "SUCCESS", "ok")
    assert stack.wait_run("tc_retry", run_id) == "success"
    assert stack.task_instance("tc_retry", run_id, "run")["try_number"] == 2
    assert [b.id for b in builds_of(sim, HELD)] == [build.id]  # one build, not two


def test_bad_input_gets_a_clear_error(airflow_stack, teamcity_sim):
    stack, sim = airflow_stack, teamcity_sim
    connect(stack, sim, "tc_input")
    stack.put_connection("tc_input_notoken", {"conn_type": "teamcity", "host": sim.url})
    dag_file(
        stack,
        "tc_input",
        """
    TeamCityRunBuildOperator(task_id="unknown_type", build_type_id="NoSuchBuild",
        teamcity_conn_id="tc_input")
    TeamCityRunBuildOperator(task_id="no_connection", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_input_absent")
    TeamCityRunBuildOperator(task_id="no_token", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_input_notoken")
""",
    )
    run_id = stack.trigger("tc_input")
    assert stack.wait_run("tc_input", run_id) == "failed"
    expected = {
        "unknown_type": "No build type nor template is found by id 'NoSuchBuild'.",
        "no_connection": "no Airflow connection 'tc_input_absent'",
        "no_token": "connection 'tc_input_notoken' has no token",
    }
    for task, text in expected.items():
        assert text in stack.task_log("tc_input", run_id, task), task
    # an SSO login page answered with 200
    sim.faults.html_next(1, only="/app/rest/buildQueue", method="POST")
    dag_file(
        stack,
        "tc_html",
        """
    TeamCityRunBuildOperator(task_id="html", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_input")
""",
    )
    run_id = stack.trigger("tc_html")
    assert stack.wait_run("tc_html", run_id) == "failed"
    assert "answered 200 with text/html" in stack.task_log("tc_html", run_id, "html")


def rotator_cli(workdir: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "--config", str(workdir / "rotator.toml"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    record_output("rotator " + " ".join(args), result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_forced_rotation_while_deferred_and_poking(
    airflow_stack, teamcity_sim, teamcity_admin_token, tmp_path
):
    stack, sim = airflow_stack, teamcity_sim
    sim.builds.hold(HELD)
    (tmp_path / "rotator.toml").write_text(f"""
[store]
kind = "file"
path = "{stack.store.path}"
key_file = "{stack.store.key_file}"

[teamcity]
url = "{sim.url}"
token_env = "TEAMCITY_TOKEN"

[[credentials]]
name = "tc-rotated"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "tc_rotated"
every = "7d"
lifetime = "10d"
grace = "1d"
settle = "0s"
""")
    env = {"TEAMCITY_TOKEN": teamcity_admin_token}
    rotator_cli(tmp_path, env, "rotate", "--all")
    watched = sim.builds.queue(HELD, user="admin")  # started elsewhere; the sensors watch it
    dag_file(
        stack,
        "tc_rotated",
        f"""
    TeamCityRunBuildOperator(task_id="deferred_run", build_type_id="DataPipelines_Deploy",
        teamcity_conn_id="tc_rotated", deferrable=True, poll_interval=1)
    TeamCityBuildSensor(task_id="deferred_sensor", build_id={watched.id},
        teamcity_conn_id="tc_rotated", deferrable=True, poke_interval=1)
    TeamCityBuildSensor(task_id="poking_sensor", build_id="{{{{ dag_run.conf['build'] }}}}",
        teamcity_conn_id="tc_rotated", mode="poke", poke_interval=1)
""",
    )
    sent = time.time()
    run_id = stack.trigger("tc_rotated", conf={"build": watched.id, "teamcity_sent_at": sent})
    for task in ("deferred_run", "deferred_sensor"):
        stack.wait_task("tc_rotated", run_id, task, {"deferred"}, timeout=90)
        stack.wait_trigger_running("tc_rotated", run_id, task)
        stack.wait_deferral_settled("tc_rotated", task)
    stack.wait_task("tc_rotated", run_id, "poking_sensor", {"running"}, timeout=90)
    (mine,) = builds_of(sim, HELD)
    sim.clear_requests()
    poll(
        "both triggers and the poking sensor to poll with the old token",
        lambda: (
            sum(1 for r in sim.requests if r.path == f"/app/rest/builds/id:{mine.id}") >= 1
            and sum(1 for r in sim.requests if r.path == f"/app/rest/builds/id:{watched.id}") >= 3
        ),
        timeout=30,
    )
    old = {name for name in sim.state.find_user("airflow-bot").tokens}
    rotator_cli(tmp_path, env, "rotate", "tc-rotated", "--force", "--revoke-previous")
    (new,) = set(sim.state.find_user("airflow-bot").tokens) - old
    for token in sim.state.find_user("airflow-bot").tokens.values():
        register_secret(token.value)
    sim.clear_requests()
    # each of the three waiting tasks meets a 401 and recovers with the new token
    poll(
        "three tasks to use the new token",
        lambda: sum(1 for r in sim.requests if r.status == 200 and new in str(r.auth)) >= 6,
        timeout=60,
    )
    for build in (mine, watched):
        sim.builds.start(build.id)
        sim.builds.finish(build.id, "SUCCESS", "ok")
    assert stack.wait_run("tc_rotated", run_id) == "success"
    states = {
        t: stack.task_instance("tc_rotated", run_id, t)["state"]
        for t in ("deferred_run", "deferred_sensor", "poking_sensor")
    }
    assert set(states.values()) == {"success"}, states
    log = [r for r in sim.requests if r.path.startswith("/app/rest")]
    refused = [i for i, r in enumerate(log) if r.status == 401]
    assert 1 <= len(refused) <= 3, [(r.method, r.path, r.status) for r in log[:20]]
    for i in refused:  # the same request again, with the new token, and only once
        retry = next(r for r in log[i + 1 :] if (r.method, r.path) == (log[i].method, log[i].path))
        assert retry.status == 200 and new in str(retry.auth)
    assert all(r.status != 401 for r in log if new in str(r.auth))
    lines = poll(
        "the trigger latency metric",
        lambda: stack.statsd.matching("teamcity.dag_run_trigger_latency"),
        timeout=30,
    )
    assert float(lines[-1].split(":")[1].split("|")[0]) >= 0


def test_registration_and_the_ui_test_button(airflow_stack, teamcity_sim):
    stack, sim = airflow_stack, teamcity_sim
    listing = stack.instance.cli("providers", "hooks", "--output", "json").stdout
    hooks = json.loads(listing[listing.index("[") :])
    assert any(h.get("connection_type") == "teamcity" for h in hooks), hooks
    triggers = stack.instance.cli("providers", "triggers").stdout
    assert "rotator.provider.teamcity.triggers" in triggers
    links = stack.instance.cli("providers", "links").stdout
    assert "rotator.provider.teamcity.links.TeamCityBuildLink" in links
    token = token_for_bot(sim, "ui-test")
    body = {"connection_id": "tc_ui", "conn_type": "teamcity", "host": sim.url, "password": token}
    answer = stack.api("POST", "/api/v2/connections/test", json=body).json()
    assert answer["status"] is True and "Connected to TeamCity" in answer["message"], answer
    answer = stack.api(
        "POST", "/api/v2/connections/test", json={**body, "password": "revoked-or-wrong"}
    ).json()
    assert answer["status"] is False and "401" in answer["message"], answer
