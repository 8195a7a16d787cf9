"""Every deployment artefact in ops/ is at least parsed, verified or imported the way its real
consumer would: kubectl-style YAML, IAM JSON, systemd's own verifier, Airflow's DagBag."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

OPS = Path(__file__).resolve().parents[2] / "ops"
SECRET_LOOKING = re.compile(
    r"(?i)(password|token|secret|access_key)\s*[:=]\s*['\"]?[A-Za-z0-9+/_\-]{12,}"
)


def test_kubernetes_manifests_parse_and_hold_no_secret():
    docs = list(yaml.safe_load_all((OPS / "kubernetes" / "rotator.yaml").read_text()))
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ConfigMap", "CronJob", "Deployment"} <= kinds
    assert "Secret" not in kinds, "manifests must not carry Secrets; they are created out of band"
    for doc in docs:
        assert doc["metadata"]["namespace"] == "rotator"
    cron = next(d for d in docs if d["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["rotate", "--all"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["rotator.toml"]
    assert not SECRET_LOOKING.search(config)
    import tomllib

    parsed = tomllib.loads(config)
    assert parsed["store"]["auth"] == "kubernetes"


@pytest.mark.parametrize("name", ["rotator-iam-policy.json", "airflow-iam-policy.json"])
def test_iam_policies_are_valid_json_with_least_privilege(name):
    policy = json.loads((OPS / "aws" / name).read_text())
    assert policy["Version"] == "2012-10-17"
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert all(a.startswith("secretsmanager:") for a in actions)
    assert "secretsmanager:*" not in actions
    if name.startswith("airflow"):
        assert actions == {"secretsmanager:GetSecretValue"}


def test_airflow_vault_policy_is_read_only():
    text = (OPS / "vault" / "airflow-policy.hcl").read_text()
    caps = re.findall(r"capabilities\s*=\s*\[([^\]]*)\]", text)
    assert caps and all(c.strip() == '"read"' for c in caps)
    assert "rotator/" not in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    rotator_bin = Path(sys.executable).with_name("rotator")
    assert rotator_bin.exists(), "the rotator console script must be installed in the venv"
    for unit in (OPS / "systemd").iterdir():
        text = unit.read_text().replace("/opt/rotator/bin/rotator", str(rotator_bin))
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_teamcity_build_step_is_valid_bash_and_keeps_the_token_out_of_argv():
    script = OPS / "teamcity" / "trigger-airflow-dag.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    # the token reaches curl through stdin (-K -), never as an argument
    assert "-K -" in text
    assert not re.search(r"curl[^\n]*\$AIRFLOW_API_TOKEN", text)


def test_dags_import_in_airflow_without_errors(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(OPS / 'airflow' / 'dags')!r})\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},"
        " 'dags': sorted(bag.dag_ids)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dags"] == ["rotator_rotations", "teamcity_build_status"]


@pytest.mark.parametrize("kind", ["vault", "aws", "file"])
def test_airflow_secrets_settings_build_the_backend(kind, tmp_path):
    """Each snippet parses as airflow.cfg does and its kwargs build the backend (no secret in
    them: the backend refuses secrets in kwargs)."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(OPS / "airflow" / f"secrets-{kind}.cfg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    for section, key in (("secrets", "backend"), ("workers", "secrets_backend")):
        assert parser[section][key] == "backends.airflow.RotatorSecretsBackend"
        kwargs = parser[section][
            "backend_kwargs" if section == "secrets" else "secrets_backend_kwargs"
        ]
        assert json.loads(kwargs)["store"] == kind
        assert not SECRET_LOOKING.search(kwargs)
        code = (
            "import json, sys\n"
            "from backends.airflow import RotatorSecretsBackend\n"
            "b = RotatorSecretsBackend(**json.loads(sys.stdin.read()))\n"
            "print(b.kind)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=kwargs,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == kind


def test_kubernetes_daemon_serves_metrics_where_probes_can_reach_them():
    docs = list(yaml.safe_load_all((OPS / "kubernetes" / "rotator.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    port = int(args[args.index("--metrics-port") + 1])
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0", "127.0.0.1 is unreachable for probes"  # noqa: S104
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert container["ports"][0]["containerPort"] == port
    from rotator.cli import parser

    parsed = parser().parse_args(args)  # the arguments are ones the CLI accepts
    assert parsed.metrics_port == port
