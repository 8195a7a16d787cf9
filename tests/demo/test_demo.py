"""``rotator demo`` runs to the end, and what it claims happened did happen."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.fixtures.leaks import record_output

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
JWT = re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}")


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_demo_runs_the_whole_loop(demo_run):
    """The demo itself started when collection ended (``conftest.py``): this waits for it."""
    workdir = demo_run.workdir
    result = demo_run.result()
    record_output("rotator demo [stdout]", result.stdout)
    record_output("rotator demo [stderr]", result.stderr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number in range(8):
        assert f"== {number}." in result.stdout
    # Airflow's Credentials page (Rotator's plugin) answered while Airflow was up, over Vault
    assert re.search(
        r"Airflow's Credentials page: http://127\.0\.0\.1:\d+/plugin/rotator-credentials "
        r"\(log in as admin\): airflow-teamcity-token green, teamcity-bot-password green",
        result.stdout,
    ), result.stdout[-3000:]

    facts = json.loads((workdir / "demo-facts.json").read_text())
    first, second = facts["first"], facts["second"]
    assert first["state"] == "success"
    assert first["polled_with"] and all(
        a.startswith("bearer:airflow-bot/rotator-airflow-teamcity-token-")
        for a in first["polled_with"]
    )
    assert second["state"] == "success" and second["refused"] == 0
    assert second["after_rotation"]["state"] == "success"
    # the DAG started its follow-up build through the operator, as the rotated token's user,
    # waited for it deferred (no worker slot), and kept polling it across the rotation
    for run in (first, second, second["after_rotation"]):
        assert run["deploy"] == {
            "build": run["deploy"]["build"],
            "queued_by": "airflow-bot",
            "deferred": True,
            "state": "finished",
        }
    assert second["polls_after_rotation"] >= 2

    # issue 18: a build triggered the DAG with its own OIDC token, through Rotator's identity
    # endpoint and the config's rule; the run carries the build's identity
    identity = facts["identity"]
    assert identity["state"] == "success"
    assert identity["triggering_user"] == f"teamcity:DataPipelines_Publish#{identity['build']}"
    assert [outcome for outcome, _ in identity["decisions"]] == ["allowed"]
    assert "publish" in identity["decisions"][0][1]
    assert identity["deploy"]["queued_by"] == "airflow-bot"

    # the standing TeamCity -> Airflow token was flagged while the rule existed, then retired:
    # out of rotator.toml, its tokens refused by Airflow, its parameter gone from TeamCity
    retired = facts["retired"]
    assert retired["flagged_before"].startswith(
        "TeamCity -> Airflow: standing credential (1); identity rule 'publish' configured"
    )
    assert "[flagged: identity-replaces-it]" in result.stdout
    assert retired["revoked"] >= 2 and retired["builds_used"] >= 2  # two rotations, builds A-C
    assert retired["still_accepted"] == 0 and retired["parameter_deleted"] is True
    assert retired["refused_with"] and set(retired["refused_with"]) <= {401, 403}
    config = (workdir / "rotator.toml").read_text()
    assert 'name = "teamcity-airflow-token"' not in config
    assert identity["standing_airflow_credentials"] == []
    # ... and after build D, the audit sees no standing token in that direction
    assert identity["audit"] == "TeamCity -> Airflow: no standing token (identity rule 'publish')"
    assert identity["audit"] in [line.strip() for line in result.stdout.splitlines()]

    events = [
        json.loads(line) for line in (workdir / "logs" / "audit.jsonl").read_text().splitlines()
    ]
    promoted = [e for e in events if e["step"] == "promote" and e["outcome"] == "ok"]
    assert {e["credential"] for e in promoted} == {
        "airflow-teamcity-token",
        "teamcity-bot-password",
        "teamcity-airflow-token",
    }
    assert first["polled_with"][0].split("/")[1] in {
        f"rotator-airflow-teamcity-token-{e['rotation_id']}" for e in promoted
    }, "the build was polled with a token Rotator rotated"

    assert not JWT.search(result.stdout + result.stderr), "an Airflow token appeared in the output"
    assert not JWT.search((workdir / "logs" / "audit.jsonl").read_text())
    assert processes_mentioning(str(workdir)) == [], "the demo left processes running"
