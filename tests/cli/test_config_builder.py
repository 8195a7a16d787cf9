"""The suites' ``rotator.toml`` builder writes TOML that reads back as what it was given: paths
with quotes, backslashes and non-ASCII letters included (a test's tmp_path may hold any of them)."""

from __future__ import annotations

import tomllib

from rotator.config import parse
from tests.fixtures.configs import VIEW_PIPELINES, one_token_toml, rotator_toml, teamcity_token


def test_what_the_builder_writes_reads_back_as_given(tmp_path):
    odd = tmp_path / 'dir "quoted" \\ bäckslash' / "store.db"
    text = rotator_toml(
        store=odd,
        teamcity={"url": "http://127.0.0.1:9", "timeout": 2.5, "retries": 0, "verify": True},
        credentials=[teamcity_token(permissions=VIEW_PIPELINES, grace=None)],
        audit={"teamcity": {"every": "1h", "users": ["teamcity-bot"]}},
        notify=[{"url_env": "NOTIFY_URL", "on": ["failed"]}],
    )
    assert tomllib.loads(text) == {
        "store": {"kind": "file", "path": str(odd)},
        "teamcity": {"url": "http://127.0.0.1:9", "timeout": 2.5, "retries": 0, "verify": True},
        "audit": {"teamcity": {"every": "1h", "users": ["teamcity-bot"]}},
        "credentials": [{**teamcity_token(), "permissions": [dict(VIEW_PIPELINES[0])]}],
        "notify": [{"url_env": "NOTIFY_URL", "on": ["failed"]}],
    }


def test_the_usual_config_is_one_rotator_accepts(tmp_path):
    config = parse(tomllib.loads(one_token_toml(tmp_path / "s.db", "http://127.0.0.1:9")), "t")
    assert [c.name for c in config.credentials] == ["airflow-teamcity-token"]
