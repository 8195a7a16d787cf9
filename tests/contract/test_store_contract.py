"""One conformance suite for every store: the same cases against SQLite, OpenBao and moto.

Every case states the contract of ``backends.store.Store`` it checks. A store-specific fact
(version ids, how a rollback is written) is asserted through the contract, never assumed.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from backends.errors import ConfigError, Conflict, LeaseLost, LockHeld, NotFound
from backends.store import Store, open_store

CONN = {
    "conn_type": "http",
    "host": "https://teamcity.example.com",
    "login": "airflow-bot",
    "password": "tok-initial-0001",
}


def doc(password: str) -> dict[str, Any]:
    return {**CONN, "password": password}


def consumer_view(store: Store, path: str) -> dict[str, Any]:
    """What a consumer reads, parsed: AWS hands back the SecretString as stored."""
    raw = store.get_document(path)
    return json.loads(raw) if isinstance(raw, str) else raw


# -- documents and stages ------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["current", "previous", "pending"])
def test_missing_path_is_not_found(store, conn_path, stage):
    with pytest.raises(NotFound):
        store.read(conn_path, stage)


def test_get_document_of_missing_path_is_not_found(store, conn_path):
    with pytest.raises(NotFound):
        store.get_document(conn_path)


def test_put_current_then_read(store, conn_path):
    version = store.put_current(conn_path, CONN, expected=None, meta={"target_name": "t0"})
    assert version.stages == {"current"}
    assert store.read(conn_path).value == CONN
    assert store.read(conn_path).meta.get("target_name") == "t0"
    assert consumer_view(store, conn_path) == CONN
    assert version.created.tzinfo is not None


def test_put_current_with_stale_expectation_conflicts_and_changes_nothing(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    with pytest.raises(Conflict):
        store.put_current(conn_path, doc("other-value-1"), expected=None)
    second = store.put_current(conn_path, doc("tok-second-002"), expected=first.id)
    with pytest.raises(Conflict):
        store.put_current(conn_path, doc("tok-third-0003"), expected=first.id)
    assert store.read(conn_path).id == second.id
    assert consumer_view(store, conn_path)["password"] == "tok-second-002"
    assert store.read(conn_path, "previous").value == CONN


def test_pending_is_invisible_to_consumers_until_promoted(store, conn_path):
    current = store.put_current(conn_path, CONN, expected=None)
    pending = store.put_pending(
        conn_path, doc("tok-new-000002"), rotation_id="r1", meta={"target_name": "rotator-x-r1"}
    )
    assert pending.stages == {"pending"}
    assert store.read(conn_path, "pending").value["password"] == "tok-new-000002"
    assert store.read(conn_path, "pending").meta["rotation_id"] == "r1"
    assert consumer_view(store, conn_path) == CONN

    promoted = store.promote(conn_path, rotation_id="r1", expected=current.id)
    assert promoted.value["password"] == "tok-new-000002"
    assert promoted.meta["target_name"] == "rotator-x-r1"
    assert consumer_view(store, conn_path)["password"] == "tok-new-000002"
    assert store.read(conn_path, "previous").value == CONN
    with pytest.raises(NotFound):
        store.read(conn_path, "pending")


def test_first_rotation_of_a_new_path_stays_pending_until_promoted(store, conn_path):
    store.put_pending(conn_path, CONN, rotation_id="r1")
    with pytest.raises(NotFound):
        store.get_document(conn_path)
    with pytest.raises(NotFound):
        store.read(conn_path)
    promoted = store.promote(conn_path, rotation_id="r1", expected=None)
    assert consumer_view(store, conn_path) == CONN
    assert store.read(conn_path).id == promoted.id


def test_put_pending_is_idempotent_per_rotation(store, conn_path):
    store.put_current(conn_path, CONN, expected=None)
    one = store.put_pending(conn_path, doc("tok-new-000002"), rotation_id="r1")
    again = store.put_pending(conn_path, doc("tok-new-000002"), rotation_id="r1")
    assert one.id == again.id
    with pytest.raises(Conflict):
        store.put_pending(conn_path, doc("tok-different-3"), rotation_id="r1")
    assert store.read(conn_path, "pending").value["password"] == "tok-new-000002"


def test_a_new_rotation_replaces_an_abandoned_pending(store, conn_path):
    current = store.put_current(conn_path, CONN, expected=None)
    store.put_pending(conn_path, doc("tok-abandoned-1"), rotation_id="r1")
    store.put_pending(conn_path, doc("tok-replaced-22"), rotation_id="r2")
    assert store.read(conn_path, "pending").meta["rotation_id"] == "r2"
    with pytest.raises(Conflict):
        store.promote(conn_path, rotation_id="r1", expected=current.id)
    store.promote(conn_path, rotation_id="r2", expected=current.id)
    assert consumer_view(store, conn_path)["password"] == "tok-replaced-22"


def test_promote_with_stale_expectation_conflicts_and_changes_nothing(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    second = store.put_current(conn_path, doc("tok-second-002"), expected=first.id)
    store.put_pending(conn_path, doc("tok-pending-03"), rotation_id="r3")
    with pytest.raises(Conflict):
        store.promote(conn_path, rotation_id="r3", expected=first.id)
    assert store.read(conn_path).id == second.id
    assert store.read(conn_path, "pending").value["password"] == "tok-pending-03"


def test_promote_is_idempotent_for_the_same_rotation(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    store.put_pending(conn_path, doc("tok-new-000002"), rotation_id="r1")
    promoted = store.promote(conn_path, rotation_id="r1", expected=first.id)
    again = store.promote(conn_path, rotation_id="r1", expected=first.id)
    assert again.id == promoted.id
    assert store.read(conn_path, "previous").value == CONN


def test_promote_without_pending_conflicts(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    with pytest.raises(Conflict):
        store.promote(conn_path, rotation_id="nope", expected=first.id)


def test_discard_pending_only_for_its_rotation(store, conn_path):
    store.put_current(conn_path, CONN, expected=None)
    store.put_pending(conn_path, doc("tok-new-000002"), rotation_id="r1")
    store.discard_pending(conn_path, rotation_id="someone-else")
    assert store.read(conn_path, "pending").meta["rotation_id"] == "r1"
    store.discard_pending(conn_path, rotation_id="r1")
    with pytest.raises(NotFound):
        store.read(conn_path, "pending")
    assert consumer_view(store, conn_path) == CONN


def test_rollback_makes_previous_current_again(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None, meta={"target_name": "t1"})
    store.put_pending(
        conn_path, doc("tok-new-000002"), rotation_id="r2", meta={"target_name": "t2"}
    )
    second = store.promote(conn_path, rotation_id="r2", expected=first.id)
    with pytest.raises(Conflict):
        store.rollback(conn_path, expected=first.id)
    rolled = store.rollback(conn_path, expected=second.id)
    assert rolled.value == CONN
    assert rolled.meta.get("target_name") == "t1"
    assert consumer_view(store, conn_path) == CONN
    assert store.read(conn_path, "previous").value["password"] == "tok-new-000002"


def test_rollback_without_previous_is_not_found(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    with pytest.raises(NotFound):
        store.rollback(conn_path, expected=first.id)


def test_versions_lists_newest_first_with_stages_and_times(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    store.put_pending(conn_path, doc("tok-new-000002"), rotation_id="r2")
    second = store.promote(conn_path, rotation_id="r2", expected=first.id)
    versions = store.versions(conn_path)
    by_id = {v.id: v for v in versions}
    assert "current" in by_id[second.id].stages
    assert "previous" in by_id[first.id].stages
    created = [v.created for v in versions]
    assert created == sorted(created, reverse=True)
    assert all(c <= datetime.now(UTC) for c in created)
    assert store.read_version(conn_path, first.id).value == CONN


def test_the_current_id_is_the_version_the_backend_marks_current(store_harness, conn_path):
    """``Version.id`` is store-native: the backend's own marker of what consumers read (KV
    ``current_version``, the ``AWSCURRENT`` label, the ``current`` stage row) names it."""
    store = store_harness.store
    first = store.put_current(conn_path, doc("tok-first-00001"), expected=None)
    assert store_harness.current_id(conn_path) == first.id
    store.put_pending(conn_path, doc("tok-second-0002"), rotation_id="r2")
    assert store_harness.current_id(conn_path) == first.id
    second = store.promote(conn_path, rotation_id="r2", expected=first.id)
    assert store_harness.current_id(conn_path) == second.id != first.id


def test_read_version_of_unknown_id_is_not_found(store, conn_path):
    store.put_current(conn_path, CONN, expected=None)
    with pytest.raises(NotFound):
        store.read_version(conn_path, "999999")


def test_large_and_unicode_values_round_trip(store, conn_path):
    value = {
        **CONN,
        "password": "pässwörd-✓-密码-🔑-" + "x" * 60_000,
        "extra": json.dumps({"note": "naïve café, ünïcödé"}),
    }
    store.put_current(conn_path, value, expected=None)
    assert store.read(conn_path).value == value
    assert consumer_view(store, conn_path) == value


def test_delete_removes_everything(store, conn_path):
    first = store.put_current(conn_path, CONN, expected=None)
    store.put_pending(conn_path, doc("tok-new-000002"), rotation_id="r2")
    store.delete(conn_path)
    for stage in ("current", "pending"):
        with pytest.raises(NotFound):
            store.read(conn_path, stage)
    store.delete(conn_path)  # missing is not an error
    assert first.id


@pytest.mark.parametrize("bad", ["", "/abs", "a//b", "a/../b", "a/./b"])
def test_invalid_paths_are_bad_input(store, bad):
    with pytest.raises(ConfigError):
        store.read(bad)


def test_non_object_documents_are_bad_input(store, conn_path):
    with pytest.raises(ConfigError):
        store.put_current(conn_path, ["not", "an", "object"], expected=None)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.read(conn_path)


# -- lease lock ------------------------------------------------------------------------------


def test_lease_excludes_others_until_released(store, ns):
    key = f"{ns}-cred"
    lease = store.acquire_lease(key, "host-a:1:r1", ttl=30)
    with pytest.raises(LockHeld) as held:
        store.acquire_lease(key, "host-b:2:r2", ttl=30)
    assert held.value.holder == "host-a:1:r1"
    assert store.read_lease(key).holder == "host-a:1:r1"
    renewed = store.renew_lease(lease, ttl=30)
    assert renewed.expires >= lease.expires
    store.release_lease(renewed)
    assert store.read_lease(key) is None
    other = store.acquire_lease(key, "host-b:2:r2", ttl=30)
    with pytest.raises(LeaseLost):
        store.renew_lease(lease, ttl=30)
    store.release_lease(lease)  # not ours any more: a no-op
    assert store.read_lease(key).token == other.token


def test_a_store_that_saw_the_lock_free_cannot_take_it_once_another_has(store_harness, ns):
    """A store object reuses what it last read of a lock as the expected version: when that
    view is stale (another process took the lease since), the write must be refused, not
    land beside the other holder's. On AWS that refusal is the version id derived from the
    expected one, which the other holder's write already took."""
    key = f"{ns}-cred"
    mine = store_harness.store
    other = open_store(mine.kind, **store_harness.options)
    mine.release_lease(mine.acquire_lease(key, "host-a:1:r1", ttl=30))
    assert mine.read_lease(key) is None  # seen free, and remembered so
    theirs = other.acquire_lease(key, "host-b:2:r2", ttl=30)
    with pytest.raises(LockHeld):
        mine.acquire_lease(key, "host-a:1:r3", ttl=30)
    other.write_journal(key, {"step": "intent", "by": "b"}, lease=theirs)
    assert mine.read_lease(key).token == theirs.token
    assert mine.read_journal(key) == {"step": "intent", "by": "b"}
    other.release_lease(theirs)
    again = mine.acquire_lease(key, "host-a:1:r4", ttl=30)
    assert other.read_lease(key).token == again.token
    assert other.read_journal(key) == {"step": "intent", "by": "b"}


