"""The demo's build step, ``ops/teamcity/trigger-airflow-dag.sh``, with no stored token: identity
mode needs no ``AIRFLOW_API_TOKEN`` at all, and a step with neither token says so (exit 2) and
sends nothing. Airflow is a loopback recorder here: what matters is what the step sends."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures.leaks import record_output, register_secret

STEP = Path(__file__).resolve().parents[2] / "ops" / "teamcity" / "trigger-airflow-dag.sh"


class Recorder(ThreadingHTTPServer):
    """Records method, path and Authorization header; answers like Airflow's trigger."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                recorder.seen.append((self.command, self.path, auth))
                body = json.dumps({"dag_run_id": "run-1"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def airflow() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.shutdown()
    server.server_close()


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
    assert airflow.seen == [
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
    assert airflow.seen == [
        ("POST", "/api/v2/dags/teamcity_build_status/dagRuns", f"Bearer {token}")
    ]
