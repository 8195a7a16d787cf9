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


# -- issue 10 defect 11: gaps in what was checked ------------------------------------------

TC = '[teamcity]\nurl = "https://t"\n'
CRED = '[[credentials]]\nname = "a"\ntype = "teamcity-token"\nuser = "u"\n'
PASSWORD = "Hunter2pw9"  # pasted into URLs below; must never come back in a message

GAPS = [
    # durations that overflowed (OverflowError, exit 1) or went silly
    (TC + CRED + 'every = "999999999999d"', "credentials[0].every: too long"),
    (TC + CRED + 'every = "36501d"', "credentials[0].every: too long"),
    (TC + CRED + 'grace = "' + "9" * 5000 + 's"', "credentials[0].grace: too long"),
    (TC + CRED + 'lifetime = "5300w"', "credentials[0].lifetime: too long"),
    # [store] option types and values
    ('[store]\nkind = "vault"\ntimeout = "x"', "store.timeout: expected int or float, got string"),
    ('[store]\nkind = "vault"\ntimeout = true', "store.timeout: expected"),
    ('[store]\nkind = "vault"\ntimeout = 0', "store.timeout: expected a number of seconds"),
    ('[store]\nkind = "aws"\ntimeout = -1.5', "store.timeout"),
    ('[store]\nkind = "aws"\ntimeout = inf', "store.timeout"),
    ('[store]\nkind = "vault"\nurl = "ftp://x"', "store.url: expected an http(s) URL"),
    ('[store]\nkind = "vault"\nurl = 8200', "store.url: expected str"),
    ('[store]\nkind = "vault"\nverify = "no"', "store.verify: expected bool"),
    ('[store]\nkind = "vault"\nauth = "magic"', "store.auth: expected one of token"),
    ('[store]\nkind = "file"\nbusy_timeout = "long"', "store.busy_timeout"),
    ('[store]\nkind = "file"\npath = ""', "store.path: expected a file path"),
    # chosen by the command (read-only for status...), never by the file
    ('[store]\nkind = "file"\nread_only = true', "unknown key(s) in [store] for kind 'file'"),
    ('[store]\nkind = "file"\nstate_prefix = "/abs"', "store.state_prefix: expected a store path"),
    ('[store]\nkind = "aws"\nendpoint_url = "localhost:5000"', "store.endpoint_url: expected"),
    (
        '[store]\nkind = "vault"\nca_bundle = "/nonexistent/ca.pem"',
        "store.ca_bundle: the CA bundle /nonexistent/ca.pem does not exist",
    ),
    (
        '[store]\nkind = "vault"\nconnections_prefix = "rotator/connections"',
        "store.connections_prefix: overlaps store.state_prefix",
    ),
    # [teamcity] / [airflow]
    ('[teamcity]\nurl = "https://t"\ntimeout = 0', "teamcity.timeout: expected a number"),
    ('[teamcity]\nurl = "https://t"\ntimeout = -3', "teamcity.timeout"),
    ('[teamcity]\nurl = "https://t"\ntimeout = true', "teamcity.timeout: expected int or float"),
    ('[teamcity]\nurl = "https://t"\nretries = -1', "teamcity.retries: expected an integer from 0"),
    ('[airflow]\nurl = "https://a"\ntimeout = 0.0', "airflow.timeout"),
    ('[airflow]\nurl = "https://a"\nretries = -1', "airflow.retries"),
    ('[airflow]\nurl = "https://a"\nretries = 1.5', "airflow.retries: expected int"),
    (
        '[teamcity]\nurl = "https://t"\nca_bundle = "/nonexistent/ca.pem"',
        "teamcity.ca_bundle: the CA bundle /nonexistent/ca.pem does not exist",
    ),
    ('[airflow]\nurl = "https://a"\nca_bundle = "nope.pem"', "airflow.ca_bundle"),
    # store paths
    (TC + CRED + 'conn_id = "../x"', "credentials[0].conn_id: expected a store path"),
    (TC + CRED + 'conn_id = "a//b"', "credentials[0].conn_id"),
    (TC + CRED + 'conn_id = "/abs"', "credentials[0].conn_id"),
    (TC + CRED + 'conn_id = "with space"', "credentials[0].conn_id"),
    (TC + CRED + 'path = "a/../b"', "credentials[0].path: expected a store path"),
    (TC + CRED + 'path = "/airflow/connections/x"', "credentials[0].path"),
    (TC + CRED + 'path = "a/"', "credentials[0].path"),
    (TC + CRED + 'path = "rotator/locks/a"', "credentials[0].path: inside store.state_prefix"),
    (
        '[store]\nkind = "file"\nstate_prefix = "ns/state"\n' + TC + CRED + 'path = "ns/state"',
        "credentials[0].path: inside store.state_prefix ('ns/state')",
    ),
    # a password in a URL is a secret in the config file
    (
        f'[teamcity]\nurl = "https://admin:{PASSWORD}@tc.example.com"',
        "teamcity.url: the URL carries",
    ),
    (f'[airflow]\nurl = "http://admin:{PASSWORD}@127.0.0.1:8080"', "airflow.url: the URL carries"),
    (f'[teamcity]\nurl = "https://{PASSWORD}@tc.example.com"', "teamcity.url: the URL carries"),
    (
        f'[store]\nkind = "vault"\nurl = "https://root:{PASSWORD}@vault:8200"',
        "store.url: the URL carries",
    ),
    (
        f'[store]\nkind = "aws"\nendpoint_url = "http://k:{PASSWORD}@127.0.0.1:5000"',
        "store.endpoint_url: the URL carries",
    ),
    (f'[teamcity]\nurl = "https://tc/?token={PASSWORD}"', "teamcity.url: expected an http(s) URL"),
    (f'[teamcity]\nurl = "https://tc:{PASSWORD}"', "teamcity.url: expected an http(s) URL"),
]


