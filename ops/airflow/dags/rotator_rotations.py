"""Rotator's rotations as an Airflow DAG: a bounded number of mapped tasks, each one
``rotator rotate`` over a batch of credentials.

For users with more credentials than one machine rotates in time: the work spreads over the
Airflow workers they already run (Celery or Kubernetes executor). Each task calls the
``rotator`` command, so a task process needs Rotator installed and ``ROTATOR_CONFIG`` (plus the
bootstrap ``*_env`` variables, or ``*_file`` keys in the config) set in its environment.

Why batches, not one task per credential: every Airflow task is a process that imports Airflow,
parses this file and starts ``rotator``, which reads the whole config; measured on 2 cores that
costs far more than the rotation itself (``bench/dag_rotations.py``). So credentials are packed
into at most ``batches`` mapped tasks (param, default ``$ROTATOR_DAG_BATCHES`` or 16), and each
task rotates its batch with Rotator's own thread pool (``[rotator] parallel``). ``batches = 0``
gives one task per group, for those who want one line per credential in the grid. Credentials
linked by ``login_from`` always travel in one batch, so the engine rotates the login first.

The store's lease keeps two rotators (two tasks, a task and a ``rotator run`` daemon, an
operator's ``rotator rotate``) off the same credential: a credential whose lease is taken is
left to its holder and named in the log. A task in which every credential was held elsewhere is
skipped (exit code 3), not failed; a task with a failed rotation fails after its whole batch
has run, and its retry finds the rotated ones no longer due.

``$ROTATOR_DAG_SCHEDULE`` overrides the 15-minute schedule (a cron expression or preset,
``none`` for manual runs only); it is read when the file is parsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

ROTATOR = os.environ.get("ROTATOR_BIN", "").split() or [sys.executable, "-m", "rotator"]
"""The interpreter running the task has Rotator installed (its secrets backend is there too)."""
EXIT_BAD_INPUT, EXIT_LOCKED = 2, 3
"""``rotator.errors.ExitCode.BAD_INPUT`` and ``.LOCKED``, copied: with ``$ROTATOR_BIN`` the
interpreter parsing this file need not have Rotator (tests/cli/test_errors_tree.py compares)."""
DEFAULT_BATCHES = int(os.environ.get("ROTATOR_DAG_BATCHES", "16"))


def _schedule() -> timedelta | str | None:
    raw = os.environ.get("ROTATOR_DAG_SCHEDULE", "").strip()
    if not raw:
        return timedelta(minutes=15)
    return None if raw.lower() == "none" else raw


def _groups(credentials: list[dict]) -> list[list[str]]:
    """Split credentials into groups joined by ``login_from`` (connected components)."""
    parent = {c["name"]: c["name"] for c in credentials}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for c in credentials:
        if c.get("login_from") in parent:
            parent[root(c["name"])] = root(c["login_from"])
    groups: dict[str, list[str]] = {}
    for c in credentials:
        groups.setdefault(root(c["name"]), []).append(c["name"])
    return list(groups.values())


def _batches(groups: list[list[str]], batches: int) -> list[list[str]]:
    """Pack whole groups into at most ``batches`` lists of about equal size (largest group
    first, each into the smallest batch so far); ``batches <= 0``: one list per group."""
    if batches <= 0:
        return groups
    packed: list[list[str]] = [[] for _ in range(min(batches, len(groups)))]
    for group in sorted(groups, key=len, reverse=True):
        min(packed, key=len).extend(group)
    return packed


@dag(
    dag_id="rotator_rotations",
    schedule=_schedule(),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["rotator", "security"],
    doc_md=__doc__,
    params={
        "batches": Param(
            DEFAULT_BATCHES,
            type="integer",
            minimum=0,
            description="most mapped rotate tasks per run; 0: one task per login_from group",
        )
    },
)
def rotator_rotations() -> None:
    @task
    def credential_batches() -> list[list[str]]:
        proc = subprocess.run(
            [*ROTATOR, "status", "--json"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise AirflowFailException(f"rotator status exited {proc.returncode}: {proc.stderr}")
        groups = _groups(json.loads(proc.stdout)["credentials"])
        return _batches(groups, int(get_current_context()["params"]["batches"]))

    @task(
        retries=2,
        retry_delay=timedelta(minutes=1),
        max_active_tis_per_dagrun=8,
        map_index_template="{{ rotator_batch }}",
    )
    def rotate(names: list[str]) -> dict:
        # the grid names each mapped task by its batch ("cred-a", "cred-a +61")
        more = f" +{len(names) - 1}" if len(names) > 1 else ""
        get_current_context()["rotator_batch"] = f"{names[0]}{more}"  # type: ignore[literal-required]
        proc = subprocess.run(
            [*ROTATOR, "rotate", *names, "--json"], capture_output=True, text=True, check=False
        )
        # stderr carries the audit events and never a secret; it goes to the task log.
        print(proc.stderr)
        if proc.returncode == EXIT_BAD_INPUT:
            raise AirflowFailException(f"rotator refused the input for {names}; see the log")
        try:
            outcomes = json.loads(proc.stdout)["outcomes"]
        except (ValueError, KeyError) as exc:
            raise RuntimeError(f"rotator rotate exited {proc.returncode} without outcomes") from exc
        summary: dict = {"results": {}, "locked": {}, "failed": {}}
        for o in outcomes:
            summary["results"][o["result"]] = summary["results"].get(o["result"], 0) + 1
            if o["result"] == "locked":
                summary["locked"][o["credential"]] = o.get("reason", "")
            elif o["result"] == "failed" or o.get("warnings"):
                summary["failed"][o["credential"]] = o.get("error") or "; ".join(o["warnings"])
        for name, reason in summary["locked"].items():
            print(f"left to another rotator: {name}: {reason}")
        if summary["failed"] or proc.returncode not in (0, EXIT_LOCKED):
            failed = sorted(summary["failed"])
            raise RuntimeError(f"rotator rotate exited {proc.returncode}; failed: {failed}")
        if summary["locked"] and len(summary["locked"]) == len(outcomes):
            raise AirflowSkipException(f"another rotator holds every lock: {summary['locked']}")
        return summary

    rotate.expand(names=credential_batches())


rotator_rotations()
