"""Real parts for the Credentials page: the TeamCity simulator, a file store filled by real
rotations of the demo's three credentials, and Airflow 3.3 API servers with Rotator's plugin
loaded through its entry point and Rotator's secrets backend reading that store.

``ui_stack`` (session): the FAB auth manager instance (users ``admin``: Admin, ``viewer``:
Viewer, which may not read connections; ``teamcity-bot``: the account whose password Rotator
rotates), after ``rotator rotate --all``, with ``ROTATOR_CONFIG`` set: the page reads
rotator.toml and the audit file. ``simple_airflow`` (session, started only by the tests that
ask): a second API server with Airflow's simple auth manager (``admin``: admin, ``viewer``:
viewer) reading the same store, configured as a user who only installed the plugin would:
``AIRFLOW__SECRETS__BACKEND`` / ``AIRFLOW__SECRETS__BACKEND_KWARGS`` and nothing else (no
``ROTATOR_CONFIG``, no rotator.toml in its working directory), so its page reads the store
alone.

Both are set up in the background from the end of collection (``tests.fixtures.early``), the
FAB one first, so that their ~50 s of ``db migrate``, users, the first rotation and two API
server boots run beside the suites collected before this one.

Every password, stored value and JWT is registered with the leak scan, and ``Http.get`` writes
every response body it receives to a file the scan searches.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from rotator.servers.airflow import AirflowInstance
from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator
from tests.fixtures import early
from tests.fixtures.airflow import strong_password
from tests.fixtures.leaks import record_output, register_output, register_secret

BACKEND = "backends.airflow.RotatorSecretsBackend"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
NAMES = ("airflow-teamcity-token", "teamcity-bot-password", "teamcity-airflow-token")

CONFIG = """\
[store]
kind = "file"
path = "store/store.db"
connections_prefix = "airflow/connections"

[teamcity]
url = "{teamcity_url}"
token_env = "TEAMCITY_TOKEN"

[airflow]
url = "{airflow_url}"

[rotator]
audit_file = "audit.jsonl"

[[credentials]]
name = "airflow-teamcity-token"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "teamcity_default"
every = "7d"
lifetime = "10d"
permissions = [{{ project = "DataPipelines", permission = "view_project" }}]

[[credentials]]
name = "teamcity-bot-password"
type = "airflow-password"
user = "teamcity-bot"
conn_id = "airflow_teamcity_bot"
every = "30d"

