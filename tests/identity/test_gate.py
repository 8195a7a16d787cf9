"""One decision end to end in-process: 200/401/403/409/503, the run budget per token, and the
audit event and metric each decision leaves (naming the build, never holding the token)."""

from __future__ import annotations

import io
import json

from rotator.audit import Audit
from rotator.identity.gate import Gate
from rotator.identity.jwks import JwksCache
from rotator.identity.verify import Verifier
from tests.identity.conftest import Clock, Jwks, settings
from tests.identity.tokens import claims, sign

RULE = {"build_type_external_id": "DataPipelines_Publish", "dags": ["report"], "max_runs": 2}


def gate(key, jwks=None, clock=None, allow=(RULE,)):
    s = settings(allow=list(allow))
    cache = JwksCache(s.jwks_url, fetch=jwks or Jwks(key), clock=clock or Clock())
    stream, metrics = io.StringIO(), []
    g = Gate(
        s,
        verifier=Verifier(s, cache),
        audit=Audit(stream=stream),
        metric=lambda name, tags: metrics.append((name, dict(tags))),
    )
    return g, stream, metrics


def test_statuses(key):
    g, _, _ = gate(key)
    token = sign(key, claims())
    assert g.decide(token, "report").status == 200
    assert g.decide(token, "report").status == 200
    assert g.decide(token, "report").status == 409  # max_runs = 2
    assert g.decide(sign(key, claims()), "report").status == 200  # a new token, a new budget
    assert g.decide(sign(key, claims(build_type_external_id="X")), "report").status == 403
    assert g.decide(sign(key, claims()), "other").status == 403
    assert g.decide(sign(key, claims()), "report", ["k"]).status == 403
    assert g.decide(sign(key, claims(aud="x")), "report").status == 401
    assert g.decide(None, "report").status == 401


def test_a_denied_request_spends_no_budget_and_a_release_gives_one_back(key):
    g, _, _ = gate(key)
    token = sign(key, claims())
    assert g.decide(token, "other").status == 403
    first = g.decide(token, "report")
    g.release(first)  # Airflow refused the run
    assert [g.decide(token, "report").status for _ in range(3)] == [200, 200, 409]


def test_fail_closed_is_a_503(key):
    jwks, clock = Jwks(key), Clock()
    g, _, _ = gate(key, jwks, clock)
    assert g.decide(sign(key, claims()), "report").allowed
    jwks.down, clock.now = True, clock.now + 301
    decision = g.decide(sign(key, claims()), "report")
    assert decision.status == 503 and "could not be fetched" in decision.reason


def test_every_decision_is_audited_and_counted_without_the_token(key):
    g, stream, metrics = gate(key)
    token = sign(key, claims(build_id=77))
    allowed = g.decide(token, "report")
    g.record(allowed, "report", run_id="manual__1")
    denied = g.decide(token, "other")
    g.record(denied, "other")
    g.record(g.decide(token[:-4] + "AAAA", "report"), "report")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["outcome"], e["status"]) for e in events] == [
        ("allowed", 200),
        ("denied", 403),
        ("denied", 401),
    ]
    assert events[0]["rule"] == "identity.allow[0]" and events[0]["run_id"] == "manual__1"
    assert events[0]["build_id"] == 77 and events[0]["credential"] == "identity"
    assert "DAG 'other'" in events[1]["reason"] and "signature" in events[2]["reason"]
    assert "build_id" not in events[2]  # an unverified token's claims are not repeated
    assert token not in stream.getvalue() and token.split(".")[2] not in stream.getvalue()
    assert [m[0] for m in metrics] == [
        "rotator.identity.allowed",
        "rotator.identity.denied",
        "rotator.identity.denied",
    ]
    assert metrics[2][1] == {"status": "401", "dag_id": "report"}
    assert allowed.triggering_user == "teamcity:DataPipelines_Publish#77"
