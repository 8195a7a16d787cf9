"""Retries, timeouts and error translation, with faults injected by the simulator."""

from __future__ import annotations

import pytest

from rotator.errors import TargetError, TargetNotFound, TargetUnavailable
from rotator.targets.http import BearerAuth, HttpClient
from rotator.targets.teamcity import TeamCityClient


@pytest.fixture
def client(teamcity_sim, teamcity_admin_token):
    return TeamCityClient(teamcity_sim.url, teamcity_admin_token, timeout=1.0, retries=3)


def server_calls(sim):
    return [r for r in sim.requests if r.path == "/app/rest/server"]


def test_retries_a_5xx_burst_then_succeeds(teamcity_sim, client):
    teamcity_sim.faults.fail_next(2, status=503)
    assert client.server()["version"]
    assert [r.status for r in server_calls(teamcity_sim)] == [503, 503, 200]


def test_gives_up_after_the_retry_budget(teamcity_sim, client):
    teamcity_sim.faults.fail_next(10, status=502)
    with pytest.raises(TargetUnavailable) as err:
        client.server()
    assert "502" in str(err.value)
    assert len(server_calls(teamcity_sim)) == 4  # 1 + 3 retries


def test_retries_dropped_connections(teamcity_sim, client):
    teamcity_sim.faults.drop_next(2)
    assert client.server()["version"]
    assert [r.status for r in server_calls(teamcity_sim)] == [0, 0, 200]


def test_never_retries_a_4xx(teamcity_sim, client):
    with pytest.raises(TargetNotFound):
        client.build("id:999999")
    assert len([r for r in teamcity_sim.requests if "/builds/" in r.path]) == 1


def test_a_post_is_not_retried_unless_safe(teamcity_sim, client):
    teamcity_sim.faults.fail_next(1, status=503)
    with pytest.raises(TargetUnavailable):
        client.create_token("airflow-bot", "once")
    assert len([r for r in teamcity_sim.requests if r.method == "POST"]) == 1


def test_latency_beyond_the_timeout_is_unavailable(teamcity_sim, teamcity_admin_token):
    teamcity_sim.faults.latency(1.5)
    slow = TeamCityClient(teamcity_sim.url, teamcity_admin_token, timeout=0.3, retries=1)
    with pytest.raises(TargetUnavailable) as err:
        slow.server()
    assert "timed out" in str(err.value)


def test_errors_name_method_path_and_status_and_redact_secrets(teamcity_sim, teamcity_admin_token):
    http = HttpClient(
        teamcity_sim.url, target="TeamCity", auth=BearerAuth(teamcity_admin_token), retries=0
    )
    http.add_secret("DataPipelines")
    with pytest.raises(TargetError) as err:
        http.request("GET", "/app/rest/projects/id:DataPipelines/parameters/nope")
    text = str(err.value)
    assert "404" in text and "GET" in text and "/app/rest/projects/" in text
    assert "No parameter with name 'nope'" in text
    assert text.count("<redacted>") >= 0 and teamcity_admin_token not in text
    assert "redacted" in repr(BearerAuth(teamcity_admin_token))
    assert teamcity_admin_token not in repr(BearerAuth(teamcity_admin_token))


def test_tls_verification_is_on_by_default(teamcity_sim, teamcity_admin_token):
    assert TeamCityClient(teamcity_sim.url, teamcity_admin_token).http.session.verify is True
