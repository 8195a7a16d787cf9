"""Regression tests for the protocol defects of the hardening issue, on every store, against the
TeamCity simulator. Each failed on 531716b (the commit before the fixes); the note of the issue
lists how."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from backends.errors import Conflict
from backends.store import open_store
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import REFUSED_AT_TARGET, Engine
from rotator.faults import InjectedFault
from tests.engine.conftest import Clock, alive, token_config, works
from tests.fixtures.store_harness import options_of
from tests.fixtures.stores import store_options


def value_of(store, spec) -> dict:
    raw = store.get_document(spec.path)
    return json.loads(raw) if isinstance(raw, str) else raw


def token_of(store, spec, stage: str = "current") -> str:
    return str(store.read(spec.path, stage).value["password"])


class Faulty:
    """The store with one call made to misbehave, delegating everything else: a fault in the
    store's answer, not in its HTTP layer."""

    def __init__(self, store: Any, **hooks: Any) -> None:
        self._store, self._hooks = store, hooks
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            hook = self._hooks.get(name)
            if hook is not None:
                return hook(attr, *args, **kwargs)
            return attr(*args, **kwargs)

        return call


def engine_on(store, sim, tmp_path: Path, name: str = "x", **credential: Any):
    config = parse(
        token_config(store.kind, options_of(store), sim.url, name=name, **credential),
        "test.toml",
    )
    clock = Clock(sim)
    engine = Engine.from_config(config, store, Audit(tmp_path / f"audit-{name}.jsonl"), clock=clock)
    return engine, config.credentials[0], clock


@pytest.fixture
def admin(teamcity_admin_token, monkeypatch):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    return teamcity_admin_token


# -- 2: ownership by the whole name pattern --------------------------------------------------


@pytest.mark.parametrize("short,long", [("ci", "ci-prod"), ("etl-1", "etl-1-20")])
def test_a_credential_never_revokes_a_sibling_whose_name_it_prefixes(
    store, teamcity_sim, admin, tmp_path, short, long
):
    sibling, sibling_spec, _ = engine_on(
        store, teamcity_sim, tmp_path, name=long, conn_id=long.replace("-", "_")
    )
    engine, spec, clock = engine_on(
        store, teamcity_sim, tmp_path, name=short, conn_id=short.replace("-", "_")
    )
    assert sibling.rotate_one(sibling_spec).result == "rotated"
    theirs = token_of(store, sibling_spec)
    for _ in range(2):
        assert engine.rotate_one(spec, force=True).result == "rotated"
    clock.advance(timedelta(days=1, hours=1))
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "rotated"
    assert not any(n.startswith(f"rotator-{long}-") for n in outcome.revoked), outcome.revoked
    assert works(teamcity_sim, theirs), "the sibling's current token must survive"
    assert store.read(sibling_spec.path).meta["target_name"] in alive(teamcity_sim)


# -- 13: a second install (or a store opened from the wrong place) ---------------------------


def test_a_second_store_never_revokes_the_first_stores_tokens(store, teamcity_sim, admin, tmp_path):
    first, spec, _ = engine_on(store, teamcity_sim, tmp_path, name="shared")
    first.rotate_one(spec)
    first.rotate_one(spec, force=True)
    current, previous = token_of(store, spec), token_of(store, spec, "previous")

    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    other = open_store("file", **store_options("file", tmp_path=other_dir))
    try:
        second, other_spec, _ = engine_on(other, teamcity_sim, other_dir, name="shared")
        outcome = second.rotate_one(other_spec)
        assert outcome.result == "rotated" and outcome.revoked == []
        assert sum("not revoked" in note for note in outcome.notes) == 2, outcome.notes
    finally:
        other.close()
    assert works(teamcity_sim, current) and works(teamcity_sim, previous)
    again = first.rotate_one(spec, force=True)
    assert again.result == "rotated"
    assert not set(again.revoked) & {other_spec.name}, "nor the other way round"
    assert works(teamcity_sim, current)


# -- 3: a promote that was applied but answered a conflict -------------------------------------


def test_a_promote_applied_but_answered_conflict_is_read_back(store, teamcity_sim, admin, tmp_path):
    def promote_then_conflict(real, *args, **kwargs):
        real(*args, **kwargs)
        raise Conflict("the SDK retried a promote whose answer was lost")

    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    faulty = Faulty(store, promote=promote_then_conflict)
    flaky, _, _ = engine_on(faulty, teamcity_sim, tmp_path)
    outcome = flaky.rotate_one(spec, force=True)
    assert outcome.result == "rotated", outcome
    new = token_of(store, spec)
    assert works(teamcity_sim, new), "the promoted token must not be revoked as an undo"
    assert store.read(spec.path).meta["target_name"] not in outcome.revoked