def test_a_lease_taken_with_a_journal_lands_only_on_the_journal_read(store_harness, ns):
    """``acquire_lease(journal=(read, new))``: one write takes the lock and records the intent,
    and only while the journal is the one the caller planned on."""
    key = f"{ns}-cred"
    store = store_harness.store
    other = open_store(store.kind, **store_harness.options)
    intent = {"rotation": {"id": "r1", "step": "intent"}, "retire": []}
    lease = store.acquire_lease(key, "host-a:1:r1", ttl=30, journal=(None, intent))
    assert other.read_lease(key).token == lease.token
    assert other.read_journal(key) == intent
    with pytest.raises(LockHeld):  # held: the journal matching changes nothing
        other.acquire_lease(key, "host-b:2:r2", ttl=30, journal=(intent, {"retire": []}))
    store.write_journal(key, {"retire": []}, lease=lease, release=True)

    # Planned on the journal before that last write: refused, nothing taken or written.
    with pytest.raises(Conflict):
        other.acquire_lease(key, "host-b:2:r3", ttl=30, journal=(intent, {"stale": True}))
    assert other.read_lease(key) is None
    assert store.read_journal(key) == {"retire": []}
    # Planned on what is there: taken, the journal kept as it was.
    again = other.acquire_lease(key, "host-b:2:r4", ttl=30, journal=({"retire": []},) * 2)
    assert store.read_lock(key) == (again, {"retire": []})


