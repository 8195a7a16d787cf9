"""Notifications from ``rotator rotate`` and ``rotator doctor`` as users run them (subprocesses),
sent by the real apprise to a local HTTP receiver, with the TeamCity simulator as the target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.fixtures.configs import one_token_toml
from tests.fixtures.leaks import record_output, register_secret

NOTIFY = [{"url_env": "NOTIFY_URL", "on": ["rotated", "failed"]}]


@pytest.fixture
def cli(tmp_path, teamcity_sim, teamcity_admin_token):
    config = tmp_path / "rotator.toml"
    config.write_text(
        one_token_toml(tmp_path / "store.db", teamcity_sim.url, retries=0, notify=NOTIFY)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env["TEAMCITY_TOKEN"] = teamcity_admin_token

    def run(
        *args: str, url: str, extra: str = "", more_env: dict | None = None
    ) -> subprocess.CompletedProcess:
        if extra:
            config.write_text(config.read_text() + extra)
        result = subprocess.run(
            [sys.executable, "-m", "rotator", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env={**env, "NOTIFY_URL": url, **(more_env or {})},
            timeout=60,
            check=False,
        )
        record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
        for user in teamcity_sim.state.users.values():
            for token in user.tokens.values():
                register_secret(token.value)
        return result

    return run


def _tokens(sim) -> list[str]:
    return [t.value for u in sim.state.users.values() for t in u.tokens.values()]


def test_a_rotation_and_a_failure_are_told_with_ids_and_steps_never_values(
    cli, receiver, teamcity_sim, teamcity_admin_token
):
    result = cli("rotate", "airflow-teamcity-token", "--json", url=receiver.url)
    assert result.returncode == 0, result.stderr
    rotation_id = json.loads(result.stdout)["outcomes"][0]["rotation_id"]
    [rotated] = receiver.wait_for(1)
    assert rotated["title"] == "rotator rotated: airflow-teamcity-token"
    assert rotated["type"] == "success"
    assert f"rotation: {rotation_id}" in rotated["message"]
    assert "next due: " in rotated["message"]

    teamcity_sim.faults.fail_next(5, status=500, only="/tokens", method="POST")
    result = cli("rotate", "airflow-teamcity-token", "--force", url=receiver.url)
    assert result.returncode == 1, result.stderr
    failed = receiver.wait_for(2)[1]
    assert failed["title"] == "rotator failed: airflow-teamcity-token"
    assert failed["type"] == "failure"
    assert (
        "step: mint" in failed["message"]
        and "hint: the current credential was kept" in (failed["message"])
    )
    for secret in [teamcity_admin_token, *_tokens(teamcity_sim)]:
        assert secret not in json.dumps(receiver.posts)
    assert receiver.titles() == [rotated["title"], failed["title"]]  # nothing else was sent


def test_an_unreachable_receiver_never_fails_the_rotation_and_costs_a_bounded_wait(cli, dead_url):
    started = time.monotonic()
    result = cli("rotate", "airflow-teamcity-token", "--json", url=dead_url)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcomes"][0]["result"] == "rotated"
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [notify] = [e for e in events if e["step"] == "notify"]
    assert notify["outcome"] == "failed" and notify["attempts"] == 3
    assert notify["target"] == "notify[0]" and notify["event"] == "rotated"
    assert "json://" in notify["error"]["message"]
    assert dead_url not in result.stderr  # the URL is a secret: named by table and scheme only
    # three refused connections with 0.5 s and 1 s of backoff between them, plus start-up
    assert elapsed < 8, elapsed


def test_doctor_checks_each_url_parses_and_sends_nothing(cli, receiver):
    extra = '\n[[notify]]\nurl_env = "NOTIFY_BAD"\non = ["failed"]\n' + (
        '\n[[notify]]\nurl_env = "NOTIFY_UNSET"\non = ["failed"]\n'
    )
    bad = "nosuchservice://abcdefgh12345678"
    register_secret(bad)
    result = cli("doctor", "--json", url=receiver.url, extra=extra, more_env={"NOTIFY_BAD": bad})
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["notify[0]"]["ok"], checks["notify[0]"]
    assert "json:// URL from $NOTIFY_URL parses" in checks["notify[0]"]["detail"]
    assert (
        not checks["notify[1]"]["ok"]
        and "not one apprise can send to" in (checks["notify[1]"]["detail"])
    )
    assert "nosuchservice://" in checks["notify[1]"]["detail"]
    assert bad not in result.stdout + result.stderr
    assert (
        not checks["notify[2]"]["ok"]
        and "$NOTIFY_UNSET is not set" in (checks["notify[2]"]["detail"])
    )
    assert receiver.posts == []
