"""The TeamCity token issuer against the simulator as a real server on loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from rotator.errors import ConfigError, TargetAuthError, TargetDenied, TargetNotFound
from rotator.issuers import Issuer, name_prefix
from rotator.issuers.teamcity import ForeignCredential, TeamCityTokenIssuer
from tests.fixtures.leaks import register_secret


def test_implements_the_issuer_protocol(tc_settings):
    assert isinstance(TeamCityTokenIssuer(tc_settings), Issuer)


def test_mint_verify_revoke(teamcity_sim, tc_settings, token_spec):
    issuer = TeamCityTokenIssuer(tc_settings)
    secret = issuer.mint(token_spec, "20260101T000000-0000a1")
    register_secret(secret.value["password"])
    assert secret.target_name == "rotator-airflow-teamcity-token-20260101T000000-0000a1"
    assert secret.value["conn_type"] == "http"
    assert secret.value["host"] == teamcity_sim.url
    assert secret.value["login"] == "airflow-bot"
    assert secret.expires is not None
    assert timedelta(days=9, hours=23) < secret.expires - datetime.now(UTC) <= timedelta(days=10)
    stored = teamcity_sim.state.find_user("airflow-bot").tokens[secret.target_name]
    assert stored.restrictions == [("DataPipelines", "view_project")]

    issuer.verify(token_spec, secret.value)
    issuer.revoke(token_spec, secret.target_name)
    with pytest.raises(TargetAuthError):
        issuer.verify(token_spec, secret.value)
    issuer.revoke(token_spec, secret.target_name)  # already gone: not an error


def test_list_issued_shows_only_rotator_tokens_of_this_credential(
    teamcity_sim, tc_settings, token_spec
):
    issuer = TeamCityTokenIssuer(tc_settings)
    teamcity_sim.add_token("airflow-bot", "hand-made", "hand-made-token-value-1")
    minted = [
        issuer.mint(token_spec, rid) for rid in ("20260101T000000-0000a1", "20260101T000000-0000a2")
    ]
    for m in minted:
        register_secret(m.value["password"])
    listed = issuer.list_issued(token_spec)
    assert sorted(i.name for i in listed) == [m.target_name for m in minted]
    assert all(i.name.startswith(name_prefix(token_spec)) for i in listed)
    assert all(i.expires is not None and i.created is not None for i in listed)


def test_never_revokes_a_token_it_did_not_mint(teamcity_sim, tc_settings, token_spec):
    teamcity_sim.add_token("airflow-bot", "hand-made", "hand-made-token-value-1")
    issuer = TeamCityTokenIssuer(tc_settings)
    with pytest.raises(ForeignCredential):
        issuer.revoke(token_spec, "hand-made")
    with pytest.raises(ForeignCredential):
        issuer.revoke(token_spec, "bootstrap-admin")
    assert "hand-made" in teamcity_sim.state.find_user("airflow-bot").tokens
    assert not any(r.method == "DELETE" for r in teamcity_sim.requests)


def test_an_expired_token_fails_verification(teamcity_sim, tc_settings, token_spec):
    issuer = TeamCityTokenIssuer(tc_settings)
    secret = issuer.mint(token_spec, "20260101T000000-0000a1")
    register_secret(secret.value["password"])
    teamcity_sim.advance_clock(timedelta(days=11).total_seconds())
    with pytest.raises(TargetAuthError):
        issuer.verify(token_spec, secret.value)


def test_missing_bootstrap_token_is_a_config_error_naming_the_variable(
    tc_settings, token_spec, monkeypatch
):
    monkeypatch.delenv("TEAMCITY_TOKEN")
    with pytest.raises(ConfigError) as err:
        TeamCityTokenIssuer(tc_settings).mint(token_spec, "20260101T000000-0000a1")
    assert "$TEAMCITY_TOKEN" in str(err.value)


def test_revoked_bootstrap_token_gives_an_actionable_error(
    teamcity_sim, tc_settings, token_spec, teamcity_admin_token
):
    del teamcity_sim.state.find_user("admin").tokens["bootstrap-admin"]
    with pytest.raises(TargetAuthError) as err:
        TeamCityTokenIssuer(tc_settings).mint(token_spec, "20260101T000000-0000a1")
    message = str(err.value)
    assert "$TEAMCITY_TOKEN" in message and "revoked" in message
    assert teamcity_admin_token not in message


def test_permission_the_user_lacks_is_denied_and_nothing_is_minted(
    teamcity_sim, tc_settings, token_spec
):
    from dataclasses import replace

    greedy = replace(
        token_spec, permissions=({"project": "DataPipelines", "permission": "edit_project"},)
    )
    with pytest.raises(TargetDenied):
        TeamCityTokenIssuer(tc_settings).mint(greedy, "20260101T000000-0000a1")
    assert teamcity_sim.state.find_user("airflow-bot").tokens == {}


def test_unknown_project_in_restrictions(tc_settings, token_spec):
    from dataclasses import replace

    bad = replace(token_spec, permissions=({"project": "Nope", "permission": "view_project"},))
    with pytest.raises(TargetNotFound) as err:
        TeamCityTokenIssuer(tc_settings).mint(bad, "20260101T000000-0000a1")
    assert "Project not found for external id [Nope]" in str(err.value)


def test_no_token_value_in_logs_or_errors(
    teamcity_sim, tc_settings, token_spec, caplog, teamcity_admin_token
):
    caplog.set_level(logging.DEBUG)
    issuer = TeamCityTokenIssuer(tc_settings)
    secret = issuer.mint(token_spec, "20260101T000000-0000a1")
    value = secret.value["password"]
    register_secret(value)
    assert value not in repr(secret)
    teamcity_sim.faults.fail_next(10, status=500)
    with pytest.raises(Exception) as err:
        issuer.verify(token_spec, secret.value)
    for text in (str(err.value), caplog.text, repr(issuer), repr(issuer.client)):
        assert value not in text and teamcity_admin_token not in text
