"""Decision latency of the identity-aware trigger, next to Airflow's standing-token trigger.

In one run, on loopback: the TeamCity simulator issues build tokens (RS256, 3072-bit key, as
the plugin); one Airflow 3.3 API server (FAB, SQLite) with Rotator's plugin serves both paths.

- in-process: ``Gate.decide`` (verify + policy + run budget) with a warm JWKS cache;
- end to end: ``POST /rotator/identity/v1/dags/<dag>/dagRuns`` with a build JWT against
  ``POST /api/v2/dags/<dag>/dagRuns`` with an Airflow JWT (the standing-token path), both
  creating a run through the same ``trigger_dag_run``; requests alternate, so drift in the
  machine's load falls on both alike.

    .venv/bin/python -m bench.identity [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import requests

from rotator.config import parse
from rotator.identity.gate import Gate
from rotator.servers.airflow import AirflowInstance
from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator

BT, AUD, DAG = "DataPipelines_Publish", "airflow-trigger", "bench_identity"
DAG_SOURCE = f"""
from airflow.sdk import DAG
with DAG({DAG!r}, schedule=None, is_paused_upon_creation=True):
    pass
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def build_tokens(sim: TeamCitySimulator, n: int) -> list[str]:
    build = sim.builds.queue(BT, user="teamcity-bot")
    sim.builds.start(build.id)
    return [sim.oidc.mint(build.id, [AUD]) for _ in range(n)]


def identity_table(sim: TeamCitySimulator) -> dict[str, object]:
    return {
        "issuer": sim.oidc.issuer,
        "audience": AUD,
        "allow": [{"build_type_external_id": BT, "dags": [DAG], "max_runs": 1}],
    }


def in_process(sim: TeamCitySimulator, runs: int) -> list[float]:
    gate = Gate(parse({"identity": identity_table(sim)}, "bench").identity)
    tokens = build_tokens(sim, runs + 1)
    gate.decide(tokens.pop(), DAG)  # warm: the JWKS is fetched here
    samples = []
    for token in tokens:
        started = time.perf_counter()
        decision = gate.decide(token, DAG)
        samples.append(time.perf_counter() - started)
        assert decision.allowed, decision.reason
    return samples


def end_to_end(sim: TeamCitySimulator, runs: int, home: Path) -> tuple[list[float], list[float]]:
    lines = ["[identity]"] + [
        f"{k} = {json.dumps(v)}" for k, v in identity_table(sim).items() if k != "allow"
    ]
    lines += ["[[identity.allow]]", f'build_type_external_id = "{BT}"', f'dags = ["{DAG}"]']
    (home / "airflow").mkdir(parents=True)
    (home / "airflow" / "rotator.toml").write_text("\n".join(lines) + "\n")
    airflow = AirflowInstance(home / "airflow")
    (airflow.dags_folder / "bench_identity.py").write_text(DAG_SOURCE)
    password = secrets.token_urlsafe(24)
    airflow.migrate()
    airflow.create_users([{"username": "admin", "password": password, "role": "Admin"}])
    airflow.cli("dags", "reserialize")
    airflow.start(["api-server"])
    try:
        login = requests.post(
            f"{airflow.url}/auth/token",
            json={"username": "admin", "password": password},
            timeout=30,
        )
        standing = {"Authorization": f"Bearer {login.json()['access_token']}"}
        body = {"logical_date": None}
        http = requests.Session()
        tokens = build_tokens(sim, runs + 5)
        ours, theirs = [], []
        for i in range(runs + 5):
            started = time.perf_counter()
            a = http.post(
                f"{airflow.url}/rotator/identity/v1/dags/{DAG}/dagRuns",
                json=body,
                headers={"Authorization": f"Bearer {tokens[i]}"},
                timeout=30,
            )
            middle = time.perf_counter()
            b = http.post(
                f"{airflow.url}/api/v2/dags/{DAG}/dagRuns", json=body, headers=standing, timeout=30
            )
            done = time.perf_counter()
            assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
            if i >= 5:  # the first requests warm the JWKS cache, the DAG bag and the ORM
                ours.append(middle - started)
                theirs.append(done - middle)
        return ours, theirs
    finally:
        airflow.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with TeamCitySimulator(admin_token=secrets.token_urlsafe(24), seed=DEMO_SEED) as sim:
        sim.oidc.configure(issuer_url=sim.url + "/app/oidc-jwt")
        sim.builds.hold(BT)
        sim.oidc.features(BT, on_demand_audiences=(AUD,))
        local = in_process(sim, args.runs)
        with tempfile.TemporaryDirectory(prefix="bench-identity-") as tmp:
            ours, theirs = end_to_end(sim, args.runs, Path(tmp))
    rows = [
        ("identity decision, in-process (warm JWKS)", local),
        ("identity trigger, end to end", ours),
        ("standing-token trigger (/api/v2), end to end", theirs),
    ]
    print(f"{'path':<48} {'p50 ms':>8} {'p99 ms':>8}   (n={args.runs})")
    for name, samples in rows:
        p50, p99 = percentiles(samples)
        print(f"{name:<48} {p50:>8.2f} {p99:>8.2f}")


if __name__ == "__main__":
    main()
