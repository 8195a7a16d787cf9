"""The ``rotator`` command as users run it: a subprocess, its exit code, stdout and stderr.

Every output is added to the leak scan, and every token the simulator issued is registered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.configs import VIEW_PIPELINES, one_token_toml
from tests.fixtures.leaks import record_output, register_secret

PUSH = [{"teamcity_project": "DataPipelines", "parameter": "env.TC_POLL_TOKEN"}]


@pytest.fixture
def cli(tmp_path, teamcity_sim, teamcity_admin_token):
    config = tmp_path / "rotator.toml"
    config.write_text(
        one_token_toml(
            tmp_path / "store.db",
            teamcity_sim.url,
            grace="1d",
            permissions=VIEW_PIPELINES,
            push=PUSH,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env["TEAMCITY_TOKEN"] = teamcity_admin_token

    def run(
        *args: str, expect: int | None = 0, extra_env: dict | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "rotator", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, **(extra_env or {})},
            timeout=60,
        )
        record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
        for user in teamcity_sim.state.users.values():
            for token in user.tokens.values():
                register_secret(token.value)
        if expect is not None:
            assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
        return result

    run.config = config  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    return run


def test_help_is_fast_to_reach_and_documents_exit_codes(cli):
    result = cli("--help")
    assert "Exit codes" in result.stdout and "rotate" in result.stdout


def test_rotate_json_and_audit_on_stderr(cli, teamcity_sim):
    result = cli("rotate", "airflow-teamcity-token", "--json")
    document = json.loads(result.stdout)
    outcome = document["outcomes"][0]
    assert document["exit_code"] == 0 and outcome["result"] == "rotated"
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    steps = [e["step"] for e in events]
    # the lease is taken with the intent, once the plan (TeamCity's list of tokens) is read
    assert steps[:3] == ["plan", "lock", "intent"] and "promote" in steps
    assert steps[-1] == "unlock"
    assert all(
        e["rotation_id"] == outcome["rotation_id"]
        for e in events
        if e["step"] not in ("lock", "unlock")
    )
    pushed = teamcity_sim.state.projects["DataPipelines"].parameters["env.TC_POLL_TOKEN"].value
    assert pushed not in result.stdout and pushed not in result.stderr


def test_config_option_after_the_command(cli, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "status", "--config", str(cli.config), "--json"],
        capture_output=True,
        text=True,
        cwd=other,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["credentials"][0]["name"] == "airflow-teamcity-token"


def test_status_history_verify_rollback(cli):
    cli("rotate", "--all")
    cli("rotate", "airflow-teamcity-token", "--force")
    status = json.loads(cli("status", "--json").stdout)["credentials"][0]
    assert status["version"] == "2" and status["due"] is None and status["retirements"] == 1
    history = json.loads(cli("history", "airflow-teamcity-token", "--json").stdout)
    assert [sorted(v["stages"]) for v in history["versions"]] == [["current"], ["previous"]]
    assert all(
        v["meta"]["target_name"].startswith("rotator-airflow-teamcity-token-")
        for v in history["versions"]
    )
    verify = json.loads(cli("verify", "--json").stdout)
    assert verify["outcomes"][0]["result"] == "verified"
    rolled = json.loads(cli("rollback", "airflow-teamcity-token", "--json").stdout)
    assert rolled["result"] == "rolled-back"
    # a rollback is a new version holding the previous value, proven at the target first
    after = json.loads(cli("history", "airflow-teamcity-token", "--json").stdout)["versions"]
    by_id = {v["id"]: v for v in after}
    assert sorted(by_id["3"]["stages"]) == ["current"]
    assert by_id["3"]["meta"]["target_name"] == by_id["1"]["meta"]["target_name"]
    table = cli("status").stdout
    assert "CREDENTIAL" in table and "airflow-teamcity-token" in table


def test_dry_run_changes_nothing(cli, teamcity_sim):
    result = cli("rotate", "--all", "--dry-run", "--json")
    assert json.loads(result.stdout)["outcomes"][0]["result"] == "dry-run"
    assert teamcity_sim.state.find_user("airflow-bot").tokens == {}
    assert (
        not (cli.tmp / "store.db").exists()
        or json.loads(cli("status", "--json").stdout)["credentials"][0]["version"] is None
    )


def test_unknown_credential_is_exit_2_and_changes_nothing(cli, teamcity_sim):
    result = cli("rotate", "nope", expect=2)
    assert "unknown credential 'nope'" in result.stderr
    assert teamcity_sim.requests == []


def test_rotate_without_names_or_all_is_bad_input(cli):
    assert "--all" in cli("rotate", expect=2).stderr


def test_bad_config_is_exit_2_naming_file_and_key(cli):
    cli.config.write_text(cli.config.read_text().replace('every = "7d"', 'every = "weekly"'))
    result = cli("status", expect=2)
    assert "rotator.toml: credentials[0].every" in result.stderr


def test_lock_held_is_exit_3(cli):
    from backends.file import FileStore

    store = FileStore(path=cli.tmp / "store.db")
    store.acquire_lease("airflow-teamcity-token", "other-host:1:x", ttl=60)
    result = cli("rotate", "airflow-teamcity-token", "--json", expect=3)
    assert json.loads(result.stdout)["outcomes"][0]["result"] == "locked"


def test_revoked_bootstrap_token_is_actionable(cli, teamcity_sim, teamcity_admin_token):
    del teamcity_sim.state.find_user("admin").tokens["bootstrap-admin"]
    result = cli("rotate", "--all", "--json", expect=1)
    error = json.loads(result.stdout)["outcomes"][0]["error"]
    assert "$TEAMCITY_TOKEN" in error and "revoked" in error
    assert teamcity_admin_token not in result.stdout + result.stderr


def test_missing_bootstrap_token_is_bad_input(cli):
    result = cli("rotate", "--all", "--json", expect=2, extra_env={"TEAMCITY_TOKEN": ""})
    assert "TEAMCITY_TOKEN" in result.stdout + result.stderr


def test_doctor(cli, teamcity_sim):
    report = json.loads(cli("doctor", "--json").stdout)
    assert all(c["ok"] for c in report["checks"]), report
    assert any(c["name"] == "teamcity" and "clock skew" in c["detail"] for c in report["checks"])
    teamcity_sim.advance_clock(3600)
    skewed = json.loads(cli("doctor", "--json", expect=1).stdout)
    assert any("clock skew" in c["detail"] and not c["ok"] for c in skewed["checks"])


def test_run_once_rotates_what_is_due_and_serves_no_secret(cli):
    result = cli("run", "--once")
    assert "rotated" in result.stdout
    again = cli("run", "--once")
    assert "rotated" not in again.stdout


def test_sim_is_reachable_from_the_cli(cli):
    assert "TeamCity REST server simulator" in cli("sim", "teamcity", "--help").stdout


def test_audit_file_option(cli):
    cli("rotate", "--all", "--audit-file", str(cli.tmp / "audit.jsonl"))
    lines = (cli.tmp / "audit.jsonl").read_text().splitlines()
    assert lines and all(
        json.loads(line)["credential"] == "airflow-teamcity-token" for line in lines
    )
    assert oct((cli.tmp / "audit.jsonl").stat().st_mode & 0o777) == "0o600"
    history = cli("history", "airflow-teamcity-token", "--audit-file", str(cli.tmp / "audit.jsonl"))
    assert "promote" in history.stdout


def test_no_rotator_toml_uses_embedded_defaults(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "status", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "ROTATOR_CONFIG"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"store": "file", "credentials": []}
    assert Path(tmp_path).exists()


def test_run_serves_prometheus_metrics(cli, tmp_path):
    import time

    import requests

    from rotator.servers.process import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env["TEAMCITY_TOKEN"] = os.environ.get("TEAMCITY_TOKEN", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rotator", "run", "--metrics-port", str(port), "--tick", "60"],
        cwd=cli.tmp,
        env={**env, **cli.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                if 'rotator_credential_age_seconds{credential="airflow-teamcity-token"}' in text:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "no metrics served"
            time.sleep(0.2)
        assert 'rotator_credential_expiry_seconds{credential="airflow-teamcity-token"}' in text
        assert 'rotator_last_success_timestamp_seconds{credential="airflow-teamcity-token"}' in text
        assert 'rotator_step_seconds_count{step="promote"}' in text
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_status_shows_overdue_retirements_and_the_last_proof(cli, teamcity_sim):
    """A retirement that cannot be carried out is kept and shown as overdue (it used to be
    dropped on any error); ``verify`` leaves a proof that ``status`` reports."""
    cli.config.write_text(cli.config.read_text().replace('grace = "1d"', 'grace = "0s"'))
    audit = str(cli.tmp / "audit.jsonl")
    cli("rotate", "--all", "--audit-file", audit)
    teamcity_sim.faults.fail_next(20, status=503, only="/tokens/", method="DELETE")
    cli("rotate", "airflow-teamcity-token", "--force", "--audit-file", audit, expect=1)
    cli("rotate", "--all", "--audit-file", audit, expect=1)
    cli("verify", "--audit-file", audit)
    row = json.loads(cli("status", "--json", "--audit-file", audit).stdout)["credentials"][0]
    assert row["retirements"] == 1 and row["retirements_overdue"] == 1, row
    assert row["last_proof"] == "ok" and row["last_proven"]
    table = cli("status", "--audit-file", audit, extra_env={"COLUMNS": "200"}).stdout
    assert "1 OVERDUE" in table
    teamcity_sim.faults.clear()
    cli("rotate", "--all", "--audit-file", audit)
    row = json.loads(cli("status", "--json", "--audit-file", audit).stdout)["credentials"][0]
    assert row["retirements"] == 0


def test_rollback_to_a_version_and_what_a_second_rollback_does(cli):
    cli("rotate", "--all")
    for _ in range(2):
        cli("rotate", "airflow-teamcity-token", "--force")

    def names() -> dict[str, tuple[str, list[str]]]:
        history = json.loads(cli("history", "airflow-teamcity-token", "--json").stdout)
        return {v["id"]: (v["meta"]["target_name"], v["stages"]) for v in history["versions"]}

    first = names()
    rolled = json.loads(cli("rollback", "airflow-teamcity-token", "--to", "1", "--json").stdout)
    assert rolled["result"] == "rolled-back" and rolled["version"] == "4", rolled
    after = names()
    assert after["4"] == (first["1"][0], ["current"])
    assert after["3"][1] == ["previous"], "the version rolled away from becomes previous"
    again = json.loads(cli("rollback", "airflow-teamcity-token", "--json").stdout)
    assert again["result"] == "rolled-back"
    assert names()[again["version"]][0] == first["3"][0], "rollback = previous: it flips back"
    missing = cli("rollback", "airflow-teamcity-token", "--to", "99", "--json", expect=2)
    assert "no version '99'" in missing.stdout + missing.stderr
