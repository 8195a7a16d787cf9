"""What a run leaves in its journal for readers that have the store alone (the Credentials page
without rotator.toml), and a releasing journal write whose answer was lost, on every store."""

from __future__ import annotations

from datetime import datetime

from backends.errors import LeaseLost, StoreUnavailable
from tests.engine.test_hardening import Faulty, admin, engine_on

__all__ = ["admin"]


def test_a_rotation_records_what_the_credential_is_when_it_is_due_and_how_it_ended(
    store, teamcity_sim, admin, tmp_path
):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    outcome = engine.rotate_one(spec)
    assert outcome.result == "rotated", outcome
    journal = store.read_journal(spec.name) or {}
    assert journal["credential"] == {
        "type": spec.type,
        "conn_id": spec.conn_id,
        "path": spec.path,
        "login_from": spec.login_from,
    }
    current = store.read(spec.path)
    assert journal["current"]["id"] == current.id
    assert datetime.fromisoformat(journal["current"]["next_due"]) == engine.next_due(spec, current)
    assert journal["last"]["rotation_id"] == outcome.rotation_id
    assert journal["last"]["result"] == "rotated"
    assert journal["last"]["step"] is None


def test_a_failed_rotation_is_recorded_with_its_step_and_reason(
    store, teamcity_sim, admin, tmp_path
):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    assert engine.rotate_one(spec).result == "rotated"
    teamcity_sim.faults.fail_next(10, status=400, only="/tokens", method="POST")
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "failed", outcome
    last = (store.read_journal(spec.name) or {})["last"]
    assert last["result"] == "failed"
    assert last["step"] == outcome.step == "mint"
    assert last["rotation_id"] == outcome.rotation_id
    assert last["reason"] == outcome.error


def test_a_not_due_run_writes_nothing(store, teamcity_sim, admin, tmp_path):
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    assert engine.rotate_one(spec).result == "rotated"
    before = store.read_journal(spec.name)
    faulty = Faulty(store)
    idle, _, _ = engine_on(faulty, teamcity_sim, tmp_path)
    assert idle.rotate_one(spec).result == "not-due"
    assert store.read_journal(spec.name) == before
    assert not {"write_journal", "acquire_lease", "release_lease"} & set(faulty.calls)


def test_a_releasing_journal_write_whose_answer_was_lost_is_read_back(
    store, teamcity_sim, admin, tmp_path
):
    """Applied, answer lost: the run is still a clean success (no warning, exit 0), the lock
    is free and the journal is the one the run wrote."""
    struck = []

    def lose_answer_of_release(real, *args, **kwargs):
        real(*args, **kwargs)
        if kwargs.get("release"):
            struck.append(True)
            raise StoreUnavailable("connection reset after the write was applied")

    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    assert engine.rotate_one(spec).result == "rotated"
    faulty = Faulty(store, write_journal=lose_answer_of_release)
    flaky, _, _ = engine_on(faulty, teamcity_sim, tmp_path)
    outcome = flaky.rotate_one(spec, force=True)
    assert struck, "the fault never struck: the test proves nothing"
    assert outcome.result == "rotated", outcome
    assert outcome.warnings == [], outcome.warnings
    assert outcome.exit_code == 0
    lease, journal = store.read_lock(spec.name)
    assert lease is None
    assert (journal or {})["last"]["rotation_id"] == outcome.rotation_id


def test_a_releasing_journal_write_that_never_landed_still_warns(
    store, teamcity_sim, admin, tmp_path
):
    """Not applied: the read-back finds the old journal, so the warning stays (the next run
    finishes what the journal lacks)."""

    def refuse_release(real, *args, **kwargs):
        if kwargs.get("release"):
            raise LeaseLost("taken over")
        return real(*args, **kwargs)

    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    assert engine.rotate_one(spec).result == "rotated"
    faulty = Faulty(store, write_journal=refuse_release)
    flaky, _, _ = engine_on(faulty, teamcity_sim, tmp_path)
    outcome = flaky.rotate_one(spec, force=True)
    assert outcome.result == "rotated"
    assert any("journal could not be updated" in w for w in outcome.warnings), outcome
