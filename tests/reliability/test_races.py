"""Many rotators at once, as separate processes, on every store: exactly one rotation."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from datetime import datetime

import pytest

from tests.reliability.conftest import CREDENTIAL


def test_eight_rotators_at_once_rotate_exactly_once(rotator_cli, store, teamcity_sim, tmp_path):
    config, env = rotator_cli.config, rotator_cli.env
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rotator",
                "--config",
                str(config),
                "rotate",
                CREDENTIAL,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(8)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        results.append((proc.returncode, json.loads(out)["outcomes"][0]["result"] if out else None))
    outcomes = sorted(r for _, r in results)
    assert outcomes.count("rotated") == 1, outcomes
    assert set(outcomes) <= {"rotated", "not-due", "locked"}
    assert {code for code, _ in results} <= {0, 3}
    assert len(teamcity_sim.state.find_user("airflow-bot").tokens) == 1


@pytest.mark.slow
def test_two_daemons_never_double_rotate(rotator_cli, store, teamcity_sim, tmp_path):
    """Two ``rotator run`` processes (two hosts) over many cycles of a 2-second credential."""
    config, env = rotator_cli.config, rotator_cli.env
    # settle 0s: a 2-second credential would otherwise wait for max_alive (by design)
    config.write_text(config.read_text().replace('every = "7d"', 'every = "2s"\nsettle = "0s"'))
    audit = tmp_path / "daemons.jsonl"
    daemons = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rotator",
                "--config",
                str(config),
                "run",
                "--tick",
                "1",
                "--audit-file",
                str(audit),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 60

    def promotions() -> list[dict]:
        if not audit.exists():
            return []
        events = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
        return [e for e in events if e["step"] == "promote" and e["outcome"] == "ok"]

    try:
        while len(promotions()) < 5:  # wait for five rotations, bounded
            assert time.monotonic() < deadline, "the daemons stopped rotating"
            assert all(d.poll() is None for d in daemons), "a daemon died"
            time.sleep(0.5)
    finally:
        for daemon in daemons:
            daemon.terminate()
        codes = [daemon.wait(timeout=30) for daemon in daemons]
    assert codes == [0, 0], "SIGTERM must stop the daemons cleanly"
    done = promotions()
    times = [datetime.fromisoformat(e["time"]) for e in done]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # Due-ness counts from TeamCity's creationTime, which has one-second resolution, so two
    # honest rotations of a 2 s credential can be ~1 s apart; a double rotation (both daemons
    # acting on one due period) would follow the first one's unlock within milliseconds.
    assert all(gap >= 0.9 for gap in gaps), f"two rotations for one due period: gaps {gaps}"
    intents = [
        e
        for e in json.loads("[" + ",".join(audit.read_text().splitlines()) + "]")
        if e["step"] == "intent"
    ]
    assert all(e["reason"].startswith(("age", "nothing stored")) for e in intents)
    pids = {e["actor"]["pid"] for e in done}
    assert len(done) >= 5 and pids <= {d.pid for d in daemons}
    assert len(teamcity_sim.state.find_user("airflow-bot").tokens) <= 2
