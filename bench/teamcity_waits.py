"""What it costs Airflow to wait on TeamCity builds: the deferrable ``TeamCityRunBuildOperator``
against the same operator waiting Jenkins-style (``deferrable=False``: it polls with
``time.sleep`` in its worker slot, as ``JenkinsJobTriggerOperator`` does).

    .venv/bin/python -m bench.teamcity_waits [--builds 50] [--seconds 60]

One real Airflow 3.3 (API server, scheduler, DAG processor, triggerer; LocalExecutor with
``parallelism`` = builds + 8, so every sleeping waiter gets a slot) and the TeamCity simulator
in this process. Per mode, one DAG run of ``--builds`` operator tasks with the default poll
interval (10 s). The simulator holds every build in the queue until all waiters are settled
(deferred, or running and polling), then starts them all at once; each runs ``--seconds`` and
finishes by itself. One deferred wait runs first, unmeasured (the triggerer imports the provider
then, not in a measured window). Measured over that window, while every build runs:

- worker slots held: task instances in ``running`` (sampled every 2 s; the most seen);
- CPU (share of one core) and memory (USS, proportional pages not counted) per waiting build,
  for the triggerer's process tree and the scheduler's (it holds the LocalExecutor's workers
  and their task processes), each as the change from just before the run;
- requests per minute to TeamCity per waiting build (the simulator's own request log);
- event latency: the build's finish at the simulator to the first poll that saw it (Airflow
  noticed), and to the task's ``end_date`` (the task is done), p50/p99/max.

The machine is shared: the 1-minute load average is printed before and after each mode.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.airflow_rest import Api, wait
from rotator.provider.teamcity.triggers import DEFAULT_POLL_INTERVAL
from rotator.servers.airflow import AirflowInstance
from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator
from rotator.sim.teamcity.handler import RequestRecord

BUILD_TYPE = "DataPipelines_Nightly"
CONN_ID = "teamcity_bench"
MODES = ("deferrable", "sleeping")
DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG

from rotator.provider.teamcity.operators import TeamCityRunBuildOperator

for mode, builds in (("warmup", 1), ("deferrable", BUILDS), ("sleeping", BUILDS)):
    with DAG(f"teamcity_waits_{mode}", schedule=None, start_date=datetime(2026, 1, 1),
             catchup=False, max_active_tasks=SLOTS):
        for i in range(builds):
            TeamCityRunBuildOperator(
                task_id=f"wait_{i:03d}", build_type_id=BUILD_TYPE, teamcity_conn_id=CONN_ID,
                comment=f"{mode} {i}", deferrable=mode != "sleeping", retries=0,
            )
"""


class TimedSimulator(TeamCitySimulator):
    """The simulator, with the time each answer was recorded (for the event latency)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamped: list[tuple[float, RequestRecord]] = []
        self._stamp_lock = threading.Lock()

    def record(self, entry: RequestRecord) -> None:
        with self._stamp_lock:
            self.stamped.append((time.time(), entry))
        super().record(entry)


class Tree:
    """A process and its descendants: CPU seconds and USS, summed."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def cpu(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def uss(self) -> int:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_full_info().uss
            except psutil.Error:
                continue
        return total


def count(api: Api, run_path: str, state: str) -> int:
    page = api("GET", f"{run_path}/taskInstances", params={"state": state, "limit": 1})
    return int(page["total_entries"])


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def warm_up(api: Api, sim: TimedSimulator) -> None:
    """One deferred wait before anything is measured: the triggerer imports the provider and
    the LocalExecutor forks its first workers here, not inside a measured window."""
    run = api("POST", "/api/v2/dags/teamcity_waits_warmup/dagRuns", json={"logical_date": None})
    run_path = f"/api/v2/dags/teamcity_waits_warmup/dagRuns/{run['dag_run_id']}"
    [build] = wait(
        "the warm-up build",
        lambda: [b for b in sim.builds.all(BUILD_TYPE) if b.comment == "warmup 0"],
        timeout=300,
    )
    wait("the warm-up task to defer", lambda: count(api, run_path, "deferred") == 1, timeout=300)
    path = f"/app/rest/builds/id:{build.id}"
    # finished once its trigger has polled twice: a trigger that fires within seconds of the
    # deferral can race Airflow 3.3's LocalExecutor (see rotator/demo.py)
    wait("two polls by the trigger", lambda: sum(r.path == path for _, r in sim.stamped) >= 3, 120)
    sim.builds.finish(build.id)
    wait(
        "the warm-up run",
        lambda: api("GET", run_path)["state"] in ("success", "failed"),
        timeout=300,
    )


