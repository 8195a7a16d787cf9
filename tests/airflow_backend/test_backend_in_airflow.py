"""The backend inside real Airflow 3.3 processes (CLI and a task run by ``airflow dags test``),
against real OpenBao and moto servers, configured as a user would configure it."""

from __future__ import annotations

import hashlib
import json

import pytest

from backends.store import open_store
from tests.fixtures.leaks import record_output, register_secret
from tests.fixtures.store_harness import harness_for
from tests.fixtures.stores import store_env, store_options

pytestmark = pytest.mark.airflow


@pytest.fixture(params=["vault", "aws"])
def seeded(request, ns):
    kind = request.param
    server = request.getfixturevalue("openbao" if kind == "vault" else "moto_server")
    servers = {"openbao": server} if kind == "vault" else {"moto": server}
    env = store_env(**servers)
    import os

    os.environ.update(env)
    options = store_options(kind, ns=ns, **servers)
    harness = harness_for(open_store(kind, **options), options, **servers)
    store = harness.store
    password = f"tok-{kind}-{ns}"
    register_secret(password)
    store.put_current(
        f"{ns}/airflow/connections/teamcity_default",
        {
            "conn_type": "http",
            "host": "https://tc.example.com",
            "login": "airflow-bot",
            "password": password,
        },
        expected=None,
    )
    store.put_current(
        f"{ns}/airflow/variables/greeting", {"value": f"hello from {kind}"}, expected=None
    )
    if harness.plain_strings:  # the official AWS provider keeps variables as plain strings
        harness.put_plain_string(f"{ns}/airflow/variables/greeting", f"hello from {kind}")
    return kind, server, env, password


def test_providers_lists_the_backend(airflow_for, openbao, ns):
    result = airflow_for("vault", openbao, ns, {}).cli("providers", "secrets")
    assert "backends.airflow.RotatorSecretsBackend" in result.stdout


def test_cli_reads_connection_and_variable(airflow_for, seeded, ns):
    kind, server, env, password = seeded
    airflow = airflow_for(kind, server, ns, env)
    conn = airflow.cli("connections", "get", "teamcity_default", "-o", "json")
    record_output("airflow connections get [stderr]", conn.stderr)
    found = json.loads(conn.stdout)[0]
    assert found["host"] == "https://tc.example.com" and found["login"] == "airflow-bot"
    assert found["password"] == password
    variable = airflow.cli("variables", "get", "greeting")
    assert variable.stdout.strip() == f"hello from {kind}"
    record_output("airflow variables get [stderr]", variable.stderr)


def test_a_task_reads_the_connection(airflow_for, seeded, ns, tmp_path):
    kind, server, env, password = seeded
    out = tmp_path / "seen.json"
    airflow = airflow_for(kind, server, ns, {**env, "ROTATOR_TEST_OUTPUT": str(out)})
    result = airflow.cli("dags", "test", "read_connection", "2026-01-02")
    record_output("airflow dags test [stdout]", result.stdout)
    record_output("airflow dags test [stderr]", result.stderr)
    seen = json.loads(out.read_text())
    assert seen["password_sha256"] == hashlib.sha256(password.encode()).hexdigest()
    assert seen["login"] == "airflow-bot" and seen["variable"] == f"hello from {kind}"
