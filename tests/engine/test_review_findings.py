"""Defects found by a hostile review of the engine after the hardening issue (issue 10).

Each test here FAILS on d014bf3 (rotator/engine.py as of 82ea31d), on every store,
because an invariant of DESIGN.md is broken, not because a reasonable behaviour differs from
the one the test would like. Each docstring says: the scenario, the invariant it breaks, and a
suggested fix. They use the real stores, the TeamCity simulator and the helpers of
``test_hardening``.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest

from backends.errors import Conflict, NotFound, StoreUnavailable
from rotator.issuers import rotator_name
from tests.engine.conftest import alive, works
from tests.engine.test_hardening import (  # noqa: F401  (fixture)
    Faulty,
    admin,
    engine_on,
    token_of,
)


def _recorded(store, spec) -> set[str]:
    """Every name at TeamCity that ``store`` knows to be this credential's."""
    names: set[str] = set()
    for stage in ("current", "previous", "pending"):
        with contextlib.suppress(NotFound):  # a missing stage
            names.add(store.read(spec.path, stage).meta.get("target_name"))
    journal = store.read_journal(spec.name) or {}
    names |= {e.get("target_name") for e in journal.get("retire") or []}
    rotation = journal.get("rotation") or {}
    names |= {rotation.get("target_name"), rotation.get("restores")}
    names.discard(None)
    return names


def _mine(sim, spec) -> set[str]:
    return {n for n in alive(sim) if n.startswith(f"rotator-{spec.name}-")}


# -- 1: a mint whose answer timed out, carried out late by TeamCity --------------------------


@pytest.mark.usefixtures("admin")  # not an argument: a failure's traceback shows those
def test_a_mint_that_times_out_and_is_carried_out_late_leaves_no_orphan(
    store, teamcity_sim, tmp_path
):
    """Scenario: TeamCity is slow: ``POST /users/<u>/tokens`` takes longer than the client's
    read timeout, and TeamCity (like any servlet container) carries the request out after the
    client gave up. The engine sees an unknown outcome at ``mint`` and ``_abandon``s it: it
    revokes the journal's name at once (``DELETE`` answers 404, the token does not exist *yet*),
    counts that as revoked, drops the journal's intent and saves. A moment later TeamCity
    creates the token. Nothing in the store names it any more (not current/previous, not the
    retire list, not the journal), so every later run only *reports* it as "never recorded"
    and never revokes it: it lives until its own expiry (forever without ``lifetime``).

    Invariant broken: "an unknown outcome at any call, followed by another run, converges to
    exactly one current, no orphaned credential at the target" (and the outcome even lists
    the token as revoked).

    Suggested fix: a 404 from revoking a name whose mint had an unknown outcome is not proof
    that it is gone: ``_abandon`` should keep the name on the retire list (``why:
    abandoned``), with ``not_before`` after the longest a create can still be in flight
    (connect + read timeout), and drop it only when a revoke *after* that moment finds it
    gone; it is a name the store recorded (the intent), so revoking it later is allowed.
    """
    engine, spec, clock = engine_on(store, teamcity_sim, tmp_path)
    assert engine.rotate_one(spec).result == "rotated"
    # The test config's client timeout is 2 s and a POST is never retried.
    teamcity_sim.faults.slow_next(1, 3.0, only="/tokens", method="POST")
    failed = engine.rotate_one(spec, force=True)
    assert failed.result == "failed" and failed.step == "mint", failed
    assert teamcity_sim.faults.wait_idle(10)
    late = rotator_name(spec, failed.rotation_id)
    assert late in alive(teamcity_sim), "precondition: TeamCity carried the create out late"

    # Later runs: a rotation, then past grace and settle, then a pass that retires.
    assert engine.rotate_one(spec, force=True).result == "rotated"
    clock.advance(timedelta(days=1, hours=1))
    engine.rotate_one(spec, force=True)
    engine.rotate_one(spec)
    orphans = _mine(teamcity_sim, spec) - _recorded(store, spec)
    assert late not in alive(teamcity_sim) and not orphans, (
        f"{sorted(orphans)} alive at TeamCity, unknown to the store (outcome of the failed run "
        f"said revoked={failed.revoked})"
    )


# -- 2: a promote applied, answered Conflict, and the read-back fails ------------------------


@pytest.mark.usefixtures("admin")  # not an argument: a failure's traceback shows those
def test_a_promote_whose_read_back_fails_never_revokes_the_new_current(
    store, teamcity_sim, tmp_path
):
    """Scenario: the store applies the promote but answers ``Conflict`` (an SDK retried a
    promote whose answer was lost: defect 3 of issue 10), and the read-back that is meant to
    resolve it fails too (the store is still flaky: the same trouble that lost the first
    answer). ``_promoted`` swallows the read error and returns ``None``; ``_promote`` then
    re-raises the ``Conflict`` and, the issuer not being staged, ``_undo`` discards "pending"
    (already promoted, a no-op) and revokes the rotation's token at TeamCity, which is now the
    store's ``current``. The journal is cleared, so the next run says "not due": consumers are
    refused until the daemon's next proof (``verify_every``) or for good without a daemon.

    Invariant broken: "current always works at the target, also right after a run that
    failed"; "an error that leaves the outcome unknown ... is resolved by reading back ...
    before anything is undone" (a read-back that failed resolved nothing).

    Suggested fix: undo after a ``Conflict`` only when the read-back *succeeded* and shows a
    current that is not this rotation's; when the read-back fails, raise without undoing and
    keep the journal (as the generic ``RotatorError`` branch already does), so that the next
    run's ``_resume`` reads ``current`` and finishes or abandons.
    """
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    state: dict[str, bool] = {}

    def promote_then_conflict(real, *args, **kwargs):
        real(*args, **kwargs)
        state["promoted"] = True
        raise Conflict("the SDK retried a promote whose answer was lost")

    def read_fails_once_after_promote(real, *args, **kwargs):
        if state.get("promoted") and not state.get("read_failed"):
            state["read_failed"] = True
            raise StoreUnavailable("the store did not answer in time")
        return real(*args, **kwargs)

    faulty = Faulty(store, promote=promote_then_conflict, read=read_fails_once_after_promote)
    flaky, _, _ = engine_on(faulty, teamcity_sim, tmp_path)
    outcome = flaky.rotate_one(spec, force=True)
    assert state.get("read_failed"), "precondition: the read-back failed"
    current = store.read(spec.path)
    current_works = works(teamcity_sim, token_of(store, spec))  # no value in a failure text
    assert current_works, (
        f"the store's current {current.meta.get('target_name')} was revoked by the undo "
        f"(outcome {outcome.result}, revoked {outcome.revoked})"
    )
    assert engine.rotate_one(spec).result in ("rotated", "not-due")
    repaired = works(teamcity_sim, token_of(store, spec))
    assert repaired, "nor does the next run repair it"


