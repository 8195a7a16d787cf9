"""Rotator's Airflow secrets backend against the official ones, same run, same servers.

    .venv/bin/python bench/backend.py [--warm N] [--repeat N]

Starts an OpenBao dev server and a moto server on loopback (each behind a counting proxy),
seeds 5 connections, and measures Rotator's backend ("rotator"), the same backend reading
through the full stores as it did before the light readers ("before": hvac, boto3), and the
official ``VaultBackend`` / ``SecretsManagerBackend``:

- cold: import + construct + first ``get_conn_value`` in a fresh process whose Airflow modules
  are already imported (``import airflow.secrets`` loads the task SDK: what a task process has);
  the figure every task pays. Also split into its parts:
- import: the module's own import time;
- first lookup: construct + first ``get_conn_value`` (client creation, login, round trip);
- cold, AWS credentials from a shared credentials file instead of the environment (Rotator then
  pays botocore's credential chain);
- warm: median and p99 of repeated lookups of one id in a long-lived process;
- requests/task: store requests seen on the wire for a task that reads 5 connections 10 times
  each, building the backend anew for each lookup as Airflow may do.

Prints a table with ratios (rotator / official: below 1 is faster; official / rotator: how
many times faster). Nothing here is a test: numbers vary by machine.
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
import airflow.secrets  # paid by every Airflow process anyway (it loads the task SDK)
import importlib
t0 = time.perf_counter()
module = importlib.import_module(args["module"])
t_import = time.perf_counter() - t0
if args["before"]:  # the read path before the light readers: the full stores
    from backends.store import open_store
    module.open_reader = lambda kind, options: open_store(kind, **options)
cls = getattr(module, args["cls"])
t0 = time.perf_counter()
value = cls(**args["kwargs"]).get_conn_value(args["ids"][0])
t_first = time.perf_counter() - t0
assert value, "no value"
heavy = sorted(m for m in ("hvac", "boto3", "botocore", "requests") if m in sys.modules)
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
print("RESULT " + json.dumps(
    {"import": t_import, "first": t_first, "samples": samples, "heavy": heavy}))
"""


def probe(
    env: dict, module: str, cls: str, kwargs: dict, mode: str, warm: int, before: bool
) -> dict:
    args = {
        "before": before,
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


def credentials_file_env(env: dict, directory: Path) -> dict:
    """``env`` with the AWS keys moved from the environment to a shared credentials file."""
    path = directory / "aws-credentials"
    path.write_text(
        "[default]\n"
        f"aws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    out = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    out["AWS_SHARED_CREDENTIALS_FILE"] = str(path)
    return out


WHO = ("official", "before", "rotator")
METRICS = (
    ("cold", "cold: import+first"),
    ("cold_file", "cold, creds file"),
    ("import", "import"),
    ("first", "first lookup"),
    ("warm_p50", "warm p50"),
    ("warm_p99", "warm p99"),
    ("requests", "requests/task"),
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm", type=int, default=2000, help="warm lookups per backend")
    parser.add_argument(
        "--repeat", type=int, default=7, help="fresh processes per cold/import figure"
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
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_DEFAULT_PROFILE", None)
        file_env = credentials_file_env(env, logs)
        os.environ.update({"VAULT_TOKEN": bao.token, **MotoServer.client_env()})
        seed(bao, moto)
        proxies = {"vault": CountingProxy(bao.url), "aws": CountingProxy(moto.url)}
        direct = {"vault": bao.url, "aws": moto.url}
        variants = [(who, kind) for kind in ("vault", "aws") for who in WHO]

        def run(
            who: str, kind: str, url: str, mode: str, warm: int = 0, run_env: dict | None = None
        ) -> dict:
            module, cls, kwargs_for = BACKENDS[
                ("official" if who == "official" else "rotator", kind)
            ]
            return probe(run_env or env, module, cls, kwargs_for(url), mode, warm, who == "before")

        samples: dict = {
            v: {"import": [], "first": [], "cold": [], "cold_file": []} for v in variants
        }
        heavy: dict = {}
        for _ in range(args.repeat):  # interleaved, so drift on the machine hits all alike
            for who, kind in variants:
                one = run(who, kind, direct[kind], "cold")
                got = samples[(who, kind)]
                got["import"].append(one["import"])
                got["first"].append(one["first"])
                got["cold"].append(one["import"] + one["first"])
                heavy[(who, kind)] = one["heavy"]
                if kind == "aws":
                    one = run(who, kind, direct[kind], "cold", run_env=file_env)
                    got["cold_file"].append(one["import"] + one["first"])
        rows = {}
        for who, kind in variants:
            warm = sorted(run(who, kind, direct[kind], "warm", args.warm)["samples"])
            proxies[kind].reset()  # counts: through the proxy, the only thing it is used for
            run(who, kind, proxies[kind].url, "task")
            got = samples[(who, kind)]
            rows[(who, kind)] = {
                **{k: statistics.median(v) for k, v in got.items() if v},
                "warm_p50": statistics.median(warm),
                "warm_p99": warm[int(len(warm) * 0.99) - 1],
                "requests": proxies[kind].total(),
            }
        for proxy in proxies.values():
            proxy.stop()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}, {platform.system()} {platform.release()}, servers on loopback")
    print(
        f"5 connections; warm = {args.warm} lookups; cold/import/first = median of "
        f"{args.repeat} fresh processes (airflow.secrets preimported); requests = one task "
        "reading 5 connections x 10"
    )
    header = (
        f"{'store':<6} {'metric':<19} {'official':>10} {'before':>10} {'rotator':>10} "
        f"{'rotator/official':>17} {'official/rotator':>17}"
    )
    print(header)
    print("-" * len(header))
    for kind in ("vault", "aws"):
        official, before, ours = (rows[(who, kind)] for who in WHO)
        for metric, label in METRICS:
            if metric not in ours:
                continue
            a, was, b = official[metric], before[metric], ours[metric]
            show = (lambda v: str(v)) if metric == "requests" else fmt
            down = f"{b / a:.2f}x" if a else "-"
            up = f"{a / b:,.1f}x" if b else "-"
            print(
                f"{kind:<6} {label:<19} {show(a):>10} {show(was):>10} {show(b):>10} "
                f"{down:>17} {up:>17}"
            )
    print()
    for (who, kind), names in heavy.items():
        print(
            f"{kind} {who}: client libraries loaded by the first lookup: {', '.join(names) or 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
