"""The rotation protocol end to end, on every store, against the TeamCity simulator."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from backends.errors import NotFound
from rotator.engine import Engine, waves
from rotator.faults import InjectedFault
from tests.engine.conftest import alive, works


def value_of(store, spec) -> dict:
    raw = store.get_document(spec.path)
    return json.loads(raw) if isinstance(raw, str) else raw


def test_first_rotation_stores_a_working_token(make_engine, store, teamcity_sim):
    engine, spec, _ = make_engine()
    outcome = engine.rotate_one(spec)
    assert outcome.result == "rotated" and outcome.reason == "nothing stored yet"
    stored = value_of(store, spec)
    assert stored["conn_type"] == "http" and stored["login"] == "airflow-bot"
    assert stored["host"] == teamcity_sim.url
    assert works(teamcity_sim, stored["password"])
    assert alive(teamcity_sim) == {store.read(spec.path).meta["target_name"]}
    assert store.read_journal(spec.name) == {} or "rotation" not in store.read_journal(spec.name)


def test_not_due_does_nothing(make_engine, teamcity_sim):
    engine, spec, _ = make_engine()
    engine.rotate_one(spec)
    before = len(teamcity_sim.requests)
    outcome = engine.rotate_one(spec)
    assert outcome.result == "not-due" and "next" in outcome.reason
    assert not any(r.method == "POST" for r in teamcity_sim.requests[before:])


def test_old_token_works_through_grace_then_is_revoked(make_engine, store, teamcity_sim):
    engine, spec, clock = make_engine()
    engine.rotate_one(spec)
    old = value_of(store, spec)["password"]
    assert engine.rotate_one(spec, force=True).result == "rotated"
    new = value_of(store, spec)["password"]
    changed = old != new
    assert changed and works(teamcity_sim, old) and works(teamcity_sim, new)
    assert len(alive(teamcity_sim)) == 2

    clock.advance(timedelta(hours=23))
    assert engine.rotate_one(spec).result == "not-due"
    assert works(teamcity_sim, old), "previous must stay valid for the whole grace period"

    clock.advance(timedelta(hours=1, minutes=1))
    outcome = engine.rotate_one(spec)
    assert outcome.revoked and not works(teamcity_sim, old) and works(teamcity_sim, new)
    assert len(alive(teamcity_sim)) == 1


def test_quick_rotations_keep_settling_values_alive_up_to_max_alive(
    make_engine, store, teamcity_sim
):
    engine, spec, clock = make_engine()
    seen = []
    for _ in range(4):
        assert engine.rotate_one(spec, force=True).result == "rotated"
        seen.append(value_of(store, spec)["password"])
        assert len(alive(teamcity_sim)) <= spec.max_alive
        assert all(works(teamcity_sim, v) for v in seen), "a value current seconds ago works"
    current = store.read(spec.path).id
    refused = engine.rotate_one(spec, force=True)
    assert refused.result == "failed" and refused.exit_code == 1
    assert "max_alive" in refused.error and "possible from" in refused.error
    assert store.read(spec.path).id == current, "a refused rotation changes nothing"
    assert "rotation" not in (store.read_journal(spec.name) or {})

    clock.advance(spec.settle + timedelta(seconds=1))
    settled = engine.rotate_one(spec)
    assert settled.result == "not-due" and len(settled.revoked) == 2, settled
    assert len(alive(teamcity_sim)) == 2, "once nothing settles: current and previous"
    assert works(teamcity_sim, seen[-1]) and works(teamcity_sim, seen[-2])


def test_age_and_expiry_make_it_due(make_engine, teamcity_sim):
    engine, spec, clock = make_engine(every="7d", lifetime="10d", lead="4d")
    engine.rotate_one(spec)
    clock.advance(timedelta(days=6, hours=1))  # 6d old: not at `every`, but expires in < 4d
    outcome = engine.rotate_one(spec)
    assert outcome.result == "rotated" and outcome.reason.startswith("expires in")
    clock.advance(timedelta(days=7))
    assert engine.rotate_one(spec).reason.startswith("age")


def test_failed_verification_keeps_current_and_revokes_the_new_token(
    make_engine, store, teamcity_sim
):
    engine, spec, _ = make_engine()
    engine.rotate_one(spec)
    current = store.read(spec.path)
    teamcity_sim.faults.fail_next(1, status=401, only="/app/rest/server")
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "failed" and outcome.step == "verify" and outcome.exit_code == 1
    assert store.read(spec.path).id == current.id
    with pytest.raises(NotFound):
        store.read(spec.path, "pending")
    assert alive(teamcity_sim) == {current.meta["target_name"]}
    assert works(teamcity_sim, value_of(store, spec)["password"])


def test_a_sink_failure_does_not_undo_promotion_and_is_retried_next_run(
    make_engine, store, teamcity_sim
):
    engine, spec, _ = make_engine(
        push=[{"teamcity_project": "DataPipelines", "parameter": "env.AIRFLOW_URL"}]
    )
    outcome = engine.rotate_one(spec)
    assert outcome.result == "rotated" and outcome.warnings and outcome.exit_code == 1
    assert "not a password parameter" in outcome.warnings[0]
    promoted = value_of(store, spec)["password"]
    assert works(teamcity_sim, promoted)
    assert store.read_journal(spec.name)["rotation"]["step"] == "promoted"

    project = teamcity_sim.state.projects["DataPipelines"]
    project.parameters["env.AIRFLOW_URL"].type = "password"  # the operator fixes the parameter
    again = engine.rotate_one(spec)
    assert again.result == "rotated" and not again.warnings
    pushed = project.parameters["env.AIRFLOW_URL"].value == promoted
    assert pushed
    assert "rotation" not in store.read_journal(spec.name)


def test_push_writes_the_rotated_value(make_engine, store, teamcity_sim):
    engine, spec, _ = make_engine(
        push=[{"teamcity_project": "DataPipelines", "parameter": "env.POLL_TOKEN"}]
    )
    engine.rotate_one(spec)
    parameter = teamcity_sim.state.projects["DataPipelines"].parameters["env.POLL_TOKEN"]
    pushed = parameter.value == value_of(store, spec)["password"]
    assert parameter.type == "password" and pushed


def test_lock_held_by_another_rotator(make_engine, store):
    engine, spec, _ = make_engine()
    lease = store.acquire_lease(spec.name, "other-host:1:x", ttl=10)
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "locked" and outcome.exit_code == 3
    assert "other-host" in outcome.reason
    with pytest.raises(NotFound):
        store.read(spec.path)
    store.release_lease(lease)


def test_concurrent_rotators_perform_exactly_one_rotation(make_engine, store, teamcity_sim):
    engines = [make_engine() for _ in range(8)]
    barrier = threading.Barrier(len(engines))
    results = []

    def run(engine, spec):
        barrier.wait()
        results.append(engine.rotate_one(spec, force=True))

    spec = engines[0][1]
    threads = [threading.Thread(target=run, args=(e, s)) for e, s, _ in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    rotated = [o for o in results if o.result == "rotated"]
    summary = sorted((o.result, o.error or "") for o in results)
    # A rotator that finds the lock free only after four others rotated in turn is refused
    # at plan by max_alive (the protocol, not a race): nothing changed, as for "locked".
    assert len(results) == 8, summary
    assert all(r in ("rotated", "locked") or "max_alive" in e for r, e in summary), summary
    assert len(rotated) >= 1
    # each rotation that won the lock ran alone; settling values stay, up to max_alive
    assert len(alive(teamcity_sim)) <= spec.max_alive
    assert works(teamcity_sim, value_of(store, engines[0][1])["password"])


@pytest.mark.parametrize(
    "point", ["after:intent", "after:mint", "after:stage", "after:verify", "after:promote"]
)
def test_an_interrupted_rotation_is_rolled_forward(
    make_engine, store, teamcity_sim, monkeypatch, point
):
    engine, spec, _ = make_engine()
    engine.rotate_one(spec)
    first = value_of(store, spec)["password"]
    monkeypatch.setenv("ROTATOR_FAULT", f"{point}:raise")
    with pytest.raises(InjectedFault):
        engine.rotate_one(spec, force=True)
    assert works(teamcity_sim, value_of(store, spec)["password"]), "current must keep working"
    monkeypatch.delenv("ROTATOR_FAULT")

    healed = engine.rotate_one(spec)
    assert healed.result in ("rotated", "not-due"), healed
    journal = store.read_journal(spec.name) or {}
    assert "rotation" not in journal
    current = store.read(spec.path)
    known = {current.meta["target_name"]}
    try:
        known.add(store.read(spec.path, "previous").meta["target_name"])
    except NotFound:
        pass
    assert alive(teamcity_sim) <= known, "no token at TeamCity that the store does not know"
    assert works(teamcity_sim, value_of(store, spec)["password"])
    if point in ("after:stage", "after:verify", "after:promote"):
        finished = value_of(store, spec)["password"] != first
        assert finished, "the interrupted rotation must be finished, not abandoned"


def test_tokens_the_store_never_recorded_are_reported_not_revoked(make_engine, store, teamcity_sim):
    engine, spec, _ = make_engine()
    engine.rotate_one(spec)
    unknown = "rotator-airflow-teamcity-token-20260101T000000-abcdef"
    teamcity_sim.add_token("airflow-bot", unknown, "unknown-token-value-1")
    teamcity_sim.add_token("airflow-bot", "somebody-elses", "not-ours-token-value-1")
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "rotated" and outcome.exit_code == 0
    assert unknown not in outcome.revoked and unknown in alive(teamcity_sim)
    assert any(unknown in note and "not revoked" in note for note in outcome.notes)
    assert "somebody-elses" in alive(teamcity_sim)


def test_rollback_restores_previous_and_keeps_it_alive(make_engine, store, teamcity_sim):
    engine, spec, clock = make_engine()
    engine.rotate_one(spec)
    first = value_of(store, spec)["password"]
    engine.rotate_one(spec, force=True)
    outcome = engine.rollback(spec)
    assert outcome.result == "rolled-back", outcome
    restored = value_of(store, spec)["password"] == first
    assert restored
    clock.advance(timedelta(days=1, hours=1))
    engine.rotate_one(spec)
    assert works(teamcity_sim, first), "the restored credential must not be retired"


def test_dry_run_changes_nothing(make_engine, store, teamcity_sim):
    engine, spec, _ = make_engine()
    outcome = engine.rotate_one(spec, dry_run=True)
    assert outcome.result == "dry-run" and "nothing stored yet" in outcome.reason
    with pytest.raises(NotFound):
        store.read(spec.path)
    assert teamcity_sim.requests == []


def test_waves_put_logins_first():
    from rotator.spec import CredentialSpec

    a = CredentialSpec("token", "airflow-token", login_from="pw")
    b = CredentialSpec("pw", "airflow-password", user="u")
    c = CredentialSpec("other", "teamcity-token", user="x")
    assert [[s.name for s in w] for w in waves([a, b, c])] == [["pw", "other"], ["token"]]


def test_engine_is_usable_without_an_audit_file(make_engine):
    engine, _spec, _ = make_engine()
    assert isinstance(engine, Engine)