# -- 3: a current refused at the target counted as alive by max_alive ------------------------


@pytest.mark.usefixtures("admin")  # not an argument: a failure's traceback shows those
def test_a_refused_current_is_rotated_even_while_older_ones_settle(store, teamcity_sim, tmp_path):
    """Scenario: ``max_alive = 2``. A is rotated out by a forced rotation (B current, A
    settling for 15 min). B is then revoked in TeamCity's UI (or expires, or its user's
    permissions are reset). The daemon's proof sees the refusal and calls
    ``rotate_one(reason="current refused at target")``; ``_over_capacity`` counts B, the value
    the target just refused, as alive ({A, B} + the new one = 3 > 2) and refuses the rotation
    "nothing changed". The store's current stays the dead B; and since the refusal was recorded
    as a proof, the daemon does not look again for ``verify_every`` (1 h), long after A has
    settled.

    Invariant broken: "current always works at the target"; DESIGN: "a current credential
    revoked or broken outside Rotator is noticed ... and rotates a refused one at once". The
    capacity rule is about credentials *alive* at the target; B is not.

    Suggested fix: a current the target refused is not alive: leave it out of the count
    in ``_over_capacity`` when the rotation's reason is ``REFUSED_AT_TARGET`` (or count only
    names ``list_issued`` still shows, which also drops stale retire entries of tokens already
    gone or expired); and do not record a failed rotation as a fresh proof.
    """
    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path, max_alive=2)
    assert engine.rotate_one(spec).result == "rotated"
    assert engine.rotate_one(spec, force=True).result == "rotated"
    dead = store.read(spec.path).meta["target_name"]
    teamcity_sim.state.find_user("airflow-bot").tokens.pop(dead)  # revoked in TeamCity's UI
    outcome = engine.prove(spec)
    current_works = works(teamcity_sim, token_of(store, spec))  # no value in a failure text
    assert current_works, (
        f"current {dead} is refused at TeamCity and stays current: {outcome.result} {outcome.error}"
    )


# -- 4: a journal write is checked, not conditional ------------------------------------------


@pytest.mark.usefixtures("admin")  # not an argument: a failure's traceback shows those
def test_a_journal_write_that_lands_after_a_takeover_does_not_overwrite_the_new_holder(
    store, teamcity_sim, tmp_path
):
    """Scenario: the holder's ``_save`` fences (reads the lease back: still ours, more than a
    third left), then sends ``write_journal``. The write is slow to land (a store cut off by a
    partition, an SDK retrying with its own timeouts) while the lease cannot be renewed; the
    lease lapses, another rotator takes it over and writes its journal; then the old write
    lands and replaces the new holder's journal (here: the intent of a rotation that no longer
    owns the lock, over the new holder's record). Fencing by "read the lease, then write" is
    a check-then-act: nothing in the write itself is conditional on the lease.

    Invariant broken: DESIGN "every store write under the lease is conditional on still
    holding it (compare-and-set on the lease record, or a fencing number)" - issue 10 defect
    10: "its late journal write ... can overwrite a newer rotation"; the test of defect 10
    only covers a takeover *before* the fence.

    Suggested fix: make the journal write itself conditional: store the lease token (or a
    fencing number bumped on every acquisition) with the journal and write it with
    compare-and-set against the lease in the same transaction or CAS document (file store:
    the same SQLite transaction checks the lease row; Vault: journal and lease in one KV
    document written with ``cas``; AWS: one secret, version-stage CAS), so a write from a
    former holder is refused by the store, not by a read that preceded it.
    """
    taken: dict[str, Any] = {}

    def takeover_then_write(real, key, record, **kwargs):
        if not taken:  # the intent: the write is in flight while the lease lapses
            lease = store.read_lease(spec.name)
            store.release_lease(lease)  # as if it lapsed while we were cut off
            taken["lease"] = store.acquire_lease(spec.name, "other-host:1:x", 10)
            store.write_journal(spec.name, {"retire": [], "owner": "the new holder"})
        return real(key, record, **kwargs)

    engine, spec, _ = engine_on(store, teamcity_sim, tmp_path)
    engine.rotate_one(spec)
    late, _, _ = engine_on(Faulty(store, write_journal=takeover_then_write), teamcity_sim, tmp_path)
    try:
        outcome = late.rotate_one(spec, force=True)
        assert outcome.result == "failed", outcome
        assert store.read_journal(spec.name) == {"retire": [], "owner": "the new holder"}, (
            "the former holder's late write replaced the new holder's journal"
        )
    finally:
        store.release_lease(taken["lease"])
