"""The parameter updater against the simulator: password-only writes, types kept, refusals."""

from __future__ import annotations

import pytest

from rotator.errors import TargetDenied
from rotator.sinks import Sink
from rotator.sinks.teamcity_parameters import RefusedPush, TeamCityParameterSink
from rotator.spec import PushTarget
from tests.fixtures.leaks import register_secret

VALUE = "jwt-pushed-value-0123456789"
register_secret(VALUE)


def param(sim, project, name):
    return sim.state.projects[project].parameters.get(name)


def test_implements_the_sink_protocol(tc_settings):
    assert isinstance(TeamCityParameterSink(tc_settings), Sink)


def test_creates_a_password_parameter(teamcity_sim, tc_settings):
    TeamCityParameterSink(tc_settings).push(
        PushTarget("env.AIRFLOW_API_TOKEN", "DataPipelines"), VALUE
    )
    created = param(teamcity_sim, "DataPipelines", "env.AIRFLOW_API_TOKEN")
    assert created.value == VALUE and created.type == "password"


def test_keeps_an_existing_password_type_spec(teamcity_sim, tc_settings):
    from rotator.sim.teamcity.model import Parameter

    teamcity_sim.state.projects["DataPipelines"].parameters["env.T"] = Parameter(
        "env.T", "old-value-123", "password display='hidden'"
    )
    TeamCityParameterSink(tc_settings).push(PushTarget("env.T", "DataPipelines"), VALUE)
    updated = param(teamcity_sim, "DataPipelines", "env.T")
    assert updated.value == VALUE and updated.type == "password display='hidden'"
    assert any(r.path.endswith("/env.T/value") and r.method == "PUT" for r in teamcity_sim.requests)


def test_refuses_to_overwrite_a_non_password_parameter(teamcity_sim, tc_settings):
    with pytest.raises(RefusedPush) as err:
        TeamCityParameterSink(tc_settings).push(
            PushTarget("env.AIRFLOW_URL", "DataPipelines"), VALUE
        )
    assert "not a password parameter" in str(err.value) and VALUE not in str(err.value)
    assert param(teamcity_sim, "DataPipelines", "env.AIRFLOW_URL").value == "http://127.0.0.1:8080"


def test_writes_build_configuration_parameters_over_inherited_ones(teamcity_sim, tc_settings):
    from rotator.sim.teamcity.model import Parameter

    teamcity_sim.state.projects["DataPipelines"].parameters["env.I"] = Parameter(
        "env.I", "p", "password"
    )
    TeamCityParameterSink(tc_settings).push(
        PushTarget("env.I", teamcity_build_type="DataPipelines_Publish"), VALUE
    )
    own = teamcity_sim.state.build_types["DataPipelines_Publish"].parameters["env.I"]
    assert own.value == VALUE and own.type == "password"
    assert param(teamcity_sim, "DataPipelines", "env.I").value == "p"


def test_read_only_project_uses_the_versioned_settings_token(teamcity_sim, tc_settings):
    target = PushTarget(
        "env.AIRFLOW_API_TOKEN", "DataPipelines_Vcs", settings_token="airflow-api-token"
    )
    TeamCityParameterSink(tc_settings).push(target, VALUE)
    assert (
        teamcity_sim.state.projects["DataPipelines_Vcs"].settings_tokens["airflow-api-token"][0]
        == VALUE
    )
    reference = param(teamcity_sim, "DataPipelines_Vcs", "env.AIRFLOW_API_TOKEN")
    assert reference.value == "credentialsJSON:airflow-api-token"  # the VCS reference is untouched


def test_read_only_project_without_a_settings_token_is_refused(teamcity_sim, tc_settings):
    teamcity_sim.faults.read_only_project("DataPipelines", True)
    with pytest.raises(RefusedPush) as err:
        TeamCityParameterSink(tc_settings).push(PushTarget("env.X", "DataPipelines"), VALUE)
    assert "settings_token" in str(err.value)


def test_no_edit_permission_is_denied(teamcity_sim, tc_settings, monkeypatch):
    teamcity_sim.add_token("airflow-bot", "viewer", "viewer-token-value-1")
    monkeypatch.setenv("TEAMCITY_TOKEN", "viewer-token-value-1")
    with pytest.raises(TargetDenied):
        TeamCityParameterSink(tc_settings).push(PushTarget("env.X", "DataPipelines"), VALUE)
    assert param(teamcity_sim, "DataPipelines", "env.X") is None


def test_pushed_value_never_appears_in_request_log_or_listing(
    teamcity_sim, tc_settings, teamcity_admin_token
):
    import requests

    TeamCityParameterSink(tc_settings).push(PushTarget("env.S", "DataPipelines"), VALUE)
    listing = requests.get(
        f"{teamcity_sim.url}/app/rest/projects/DataPipelines/parameters",
        headers={"Authorization": f"Bearer {teamcity_admin_token}", "Accept": "application/json"},
        timeout=5,
    ).text
    assert VALUE not in listing
    assert VALUE not in repr(teamcity_sim.requests)
