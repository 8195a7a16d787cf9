"""The distributed rotation path measured: the ``rotator_rotations`` DAG on a real Airflow
against ``rotator rotate --all`` on the same machine and servers.

    .venv/bin/python bench/dag_rotations.py [--credentials 1000] [--batches 16,0]

Starts an OpenBao dev server (the shared store every task process writes to) and the TeamCity
simulator (its own process, with ``--teamcity-latency`` added to every answer, 50 ms by default,
as a remote TeamCity would), then rotates N ``teamcity-token`` credentials (one TeamCity user
each, as in ``bench/rotation.py``) twice over, each time in a fresh store namespace:

1. ``rotator rotate --all`` as a user runs it (the CLI in its own process, Rotator's pool of
   ``--parallel`` threads), before Airflow starts, so nothing else competes for the CPU;
2. Airflow 3.3 (LocalExecutor, ``[core] parallelism = 8``: api-server, scheduler,
   dag-processor) runs ``ops/airflow/dags/rotator_rotations.py`` once per ``--batches`` value
   (``0`` = one mapped task per credential group, the DAG's behaviour before batching).

Wall time for the DAG is the run's ``queued_at`` to ``end_date`` as Airflow records it; the
rotations are counted in the store (``rotator status``), not taken from the tasks' word.
Every row carries the 1-minute load average before and after it: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.airflow_rest import Api, wait
from bench.rotation import config, seed_file
from rotator.servers.airflow import AirflowInstance
from rotator.servers.openbao import OpenBao
from rotator.servers.process import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "ops" / "airflow" / "dags" / "rotator_rotations.py"
DAG_ID = "rotator_rotations"
ROTATOR = (sys.executable, "-m", "rotator")


def toml(cfg: dict[str, Any]) -> str:
    """The bench config as ``rotator.toml`` (strings, numbers, lists of inline tables)."""

    def value(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    lines = []
    for section in ("store", "teamcity", "rotator"):
        lines += [f"[{section}]"] + [f"{k} = {value(v)}" for k, v in cfg[section].items()]
    for cred in cfg["credentials"]:
        lines += ["[[credentials]]"] + [f"{k} = {value(v)}" for k, v in cred.items()]
    return "\n".join(lines) + "\n"


def load() -> float:
    return os.getloadavg()[0]


def rotated_in_store(cfg_path: Path, env: dict[str, str]) -> int:
    out = subprocess.run(
        [*ROTATOR, "--config", str(cfg_path), "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return sum(1 for row in json.loads(out.stdout)["credentials"] if row["version"])


def run_cli(cfg_path: Path, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    before = load()
    started = time.perf_counter()
    with (workdir / "cli-audit.jsonl").open("w") as audit:
        proc = subprocess.run(
            [*ROTATOR, "--config", str(cfg_path), "rotate", "--all", "--json"],
            stdout=subprocess.PIPE,
            stderr=audit,
            text=True,
            env=env,
            check=False,
        )
    wall = time.perf_counter() - started
    outcomes = json.loads(proc.stdout)["outcomes"]
    return {
        "path": "rotator rotate --all",
        "tasks": "-",
        "plan": None,
        "wall": wall,
        "rotated": rotated_in_store(cfg_path, env),
        "failed": sum(o["result"] == "failed" for o in outcomes),
        "skipped": sum(o["result"] == "locked" for o in outcomes),
        "load": (before, load()),
    }


def run_dag(api: Api, batches: int, cfg_path: Path, env: dict[str, str], n: int) -> dict:
    before = load()
    run = api(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": None, "conf": {"batches": batches}},
    )
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"
    done = wait(
        f"DAG run with batches={batches}",
        lambda: (r := api("GET", path))["state"] in ("success", "failed") and r,
        timeout=max(600, n * 6),
        every=2.0,
    )
    tis: list[dict] = []
    while page := api("GET", f"{path}/taskInstances", params={"limit": 100, "offset": len(tis)}):
        tis += page["task_instances"]
        if len(tis) >= page["total_entries"]:
            break
    rotate = [ti for ti in tis if ti["task_id"] == "rotate"]
    [plan] = [ti for ti in tis if ti["task_id"] == "credential_batches"]
    wall = (
        datetime.fromisoformat(done["end_date"]) - datetime.fromisoformat(done["queued_at"])
    ).total_seconds()
    return {
        "path": f"DAG, batches={batches or 'one per group'}",
        "tasks": len(rotate),
        "plan": plan["duration"],
        "wall": wall,
        "rotated": rotated_in_store(cfg_path, env),
        "failed": sum(ti["state"] in ("failed", "upstream_failed") for ti in tis),
        "skipped": sum(ti["state"] == "skipped" for ti in tis),
        "load": (before, load()),
        "run_state": done["state"],
    }


def start_sim(workdir: Path, n: int, token: str, latency: float) -> tuple[ServerProcess, str]:
    seed_file(workdir / "seed.json", n)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    options = ["--port", str(port), "--seed", str(workdir / "seed.json")]
    sim = ServerProcess(
        "teamcity-sim",
        [sys.executable, "-m", "rotator.sim.teamcity", *options, "--admin-token-env", "SIM_TOKEN"],
        ready=lambda: requests.get(f"{url}/app/rest/server", timeout=1).status_code == 401,
        log_path=workdir / "sim.log",
        env={**os.environ, "SIM_TOKEN": token},
    ).start()
    requests.post(
        f"{url}/__sim/faults",
        json={"latency": latency},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).raise_for_status()
    return sim, url


def start_airflow(workdir: Path, env: dict[str, str], cfg_path: Path) -> tuple[Any, Api]:
    password = secrets.token_urlsafe(24)
    airflow = AirflowInstance(
        workdir / "airflow",
        config={"core": {"executor": "LocalExecutor", "parallelism": "8"}},
        extra_env={
            "ROTATOR_CONFIG": str(cfg_path),
            "ROTATOR_DAG_SCHEDULE": "none",  # manual runs only: nothing runs but what we measure
            "VAULT_TOKEN": env["VAULT_TOKEN"],
            "TEAMCITY_TOKEN": env["TEAMCITY_TOKEN"],
        },
    )
    shutil.copy(DAG_FILE, airflow.dags_folder / DAG_FILE.name)
    airflow.migrate()
    airflow.create_users([{"username": "admin", "password": password, "role": "Admin"}])
    airflow.start(["api-server", "scheduler", "dag-processor"], timeout=300)
    api = Api(airflow.url, "admin", password, timeout=30)

    def parsed() -> bool:
        return requests.get(
            f"{airflow.url}/api/v2/dags/{DAG_ID}", headers=api.headers, timeout=30
        ).ok

    wait("the DAG to be parsed", parsed, timeout=300, every=1.0)
    return airflow, api


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, loopback, Python "
        f"{platform.python_version()}; {args.credentials} teamcity-token credentials through "
        f"OpenBao and the TeamCity simulator with {args.teamcity_latency * 1000:.0f} ms latency; "
        f"Rotator's pool: [rotator] parallel = {args.parallel}; Airflow LocalExecutor, "
        "parallelism 8"
    )
    header = (
        f"{'path':<28} {'tasks':>6} {'plan':>6} {'wall':>9} {'rot/s':>7} {'rotated':>8} "
        f"{'failed':>7} {'skipped':>8} {'load 1m':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        plan = f"{r['plan']:.1f}s" if r["plan"] is not None else "-"
        print(
            f"{r['path']:<28} {r['tasks']!s:>6} {plan:>6} {r['wall']:>8.1f}s "
            f"{r['rotated'] / r['wall']:>7.1f} "
            f"{r['rotated']:>8} {r['failed']:>7} {r['skipped']:>8} "
            f"{r['load'][0]:>5.2f}->{r['load'][1]:<5.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--credentials", type=int, default=1000)
    parser.add_argument("--batches", default="16,0", help="DAG runs, one per value (0: per group)")
    parser.add_argument("--parallel", type=int, default=8, help="[rotator] parallel")
    parser.add_argument("--teamcity-latency", type=float, default=0.05, metavar="SECONDS")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    n = args.credentials
    workdir = Path(tempfile.mkdtemp(prefix="rotator-bench-dag-"))
    token = secrets.token_urlsafe(32)
    rows: list[dict] = []
    sim, tc_url = start_sim(workdir, n, token, args.teamcity_latency)
    try:
        with OpenBao(workdir) as bao:
            env = {**os.environ, "VAULT_TOKEN": bao.token, "TEAMCITY_TOKEN": token}

            def write_config(namespace: str) -> Path:
                path = workdir / f"{namespace}.toml"
                path.write_text(toml(config(n, namespace, bao.url, tc_url, args.parallel)))
                return path

            rows.append(run_cli(write_config("cli"), env, workdir))
            dag_cfg = workdir / "dag.toml"
            airflow, api = start_airflow(workdir, env, dag_cfg)
            try:
                for batches in (int(b) for b in args.batches.split(",")):
                    shutil.copy(write_config(f"dag{batches}"), dag_cfg)
                    rows.append(run_dag(api, batches, dag_cfg, env, n))
            finally:
                airflow.stop()
    finally:
        sim.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows, args)
    print(
        "plan: the credential_batches task (rotator status over every credential); wall: the "
        "DAG run from queued to done; failed and skipped count the run's task instances"
    )
    bad = [r for r in rows if r["failed"] or r["rotated"] != n]
    if bad:
        print(f"NOT CLEAN: {[r['path'] for r in bad]} (failed tasks, or rotated != {n})")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
