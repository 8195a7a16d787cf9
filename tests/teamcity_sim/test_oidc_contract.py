"""The simulated OIDC plugin against the contract's "OIDC identity for builds" section, over
raw HTTP; tokens are checked with PyJWT against the JWKS the simulator publishes.

Keys are 2048 bits here (``sim.oidc.configure(key_size=2048)``) except in the test of the
default, to keep key generation out of the suite's time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import jwt
import pytest
import requests

from tests.fixtures.leaks import register_secret

BT = "DataPipelines_Publish"
AUD = "airflow-trigger"


class Token(str):
    def __repr__(self) -> str:
        return "Token(...)"


@pytest.fixture
def sim(teamcity_sim):
    teamcity_sim.oidc.configure(key_size=2048)
    teamcity_sim.builds.hold(BT)
    return teamcity_sim


def get(sim, path, **kw):
    return requests.get(sim.url + path, timeout=5, **kw)


def post(sim, path, **kw):
    return requests.post(sim.url + path, timeout=5, **kw)


def verify(sim, token, audience):
    keys = get(sim, "/app/oidc-jwt/.well-known/jwks").json()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys["keys"] if k["kid"] == kid)
    return jwt.decode(
        token, jwt.PyJWK(jwk), algorithms=["RS256"], audience=audience, issuer=sim.oidc.issuer
    )


def started_build(sim, **features):
    sim.oidc.features(BT, **features)
    build = sim.builds.queue(BT, user="teamcity-bot")
    sim.builds.start(build.id)
    return build


def build_auth(sim, build_id):
    user = sim.oidc.parameter(build_id, "teamcity.auth.userId")
    password = sim.oidc.parameter(build_id, "teamcity.auth.password")
    register_secret(password)
    return (user, password)


def issue(sim, build_id, *aud, auth=None):
    response = get(
        sim,
        "/app/oidc-jwt/issue",
        params=[("aud", a) for a in aud],
        auth=auth if auth is not None else build_auth(sim, build_id),
    )
    if response.status_code == 200:
        register_secret(response.text)
    return response


def in_params_token(sim, build_id):
    token = Token(sim.oidc.parameter(build_id, "env.TEAMCITY_BUILD_OIDC_TOKEN"))
    register_secret(token)
    return token


def test_well_known_is_public_and_the_issuer_is_https_unless_overridden(sim):
    # Contract: issuer https://<root url>/app/oidc-jwt (http rewritten), public well-known.
    config = get(sim, "/app/oidc-jwt/.well-known/openid-configuration")
    assert config.status_code == 200 and config.headers["Content-Type"].startswith(
        "application/json"
    )
    body = config.json()
    https = sim.url.replace("http://", "https://") + "/app/oidc-jwt"
    assert body["issuer"] == https and body["jwks_uri"] == https + "/.well-known/jwks"
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"sub", "build_type_external_id", "branch_is_default"} <= set(body["claims_supported"])
    override = sim.url + "/app/oidc-jwt"
    sim.oidc.configure(issuer_url=override)
    body = get(sim, "/app/oidc-jwt/.well-known/openid-configuration").json()
    assert body["issuer"] == override and body["jwks_uri"] == override + "/.well-known/jwks"


def test_the_default_key_is_rsa_3072_with_an_rfc7638_kid(teamcity_sim):
    keys = get(teamcity_sim, "/app/oidc-jwt/.well-known/jwks").json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert (key["kty"], key["alg"]) == ("RSA", "RS256")
    n = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
    assert len(n) * 8 == 3072
    canonical = json.dumps({"e": key["e"], "kty": "RSA", "n": key["n"]}, separators=(",", ":"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert key["kid"] == digest.decode()


def test_in_params_token_at_build_start(sim):
    # Contract: oidcTokenInParams puts the token in env.TEAMCITY_BUILD_OIDC_TOKEN at start;
    # lifetime = build timeout + 10 min; default aud = the issuer; header {kid, alg} only.
    sim.oidc.features(BT, in_params=True)
    build = sim.builds.queue(BT, user="teamcity-bot")
    assert sim.oidc.parameter(build.id, "env.TEAMCITY_BUILD_OIDC_TOKEN") is None  # queued
    sim.builds.start(build.id)
    token = in_params_token(sim, build.id)
    assert set(jwt.get_unverified_header(token)) == {"kid", "alg"}
    claims = verify(sim, token, sim.oidc.issuer)
    assert claims["aud"] == sim.oidc.issuer
    assert claims["exp"] - claims["iat"] == 3600 + 600 and claims["nbf"] == claims["iat"]
    assert str(uuid.UUID(claims["jti"])) == claims["jti"]
    assert claims["sub"] == "_Root:project1:bt1"
    assert (claims["project_id"], claims["build_type_id"]) == ("project1", "bt1")
    assert (
        claims["build_type_external_id"] == BT and claims["project_external_id"] == "DataPipelines"
    )
    assert (
        claims["build_id"] == build.id and claims["build_number"] == sim.builds.get(build.id).number
    )
    assert claims["triggered_by_user_name"] == "teamcity-bot" and claims["is_personal"] is False
    assert claims["branch_is_default"] is True and claims["agentless"] is False
    assert get(sim, "/app/oidc-jwt/.well-known/jwks").text.count(token) == 0


def test_in_params_audiences_parameter_and_lifetime_are_settings(sim):
    build = started_build(
        sim, in_params=True, audiences=(AUD, "b"), build_param="env.ID_TOKEN", lifetime_seconds=900
    )
    token = Token(sim.oidc.parameter(build.id, "env.ID_TOKEN"))
    register_secret(token)
    claims = verify(sim, token, AUD)
    assert claims["aud"] == [AUD, "b"] and claims["exp"] - claims["iat"] == 900


def test_on_demand_tokens_for_the_running_build_only(sim):
    # Contract: GET /app/oidc-jwt/issue?aud= with the build's own credentials; each aud must
    # be in the feature's audiences (else 400); lifetime 300 s; the build must be running.
    build = started_build(sim, on_demand_audiences=(AUD, "sts.amazonaws.com"))
    one = issue(sim, build.id, AUD)
    assert one.status_code == 200 and one.headers["Content-Type"].startswith("text/plain")
    claims = verify(sim, one.text, AUD)
    assert claims["aud"] == AUD and claims["exp"] - claims["iat"] == 300
    two = issue(sim, build.id, AUD, "sts.amazonaws.com")
    assert verify(sim, two.text, AUD)["aud"] == [AUD, "sts.amazonaws.com"]
    refused = issue(sim, build.id, AUD, "evil")
    assert refused.status_code == 400 and "evil" in refused.text
    assert issue(sim, build.id).status_code == 400  # aud is a required parameter
    auth = build_auth(sim, build.id)
    assert issue(sim, build.id, AUD, auth=(auth[0], "wrong")).status_code == 401
    assert issue(sim, build.id, AUD, auth=("admin", "x")).status_code == 401
    assert get(sim, "/app/oidc-jwt/issue", params={"aud": AUD}).status_code == 401
    sim.builds.finish(build.id)
    gone = issue(sim, build.id, AUD, auth=auth)
    assert gone.status_code == 404 and "Running build" in gone.text


def test_on_demand_needs_the_feature(sim):
    build = started_build(sim, in_params=True)
    response = issue(sim, build.id, AUD)
    assert response.status_code == 403 and "on demand" in response.text


def test_personal_builds_carry_the_user_prefix_in_every_sub_part(sim, teamcity_admin_token):
    sim.oidc.features(BT, in_params=True)
    queued = post(
        sim,
        "/app/rest/buildQueue",
        json={"buildType": {"id": BT}, "personal": True},
        headers={"Authorization": f"Bearer {teamcity_admin_token}", "Accept": "application/json"},
    )
    assert queued.status_code == 200, queued.text
    sim.builds.start(queued.json()["id"])
    claims = verify(sim, in_params_token(sim, queued.json()["id"]), sim.oidc.issuer)
    admin_id = sim.state.find_user("admin").id
    assert claims["is_personal"] is True
    assert claims["sub"] == f"user{admin_id}__Root:user{admin_id}_project1:user{admin_id}_bt1"


def test_rotation_keeps_old_keys_while_their_tokens_live_and_purge_drops_them(
    sim, teamcity_admin_token
):
    # Contract: rotate needs "Change server settings"; old public keys stay until the tokens
    # they signed expire; purge drops them at once; ?currentOnly=true: the current key only.
    admin = {"Authorization": f"Bearer {teamcity_admin_token}"}
    build = started_build(sim, on_demand_audiences=(AUD,))
    old = issue(sim, build.id, AUD).text
    assert post(sim, "/app/oidc-jwt/builtin-rsa/rotate").status_code == 401
    bot = "bot-" + uuid.uuid4().hex
    register_secret(bot)
    sim.add_token("airflow-bot", "t", bot)
    refused = post(
        sim, "/app/oidc-jwt/builtin-rsa/rotate", headers={"Authorization": f"Bearer {bot}"}
    )
    assert refused.status_code == 403
    assert post(sim, "/app/oidc-jwt/builtin-rsa/rotate", headers=admin).status_code == 200
    new = issue(sim, build.id, AUD).text
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert verify(sim, old, AUD) and verify(sim, new, AUD)
    current = get(sim, "/app/oidc-jwt/.well-known/jwks", params={"currentOnly": "true"}).json()
    assert [k["kid"] for k in current["keys"]] == [jwt.get_unverified_header(new)["kid"]]
    sim.advance_clock(301)  # the old key's last token expired: it leaves the JWKS
    assert len(get(sim, "/app/oidc-jwt/.well-known/jwks").json()["keys"]) == 1
    sim.advance_clock(-301)
    assert len(get(sim, "/app/oidc-jwt/.well-known/jwks").json()["keys"]) == 2
    assert post(sim, "/app/oidc-jwt/jwk-cache/purge", headers=admin).status_code == 200
    keys = get(sim, "/app/oidc-jwt/.well-known/jwks").json()["keys"]
    assert [k["kid"] for k in keys] == [jwt.get_unverified_header(new)["kid"]]
    with pytest.raises(StopIteration):
        verify(sim, old, AUD)


def test_wrong_methods_and_paths(sim):
    assert post(sim, "/app/oidc-jwt/.well-known/jwks").status_code == 405
    assert get(sim, "/app/oidc-jwt/builtin-rsa/rotate").status_code == 405
    assert get(sim, "/app/oidc-jwt/nothing").status_code == 404
