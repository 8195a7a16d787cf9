"""``rotator demo``: the whole TeamCity <-> Airflow loop on loopback, with embedded defaults.

It starts an OpenBao dev server (Rotator and Airflow each get a token limited by the policies in
``ops/vault/``), the TeamCity simulator, and a real Airflow 3.3 (API server, scheduler, DAG
processor, triggerer; FAB auth manager; Rotator's secrets backend reading OpenBao), then:

1. rotates the three credentials of the design's example and shows ``rotator status``;
2. runs a TeamCity build whose step (``ops/teamcity/trigger-airflow-dag.sh``) triggers an
   Airflow DAG run (``ops/airflow/dags/teamcity_build_status.py``) with the API token the
   parameter updater pushed;
3. lets that DAG check the build (``TeamCityBuildSensor``; the step was the build's last, so
   it has finished), then start a build of ``DataPipelines_Deploy`` and wait for it in the
   triggerer (``TeamCityRunBuildOperator``, deferred), through the ``teamcity_default``
   connection whose token the backend reads from OpenBao;
4. forces a rotation while the operator waits on its build, and counts failed calls on both
   sides;
5. retires the standing TeamCity -> Airflow token (``rotator audit`` flags it while an
   ``[[identity.allow]]`` rule exists): out of ``rotator.toml``, its tokens revoked at Airflow,
   its TeamCity parameter deleted. No Rotator command retires a credential, so the demo does
   these three itself;
6. lets a build trigger the same DAG with its own OIDC identity (the simulator's
   ``oidcTokenInParams`` token, Rotator's identity endpoint in Airflow, the rule), and
   ``rotator audit`` reports no standing token in that direction;
7. stops everything it started and says where the logs are.

The simulator holds every build until the demo starts and finishes it (what an agent would do),
so each wait is seen from both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from rotator.errors import RotatorError

ROOT = Path(__file__).resolve().parents[1]
OPS = ROOT / "ops"
DAG_ID = "teamcity_build_status"
BUILD_TYPE = "DataPipelines_Publish"
FOLLOW_UP = "DataPipelines_Deploy"  # the DAG's params.follow_up_build_type

EXAMPLE = OPS / "rotator.example.toml"
"""The README's example ``rotator.toml``: the demo writes its own from it, so the two agree."""
HEADER = """\
# Written by `rotator demo` from ops/rotator.example.toml (the README's example), with the
# loopback URLs it started, run_build for the DAG's follow-up build, the audit file Airflow's
# Credentials page reads, and the [identity] rule a build triggers with in step 6 (Rotator's
# identity endpoint in Airflow; its API server reads this file). No secret in here: tokens
# come from the environment."""
RETIRED = "# teamcity-airflow-token: retired (step 5); builds trigger with their OIDC identity"
STANDING_NAME = "teamcity-airflow-token"
STANDING_PARAMETER = "env.AIRFLOW_API_TOKEN"
AUDIENCE = "airflow-trigger"
AUDIT_BOTS = ("audit", "--user", "airflow-bot", "--user", "teamcity-bot")
"""``rotator audit`` of the bots only: the admin's never-expiring token is the demo's own
bootstrap (a foreign token it would rightly flag)."""
POLL_NAME = "airflow-teamcity-token"


def demo_config(urls: dict[str, str], *, standing: bool = True) -> dict[str, Any]:
    """The example config pointed at the loopback stack (``urls``: ``vault_url``,
    ``teamcity_url``, ``airflow_url``), with what only the demo needs added to it."""
    import tomllib

    config = tomllib.loads(EXAMPLE.read_text())
    config["store"]["url"] = urls["vault_url"]
    config["teamcity"]["url"] = urls["teamcity_url"]
    config["airflow"]["url"] = urls["airflow_url"]
    config["rotator"] = {"audit_file": "logs/audit.jsonl"}  # Airflow's Credentials page reads it
    named = {c["name"]: c for c in config["credentials"]}
    missing = {POLL_NAME, STANDING_NAME} - named.keys()
    if missing:
        raise RotatorError(f"{EXAMPLE} has no credential {', '.join(sorted(missing))}")
    # the DAG queues its follow-up build with the token it polls with
    named[POLL_NAME]["permissions"].append({"project": "DataPipelines", "permission": "run_build"})
    if not standing:
        config["credentials"] = [c for c in config["credentials"] if c["name"] != STANDING_NAME]
    config["identity"] = {
        "issuer": f"{urls['teamcity_url']}/app/oidc-jwt",  # the simulator's issuer (loopback)
        "audience": AUDIENCE,
        "allow": [
            {
                "name": "publish",
                "build_type_external_id": BUILD_TYPE,
                "dags": [DAG_ID],
                "conf_keys": ["teamcity_build_id", "teamcity_sent_at"],
            }
        ],
    }
    return config


