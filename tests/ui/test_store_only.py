"""The Credentials page of an Airflow that has only the secrets backend setting (the simple
auth manager server of ``conftest.py``: no ``ROTATOR_CONFIG``, no rotator.toml): it lists the
credentials Rotator rotated into the backend's store, in the states the rotator.toml-reading
server (FAB) gives them, shows a failed rotation red from the journal alone, still lists a lock
document written before the journal recorded what a page needs, and never returns a value.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.file import FileStore
from rotator.airflow_plugin.source import STORE_ONLY
from tests.ui.conftest import NAMES, credentials_json, login

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SAME = ("type", "conn_id", "path", "version", "issued", "expires", "next_due", "target_name")


@pytest.fixture(scope="module")
def tokens(ui_stack, simple_airflow) -> tuple[str, str]:
    """(FAB admin on the config server, simple-auth admin on the store-only server)."""
    return login(ui_stack.url, *ui_stack.admin), login(simple_airflow.url, *simple_airflow.admin)


def both(ui_stack, simple_airflow, tokens) -> tuple[dict[str, Any], dict[str, Any]]:
    fab, simple = tokens
    config = credentials_json(ui_stack.http, ui_stack.url, fab)
    store = credentials_json(ui_stack.http, simple_airflow.url, simple)
    return config, store


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data["credentials"]}


def test_the_store_alone_lists_the_rotated_credentials_as_rotator_toml_does(
    ui_stack, simple_airflow, tokens
):
    config, store = both(ui_stack, simple_airflow, tokens)
    assert store["config"] is None and store["store"] == "file"
    assert store["notes"] == [STORE_ONLY]
    assert config["config"] == str(ui_stack.config) and config["notes"] == []
    by_config, by_store = rows(config), rows(store)
    assert sorted(NAMES) == [n for n in by_store if n in NAMES]  # the lock names, sorted
    for name in NAMES:
        mine, theirs = by_store[name], by_config[name]
        assert {k: mine[k] for k in SAME} == {k: theirs[k] for k in SAME}, name
        assert mine["state"] == theirs["state"], (name, mine["state_reason"])
        assert mine["unrecorded"] == [] and mine["connection"] == theirs["connection"]
        last, audited = mine["last_rotation"], theirs["last_rotation"]
        assert (last["rotation_id"], last["outcome"]) == (
            audited["rotation_id"],
            audited["outcome"],
        )
    jwt = by_store["teamcity-airflow-token"]
    assert jwt["state"] == "amber" and "expires in" in jwt["state_reason"]
    assert by_store["teamcity-airflow-token"]["type"] == "airflow-token"


def test_a_failed_rotation_turns_red_from_the_journal(ui_stack, simple_airflow, tokens):
    ui_stack.sim.faults.fail_next(1, status=403, only="/tokens", method="POST")
    failed = ui_stack.rotator("rotate", "airflow-teamcity-token", "--force")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    _, store = both(ui_stack, simple_airflow, tokens)
    token = rows(store)["airflow-teamcity-token"]
    assert (token["state"], token["state_reason"]) == ("red", "last rotation failed at mint")
    assert (
        token["last_rotation"]["outcome"] == "failed" and "403" in token["last_rotation"]["reason"]
    )
    assert token["version"]  # the value before the failed run is still current

    again = ui_stack.rotator("rotate", "airflow-teamcity-token", "--force")  # green for others
    assert again.returncode == 0, again.stdout + again.stderr
    ui_stack.register_stored_secrets()
    config, store = both(ui_stack, simple_airflow, tokens)
    token = rows(store)["airflow-teamcity-token"]
    assert token["state"] == "green" and token["last_rotation"]["outcome"] == "rotated"
    assert token["version"] == rows(config)["airflow-teamcity-token"]["version"]


def test_a_lock_document_from_an_older_rotator_is_listed_as_not_recorded(
    ui_stack, simple_airflow, tokens
):
    store = FileStore(path=ui_stack.home / "store" / "store.db")
    try:
        lease = store.acquire_lease("legacy-credential", "old-host", 30)
        store.write_journal("legacy-credential", {"retire": []}, lease=lease, release=True)
    finally:
        store.close()
    config, listed = both(ui_stack, simple_airflow, tokens)
    assert "legacy-credential" not in rows(config)  # rotator.toml does not name it
    legacy = rows(listed)["legacy-credential"]
    assert legacy["state"] == "amber" and legacy["state_reason"].startswith("not recorded yet")
    assert legacy["unrecorded"] == ["type", "conn_id", "path", "last_rotation"]
    assert legacy["version"] is None and legacy["last_rotation"] is None
    history = ui_stack.http.get(
        f"{simple_airflow.url}/rotator/api/v1/credentials/legacy-credential/history", tokens[1]
    )
    assert history.status_code == 200
    assert history.json()["versions"] == [] and "not recorded yet" in history.json()["note"]


def test_history_without_rotator_toml_has_versions_and_no_audit_trail(
    ui_stack, simple_airflow, tokens
):
    url = f"{simple_airflow.url}/rotator/api/v1/credentials"
    response = ui_stack.http.get(f"{url}/teamcity-bot-password/history", tokens[1])
    assert response.status_code == 200
    data = response.json()
    assert data["versions"] and data["versions"][0]["stages"] == ["current"]
    assert data["events"] == [] and "no audit trail" in data["note"]
    assert ui_stack.http.get(f"{url}/no-such/history", tokens[1]).status_code == 404


def test_no_store_only_response_carries_a_stored_secret(ui_stack, simple_airflow, tokens):
    secrets = ui_stack.stored_secrets()
    assert len(secrets) >= 4
    url = f"{simple_airflow.url}/rotator/api/v1/credentials"
    bodies = [ui_stack.http.get(url, tokens[1]).text]
    bodies += [ui_stack.http.get(f"{url}/{n}/history", tokens[1]).text for n in NAMES]
    assert all(secret not in body for secret in secrets for body in bodies)
