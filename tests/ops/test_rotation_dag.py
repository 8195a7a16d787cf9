"""The ``rotator_rotations`` DAG run for real: the session's Airflow stack (LocalExecutor),
OpenBao as the store every task process shares, the TeamCity simulator as the target.

The overlap is real, not simulated: an operator's ``rotator rotate`` (its own process) holds
one credential's lease in OpenBao while it waits on TeamCity (a gate in front of the
simulator holds its token create), and the DAG runs meanwhile. The mapped task for that credential
must leave it alone (skipped, naming the holder); the other tasks rotate theirs; then the gate
opens and the operator's run rotates it, so it is rotated exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.airflow_stack import poll
from tests.fixtures.leaks import record_output, register_output, register_secret

DAG_FILE = Path(__file__).resolve().parents[2] / "ops" / "airflow" / "dags" / "rotator_rotations.py"
DAG_ID = "rotator_rotations"
USERS = {"dag-a": "airflow-bot", "dag-b": "teamcity-bot", "dag-held": "airflow-bot"}
HELD = "dag-held"

CONFIG = """\
[store]
kind = "vault"
url = "{vault_url}"
auth = "token"
token_file = "{vault_token_file}"
mount = "secret"
connections_prefix = "{ns}/airflow/connections"
state_prefix = "{ns}/rotator"

