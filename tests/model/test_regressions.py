"""Defects the model found, each its shrunk example replayed as a plain test (no hypothesis):
the same ``World`` the machine drives, the same rule calls in the same order, and the same
invariant check after each. The note ``tests/model/TEETH.md`` says which run found which.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from rotator import faults
from tests.fixtures.stores import KINDS
from tests.model.machines import arm_target_fault
from tests.model.world import World


@pytest.fixture
def world(store_kind, store_servers, teamcity_sim, teamcity_admin_token, tmp_path, monkeypatch):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    monkeypatch.delenv("ROTATOR_FAULT", raising=False)
    made: list[World] = []

    def make(**options) -> World:
        w = World(
            teamcity_sim, teamcity_admin_token, store_kind, store_servers, tmp_path, **options
        )
        made.append(w)
        monkeypatch.setattr(faults, "point", w.point)
        return w

    yield make
    for w in made:
        w.close()


def step(w: World, install: str, credential: str, **kwargs) -> None:
    """One rule of the machine: a run, then the invariants."""
    w.run(w.installs[install], credential, **kwargs)
    w.check()


@pytest.mark.parametrize("store_kind", KINDS)
def test_forced_rotations_in_quick_succession_keep_settling_values(world):
    """I2 (quick-rotation refusal, issue 10 #6). Shrunk: three runs of ci-prod, the last two
    forced, seconds apart: the third revoked the value that was current until the second."""
    w = world(initial=("ci-prod",), second_install=False)
    step(w, "A", "ci-prod")
    step(w, "A", "ci-prod", force=True)
    step(w, "A", "ci-prod", force=True)
    step(w, "A", "ci-prod", force=True)


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_credential_never_revokes_the_tokens_of_one_its_name_prefixes(world):
    """I3 (prefix revocation, issue 10 #2). Shrunk: ci-prod rotates, then ci: ci's orphan sweep
    took ``rotator-ci-prod-...`` (and the hand-made ``rotator-ci-manual``) for its own."""
    w = world(initial=("ci", "ci-prod"), second_install=False)
    step(w, "A", "ci-prod")
    step(w, "A", "ci")
    step(w, "A", "ci", force=True)


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_second_install_never_revokes_the_first_ones_tokens(world):
    """I3 (second-store revocation, issue 10 #13). Shrunk: install A rotates ci-prod and ci,
    then install B (its own store, a credential also named ci, same TeamCity user) rotates."""
    w = world(initial=("ci", "ci-prod"), second_install=True)
    step(w, "A", "ci-prod")
    step(w, "A", "ci")
    step(w, "B", "ci")
    step(w, "B", "ci", force=True)


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_token_named_like_ours_but_not_by_us_survives(world):
    """I3: ``rotator-ci-manual`` starts with ``rotator-ci-`` but is not
    ``rotator-ci-<YYYYmmddTHHMMSS>-<6 hex>``."""
    w = world(initial=("ci",), second_install=False)
    step(w, "A", "ci")
    step(w, "A", "ci", force=True)


@pytest.mark.parametrize("store_kind", KINDS)
@pytest.mark.parametrize("kind", ["html", "truncate"])
def test_a_malformed_answer_fails_the_credential_instead_of_escaping(world, kind):
    """Malformed answers (issue 10 #7). Shrunk: one HTML login page (200) on the first request
    of a rotation: ``JSONDecodeError`` escaped ``rotate_one``."""
    w = world(initial=("ci",), second_install=False)
    arm_target_fault(w.sim, kind, "any", 1)
    try:
        step(w, "A", "ci")
    finally:
        w.sim.faults.clear()
    step(w, "A", "ci")
    w.clock.advance(timedelta(days=1, minutes=1))
    step(w, "A", "ci", force=True)


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_mint_that_lands_after_the_client_gave_up_is_not_orphaned(world):
    """I4 (found on main during issue 10, before bd32f34). Shrunk: the token POST is answered
    after the client's timeout; the engine revoked the name at once (404: not there yet), then
    the create landed, and the next successful run left a ``rotator-ci-...`` token alive that
    its store did not record, for good (unknown tokens are reported, never revoked)."""
    w = world(initial=("ci",), second_install=True)
    step(w, "A", "ci")
    arm_target_fault(w.sim, "timeout", "mint", 1)
    try:
        step(w, "B", "ci")
    finally:
        w.sim.faults.clear()
    step(w, "B", "ci")
    step(w, "B", "ci", force=True)
    w.clock.advance(timedelta(days=1, minutes=1))
    step(w, "B", "ci")
