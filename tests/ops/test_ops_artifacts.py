"""Every deployment artefact in ops/ is at least parsed, verified or imported the way its real
consumer would: kubectl-style YAML, IAM JSON, systemd's own verifier, Airflow's DagBag."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import astuple
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


@pytest.mark.parametrize(
    "name", ["rotator-iam-policy.json", "airflow-iam-policy.json", "airflow-ui-iam-policy.json"]
)
def test_iam_policies_are_valid_json_with_least_privilege(name):
    policy = json.loads((OPS / "aws" / name).read_text())
    assert policy["Version"] == "2012-10-17"
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert all(a.startswith("secretsmanager:") for a in actions)
    assert "secretsmanager:*" not in actions
    if name == "airflow-iam-policy.json":
        assert actions == {"secretsmanager:GetSecretValue"}


def test_the_credentials_page_role_reads_no_pending_value_and_writes_nothing():
    """The API server's extra AWS role (issue 17): list the lock documents, read Rotator's state
    and lock documents and the connections' version lists; a value staged but not yet proven
    (AWSPENDING on the connection) is denied; nothing that writes."""
    policy = json.loads((OPS / "aws" / "airflow-ui-iam-policy.json").read_text())
    allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert allowed == {
        "secretsmanager:ListSecrets",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
    }
    reads_values = [
        s
        for s in policy["Statement"]
        if s["Effect"] == "Allow" and "secretsmanager:GetSecretValue" in s["Action"]
    ]
    assert all("/connections/" not in r for s in reads_values for r in s["Resource"])
    denied = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Condition"]["StringEquals"]["secretsmanager:VersionStage"] == "AWSPENDING"
        for s in denied
    )


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
    unreachable = "127.0.0.1 is unreachable for probes"
    assert args[args.index("--metrics-host") + 1] == "0.0.0.0", unreachable  # noqa: S104
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert container["ports"][0]["containerPort"] == port
    from rotator.cli import parser

    parsed = parser().parse_args(args)  # the arguments are ones the CLI accepts
    assert parsed.metrics_port == port


# -- issue 10, defect 16: the demo's OpenBao log, the DAG's URL, the build step's JSON --------


def test_openbao_log_holding_the_root_token_is_private(tmp_path):
    from rotator.demo import Demo
    from rotator.servers.openbao import OpenBao
    from rotator.servers.process import free_port

    port = free_port()
    stale = tmp_path / f"openbao-{port}.log"
    stale.write_text("an older run\n")
    stale.chmod(0o644)  # what the umask gave before
    old_umask = os.umask(0o022)
    try:
        with OpenBao(tmp_path, port=port) as bao:
            assert oct(bao.log_path.stat().st_mode & 0o777) == "0o600"
        # (the dev server prints its root token and unseal key there, "Root Token: ...")
        fresh = OpenBao(tmp_path / "fresh")
        with fresh:
            assert oct(fresh.log_path.stat().st_mode & 0o777) == "0o600"
        demo = Demo(tmp_path / "demo", out=lambda _text: None)
        assert oct(demo.logs.stat().st_mode & 0o777) == "0o700"
    finally:
        os.umask(old_umask)


# The DAG's tasks, driven outside a scheduler: params rendered the way Airflow renders them,
# then the sensor's poke against a recording server standing in for TeamCity.
_DAG_PROBE = """
import copy, json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
from airflow.serialization.serialized_objects import DagSerialization

dag = DagBag(dag_folder=sys.argv[1]).dags["teamcity_build_status"]
# the API server's view of the DAG: what its trigger endpoint validates a run's conf with
served = DagSerialization.from_dict(DagSerialization.to_dict(dag))
report = {"refused": {}, "accepted": []}
for value in json.loads(sys.argv[2]):
    try:
        served.params.deep_merge({"teamcity_build_id": value}).validate()
        report["accepted"].append(value)
    except ParamValidationError as exc:
        report["refused"][str(value)] = str(exc)


