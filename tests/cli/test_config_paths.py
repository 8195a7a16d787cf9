"""Relative paths in rotator.toml resolve against the config file's directory, never the
working directory (issue 10, defect 13). Without a config file the embedded defaults keep
``.rotator/`` in the working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rotator.config import load
from rotator.errors import ConfigError
from tests.fixtures.leaks import record_output, register_output, register_secret

EVERY_PATH = """
[store]
kind = "file"
path = "state/store.db"
key_file = "keys/master.key"

[teamcity]
url = "http://127.0.0.1:9"
token_file = "secrets/teamcity-token"
ca_bundle = "certs/ca.pem"

[airflow]
url = "http://127.0.0.1:9"
password_file = "secrets/airflow-admin"

[rotator]
audit_file = "logs/audit.jsonl"
"""


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """``(conf, cwd)``: the config file's directory and an unrelated working directory."""
    conf, cwd = tmp_path / "conf", tmp_path / "cwd"
    (conf / "certs").mkdir(parents=True)
    (conf / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("ROTATOR_CONFIG", raising=False)
    return conf, cwd


def test_every_relative_path_resolves_against_the_config_directory(dirs):
    conf, _ = dirs
    (conf / "rotator.toml").write_text(EVERY_PATH)
    config = load(conf / "rotator.toml")
    assert config.store_options["path"] == str(conf / "state/store.db")
    assert config.store_options["key_file"] == str(conf / "keys/master.key")
    assert config.teamcity.token_file == str(conf / "secrets/teamcity-token")
    assert config.teamcity.ca_bundle == str(conf / "certs/ca.pem")
    assert config.airflow.password_file == str(conf / "secrets/airflow-admin")
    assert config.engine.audit_file == str(conf / "logs/audit.jsonl")


def test_a_relative_config_path_still_gives_absolute_paths(dirs, monkeypatch):
    conf, _ = dirs
    (conf / "rotator.toml").write_text(EVERY_PATH)
    monkeypatch.chdir(conf.parent)
    config = load("conf/rotator.toml")
    assert config.store_options["path"] == str(conf / "state/store.db")
    assert Path(config.engine.audit_file).is_absolute()


def test_vault_file_options_resolve_too(dirs):
    conf, _ = dirs
    (conf / "rotator.toml").write_text(
        '[store]\nkind = "vault"\nurl = "http://127.0.0.1:8200"\ntoken_file = "vault-token"\n'
        'ca_bundle = "certs/ca.pem"\nsecret_id_file = "ids/secret-id"\n'
    )
    options = load(conf / "rotator.toml").store_options
    assert options["token_file"] == str(conf / "vault-token")
    assert options["ca_bundle"] == str(conf / "certs/ca.pem")
    assert options["secret_id_file"] == str(conf / "ids/secret-id")


def test_absolute_paths_are_kept(dirs, tmp_path):
    conf, _ = dirs
    (conf / "rotator.toml").write_text(
        f'[store]\nkind = "file"\npath = "{tmp_path / "abs.db"}"\n'
        f'[rotator]\naudit_file = "{tmp_path / "audit.jsonl"}"\n'
    )
    config = load(conf / "rotator.toml")
    assert config.store_options["path"] == str(tmp_path / "abs.db")
    assert config.engine.audit_file == str(tmp_path / "audit.jsonl")


@pytest.mark.parametrize(
    "text", ["", '[store]\nkind = "file"\n', '[store]\nkind = "file"\nkey_env = "MY_KEY"\n']
)
def test_the_default_store_of_a_config_file_is_beside_it(dirs, text):
    conf, _ = dirs
    (conf / "rotator.toml").write_text(text)
    assert load(conf / "rotator.toml").store_options["path"] == str(conf / ".rotator/store.db")


def test_without_a_config_file_the_default_stays_in_the_working_directory(dirs):
    _, cwd = dirs
    config = load(None)
    assert config.source == "<embedded defaults>"
    assert config.store_options["path"] == ".rotator/store.db"
    assert Path(config.store_options["path"]).absolute() == cwd / ".rotator/store.db"


def test_a_ca_bundle_is_looked_up_beside_the_config_not_in_the_working_directory(dirs):
    conf, cwd = dirs
    (cwd / "only-here.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (conf / "rotator.toml").write_text(
        '[teamcity]\nurl = "https://t"\nca_bundle = "only-here.pem"\n'
    )
    with pytest.raises(ConfigError, match=r"teamcity\.ca_bundle: the CA bundle .*does not exist"):
        load(conf / "rotator.toml")


# -- through the CLI, as users run it ---------------------------------------------------------

CREDENTIAL = """
[teamcity]
url = "{url}"
token_file = "tc-token"
timeout = 2
retries = 1

[rotator]
audit_file = "logs/audit.jsonl"

[[credentials]]
name = "airflow-teamcity-token"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "teamcity_default"
every = "7d"
lifetime = "10d"
"""


def rotator(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTATOR_", "TEAMCITY_"))}
    result = subprocess.run(
        [sys.executable, "-m", "rotator", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )
    record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
    record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
    return result


def test_status_from_another_directory_reads_the_default_store_beside_the_config(dirs):
    from backends.file import FileStore

    conf, cwd = dirs
    (conf / "rotator.toml").write_text(CREDENTIAL.format(url="http://127.0.0.1:9"))
    # A value stored where the config says (the default .rotator/ beside it), key beside it.
    store = FileStore(path=conf / ".rotator" / "store.db")
    store.put_current(
        "airflow/connections/teamcity_default",
        {"conn_type": "http", "host": "h", "login": "airflow-bot", "password": "not-a-real-one"},
        expected=None,
    )
    store.close()
    result = rotator(cwd, "--config", str(conf / "rotator.toml"), "status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["credentials"][0]["version"] == "1"
    assert list(cwd.iterdir()) == []


def test_rotate_from_another_directory_keeps_everything_beside_the_config(
    dirs, teamcity_sim, teamcity_admin_token
):
    conf, cwd = dirs
    (conf / "rotator.toml").write_text(
        CREDENTIAL.format(url=teamcity_sim.url)
        + '\n[store]\nkind = "file"\npath = "state/store.db"\nkey_file = "keys/master.key"\n'
    )
    (conf / "tc-token").write_text(teamcity_admin_token + "\n")
    register_output(conf / "logs" / "audit.jsonl")
    try:
        result = rotator(cwd, "--config", str(conf / "rotator.toml"), "rotate", "--all", "--json")
    finally:
        for user in teamcity_sim.state.users.values():
            for token in user.tokens.values():
                register_secret(token.value)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["outcomes"][0]["result"] == "rotated"
    assert (conf / "state" / "store.db").exists()  # [store] path
    assert (conf / "keys" / "master.key").exists()  # [store] key_file
    assert (conf / "logs" / "audit.jsonl").read_text().strip()  # [rotator] audit_file
    assert list(cwd.iterdir()) == []  # and token_file was read beside the config
    status = rotator(cwd, "--config", str(conf / "rotator.toml"), "status", "--json")
    assert json.loads(status.stdout)["credentials"][0]["version"] is not None
