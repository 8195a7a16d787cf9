"""Rotator's rotations as an Airflow DAG: one mapped task per group of credentials.

For users with many credentials: the work spreads over the Airflow workers they already run
(Celery or Kubernetes executor). Each task calls the ``rotator`` command, so a task process
needs Rotator installed and ``ROTATOR_CONFIG`` (plus the bootstrap ``*_env`` variables) set in
its environment. The store's lease keeps two workers off the same credential: a task that finds
the lease taken is skipped (exit code 3), not failed.

Credentials linked by ``login_from`` travel in one group, so the engine rotates the login first
(``rotator rotate A B`` orders them); unrelated credentials are separate mapped tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

ROTATOR = os.environ.get("ROTATOR_BIN", "rotator")
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 1, 2, 3


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


@dag(
    dag_id="rotator_rotations",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["rotator", "security"],
    doc_md=__doc__,
)
def rotator_rotations() -> None:
    @task
    def credential_groups() -> list[list[str]]:
        proc = subprocess.run(
            [ROTATOR, "status", "--json"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise AirflowFailException(f"rotator status exited {proc.returncode}: {proc.stderr}")
        return _groups(json.loads(proc.stdout)["credentials"])

    @task(retries=2, retry_delay=timedelta(minutes=1), max_active_tis_per_dagrun=8)
    def rotate(names: list[str]) -> dict:
        proc = subprocess.run(
            [ROTATOR, "rotate", *names, "--json"], capture_output=True, text=True, check=False
        )
        # stderr carries the audit events and never a secret; it goes to the task log.
        print(proc.stderr)
        if proc.returncode == EXIT_LOCKED:
            raise AirflowSkipException(f"another rotator holds the lock of {names}")
        if proc.returncode == EXIT_BAD_INPUT:
            raise AirflowFailException(f"rotator refused the input for {names}; see the log")
        if proc.returncode != 0:
            raise RuntimeError(f"rotation of {names} failed (exit {proc.returncode})")
        return json.loads(proc.stdout)

    rotate.expand(names=credential_groups())


rotator_rotations()
