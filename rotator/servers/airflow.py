"""A real Airflow 3.3 on loopback, for ``rotator demo`` and the tests.

One ``AirflowInstance`` is one ``AIRFLOW_HOME`` with its own SQLite database, the FAB auth
manager (the Airflow issuers target its users API), and any of the long-running components
(``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``) started as child processes.
Every secret Airflow needs (JWT signing key, API secret key, user passwords) reaches it through
the environment or stdin, never argv, because argv is world-readable in ``/proc``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from backends.errors import RotatorError
from rotator.servers.process import ServerProcess, free_port

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"

_CREATE_USERS = """
import json, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
users = json.loads(sys.stdin.read())
with get_application_builder() as ab:
    for u in users:
        role = ab.sm.find_role(u["role"])
        if role is None:
            raise SystemExit("no such Airflow role: " + u["role"])
        found = ab.sm.find_user(u["username"])
        if found is None:
            if not ab.sm.add_user(u["username"], u["username"], "rotator",
                                  u["username"] + "@example.invalid", role, u["password"]):
                raise SystemExit("could not create Airflow user " + u["username"])
        else:
            ab.sm.reset_password(found.id, u["password"])
"""


class AirflowError(RotatorError, RuntimeError):
    """An Airflow CLI command failed; the message carries its output, which holds no secret."""


class AirflowInstance:
    """An isolated Airflow installation under ``home``.

    ``config`` adds ``AIRFLOW__SECTION__KEY`` style settings, e.g.
    ``{"secrets": {"backend": "...", "backend_kwargs": "{...}"}}``. ``base_env`` is the
    environment its processes start from (default: this process's, read at each start); a
    caller setting it up in a background thread passes a copy of its own, so that what another
    thread sets in ``os.environ`` meanwhile never reaches Airflow. ``nice``: the niceness its
    one-shot commands (``db migrate``, user set-up; not the components) run with, for a caller
    that sets it up while other work should come first (the tests' background set-ups).
    """

    def __init__(
        self,
        home: Path,
        *,
        port: int | None = None,
        dags_folder: Path | None = None,
        config: Mapping[str, Mapping[str, str]] | None = None,
        extra_env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        nice: int = 0,
    ) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.dags_folder = Path(dags_folder) if dags_folder else self.home / "dags"
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        self.config = {k: dict(v) for k, v in (config or {}).items()}
        self.extra_env = dict(extra_env or {})
        self.base_env = dict(base_env) if base_env is not None else None
        self.nice = nice
        self._jwt_secret = secrets.token_urlsafe(32)
        self._api_secret = secrets.token_urlsafe(32)
        self.processes: dict[str, ServerProcess] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment every Airflow process of this instance runs with."""
        base = os.environ if self.base_env is None else self.base_env
        env = {k: v for k, v in base.items() if not k.startswith("AIRFLOW__")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__SECRET_KEY": self._api_secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir),
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
                # a DAG file written next is listed within about a second (the check for a due
                # refresh defaults to every 5 s too); listing a small folder is cheap
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for section, values in self.config.items():
            for key, value in values.items():
                env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = value
        env.update(self.extra_env)
        env.update(overrides)
        return env

    # -- one-shot commands -----------------------------------------------------------------
    def cli(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` here; raise ``AirflowError`` on failure if ``check``."""
        return self._run([sys.executable, "-m", "airflow", *args], input, env, check, timeout)

    def python(
        self, code: str, *, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet with this instance's environment (secrets go through stdin)."""
        return self._run([sys.executable, "-c", code], input, None, check, timeout)

    def _run(
        self,
        argv: Sequence[str],
        input: str | None,
        env: Mapping[str, str] | None,
        check: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        prefix = ["nice", "-n", str(self.nice)] if self.nice else []
        result = subprocess.run(
            [*prefix, *argv],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(**(env or {})),
            cwd=self.home,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            what = " ".join(argv[2:4]) if argv[1] == "-m" else "python snippet"
            raise AirflowError(
                f"airflow {what} exited {result.returncode}:\n{result.stdout[-2000:]}\n"
                f"{result.stderr[-4000:]}"
            )
        return result

    def migrate(self) -> None:
        """Create or upgrade the metadata database (Airflow's and FAB's tables)."""
        self.cli("db", "migrate")

    def create_users(self, users: Iterable[Mapping[str, str]]) -> None:
        """Create FAB users (``username``, ``password``, ``role``), or reset their password.

        Passwords travel over stdin: ``airflow users create --password`` would put them in argv.
        """
        payload = [
            {"username": u["username"], "password": u["password"], "role": u.get("role", "User")}
            for u in users
        ]
        self.python(_CREATE_USERS, input=json.dumps(payload))

    # -- long-running components -----------------------------------------------------------
    def start(self, components: Sequence[str] = ("api-server",), timeout: float = 120) -> None:
        """Start components (``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``)
        and wait until each is ready: the API server answers its health endpoint, the others
        report a heartbeat through it (or, without an API server, are simply running).

        All of them are spawned at once and then waited for in the order given: each spends
        seconds importing Airflow before it does anything, and none needs another to boot (the
        others reach the API server only once they have work), so booting them side by side
        costs the slowest, not the sum."""
        started: list[ServerProcess] = []
        for name in components:
            if name in self.processes and self.processes[name].running():
                continue
            argv = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                argv += ["--host", "127.0.0.1", "--port", str(self.port)]
            proc = ServerProcess(
                f"airflow {name}",
                argv,
                ready=self._ready_check(name),
                log_path=self.log_dir / f"{name}.log",
                env=self.env(),
                cwd=self.home,
                timeout=timeout,
            )
            self.processes[name] = proc  # registered first: ``stop`` ends it whatever happens
            started.append(proc.launch())
        for proc in started:
            proc.wait_ready()

    def _ready_check(self, name: str) -> Any:
        import requests

        def api_ready() -> bool:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=1).status_code == 200

        def component_ready() -> bool:
            if "api-server" not in self.processes:
                return True
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=1).json()
            key = name.replace("-", "_")
            return health.get(key, {}).get("status") == "healthy"

        return api_ready if name == "api-server" else component_ready

    def stop(self) -> None:
        """Stop every component, newest first, one at a time (the API server last: the others
        may report to it while they stop). Each takes 1-2 s, mostly CPython's final garbage
        collection of Airflow's heap after its shutdown is complete. Stopping them side by side
        was tried: under that CPU load a supervisor of Airflow's (triggerer, DAG processor) more
        often misses its child's exit and waits out its escalation delay (4 of 6 stops side by
        side here, 1 of 4 one at a time), which costs more than it saves. A component still
        running 4 s after SIGTERM gets a second one, which Airflow's supervisors take as "exit
        now": that ends such a missed-exit wait instead of sitting out its 10 s."""
        for proc in reversed(list(self.processes.values())):
            proc.stop(nudge=4.0)
        self.processes.clear()

    def __enter__(self) -> AirflowInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
