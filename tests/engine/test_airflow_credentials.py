"""The Airflow credential types through the engine, on every store, against a real Airflow 3.3
API server and the TeamCity simulator: the service account's password is rotated (staged before
it is applied), a JWT is minted with the new password and pushed to a TeamCity parameter."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import requests

from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from rotator.spec import AirflowSettings
from rotator.targets.airflow_api import AirflowApi
from tests.fixtures.leaks import register_secret
from tests.fixtures.store_harness import options_of

pytestmark = pytest.mark.airflow
EXAMPLE = Path(__file__).resolve().parents[2] / "ops" / "rotator.example.toml"


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
    # The README's example (ops/rotator.example.toml): its two Airflow credentials and its
    # [teamcity] / [airflow] tables, pointed at this test's store, simulator and Airflow.
    example = tomllib.loads(EXAMPLE.read_text())
    config = parse(
        {
            "store": {"kind": store.kind, **options_of(store)},
            "teamcity": {**example["teamcity"], "url": teamcity_sim.url},
            "airflow": {**example["airflow"], "url": airflow_api.url},
            "credentials": [c for c in example["credentials"] if c["type"].startswith("airflow-")],
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
    engine = Engine.from_config(config, store, Audit(tmp_path / "audit.jsonl"))

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


class _OnEvent(Audit):
    """The audit log, doing one thing the moment a chosen step reports: here, Airflow goes
    away right after it accepted a new password (a real outage, no HTTP patching)."""

    def __init__(self, path, when: tuple[str, str], action) -> None:
        super().__init__(path)
        self.when, self.action = when, action

    def event(self, credential, step, outcome, **details):
        record = super().event(credential, step, outcome, **details)
        if (step, outcome) == self.when:
            self.action()
        return record


def _password_taken_over(store, url: str, password: str, *, retries: int):
    """A config with the service account's password credential, its known password stored as
    current (Rotator taking the account over)."""
    config = parse(
        {
            "store": {"kind": store.kind, **options_of(store)},
            "airflow": {"url": url, "timeout": 3, "retries": retries},
            "credentials": [
                {
                    "name": "teamcity-bot-password",
                    "type": "airflow-password",
                    "user": "teamcity-bot",
                    "conn_id": "airflow_teamcity_bot",
                    "every": "30d",
                }
            ],
        },
        "airflow-password",
    )
    spec = config.credentials[0]
    store.put_current(
        spec.path,
        {"conn_type": "http", "host": url, "login": "teamcity-bot", "password": password},
        expected=None,
    )
    return config, spec


def _login(url: str, password: str) -> int:
    return requests.post(
        f"{url}/auth/token",
        timeout=10,
        json={"username": "teamcity-bot", "password": password},
    ).status_code


def test_a_password_accepted_just_before_airflow_went_away_is_never_lost(
    store, airflow_api, monkeypatch, tmp_path, bot_password_restored
):
    """Defect 1 of the hardening issue: the undo used to drop the staged password although
    Airflow held it; the store's current then no longer worked, and nothing was due for 30d."""
    from tests.fixtures.outage import OutageProxy

    proxy = OutageProxy(int(airflow_api.url.rsplit(":", 1)[1]))
    config, spec = _password_taken_over(store, proxy.url, airflow_api.bot[1], retries=1)
    seeded = airflow_api.bot[1]
    audit = _OnEvent(tmp_path / "audit.jsonl", ("apply", "ok"), lambda: proxy.set_down(True))
    engine = Engine.from_config(config, store, audit)
    failed = engine.rotate_one(spec, force=True)
    assert failed.result == "failed" and failed.step == "verify", failed
    staged = store.read(spec.path, "pending").value["password"]
    register_secret(staged)
    assert store.read_journal(spec.name)["rotation"]["id"] == failed.rotation_id
    assert _login(airflow_api.url, staged) == 201, "Airflow took the new password"

    proxy.set_down(False)
    steady = Engine.from_config(config, store, Audit(tmp_path / "b.jsonl"))
    healed = steady.rotate_one(spec)
    assert healed.result == "rotated" and healed.resumed, healed
    current = store.read(spec.path).value["password"]
    assert current == staged and _login(airflow_api.url, current) == 201
    assert "rotation" not in (store.read_journal(spec.name) or {})

    # Defect 5: rolling a password back applies it at Airflow, not only in the store.
    rolled = steady.rollback(spec)
    assert rolled.result == "rolled-back", rolled
    assert store.read(spec.path).value["password"] == seeded
    assert _login(airflow_api.url, seeded) == 201 and _login(airflow_api.url, staged) == 401


def test_a_staged_password_the_target_refuses_to_take_again_is_settled_by_reading_back(
    store, airflow_api, monkeypatch, tmp_path, bot_password_restored
):
    """The admin login stops working while a password is staged: the next run cannot apply it
    again, so it reads back which password Airflow holds instead of staying stuck."""
    config, spec = _password_taken_over(store, airflow_api.url, airflow_api.bot[1], retries=0)

    def engine(name: str) -> Engine:
        return Engine.from_config(config, store, Audit(tmp_path / name))

    # Staged, never applied (a crash just before apply): Airflow still holds the seeded one.
    monkeypatch.setenv("ROTATOR_FAULT", "before:apply:raise")
    from rotator.faults import InjectedFault

    with pytest.raises(InjectedFault):
        engine("a.jsonl").rotate_one(spec, force=True)
    monkeypatch.delenv("ROTATOR_FAULT")
    register_secret(store.read(spec.path, "pending").value["password"])
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "Wrong-admin-password-123")
    dropped = engine("b.jsonl").rotate_one(spec)
    assert dropped.result == "failed" and "still holds the current one" in dropped.error
    assert "rotation" not in (store.read_journal(spec.name) or {})
    assert _login(airflow_api.url, store.read(spec.path).value["password"]) == 201

    # Applied, then Airflow went away before the proof; then the admin login broke.
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", airflow_api.admin[1])
    monkeypatch.setenv("ROTATOR_FAULT", "after:apply:raise")
    with pytest.raises(InjectedFault):
        engine("c.jsonl").rotate_one(spec, force=True)
    monkeypatch.delenv("ROTATOR_FAULT")
    staged = store.read(spec.path, "pending").value["password"]
    register_secret(staged)
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "Wrong-admin-password-123")
    settled = engine("d.jsonl").rotate_one(spec)
    assert settled.result == "rotated", settled
    assert store.read(spec.path).value["password"] == staged
    assert _login(airflow_api.url, staged) == 201
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", airflow_api.admin[1])  # for the teardown
