"""``rotator init`` (issue 12, item 1): a commented starter rotator.toml that loads as written,
never overwrites, holds no secret and opens no store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rotator.config import load
from tests.fixtures.leaks import record_output

PASSWORD = "Hunter2pw9"


def rotator(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "rotator", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )
    record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
    record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
    return result


def test_init_writes_a_starter_that_loads_and_says_what_next(tmp_path):
    result = rotator(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "rotator.toml"
    assert str(written) in result.stdout
    commands = [line.strip() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert commands == ["rotator doctor", "rotator status", "rotator rotate --all --dry-run"]
    config = load(written)
    assert config.store_kind == "file" and config.credentials == ()
    assert config.store_options["path"] == str(tmp_path / ".rotator" / "store.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rotator.toml"]  # no store opened


@pytest.mark.parametrize("store", ["file", "vault", "aws"])
def test_every_store_kind_with_both_targets_loads_as_written(tmp_path, store):
    result = rotator(
        tmp_path,
        "init",
        "--store",
        store,
        "--teamcity",
        "https://teamcity.example.com",
        "--airflow",
        "https://airflow.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # https everywhere: no warning
    config = load(tmp_path / "rotator.toml")
    assert config.store_kind == store
    assert config.teamcity.url == "https://teamcity.example.com"
    assert config.airflow.url == "https://airflow.example.com"
    assert [c.type for c in config.credentials] == ["teamcity-token", "airflow-password"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rotator.toml"]


@pytest.mark.parametrize(
    ("option", "table", "credential_type"),
    [("--teamcity", "teamcity", "teamcity-token"), ("--airflow", "airflow", "airflow-password")],
)
def test_one_target_brings_one_credential(tmp_path, option, table, credential_type):
    result = rotator(tmp_path, "init", option, "http://127.0.0.1:8111")
    assert result.returncode == 0, result.stderr
    data = tomllib.loads((tmp_path / "rotator.toml").read_text())
    assert set(data) == {"store", table, "credentials"}
    assert [c["type"] for c in data["credentials"]] == [credential_type]
    assert load(tmp_path / "rotator.toml").credentials[0].type == credential_type


def test_every_line_is_commented_and_no_secret_is_written(tmp_path):
    rotator(
        tmp_path, "init", "--store", "vault", "--teamcity", "https://t", "--airflow", "https://a"
    )
    text = (tmp_path / "rotator.toml").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert all("#" in line for line in lines), [line for line in lines if "#" not in line]
    data = tomllib.loads(text)
    keys = {k for table in data.values() if isinstance(table, dict) for k in table}
    keys |= {k for c in data["credentials"] for k in c}
    assert not keys & {"token", "password", "secret_id"}
    assert data["teamcity"]["token_env"] == "TEAMCITY_TOKEN"
    assert data["airflow"]["password_env"] == "AIRFLOW_ADMIN_PASSWORD"


def test_init_refuses_to_overwrite(tmp_path):
    existing = tmp_path / "rotator.toml"
    existing.write_text("# mine\n")
    before = existing.stat()
    result = rotator(tmp_path, "init", "--teamcity", "https://t")
    assert result.returncode == 2
    assert "already exists" in result.stderr and result.stdout == ""
    assert existing.read_text() == "# mine\n" and existing.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rotator.toml"]


def test_a_password_in_a_url_is_refused_writing_nothing(tmp_path):
    result = rotator(tmp_path, "init", "--teamcity", f"https://admin:{PASSWORD}@tc.example.com")
    assert result.returncode == 2
    assert "teamcity.url" in result.stderr and "user name or password" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []


def test_init_path_option_and_a_missing_directory(tmp_path):
    result = rotator(tmp_path, "init", "--path", "conf/rotator.toml")
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "conf").mkdir()
    result = rotator(tmp_path, "init", "--path", "conf/rotator.toml", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["written"] == str(tmp_path / "conf" / "rotator.toml")
    assert document["next"][0] == "rotator --config conf/rotator.toml doctor"
    # the store it names is beside the file, whatever the working directory
    config = load(tmp_path / "conf" / "rotator.toml")
    assert config.store_options["path"] == str(tmp_path / "conf" / ".rotator" / "store.db")


def test_plain_http_to_another_host_is_written_with_a_warning(tmp_path):
    result = rotator(tmp_path, "init", "--airflow", "http://airflow.internal:8080")
    assert result.returncode == 0
    assert "rotator: warning:" in result.stderr and "airflow.url: plain http://" in result.stderr


def test_the_written_file_works_with_the_next_commands(tmp_path):
    assert rotator(tmp_path, "init", "--teamcity", "http://127.0.0.1:9").returncode == 0
    status = rotator(tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["credentials"][0]["name"] == "airflow-teamcity-token"


def test_init_does_not_need_a_reachable_store(tmp_path):
    """--store vault pointing nowhere: init never connects, it only writes the file."""
    result = rotator(tmp_path, "init", "--store", "vault", env={"VAULT_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "rotator.toml").store_kind == "vault"