def test_an_expired_lease_is_taken_over(store, ns):
    key = f"{ns}-cred"
    dead = store.acquire_lease(key, "crashed:1:r1", ttl=1)
    deadline = time.monotonic() + 10
    while True:  # wait for the lapse itself, bounded, polling the store's own answer
        try:
            taken = store.acquire_lease(key, "alive:2:r2", ttl=30)
            break
        except LockHeld:
            assert time.monotonic() < deadline, "an expired lease was never released"
            time.sleep(0.1)
    assert taken.expires > dead.expires
    with pytest.raises(LeaseLost):
        store.renew_lease(dead, ttl=30)


def test_lease_ttl_is_bounded(store, ns):
    with pytest.raises(ConfigError):
        store.acquire_lease(f"{ns}-x", "me", ttl=0)
    with pytest.raises(ConfigError):
        store.acquire_lease(f"{ns}-x", "me", ttl=10_000)


# -- journal -------------------------------------------------------------------------------


def test_journal_round_trip(store, ns):
    key = f"{ns}-cred"
    assert store.read_journal(key) is None
    record = {"rotation_id": "r1", "step": "intent", "target_name": "rotator-cred-r1"}
    store.write_journal(key, record)
    assert store.read_journal(key) == record
    store.write_journal(key, {**record, "step": "minted"})
    assert store.read_journal(key)["step"] == "minted"
    store.clear_journal(key)
    assert store.read_journal(key) is None
    store.clear_journal(key)