[[credentials]]                 # Airflow's JWTs live 24 h: a 1-day lead keeps this one amber
name = "teamcity-airflow-token"
type = "airflow-token"
login_from = "teamcity-bot-password"
every = "12h"
lead = "1d"
push = [{{ teamcity_project = "DataPipelines", parameter = "env.AIRFLOW_API_TOKEN" }}]
"""


class Http:
    """GETs whose bodies all reach the leak scan (a file per response, in a scanned folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        register_output(folder)
        self._count = itertools.count()

    def get(self, url: str, token: str | None = None) -> requests.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = requests.get(url, headers=headers, timeout=30)
        (self.folder / f"{next(self._count):03d}.txt").write_text(
            f"GET {url} -> {response.status_code}\n{response.text}"
        )
        return response


class Token(str):
    """A JWT that pytest never prints whole (a failing test shows its arguments)."""

    def __repr__(self) -> str:
        return "Token(...)"


def login(url: str, username: str, password: str) -> Token:
    """A JWT from Airflow's ``/auth/token`` (both auth managers answer it), registered."""
    response = requests.post(
        f"{url}/auth/token", json={"username": username, "password": password}, timeout=30
    )
    assert response.status_code == 201, response.text
    token = Token(response.json()["access_token"])
    register_secret(token)
    return token


@dataclass
class UiStack:
    home: Path
    airflow: AirflowInstance
    sim: TeamCitySimulator
    config: Path
    admin: tuple[str, str] = field(repr=False)
    viewer: tuple[str, str] = field(repr=False)
    cli_env: dict[str, str] = field(repr=False)
    http: Http = field(repr=False)

    @property
    def url(self) -> str:
        return self.airflow.url

    def rotator(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``rotator --config <config> ARGS``, as an operator runs it (audit to the config's
        ``audit_file``); its output joins the leak scan."""
        result = subprocess.run(
            [sys.executable, "-m", "rotator", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.cli_env,
            timeout=300,
            check=False,
        )
        record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
        return result

    def register_stored_secrets(self) -> None:
        for value in self.stored_secrets():
            register_secret(value)

    def stored_secrets(self) -> list[str]:
        """The password field of every stored version (tokens, passwords, JWTs)."""
        from backends.store import open_store
        from rotator.config import load

        store = open_store("file", path=self.home / "store" / "store.db", read_only=True)
        try:
            return [
                v.value["password"]
                for spec in load(self.config).credentials
                for v in store.versions(spec.path)
                if v.value.get("password")
            ]
        finally:
            store.close()


def _backend_config(home: Path) -> dict[str, dict[str, str]]:
    kwargs = {"store": "file", "path": str(home / "store" / "store.db")}
    return {"secrets": {"backend": BACKEND, "backend_kwargs": json.dumps(kwargs)}}


@contextmanager
def _ui_stack() -> Iterator[UiStack]:
    """Set up in the background worker (``tests.fixtures.early``): everything it starts takes
    its environment from ``early.base_env()``."""
    home = early.tmp_path_factory().mktemp("ui")
    admin = ("admin", strong_password())
    viewer = ("viewer", strong_password())
    bot = ("teamcity-bot", strong_password())
    tc_token = f"adm-{strong_password()}"
    for secret in (admin[1], viewer[1], bot[1], tc_token):
        register_secret(secret)
    config = home / "rotator.toml"
    airflow = AirflowInstance(
        home / "airflow",
        config=_backend_config(home),
        extra_env={"ROTATOR_CONFIG": str(config)},
        base_env=early.base_env(),
        nice=early.NICE,
    )
    register_output(airflow.log_dir)
    register_output(home / "audit.jsonl")
    with TeamCitySimulator(admin_token=tc_token, seed=DEMO_SEED) as sim:
        try:
            config.write_text(CONFIG.format(teamcity_url=sim.url, airflow_url=airflow.url))
            airflow.migrate()
            airflow.create_users(
                [
                    {"username": admin[0], "password": admin[1], "role": "Admin"},
                    {"username": viewer[0], "password": viewer[1], "role": "Viewer"},
                    {"username": bot[0], "password": bot[1], "role": "User"},
                ]
            )
            _take_over(home, airflow.url, bot)
            airflow.start(["api-server"])
            env = {k: v for k, v in early.base_env().items() if not k.startswith("AIRFLOW__")}
            env.update(
                TEAMCITY_TOKEN=tc_token,
                AIRFLOW_ADMIN_USER=admin[0],
                AIRFLOW_ADMIN_PASSWORD=admin[1],
            )
            env.pop("ROTATOR_CONFIG", None)
            stack = UiStack(
                home, airflow, sim, config, admin, viewer, env, Http(home / "responses")
            )
            rotated = stack.rotator("rotate", "--all", "--force")  # the password too
            assert rotated.returncode == 0, rotated.stdout + rotated.stderr
            stack.register_stored_secrets()
            yield stack
        finally:
            airflow.stop()
            for user in sim.state.users.values():
                for token in user.tokens.values():
                    register_secret(token.value)


_UI = early.EarlyStart("ui_stack", _ui_stack)


@pytest.fixture(scope="session")
def ui_stack() -> Iterator[UiStack]:
    try:
        yield _UI.get()
    finally:
        _UI.close()


def _take_over(home: Path, airflow_url: str, bot: tuple[str, str]) -> None:
    """Store the bot's hand-set password first, as an operator taking an account over does
    (the demo does the same): the token credential logs in with it."""
    from backends.file import FileStore

    store = FileStore(path=home / "store" / "store.db")
    store.put_current(
        "airflow/connections/airflow_teamcity_bot",
        {"conn_type": "http", "host": airflow_url, "login": bot[0], "password": bot[1]},
        expected=None,
    )
    store.close()


@dataclass
class SimpleAirflow:
    airflow: AirflowInstance
    admin: tuple[str, str] = field(repr=False)
    viewer: tuple[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return self.airflow.url


@contextmanager
def _simple_airflow() -> Iterator[SimpleAirflow]:
    """Airflow with its simple auth manager, reading the FAB stack's store through the secrets
    backend setting only (an empty ``ROTATOR_CONFIG`` counts as unset: one in the test's own
    environment must not reach it). Its password file is written before it starts, so it
    generates (and prints) none. Set up in the background worker, after ``ui_stack``."""
    ui_stack = _UI.get()
    home = ui_stack.home / "airflow-simple"
    home.mkdir()
    admin, viewer = ("admin", strong_password()), ("viewer", strong_password())
    for _, password in (admin, viewer):
        register_secret(password)
    passwords = home / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({admin[0]: admin[1], viewer[0]: viewer[1]}))
    passwords.chmod(0o600)
    config = _backend_config(ui_stack.home)
    config["core"] = {
        "auth_manager": SIMPLE_AUTH_MANAGER,
        "simple_auth_manager_users": "admin:admin,viewer:viewer",
        "simple_auth_manager_passwords_file": str(passwords),
    }
    airflow = AirflowInstance(
        home,
        config=config,
        extra_env={"ROTATOR_CONFIG": ""},
        base_env=early.base_env(),
        nice=early.NICE,
    )
    assert not (home / "rotator.toml").exists()  # its working directory
    register_output(airflow.log_dir)
    try:
        airflow.migrate()
        airflow.start(["api-server"])
        yield SimpleAirflow(airflow, admin, viewer)
    finally:
        airflow.stop()


_SIMPLE = early.EarlyStart("simple_airflow", _simple_airflow)


@pytest.fixture(scope="session")
def simple_airflow(ui_stack: UiStack) -> Iterator[SimpleAirflow]:
    """The simple auth manager server (see ``_simple_airflow``); stopped before ``ui_stack``."""
    try:
        yield _SIMPLE.get()
    finally:
        _SIMPLE.close()


def credentials_json(http: Http, url: str, token: str) -> dict[str, Any]:
    response = http.get(f"{url}/rotator/api/v1/credentials", token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()
