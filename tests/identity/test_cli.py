"""``rotator identity check`` explains a decision offline (``--jwks-file``), never printing
the token."""

from __future__ import annotations

import json

import pytest

from rotator.cli import main
from tests.identity.tokens import AUDIENCE, ISSUER, claims, sign

CONFIG = f"""
[identity]
issuer = "{ISSUER}"
audience = "{AUDIENCE}"

[[identity.allow]]
name = "publish"
build_type_external_id = "DataPipelines_Publish"
dags = ["report"]
conf_keys = ["artifact"]

[[identity.allow]]
project_external_id = "Other"
dags = ["*"]
"""


@pytest.fixture
def files(tmp_path, key):
    (tmp_path / "rotator.toml").write_text(CONFIG)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk]}))
    return tmp_path


def check(files, token, *extra):
    (files / "token").write_text(token)
    argv = ["--config", str(files / "rotator.toml"), "identity", "check"]
    argv += ["--token-file", str(files / "token"), "--jwks-file", str(files / "jwks.json")]
    return main([*argv, *extra])


def test_allowed_names_the_rule_and_the_run_user(files, key, capsys):
    token = sign(key, claims(build_id=9))
    assert check(files, token, "--dag", "report", "--conf-key", "artifact") == 0
    out = capsys.readouterr().out
    assert out.startswith("ALLOWED: allowed by identity.allow[0] (publish)")
    assert "teamcity:DataPipelines_Publish#9" in out and token not in out


def test_denied_says_why_each_rule_did_not_allow(files, key, capsys):
    token = sign(key, claims())
    assert check(files, token, "--dag", "deploy", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == 403 and report["claims"]["build_type_external_id"]
    assert report["rules"] == [
        "identity.allow[0] (publish): DAG 'deploy' is not in its dags",
        "identity.allow[1]: project_external_id is not Other",
    ]


def test_a_bad_token_is_a_401_and_bad_input_exits_2(files, key, other_key, capsys):
    assert check(files, sign(other_key, claims()), "--dag", "report") == 1
    assert "DENIED (401)" in capsys.readouterr().out
    (files / "rotator.toml").write_text("")
    assert check(files, sign(key, claims()), "--dag", "report") == 2
    assert "no [identity] table" in capsys.readouterr().err
