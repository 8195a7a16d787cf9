"""An engine wired to real parts: a store (file, OpenBao or moto), the TeamCity simulator, the
real TeamCity issuer and parameter sink, and a clock the test moves (the simulator's too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from tests.fixtures.configs import VIEW_PIPELINES, teamcity_token
from tests.fixtures.leaks import register_secret


class Clock:
    def __init__(self, sim) -> None:
        self.offset = timedelta()
        self.sim = sim

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
        self.sim.advance_clock(delta.total_seconds())


def token_config(
    store_kind: str, store_options: dict[str, Any], sim_url: str, **credential: Any
) -> dict:
    spec = teamcity_token(grace="1d", permissions=list(VIEW_PIPELINES), **credential)
    return {
        "store": {"kind": store_kind, **store_options},
        "teamcity": {"url": sim_url, "token_env": "TEAMCITY_TOKEN", "timeout": 2, "retries": 2},
        "rotator": {"lock_ttl": "10s"},
        "credentials": [spec],
    }


@pytest.fixture
def make_engine(store, teamcity_sim, teamcity_admin_token, monkeypatch, tmp_path):
    """``make_engine(**credential_overrides) -> (engine, spec, clock)``."""
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    from tests.fixtures.store_harness import options_of

    def make(**overrides: Any):
        options = options_of(store)
        config = parse(
            token_config(store.kind, options, teamcity_sim.url, **overrides), "test.toml"
        )
        clock = Clock(teamcity_sim)
        audit = Audit(tmp_path / "audit.jsonl")
        engine = Engine.from_config(config, store, audit, clock=clock)
        return engine, config.credentials[0], clock

    yield make
    for user in teamcity_sim.state.users.values():
        for token in user.tokens.values():
            register_secret(token.value)


def alive(sim, user: str = "airflow-bot") -> set[str]:
    """Names of the user's tokens that still work at the simulator."""
    now = sim.state.now()
    return {
        t.name
        for t in sim.state.find_user(user).tokens.values()
        if t.expires is None or t.expires > now
    }


def works(sim, token: str) -> bool:
    import requests

    response = requests.get(
        f"{sim.url}/app/rest/server", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return response.status_code == 200