@pytest.mark.parametrize(("text", "expected"), GAPS)
def test_gaps_of_defect_11_are_refused_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert PASSWORD not in message


def test_a_password_in_the_teamcity_url_never_reaches_stored_hosts(tmp_path):
    """Today's harm: the URL is copied into every stored connection's host."""
    path = write(tmp_path, f'[teamcity]\nurl = "https://admin:{PASSWORD}@tc.example.com"\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert "user name or password" in str(err.value) and PASSWORD not in repr(err.value)


def test_durations_are_bounded_at_a_hundred_years():
    assert parse_duration("36500d", where="x") == timedelta(days=36500)
    assert parse_duration("0000000000000000001s", where="x") == timedelta(seconds=1)
    for text in ("36500d1s", "999999999999d", "99999999999999999999w"):
        with pytest.raises(ConfigError, match="too long"):
            parse_duration(text, where="x")


def test_a_bad_duration_is_not_echoed():
    with pytest.raises(ConfigError) as err:
        parse_duration("hvs-ish-value", where="f: credentials[0].every")
    assert "hvs-ish-value" not in str(err.value) and "credentials[0].every" in str(err.value)


def test_a_number_in_a_bool_key_is_refused():
    with pytest.raises(ConfigError, match=r"teamcity\.verify_tls: expected bool"):
        parse({"teamcity": {"url": "https://t", "verify_tls": 0}}, "f.toml")


def test_good_store_and_target_options_still_load(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = parse(
        {
            "store": {
                "kind": "vault",
                "url": "https://vault.example.com:8200",
                "timeout": 2,
                "ca_bundle": str(bundle),
                "verify": True,
                "state_prefix": "ns/rotator",
                "connections_prefix": "ns/airflow/connections",
            },
            "teamcity": {
                "url": "https://t",
                "timeout": 0.5,
                "retries": 0,
                "ca_bundle": str(bundle),
            },
            "airflow": {"url": "https://a/airflow", "timeout": 30, "retries": 5},
        },
        "f.toml",
    )
    assert config.store_options["timeout"] == 2 and config.store_options["ca_bundle"] == str(bundle)
    assert config.teamcity.timeout == 0.5 and config.teamcity.retries == 0
    assert config.airflow.url == "https://a/airflow" and config.warnings == ()


# -- warnings: accepted, but said ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"teamcity": {"url": "http://tc.example.com"}},
            "teamcity.url: plain http:// to tc.example.com",
        ),
        ({"airflow": {"url": "http://10.0.0.5:8080"}}, "airflow.url: plain http:// to 10.0.0.5"),
        (
            {"teamcity": {"url": "https://tc.example.com", "verify_tls": False}},
            "teamcity.url: verify_tls = false for tc.example.com",
        ),
        (
            {"store": {"kind": "vault", "url": "http://vault.internal:8200"}},
            "store.url: plain http:// to vault.internal",
        ),
        (
            {"store": {"kind": "vault", "url": "https://vault.internal", "verify": False}},
            "store.url: verify = false for vault.internal",
        ),
        (
            {"store": {"kind": "aws", "endpoint_url": "http://sm.internal"}},
            "store.endpoint_url: plain http://",
        ),
    ],
)
def test_plain_http_or_no_tls_checks_to_another_host_is_a_warning(data, expected):
    config = parse(data, "f.toml")
    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("f.toml: ") and expected in config.warnings[0]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8111", "http://localhost:8080", "http://[::1]:1", "http://127.9.9.9"]
)
def test_loopback_needs_no_tls_and_earns_no_warning(url):
    config = parse({"teamcity": {"url": url, "verify_tls": False}, "airflow": {"url": url}}, "f")
    assert config.warnings == ()


