"""Token verification (PyJWT behind pinned issuer, audience and algorithms) and the JWKS
cache's rules: one refetch per interval for an unknown kid, cached keys until their TTL, then
fail closed."""

from __future__ import annotations

import time

import pytest

from rotator.identity.jwks import JwksCache
from rotator.identity.verify import Rejected, Unverifiable, Verifier
from tests.identity.conftest import Clock, Jwks, settings
from tests.identity.tokens import (
    claims,
    hs256_with_public_key,
    new_key,
    sign,
    tampered,
    unsigned,
)


def verifier(jwks: Jwks, clock: Clock | None = None, **identity):
    s = settings(**identity)
    cache = JwksCache(
        s.jwks_url,
        ttl=s.jwks_ttl.total_seconds(),
        refetch_interval=s.jwks_refetch.total_seconds(),
        fetch=jwks,
        clock=clock or Clock(),
    )
    return Verifier(s, cache)


def test_a_good_token_verifies_and_yields_its_claims(key):
    got = verifier(Jwks(key)).verify(sign(key, claims(build_id=7)))
    assert got["build_id"] == 7 and got["build_type_external_id"] == "DataPipelines_Publish"


def test_an_audience_list_holding_ours_verifies(key):
    token = sign(key, claims(aud=["sts.amazonaws.com", "airflow-trigger"]))
    assert verifier(Jwks(key)).verify(token)["aud"][1] == "airflow-trigger"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (dict(aud="airflow-trigger-other"), "audience"),
        (dict(aud=["airflow"]), "audience"),
        (dict(exp=int(time.time()) - 120), "expired"),
        (dict(nbf=int(time.time()) + 600, iat=int(time.time()) + 600), "not valid yet"),
        (dict(iss="https://other.example.com/app/oidc-jwt"), "issuer"),
        (dict(iss="https://teamcity.example.com/app/oidc-jwt/"), "issuer"),
        (dict(jti=None), "'jti'"),
        (dict(sub=None), "'sub'"),
        (dict(iat=int(time.time()) - 3 * 3600, exp=int(time.time()) + 600), "max_age"),
    ],
)
def test_claims_that_do_not_hold_are_401s(key, payload, reason):
    with pytest.raises(Rejected) as caught:
        verifier(Jwks(key)).verify(sign(key, claims(**payload)))
    assert reason in caught.value.reason


def test_leeway_accepts_a_little_skew_and_no_more(key):
    now = int(time.time())
    v = verifier(Jwks(key), leeway="30s")
    assert v.verify(sign(key, claims(nbf=now + 20, iat=now + 20)))
    with pytest.raises(Rejected, match="not valid yet"):
        v.verify(sign(key, claims(nbf=now + 60, iat=now + 60)))


def test_forgeries_are_401s(key, other_key):
    v = verifier(Jwks(key))
    good = sign(key, claims())
    cases = {
        "unknown kid": sign(other_key, claims()),
        "other key, our kid": sign(type(key)(other_key.private, key.kid), claims()),
        "tampered": tampered(good),
        "alg none": unsigned(claims(), key.kid),
        "hs256 keyed with the public key": hs256_with_public_key(key, claims()),
        "not a jwt": "not-a-token",
        "two parts": good.rsplit(".", 1)[0],
    }
    reasons = {}
    for name, token in cases.items():
        with pytest.raises(Rejected) as caught:
            v.verify(token)
        reasons[name] = caught.value.reason
    assert "not in the issuer's JWKS" in reasons["unknown kid"]
    assert "signature" in reasons["other key, our kid"]
    assert "signature" in reasons["tampered"]
    assert "algorithm not allowed" in reasons["alg none"]
    assert "algorithm not allowed" in reasons["hs256 keyed with the public key"]
    assert all(good not in r for r in reasons.values())


def test_an_allowed_algorithm_the_key_is_not_published_for_is_refused(key):
    v = verifier(Jwks(key), algorithms=["RS256", "PS256"])
    with pytest.raises(Rejected, match="algorithm"):
        v.verify(sign(key, claims(), alg="PS256"))


def test_another_issuers_token_costs_no_jwks_fetch(key):
    jwks = Jwks(key)
    with pytest.raises(Rejected, match="issuer"):
        verifier(jwks).verify(sign(key, claims(iss="https://evil.example.com/app/oidc-jwt")))
    assert jwks.calls == 0


def test_an_unknown_kid_refetches_once_per_interval(key):
    jwks, clock = Jwks(key), Clock()
    v = verifier(jwks, clock, jwks_refetch="30s")
    v.verify(sign(key, claims()))
    assert jwks.calls == 1
    rotated = new_key()
    fresh = sign(rotated, claims())
    with pytest.raises(Rejected, match="not in the issuer's JWKS"):
        v.verify(fresh)  # fetched 0 s ago: no refetch yet
    assert jwks.calls == 1
    clock.now += 30
    with pytest.raises(Rejected, match="not in the issuer's JWKS"):
        v.verify(fresh)  # one refetch: the issuer does not list it yet
    assert jwks.calls == 2
    jwks.keys.append(rotated)
    for _ in range(5):
        with pytest.raises(Rejected):
            v.verify(fresh)  # within the interval: no more fetches
    assert jwks.calls == 2
    clock.now += 30
    assert v.verify(fresh) and v.verify(sign(key, claims()))  # new and old both verify
    assert jwks.calls == 3


def test_cached_keys_serve_while_the_endpoint_is_down_then_fail_closed(key):
    jwks, clock = Jwks(key), Clock()
    v = verifier(jwks, clock, jwks_ttl="5m", jwks_refetch="30s")
    v.verify(sign(key, claims()))
    jwks.down = True
    clock.now += 299
    assert v.verify(sign(key, claims()))  # fresh enough: served from the cache
    clock.now += 1
    with pytest.raises(Unverifiable, match="stale"):
        v.verify(sign(key, claims()))
    calls = jwks.calls
    with pytest.raises(Unverifiable):
        v.verify(sign(key, claims()))  # the next attempt waits for the refetch interval
    assert jwks.calls == calls
    jwks.down = False
    clock.now += 30
    assert v.verify(sign(key, claims()))


def test_a_purged_key_stops_verifying_at_the_next_fetch(key, other_key):
    jwks, clock = Jwks(key, other_key), Clock()
    v = verifier(jwks, clock, jwks_ttl="5m")
    old = sign(other_key, claims())
    assert v.verify(old)
    jwks.keys = [key]  # the issuer purged other_key
    clock.now += 300
    with pytest.raises(Rejected, match="not in the issuer's JWKS"):
        v.verify(old)
