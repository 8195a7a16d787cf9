"""TeamCityHook against the simulator over real HTTP: queue, read, find, cancel; the 401 path
(one fresh read, one retry); retries that never queue a build twice; clear errors for bad input.

The connection comes from an ``AIRFLOW_CONN_*`` variable, which Airflow's own lookup reads (no
Airflow server needed for these).
"""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest

from rotator.provider.teamcity.errors import (
    TeamCityAuthError,
    TeamCityBadResponse,
    TeamCityConfigError,
    TeamCityNotFound,
)
from rotator.provider.teamcity.hooks import TeamCityHook
from rotator.provider.teamcity.retry import RetryPolicy
from tests.fixtures.leaks import register_secret

BUILD_TYPE = "DataPipelines_Nightly"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


def bot_token(sim, name: str) -> str:
    value = f"tc-{secrets.token_urlsafe(20)}"
    register_secret(value)
    sim.add_token("airflow-bot", name, value)
    return value


def set_conn(monkeypatch, conn_id: str, url: str, token: str | None, **extra) -> None:
    doc = {"conn_type": "teamcity", "host": url, "login": "airflow-bot", "extra": extra}
    if token:
        doc["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(doc))


@pytest.fixture
def hook(teamcity_sim, monkeypatch) -> TeamCityHook:
    set_conn(monkeypatch, "tc_hook", teamcity_sim.url, bot_token(teamcity_sim, "t1"))
    return TeamCityHook("tc_hook", retry=FAST)


def test_queue_read_find_cancel(hook, teamcity_sim):
    teamcity_sim.builds.hold(BUILD_TYPE)
    build = hook.trigger_build(
        BUILD_TYPE,
        branch="main",
        properties={"env.X": "1"},
        comment="from Airflow",
        tags=["nightly"],
        idempotency_tag="airflow-key1",
    )
    assert build.state == "queued" and build.build_type_id == BUILD_TYPE
    assert set(build.tags) == {"nightly", "airflow-key1"}
    assert hook.get_build(build.id).state == "queued"
    assert [
        b.id for b in hook.find_builds(build_type_id=BUILD_TYPE, tag="airflow-key1", state="active")
    ] == [build.id]
    assert hook.find_builds(build_type_id=BUILD_TYPE, tag="airflow-other", state="any") == []
    canceled = hook.cancel_build(build.id, "stop")
    assert canceled.state == "finished" and canceled.outcome == "canceled"
    assert hook.cancel_build(build.id).outcome == "canceled"  # a repeat is a no-op


def test_async_methods_follow_a_build_to_its_end(hook, teamcity_sim):
    teamcity_sim.builds.plan(
        BUILD_TYPE, queue_seconds=0, run_seconds=0, status="FAILURE", status_text="Tests failed: 3"
    )
    build = hook.trigger_build(BUILD_TYPE)

    async def read():
        try:
            return await hook.aget_build(build.id)
        finally:
            await hook.aclose()

    done = asyncio.run(read())
    assert done.outcome == "failed" and done.status_text == "Tests failed: 3"


def test_401_reads_the_connection_again_and_retries_once(hook, teamcity_sim, monkeypatch):
    assert hook.get_server()["version"]  # settings (old token) now held by the hook
    new = bot_token(teamcity_sim, "t2")
    set_conn(monkeypatch, "tc_hook", teamcity_sim.url, new)
    del teamcity_sim.state.find_user("airflow-bot").tokens["t1"]  # revoked at TeamCity
    teamcity_sim.clear_requests()
    assert hook.get_server()["version"]
    log = [(r.status, r.auth) for r in teamcity_sim.requests if r.path.startswith("/app/rest")]
    assert [s for s, _ in log] == [401, 200]
    assert "t2" in str(log[1][1]) and "t2" not in str(log[0][1])
    assert hook.token_refreshes == 1


def test_a_second_401_is_final(hook, teamcity_sim):
    del teamcity_sim.state.find_user("airflow-bot").tokens["t1"]
    teamcity_sim.clear_requests()
    with pytest.raises(TeamCityAuthError, match="401"):
        hook.get_server()
    assert [r.status for r in teamcity_sim.requests if r.path.startswith("/app/rest")] == [401, 401]


def test_a_lost_queue_answer_is_found_by_tag_not_queued_again(hook, teamcity_sim):
    teamcity_sim.builds.hold(BUILD_TYPE)
    teamcity_sim.faults.lose_next(1, only="/app/rest/buildQueue", method="POST")
    build = hook.trigger_build(BUILD_TYPE, idempotency_tag="airflow-lost")
    assert [b.id for b in teamcity_sim.builds.all(BUILD_TYPE) if b.state == "queued"] == [build.id]


def test_a_queue_post_answered_503_is_not_repeated_blindly(hook, teamcity_sim):
    teamcity_sim.builds.hold(BUILD_TYPE)
    teamcity_sim.faults.fail_next(1, status=503, only="/app/rest/buildQueue", method="POST")
    build = hook.trigger_build(BUILD_TYPE, idempotency_tag="airflow-503")
    posts = [r for r in teamcity_sim.requests if r.method == "POST"]
    lookups = [
        r
        for r in teamcity_sim.requests
        if r.method == "GET" and r.path.startswith("/app/rest/builds")
    ]
    assert len(posts) == 2 and lookups, "looked for the build before queueing again"
    assert [b.id for b in teamcity_sim.builds.all(BUILD_TYPE) if b.state == "queued"] == [build.id]


def test_reads_are_retried_on_5xx_and_dropped_connections(hook, teamcity_sim):
    teamcity_sim.faults.fail_next(1, status=503, only="/app/rest/server")
    teamcity_sim.faults.drop_next(1, only="/app/rest/server")
    assert hook.get_server()["version"]


def test_unknown_build_type_names_teamcitys_text(hook):
    with pytest.raises(TeamCityNotFound, match="No build type nor template is found by id 'Nope'"):
        hook.trigger_build("Nope")


def test_an_html_login_page_with_200_is_a_clear_error(hook, teamcity_sim):
    teamcity_sim.faults.html_next(1)
    with pytest.raises(
        TeamCityBadResponse, match=r"answered 200 with text/html.*instead of JSON: a login page"
    ):
        hook.get_server()


def test_missing_connection_and_missing_token(teamcity_sim, monkeypatch):
    with pytest.raises(TeamCityConfigError, match="no Airflow connection 'tc_absent'"):
        TeamCityHook("tc_absent").get_server()
    set_conn(monkeypatch, "tc_notoken", teamcity_sim.url, None)
    with pytest.raises(TeamCityConfigError, match="has no token"):
        TeamCityHook("tc_notoken").get_server()


def test_test_connection_says_what_it_found(hook, teamcity_sim, monkeypatch):
    ok, message = hook.test_connection()
    assert ok and "Connected to TeamCity 2025.07.1" in message
    set_conn(monkeypatch, "tc_bad", teamcity_sim.url, "not-a-token-at-all")
    ok, message = TeamCityHook("tc_bad", retry=FAST).test_connection()
    assert not ok and "401" in message and "not-a-token-at-all" not in message


def test_repr_and_settings_hold_no_token(hook):
    settings = hook.settings()
    assert settings.token not in repr(settings) and settings.token not in repr(hook)
