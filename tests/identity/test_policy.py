"""``[[identity.allow]]``: parsing (bad input is a ConfigError naming the key), matching (deny
by default, each named constraint must hold), and a property: whatever claims and rules,
nothing is allowed that some rule does not name in full."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rotator.errors import ConfigError
from rotator.identity.policy import Policy, Rule
from tests.identity.conftest import settings
from tests.identity.tokens import claims

PUBLISH = {"build_type_external_id": "DataPipelines_Publish", "dags": ["publish_*", "report"]}


def policy(*rules):
    return settings(allow=list(rules)).policy


def test_no_rules_deny_everything():
    verdict = policy().evaluate(claims(), "report")
    assert not verdict.allowed and "no [[identity.allow]] rule" in verdict.summary


def test_a_matching_rule_allows_exact_and_glob_dags():
    p = policy(PUBLISH)
    assert p.evaluate(claims(), "report").rule.where == "identity.allow[0]"
    assert p.evaluate(claims(), "publish_daily").allowed
    assert not p.evaluate(claims(), "reports").allowed
    assert "DAG 'deploy' is not in its dags" in p.evaluate(claims(), "deploy").summary


@pytest.mark.parametrize(
    ("rule", "overrides", "why"),
    [
        ({"build_type_external_id": "Other"}, {}, "build_type_external_id is not Other"),
        ({"project_external_id": "Other"}, {}, "project_external_id is not Other"),
        ({"sub": "_Root:project1:bt2"}, {}, "sub is not"),
        ({"sub_glob": "_Root:project2:*"}, {}, "sub does not match"),
        ({"sub_glob": "_Root:*", "branch_name": "release"}, {}, "branch_name is not release"),
        ({"sub_glob": "_Root:*", "branch_glob": "release/*"}, {}, "does not match release/*"),
        (
            {"sub_glob": "_Root:*", "branch_is_default": True},
            {"branch_is_default": "true"},
            "branch_is_default",
        ),
        (
            {"sub_glob": "_Root:*", "branch_is_default": True},
            {"branch_is_default": None},
            "branch_is_default",
        ),
        ({"sub_glob": "_Root:*"}, {"is_personal": True}, "personal build"),
        ({"sub_glob": "_Root:*"}, {"is_personal": None}, "personal build"),
        ({"sub_glob": "*"}, {"sub": "user3__Root:user3_project1:user3_bt1"}, "personal build"),
    ],
)
def test_each_named_constraint_must_hold(rule, overrides, why):
    verdict = policy({**rule, "dags": ["report"]}).evaluate(claims(**overrides), "report")
    assert not verdict.allowed
    assert why in verdict.reasons[0]


def test_personal_builds_pass_only_where_a_rule_says_so():
    personal = claims(is_personal=True, sub="user3__Root:user3_project1:user3_bt1")
    assert not policy(PUBLISH).evaluate(personal, "report").allowed
    assert policy({**PUBLISH, "allow_personal": True}).evaluate(personal, "report").allowed


def test_conf_keys_must_all_be_listed():
    p = policy({**PUBLISH, "conf_keys": ["artifact"]})
    assert p.evaluate(claims(), "report", ["artifact"]).allowed
    verdict = p.evaluate(claims(), "report", ["artifact", "target_env"])
    assert not verdict.allowed and "'target_env'" in verdict.summary


def test_the_first_rule_that_holds_allows():
    p = policy({**PUBLISH, "dags": ["other"]}, {**PUBLISH, "name": "reports", "max_runs": 3})
    verdict = p.evaluate(claims(), "report")
    assert verdict.rule.label == "identity.allow[1] (reports)" and verdict.rule.max_runs == 3


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"dags": ["x"], "build_type_externl_id": "A"}, "did you mean build_type_external_id?"),
        ({"dags": ["x"]}, "names no build"),
        ({"build_type_external_id": "A"}, "identity.allow[0].dags is required"),
        ({"build_type_external_id": "A", "dags": []}, "a non-empty list of DAG ids"),
        ({"build_type_external_id": "A", "dags": ["x y"]}, "a non-empty list of DAG ids"),
        ({"build_type_external_id": "A", "dags": ["x"], "max_runs": 0}, "from 1 to 100"),
        (
            {"build_type_external_id": "A", "dags": ["x"], "branch_is_default": "yes"},
            "expected bool",
        ),
        ({"build_type_external_id": "", "dags": ["x"]}, "non-empty string"),
    ],
)
def test_bad_rules_are_config_errors(table, message):
    with pytest.raises(ConfigError) as caught:
        settings(allow=[table])
    assert message in str(caught.value) and "test.toml" in str(caught.value)


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ({"algorithms": ["HS256"]}, "none/HMAC are refused"),
        ({"algorithms": ["none"]}, "none/HMAC are refused"),
        ({"audence": "x"}, "did you mean audience?"),
        ({"jwks_url": "http://teamcity.example.com/app/oidc-jwt/.well-known/jwks"}, "https"),
        ({"jwks_refetch": "10m", "jwks_ttl": "5m"}, "at most jwks_ttl"),
        ({"leeway": "1h"}, "at most 5m"),
        ({"token": "x"}, "secrets do not belong"),
    ],
)
def test_bad_identity_settings_are_config_errors(identity, message):
    with pytest.raises(ConfigError, match=message):
        settings(**identity)


def test_loopback_http_jwks_is_accepted_and_the_default_follows_the_issuer():
    assert settings().jwks_url == "https://teamcity.example.com/app/oidc-jwt/.well-known/jwks"
    local = settings(jwks_url="http://127.0.0.1:8111/app/oidc-jwt/.well-known/jwks")
    assert local.jwks_url.startswith("http://127.0.0.1")


# -- the property ------------------------------------------------------------------------------

NAMES = ["A", "B", "main", "release/1", "_Root:project1:bt1", "_Root:project2:bt3"]
CLAIM_VALUES = st.one_of(st.sampled_from(NAMES), st.booleans(), st.none(), st.integers(0, 3))
CLAIM_KEYS = [
    "sub",
    "project_external_id",
    "build_type_external_id",
    "branch_name",
    "branch_is_default",
    "is_personal",
]
claim_sets = st.fixed_dictionaries({k: CLAIM_VALUES for k in CLAIM_KEYS})
patterns = st.sampled_from([*NAMES, "*", "_Root:project1:*", "release/*", "?"])
rules = st.builds(
    lambda i, d: Rule(where=f"identity.allow[{i}]", **d),
    st.integers(0, 9),
    st.fixed_dictionaries(
        {
            "dags": st.lists(st.sampled_from(["a", "b", "c*", "*"]), min_size=1, max_size=2).map(
                tuple
            )
        },
        optional={
            "sub": st.sampled_from(NAMES),
            "sub_glob": patterns,
            "project_external_id": st.sampled_from(NAMES),
            "build_type_external_id": st.sampled_from(NAMES),
            "branch_name": st.sampled_from(NAMES),
            "branch_glob": patterns,
            "branch_is_default": st.booleans(),
            "allow_personal": st.booleans(),
            "conf_keys": st.lists(st.sampled_from(["x", "y"]), max_size=2).map(tuple),
        },
    ),
)


def names_it(rule: Rule, c: dict, dag: str, conf: list[str]) -> bool:
    """The oracle, written from the README's words, not from policy.py."""

    def same(key: str) -> bool:
        wanted = getattr(rule, key)
        return wanted is None or (isinstance(c[key], str) and c[key] == wanted)

    def glob(key: str, claim: str) -> bool:
        wanted = getattr(rule, key)
        return wanted is None or (isinstance(c[claim], str) and fnmatchcase(c[claim], wanted))

    personal = c["is_personal"] is not False or (isinstance(c["sub"], str) and "user" in c["sub"])
    return (
        same("sub")
        and same("project_external_id")
        and same("build_type_external_id")
        and same("branch_name")
        and glob("sub_glob", "sub")
        and glob("branch_glob", "branch_name")
        and (rule.branch_is_default is None or c["branch_is_default"] is rule.branch_is_default)
        and (rule.allow_personal or not personal)
        and any(d == dag or ("*" in d and fnmatchcase(dag, d)) for d in rule.dags)
        and set(conf) <= set(rule.conf_keys)
    )


@hsettings(max_examples=400, deadline=None)
@given(
    st.lists(rules, max_size=4),
    claim_sets,
    st.sampled_from(["a", "b", "c1", "d"]),
    st.lists(st.sampled_from(["x", "y", "z"]), max_size=2),
)
def test_random_claims_never_pass_what_no_rule_names(rule_list, c, dag, conf):
    verdict = Policy(tuple(rule_list)).evaluate(c, dag, conf)
    if verdict.allowed:
        assert names_it(verdict.rule, c, dag, conf)
        assert verdict.rule is next(r for r in rule_list if names_it(r, c, dag, conf))
    else:
        assert not any(names_it(r, c, dag, conf) for r in rule_list)
