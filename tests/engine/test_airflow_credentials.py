"""The Airflow credential types through the engine, on every store, against a real Airflow 3.3
API server and the TeamCity simulator: the service account's password is rotated (staged before
it is applied), a JWT is minted with the new password and pushed to a TeamCity parameter."""

from __future__ import annotations

import json

import pytest
import requests

from rotator.airflow_api import AirflowApi
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from rotator.issuers.registry import build_issuers, build_sink
from rotator.spec import AirflowSettings
from tests.contract.test_store_contract import _options_of
from tests.fixtures.leaks import register_secret

pytestmark = pytest.mark.airflow


@pytest.fixture
def bot_password_restored(airflow_api, monkeypatch):
    for key, value in airflow_api.env.items():
        monkeypatch.setenv(key, value)
    yield
    AirflowApi(AirflowSettings(url=airflow_api.url)).set_password(*airflow_api.bot)


def test_password_and_token_rotate_and_push(
    store,
    airflow_api,
    teamcity_sim,
    teamcity_admin_token,
    monkeypatch,
    tmp_path,
    bot_password_restored,
):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    config = parse(
        {
            "store": {"kind": store.kind, **_options_of(store)},
            "teamcity": {"url": teamcity_sim.url},
            "airflow": {"url": airflow_api.url},
            "credentials": [
                {
                    "name": "teamcity-bot-password",
                    "type": "airflow-password",
                    "user": "teamcity-bot",
                    "conn_id": "airflow_teamcity_bot",
                    "every": "30d",
                },
                {
                    "name": "teamcity-airflow-token",
                    "type": "airflow-token",
                    "login_from": "teamcity-bot-password",
                    "every": "12h",
                    "push": [
                        {"teamcity_project": "DataPipelines", "parameter": "env.AIRFLOW_API_TOKEN"}
                    ],
                },
            ],
        },
        "airflow-e2e",
    )
    password_spec, token_spec = config.credentials
    # Rotator takes the account over: its current password is stored first.
    store.put_current(
        password_spec.path,
        {
            "conn_type": "http",
            "host": airflow_api.url,
            "login": "teamcity-bot",
            "password": airflow_api.bot[1],
        },
        expected=None,
    )
    engine = Engine(
        config,
        store,
        build_issuers(config, store),
        build_sink(config),
        Audit(tmp_path / "audit.jsonl"),
    )

    outcomes = engine.rotate_all(list(config.credentials), force=True)
    assert [o.result for o in outcomes] == ["rotated", "rotated"], [o.as_dict() for o in outcomes]

    def doc(path):
        raw = store.get_document(path)
        return json.loads(raw) if isinstance(raw, str) else raw

    new_password = doc(password_spec.path)["password"]
    jwt = doc(token_spec.path)["password"]
    register_secret(new_password)
    register_secret(jwt)
    login = requests.post(
        f"{airflow_api.url}/auth/token",
        timeout=10,
        json={"username": "teamcity-bot", "password": new_password},
    )
    assert login.status_code == 201, "the stored password is the one Airflow has"
    old = requests.post(
        f"{airflow_api.url}/auth/token",
        timeout=10,
        json={"username": "teamcity-bot", "password": airflow_api.bot[1]},
    )
    assert old.status_code == 401
    dags = requests.get(
        f"{airflow_api.url}/api/v2/dags", headers={"Authorization": f"Bearer {jwt}"}, timeout=10
    )
    assert dags.status_code == 200
    pushed = teamcity_sim.state.projects["DataPipelines"].parameters["env.AIRFLOW_API_TOKEN"]
    same = pushed.value == jwt
    assert same and pushed.type == "password"
    assert store.read(token_spec.path).meta.get("expires"), (
        "the JWT's exp is recorded for expiry-driven rotation"
    )
    assert all(engine.verify(s).result == "verified" for s in config.credentials)
