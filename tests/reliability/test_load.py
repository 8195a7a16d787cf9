"""Consumers under load: while threads keep reading the TeamCity token through Rotator's Airflow
backend and calling TeamCity with it, 100 forced rotations happen. No call may be refused.

The backend's cache TTL is kept below the pace of rotations, as the README tells users to keep
``cache_ttl`` below the shortest grace period: a value served from the cache is then at worst
``previous``, which still works.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from backends import airflow as backend_module
from backends.airflow import RotatorSecretsBackend
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from tests.fixtures.configs import teamcity_token
from tests.fixtures.leaks import register_secret

pytestmark = [pytest.mark.slow, pytest.mark.airflow]
ROTATIONS = 100


def test_no_failed_authentication_during_100_rotations(
    openbao, teamcity_sim, teamcity_admin_token, monkeypatch, ns, tmp_path
):
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    config = parse(
        {
            "store": {
                "kind": "vault",
                "url": openbao.url,
                "connections_prefix": f"{ns}/airflow/connections",
                "state_prefix": f"{ns}/rotator",
            },
            "teamcity": {"url": teamcity_sim.url, "timeout": 5},
            "credentials": [
                teamcity_token(
                    grace="1d",
                    # the consumers cache for 0.05 s: values settle in 1 s, and a rotation
                    # every 0.12 s keeps about 9 settling, so max_alive leaves room for them
                    settle="1s",
                    max_alive=16,
                )
            ],
        },
        "load-test",
    )
    store = config.open_store()
    engine = Engine.from_config(config, store, Audit(tmp_path / "audit.jsonl"))
    spec = config.credentials[0]
    assert engine.rotate_one(spec).result == "rotated"

    backend_module._shared.clear()
    backend = RotatorSecretsBackend(
        store="vault",
        url=openbao.url,
        connections_prefix=f"{ns}/airflow/connections",
        variables_prefix=None,
        cache_ttl=0.05,
        stale_ttl=0,
    )
    stop = threading.Event()
    calls = {"ok": 0, "refused": 0, "lookups": 0}
    lock = threading.Lock()

    def consumer() -> None:
        session = requests.Session()
        while not stop.is_set():
            token = json.loads(backend.get_conn_value("teamcity_default"))["password"]
            status = session.get(
                f"{teamcity_sim.url}/app/rest/server",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            ).status_code
            with lock:
                calls["lookups"] += 1
                calls["ok" if status == 200 else "refused"] += 1

    threads = [threading.Thread(target=consumer, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    try:
        for _ in range(ROTATIONS):
            begun = time.monotonic()
            outcome = engine.rotate_one(spec, force=True)
            assert outcome.result == "rotated", outcome
            # pace: a rotation at most every 0.12 s, above the backend's 0.05 s cache TTL
            time.sleep(max(0.0, 0.12 - (time.monotonic() - begun)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    elapsed = time.monotonic() - started
    for user in teamcity_sim.state.users.values():
        for token in user.tokens.values():
            register_secret(token.value)
    print(
        f"{ROTATIONS} rotations in {elapsed:.1f}s; {calls['lookups']} consumer calls "
        f"({calls['lookups'] / elapsed:.0f}/s), refused: {calls['refused']}"
    )
    assert calls["refused"] == 0, calls
    assert calls["ok"] > ROTATIONS, "the consumers must really have been running"
    assert len(teamcity_sim.state.find_user("airflow-bot").tokens) <= 16
