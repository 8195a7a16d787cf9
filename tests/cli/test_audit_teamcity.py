"""``rotator audit teamcity``: the standing tokens of TeamCity users, as users run it (a
subprocess against the TeamCity simulator). Read-only: every token is still there after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from rotator.targets.teamcity import TeamCityClient
from tests.fixtures.leaks import record_output, register_secret

CONFIG = """
[store]
kind = "file"
path = "{store}"

[teamcity]
url = "{url}"
timeout = 2
retries = 0

[[credentials]]
name = "poll"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "teamcity_default"
every = "7d"
lifetime = "10d"
"""
UNRECORDED = "rotator-poll-20250101T000000-abcdef"


@pytest.fixture
def audit_cli(tmp_path, teamcity_sim, teamcity_admin_token):
    config = tmp_path / "rotator.toml"
    config.write_text(CONFIG.format(store=tmp_path / "store.db", url=teamcity_sim.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env["TEAMCITY_TOKEN"] = teamcity_admin_token

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "rotator", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
        return result

    client = TeamCityClient(teamcity_sim.url, teamcity_admin_token)
    now = datetime.now(UTC)
    for name, expires in [
        ("laptop-forever", None),
        ("ci-soon", now + timedelta(days=2)),
        ("ci-later", now + timedelta(days=60)),
        (UNRECORDED, now + timedelta(days=60)),
    ]:
        register_secret(client.create_token("airflow-bot", name, expires).value)
    assert run("rotate", "poll").returncode == 0
    return run


def _names(sim) -> set[tuple[str, str]]:
    return {(u.username, t) for u in sim.state.users.values() for t in u.tokens}


def test_audit_lists_owners_and_flags_foreign_standing_tokens_and_revokes_nothing(
    audit_cli, teamcity_sim
):
    before = _names(teamcity_sim)
    result = audit_cli("audit", "teamcity", "--user", "airflow-bot", "--json")
    assert result.returncode == 1, result.stderr  # flagged tokens: a finding, like a failed check
    report = json.loads(result.stdout)
    tokens = {t["name"]: t for t in report["tokens"]}
    ours = [t for t in tokens.values() if t["owner"] == "rotator"]
    assert len(ours) == 1 and ours[0]["credential"] == "poll" and ours[0]["flag"] is None
    assert tokens["laptop-forever"]["owner"] == "foreign"
    assert tokens["laptop-forever"]["flag"] == "never-expires"
    assert tokens["laptop-forever"]["expires"] is None
    assert tokens["ci-soon"]["flag"] == "expires-soon"
    assert tokens["ci-later"]["flag"] is None
    assert tokens[UNRECORDED]["owner"] == "rotator-unrecorded"
    assert report["flagged"] == 2 and report["users"] == ["airflow-bot"]
    assert report["within"] == "2w" and report["exit_code"] == 1
    assert _names(teamcity_sim) == before  # read-only

    narrow = json.loads(
        audit_cli("audit", "teamcity", "--user", "airflow-bot", "--within", "1d", "--json").stdout
    )
    assert [t["name"] for t in narrow["tokens"] if t["flag"]] == ["laptop-forever"]


def test_audit_defaults_to_the_configured_users_and_the_admin_and_prints_a_table(audit_cli):
    result = audit_cli("audit", "teamcity")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["USER", "TOKEN", "FLAG", "EXPIRES", "OWNER", "CREATED"]
    assert any("laptop-forever" in line and "never-expires" in line for line in lines)
    assert any("rotator (poll)" in line for line in lines)
    assert "of 2 user(s)" in result.stdout and "nothing was revoked" in result.stdout


def test_an_unknown_user_is_reported_and_bad_input_is_exit_2(audit_cli):
    result = audit_cli("audit", "teamcity", "--user", "nobody-here", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["tokens"] == [] and report["errors"][0].startswith("nobody-here: ")
    result = audit_cli("audit", "teamcity", "--within", "soon")
    assert result.returncode == 2 and "--within" in result.stderr