# -- 4: retirements survive errors ------------------------------------------------------------


def test_retirements_survive_a_run_without_the_bootstrap_token(
    store, teamcity_sim, admin, tmp_path, monkeypatch
):
    engine, spec, clock = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    old = token_of(store, spec)
    engine.rotate_one(spec, force=True)
    retire = store.read_journal(spec.name)["retire"]
    clock.advance(timedelta(days=1, hours=1))

    monkeypatch.delenv("TEAMCITY_TOKEN")
    missing = engine.rotate_one(spec)
    assert missing.exit_code == 2 and missing.bad_input
    assert store.read_journal(spec.name)["retire"] == retire, "nothing changed"

    monkeypatch.setenv("TEAMCITY_TOKEN", admin)
    teamcity_sim.faults.fail_next(10, status=503, only="/tokens/", method="DELETE")
    down = engine.rotate_one(spec)
    assert down.exit_code == 1 and any("could not revoke" in w for w in down.warnings)
    assert store.read_journal(spec.name)["retire"] == retire, "kept for the next run"
    assert works(teamcity_sim, old)

    teamcity_sim.faults.clear()
    done = engine.rotate_one(spec)
    assert done.revoked == [retire[0]["target_name"]] and not works(teamcity_sim, old)
    assert store.read_journal(spec.name).get("retire") == []


# -- 6: settle, and the forced rotation after an interrupted one ------------------------------


def test_finishing_an_interrupted_rotation_counts_as_the_forced_one(
    store, teamcity_sim, admin, tmp_path, monkeypatch
):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    before = token_of(store, spec)
    monkeypatch.setenv("ROTATOR_FAULT", "after:stage:raise")
    with pytest.raises(InjectedFault):
        engine.rotate_one(spec, force=True)
    monkeypatch.delenv("ROTATOR_FAULT")
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "rotated" and "counts as the forced rotation" in outcome.reason
    assert outcome.revoked == []
    assert works(teamcity_sim, before), "the value current seconds ago keeps working"
    assert len(alive(teamcity_sim)) == 2


def test_two_forced_rotations_within_the_cache_ttl_refuse_no_consumer(
    store, teamcity_sim, admin, tmp_path
):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    held_by_a_consumer = token_of(store, spec)
    engine.rotate_one(spec, force=True)
    engine.rotate_one(spec, force=True)
    assert works(teamcity_sim, held_by_a_consumer)
    entry = next(
        e for e in store.read_journal(spec.name)["retire"] if e["why"] == "pushed out of previous"
    )
    assert entry["not_before"] > entry["superseded"], "scheduled at superseded + settle"


def test_revoke_previous_revokes_every_older_one_at_once(store, teamcity_sim, admin, tmp_path):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    for _ in range(3):
        engine.rotate_one(spec, force=True)
    assert len(alive(teamcity_sim)) == 3
    outcome = engine.rotate_one(spec, revoke_previous=True)
    assert outcome.result == "rotated" and len(outcome.revoked) == 3, outcome
    assert any("--revoke-previous" in note for note in outcome.notes)
    assert alive(teamcity_sim) == {store.read(spec.path).meta["target_name"]}
    assert works(teamcity_sim, token_of(store, spec))


# -- 7: a malformed answer fails one credential, the pass goes on -----------------------------


@pytest.mark.parametrize("fault", ["html_next", "truncate_next"])
def test_a_malformed_answer_fails_that_credential_and_the_pass_goes_on(
    store, teamcity_sim, admin, tmp_path, fault
):
    data = token_config(store.kind, options_of(store), teamcity_sim.url, name="a", conn_id="a")
    data["credentials"].append({**data["credentials"][0], "name": "b", "conn_id": "b"})
    config = parse(data, "test.toml")
    engine = Engine.from_config(config, store, Audit(tmp_path / "a.jsonl"))
    getattr(teamcity_sim.faults, fault)(1, only="/tokens", method="POST")
    first, second = engine.rotate_all(list(config.credentials), parallel=1)
    assert first.result == "failed" and first.error_class == "TargetMalformed", first
    assert second.result == "rotated"
    assert works(teamcity_sim, token_of(store, config.credentials[1]))
    healed = engine.rotate_one(config.credentials[0])
    assert healed.result == "rotated"
    owned = {n for n in alive(teamcity_sim) if n.startswith("rotator-a-")}
    assert owned == {store.read(config.credentials[0].path).meta["target_name"]}


# -- 8: an idle pass writes nothing -----------------------------------------------------------

WRITES = (
    "put_current",
    "put_pending",
    "discard_pending",
    "promote",
    "rollback",
    "write_journal",
    "clear_journal",
    "acquire_lease",
    "renew_lease",
    "release_lease",
)