[teamcity]
url = "{teamcity_url}"
token_file = "{teamcity_token_file}"
timeout = 120
"""

CREDENTIAL = """
[[credentials]]
name = "{name}"
type = "teamcity-token"
user = "{user}"
conn_id = "{ns}_{name}"
every = "7d"
lifetime = "10d"
permissions = [{{ project = "DataPipelines", permission = "view_project" }}]
"""


class Gate:
    """An HTTP forwarder on loopback that holds every write (the token create) until
    ``open()``: a TeamCity that mints only when the test says so, so its client sits at the
    mint, mid-rotation, with the lease it took with its intent. Reads pass (a run reads the
    user's tokens before its intent, and holds no lease yet then)."""

    def __init__(self, upstream: str) -> None:
        self.opened = threading.Event()
        self.waiting = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if self.command != "GET":
                    gate.waiting += 1
                    gate.opened.wait(timeout=120)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = requests.request(
                    self.command, upstream + self.path, headers=headers, data=body, timeout=60
                )
                # the client may be gone (killed after a failed assertion): nothing to answer
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(answer.status_code)
                    for key in ("Content-Type", "Location"):
                        if key in answer.headers:
                            self.send_header(key, answer.headers[key])
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def open(self) -> None:
        self.opened.set()

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dag_setup(airflow_stack, openbao, teamcity_sim, teamcity_admin_token, tmp_path) -> Iterator:
    """Configs for the DAG (at ``$ROTATOR_CONFIG`` of the stack) and for the operator's run
    (the same, with TeamCity behind the gate); bootstrap tokens in 0600 files, not the env."""
    register_secret(openbao.token)
    ns = f"dag{uuid.uuid4().hex[:8]}"
    files = {}
    for name, value in (("vault", openbao.token), ("teamcity", teamcity_admin_token)):
        files[name] = tmp_path / f"{name}.token"
        files[name].touch(mode=0o600)
        files[name].write_text(value)
    gate = Gate(teamcity_sim.url)

    def config(teamcity_url: str) -> str:
        text = CONFIG.format(
            vault_url=openbao.url,
            vault_token_file=files["vault"],
            ns=ns,
            teamcity_url=teamcity_url,
            teamcity_token_file=files["teamcity"],
        )
        return text + "".join(CREDENTIAL.format(name=n, user=u, ns=ns) for n, u in USERS.items())

    airflow_stack.rotator_config.write_text(config(teamcity_sim.url))
    gated = tmp_path / "operator.toml"
    gated.write_text(config(gate.url))
    try:
        yield airflow_stack, teamcity_sim, gate, gated
    finally:
        gate.close()
        # no scheduled run of this DAG may outlive the test (it would rotate into a stopped store)
        airflow_stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": True})
        (airflow_stack.dags / DAG_FILE.name).unlink(missing_ok=True)
        airflow_stack.rotator_config.unlink(missing_ok=True)


def minted(sim: Any, credential: str) -> list[str]:
    """Names of the tokens Rotator minted at TeamCity for ``credential``."""
    with sim.state.lock:
        return [
            name
            for user in sim.state.users.values()
            for name in user.tokens
            if name.startswith(f"rotator-{credential}-")
        ]


def status(config: Path) -> dict[str, dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "rotator", "--config", str(config), "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {row["name"]: row for row in json.loads(out.stdout)["credentials"]}


def test_the_lease_keeps_a_mapped_task_off_a_credential_another_rotator_is_rotating(
    dag_setup, tmp_path
):
    stack, sim, gate, gated = dag_setup
    audit = tmp_path / "operator-audit.jsonl"
    register_output(audit)
    rotator = [sys.executable, "-m", "rotator", "--config", str(gated)]
    operator = subprocess.Popen(
        [*rotator, "rotate", HELD, "--json", "--audit-file", str(audit)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "ROTATOR_CONFIG"},
    )
    try:
        # the operator's run holds the lease and waits on TeamCity's mint: a rotation under way
        poll("the operator's run to wait on TeamCity", lambda: gate.waiting, timeout=60)
        held_by = status(gated)[HELD]["locked_by"]
        assert held_by and f":{operator.pid}:" in held_by, held_by

        stack.write_dag(DAG_FILE.name, DAG_FILE.read_text())
        stack.wait_dag(DAG_ID)
        # unpaused at creation with a 15-minute schedule: the scheduler starts a run at once
        runs = poll(
            "the DAG's first run",
            lambda: stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns").json()["dag_runs"],
            timeout=60,
        )
        run_id = runs[0]["dag_run_id"]
        assert stack.wait_run(DAG_ID, run_id, timeout=120) == "success"
        assert operator.poll() is None, "the operator's run ended while TeamCity was held"

        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
        tis = stack.api("GET", path).json()["task_instances"]
        rotate = {ti["rendered_map_index"]: ti["state"] for ti in tis if ti["task_id"] == "rotate"}
        assert rotate == {"dag-a": "success", "dag-b": "success", HELD: "skipped"}, rotate
        assert all(ti["state"] != "failed" for ti in tis)
        held_index = next(
            ti["map_index"]
            for ti in tis
            if ti["task_id"] == "rotate" and ti["rendered_map_index"] == HELD
        )
        log_dir = stack.instance.log_dir / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        log = "\n".join(
            p.read_text(errors="replace")
            for p in (log_dir / "task_id=rotate" / f"map_index={held_index}").rglob("*.log")
        )
        assert f"left to another rotator: {HELD}: lock" in log, log[-3000:]
        assert held_by in log  # the holder is named: host, pid and thread of the operator's run

        # the DAG rotated the others, and did not touch the held one
        rows = status(stack.rotator_config)
        assert rows["dag-a"]["version"] and rows["dag-b"]["version"]
        assert rows[HELD]["version"] is None
        assert len(minted(sim, "dag-a")) == len(minted(sim, "dag-b")) == 1
        assert minted(sim, HELD) == []

        gate.open()
        out, err = operator.communicate(timeout=90)
        record_output("operator rotate", out + err)
    finally:
        if operator.poll() is None:
            operator.kill()
            operator.wait()
    assert operator.returncode == 0, err
    [outcome] = json.loads(out)["outcomes"]
    assert outcome["result"] == "rotated"
    # rotated exactly once: one token at TeamCity, the operator's, and it is current
    assert minted(sim, HELD) == [f"rotator-{HELD}-{outcome['rotation_id']}"]
    assert status(stack.rotator_config)[HELD]["version"] == outcome["version"]