class TI:
    dag_id, task_id, try_number, map_index = "teamcity_build_status", "wait_for_build", 1, -1
    pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def poke(build_id):
    sensor = copy.deepcopy(dag.get_task("wait_for_build"))  # rendering changes the task
    context = {"params": {"teamcity_build_id": build_id}, "ti": TI(), "dag_run": None}
    sensor.render_template_fields(context)
    try:
        return {"done": sensor.poke(context).xcom_value}
    except Exception as exc:
        return {"error": type(exc).__name__ + ": " + str(exc)}


report["hostile_poke"] = poke(sys.argv[3])
report["poke"] = poke("7")
deploy = dag.get_task("deploy")
params = {"teamcity_build_id": "7", "follow_up_build_type": dag.params["follow_up_build_type"]}
deploy.render_template_fields({"params": params, "run_id": "manual__1"})
report["deploy"] = [deploy.build_type_id, deploy.properties, deploy.deferrable]
print(json.dumps(report))
"""


def test_dag_refuses_a_hostile_build_id_before_it_reaches_teamcity(tmp_path, recorder):
    server = recorder(
        {
            "id": 7,
            "buildTypeId": "DataPipelines_Publish",
            "state": "finished",
            "status": "SUCCESS",
            "statusText": "Success",
        }
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_")}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_TEAMCITY_DEFAULT=json.dumps(
            {"conn_type": "http", "host": server.url, "login": "airflow-bot", "password": "t-1"}
        ),
    )
    hostile = "7,status:FAILURE/../../users/admin?x=1#y"
    values = [hostile, "", "0", "12 ", "-3", 0, "7"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _DAG_PROBE,
            str(OPS / "airflow" / "dags" / "teamcity_build_status.py"),
            json.dumps(values),
            hostile,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Airflow validates params when a run is triggered (a 400): only digits make a run
    assert report["accepted"] == ["7"]
    assert set(report["refused"]) == {str(v) for v in values if v != "7"}
    assert all("teamcity_build_id" in text for text in report["refused"].values())
    # a run made some other way still cannot steer the locator: the sensor refuses, says why,
    # and TeamCity never hears of it; a real id is one GET of that build
    assert report["hostile_poke"]["error"].startswith("TeamCityConfigError: wait_for_build: ")
    assert "build_id must be a number" in report["hostile_poke"]["error"]
    assert report["poke"] == {"done": 7}
    assert [(seen.method, seen.path) for seen in server.seen] == [("GET", "/app/rest/builds/id:7")]
    assert report["deploy"] == [
        "DataPipelines_Deploy",
        {"env.UPSTREAM_BUILD_ID": "7"},
        True,
    ]


def _run_build_step(tmp_path, server, build_id: str, path: str | None = None):
    env = {
        "AIRFLOW_URL": server.url,
        "AIRFLOW_DAG_ID": "teamcity_build_status",
        "AIRFLOW_API_TOKEN": "header-token-1",
        "TEAMCITY_BUILD_ID": build_id,
        "PATH": path or os.environ["PATH"],
    }
    return subprocess.run(
        ["/bin/bash", str(OPS / "teamcity" / "trigger-airflow-dag.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


HOSTILE_BUILD_ID = '12", "dag_run_id": "x\\\\ \u00e9\n'


def test_build_step_writes_its_json_with_an_encoder(tmp_path, recorder):
    server = recorder({"dag_run_id": "manual|2026'[x]"})
    result = _run_build_step(tmp_path, server, HOSTILE_BUILD_ID)
    assert result.returncode == 0, result.stderr
    ((method, path, _, body),) = [astuple(seen) for seen in server.seen]
    assert (method, path) == ("POST", "/api/v2/dags/teamcity_build_status/dagRuns")
    sent = json.loads(body)
    assert abs(sent["conf"].pop("teamcity_sent_at") - time.time()) < 60  # trigger latency
    assert sent == {
        "logical_date": None,
        "conf": {"teamcity_build_id": HOSTILE_BUILD_ID},
    }
    # TeamCity service messages escape | ' [ ] with |
    assert "value='manual||2026|'|[x|]']" in result.stdout


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_build_step_uses_jq_on_an_agent_without_python(tmp_path, recorder):
    server = recorder({"dag_run_id": "run-1"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("curl", "jq", "mktemp", "rm", "head", "sed", "sleep"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = _run_build_step(tmp_path, server, HOSTILE_BUILD_ID, path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    ((_, _, _, body),) = [astuple(seen) for seen in server.seen]
    assert json.loads(body)["conf"]["teamcity_build_id"] == HOSTILE_BUILD_ID
    assert "value='run-1'" in result.stdout


# -- issue 12, item 8: a long install says what it is doing ---------------------------------------

FAKE_PYTHON = """#!/bin/bash
# Stands in for python3 and the venv's python: -c runs, -m venv makes bin/python, -m pip prints
# what pip prints (a few packages) or fails when FAKE_PIP_FAIL is set.
if [ "$1" = "-c" ]; then exit 0; fi
if [ "$1" = "--version" ]; then echo "Python 3.11.0"; exit 0; fi
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1 $2" = "-m pip" ]; then
    case "$*" in *"--upgrade pip"*) echo "Successfully installed pip-26.3"; exit 0 ;; esac
    for n in $(seq 1 23); do echo "Collecting package-$n>=1.0 (from rotator==0.1.0)"; echo "  Downloading package_$n-1.0.whl (1 kB)"; done
    [ -n "${FAKE_PIP_FAIL:-}" ] && { echo "ERROR: No matching distribution found for package-24"; exit 1; }
    echo "Installing collected packages: package-1, package-2, package-3"
    echo "Successfully installed package-1-1.0 package-2-1.0 package-3-1.0"
    exit 0
