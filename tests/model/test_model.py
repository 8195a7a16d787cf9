"""The model-based fault suite (issue 11): a hypothesis state machine drives the real engine
against the TeamCity simulator and each real store, with crashes at every fault point, target
and store faults, clock moves, rollbacks, races, a second install and config changes, and
checks DESIGN.md's invariants after every rule (``world.py``).

CI budget: ``MODEL_EXAMPLES`` x ``MODEL_STEPS`` rules per store (defaults below: >= 2,000 rules
across the three stores), derandomized, so a run is repeatable. ``bench/model_run.py`` is the
long run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from rotator import faults
from rotator.airflow_api import AirflowApi
from rotator.spec import AirflowSettings
from tests.fixtures.outage import OutageProxy
from tests.fixtures.stores import KINDS
from tests.model.machines import airflow_machine, token_machine
from tests.model.world import STATS, World

EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "30"))
STEPS = int(os.environ.get("MODEL_STEPS", "25"))


def ci_settings(examples: int = EXAMPLES, steps: int = STEPS) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
    )


@pytest.fixture
def model_ctx(store_kind, store_servers, teamcity_sim, teamcity_admin_token, tmp_path, monkeypatch):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    monkeypatch.delenv("ROTATOR_FAULT", raising=False)
    ctx = {
        "sim": teamcity_sim,
        "admin_token": teamcity_admin_token,
        "store_kind": store_kind,
        "servers": store_servers,
        "tmp": tmp_path,
    }
    hooks: dict[str, World] = {}

    def point(name: str) -> None:
        world = hooks.get("world")
        if world is not None:
            world.point(name)
        else:
            ORIGINAL(name)

    ORIGINAL = faults.point
    monkeypatch.setattr(faults, "point", point)
    ctx["hooks"] = hooks
    return ctx


@pytest.mark.parametrize("store_kind", KINDS)
def test_token_model(model_ctx):
    machine = token_machine(model_ctx)
    before = sum(STATS.rules.values())
    run_state_machine_as_test(machine, settings=ci_settings())
    assert sum(STATS.rules.values()) > before


AIRFLOW_EXAMPLES = int(os.environ.get("MODEL_AIRFLOW_EXAMPLES", "5"))
AIRFLOW_STEPS = int(os.environ.get("MODEL_AIRFLOW_STEPS", "15"))


@pytest.mark.airflow
@pytest.mark.parametrize("store_kind", KINDS)
def test_airflow_model(model_ctx, airflow_api, monkeypatch):
    for key, value in airflow_api.env.items():
        monkeypatch.setenv(key, value)
    proxy = OutageProxy(int(airflow_api.url.rsplit(":", 1)[1]))
    model_ctx.update(airflow=airflow_api, proxy=proxy)
    try:
        run_state_machine_as_test(
            airflow_machine(model_ctx), settings=ci_settings(AIRFLOW_EXAMPLES, AIRFLOW_STEPS)
        )
    finally:
        proxy.close()
        # Other suites expect the bot's original password.
        AirflowApi(AirflowSettings(url=airflow_api.url)).set_password(*airflow_api.bot)
