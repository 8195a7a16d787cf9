"""``rotator.status.recorded_row``: a credential's row from the store alone (what the
Credentials page shows without rotator.toml), over a real file store written through its public
API, for lock documents with and without what the engine records for a page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends.file import FileStore
from rotator.status import recorded_row, state

PATH = "airflow/connections/teamcity_default"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CREDENTIAL = {
    "type": "teamcity-token",
    "conn_id": "teamcity_default",
    "path": PATH,
    "login_from": None,
}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FileStore]:
    monkeypatch.delenv("ROTATOR_MASTER_KEY", raising=False)
    opened = FileStore(path=tmp_path / "store.db")
    yield opened
    opened.close()


def stored(store: FileStore, issued: datetime, expires: datetime) -> str:
    version = store.put_current(
        PATH,
        {"conn_type": "http", "login": "airflow-bot", "password": "tok-not-on-the-page"},
        expected=None,
        meta={"issued": issued.isoformat(), "expires": expires.isoformat()},
    )
    return version.id


def journal(store: FileStore, name: str, record: dict, holder: str = "host-1") -> None:
    """Written as a run writes it: under the lease, released with the last write."""
    lease = store.acquire_lease(name, holder, 30)
    store.write_journal(name, record, lease=lease, release=True)


def recorded(version: str, issued: datetime, expires: datetime, **more: object) -> dict:
    return {
        "credential": CREDENTIAL,
        "current": {
            "id": version,
            "issued": issued.isoformat(),
            "expires": expires.isoformat(),
            "next_due": (issued + timedelta(days=7)).isoformat(),
        },
        "last": {
            "rotation_id": "r-1",
            "result": "rotated",
            "step": None,
            "reason": "forced",
            "at": issued.isoformat(),
        },
        **more,
    }


def test_a_fully_recorded_credential_is_green_with_every_field(store: FileStore) -> None:
    issued, expires = NOW - timedelta(days=1), NOW + timedelta(days=9)
    version = stored(store, issued, expires)
    journal(store, "ci", recorded(version, issued, expires))
    row, last = recorded_row(store, "ci", NOW)
    assert (row["name"], row["type"], row["conn_id"], row["path"]) == (
        "ci",
        "teamcity-token",
        "teamcity_default",
        PATH,
    )
    assert row["version"] == version and (row["issued"], row["expires"]) == (issued, expires)
    assert row["next_due"] == issued + timedelta(days=7) and row["due"] is None
    assert row["unrecorded"] == [] and row["locked_by"] is None
    assert last == {
        "rotation_id": "r-1",
        "outcome": "rotated",
        "step": None,
        "reason": "forced",
        "time": issued.isoformat(),
    }
    assert state(row, last, NOW) == ("green", "ok")
    assert "tok-not-on-the-page" not in repr(row)


def test_a_failed_last_run_is_red_and_a_passed_next_due_amber(store: FileStore) -> None:
    issued, expires = NOW - timedelta(days=8), NOW + timedelta(days=2)
    version = stored(store, issued, expires)
    failed = {"rotation_id": "r-2", "result": "failed", "step": "mint", "reason": "HTTP 403"}
    journal(store, "ci", recorded(version, issued, expires, last={**failed, "at": NOW.isoformat()}))
    row, last = recorded_row(store, "ci", NOW)
    assert state(row, last, NOW) == ("red", "last rotation failed at mint")
    assert last is not None and last["reason"] == "HTTP 403"
    journal(store, "ci", recorded(version, issued, expires))
    row, last = recorded_row(store, "ci", NOW)
    assert row["due"] == "next due 1d ago, expires in 2d"
    assert state(row, last, NOW) == ("amber", "due: next due 1d ago, expires in 2d")


def test_a_cut_rotation_an_overdue_retirement_and_the_holder_show(store: FileStore) -> None:
    issued, expires = NOW - timedelta(days=1), NOW + timedelta(days=9)
    version = stored(store, issued, expires)
    retire = [{"target_name": "old", "not_before": (NOW - timedelta(hours=1)).isoformat()}]
    journal(store, "ci", recorded(version, issued, expires, retire=retire))
    row, last = recorded_row(store, "ci", NOW)
    assert (row["retirements"], row["retirements_overdue"]) == (1, 1)
    assert state(row, last, NOW) == ("amber", "1 retirement(s) overdue")
    journal(
        store, "ci", recorded(version, issued, expires, rotation={"id": "r-3", "step": "apply"})
    )
    store.acquire_lease("ci", "worker-7", 30)
    row, last = recorded_row(store, "ci", datetime.now(UTC))
    assert row["locked_by"] == "worker-7" and row["last_result"] == "interrupted"
    assert state(row, last)[1] == "interrupted rotation at apply"


def test_a_lock_document_without_the_new_keys_still_gives_a_row(store: FileStore) -> None:
    """Written by an older Rotator: a lease and a journal that only held ``retire``."""
    journal(store, "legacy", {"retire": []})
    row, last = recorded_row(store, "legacy", NOW)
    assert row["name"] == "legacy" and last is None
    assert row["unrecorded"] == ["type", "conn_id", "path", "last_rotation"]
    assert row["version"] is None and row["due"] is None and row["path"] is None
    assert state(row, last, NOW) == (
        "amber",
        "not recorded yet: the next run of this Rotator records it",
    )


def test_a_journal_with_current_dates_only_shows_them(store: FileStore) -> None:
    """Between the idle-pass journal (current's dates) and the page's keys: no path, no
    next due, no last outcome, but the version and its expiry are known."""
    dates = {"id": "4", "issued": (NOW - timedelta(days=3)).isoformat(), "expires": None}
    journal(store, "middle", {"current": dates})
    row, last = recorded_row(store, "middle", NOW)
    assert row["version"] == "4" and row["issued"] == NOW - timedelta(days=3)
    assert row["unrecorded"] == ["type", "conn_id", "path", "next_due", "last_rotation"]
    assert state(row, last, NOW) == ("green", "ok")
    journal(store, "middle", {"current": {**dates, "expires": (NOW - timedelta(1)).isoformat()}})
    assert state(*recorded_row(store, "middle", NOW), NOW) == ("red", "expired")


def test_a_recorded_path_with_nothing_stored_is_amber(store: FileStore) -> None:
    journal(store, "ci", {"credential": CREDENTIAL})
    row, last = recorded_row(store, "ci", NOW)
    assert row["version"] is None and row["due"] == "nothing stored yet"
    assert row["unrecorded"] == ["last_rotation"]
    assert state(row, last, NOW) == ("amber", "due: nothing stored yet")
