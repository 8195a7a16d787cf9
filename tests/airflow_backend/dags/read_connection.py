"""A task that reads a connection and a variable through the configured secrets backend and
writes what it saw (a fingerprint of the password, never the password) for the test to check."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

from airflow.sdk import BaseHook, Variable, dag, task


@dag(
    dag_id="read_connection",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
)
def read_connection() -> None:
    @task
    def read() -> None:
        conn = BaseHook.get_connection("teamcity_default")
        seen = {
            "host": conn.host,
            "login": conn.login,
            "password_sha256": hashlib.sha256((conn.password or "").encode()).hexdigest(),
            "variable": Variable.get("greeting"),
        }
        with open(os.environ["ROTATOR_TEST_OUTPUT"], "w") as out:
            json.dump(seen, out)

    read()


read_connection()
