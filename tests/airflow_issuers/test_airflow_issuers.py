"""The Airflow issuers against a real Airflow 3.3 API server with the FAB auth manager."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests

from rotator.errors import ConfigError, TargetAuthError
from rotator.issuers import Issuer
from rotator.issuers.airflow import (
    AirflowPasswordIssuer,
    AirflowTokenIssuer,
    check_password,
    generate_password,
)
from rotator.spec import AirflowSettings, CredentialSpec
from tests.fixtures.leaks import register_secret

pytestmark = pytest.mark.airflow

PASSWORD_SPEC = CredentialSpec(
    "teamcity-bot-password", "airflow-password", user="teamcity-bot", conn_id="airflow_teamcity_bot"
)
TOKEN_SPEC = CredentialSpec(
    "teamcity-airflow-token", "airflow-token", login_from="teamcity-bot-password"
)


@pytest.fixture
def settings(airflow_api, monkeypatch):
    for key, value in airflow_api.env.items():
        monkeypatch.setenv(key, value)
    return AirflowSettings(url=airflow_api.url, timeout=10, retries=1)


def login(url: str, user: str, password: str) -> int:
    return requests.post(
        f"{url}/auth/token", json={"username": user, "password": password}, timeout=10
    ).status_code


def test_issuers_implement_the_protocol(settings):
    assert isinstance(AirflowPasswordIssuer(settings), Issuer)
    assert isinstance(AirflowTokenIssuer(settings, lambda spec: ("u", "p")), Issuer)


def test_password_rotation_changes_the_login(airflow_api, settings, caplog):
    caplog.set_level(logging.DEBUG)
    issuer = AirflowPasswordIssuer(settings)
    old = airflow_api.bot[1]
    secret = issuer.prepare(PASSWORD_SPEC, "r1")
    new = secret.value["password"]
    register_secret(new)
    assert login(airflow_api.url, "teamcity-bot", new) == 401, "prepare must not touch Airflow"
    issuer.apply(PASSWORD_SPEC, secret.value)
    issuer.verify(PASSWORD_SPEC, secret.value)
    assert login(airflow_api.url, "teamcity-bot", new) == 201
    assert login(airflow_api.url, "teamcity-bot", old) == 401
    assert secret.value == {
        "conn_type": "http",
        "host": airflow_api.url,
        "login": "teamcity-bot",
        "password": new,
    }
    assert new not in caplog.text and new not in repr(secret)
    issuer.restore(PASSWORD_SPEC, {**secret.value, "password": old})  # leave the account as found
    assert login(airflow_api.url, "teamcity-bot", old) == 201


def test_wrong_password_fails_verification(settings):
    with pytest.raises(TargetAuthError) as err:
        AirflowPasswordIssuer(settings).verify(
            PASSWORD_SPEC, {"login": "teamcity-bot", "password": "Wrong-pass-1234567"}
        )
    assert "Wrong-pass-1234567" not in str(err.value)


@pytest.mark.parametrize("weak", ["", "short1A", "alllowercaseletters", "ALLUPPER1234567890"])
def test_weak_passwords_are_refused_before_any_request(settings, weak, airflow_api):
    issuer = AirflowPasswordIssuer(settings)
    with pytest.raises(ConfigError):
        issuer.apply(PASSWORD_SPEC, {"login": "teamcity-bot", "password": weak})
    assert login(airflow_api.url, "teamcity-bot", airflow_api.bot[1]) == 201


def test_generated_passwords_are_strong_and_distinct():
    seen = {generate_password() for _ in range(50)}
    assert len(seen) == 50 and all(check_password(p, raise_error=False) for p in seen)


def test_wrong_admin_credentials_name_the_variable(settings, monkeypatch):
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "Not-the-admin-pw-123")
    with pytest.raises(TargetAuthError) as err:
        AirflowPasswordIssuer(settings).apply(
            PASSWORD_SPEC, {"login": "teamcity-bot", "password": generate_password()}
        )
    assert "$AIRFLOW_ADMIN_USER" in str(err.value) and "Not-the-admin-pw-123" not in str(err.value)


def test_missing_admin_credentials_are_bad_input(settings, monkeypatch):
    monkeypatch.delenv("AIRFLOW_ADMIN_PASSWORD")
    with pytest.raises(ConfigError, match="AIRFLOW_ADMIN_PASSWORD"):
        AirflowPasswordIssuer(settings).apply(
            PASSWORD_SPEC, {"login": "teamcity-bot", "password": generate_password()}
        )


def test_token_issuer_mints_a_working_jwt_with_its_expiry(airflow_api, settings):
    issuer = AirflowTokenIssuer(settings, lambda spec: airflow_api.bot)
    secret = issuer.mint(TOKEN_SPEC, "r1")
    token = secret.value["password"]
    register_secret(token)
    assert secret.value["login"] == "teamcity-bot" and secret.value["host"] == airflow_api.url
    assert secret.expires is not None
    lifetime = secret.expires - secret.issued
    assert (
        timedelta(hours=23) < lifetime <= timedelta(hours=24)
    )  # Airflow's default jwt_expiration_time
    assert abs(secret.issued - datetime.now(UTC)) < timedelta(minutes=5)
    issuer.verify(TOKEN_SPEC, secret.value)
    dags = requests.get(
        f"{airflow_api.url}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert dags.status_code == 200


def test_a_bad_token_fails_verification(settings):
    with pytest.raises(TargetAuthError):
        AirflowTokenIssuer(settings, lambda spec: ("x", "y")).verify(
            TOKEN_SPEC, {"password": "not.a.jwt"}
        )


def test_a_jwt_minted_before_a_password_change_keeps_working(airflow_api, settings):
    """An Airflow fact the design relies on (and warns about): rotating a password does not cut
    off tokens minted with the old one; they last until their own expiry."""
    old_token = AirflowTokenIssuer(settings, lambda spec: airflow_api.bot).mint(TOKEN_SPEC, "r1")
    register_secret(old_token.value["password"])
    issuer = AirflowPasswordIssuer(settings)
    secret = issuer.prepare(PASSWORD_SPEC, "r2")
    register_secret(secret.value["password"])
    issuer.apply(PASSWORD_SPEC, secret.value)
    try:
        AirflowTokenIssuer(settings, lambda spec: airflow_api.bot).verify(
            TOKEN_SPEC, old_token.value
        )
    finally:
        issuer.restore(PASSWORD_SPEC, {**secret.value, "password": airflow_api.bot[1]})
