"""One migrated Airflow home for the suite; per-store AirflowInstance views of it configured
the way a user configures the backend (``[secrets] backend`` + ``backend_kwargs``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# Airflow reads AIRFLOW_HOME when it is first imported: keep this process's away from ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from rotator.servers.airflow import AirflowInstance
from rotator.servers.moto import REGION
from tests.fixtures import early

DAGS = Path(__file__).with_name("dags")
BACKEND = "backends.airflow.RotatorSecretsBackend"


@contextmanager
def _migrated_home() -> Iterator[Path]:
    """Run by the background worker (``tests.fixtures.early``) from the end of collection: the
    suite's first tests run while it migrates. At normal priority, unlike the other set-ups:
    the suite's second module needs it."""
    home = early.tmp_path_factory().mktemp("airflow-backend")
    AirflowInstance(home, dags_folder=DAGS, base_env=early.base_env()).migrate()
    yield home


_HOME = early.EarlyStart("airflow_home", _migrated_home)


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    try:
        yield _HOME.get()
    finally:
        _HOME.close()


def backend_kwargs(kind: str, server, ns: str) -> dict:
    prefixes = {
        "connections_prefix": f"{ns}/airflow/connections",
        "variables_prefix": f"{ns}/airflow/variables",
    }
    if kind == "vault":
        return {"store": "vault", "url": server.url, "auth": "token", "mount": "secret", **prefixes}
    return {"store": "aws", "region": REGION, "endpoint_url": server.url, **prefixes}


@pytest.fixture
def airflow_for(airflow_home):
    def make(kind: str, server, ns: str, env: dict) -> AirflowInstance:
        config = {
            "secrets": {
                "backend": BACKEND,
                "backend_kwargs": json.dumps(backend_kwargs(kind, server, ns)),
            }
        }
        return AirflowInstance(airflow_home, dags_folder=DAGS, config=config, extra_env=env)

    return make
