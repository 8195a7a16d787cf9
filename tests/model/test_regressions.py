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


@pytest.mark.parametrize("store_kind", KINDS)
@pytest.mark.parametrize(
    ("method", "nth"),
    [("promote", 0), ("write_journal", 1), ("write_journal", 2), ("write_journal", 3)],
)
def test_a_write_that_landed_but_answered_conflict_never_revokes_the_new_current(
    world, method, nth
):
    """I1 (issue 10 #3). Shrunk on 531716b (file): the journal write after a successful
    promote answered a conflict (it had landed, a replay conflicted); the engine took the
    promote for failed and revoked the token that had just become current."""
    from tests.model.faulty_store import StoreFault

    w = world(initial=("ci-prod",), second_install=False)
    step(w, "A", "ci-prod", fault=StoreFault(method, nth, "applied-conflict"))
    step(w, "A", "ci-prod")
    step(w, "A", "ci-prod", force=True, fault=StoreFault(method, nth, "applied-conflict"))
    step(w, "A", "ci-prod")


@pytest.fixture
def airflow_world(
    store_kind,
    store_servers,
    teamcity_sim,
    teamcity_admin_token,
    tmp_path,
    airflow_api,
    monkeypatch,
):
    from rotator.spec import AirflowSettings
    from rotator.targets.airflow_api import AirflowApi
    from tests.fixtures.outage import OutageProxy
    from tests.model.airflow_world import AirflowWorld

    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    monkeypatch.delenv("ROTATOR_FAULT", raising=False)
    for key, value in airflow_api.env.items():
        monkeypatch.setenv(key, value)
    proxy = OutageProxy(int(airflow_api.url.rsplit(":", 1)[1]))
    w = AirflowWorld(
        teamcity_sim, teamcity_admin_token, store_kind, store_servers, tmp_path, airflow_api, proxy
    )
    monkeypatch.setattr(faults, "point", w.point)
    yield w
    w.close()
    proxy.close()
    AirflowApi(AirflowSettings(url=airflow_api.url)).set_password(*airflow_api.bot)


def airflow_away(w, credential: str, at: str) -> None:
    """Airflow unreachable from fault point ``at`` to the end of a forced run."""
    w.point_hooks[at] = lambda: w.proxy.set_down(True)
    try:
        w.run(w.installs["A"], credential, force=True)
    finally:
        w.point_hooks.clear()
        w.proxy.set_down(False)
    w.check()


@pytest.mark.airflow
@pytest.mark.parametrize("store_kind", KINDS)
def test_a_password_applied_then_unverifiable_is_never_lost(airflow_world):
    """I5 (password loss, issue 10 #1). Shrunk on 531716b: one forced rotation of the password
    with Airflow gone right after it accepted the new one: verify failed, the undo dropped the
    staged value, the restore could not reach Airflow."""
    from tests.model.airflow_world import PASSWORD, TOKEN

    w = airflow_world
    airflow_away(w, PASSWORD, "after:apply")
    step(w, "A", PASSWORD)  # Airflow is back: this run settles which password it holds
    step(w, "A", TOKEN, force=True)