fi
exit 2
"""


@pytest.mark.parametrize("fail", [False, True])
def test_venv_install_prints_its_phases_and_package_names(tmp_path, fail):
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    env = {"PATH": os.environ["PATH"], "PYTHON": str(fake), "ROTATOR_VENV": str(venv)}
    if fail:
        env["FAKE_PIP_FAIL"] = "1"
    result = subprocess.run(
        ["/bin/bash", "-c", f"source {OPS / 'venv.sh'} && echo sourced"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    err = result.stderr
    assert "[1/3]" in err and "[2/3] pip" in err and "[3/3]" in err and "Airflow 3.3" in err
    names = [line for line in err.splitlines() if "package-1, package-2" in line]
    assert names and "package-10" in names[0]  # ten names to a line, as they are collected
    assert "package-23" in err
    log = (venv / "install.log").read_text()
    assert "Downloading package_23-1.0.whl" in log  # pip's whole output stays in the log
    if fail:
        assert result.returncode == 1 and "No matching distribution" in err
        assert not (venv / ".rotator-installed").exists()
    else:
        assert result.returncode == 0 and result.stdout.strip() == "sourced", err
        assert "unpacking 3 packages" in err and "ready in" in err
        assert (venv / ".rotator-installed").exists()


# -- issue 12, items 6 and 9: what the README and --help point to exists -------------------------

ROOT = OPS.parent


def test_readme_and_sim_help_point_to_the_simulators_own_document():
    readme = (ROOT / "README.md").read_text()
    assert "teamcity-contract.md" not in readme  # not in the repository: no dangling reference
    doc = ROOT / "rotator" / "sim" / "teamcity" / "README.md"
    assert "rotator/sim/teamcity/README.md" in readme and doc.exists()
    text = doc.read_text()
    for route in ("/users/{user}/tokens", "/buildQueue", "/__sim/faults", "versionedSettings"):
        assert route in text, route
    from rotator.sim.teamcity.handler import ROUTES

    # every family of routes the simulator serves is on the page
    tops = {p.pattern.split("/app/rest/", 1)[1].split("/")[0] for _, p, _ in ROUTES}
    tops = {t for t in tops if not t.startswith("(")} | {"buildTypes"}
    assert all(f"/{top}" in text for top in tops), tops
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "sim", "teamcity", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rotator/sim/teamcity/README.md" in " ".join(result.stdout.split())
    assert "teamcity-contract" not in result.stdout


def test_readme_lists_the_exit_codes_the_cli_documents():
    readme = (ROOT / "README.md").read_text()
    assert "| 130 | stopped by Ctrl-C (SIGINT) |" in readme
    assert "SIGTERM" in readme and "rotator: stopped" in readme
    import rotator.cli

    assert "130" in (rotator.cli.__doc__ or "") and "SIGTERM" in (rotator.cli.__doc__ or "")
