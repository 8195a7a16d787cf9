"""How rotation cost grows with the number of credentials, sequential against parallel.

    .venv/bin/python bench/rotation.py [--counts 10,100,1000] [--parallel 16]

Starts an OpenBao dev server and the TeamCity simulator (its own process, so it does not share
this process's interpreter lock), then rotates N ``teamcity-token`` credentials (one TeamCity
user each, as a fleet of integrations would have) through the real engine: the full protocol,
every store write and TeamCity call included. Prints rotations per second and the cost per
rotation for each N, plus ``rotator --help`` start-up time and ``rotator run``'s idle memory.

Then counts store requests on the wire (a counting proxy in front of OpenBao and of a moto
server, so the count is the same for every store): per forced rotation, and per idle pass
(nothing due) over each N, reads and writes apart.

Rotations are timed three ways in the same run, on the same servers: what Rotator does (each
credential's stage state in its lock document, ``Store.bind``; Vault KV requests over urllib3),
the state kept apart in a document per path as before issue 13 (the ``StateApart`` wrapper),
and the KV requests through hvac and requests as before ``backends/vault_kv.py``; requests are
counted for the first two (the third makes the same ones).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.counting_proxy import CountingProxy
from rotator.servers.moto import REGION, MotoServer
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


def store_table(kind: str, url: str, namespace: str) -> dict:
    prefixes = {
        "connections_prefix": f"{namespace}/airflow/connections",
        "state_prefix": f"{namespace}/rotator",
    }
    if kind == "aws":
        return {"kind": "aws", "region": REGION, "endpoint_url": url, **prefixes}
    return {"kind": "vault", "url": url, "auth": "token", "mount": "secret", **prefixes}


def config(
    n: int, namespace: str, vault_url: str, tc_url: str, parallel: int, kind: str = "vault"
) -> dict:
    return {
        "store": store_table(kind, vault_url, namespace),
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


class StateApart:
    """The store as it was before issue 13's change: stage state in a document of its own
    per path (what ``bind`` moves into the lock document), so one run measures both."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def bind(self, path: str, key: str) -> None:
        """Ignored: the state stays apart."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


LAYOUTS = ("state in the lock", "state apart", "KV via hvac")
"""What each row measures: Rotator; its stage state apart (before 2026-12-06); its Vault KV
requests through hvac and requests, as before 41e0e12 (``backends/vault_kv.py``), state in the
lock. The last makes the same requests as the first: it is timed, not counted."""
COUNTED = LAYOUTS[:2]


def engine_for(
    n: int,
    parallel: int,
    namespace: str,
    url: str,
    tc_url: str,
    kind: str,
    layout: str = LAYOUTS[0],
) -> Any:
    from backends.store import open_store
    from rotator.audit import Audit
    from rotator.config import parse
    from rotator.engine import Engine

    cfg = parse(config(n, namespace, url, tc_url, max(parallel, 1), kind), f"bench-{namespace}")
    store = open_store(cfg.store_kind, **cfg.store_options)
    if layout == "state apart":
        store = StateApart(store)
    elif layout == "KV via hvac":
        store._kv = lambda *args, **kwargs: None  # the store's hvac path (its proxy fallback)
    devnull = open(os.devnull, "w")  # lives as long as the engine
    return Engine.from_config(cfg, store, audit=Audit(stream=devnull))


def run_all(engine: Any, parallel: int, *, force: bool, expect: str) -> float:
    started = time.perf_counter()
    outcomes = engine.rotate_all(list(engine.config.credentials), force=force, parallel=parallel)
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o.result != expect]
    if failed:
        raise SystemExit(f"{len(failed)} runs did not end {expect!r}, first: {failed[0].as_dict()}")
    return elapsed


def rotate(
    n: int, parallel: int, namespace: str, vault_url: str, tc_url: str, layout: str
) -> float:
    """Seconds for N forced rotations, each credential's second (so the first, which creates
    the documents, is not what is timed)."""
    engine = engine_for(n, parallel, namespace, vault_url, tc_url, "vault", layout)
    run_all(engine, parallel, force=True, expect="rotated")
    return run_all(engine, parallel, force=True, expect="rotated")


def request_counts(
    kind: str, upstream: str, tc_url: str, counts: list[int], parallel: int, layout: str
) -> list[tuple[str, str, int, float, float]]:
    """(layout, what, N, reads, writes per credential) through a counting proxy: a forced
    rotation (the third of each credential: by then there is a previous version too), and an
    idle pass."""
    proxy = CountingProxy(upstream)
    rows = []
    tag = layout.split()[-1]
    try:
        for n in counts:
            engine = engine_for(
                n, parallel, f"count-{kind}-{tag}-{n}", proxy.url, tc_url, kind, layout
            )
            run_all(engine, parallel, force=True, expect="rotated")
            proxy.reset()
            if n == counts[0]:
                run_all(engine, parallel, force=True, expect="rotated")
                proxy.reset()
                run_all(engine, parallel, force=True, expect="rotated")
                total, writes = proxy.total(), proxy.writes()
                rows.append((layout, "forced rotation", n, (total - writes) / n, writes / n))
                proxy.reset()
            run_all(engine, parallel, force=False, expect="not-due")
            total, writes = proxy.total(), proxy.writes()
            rows.append((layout, "idle pass", n, (total - writes) / n, writes / n))
    finally:
        proxy.stop()
    return rows


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
    with OpenBao(workdir) as bao, MotoServer(workdir) as moto, sim:
        os.environ.update({"VAULT_TOKEN": bao.token, "TEAMCITY_TOKEN": token})
        os.environ.update(MotoServer.client_env())
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
            for layout in LAYOUTS:
                tag = layout.split()[-1]
                seq = rotate(n, 1, f"seq{n}{tag}", bao.url, tc_url, layout)
                par = rotate(n, args.parallel, f"par{n}{tag}", bao.url, tc_url, layout)
                rows.append((layout, n, seq, par))
        start_ms = startup_ms()
        rss = idle_rss_mb(bao.url, tc_url, env, workdir)
        requests_rows = [
            (store, *row)
            for store, url in (("vault", bao.url), ("aws", moto.url))
            for layout in COUNTED
            for row in request_counts(store, url, tc_url, counts, args.parallel, layout)
        ]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"teamcity-token rotations through OpenBao and the TeamCity simulator; parallel = {args.parallel} workers; "
        f"TeamCity latency {args.teamcity_latency * 1000:.0f} ms"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    header = f"{'layout':<18} {'credentials':>11} {'sequential':>12} {'rot/s':>7} {'ms/rot':>7} {'parallel':>10} {'rot/s':>7} {'ms/rot':>7} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for layout, n, seq, par in rows:
        print(
            f"{layout:<18} {n:>11} {seq:>11.2f}s {n / seq:>7.1f} {seq / n * 1000:>7.1f} {par:>9.2f}s {n / par:>7.1f} "
            f"{par / n * 1000:>7.1f} {seq / par:>8.1f}x"
        )
    ours = [r for r in rows if r[0] == LAYOUTS[0]]
    if len(ours) > 1:
        first, last = ours[0], ours[-1]
        print(
            f"cost growth {first[1]} -> {last[1]} credentials: per-rotation time x{(last[2] / last[1]) / (first[2] / first[1]):.2f} "
            "sequential (1.0 = linear total cost)"
        )
    print(f"rotator --help start-up: {start_ms:.0f} ms (median of 15)")
    print(f"rotator run idle RSS after a first pass over 10 credentials: {rss:.1f} MiB")
    print()
    print("store requests on the wire, per credential (counting proxy; moto stands in for AWS)")
    header = f"{'store':<6} {'layout':<18} {'run':<16} {'credentials':>11} {'reads':>7} {'writes':>7} {'total':>7}"
    print(header)
    print("-" * len(header))
    for store, layout, what, n, reads, writes in requests_rows:
        print(
            f"{store:<6} {layout:<18} {what:<16} {n:>11} {reads:>7.1f} {writes:>7.1f} {reads + writes:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
