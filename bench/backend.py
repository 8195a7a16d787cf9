"""Rotator's Airflow secrets backend against the official ones, same run, same servers.

    .venv/bin/python bench/backend.py [--warm N]

Starts an OpenBao dev server and a moto server on loopback (each behind a counting proxy),
seeds 5 connections, and measures for Rotator's backend and the official
``VaultBackend`` / ``SecretsManagerBackend``:

- import: the module's own import time, after ``airflow.secrets`` is loaded (fresh process);
- cold: the first ``get_conn_value`` in a fresh process (client creation, login, round trip);
- warm: median and p99 of repeated lookups of one id in a long-lived process;
- requests/task: store requests seen on the wire for a task that reads 5 connections 10 times
  each, building the backend anew for each lookup as Airflow may do.

Prints a table with ratios (official / ours). Nothing here is a test: numbers vary by machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.counting_proxy import CountingProxy
from rotator.servers.moto import REGION, MotoServer
from rotator.servers.openbao import OpenBao

CONN_IDS = [f"bench_conn_{i}" for i in range(5)]

BACKENDS = {
    ("rotator", "vault"): (
        "backends.airflow",
        "RotatorSecretsBackend",
        lambda url: {
            "store": "vault",
            "url": url,
            "auth": "token",
            "mount": "secret",
            "connections_prefix": "airflow/connections",
            "variables_prefix": None,
        },
    ),
    ("official", "vault"): (
        "airflow.providers.hashicorp.secrets.vault",
        "VaultBackend",
        lambda url: {
            "url": url,
            "token": os.environ["VAULT_TOKEN"],
            "mount_point": "secret",
            "connections_path": "airflow/connections",
            "variables_path": None,
            "config_path": None,
            "kv_engine_version": 2,
        },
    ),
    ("rotator", "aws"): (
        "backends.airflow",
        "RotatorSecretsBackend",
        lambda url: {
            "store": "aws",
            "region": REGION,
            "endpoint_url": url,
            "connections_prefix": "airflow/connections",
            "variables_prefix": None,
        },
    ),
    ("official", "aws"): (
        "airflow.providers.amazon.aws.secrets.secrets_manager",
        "SecretsManagerBackend",
        lambda url: {
            "endpoint_url": url,
            "region_name": REGION,
            "connections_prefix": "airflow/connections",
            "variables_prefix": None,
            "config_prefix": None,
        },
    ),
}

PROBE = r"""
import json, sys, time
args = json.loads(sys.stdin.read())
import airflow.secrets  # paid by every Airflow process anyway
import importlib
t0 = time.perf_counter()
module = importlib.import_module(args["module"])
t_import = time.perf_counter() - t0
cls = getattr(module, args["cls"])
t0 = time.perf_counter()
value = cls(**args["kwargs"]).get_conn_value(args["ids"][0])
t_cold = time.perf_counter() - t0
assert value, "no value"
if args["mode"] == "task":
    for _ in range(10):
        for conn_id in args["ids"]:
            assert cls(**args["kwargs"]).get_conn_value(conn_id)
samples = []
if args["mode"] == "warm":
    backend = cls(**args["kwargs"])
    for _ in range(args["warm"]):
        t0 = time.perf_counter()
        backend.get_conn_value(args["ids"][1])
        samples.append(time.perf_counter() - t0)
print("RESULT " + json.dumps({"import": t_import, "cold": t_cold, "samples": samples}))
"""


def probe(env: dict, module: str, cls: str, kwargs: dict, mode: str, warm: int) -> dict:
    args = {
        "module": module,
        "cls": cls,
        "kwargs": kwargs,
        "ids": CONN_IDS,
        "mode": mode,
        "warm": warm,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"probe {module} failed:\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def seed(bao: OpenBao, moto: MotoServer) -> None:
    from backends.store import open_store

    for kind, opts in (
        ("vault", {"url": bao.url}),
        ("aws", {"region": REGION, "endpoint_url": moto.url}),
    ):
        store = open_store(kind, **opts)
        for conn_id in CONN_IDS:
            store.put_current(
                f"airflow/connections/{conn_id}",
                {
                    "conn_type": "http",
                    "host": "h",
                    "login": "l",
                    "password": f"pw-{conn_id}-xxxxxx",
                },
                expected=None,
            )


def fmt(seconds: float) -> str:
    if seconds >= 0.1:
        return f"{seconds * 1000:.0f} ms"
    if seconds >= 0.001:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm", type=int, default=2000, help="warm lookups per backend")
    parser.add_argument(
        "--repeat", type=int, default=3, help="fresh processes per cold/import figure"
    )
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="rotator-bench-"))
    home = Path(tempfile.mkdtemp(prefix="rotator-bench-airflow-"))
    with OpenBao(logs) as bao, MotoServer(logs) as moto:
        env = {
            **os.environ,
            "VAULT_TOKEN": bao.token,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **MotoServer.client_env(),
        }
        os.environ.update({"VAULT_TOKEN": bao.token, **MotoServer.client_env()})
        seed(bao, moto)
        proxies = {"vault": CountingProxy(bao.url), "aws": CountingProxy(moto.url)}
        rows = {}
        direct = {"vault": bao.url, "aws": moto.url}
        for (who, kind), (module, cls, kwargs_for) in BACKENDS.items():
            kwargs = kwargs_for(direct[kind])  # timings: straight to the server
            imports, colds = [], []
            for _ in range(args.repeat):
                one = probe(env, module, cls, kwargs, "cold", 0)
                imports.append(one["import"])
                colds.append(one["cold"])
            warm = sorted(probe(env, module, cls, kwargs, "warm", args.warm)["samples"])
            proxies[kind].reset()  # counts: through the proxy, the only thing it is used for
            probe(env, module, cls, kwargs_for(proxies[kind].url), "task", 0)
            rows[(who, kind)] = {
                "import": statistics.median(imports),
                "cold": statistics.median(colds),
                "warm_p50": statistics.median(warm),
                "warm_p99": warm[int(len(warm) * 0.99) - 1],
                "requests": proxies[kind].total(),
            }
        for proxy in proxies.values():
            proxy.stop()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}, {platform.system()} {platform.release()}")
    print(
        f"5 connections; warm = {args.warm} lookups; cold/import = median of {args.repeat} "
        "fresh processes; requests = one task reading 5 connections x 10"
    )
    header = (
        f"{'store':<6} {'metric':<15} {'official':>12} {'rotator':>12} {'official/rotator':>17}"
    )
    print(header)
    print("-" * len(header))
    for kind in ("vault", "aws"):
        official, ours = rows[("official", kind)], rows[("rotator", kind)]
        for metric, label in (
            ("import", "import"),
            ("cold", "cold lookup"),
            ("warm_p50", "warm p50"),
            ("warm_p99", "warm p99"),
            ("requests", "requests/task"),
        ):
            a, b = official[metric], ours[metric]
            show = (lambda v: str(v)) if metric == "requests" else fmt
            ratio = f"{a / b:,.1f}x" if b else "-"
            print(f"{kind:<6} {label:<15} {show(a):>12} {show(b):>12} {ratio:>17}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
