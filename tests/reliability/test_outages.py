"""Outages during each step: the store unreachable, TeamCity answering 5xx, dropping
connections or timing out. Afterwards the current credential still works, nothing is lost, and
the next run finishes the job (no orphaned token at TeamCity, no journal left behind)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from backends.errors import NotFound
from rotator import faults
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from tests.fixtures.configs import teamcity_token
from tests.fixtures.leaks import register_secret
from tests.fixtures.outage import OutageProxy

STEPS = ("intent", "mint", "stage", "verify", "promote", "push", "retire")
ORIGINAL_POINT = faults.point


def works(sim, token: str) -> bool:
    r = requests.get(
        f"{sim.url}/app/rest/server", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return r.status_code == 200


@pytest.fixture
def rig(openbao, teamcity_sim, teamcity_admin_token, monkeypatch, ns, tmp_path):
    """An engine whose store (OpenBao) and TeamCity are each reached through an OutageProxy."""
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    store_proxy = OutageProxy(openbao.port)
    tc_proxy = OutageProxy(int(teamcity_sim.url.rsplit(":", 1)[1]))
    config = parse(
        {
            "store": {
                "kind": "vault",
                "url": store_proxy.url,
                "timeout": 2,
                "connections_prefix": f"{ns}/airflow/connections",
                "state_prefix": f"{ns}/rotator",
            },
            "teamcity": {"url": tc_proxy.url, "timeout": 0.5, "retries": 1},
            "rotator": {"lock_ttl": "2s"},
            "credentials": [
                teamcity_token(
                    grace="0s",
                    push=[{"teamcity_project": "DataPipelines", "parameter": "env.POLL"}],
                )
            ],
        },
        "outage-test",
    )
    store = config.open_store()
    engine = Engine.from_config(config, store, Audit(tmp_path / "audit.jsonl"))
    spec = config.credentials[0]
    assert engine.rotate_one(spec).result == "rotated"
    yield engine, spec, store, store_proxy, tc_proxy
    store_proxy.close()
    tc_proxy.close()
    for user in teamcity_sim.state.users.values():
        for token in user.tokens.values():
            register_secret(token.value)


def outage_at(monkeypatch, step: str, start) -> None:
    """Start the outage when the engine reaches ``before:<step>`` (the engine's own fault hook)."""

    def point(name: str) -> None:
        if name == f"before:{step}":
            start()
        ORIGINAL_POINT(name)

    monkeypatch.setattr(faults, "point", point)


def heal(engine, spec, store, sim, monkeypatch) -> None:
    monkeypatch.setattr(faults, "point", ORIGINAL_POINT)
    deadline = time.monotonic() + 15
    while True:  # a lease the failed run could not release lapses within lock_ttl (2 s)
        outcome = engine.rotate_one(spec)
        if outcome.result != "locked" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert outcome.result in ("rotated", "not-due"), outcome.as_dict()
    current = store.read(spec.path)
    assert works(sim, current.value["password"]), "current must work after the outage"
    known = {current.meta["target_name"]}
    with pytest.raises(NotFound):
        store.read(spec.path, "pending")
    assert "rotation" not in (store.read_journal(spec.name) or {})
    alive = {t.name for t in sim.state.find_user("airflow-bot").tokens.values()}
    assert alive <= known, f"orphans at TeamCity: {sorted(alive - known)}"
    pushed = (
        sim.state.projects["DataPipelines"].parameters["env.POLL"].value
        == current.value["password"]
    )
    assert pushed


@pytest.mark.parametrize("step", STEPS)
def test_store_down_during_a_step(
    rig, teamcity_sim, openbao, teamcity_admin_token, monkeypatch, step
):
    engine, spec, store, store_proxy, _ = rig
    if step == "retire":
        engine.rotate_one(spec, force=True)  # so that the next forced rotation has one to retire
    before = store.read(spec.path).value["password"]
    outage_at(monkeypatch, step, lambda: store_proxy.set_down(True))
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result in ("failed", "rotated"), outcome.as_dict()
    store_proxy.set_down(False)
    if outcome.result == "failed":
        still = works(teamcity_sim, before) or works(
            teamcity_sim, store.read(spec.path).value["password"]
        )
        assert still, "a failed rotation leaves a working current"
    heal(engine, spec, store, teamcity_sim, monkeypatch)


@pytest.mark.parametrize("step", ("mint", "verify", "push", "retire"))
@pytest.mark.parametrize("kind", ("5xx", "drop", "timeout", "down"))
def test_teamcity_failing_during_a_step(
    rig, teamcity_sim, openbao, teamcity_admin_token, monkeypatch, step, kind
):
    engine, spec, store, _, tc_proxy = rig
    if step == "retire":
        engine.rotate_one(spec, force=True)
    starts = {
        "5xx": lambda: teamcity_sim.faults.fail_next(100, status=503),
        "drop": lambda: teamcity_sim.faults.drop_next(100),
        "timeout": lambda: teamcity_sim.faults.latency(1.0),
        "down": lambda: tc_proxy.set_down(True),
    }
    current = store.read(spec.path)
    outage_at(monkeypatch, step, starts[kind])
    outcome = engine.rotate_one(spec, force=True)
    teamcity_sim.faults.clear()
    tc_proxy.set_down(False)
    if outcome.result == "failed":
        assert store.read(spec.path).id == current.id, "a failed rotation keeps current"
        assert works(teamcity_sim, current.value["password"])
    else:
        assert outcome.warnings, "a failure after promotion is reported"
    heal(engine, spec, store, teamcity_sim, monkeypatch)
    assert json.loads(json.dumps(outcome.as_dict()))["credential"] == spec.name
