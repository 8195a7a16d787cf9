"""``[[notify]]`` and ``announce`` as bad input: a clear error naming the key, never the value,
and nothing changed (exit 2 before any store is opened)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rotator.config import parse
from rotator.errors import ConfigError
from tests.fixtures.leaks import record_output, register_secret

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
BASE = {"store": {"kind": "file", "path": "s.db"}}


def _refused(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse({**BASE, **data}, "rotator.toml")
    return str(caught.value)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"url": SLACK, "on": ["failed"]}, ["notify[0].url", "url_env", "url_file"]),
        ({"urls": [SLACK], "on": ["failed"]}, ["notify[0].urls", "url_env"]),
        ({"url_env": SLACK, "on": ["failed"]}, ["NAME of an environment variable"]),
        ({"url_file": SLACK, "on": ["failed"]}, ["notify[0].url_file", "path of a file"]),
    ],
)
def test_an_inline_notification_url_is_refused_without_echoing_it(table, words):
    register_secret(SLACK)
    message = _refused({"notify": [table]})
    assert all(w in message for w in words), message
    assert SLACK not in message and "TIiajk" not in message


def test_an_unknown_event_names_the_closest_one_and_the_known_ones():
    message = _refused({"notify": [{"url_env": "SLACK_URL", "on": ["failed", "rotatd"]}]})
    assert "notify[0].on" in message and "rotatd (did you mean rotated?)" in message
    assert "foreign-expiring" in message


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"url_env": "A", "url_file": "f", "on": ["failed"]}, ["exactly one of url_env"]),
        ({"on": ["failed"]}, ["exactly one of url_env"]),
        ({"url_env": "A"}, ["notify[0].on is required"]),
        ({"url_env": "A", "on": []}, ["notify[0].on", "non-empty list"]),
        ({"url_env": "A", "on": ["failed"], "credentials": ["nope"]}, ["no credential named nope"]),
        ({"url_env": "A", "on": ["failed"], "evry": 1}, ["evry"]),
    ],
)
def test_other_bad_notify_tables(table, words):
    message = _refused({"notify": [table]})
    assert all(w in message for w in words), message


def test_announce_needs_a_conn_id_and_an_airflow_table():
    credential = {"name": "t", "type": "teamcity-token", "user": "u", "announce": True}
    teamcity = {"url": "http://127.0.0.1:1"}
    message = _refused({"teamcity": teamcity, "credentials": [credential]})
    assert "announce needs a conn_id" in message
    message = _refused({"teamcity": teamcity, "credentials": [{**credential, "conn_id": "c"}]})
    assert "announce = true needs an [airflow] table" in message


def test_a_good_notify_table_and_audit_schedule_parse():
    config = parse(
        {
            **BASE,
            "teamcity": {"url": "http://127.0.0.1:1"},
            "notify": [{"url_env": "SLACK_URL", "on": ["failed", "expiring"]}],
            "audit": {"teamcity": {"every": "1d", "users": ["bob"], "within": "7d"}},
        },
        "rotator.toml",
    )
    assert config.notify[0].on == ("failed", "expiring") and config.notify[0].url_env == "SLACK_URL"
    assert config.standing.every is not None and config.standing.users == ("bob",)


def test_the_cli_refuses_an_inline_url_with_exit_2_and_creates_nothing(tmp_path):
    register_secret(SLACK)
    config = tmp_path / "rotator.toml"
    config.write_text(f'[store]\nkind = "file"\n\n[[notify]]\nurl = "{SLACK}"\non = ["failed"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "--config", str(config), "rotate", "--all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    record_output("rotator rotate (inline notify url) [stderr]", result.stderr)
    record_output("rotator rotate (inline notify url) [stdout]", result.stdout)
    assert result.returncode == 2, result.stderr
    assert "notify[0].url" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rotator.toml"]
