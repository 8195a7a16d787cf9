"""A rotator.toml per test, on any store, pointing at the shared TeamCity simulator; a runner
for ``python -m rotator`` subprocesses whose output joins the leak scan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.fixtures.leaks import record_output, register_output, register_secret
from tests.fixtures.store_harness import options_of

CREDENTIAL = "airflow-teamcity-token"


def toml_value(value) -> str:
    return json.dumps(value)


@pytest.fixture
def rotator_cli(store, teamcity_sim, teamcity_admin_token, tmp_path):
    options = options_of(store)
    if store.kind != "file":
        options["state_prefix"] = store.state_prefix
    lines = ["[store]", f'kind = "{store.kind}"'] + [
        f"{k} = {toml_value(v)}" for k, v in options.items()
    ]
    lines += [
        "",
        "[teamcity]",
        f'url = "{teamcity_sim.url}"',
        "timeout = 2",
        "retries = 1",
        "",
        "[rotator]",
        'lock_ttl = "2s"',
        "",
        "[[credentials]]",
        f'name = "{CREDENTIAL}"',
        'type = "teamcity-token"',
        'user = "airflow-bot"',
        'conn_id = "teamcity_default"',
        'every = "7d"',
        'lifetime = "10d"',
        'grace = "1d"',
        'permissions = [{ project = "DataPipelines", permission = "view_project" }]',
        'push = [{ teamcity_project = "DataPipelines", parameter = "env.POLL_TOKEN" }]',
    ]
    config = tmp_path / "rotator.toml"
    config.write_text("\n".join(lines) + "\n")
    audit = tmp_path / "audit.jsonl"
    register_output(audit)
    env = {k: v for k, v in os.environ.items() if k != "ROTATOR_FAULT"}
    env["TEAMCITY_TOKEN"] = teamcity_admin_token

    def run(
        *args: str, fault: str | None = None, wait_for_lock: float = 0
    ) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + wait_for_lock
        while True:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "rotator",
                    "--config",
                    str(config),
                    *args,
                    "--audit-file",
                    str(audit),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
                check=False,
                env={**env, **({"ROTATOR_FAULT": fault} if fault else {})},
            )
            record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
            record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
            for user in teamcity_sim.state.users.values():
                for token in user.tokens.values():
                    register_secret(token.value)
            if result.returncode != 3 or time.monotonic() > deadline:
                return result
            time.sleep(0.2)  # a crashed holder's lease lapses within lock_ttl (2s); poll for it

    run.audit = audit  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    run.config = config  # type: ignore[attr-defined]
    return run