def test_a_journal_write_under_a_lost_lease_changes_nothing(store, ns):
    """Fencing: a holder whose lease lapsed and was taken over cannot overwrite the new
    holder's journal, however late its write arrives (issue 10, defect 10)."""
    key = f"{ns}-cred"
    old = store.acquire_lease(key, "old-host:1:x", ttl=10)
    store.write_journal(key, {"step": "intent", "by": "old"}, lease=old)
    store.renew_lease(old, ttl=10)
    assert store.read_journal(key) == {"step": "intent", "by": "old"}, "renewal keeps it"
    store.release_lease(old)  # as if it had lapsed
    new = store.acquire_lease(key, "new-host:2:y", ttl=10)
    assert store.read_journal(key) == {"step": "intent", "by": "old"}, "a takeover keeps it"
    store.write_journal(key, {"step": "intent", "by": "new"}, lease=new)
    with pytest.raises(LeaseLost):
        store.write_journal(key, {"step": "staged", "by": "old"}, lease=old)
    with pytest.raises(LeaseLost):
        store.clear_journal(key, lease=old)
    assert store.read_journal(key) == {"step": "intent", "by": "new"}
    store.clear_journal(key, lease=new)
    assert store.read_journal(key) is None
    store.release_lease(new)


# -- many processes at once ------------------------------------------------------------------


def _cas_worker(kind: str, options: dict, env: dict, path: str, expected: str, n: int, q) -> None:
    import os

    os.environ.update(env)
    from backends.errors import Conflict as C

    store = open_store(kind, **options)
    try:
        store.put_current(path, doc(f"tok-writer-{n:04d}"), expected=expected)
        q.put(("won", n))
    except C:
        q.put(("lost", n))
    except Exception as exc:  # reported, so the parent can show it
        q.put(("error", f"{type(exc).__name__}: {exc}"))


def _lease_worker(kind: str, options: dict, env: dict, key: str, n: int, q) -> None:
    import os

    os.environ.update(env)
    from backends.errors import Conflict as C
    from backends.errors import LockHeld as H

    store = open_store(kind, **options)
    try:
        store.acquire_lease(key, f"worker-{n}", ttl=60)
        q.put(("won", n))
    except (H, C):
        q.put(("lost", n))
    except Exception as exc:
        q.put(("error", f"{type(exc).__name__}: {exc}"))


def _race(target, args_for, workers: int = 6) -> list[tuple[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(n), queue)) for n in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


def test_concurrent_compare_and_set_from_processes_has_one_winner(store_harness, conn_path):
    store = store_harness.store
    first = store.put_current(conn_path, CONN, expected=None)
    kind, options, env = store.kind, store_harness.options, store_harness.env
    results = _race(_cas_worker, lambda n: (kind, options, env, conn_path, first.id, n))
    assert [r for r in results if r[0] == "error"] == []
    winners = [n for outcome, n in results if outcome == "won"]
    assert len(winners) == 1, results
    assert consumer_view(store, conn_path)["password"] == f"tok-writer-{winners[0]:04d}"
    assert store.read(conn_path, "previous").value == CONN


def test_concurrent_lease_acquisition_from_processes_has_one_holder(store_harness, ns):
    store, key = store_harness.store, f"{ns}-raced"
    kind, options, env = store.kind, store_harness.options, store_harness.env
    results = _race(_lease_worker, lambda n: (kind, options, env, key, n))
    assert [r for r in results if r[0] == "error"] == []
    winners = [n for outcome, n in results if outcome == "won"]
    assert len(winners) == 1, results
    assert store.read_lease(key).holder == f"worker-{winners[0]}"
