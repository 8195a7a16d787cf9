"""The long run of the model-based fault suite (``tests/model``): many more rules than CI.

    .venv/bin/python bench/model_run.py [--rules 50000] [--stores file,vault,aws]
                                        [--steps 40] [--airflow-rules 0] [--minutes M]

Starts what the suite's fixtures start (an OpenBao dev server, a moto server, the TeamCity
simulator; a real Airflow API server with ``--airflow-rules N``), splits ``--rules`` across the
stores, and runs the same state machine as ``tests/model/test_model.py`` with random examples
instead of CI's derandomized few (a violation prints hypothesis's shrunk example, which replays
it). Prints one table: rules, distinct abstract states,
faults injected per kind, violations (each with hypothesis's shrunk example), wall time.
Exit status 1 if any invariant was violated. ``--minutes``: a time budget for the whole run (the
batch under way when it runs out is finished; the table says how many rules were run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from rotator import faults
from rotator.servers.moto import MotoServer
from rotator.servers.openbao import OpenBao
from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator
from tests.fixtures.outage import OutageProxy
from tests.fixtures.stores import store_env
from tests.model import world as world_module
from tests.model.machines import airflow_machine, token_machine
from tests.model.world import STATS


def run_machine(
    machine: type, rules: int, steps: int, deadline: float = float("inf")
) -> tuple[int, list[str]]:
    """Run ``machine`` until about ``rules`` rules were executed or ``deadline`` (monotonic)
    passed; return (rules run, failures)."""
    failures: list[str] = []
    start = sum(STATS.rules.values())
    batch = 0
    while sum(STATS.rules.values()) - start < rules and time.monotonic() < deadline:
        left = rules - (sum(STATS.rules.values()) - start)
        # Batches of 20 to 100 examples (progress, memory); not fewer: each batch starts with
        # hypothesis's simplest example, the first rule over and over.
        examples = min(100, max(20, left // max(1, steps - 2)))
        batch += 1
        try:
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=examples,
                    stateful_step_count=steps,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate, Phase.shrink],
                    report_multiple_bugs=True,
                ),
            )
        except BaseException as exc:  # a violation: report it, go on
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append("".join(traceback.format_exception(exc))[-6000:])
            print(f"==== violation ====\n{failures[-1]}", flush=True)
        done = sum(STATS.rules.values()) - start
        print(f"  {done} rules, {len(failures)} violation(s)", file=sys.stderr, flush=True)
        if batch > 1000:
            break
    return sum(STATS.rules.values()) - start, failures


def _history(world: Any, exc: BaseException) -> str:
    """What led to a violation, as it happened (a flaky one cannot be replayed): every run of
    the example, each install's audit trail, the tokens TeamCity holds and who minted them."""
    lines = [f"==== history of: {type(exc).__name__}: {exc} ===="]
    for args, kwargs, result in world.__dict__.get("_history", []):
        install, credential = args[0].name, args[1]
        outcomes = result.outcome if isinstance(result.outcome, list) else [result.outcome]
        told = "; ".join(
            f"{o.credential}:{o.result}:{o.rotation_id}:{o.step}:{o.error_class}:{o.reason[:80]}"
            for o in outcomes
            if o is not None
        )
        lines.append(
            f"  #{result.seq} {install}/{credential} {result.call} crashed={result.crashed} "
            f"struck={result.struck} error={type(result.error).__name__ if result.error else ''}"
            f" kwargs={ {k: v for k, v in kwargs.items() if k != 'fault'} } -> {told}"
        )
    for install in world.installs.values():
        lines.append(f"  -- audit {install.name} --")
        with contextlib.suppress(OSError):
            lines += [f"    {line}" for line in install.audit_path.read_text().splitlines()[-400:]]
    lines.append("  -- TeamCity tokens (name: owner) --")
    for value in world.tokens().values():
        lines.append(f"    {value.name}: {world.owner.get(value.name)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=50_000)
    parser.add_argument("--stores", default="file,vault,aws")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--airflow-rules", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=0.0, help="time budget (0: none)")
    args = parser.parse_args()
    kinds = [k for k in args.stores.split(",") if k]

    tmp = Path(tempfile.mkdtemp(prefix="model-run-"))
    admin_token = f"adm-{secrets.token_urlsafe(24)}"
    os.environ["TEAMCITY_TOKEN"] = admin_token
    os.environ.pop("ROTATOR_FAULT", None)
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes else float("inf")
    servers: dict[str, Any] = {}
    stack: list[Any] = []
    sim = TeamCitySimulator(admin_token=admin_token, seed=DEMO_SEED)
    sim.start()
    stack.append(sim)
    if "vault" in kinds:
        bao = OpenBao(tmp)
        bao.__enter__()
        stack.append(bao)
        servers["vault"] = {"openbao": bao}
        os.environ.update(store_env(bao, None))
    if "aws" in kinds:
        moto = MotoServer(tmp)
        moto.__enter__()
        stack.append(moto)
        servers["aws"] = {"moto": moto}
        os.environ.update(store_env(None, moto))
    os.environ.pop("ROTATOR_MASTER_KEY", None)

    hooks: dict[str, Any] = {}
    original = faults.point

    def point(name: str) -> None:
        w = hooks.get("world")
        (w.point if w is not None else original)(name)

    faults.point = point  # the engine calls rotator.faults.point at each step
    signatures: set = set()
    from tests.model.airflow_world import AirflowWorld

    dumped: list[int] = []
    for cls in (world_module.World, AirflowWorld):

        def check_and_count(self: Any, _check: Any = cls.check) -> None:
            try:
                _check(self)
            except AssertionError as exc:
                if len(dumped) < 3:  # the first sightings, before shrinking rewrites history
                    dumped.append(1)
                    print(_history(self, exc), flush=True)
                raise
            signatures.add((type(self).__name__, self.state_signature()))

        def run_and_log(self: Any, *args: Any, _run: Any = cls.run, **kwargs: Any) -> Any:
            result = _run(self, *args, **kwargs)
            self.__dict__.setdefault("_history", []).append((args, kwargs, result))
            return result

        cls.check = check_and_count  # type: ignore[method-assign]
        cls.run = run_and_log  # type: ignore[method-assign]

    rows = []
    failures: list[tuple[str, str]] = []
    try:
        per_store = args.rules // max(1, len(kinds))
        for kind in kinds:
            ctx = {
                "sim": sim,
                "admin_token": admin_token,
                "store_kind": kind,
                "servers": servers.get(kind, {}),
                "tmp": tmp / kind,
                "hooks": hooks,
            }
            (tmp / kind).mkdir()
            faults_before = Counter(STATS.faults)
            states_before = len(signatures)
            t0 = time.monotonic()
            n, failed = run_machine(token_machine(ctx), per_store, args.steps, deadline)
            rows.append(
                (
                    f"teamcity-token / {kind}",
                    n,
                    len(signatures) - states_before,
                    sum((Counter(STATS.faults) - faults_before).values()),
                    len(failed),
                    time.monotonic() - t0,
                )
            )
            failures += [(kind, f) for f in failed]
        if args.airflow_rules:
            rows += run_airflow(
                args, kinds, sim, admin_token, servers, tmp, hooks, signatures, failures, deadline
            )
    finally:
        faults.point = original
        for part in reversed(stack):
            with contextlib.suppress(Exception):  # best effort on the way out
                part.__exit__(None, None, None) if hasattr(part, "__exit__") else part.stop()

    wall = time.monotonic() - started
    print()
    print(
        f"{'machine / store':<28} {'rules':>8} {'states':>8} {'faults':>8} {'violations':>10} "
        f"{'seconds':>8}"
    )
    for name, n, states, injected, bad, secs in rows:
        if not n:
            continue
        print(f"{name:<28} {n:>8} {states:>8} {injected:>8} {bad:>10} {secs:>8.1f}")
    total = sum(r[1] for r in rows)
    print(
        f"{'total':<28} {total:>8} {len(signatures):>8} {sum(STATS.faults.values()):>8} "
        f"{len(failures):>10} {wall:>8.1f}"
    )
    print()
    print("faults injected per kind:")
    for name, count in sorted(STATS.faults.items()):
        print(f"  {name:<32} {count:>7}")
    print()
    print("rules per kind:")
    for name, count in sorted(STATS.rules.items()):
        print(f"  {name:<32} {count:>7}")
    print()
    print("run outcomes:", ", ".join(f"{k} {v}" for k, v in sorted(STATS.outcomes.items())))
    for kind, text in failures:
        print(f"\n==== violation ({kind}) ====\n{text}")
    return 1 if failures else 0


def run_airflow(args, kinds, sim, admin_token, servers, tmp, hooks, signatures, failures, deadline):
    from rotator.servers.airflow import AirflowInstance
    from rotator.spec import AirflowSettings
    from rotator.targets.airflow_api import AirflowApi
    from tests.fixtures.airflow import strong_password

    home = tmp / "airflow"
    home.mkdir()
    admin = ("admin", strong_password())
    bot = ("teamcity-bot", strong_password())
    instance = AirflowInstance(home)
    instance.migrate()
    instance.create_users(
        [
            {"username": admin[0], "password": admin[1], "role": "Admin"},
            {"username": bot[0], "password": bot[1], "role": "User"},
        ]
    )
    rows = []
    instance.start(["api-server"])
    try:

        class Api:
            url = instance.url

        Api.admin = admin  # type: ignore[attr-defined]
        os.environ.update({"AIRFLOW_ADMIN_USER": admin[0], "AIRFLOW_ADMIN_PASSWORD": admin[1]})
        proxy = OutageProxy(int(instance.url.rsplit(":", 1)[1]))
        per_store = args.airflow_rules // max(1, len(kinds))
        for kind in kinds:
            ctx = {
                "sim": sim,
                "admin_token": admin_token,
                "store_kind": kind,
                "servers": servers.get(kind, {}),
                "tmp": tmp / f"airflow-{kind}",
                "hooks": hooks,
                "airflow": Api,
                "proxy": proxy,
            }
            (tmp / f"airflow-{kind}").mkdir()
            faults_before = Counter(STATS.faults)
            states_before = len(signatures)
            t0 = time.monotonic()
            n, failed = run_machine(airflow_machine(ctx), per_store, 15, deadline)
            rows.append(
                (
                    f"airflow / {kind}",
                    n,
                    len(signatures) - states_before,
                    sum((Counter(STATS.faults) - faults_before).values()),
                    len(failed),
                    time.monotonic() - t0,
                )
            )
            failures += [(f"airflow/{kind}", f) for f in failed]
        proxy.close()
        AirflowApi(AirflowSettings(url=instance.url)).set_password(*bot)
    finally:
        instance.stop()
    return rows


if __name__ == "__main__":
    sys.exit(main())
