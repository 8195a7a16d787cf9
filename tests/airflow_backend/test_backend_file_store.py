"""The backend on Rotator's embedded file store only reads it: started in the wrong working
directory or without ``ROTATOR_MASTER_KEY`` it creates no key, no database and no directory,
and its error names the absolute paths it looked at and the settings that choose them. In this
process, and inside a real Airflow CLI process configured through ``backend_kwargs``."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from backends import airflow as backend_module
from backends.airflow import RotatorSecretsBackend
from backends.errors import ConfigError
from backends.file import FileStore
from rotator.servers.airflow import AirflowInstance
from tests.fixtures.leaks import record_output, register_secret

BACKEND = "backends.airflow.RotatorSecretsBackend"
DAGS = Path(__file__).with_name("dags")
PASSWORD = "tok-file-store-backend-0123456789"
KEY = base64.b64encode(b"a" * 32).decode()


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    register_secret(PASSWORD)
    monkeypatch.delenv("ROTATOR_MASTER_KEY", raising=False)
    backend_module._shared.clear()
    yield
    backend_module._shared.clear()


def seed(state: Path, **key: str) -> None:
    """A store at ``state``, written by a rotator with or without the key in its environment."""
    old = os.environ.get("ROTATOR_MASTER_KEY")
    if key:
        os.environ["ROTATOR_MASTER_KEY"] = key["env"]
    try:
        store = FileStore(path=state / "store.db")
        store.put_current(
            "airflow/connections/teamcity_default",
            {"conn_type": "http", "host": "https://tc.example.com", "password": PASSWORD},
            expected=None,
        )
        store.close()
    finally:
        if key:
            os.environ.pop("ROTATOR_MASTER_KEY")
        if old is not None:
            os.environ["ROTATOR_MASTER_KEY"] = old


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_mode, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
    }


def test_in_the_wrong_directory_the_backend_creates_nothing_and_says_where_it_looked(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    backend = RotatorSecretsBackend(store="file")  # default path: relative to the cwd
    for _ in range(2):  # the error is not cached: a store that appears later is read
        with pytest.raises(ConfigError) as err:
            backend.get_conn_value("teamcity_default")
    message = str(err.value)
    assert str(tmp_path / ".rotator" / "store.db") in message
    assert "`path`" in message and "backend_kwargs" in message
    assert "ROTATOR_MASTER_KEY" in message and "key_file" in message
    assert list(tmp_path.iterdir()) == []


def test_without_the_key_the_backend_creates_none_and_names_both_places(tmp_path):
    seed(tmp_path, env=KEY)  # the rotator had the key in its environment; Airflow does not
    before = listing(tmp_path)
    backend = RotatorSecretsBackend(store="file", path=str(tmp_path / "store.db"))
    with pytest.raises(ConfigError) as err:
        backend.get_conn_value("teamcity_default")
    assert "$ROTATOR_MASTER_KEY is not set" in str(err.value)
    assert str(tmp_path / "master.key") in str(err.value) and "key_file" in str(err.value)
    assert PASSWORD not in str(err.value)
    assert listing(tmp_path) == before


def test_the_backend_reads_a_store_it_may_not_write_and_never_writes(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    seed(state)
    for name in ("store.db", "master.key"):
        (state / name).chmod(0o400)
    state.chmod(0o500)
    before = listing(tmp_path)
    try:
        # read_only=False in the kwargs does not make the backend a writer
        backend = RotatorSecretsBackend(store="file", path=str(state / "store.db"), read_only=False)
        assert json.loads(backend.get_conn_value("teamcity_default"))["password"] == PASSWORD
        assert backend.get_conn_value("missing") is None
        store, _ = backend._shared()
        assert store.read_only
        store.close()
        assert listing(tmp_path) == before  # no -wal, -shm or -journal beside it
    finally:
        state.chmod(0o700)


@pytest.mark.airflow
def test_a_task_in_a_wrong_working_directory_creates_nothing_and_logs_where_it_looked(
    airflow_home, tmp_path
):
    """A task run by ``airflow dags test`` (working directory: AIRFLOW_HOME), with a relative
    store path and no ROTATOR_MASTER_KEY: Airflow itself logs a backend's error only at debug
    level, so the backend's own ERROR line is what tells the user where it looked."""
    kwargs = {"store": "file", "path": ".rotator/store.db"}
    airflow = AirflowInstance(
        airflow_home,
        dags_folder=DAGS,
        config={"secrets": {"backend": BACKEND, "backend_kwargs": json.dumps(kwargs)}},
        extra_env={"ROTATOR_MASTER_KEY": "", "ROTATOR_TEST_OUTPUT": str(tmp_path / "seen.json")},
    )
    result = airflow.cli("dags", "test", "read_connection", "2026-01-03", check=False)
    record_output("airflow dags test [stdout]", result.stdout)
    record_output("airflow dags test [stderr]", result.stderr)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and not (tmp_path / "seen.json").exists()
    logged = [line for line in output.splitlines() if "RotatorSecretsBackend cannot use" in line]
    assert logged, output[-3000:]
    assert str(Path(airflow_home) / ".rotator" / "store.db") in logged[0]
    assert "ROTATOR_MASTER_KEY" in logged[0] and "backend_kwargs" in logged[0]
    assert not (Path(airflow_home) / ".rotator").exists()


@pytest.mark.airflow
def test_inside_airflow_a_read_only_store_is_read_and_left_as_it_was(airflow_home, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    seed(state)
    for name in ("store.db", "master.key"):
        (state / name).chmod(0o400)
    state.chmod(0o500)
    before = listing(tmp_path)
    kwargs = {"store": "file", "path": str(state / "store.db")}
    airflow = AirflowInstance(
        airflow_home,
        dags_folder=DAGS,
        config={"secrets": {"backend": BACKEND, "backend_kwargs": json.dumps(kwargs)}},
        extra_env={"ROTATOR_MASTER_KEY": ""},
    )
    try:
        result = airflow.cli("connections", "get", "teamcity_default", "-o", "json")
        record_output("airflow connections get [stderr]", result.stderr)
        assert json.loads(result.stdout)[0]["password"] == PASSWORD
        assert listing(tmp_path) == before
    finally:
        state.chmod(0o700)
