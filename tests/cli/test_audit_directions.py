"""``rotator audit``: per direction, whether a standing credential exists, as users run it (a
subprocess against the TeamCity simulator, whose parameters the audit reads over REST).

TeamCity -> Airflow is standing when the config pushes an Airflow credential into TeamCity or
TeamCity holds a parameter named like one that Rotator did not push; with neither and an
``[[identity.allow]]`` rule it is "no standing token". Read-only: TeamCity's parameters are the
same after every audit."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rotator.targets.teamcity import TeamCityClient
from tests.fixtures.configs import rotator_toml, teamcity_token
from tests.fixtures.leaks import record_output, register_secret

EXAMPLE = tomllib.loads(
    (Path(__file__).resolve().parents[2] / "ops" / "rotator.example.toml").read_text()
)
PUSHED = [c for c in EXAMPLE["credentials"] if c["type"].startswith("airflow-")]
"""The example's TeamCity -> Airflow standing token (pushed into a TeamCity parameter) and the
Airflow password it logs in with."""
T2A = "teamcity_to_airflow"
A2T = "airflow_to_teamcity"


@pytest.fixture
def audit(tmp_path, teamcity_sim, teamcity_admin_token):
    """``audit(pushed=, identity=, args=, **token)``: write rotator.toml (the suites' token
    credential with ``token`` changes; the example's pushed Airflow credentials; an identity
    rule), run ``rotator audit``
    (for airflow-bot only: the admin's bootstrap token is not this test's subject)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env.update(TEAMCITY_TOKEN=teamcity_admin_token, AIRFLOW_ADMIN_USER="admin")
    env["AIRFLOW_ADMIN_PASSWORD"] = "not-used-by-the-audit"

    def run(
        *,
        pushed: bool = False,
        identity: bool = False,
        args: tuple[str, ...] = ("--json",),
        **token: object,
    ) -> subprocess.CompletedProcess:
        config = tmp_path / "rotator.toml"
        rules = {
            "issuer": f"{teamcity_sim.url}/app/oidc-jwt",
            "audience": "airflow-trigger",
            "allow": [
                {
                    "name": "publish",
                    "build_type_external_id": "DataPipelines_Publish",
                    "dags": ["teamcity_build_status"],
                }
            ],
        }
        config.write_text(
            rotator_toml(
                store=tmp_path / "store.db",
                teamcity={"url": teamcity_sim.url, "timeout": 2, "retries": 0},
                airflow={**EXAMPLE["airflow"], "url": "http://127.0.0.1:9"},
                credentials=[teamcity_token(**token), *(PUSHED if pushed else [])],
                **({"identity": rules} if identity else {}),
            )
        )
        command = [sys.executable, "-m", "rotator", "--config", str(config), "audit"]
        result = subprocess.run(
            [*command, "--user", "airflow-bot", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        record_output(f"rotator audit {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator audit {' '.join(args)} [stderr]", result.stderr)
        return result

    return run


@pytest.fixture
def client(teamcity_sim, teamcity_admin_token) -> TeamCityClient:
    return TeamCityClient(teamcity_sim.url, teamcity_admin_token)


def _push_as_rotator_would(client: TeamCityClient) -> str:
    value = f"eyJ{secrets.token_urlsafe(24)}"
    register_secret(value)
    client.put_parameter("projects", "DataPipelines", "env.AIRFLOW_API_TOKEN", value, "password")
    return value


def _parameters(sim) -> dict[str, dict[str, tuple[str, str]]]:
    with sim.state.lock:
        return {
            owner: {n: (p.value, p.type) for n, p in project.parameters.items()}
            for owner, project in {**sim.state.projects, **sim.state.build_types}.items()
        }


def test_a_pushed_airflow_credential_without_identity_is_standing_and_not_flagged(
    audit, client, teamcity_sim
):
    _push_as_rotator_would(client)
    before = _parameters(teamcity_sim)
    result = audit(pushed=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    way = report["directions"][T2A]
    assert way["state"] == "standing" and way["identity_rules"] == []
    assert way["standing"] == [
        {
            "kind": "pushed",
            "where": "project DataPipelines: env.AIRFLOW_API_TOKEN",
            "owner": "rotator",
            "credential": "teamcity-airflow-token",
            "flag": None,
            "present": True,
        }
    ]
    assert way["parameters_read"] == ["project DataPipelines"]
    back = report["directions"][A2T]
    assert back["state"] == "standing"
    assert [s["credential"] for s in back["standing"]] == ["airflow-teamcity-token"]
    # the token part keeps its shape
    assert report["tokens"] == [] and report["users"] == ["airflow-bot"] and report["flagged"] == 0
    assert _parameters(teamcity_sim) == before  # read-only


def test_identity_only_is_no_standing_token_and_names_the_rule(audit):
    result = audit(identity=True, args=())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "TeamCity -> Airflow: no standing token (identity rule 'publish')" in lines
    assert any(line.startswith("Airflow -> TeamCity: standing credential (1)") for line in lines)
    assert "build configuration DataPipelines_Publish" in result.stdout  # where it looked
    report = json.loads(audit(identity=True).stdout)
    assert report["directions"][T2A]["state"] == "no-standing-token"
    assert report["directions"][T2A]["standing"] == []


def test_a_pushed_credential_while_identity_is_configured_is_flagged(audit, client):
    _push_as_rotator_would(client)
    result = audit(pushed=True, identity=True)
    assert result.returncode == 1, result.stdout + result.stderr
    way = json.loads(result.stdout)["directions"][T2A]
    assert way["state"] == "standing" and way["identity_rules"] == ["publish"]
    # seen twice (the project, and inherited by the rule's build configuration): listed once
    assert [(s["credential"], s["flag"]) for s in way["standing"]] == [
        ("teamcity-airflow-token", "identity-replaces-it")
    ]
    assert way["parameters_read"] == [
        "project DataPipelines",
        "build configuration DataPipelines_Publish",
    ]
    text = audit(pushed=True, identity=True, args=()).stdout
    assert "identity rule 'publish' configured" in text
    assert "[flagged: identity-replaces-it]" in text


def test_a_configured_push_not_yet_made_is_still_standing(audit):
    way = json.loads(audit(pushed=True).stdout)["directions"][T2A]
    assert way["state"] == "standing" and way["standing"][0]["present"] is False


def test_neither_is_not_set_up(audit):
    result = audit()
    assert result.returncode == 0, result.stdout + result.stderr
    way = json.loads(result.stdout)["directions"][T2A]
    assert way["state"] == "not-set-up" and way["parameters_read"] == []
    assert "no [[identity.allow]] rule" in way["summary"]
    # Airflow -> TeamCity without a teamcity-token credential that Airflow reads
    back = json.loads(audit(conn_id=None).stdout)["directions"][A2T]
    assert back["state"] == "not-set-up" and back["standing"] == []


def test_a_parameter_rotator_did_not_push_is_found_and_flagged(audit, client, teamcity_sim):
    planted = f"eyJ{secrets.token_urlsafe(24)}"
    plain = f"eyJ{secrets.token_urlsafe(24)}"
    register_secret(planted)
    register_secret(plain)
    # by hand, in the project the rule's build configuration belongs to
    client.put_parameter("projects", "DataPipelines", "env.AIRFLOW_TOKEN", planted, "password")
    client.put_parameter("buildTypes", "DataPipelines_Publish", "env.AIRFLOW_JWT", plain, "text")
    before = _parameters(teamcity_sim)
    result = audit(identity=True)
    assert result.returncode == 1, result.stdout + result.stderr
    way = json.loads(result.stdout)["directions"][T2A]
    assert way["state"] == "standing"
    found = {s["where"]: (s["owner"], s["flag"]) for s in way["standing"]}
    assert found == {
        "build configuration DataPipelines_Publish: env.AIRFLOW_TOKEN (inherited from a parent "
        "project)": ("foreign", "not-pushed-by-rotator"),
        "build configuration DataPipelines_Publish: env.AIRFLOW_JWT": (
            "foreign",
            "not-a-password-parameter",
        ),
    }
    # env.AIRFLOW_URL and env.AIRFLOW_DAG_ID (the seed's, inherited) are not credentials
    assert "AIRFLOW_URL" not in result.stdout and "AIRFLOW_DAG_ID" not in result.stdout
    assert planted not in result.stdout + result.stderr
    assert plain not in result.stdout + result.stderr
    assert _parameters(teamcity_sim) == before  # read-only

    # the seed's versioned-settings project (a child of DataPipelines) holds its own; it is
    # read only when named, and inherits the planted one
    named = json.loads(audit(args=("--json", "--project", "DataPipelines_Vcs")).stdout)
    assert sorted(s["where"] for s in named["directions"][T2A]["standing"]) == [
        "project DataPipelines_Vcs: env.AIRFLOW_API_TOKEN",
        "project DataPipelines_Vcs: env.AIRFLOW_TOKEN (inherited from a parent project)",
    ]


def test_an_unreadable_project_is_an_error_and_both_forms_agree(audit):
    result = audit(args=("--json", "--project", "NoSuchProject"))
    assert result.returncode == 1
    way = json.loads(result.stdout)["directions"][T2A]
    assert way["errors"] and way["errors"][0].startswith("project NoSuchProject: ")
    old = audit(identity=True, args=("teamcity", "--json"))
    new = audit(identity=True, args=("--json",))
    assert old.returncode == new.returncode == 0
    assert json.loads(old.stdout)["directions"] == json.loads(new.stdout)["directions"]
