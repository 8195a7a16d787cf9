"""The Credentials page's JSON through a real Airflow 3.3 API server (FAB auth manager) with
Rotator's plugin loaded from its entry point: who may read it, what it says, what it never says.
"""

from __future__ import annotations

import pytest

from tests.ui.conftest import NAMES, credentials_json, login

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def admin_token(ui_stack):
    return login(ui_stack.url, *ui_stack.admin)


def test_airflow_lists_the_plugin_and_its_nav_entry(ui_stack, admin_token):
    response = ui_stack.http.get(f"{ui_stack.url}/api/v2/plugins", admin_token)
    assert response.status_code == 200
    plugins = {p["name"]: p for p in response.json()["plugins"]}
    assert "rotator" in plugins, sorted(plugins)
    views = plugins["rotator"]["external_views"]
    assert [(v["name"], v["href"]) for v in views] == [("Credentials", "/rotator/credentials")]
    assert plugins["rotator"]["fastapi_apps"][0]["url_prefix"] == "/rotator"


def test_an_admin_sees_every_credential_with_its_state(ui_stack, admin_token):
    data = credentials_json(ui_stack.http, ui_stack.url, admin_token)
    assert data["notes"] == [] and data["store"] == "file"
    rows = {c["name"]: c for c in data["credentials"]}
    assert tuple(rows) == NAMES
    token, password, jwt = (rows[n] for n in NAMES)
    assert (token["state"], password["state"]) == ("green", "green")
    assert jwt["state"] == "amber" and jwt["state_reason"].startswith("due: expires in")
    for row in rows.values():
        assert row["version"] and row["last_rotation"]["outcome"] == "rotated"
        assert row["last_rotation"]["rotation_id"] and row["age_seconds"] >= 0
    assert token["conn_id"] == "teamcity_default" and token["expires"]
    assert token["connection"]["login"] == "airflow-bot"
    assert token["last_rotation"]["rotation_id"] in token["target_name"]
    assert password["connection"] == {
        "conn_type": "http",
        "host": ui_stack.url,
        "login": "teamcity-bot",
    }


def test_history_lists_versions_and_audit_events(ui_stack, admin_token):
    response = ui_stack.http.get(
        f"{ui_stack.url}/rotator/api/v1/credentials/teamcity-bot-password/history", admin_token
    )
    assert response.status_code == 200
    data = response.json()
    versions = data["versions"]
    assert [v["stages"] for v in versions] == [["current"], ["previous"]]  # taken over, rotated
    rotation = versions[0]["meta"]["rotation_id"]
    steps = [e["step"] for e in data["events"] if e.get("rotation_id") == rotation]
    assert "promote" in steps and "verify" in steps
    missing = ui_stack.http.get(
        f"{ui_stack.url}/rotator/api/v1/credentials/no-such/history", admin_token
    )
    assert missing.status_code == 404


def test_no_response_carries_a_stored_secret(ui_stack, admin_token):
    secrets = ui_stack.stored_secrets()
    assert len(secrets) == 4  # the token, both passwords (taken over, rotated), the JWT
    bodies = [
        ui_stack.http.get(f"{ui_stack.url}/rotator/api/v1/credentials", admin_token).text,
        *(
            ui_stack.http.get(
                f"{ui_stack.url}/rotator/api/v1/credentials/{name}/history", admin_token
            ).text
            for name in NAMES
        ),
    ]
    assert all(secret not in body for secret in secrets for body in bodies)


def test_anonymous_callers_get_401(ui_stack):
    for path in ("credentials", "credentials/teamcity-bot-password/history"):
        response = ui_stack.http.get(f"{ui_stack.url}/rotator/api/v1/{path}")
        assert response.status_code == 401, path
        assert "credentials" not in response.json()


def test_a_forged_token_gets_no_data(ui_stack):
    response = ui_stack.http.get(f"{ui_stack.url}/rotator/api/v1/credentials", "e30.e30.AAAA")
    assert response.status_code in (401, 403) and "credentials" not in response.json()


def test_a_user_who_may_not_read_connections_gets_403(ui_stack):
    token = login(ui_stack.url, *ui_stack.viewer)
    for path in ("credentials", "credentials/teamcity-bot-password/history"):
        response = ui_stack.http.get(f"{ui_stack.url}/rotator/api/v1/{path}", token)
        assert response.status_code == 403, path
    # the same user is a real, logged-in user: Airflow's own connections API refuses it too
    own = ui_stack.http.get(f"{ui_stack.url}/api/v2/connections", token)
    assert own.status_code == 403
    dags = ui_stack.http.get(f"{ui_stack.url}/api/v2/dags", token)
    assert dags.status_code == 200


def test_the_page_is_html_and_allows_only_its_own_origin(ui_stack):
    response = ui_stack.http.get(f"{ui_stack.url}/rotator/credentials")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Credentials</h1>" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_an_airflow_without_rotator_config_still_serves_the_page(airflow_api, ui_stack):
    """Every Airflow of the suite loads the plugin (entry point): one with no rotator.toml and
    no Rotator backend answers with an empty list and a note that says what to set."""
    token = login(airflow_api.url, *airflow_api.admin)
    data = credentials_json(ui_stack.http, airflow_api.url, token)
    assert data["credentials"] == []
    assert any("ROTATOR_CONFIG" in note for note in data["notes"]), data["notes"]