def test_an_idle_pass_writes_nothing_and_a_rotation_writes_little(
    store, teamcity_sim, admin, tmp_path
):
    counting = Faulty(store)
    engine, spec, _ = engine_on(counting, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    counting.calls.clear()
    for _ in range(5):
        assert engine.rotate_one(spec).result == "not-due"
    assert sum(counting.calls[w] for w in WRITES) == 0, counting.calls
    assert counting.calls["read_journal"] + counting.calls["read"] <= 3 * 5

    counting.calls.clear()
    assert engine.rotate_one(spec, force=True).result == "rotated"
    writes = {w: counting.calls[w] for w in WRITES if counting.calls[w]}
    # lease acquire + release, journal intent/staged/promoted/cleared, pending, promote
    assert sum(writes.values()) <= 8, writes


# -- 10: fencing -------------------------------------------------------------------------------


def test_a_holder_whose_lease_was_taken_over_writes_nothing_more(
    store, teamcity_sim, admin, tmp_path
):
    taken: dict[str, Any] = {}

    def steal_then_put(real, path, value, **kwargs):
        lease = store.read_lease(spec.name)
        store.release_lease(lease)  # as if it lapsed while we were cut off
        taken["lease"] = store.acquire_lease(spec.name, "other-host:1:x", 10)
        store.write_journal(spec.name, {"retire": [], "owner": "the new holder"})
        return real(path, value, **kwargs)

    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    current = store.read(spec.path).id
    fenced, _, _ = engine_on(Faulty(store, put_pending=steal_then_put), teamcity_sim, tmp_path)
    outcome = fenced.rotate_one(spec, force=True)
    assert outcome.result == "failed" and outcome.error_class == "LeaseLost", outcome
    assert store.read_journal(spec.name) == {"retire": [], "owner": "the new holder"}
    assert store.read(spec.path).id == current
    assert works(teamcity_sim, token_of(store, spec))
    store.release_lease(taken["lease"])


# -- 14: a current revoked outside Rotator ------------------------------------------------------


def test_a_current_revoked_by_hand_is_noticed_and_rotated(store, teamcity_sim, admin, tmp_path):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    assert engine.proofs_due([spec]) == []  # the rotation verified its new value
    assert engine.prove(spec).result == "verified" and engine.proofs_due([spec]) == []
    name = store.read(spec.path).meta["target_name"]
    teamcity_sim.state.find_user("airflow-bot").tokens.pop(name)  # revoked in TeamCity's UI
    outcome = engine.prove(spec)
    assert outcome.result == "rotated" and outcome.reason == REFUSED_AT_TARGET, outcome
    assert works(teamcity_sim, token_of(store, spec))


# -- 15: a missing or refused bootstrap token changes nothing ---------------------------------


def test_a_missing_or_refused_bootstrap_token_changes_nothing(
    store, teamcity_sim, admin, tmp_path, monkeypatch
):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    journal = store.read_journal(spec.name)
    current = store.read(spec.path).id

    monkeypatch.delenv("TEAMCITY_TOKEN")
    missing = engine.rotate_one(spec, force=True)
    assert missing.exit_code == 2, missing
    monkeypatch.setenv("TEAMCITY_TOKEN", "not-the-admin-token-value")
    fresh, _, _ = engine_on(store, teamcity_sim, tmp_path)  # the token is read once per process
    refused = fresh.rotate_one(spec, force=True)
    assert refused.exit_code == 1 and refused.error_class == "TargetAuthError", refused
    assert store.read_journal(spec.name) == journal
    assert store.read(spec.path).id == current
    assert store.read_lease(spec.name) is None


def test_a_daemon_pass_proves_current_every_verify_every(store, teamcity_sim, admin, tmp_path):
    engine, spec, clock = engine_on(store, teamcity_sim, tmp_path, verify_every="1h")
    engine.rotate_one(spec)

    def probes() -> int:
        return sum(r.path.startswith("/app/rest/server") for r in teamcity_sim.requests)

    before = probes()
    assert [o.result for o in engine.run_pass([spec])] == ["not-due"]
    assert probes() == before, "the rotation's own verify was the proof"
    clock.advance(timedelta(hours=1, seconds=1))
    assert [o.result for o in engine.run_pass([spec])] == ["not-due"]
    assert probes() == before + 1, "one authenticated GET proves current"
    engine.run_pass([spec])
    assert probes() == before + 1, "not again before verify_every"
    name = store.read(spec.path).meta["target_name"]
    teamcity_sim.state.find_user("airflow-bot").tokens.pop(name)
    clock.advance(timedelta(hours=1, seconds=1))
    (outcome,) = engine.run_pass([spec])
    assert outcome.result == "rotated" and outcome.reason == REFUSED_AT_TARGET, outcome
    assert works(teamcity_sim, token_of(store, spec))
