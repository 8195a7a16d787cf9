"""What importing the provider costs a task: no hvac, no boto3, none of Rotator's engine or
stores (checked in a fresh interpreter, where nothing else has imported them yet)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rotator.provider.teamcity.errors import TeamCityConfigError
from rotator.provider.teamcity.operators import TeamCityRunBuildOperator, idempotency_tag
from rotator.provider.teamcity.sensors import TeamCityBuildSensor

HEAVY = [
    "hvac",
    "boto3",
    "botocore",
    "rotator.engine",
    "rotator.config",
    "rotator.cli",
    "backends.store",
    "backends.vault",
    "backends.aws",
    "backends.file",
]


def test_importing_the_operator_and_sensor_stays_light():
    code = (
        "import json, sys\n"
        "import rotator.provider.teamcity.operators, rotator.provider.teamcity.sensors\n"
        "import rotator.provider.teamcity.triggers, rotator.provider.teamcity.hooks\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_bad_arguments_fail_when_the_dag_is_parsed():
    with pytest.raises(TeamCityConfigError, match="build_type_id must be"):
        TeamCityRunBuildOperator(task_id="t", build_type_id="")
    with pytest.raises(TeamCityConfigError, match="poll_interval must be > 0"):
        TeamCityRunBuildOperator(task_id="t", build_type_id="X", poll_interval=0)
    with pytest.raises(TeamCityConfigError, match="tags must be a list"):
        TeamCityRunBuildOperator(task_id="t", build_type_id="X", tags="one")
    with pytest.raises(TeamCityConfigError, match="give build_id, or build_type_id"):
        TeamCityBuildSensor(task_id="s")
    with pytest.raises(TeamCityConfigError, match="add a branch or a tag"):
        TeamCityBuildSensor(task_id="s", build_type_id="X")
    with pytest.raises(TeamCityConfigError, match="success_states must be some of"):
        TeamCityBuildSensor(task_id="s", build_id=1, success_states=["green"])


def test_the_idempotency_tag_is_stable_per_task_instance_and_locator_safe():
    one = idempotency_tag("d", "manual__2026-01-01T00:00:00+00:00", "t", -1)
    assert one == idempotency_tag("d", "manual__2026-01-01T00:00:00+00:00", "t", -1)
    assert one != idempotency_tag("d", "manual__2026-01-01T00:00:00+00:00", "t", 0)
    assert one.startswith("airflow-") and all(c.isalnum() or c == "-" for c in one)