@pytest.mark.airflow
@pytest.mark.parametrize("store_kind", KINDS)
def test_rollback_of_a_password_is_applied_at_airflow(airflow_world):
    """I5 (issue 10 #5). Shrunk on 531716b: a forced rotation, then ``rollback``: the store
    went back, Airflow kept the newer password."""
    from tests.model.airflow_world import PASSWORD

    w = airflow_world
    step(w, "A", PASSWORD, force=True)
    w.run(w.installs["A"], PASSWORD, "rollback")
    w.check()


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_daemon_pass_that_finishes_a_rotation_still_proves_current(world):
    """I1 (found by the long run on main at 51dc905, vault; reproduced on every store). Shrunk:
    a rotation whose retirement failed stays in the journal ('promoted', warnings); the current
    is revoked by hand; the next daemon pass finishes the journal's rotation, reports 'rotated',
    and leaves the refused current in place (its proof was due: this process never proved it)."""
    w = world(initial=("ci",), second_install=False, decoys=False)
    arm_target_fault(w.sim, "5xx", "mint", 1)
    try:
        step(w, "A", "ci")  # the mint fails: its name goes to the retire list
    finally:
        w.sim.faults.clear()
    w.clock.advance(timedelta(minutes=70))
    arm_target_fault(w.sim, "5xx", "revoke", 5)
    try:
        step(w, "A", "ci")  # rotated; the retirement fails (warning), the journal keeps it
    finally:
        w.sim.faults.clear()
    assert w.revoke_by_hand(w.installs["A"], "ci")
    w.check()
    w.clock.advance(timedelta(minutes=30))
    w.run(w.installs["A"], "", "run_pass")
    w.check()


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_rollback_to_an_older_version_never_leaves_it_on_the_retire_list(world):
    """I1 (found by the long run on main at 98935e0, vault; the example did not shrink, this is
    its core; it fails on vault only). Vault keeps a version's metadata (which TeamCity token it
    is) for current and previous only: ``rollback --to`` an older version restored a value whose token name was
    unknown, so that token's pending retirement stayed on the journal's list and revoked the
    new current once its grace ended."""
    w = world(initial=("ci",), second_install=False, decoys=False)
    step(w, "A", "ci")
    first = w.installs["A"].store.read(w.installs["A"].specs["ci"].path).id
    step(w, "A", "ci", force=True)
    step(w, "A", "ci", force=True)
    w.run(w.installs["A"], "ci", "rollback", to=first)
    w.check()
    for _ in range(5):
        w.clock.advance(timedelta(hours=12))
        step(w, "A", "ci")


def fault_step(w: World, install: str, credential: str, kind: str, where: str, **kwargs) -> None:
    """A ``target_fault_*`` rule: arm the simulator, run, disarm, check."""
    arm_target_fault(w.sim, kind, where, 1)
    try:
        w.run(w.installs[install], credential, **kwargs)
    finally:
        w.sim.faults.clear()
    w.check()


@pytest.mark.parametrize("store_kind", KINDS)
def test_a_late_created_token_is_revoked_once_its_window_has_passed(world):
    """I4 (a model false positive; first seen by the long run on main at 5bc1577 on file, where
    it did not shrink, then on vault, shrunk to the six rules below). A mint that timed out is
    carried out by TeamCity after the client gave up, so the token is revoked by name at once
    (too early) and again ``LATE_CREATE`` later; the example never moved the clock, so the late
    tokens stayed, scheduled on the retire list. The model now counts such an entry as
    settling; this test replays the example and holds the engine to the rest: the late tokens
    are scheduled, and the first run after the window revokes them."""
    w = world(initial=("ci-prod",), second_install=False, max_alive=3, push=True)
    fault_step(w, "A", "ci-prod", "5xx", "mint")
    fault_step(w, "A", "ci-prod", "timeout", "mint")
    fault_step(w, "A", "ci-prod", "timeout", "mint")
    fault_step(w, "A", "ci-prod", "5xx", "mint")
    fault_step(w, "A", "ci-prod", "5xx", "mint")
    fault_step(w, "A", "ci-prod", "5xx", "verify", force=True)
    w.sim.faults.wait_idle()
    install, spec = w.installs["A"], w.installs["A"].specs["ci-prod"]
    journal = install.store.read_journal(spec.name) or {}
    late = {e["target_name"] for e in journal["retire"] if "create answer lost" in e["why"]}
    assert late and late <= w.scheduled(install, spec), "on the retire list, scheduled"
    assert late & set(w.tokens()), "a create landed after the client gave up"
    w.clock.advance(timedelta(minutes=3))
    step(w, "A", "ci-prod")
    assert not late & set(w.tokens()), "revoked once LATE_CREATE had passed"
