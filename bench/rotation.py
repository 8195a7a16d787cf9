"""How rotation cost grows with the number of credentials, sequential against parallel.

    .venv/bin/python bench/rotation.py [--counts 10,100,1000] [--parallel 16]

Starts an OpenBao dev server and the TeamCity simulator (its own process, so it does not share
this process's interpreter lock), then rotates N ``teamcity-token`` credentials (one TeamCity
user each, as a fleet of integrations would have) through the real engine: the full protocol,
every store write and TeamCity call included. Prints rotations per second and the cost per
rotation for each N, plus ``rotator --help`` start-up time and ``rotator run``'s idle memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from rotator.servers.openbao import OpenBao
from rotator.servers.process import ServerProcess, free_port


def seed_file(path: Path, users: int) -> None:
    seed = {
        "users": [{"username": "admin", "admin": True}]
        + [
            {"username": f"bot-{i}", "permissions": {"DataPipelines": ["view_project"]}}
            for i in range(users)
        ],
        "projects": [{"id": "DataPipelines", "name": "Data Pipelines"}],
    }
    path.write_text(json.dumps(seed))


def config(n: int, namespace: str, vault_url: str, tc_url: str, parallel: int) -> dict:
    return {
        "store": {
            "kind": "vault",
            "url": vault_url,
            "auth": "token",
            "mount": "secret",
            "connections_prefix": f"{namespace}/airflow/connections",
            "state_prefix": f"{namespace}/rotator",
        },
        "teamcity": {"url": tc_url, "token_env": "TEAMCITY_TOKEN", "timeout": 30, "retries": 2},
        "rotator": {"parallel": parallel},
        "credentials": [
            {
                "name": f"cred-{i}",
                "type": "teamcity-token",
                "user": f"bot-{i}",
                "conn_id": f"conn_{i}",
                "every": "7d",
                "lifetime": "10d",
                "grace": "1d",
                "permissions": [{"project": "DataPipelines", "permission": "view_project"}],
            }
            for i in range(n)
        ],
    }


def rotate(n: int, parallel: int, namespace: str, vault_url: str, tc_url: str) -> float:
    from rotator.audit import Audit
    from rotator.config import parse
    from rotator.engine import Engine
    from rotator.issuers.registry import build_issuers, build_sink

    cfg = parse(config(n, namespace, vault_url, tc_url, max(parallel, 1)), f"bench-{namespace}")
    store = cfg.open_store()
    devnull = open(os.devnull, "w")
    engine = Engine(cfg, store, build_issuers(cfg, store), build_sink(cfg), Audit(stream=devnull))
    started = time.perf_counter()
    outcomes = engine.rotate_all(list(cfg.credentials), force=True, parallel=parallel)
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o.result != "rotated"]
    if failed:
        raise SystemExit(f"{len(failed)} rotations failed, first: {failed[0].as_dict()}")
    return elapsed


def startup_ms(repeat: int = 15) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rotator", "--help"], capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def idle_rss_mb(vault_url: str, tc_url: str, env: dict, workdir: Path) -> float:
    cfg = config(10, "idle", vault_url, tc_url, 8)
    lines = ["[store]"] + [f"{k} = {json.dumps(v)}" for k, v in cfg["store"].items()]
    lines += ["[teamcity]"] + [f"{k} = {json.dumps(v)}" for k, v in cfg["teamcity"].items()]
    for c in cfg["credentials"]:
        lines += ["[[credentials]]"] + [
            f"{k} = {json.dumps(v)}" for k, v in c.items() if k != "permissions"
        ]
    (workdir / "idle.toml").write_text("\n".join(lines) + "\n")
    audit = workdir / "idle-audit.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rotator",
            "--config",
            str(workdir / "idle.toml"),
            "run",
            "--tick",
            "600",
            "--audit-file",
            str(audit),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not audit.exists() or audit.read_text().count('"step": "unlock"') < 10:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("rotator run did not finish its first pass")
            time.sleep(0.2)
        time.sleep(1.0)  # settle after the first pass: this is the idle state being measured
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        )
        return rss_kb / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="10,100,1000")
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument(
        "--teamcity-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="added to every simulator response, as a remote TeamCity would",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="rotator-bench-rotation-"))
    token = secrets.token_urlsafe(32)
    seed_file(workdir / "seed.json", max(counts))
    port = free_port()
    tc_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SIM_TOKEN": token, "TEAMCITY_TOKEN": token}
    sim = ServerProcess(
        "teamcity-sim",
        [
            sys.executable,
            "-m",
            "rotator.sim.teamcity",
            "--port",
            str(port),
            "--seed",
            str(workdir / "seed.json"),
            "--admin-token-env",
            "SIM_TOKEN",
        ],
        ready=lambda: requests.get(f"{tc_url}/app/rest/server", timeout=1).status_code == 401,
        log_path=workdir / "sim.log",
        env=env,
    )
    with OpenBao(workdir) as bao, sim:
        os.environ.update({"VAULT_TOKEN": bao.token, "TEAMCITY_TOKEN": token})
        if args.teamcity_latency:
            requests.post(
                f"{tc_url}/__sim/faults",
                json={"latency": args.teamcity_latency},
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            ).raise_for_status()
        env["VAULT_TOKEN"] = bao.token
        rows = []
        for n in counts:
            seq = rotate(n, 1, f"seq{n}", bao.url, tc_url)
            par = rotate(n, args.parallel, f"par{n}", bao.url, tc_url)
            rows.append((n, seq, par))
        start_ms = startup_ms()
        rss = idle_rss_mb(bao.url, tc_url, env, workdir)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"teamcity-token rotations through OpenBao and the TeamCity simulator; parallel = {args.parallel} workers; "
        f"TeamCity latency {args.teamcity_latency * 1000:.0f} ms"
    )
    header = f"{'credentials':>11} {'sequential':>12} {'rot/s':>7} {'ms/rot':>7} {'parallel':>10} {'rot/s':>7} {'ms/rot':>7} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for n, seq, par in rows:
        print(
            f"{n:>11} {seq:>11.2f}s {n / seq:>7.1f} {seq / n * 1000:>7.1f} {par:>9.2f}s {n / par:>7.1f} "
            f"{par / n * 1000:>7.1f} {seq / par:>8.1f}x"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(
            f"cost growth {first[0]} -> {last[0]} credentials: per-rotation time x{(last[1] / last[0]) / (first[1] / first[0]):.2f} "
            "sequential (1.0 = linear total cost)"
        )
    print(f"rotator --help start-up: {start_ms:.0f} ms (median of 15)")
    print(f"rotator run idle RSS after a first pass over 10 credentials: {rss:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