class Demo:
    def __init__(self, workdir: Path, out: Callable[[str], None] = print) -> None:
        self.workdir = workdir
        self.out = out
        self.logs = workdir / "logs"
        # OpenBao's dev log holds its root token: the directory and that file are ours only
        self.logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.logs.chmod(0o700)
        self.started = time.monotonic()
        self.stack: list[Callable[[], None]] = []
        self.env: dict[str, str] = {}
        self.facts: dict[str, Any] = {}
        self.used_tokens: set[str] = set()  # the Airflow tokens builds used (never printed)

    # -- narration -----------------------------------------------------------------------
    def step(self, number: int, title: str) -> None:
        self.out(f"\n== {number}. {title} [{self.elapsed()}]")

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"

    def say(self, text: str) -> None:
        self.out(f"   {text}")

    def wait(
        self, what: str, check: Callable[[], Any], timeout: float = 180, every: float = 0.25
    ) -> Any:
        self.say(f"waiting for {what} ...")
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = check()
            except (requests.RequestException, RotatorError, KeyError, ValueError):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise RotatorError(f"gave up waiting for {what} after {timeout:.0f}s")
            time.sleep(every)  # polling interval while a real system gets there

    # -- start -----------------------------------------------------------------------------
    def start(self) -> None:
        from rotator.servers.airflow import AirflowInstance
        from rotator.servers.openbao import OpenBao
        from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator

        self.step(0, "starting OpenBao, the TeamCity simulator and Airflow on 127.0.0.1")
        bao = OpenBao(self.logs)
        bao.start()
        self.stack.append(bao.stop)
        self.say(f"OpenBao dev server at {bao.url}")
        import hvac

        admin = hvac.Client(url=bao.url, token=bao.token)
        tokens = {}
        for name in ("rotator", "airflow", "airflow-ui"):
            admin.sys.create_or_update_policy(
                name=name, policy=(OPS / "vault" / f"{name}-policy.hcl").read_text()
            )
        # one Airflow token for all its processes here; the Credentials page needs airflow-ui
        for name, policies in (("rotator", ["rotator"]), ("airflow", ["airflow", "airflow-ui"])):
            tokens[name] = admin.auth.token.create(policies=policies, ttl="2h")["auth"][
                "client_token"
            ]
        self.say("Rotator and Airflow get their own tokens, limited by ops/vault/*-policy.hcl")

        tc_token = secrets.token_urlsafe(32)
        sim = TeamCitySimulator(admin_token=tc_token, seed=DEMO_SEED)
        sim.start()
        sim.state.auto_finish_builds = False
        # the teamcity-oidc-jwt plugin: the issuer on loopback http, and Publish builds get a
        # token for Airflow in env.TEAMCITY_BUILD_OIDC_TOKEN (a masked parameter) at start
        sim.oidc.configure(issuer_url=f"{sim.url}/app/oidc-jwt")
        sim.oidc.features(BUILD_TYPE, in_params=True, audiences=(AUDIENCE,))
        self.stack.append(sim.stop)
        self.sim = sim
        self.say(f"TeamCity simulator at {sim.url} (project DataPipelines, build {BUILD_TYPE})")

        admin_pw, bot_pw = "Aa1-" + secrets.token_urlsafe(20), "Aa1-" + secrets.token_urlsafe(20)
        dags = self.workdir / "dags"
        dags.mkdir(exist_ok=True)
        shutil.copy(OPS / "airflow" / "dags" / f"{DAG_ID}.py", dags / f"{DAG_ID}.py")
        backend_kwargs = {
            "store": "vault",
            "url": bao.url,
            "auth": "token",
            "mount": "secret",
            "connections_prefix": "airflow/connections",
            "variables_prefix": None,
            "cache_ttl": 60,
        }
        airflow = AirflowInstance(
            self.workdir / "airflow",
            dags_folder=dags,
            config={
                "secrets": {
                    "backend": "backends.airflow.RotatorSecretsBackend",
                    "backend_kwargs": json.dumps(backend_kwargs),
                }
            },
            extra_env={
                "VAULT_TOKEN": tokens["airflow"],
                "ROTATOR_CONFIG": str(self.workdir / "rotator.toml"),  # for the Credentials page
            },
        )
        self.airflow = airflow
        self.say("Airflow: creating its database and users (about 10 s on 2 cores) ...")
        began = time.monotonic()
        airflow.migrate()
        airflow.create_users(
            [
                {"username": "admin", "password": admin_pw, "role": "Admin"},
                {"username": "teamcity-bot", "password": bot_pw, "role": "Admin"},
            ]
        )
        self.stack.append(airflow.stop)
        self.say(f"Airflow: database and users ready in {time.monotonic() - began:.0f} s")
        self.say(
            "Airflow: starting the API server, scheduler, DAG processor and triggerer "
            "(about 15 s on 2 cores) ..."
        )
        began = time.monotonic()
        airflow.start(["api-server", "scheduler", "dag-processor", "triggerer"])
        self.say(
            f"Airflow at {airflow.url} after {time.monotonic() - began:.0f} s, "
            "secrets backend backends.airflow.RotatorSecretsBackend"
        )

        self.env = {
            **os.environ,
            "VAULT_TOKEN": tokens["rotator"],
            "TEAMCITY_TOKEN": tc_token,
            "AIRFLOW_ADMIN_USER": "admin",
            "AIRFLOW_ADMIN_PASSWORD": admin_pw,
        }
        self.env.pop("ROTATOR_CONFIG", None)
        self.admin_pw = admin_pw
        self.urls = {"vault_url": bao.url, "teamcity_url": sim.url, "airflow_url": airflow.url}
        self.write_config(standing=True)
        # The Airflow service account starts with the password an operator set by hand; Rotator
        # takes it over by storing it first (so that the token credential can log in with it).
        from backends.vault import VaultStore

        os.environ["VAULT_TOKEN"] = tokens["rotator"]
        VaultStore(url=bao.url).put_current(
            "airflow/connections/airflow_teamcity_bot",
            {"conn_type": "http", "host": airflow.url, "login": "teamcity-bot", "password": bot_pw},
            expected=None,
        )

    def write_config(self, standing: bool) -> None:
        """``rotator.toml`` for the stack this demo started; without ``standing``, the
        TeamCity -> Airflow token credential is out of it (step 5 retires it)."""
        import tomli_w

        header = HEADER if standing else f"{HEADER}\n{RETIRED}"
        config = tomli_w.dumps(demo_config(self.urls, standing=standing))
        (self.workdir / "rotator.toml").write_text(f"{header.rstrip()}\n\n{config}")

    def rotator(
        self, *args: str, show: bool = True, ok: tuple[int, ...] = (0,)
    ) -> subprocess.CompletedProcess[str]:
        audit = self.logs / "audit.jsonl"
        from rotator.output import terminal_width

        result = subprocess.run(
            [sys.executable, "-m", "rotator", *args, "--audit-file", str(audit)],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            # its tables are shown indented by 6: fit them to the demo's own terminal
            env={**self.env, "COLUMNS": str(terminal_width() - 6)},
            timeout=300,
            check=False,
        )
        if show:
            self.say(f"$ rotator {' '.join(args)}")
            for line in result.stdout.rstrip().splitlines():
                self.say(f"  {line}")
        if result.returncode not in ok:
            raise RotatorError(
                f"rotator {' '.join(args)} exited {result.returncode}: {result.stderr[-1500:]}"
            )
        return result

    def admin_headers(self) -> dict[str, str]:
        token = requests.post(
            f"{self.airflow.url}/auth/token",
            json={"username": "admin", "password": self.admin_pw},
            timeout=10,
        ).json()
        return {"Authorization": f"Bearer {token['access_token']}"}

    # -- the story -----------------------------------------------------------------------
    def rotate_and_show(self) -> None:
        self.step(1, "Rotator issues and stores every credential")
        self.rotator("rotate", "--all")
        self.rotator("status")
        param = self.sim.state.projects["DataPipelines"].parameters.get("env.AIRFLOW_API_TOKEN")
        self.say(
            f"TeamCity parameter env.AIRFLOW_API_TOKEN: type {param.type if param else None!r}, "
            "value written by the parameter updater (not readable over REST)"
        )
        self.show_credentials_page()

    def show_credentials_page(self) -> None:
        """Where Airflow's UI shows these credentials (Rotator's plugin), and what it says."""
        url = f"{self.airflow.url}/plugin/rotator-credentials"
        response = requests.get(
            f"{self.airflow.url}/rotator/api/v1/credentials",
            headers=self.admin_headers(),
            timeout=30,
        )
        if response.status_code != 200:
            answer = f"{response.status_code}: {response.text[:300]}"
            self.say(f"Airflow's Credentials page: {url} (its API answered {answer})")
            return
        states = ", ".join(f"{c['name']} {c['state']}" for c in response.json()["credentials"])
        self.say(f"Airflow's Credentials page: {url} (log in as admin): {states}")

    def build_triggers_dag(self, label: str, identity: bool = False) -> tuple[int, str]:
        headers = {
            "Authorization": f"Bearer {self.env['TEAMCITY_TOKEN']}",
            "Accept": "application/json",
        }
        build = requests.post(
            f"{self.sim.url}/app/rest/buildQueue",
            headers=headers,
            json={"buildType": {"id": BUILD_TYPE}},
            timeout=10,
        ).json()
        build_id = int(build["id"])
        self.sim.builds.start(build_id)  # an agent takes it and runs its step
        self.wait(
            f"Airflow to know DAG {DAG_ID}",
            lambda: (
                requests.get(
                    f"{self.airflow.url}/api/v2/dags/{DAG_ID}",
                    headers=self.admin_headers(),
                    timeout=10,
                ).ok
            ),
            timeout=240,
        )
        # What a TeamCity agent does: run the build step with the parameters it resolved.
        step_env = {
            **{k: v for k, v in os.environ.items() if k != "AIRFLOW_API_TOKEN"},
            "AIRFLOW_URL": self.airflow.url,
            "AIRFLOW_DAG_ID": DAG_ID,
            "TEAMCITY_BUILD_ID": str(build_id),
        }
        if identity:  # the build's own token, minted when it started; nothing of Rotator's
            step_env["AIRFLOW_AUTH"] = "identity"
            step_env["TEAMCITY_BUILD_OIDC_TOKEN"] = str(
                self.sim.oidc.parameter(build_id, "env.TEAMCITY_BUILD_OIDC_TOKEN")
            )
        else:
            step_env["AIRFLOW_API_TOKEN"] = self.sim.agent_parameter(BUILD_TYPE, STANDING_PARAMETER)
            self.used_tokens.add(step_env["AIRFLOW_API_TOKEN"])
        result = subprocess.run(
            ["bash", str(OPS / "teamcity" / "trigger-airflow-dag.sh")],
            capture_output=True,
            text=True,
            env=step_env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RotatorError(f"the TeamCity build step failed: {result.stderr.strip()[-500:]}")
        run_id = next(
            line.split(" run ")[1].split(" ")[0]
            for line in result.stdout.splitlines()
            if line.startswith("triggered")
        )
        self.sim.builds.finish(build_id)  # that step was its last
        how = (
            "with its own OIDC token (env.TEAMCITY_BUILD_OIDC_TOKEN; no AIRFLOW_API_TOKEN)"
            if identity
            else "with the pushed env.AIRFLOW_API_TOKEN"
        )
        self.say(
            f"{label}: TeamCity build {build_id} ran ops/teamcity/trigger-airflow-dag.sh "
            f"{how} -> Airflow DAG run {run_id}; the build finished: SUCCESS"
        )
        return build_id, run_id

    def run_state(self, run_id: str) -> str:
        response = requests.get(
            f"{self.airflow.url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}",
            headers=self.admin_headers(),
            timeout=10,
        )
        return str(response.json().get("state"))

    def task_state(self, run_id: str, task_id: str) -> str:
        response = requests.get(
            f"{self.airflow.url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}",
            headers=self.admin_headers(),
            timeout=10,
        )
        return str(response.json().get("state"))

    def polls_of(self, build_id: int) -> list[Any]:
        return [r for r in self.sim.requests if r.path == f"/app/rest/builds/id:{build_id}"]

    def follow_up_of(self, build_id: int) -> Any:
        """The build the DAG's operator queued for ``build_id`` (it passes the id along)."""
        for build in self.sim.builds.all(FOLLOW_UP):
            if build.properties.get("env.UPSTREAM_BUILD_ID") == str(build_id):
                return build
        return None

    def finish_run(
        self, build_id: int, run_id: str, while_deploy_waits: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Drive one DAG run: the sensor finds the triggering build finished; the build the
        operator queued is started and, once the triggerer polls it, finished; then report.

        The build is finished only after the trigger has polled it twice (it has then waited
        one poll interval): a trigger that fires within seconds of the deferral can race
        Airflow 3.3's LocalExecutor, which then reports the deferred try's exit after the
        resumed try started and marks the task failed ("state mismatch" in the scheduler log).
        """
        deploy = self.wait(
            f"the operator to queue a {FOLLOW_UP} build",
            lambda: self.follow_up_of(build_id) or self.run_state(run_id) == "failed",
        )
        if deploy is True:
            raise RotatorError(
                f"DAG run {run_id} failed before it queued a {FOLLOW_UP} build; its task logs "
                f"are under {self.airflow.log_dir}"
            )
        self.say(
            f"task deploy queued TeamCity build {deploy.id} of {FOLLOW_UP} as "
            f"{deploy.triggered_by} (properties {deploy.properties})"
        )
        deferred = self.wait(
            "task deploy to defer", lambda: self.task_state(run_id, "deploy") == "deferred"
        )
        self.say("task deploy: deferred, waiting in the triggerer (no worker slot held)")
        polled = len(self.polls_of(deploy.id))
        self.sim.builds.start(deploy.id)
        if while_deploy_waits is not None:
            while_deploy_waits(deploy.id)
        self.wait(
            f"the triggerer to poll build {deploy.id}",
            lambda: len(self.polls_of(deploy.id)) >= polled + 2,
        )
        self.sim.builds.finish(deploy.id)
        self.say(f"TeamCity build {deploy.id} finished: SUCCESS")
        state = self.wait(
            f"DAG run {run_id} to finish",
            lambda: self.run_state(run_id) in ("success", "failed") and self.run_state(run_id),
            timeout=240,
        )
        polls = self.polls_of(build_id) + self.polls_of(deploy.id)
        used = sorted({r.auth for r in polls})
        self.say(
            f"DAG run {run_id}: {state}; {len(polls)} polls of builds {build_id} and "
            f"{deploy.id}, authenticated as {', '.join(used)}"
        )
        return {
            "build": build_id,
            "run": run_id,
            "state": state,
            "polled_with": used,
            "deploy": {
                "build": deploy.id,
                "queued_by": deploy.triggered_by,
                "deferred": bool(deferred),
                "state": self.sim.builds.get(deploy.id).state,
            },
        }

    def trigger_and_poll(self) -> None:
        self.step(2, "a TeamCity build triggers an Airflow DAG run with the rotated Airflow token")
        build_id, run_id = self.build_triggers_dag("build A")
        self.step(
            3,
            f"the DAG checks build A (TeamCityBuildSensor), then runs {FOLLOW_UP} through "
            "TeamCityRunBuildOperator, deferred; token from OpenBao",
        )
        self.facts["first"] = self.finish_run(build_id, run_id)

    def rotate_mid_flight(self) -> None:
        self.step(4, "a forced rotation while the operator waits on its build; no call may fail")
        build_id, run_id = self.build_triggers_dag("build B")
        polls_after: list[int] = []

        def rotate(deploy_id: int) -> None:
            self.rotator("rotate", "--all", "--force")
            seen = len(self.polls_of(deploy_id))
            self.wait(
                f"two more polls of build {deploy_id} after the rotation",
                lambda: len(self.polls_of(deploy_id)) >= seen + 2,
                timeout=120,
            )
            polls_after.append(len(self.polls_of(deploy_id)) - seen)

        second = self.finish_run(build_id, run_id, while_deploy_waits=rotate)
        failed = [r for r in self.sim.requests if r.status in (401, 403)]
        self.say(f"TeamCity calls refused during and after the rotation: {len(failed)}")
        build_c, run_c = self.build_triggers_dag(
            "build C (after the rotation, with the new Airflow token)"
        )
        after = self.finish_run(build_c, run_c)
        self.facts["second"] = {
            **second,
            "refused": len(failed),
            "polls_after_rotation": polls_after[0] if polls_after else 0,
            "after_rotation": after,
        }
        self.rotator("verify")

    def retire_standing_token(self) -> None:
        self.step(5, "the standing TeamCity -> Airflow token is retired: builds will use identity")
        before = self.rotator(*AUDIT_BOTS, ok=(1,))
        self.say(
            "rotator audit exits 1: an Airflow token pushed into TeamCity while the identity "
            "rule 'publish' makes it unnecessary is a finding"
        )
        # No Rotator command retires a credential. What retiring means, done by hand: the
        # credential leaves rotator.toml (nothing rotates or pushes it again), every token it
        # issued is revoked at Airflow, its TeamCity parameter is deleted.
        from backends.vault import VaultStore
        from rotator.config import load

        spec = next(
            c for c in load(self.workdir / "rotator.toml").credentials if c.name == STANDING_NAME
        )
        store = VaultStore(url=self.urls["vault_url"])
        issued = {str(v.value.get("password")) for v in store.versions(spec.path)} - {"None", ""}
        if any(self.airflow_answer(t) != 200 for t in issued):  # else a refusal proves nothing
            raise RotatorError(f"Airflow refused a token of {STANDING_NAME} before it was retired")
        for token in issued:
            requests.get(
                f"{self.airflow.url}/api/v2/auth/logout",
                headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False,
                timeout=10,
            )
        answers = [self.airflow_answer(t) for t in issued | self.used_tokens]
        still = [code for code in answers if code < 400]
        if still:
            raise RotatorError(f"Airflow still accepts {len(still)} retired token(s)")
        deleted = requests.delete(
            f"{self.sim.url}/app/rest/projects/id:DataPipelines/parameters/{STANDING_PARAMETER}",
            headers={"Authorization": f"Bearer {self.env['TEAMCITY_TOKEN']}"},
            timeout=10,
        )
        if deleted.status_code != 204:
            raise RotatorError(
                f"TeamCity refused to delete {STANDING_PARAMETER}: {deleted.status_code}"
            )
        self.write_config(standing=False)
        self.say(
            f"{STANDING_NAME} is out of rotator.toml; its {len(issued)} token(s) in the store "
            "revoked at Airflow through /api/v2/auth/logout (each is now refused, HTTP "
            f"{'/'.join(map(str, sorted(set(answers))))}, as are the {len(self.used_tokens)} "
            "that builds A-C used); "
            f"{STANDING_PARAMETER} deleted from project DataPipelines; the store keeps its history"
        )
        self.facts["retired"] = {
            "flagged_before": _direction_line(before.stdout),
            "revoked": len(issued),
            "builds_used": len(self.used_tokens),
            "still_accepted": len(still),
            "refused_with": sorted(set(answers)),
            "parameter_deleted": deleted.status_code == 204,
        }

    def airflow_answer(self, token: str) -> int:
        """The status Airflow gives ``token`` (teamcity-bot is an Admin: 200 while valid;
        Airflow 3.3 answers a revoked token 403, an expired or forged one 401)."""
        answer = requests.get(
            f"{self.airflow.url}/api/v2/dags",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return answer.status_code

    def trigger_with_identity(self) -> None:
        self.step(
            6, "a build triggers the DAG with its own OIDC identity: nothing stored in TeamCity"
        )
        self.say(
            f"rotator.toml [identity]: issuer {self.sim.oidc.issuer}, audience {AUDIENCE}; rule "
            f"'publish' lets {BUILD_TYPE} builds start {DAG_ID} (conf keys teamcity_build_id, "
            "teamcity_sent_at)"
        )
        build_id, run_id = self.build_triggers_dag("build D", identity=True)
        run = requests.get(
            f"{self.airflow.url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}",
            headers=self.admin_headers(),
            timeout=10,
        ).json()
        self.say(
            f"DAG run {run_id}: triggered by {run.get('triggering_user_name')} "
            f"({run.get('triggered_by')}), checked by Rotator's endpoint /rotator/identity/v1"
        )
        result = self.finish_run(build_id, run_id)
        from rotator import audit

        decisions = [
            event
            for event in audit.read(self.logs / "audit.jsonl", credential="identity")
            if event.get("build_id") == build_id
        ]
        for event in decisions:
            self.say(
                f"audit: identity {event.get('outcome')} for build {build_id} "
                f"({event.get('rule') or event.get('reason')}), sub {event.get('sub')}"
            )
        after = self.rotator(*AUDIT_BOTS)
        self.facts["identity"] = {
            **result,
            "triggering_user": run.get("triggering_user_name"),
            "decisions": [(e.get("outcome"), e.get("rule")) for e in decisions],
            "standing_airflow_credentials": self.standing_airflow_credentials(),
            "audit": _direction_line(after.stdout),
        }

    def standing_airflow_credentials(self) -> list[str]:
        """The config's credentials that put an Airflow secret into TeamCity (the standing
        TeamCity -> Airflow direction): Airflow ones with a TeamCity push."""
        import tomllib

        config = tomllib.loads((self.workdir / "rotator.toml").read_text())
        return [
            c["name"]
            for c in config.get("credentials", [])
            if str(c.get("type", "")).startswith("airflow-") and c.get("push")
        ]

    def stop(self) -> None:
        while self.stack:
            with_errors = self.stack.pop()
            try:
                with_errors()
            except Exception as exc:  # stopping must go on
                self.out(f"   (while stopping: {type(exc).__name__}: {exc})")


def main(args: argparse.Namespace) -> int:
    workdir = (
        Path(args.workdir)
        if getattr(args, "workdir", None)
        else Path(tempfile.mkdtemp(prefix="rotator-demo-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, out=lambda text: print(text, flush=True))
    print(
        f"Rotator demo in {workdir}: everything runs on 127.0.0.1 and stops at the end.", flush=True
    )
    code = 0
    try:
        demo.start()
        demo.rotate_and_show()
        demo.trigger_and_poll()
        demo.rotate_mid_flight()
        demo.retire_standing_token()
        demo.trigger_with_identity()
    except RotatorError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        demo.step(7, "stopping everything the demo started")
        demo.stop()
        (workdir / "demo-facts.json").write_text(json.dumps(demo.facts, indent=2))
        print(
            f"   logs: {demo.logs} (audit trail: {demo.logs / 'audit.jsonl'}), "
            f"Airflow logs: {workdir / 'airflow' / 'logs'}",
            flush=True,
        )
        print(f"   the work directory stays for inspection: rm -r {workdir} when done", flush=True)
        print(f"   demo {'finished' if code == 0 else 'failed'} in {demo.elapsed()}", flush=True)
    return code


def _direction_line(audit_output: str) -> str | None:
    """The TeamCity -> Airflow line of ``rotator audit``'s text."""
    return next(
        (line for line in audit_output.splitlines() if line.startswith("TeamCity -> Airflow:")),
        None,
    )
