"""The same JSON behind Airflow's simple auth manager: Airflow's own dependencies decide, so
an ``admin`` reads it, a ``viewer`` (no connection access there either) gets 403 and an
anonymous caller 401, with no change on Rotator's side."""

from __future__ import annotations

import pytest

from tests.ui.conftest import NAMES, credentials_json, login

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def test_simple_auth_manager_guards_the_page_the_same_way(ui_stack, simple_airflow):
    http, url = ui_stack.http, simple_airflow.url
    admin = login(url, *simple_airflow.admin)
    data = credentials_json(http, url, admin)
    rows = {c["name"]: c for c in data["credentials"]}  # the store's, without rotator.toml
    assert set(NAMES) <= set(rows) and all(rows[n]["version"] for n in NAMES)
    history = http.get(f"{url}/rotator/api/v1/credentials/teamcity-bot-password/history", admin)
    assert history.status_code == 200 and history.json()["versions"]

    viewer = login(url, *simple_airflow.viewer)
    assert http.get(f"{url}/api/v2/dags", viewer).status_code == 200  # a real, valid login
    for path in ("credentials", "credentials/teamcity-bot-password/history"):
        assert http.get(f"{url}/rotator/api/v1/{path}", viewer).status_code == 403, path
        assert http.get(f"{url}/rotator/api/v1/{path}").status_code == 401, path
    secrets = ui_stack.stored_secrets()
    assert secrets and not any(s in history.text or s in str(data) for s in secrets)
