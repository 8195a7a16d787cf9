"""The trigger endpoint inside a real Airflow 3.3 (the session's ``airflow_stack``, Rotator's
plugin loaded from its entry point) with the TeamCity simulator as the token issuer: every
401/403/409 of the issue, Airflow's own checks, key rotation, purge, and the JWKS going down.

The policy is the stack's ``$ROTATOR_CONFIG`` file, rewritten by tests (the endpoint re-reads
it when it changes) and removed at the end of the module (tests/ops writes its own there).
"""

from __future__ import annotations

import itertools
import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator
from tests.fixtures.airflow_stack import poll
from tests.fixtures.leaks import record_output, register_output, register_secret
from tests.identity.tokens import (
    Token,
    claims,
    hs256_with_public_key,
    new_key,
    sign,
    tampered,
    unsigned,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

AUD = "airflow-trigger"
PUBLISH = "DataPipelines_Publish"
DAG_SOURCE = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

for dag_id in ("identity_report", "identity_other"):
    with DAG(dag_id, schedule=None, params={"artifact": Param("none", type="string")}):
        EmptyOperator(task_id="noop")
"""
RULES = [
    {
        "name": "publish",
        "build_type_external_id": PUBLISH,
        "branch_is_default": True,
        "dags": ["identity_report"],
        "conf_keys": ["artifact"],
    }
]
_edits = itertools.count()


class Endpoint:
    def __init__(self, stack, sim, home):
        self.stack, self.sim, self.home = stack, sim, home
        self.url = f"{stack.url}/rotator/identity/v1"
        self.config = stack.rotator_config  # $ROTATOR_CONFIG of the stack's components

    def configure(self, rules=RULES, **identity):
        table = {
            "issuer": self.sim.oidc.issuer,
            "audience": AUD,
            "jwks_refetch": "0s",
            **identity,
        }
        lines = [
            f"# edit {next(_edits)}",
            "[rotator]",
            f'audit_file = "{self.home / "audit.jsonl"}"',
        ]
        lines += ["[identity]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
        for rule in rules:
            lines += ["[[identity.allow]]"] + [f"{k} = {json.dumps(v)}" for k, v in rule.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def trigger(self, token, dag="identity_report", **body):
        response = requests.post(
            f"{self.url}/dags/{dag}/dagRuns",
            json={"logical_date": None, **body},
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
        record_output(f"POST {dag}", response.text)
        return response

    def read_back(self, token, dag, run_id):
        response = requests.get(
            f"{self.url}/dags/{dag}/dagRuns/{run_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        record_output(f"GET {dag}/{run_id}", response.text)
        return response

    def build(self, build_type=PUBLISH, branch=None, personal=False):
        """A started build of ``build_type``; its in-params token."""
        with self.sim.state.lock:
            from rotator.sim.teamcity import builds as lifecycle
            from rotator.sim.teamcity.model import Principal

            model = self.sim.state
            made = lifecycle.queue(
                model,
                model.build_types[build_type],
                Principal(model.find_user("teamcity-bot")),
                branch=branch,
                personal=personal,
            )
        self.sim.builds.start(made.id)
        token = Token(self.sim.oidc.parameter(made.id, "env.TEAMCITY_BUILD_OIDC_TOKEN"))
        register_secret(token)
        return made.id, token

    def jwks_fetches(self):
        return sum(1 for r in self.sim.requests if r.path.endswith("/.well-known/jwks"))


@pytest.fixture(scope="module")
def endpoint(airflow_stack, tmp_path_factory, teamcity_admin_token):
    home = tmp_path_factory.mktemp("identity")
    register_output(home)
    airflow_stack.write_dag("identity_dags.py", DAG_SOURCE)
    with TeamCitySimulator(admin_token=teamcity_admin_token, seed=DEMO_SEED) as sim:
        sim.oidc.configure(issuer_url=sim.url + "/app/oidc-jwt", key_size=2048)
        for build_type in (PUBLISH, "DataPipelines_Nightly"):
            sim.builds.hold(build_type)
            sim.oidc.features(
                build_type, in_params=True, audiences=(AUD,), on_demand_audiences=(AUD, "other")
            )
        ep = Endpoint(airflow_stack, sim, home)
        ep.configure()
        airflow_stack.wait_dag("identity_report")
        airflow_stack.wait_dag("identity_other")
        try:
            yield ep
        finally:
            ep.config.unlink(missing_ok=True)


def test_an_allowed_build_triggers_with_its_identity_and_reads_back_only_its_runs(endpoint):
    build_id, token = endpoint.build(branch=None)
    response = endpoint.trigger(token, conf={"artifact": "a.tar"}, note="from TeamCity")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rule"] == "identity.allow[0] (publish)"
    run = endpoint.stack.dag_run("identity_report", body["dag_run_id"])
    assert run["triggering_user_name"] == f"teamcity:{PUBLISH}#{build_id}"
    assert run["triggered_by"] == "rest_api" and run["run_type"] == "manual"
    assert run["conf"] == {"artifact": "a.tar"} and run["note"] == "from TeamCity"
    mine = endpoint.read_back(token, "identity_report", body["dag_run_id"])
    assert mine.status_code == 200 and mine.json()["dag_run_id"] == body["dag_run_id"]
    _, other = endpoint.build()
    assert endpoint.read_back(other, "identity_report", body["dag_run_id"]).status_code == 404
    assert endpoint.read_back(other, "identity_report", "no-such-run").status_code == 404


def test_an_on_demand_token_works_and_each_decision_is_audited_and_counted(endpoint):
    build_id, _ = endpoint.build()
    auth = (
        endpoint.sim.oidc.parameter(build_id, "teamcity.auth.userId"),
        endpoint.sim.oidc.parameter(build_id, "teamcity.auth.password"),
    )
    register_secret(auth[1])
    issued = requests.get(
        f"{endpoint.sim.url}/app/oidc-jwt/issue", params={"aud": AUD}, auth=auth, timeout=5
    )
    token = Token(issued.text)
    register_secret(token)
    assert endpoint.trigger(token).status_code == 200
    assert endpoint.trigger(token).status_code == 409
    events = [
        json.loads(line)
        for line in (endpoint.home / "audit.jsonl").read_text().splitlines()
        if f'"build_id": {build_id}' in line
    ]
    assert [(e["outcome"], e["status"]) for e in events] == [("allowed", 200), ("denied", 409)]
    assert events[0]["sub"] == "_Root:project1:bt1" and events[0]["run_id"]
    assert token not in (endpoint.home / "audit.jsonl").read_text()
    poll(
        "the rotator.identity.allowed metric",
        lambda: endpoint.stack.statsd.matching("rotator.identity.allowed"),
        timeout=30,
    )


def _forged(endpoint):
    """Tokens that must all be 401s, by name."""
    sim = endpoint.sim
    build_id, _ = endpoint.build()
    jwk = sim.oidc.mint(build_id, [AUD])  # a good one, to tamper with
    register_secret(jwk)
    public = jwt.PyJWK(
        next(
            k
            for k in requests.get(f"{sim.url}/app/oidc-jwt/.well-known/jwks", timeout=5).json()[
                "keys"
            ]
        )
    ).key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    stranger = new_key()
    ours = claims(iss=sim.oidc.issuer, aud=AUD, build_type_external_id=PUBLISH, build_id=build_id)
    current_kid = jwt.get_unverified_header(jwk)["kid"]
    tokens = {
        "wrong audience": sim.oidc.mint(build_id, ["other"]),
        "unknown kid": sign(stranger, ours),
        "tampered": tampered(jwk),
        "alg none": unsigned(ours, current_kid),
    }
    tokens["hs256 keyed with the public key"] = _hs256(public, current_kid, ours)
    sim.advance_clock(-3600)
    tokens["expired"] = sim.oidc.mint(build_id, [AUD], lifetime=60)
    sim.advance_clock(7200)
    tokens["not yet valid"] = sim.oidc.mint(build_id, [AUD])
    sim.advance_clock(-3600)
    sim.oidc.configure(issuer_url=sim.url + "/other")
    tokens["other issuer"] = sim.oidc.mint(build_id, [AUD])
    sim.oidc.configure(issuer_url=sim.url + "/app/oidc-jwt")
    for token in tokens.values():
        register_secret(token)
    return tokens


def _hs256(public_pem, kid, payload):
    from tests.identity.tokens import Key

    class PemKey(Key):
        @property
        def public_pem(self):
            return public_pem

    return hs256_with_public_key(PemKey(None, kid), payload)


def test_tokens_that_prove_nothing_are_401s(endpoint):
    for name, token in _forged(endpoint).items():
        response = endpoint.trigger(token)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert token not in response.text
    assert endpoint.trigger(None).status_code == 401
    airflow_jwt = endpoint.stack.api("GET", "/api/v2/version").request.headers["Authorization"]
    assert endpoint.trigger(airflow_jwt.split(" ", 1)[1]).status_code == 401


def test_real_builds_the_policy_does_not_allow_are_403s(endpoint):
    cases = {
        "build type": (endpoint.build("DataPipelines_Nightly")[1], "identity_report", {}),
        "personal": (endpoint.build(personal=True)[1], "identity_report", {}),
        "dag": (endpoint.build()[1], "identity_other", {}),
        "conf": (endpoint.build()[1], "identity_report", {"target": "prod"}),
    }
    for name, (token, dag, conf) in cases.items():
        response = endpoint.trigger(token, dag=dag, conf=conf)
        assert response.status_code == 403, (name, response.text)
    rules = [{**RULES[0], "branch_is_default": False, "branch_name": "main"}]
    endpoint.configure(rules)
    try:
        _, feature = endpoint.build(branch="feature/x")
        assert endpoint.trigger(feature).status_code == 403
        _, main = endpoint.build(branch="main")
        assert endpoint.trigger(main).status_code == 200
    finally:
        endpoint.configure()


def test_airflows_own_checks_apply_and_a_refused_run_spends_no_budget(endpoint):
    _, token = endpoint.build()
    endpoint.configure([{**RULES[0], "dags": ["identity_*"]}])
    try:
        missing = endpoint.trigger(token, dag="identity_missing")
        assert missing.status_code == 404 and "not found" in missing.text
        bad_param = endpoint.trigger(token, conf={"artifact": 5})
        assert bad_param.status_code == 400, bad_param.text
        assert endpoint.trigger(token, conf={"artifact": "x"}).status_code == 200
        assert endpoint.trigger(token).status_code == 409
    finally:
        endpoint.configure()


def test_key_rotation_fetches_the_new_kid_once_and_both_tokens_verify(
    endpoint, teamcity_admin_token
):
    _, old = endpoint.build()
    assert endpoint.trigger(old, dag="identity_other").status_code == 403  # verified, warm
    rotated = requests.post(
        f"{endpoint.sim.url}/app/oidc-jwt/builtin-rsa/rotate",
        headers={"Authorization": f"Bearer {teamcity_admin_token}"},
        timeout=10,
    )
    assert rotated.status_code == 200
    _, new = endpoint.build()
    before = endpoint.jwks_fetches()
    assert endpoint.trigger(new).status_code == 200
    assert endpoint.jwks_fetches() == before + 1
    assert endpoint.trigger(old).status_code == 200
    _, newer = endpoint.build()
    assert endpoint.trigger(newer).status_code == 200
    assert endpoint.jwks_fetches() == before + 1
    endpoint.sim.oidc.purge()
    endpoint.configure()  # a new cache: the next fetch sees the purge
    assert endpoint.trigger(old, dag="identity_other").status_code == 401
    assert endpoint.trigger(newer, dag="identity_other").status_code == 403


def test_jwks_down_serves_cached_keys_until_their_ttl_then_fails_closed(endpoint):
    endpoint.configure(jwks_ttl="2s")
    try:
        _, token = endpoint.build()
        assert endpoint.trigger(token, dag="identity_other").status_code == 403  # keys cached
        endpoint.sim.faults.fail_next(10_000, status=503, only="/.well-known/jwks")
        started = time.monotonic()
        served = endpoint.trigger(token, dag="identity_other").status_code
        if time.monotonic() - started < 1.5:  # still inside the TTL on a busy machine
            assert served == 403
        closed = poll(
            "the endpoint to fail closed",
            lambda: (
                (r := endpoint.trigger(token, dag="identity_other")).status_code == 503 and r.text
            ),
            timeout=20,
        )
        assert "could not be fetched" in closed  # a Response with a 503 is falsy: its text
        endpoint.sim.faults.clear()
        poll("the endpoint to recover", lambda: endpoint.trigger(token).status_code == 200, 20)
    finally:
        endpoint.sim.faults.clear()
        endpoint.configure()


@pytest.mark.parametrize("flavor", ["in-params", "on-demand"])
def test_the_build_step_triggers_with_nothing_stored(endpoint, flavor, tmp_path):
    import os
    import subprocess
    from pathlib import Path

    build_id, token = endpoint.build()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TEAMCITY"))}
    env.update(AIRFLOW_URL=endpoint.stack.url, AIRFLOW_DAG_ID="identity_report")
    env["TEAMCITY_BUILD_ID"] = str(build_id)
    if flavor == "in-params":
        env["TEAMCITY_BUILD_OIDC_TOKEN"] = token
    else:
        env.update(
            TEAMCITY_SERVER_URL=endpoint.sim.url,
            TEAMCITY_AUTH_USER_ID=endpoint.sim.oidc.parameter(build_id, "teamcity.auth.userId"),
            TEAMCITY_AUTH_PASSWORD=endpoint.sim.oidc.parameter(build_id, "teamcity.auth.password"),
        )
        register_secret(env["TEAMCITY_AUTH_PASSWORD"])
    endpoint.configure([{**RULES[0], "conf_keys": ["teamcity_build_id", "teamcity_sent_at"]}])
    script = Path(__file__).parents[2] / "ops" / "teamcity" / "trigger-airflow-dag.sh"
    try:
        done = subprocess.run(
            ["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        endpoint.configure()
    record_output(f"trigger step [{flavor}]", done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split(" run ")[1].split(" ")[0]
    run = endpoint.stack.dag_run("identity_report", run_id)
    assert run["triggering_user_name"] == f"teamcity:{PUBLISH}#{build_id}"
    assert run["conf"]["teamcity_build_id"] == str(build_id)
