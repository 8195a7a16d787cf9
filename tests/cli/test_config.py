"""Config validation: every bad input is refused with the file, the key and what was expected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rotator.config import load, parse
from rotator.durations import format_duration, parse_duration
from rotator.errors import ConfigError

# CI clones main with shared/ beside it.
DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"
GOOD = """
[store]
kind = "file"
path = "s.db"

[teamcity]
url = "https://teamcity.example.com"

[airflow]
url = "https://airflow.example.com"

[[credentials]]
name = "airflow-teamcity-token"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "teamcity_default"
every = "7d"
lifetime = "10d"
grace = "1d"
permissions = [{ project = "DataPipelines", permission = "view_project" }]

[[credentials]]
name = "teamcity-bot-password"
type = "airflow-password"
user = "teamcity-bot"
conn_id = "airflow_teamcity_bot"
every = "30d"

[[credentials]]
name = "teamcity-airflow-token"
type = "airflow-token"
login_from = "teamcity-bot-password"
every = "12h"
push = [{ teamcity_project = "DataPipelines", parameter = "env.AIRFLOW_API_TOKEN" }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rotator.toml"
    path.write_text(text)
    return path


def test_the_design_example_parses(tmp_path):
    import re

    if not DESIGN.exists():
        pytest.skip("shared/DESIGN.md is not beside this checkout")
    example = re.search(r"```toml\n(.*?)```", DESIGN.read_text(), re.S).group(1)
    config = load(write(tmp_path, example))
    assert config.store_kind == "vault"
    assert [c.type for c in config.credentials] == [
        "teamcity-token",
        "airflow-password",
        "airflow-token",
    ]
    assert config.credentials[2].path == "rotator/values/teamcity-airflow-token"


def test_good_config(tmp_path):
    config = load(write(tmp_path, GOOD))
    token, password, jwt = config.credentials
    assert token.every == timedelta(days=7) and token.lifetime == timedelta(days=10)
    assert token.path == "airflow/connections/teamcity_default"
    assert token.permissions == ({"project": "DataPipelines", "permission": "view_project"},)
    assert password.grace == timedelta(days=1)
    assert jwt.push[0].parameter == "env.AIRFLOW_API_TOKEN" and jwt.login_from == password.name


def test_no_file_means_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROTATOR_CONFIG", raising=False)
    config = load(None)
    assert config.store_kind == "file" and config.credentials == ()
    assert config.source == "<embedded defaults>"


def test_rotator_config_env_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("ROTATOR_CONFIG", str(write(tmp_path, GOOD)))
    assert len(load(None).credentials) == 3


BAD = [
    ("x = [", "not valid TOML"),
    ('[store]\nkind = "etcd"', "unknown store kind 'etcd'"),
    ('[store]\nkind = "file"\ncolour = "blue"', "unknown key(s) in [store]"),
    (
        '[store]\nkind = "vault"\nurl = "http://v"\ntoken = "hvs.abc"',
        "store.token: secrets do not belong",
    ),
    ('[teamcity]\nurl = "https://t"\npassword = "x"', "teamcity.password: secrets do not belong"),
    ('[teamcity]\nurl = "https://t"\ntoken_env = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"', None),
    ('[teamcity]\nurl = "ftp://t"', "teamcity.url: expected an http(s) URL"),
    ('[teamcity]\nurl = "https://t"\ntimeout = "soon"', "teamcity.timeout: expected"),
    ("surprise = 1", "unknown key(s) in the top level: surprise"),
    (
        '[[credentials]]\nname = "a"\ntype = "github"\nconn_id = "c"',
        "credentials[0].type: expected one of",
    ),
    ('[[credentials]]\nname = "a"\ntype = "teamcity-token"\nconn_id = "c"', "user is required"),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\nevery = "7 days"',
        "credentials[0].every",
    ),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\nevery = "0s"',
        "must be longer than zero",
    ),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\nevery = "10d"\nlifetime = "7d"',
        "every must be shorter than lifetime",
    ),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\nwhatever = 1',
        "unknown key(s) in credentials[0]: whatever",
    ),
    (
        '[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"',
        "needs a [teamcity] table",
    ),
    (
        '[airflow]\nurl="https://a"\n[[credentials]]\nname = "t"\ntype = "airflow-token"',
        "login_from is required",
    ),
    (
        '[airflow]\nurl="https://a"\n[[credentials]]\nname = "t"\ntype = "airflow-token"\nlogin_from = "ghost"',
        "login_from 'ghost' names no credential",
    ),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\npush = [{ parameter = "p" }]',
        "push to nowhere",
    ),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\nconn_id = "c"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "v"\nconn_id = "d"',
        "used twice",
    ),
    (
        '[teamcity]\nurl="https://t"\n[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\nconn_id = "c"\n[[credentials]]\nname = "b"\ntype = "teamcity-token"\nuser = "v"\nconn_id = "c"',
        "both store to",
    ),
    ('[rotator]\nlock_ttl = "5m"', "rotator.lock_ttl"),
    ("[rotator]\nparallel = 0", "rotator.parallel"),
    ('[[credentials]]\nname = "bad name!"\ntype = "teamcity-token"', "credentials[0].name"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_is_refused_with_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert str(path) in message
    if expected:
        assert expected in message
    assert "hvs.abc" not in message and "eyJhbGciOiJIUzI1NiJ9" not in message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError):
        load(tmp_path / "bin.toml")


def test_unknown_credential_names_are_bad_input(tmp_path):
    config = load(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="unknown credential 'nope'"):
        config.select(["nope"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("1h30m", 5400), ("7d", 604800), ("2w", 1209600), ("1d12h", 129600)],
)
def test_durations(text, seconds):
    assert parse_duration(text, where="x").total_seconds() == seconds
    assert (
        parse_duration(format_duration(timedelta(seconds=seconds)), where="x").total_seconds()
        == seconds
    )


@pytest.mark.parametrize("text", ["", "7", "d", "7 d", "1.5h", "-1d", "7days", "1h-30m", 7])
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        parse_duration(text, where="credentials[0].every")


def test_zero_only_where_allowed():
    assert parse_duration("0s", where="grace", allow_zero=True) == timedelta()
    with pytest.raises(ConfigError):
        parse_duration("0s", where="every")


def test_parse_accepts_a_dict_directly():
    config = parse({"store": {"kind": "file", "path": "x.db"}}, "inline")
    assert config.store_options == {"path": "x.db"}