def test_warnings_are_printed_by_the_cli_on_stderr(tmp_path):
    import json
    import os
    import subprocess
    import sys

    path = write(
        tmp_path,
        '[store]\nkind = "file"\npath = "s.db"\n[teamcity]\nurl = "http://tc.example.com"\n',
    )
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "--config", str(path), "status", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "ROTATOR_CONFIG"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"store": "file", "credentials": []}
    assert f"rotator: warning: {path}: teamcity.url: plain http:// to tc.example.com" in (
        result.stderr
    )


# -- new per-credential keys: settle, max_alive, verify_every -------------------------------


def credential(**keys):
    return {
        "teamcity": {"url": "https://t"},
        "credentials": [{"name": "a", "type": "teamcity-token", "user": "u", **keys}],
    }


def test_settle_max_alive_verify_every_defaults():
    spec = parse(credential(), "f.toml").credentials[0]
    assert spec.settle == timedelta(minutes=15)
    assert spec.max_alive == 4
    assert spec.verify_every == timedelta(hours=1)


@pytest.mark.parametrize(
    ("grace", "settle"),
    [("1d", timedelta(minutes=15)), ("5m", timedelta(minutes=5)), ("0s", timedelta())],
)
def test_settle_defaults_to_at_most_grace(grace, settle):
    assert parse(credential(grace=grace), "f.toml").credentials[0].settle == settle


def test_settle_max_alive_verify_every_are_read():
    spec = parse(
        credential(grace="2h", settle="2h", max_alive=2, verify_every="10m"), "f.toml"
    ).credentials[0]
    assert spec.settle == timedelta(hours=2) and spec.max_alive == 2
    assert spec.verify_every == timedelta(minutes=10)
    assert parse(credential(settle="0s"), "f.toml").credentials[0].settle == timedelta()


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"grace": "1h", "settle": "2h"}, "credentials[0].settle: must be at most grace"),
        ({"grace": "0s", "settle": "1s"}, "credentials[0].settle: must be at most grace"),
        ({"settle": "15"}, "credentials[0].settle: not a duration"),
        ({"settle": "999999999999d"}, "credentials[0].settle: too long"),
        ({"max_alive": 1}, "credentials[0].max_alive: expected an integer of at least 2"),
        ({"max_alive": -4}, "credentials[0].max_alive"),
        ({"max_alive": "4"}, "credentials[0].max_alive: expected int, got string"),
        ({"max_alive": True}, "credentials[0].max_alive: expected int"),
        ({"max_alive": 2.5}, "credentials[0].max_alive: expected int"),
        ({"verify_every": "0s"}, "credentials[0].verify_every: must be longer than zero"),
        ({"verify_every": 3600}, "credentials[0].verify_every: expected a duration"),
    ],
)
def test_bad_settle_max_alive_verify_every(keys, expected):
    with pytest.raises(ConfigError) as err:
        parse(credential(**keys), "f.toml")
    assert str(err.value).startswith("f.toml: ") and expected in str(err.value)


def test_the_module_docstring_documents_the_new_keys():
    import rotator.config

    for key in ("settle", "max_alive", "verify_every"):
        assert f"``{key}``" in rotator.config.__doc__


# -- issue 12 item 7: typos get a suggestion -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (credential(evrey="7d"), "unknown key(s) in credentials[0]: evrey (did you mean every?)"),
        (credential(type="airflow-pass"), "did you mean airflow-password?), got string"),
        (credential(setle="1m"), "setle (did you mean settle?)"),
        (credential(max_alve=3), "max_alve (did you mean max_alive?)"),
        (
            {"credential": []},
            "unknown key(s) in the top level: credential (did you mean credentials?)",
        ),
        ({"teamcty": {}}, "teamcty (did you mean teamcity?)"),
        (
            {"rotator": {"paralel": 2}},
            "unknown key(s) in rotator: paralel (did you mean parallel?)",
        ),
        ({"teamcity": {"url": "https://t", "timout": 3}}, "timout (did you mean timeout?)"),
        (
            {"airflow": {"url": "https://a", "pasword_env": "X"}},
            "pasword_env (did you mean password_env?)",
        ),
        ({"store": {"kind": "file", "pth": "x.db"}}, "pth (did you mean path?)"),
        ({"store": {"kind": "vault", "tokn_file": "t"}}, "tokn_file (did you mean token_file?)"),
        (
            credential(push=[{"parameter": "p", "teamcity_projet": "P"}]),
            "teamcity_projet (did you mean teamcity_project?)",
        ),
    ],
)
def test_unknown_keys_suggest_the_closest_known_one(data, expected):
    with pytest.raises(ConfigError) as err:
        parse(data, "f.toml")
    assert expected in str(err.value)


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(ConfigError) as err:
        parse(credential(zzzzzz=1), "f.toml")
    assert str(err.value).endswith("credentials[0]: zzzzzz")
