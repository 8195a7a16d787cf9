from __future__ import annotations

import pytest

from rotator.spec import CredentialSpec, TeamCitySettings
from tests.teamcity_client.loopback import scripted  # noqa: F401 - a fixture for this suite


@pytest.fixture
def tc_settings(teamcity_sim, teamcity_admin_token, monkeypatch) -> TeamCitySettings:
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    return TeamCitySettings(url=teamcity_sim.url, token_env="TEAMCITY_TOKEN", timeout=2, retries=3)


@pytest.fixture
def token_spec() -> CredentialSpec:
    from datetime import timedelta

    return CredentialSpec(
        name="airflow-teamcity-token",
        type="teamcity-token",
        user="airflow-bot",
        conn_id="teamcity_default",
        lifetime=timedelta(days=10),
        permissions=({"project": "DataPipelines", "permission": "view_project"},),
    )