def run_mode(
    mode: str, api: Api, sim: TimedSimulator, trees: dict[str, Tree], n: int, seconds: float
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    idle_uss = {name: tree.uss() for name, tree in trees.items()}
    dag_id = f"teamcity_waits_{mode}"
    run = api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
    run_path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"

    def mine() -> list[Any]:
        return [b for b in sim.builds.all(BUILD_TYPE) if (b.comment or "").startswith(mode)]

    def settled() -> bool:
        builds = mine()
        if len(builds) < n:
            return False
        if mode == "deferrable":
            return count(api, run_path, "deferred") == n
        polled = {r.path for _, r in sim.stamped}
        return count(api, run_path, "running") == n and all(
            f"/app/rest/builds/id:{b.id}" in polled for b in builds
        )

    wait(f"{n} {mode} waiters", settled, timeout=300 + 20 * n)
    idle_cpu = {name: tree.cpu() for name, tree in trees.items()}
    builds = mine()
    for build in builds:
        sim.builds.start(build.id)
    began = time.time()
    window_end = began + seconds
    running: list[int] = []
    deferred: list[int] = []
    uss: dict[str, int] = {}
    while time.time() < window_end - 1:
        running.append(count(api, run_path, "running"))
        deferred.append(count(api, run_path, "deferred"))
        if not uss and time.time() > began + seconds / 2:
            uss = {name: tree.uss() for name, tree in trees.items()}
        time.sleep(2)  # the sampling interval
    cpu = {name: tree.cpu() for name, tree in trees.items()}
    elapsed = time.time() - began
    polls = [
        r for t, r in sim.stamped if began <= t <= began + elapsed and r.auth and "bench" in r.auth
    ]
    kinds = collections.Counter(f"{r.method} {re.sub(r'[0-9]+', 'N', r.path)}" for r in polls)
    done = wait(
        f"the {mode} run to finish",
        lambda: (r := api("GET", run_path))["state"] in ("success", "failed") and r,
        timeout=600 + 10 * n,
    )
    tis = api("GET", f"{run_path}/taskInstances", params={"limit": 1000})["task_instances"]
    ended = {ti["task_id"]: datetime.fromisoformat(ti["end_date"]).timestamp() for ti in tis}
    noticed, finished = [], []
    stamps = sorted(sim.stamped, key=lambda s: s[0])
    for build in sim.builds.all(BUILD_TYPE):
        if not (build.comment or "").startswith(mode):
            continue
        at = build.finish_date.timestamp()
        path = f"/app/rest/builds/id:{build.id}"
        seen = next(t for t, r in stamps if r.path == path and t >= at)
        noticed.append(seen - at)
        finished.append(ended[f"wait_{int(build.comment.split()[1]):03d}"] - at)
    return {
        "mode": mode,
        "state": done["state"],
        "failed": sum(ti["state"] != "success" for ti in tis),
        "slots": max(running),
        "deferred": min(deferred),
        "cpu": {k: (cpu[k] - idle_cpu[k]) / elapsed / n * 100 for k in trees},
        "uss": {k: (uss[k] - idle_uss[k]) / n / 1024 for k in trees},
        "rpm": len(polls) / (elapsed / 60) / n,
        "kinds": dict(kinds),
        "window": elapsed,
        "noticed": noticed,
        "finished": finished,
        "load": (load_before, os.getloadavg()[0]),
    }


def start_airflow(workdir: Path, sim: TimedSimulator, token: str, n: int) -> tuple[Any, Api]:
    password = secrets.token_urlsafe(24)
    slots = str(n + 8)
    airflow = AirflowInstance(
        workdir / "airflow",
        config={
            "core": {
                "executor": "LocalExecutor",
                "parallelism": slots,
                "max_active_tasks_per_dag": slots,
                "default_pool_task_slot_count": str(max(128, n + 8)),
            },
            "scheduler": {"task_queued_timeout": "900"},
        },
        extra_env={
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
                {"conn_type": "teamcity", "host": sim.url, "password": token}
            ),
        },
    )
    source = (
        DAG_SOURCE.replace("SLOTS", slots)
        .replace("BUILDS", str(n))
        .replace("BUILD_TYPE", repr(BUILD_TYPE))
        .replace("CONN_ID", repr(CONN_ID))
    )
    (airflow.dags_folder / "teamcity_waits.py").write_text(source)
    airflow.migrate()
    airflow.create_users([{"username": "admin", "password": password, "role": "Admin"}])
    airflow.start(["api-server", "scheduler", "dag-processor", "triggerer"], timeout=300)
    api = Api(airflow.url, "admin", password)
    for mode in ("warmup", *MODES):
        wait(
            f"DAG teamcity_waits_{mode}",
            lambda m=mode: (
                requests.get(
                    f"{airflow.url}/api/v2/dags/teamcity_waits_{m}", headers=api.headers, timeout=60
                ).ok
            ),
            timeout=300,
        )
    return airflow, api


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.builds} concurrent waits on builds of "
        f"{args.seconds:.0f} s, poll interval {DEFAULT_POLL_INTERVAL:.0f} s (the default); "
        f"Airflow 3.3 LocalExecutor, parallelism {args.builds + 8}; TeamCity simulator on "
        "loopback\n"
    )
    print(
        "| operator | worker slots held | deferred | triggerer CPU / build | triggerer memory / "
        "build | scheduler+workers CPU / build | scheduler+workers memory / build | TeamCity "
        "requests / min / build | noticed p50 / p99 / max | task done p50 / p99 | failed "
        "| load 1m |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        name = "deferrable" if r["mode"] == "deferrable" else "sleeping (Jenkins-style)"
        noticed, finished = r["noticed"], r["finished"]
        print(
            f"| {name} | {r['slots']} | {r['deferred']} "
            f"| {r['cpu']['triggerer']:.2f} % | {r['uss']['triggerer']:.0f} KiB "
            f"| {r['cpu']['scheduler']:.2f} % | {r['uss']['scheduler']:.0f} KiB "
            f"| {r['rpm']:.1f} "
            f"| {statistics.median(noticed):.1f} / {pct(noticed, 0.99):.1f} / "
            f"{max(noticed):.1f} s "
            f"| {statistics.median(finished):.1f} / {pct(finished, 0.99):.1f} s "
            f"| {r['failed']} | {r['load'][0]:.1f} -> {r['load'][1]:.1f} |"
        )
    goal = DEFAULT_POLL_INTERVAL + 1
    for r in rows:
        print(f"{r['mode']}: requests in the {r['window']:.0f} s window: {r['kinds']}")
    for r in rows:
        p99 = pct(r["noticed"], 0.99)
        verdict = "met" if p99 <= goal else "MISSED"
        print(f"{r['mode']}: noticed p99 {p99:.1f} s, goal <= {goal:.0f} s: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--builds", type=int, default=50, help="concurrent waits (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="build length (default 60)")
    parser.add_argument("--modes", default=",".join(MODES), help="deferrable,sleeping")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rotator-bench-waits-"))
    token = secrets.token_urlsafe(32)
    sim = TimedSimulator(admin_token=secrets.token_urlsafe(32), seed=DEMO_SEED)
    sim.add_token("airflow-bot", "bench", token)
    sim.builds.plan(BUILD_TYPE, queue_seconds=None, run_seconds=args.seconds)
    sim.start()
    airflow = None
    try:
        print(f"starting Airflow in {workdir} (load {os.getloadavg()[0]:.1f}) ...", flush=True)
        airflow, api = start_airflow(workdir, sim, token, args.builds)
        trees = {
            "triggerer": Tree(airflow.processes["triggerer"].pid),
            "scheduler": Tree(airflow.processes["scheduler"].pid),
        }
        warm_up(api, sim)
        rows = []
        for mode in args.modes.split(","):
            print(f"{mode}: {args.builds} waits on builds of {args.seconds:.0f} s ...", flush=True)
            rows.append(run_mode(mode, api, sim, trees, args.builds, args.seconds))
        print_table(rows, args)
    finally:
        if airflow is not None:
            airflow.stop()
        sim.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
