"""The demo's build step, ``ops/teamcity/trigger-airflow-dag.sh``, with no stored token: identity
mode needs no ``AIRFLOW_API_TOKEN`` at all, and a step with neither token says so (exit 2) and
sends nothing. Airflow is a loopback recorder here: what matters is what the step sends."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.leaks import record_output, register_secret
from tests.fixtures.recorder import Recorder

STEP = Path(__file__).resolve().parents[2] / "ops" / "teamcity" / "trigger-airflow-dag.sh"


@pytest.fixture
def airflow(recorder) -> Recorder:
    """Airflow's trigger endpoint, as far as the step can tell."""
    return recorder({"dag_run_id": "run-1"})


def run_step(airflow: Recorder, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_", "TEAMCITY_")) and k != "MAX_ATTEMPTS"
    }
    env.update(AIRFLOW_URL=airflow.url, AIRFLOW_DAG_ID="teamcity_build_status", MAX_ATTEMPTS="1")
    env.update(extra)
    assert "AIRFLOW_API_TOKEN" not in env or "AIRFLOW_API_TOKEN" in extra
    result = subprocess.run(
        ["/bin/bash", str(STEP)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    record_output("trigger-airflow-dag.sh [stdout]", result.stdout)
    record_output("trigger-airflow-dag.sh [stderr]", result.stderr)
    return result


def test_identity_mode_needs_no_airflow_api_token_at_all(airflow):
    build_token = f"eyJ{secrets.token_urlsafe(30)}"
    register_secret(build_token)
    result = run_step(airflow, TEAMCITY_BUILD_OIDC_TOKEN=build_token, TEAMCITY_BUILD_ID="7")
    assert result.returncode == 0, result.stderr
    assert [(s.method, s.path, s.authorization) for s in airflow.seen] == [
        (
            "POST",
            "/rotator/identity/v1/dags/teamcity_build_status/dagRuns",
            f"Bearer {build_token}",
        )
    ]
    assert "triggered teamcity_build_status run run-1" in result.stdout
    assert build_token not in result.stdout + result.stderr


def test_no_token_of_either_kind_is_a_setup_error_and_sends_nothing(airflow):
    result = run_step(airflow)
    assert result.returncode == 2
    assert "neither env.AIRFLOW_API_TOKEN" in result.stderr
    assert "TEAMCITY_BUILD_OIDC_TOKEN" in result.stderr
    # asked for one mode, without what it needs
    token_mode = run_step(airflow, AIRFLOW_AUTH="token")
    assert token_mode.returncode == 2 and "AIRFLOW_API_TOKEN is empty" in token_mode.stderr
    identity = run_step(airflow, AIRFLOW_AUTH="identity")
    assert identity.returncode == 2 and "TEAMCITY_SERVER_URL" in identity.stderr
    bogus = run_step(airflow, AIRFLOW_AUTH="oidc", AIRFLOW_API_TOKEN="x" * 20)
    assert bogus.returncode == 2 and "token or identity" in bogus.stderr
    unset = run_step(airflow, AIRFLOW_URL="")
    assert unset.returncode == 2 and "AIRFLOW_URL" in unset.stderr
    assert airflow.seen == []


def test_a_standing_token_still_works_when_it_is_set(airflow):
    token = f"eyJ{secrets.token_urlsafe(30)}"
    register_secret(token)
    result = run_step(airflow, AIRFLOW_API_TOKEN=token)
    assert result.returncode == 0, result.stderr
    assert [(s.method, s.path, s.authorization) for s in airflow.seen] == [
        ("POST", "/api/v2/dags/teamcity_build_status/dagRuns", f"Bearer {token}")
    ]
