"""A run that finds a credential due, with nothing in flight and the lock free, takes the lease
with its intent: one write instead of two. Between its plan and that write it holds nothing,
so these are the races that opens, each one ending with the late run doing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from backends.store import open_store
from tests.engine.conftest import alive
from tests.engine.test_hardening import Faulty, engine_on
from tests.fixtures.store_harness import options_of


@pytest.fixture
def admin(teamcity_admin_token, monkeypatch):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    return teamcity_admin_token


def _second(store: Any, tmp_path, sim, **hooks: Any):
    """Another process's engine on the same credential: its own store object."""
    (tmp_path / "b").mkdir()
    other = Faulty(open_store(store.kind, **options_of(store)), **hooks)
    engine, spec, _ = engine_on(other, sim, tmp_path / "b")
    return engine, spec, other


@pytest.mark.usefixtures("admin")
def test_the_lease_is_taken_with_the_intent_and_released_with_the_last_write(
    store, teamcity_sim, tmp_path
):
    counting = Faulty(store)
    engine, spec, _ = engine_on(counting, teamcity_sim, tmp_path)
    assert engine.rotate_one(spec).result == "rotated"
    counting.calls.clear()
    assert engine.rotate_one(spec, force=True).result == "rotated"
    lock_writes = {
        name: counting.calls[name]
        for name in ("acquire_lease", "write_journal", "release_lease", "renew_lease")
    }
    # take + intent, "staged" (the fence before promotion), release + final journal
    assert lock_writes == {
        "acquire_lease": 1,
        "write_journal": 2,
        "release_lease": 0,
        "renew_lease": 0,
    }


@pytest.mark.usefixtures("admin")
def test_a_run_overtaken_between_plan_and_intent_is_locked_and_did_nothing(
    store, teamcity_sim, tmp_path
):
    first, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    assert first.rotate_one(spec).result == "rotated"
    raced: dict[str, Any] = {}

    def the_other_rotates_meanwhile(real, *args, **kwargs):
        answer = real(*args, **kwargs)
        if "outcome" not in raced:  # right after the late run read current
            raced["outcome"] = first.rotate_one(spec, force=True)
            raced["alive"] = alive(teamcity_sim)
            raced["journal"] = store.read_journal(spec.name)
        return answer

    late, _, _ = _second(store, tmp_path, teamcity_sim, read=the_other_rotates_meanwhile)
    outcome = late.rotate_one(spec, force=True)
    assert raced["outcome"].result == "rotated", raced["outcome"]
    assert outcome.result == "locked", outcome
    assert outcome.rotation_id is None
    # It listed the other's brand-new token at TeamCity, but told nobody it was unknown: the
    # lease it then failed to take says another run was at work.
    assert outcome.notes == [], outcome.notes
    assert alive(teamcity_sim) == raced["alive"]  # it minted nothing, revoked nothing
    assert store.read_journal(spec.name) == raced["journal"]  # and wrote nothing
    assert store.read(spec.path).meta["rotation_id"] == raced["outcome"].rotation_id


@pytest.mark.usefixtures("admin")
def test_a_run_that_plans_while_another_holds_the_lock_is_locked_at_once(
    store, teamcity_sim, tmp_path
):
    first, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    assert first.rotate_one(spec).result == "rotated"
    held = store.acquire_lease(spec.name, "other-host:1:x", ttl=30)
    late, _, calls = _second(store, tmp_path, teamcity_sim)
    outcome = late.rotate_one(spec, force=True)
    assert outcome.result == "locked", outcome
    assert calls.calls["read"] == 0  # refused before it read anything of the credential
    store.release_lease(held)
