"""Keys and a verifier over an in-memory JWKS with a hand-driven clock (the HTTP side is
tested against the simulator in ``tests/teamcity_sim`` and ``test_endpoint.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.config import parse
from tests.identity.tokens import AUDIENCE, ISSUER, Key, new_key


@pytest.fixture(scope="session")
def key() -> Key:
    return new_key()


@pytest.fixture(scope="session")
def other_key() -> Key:
    return new_key()


def settings(allow: list[dict[str, Any]] | None = None, **identity: Any) -> Any:
    table = {"issuer": ISSUER, "audience": AUDIENCE, **identity}
    if allow is not None:
        table["allow"] = allow
    return parse({"identity": table}, "test.toml").identity


class Jwks:
    """A JWKS "endpoint" the cache calls (``fetch``), which a test can take down."""

    def __init__(self, *keys: Key) -> None:
        self.keys = list(keys)
        self.down = False
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> dict[str, Any]:
        from rotator.identity.jwks import JwksUnavailable

        self.calls += 1
        if self.down:
            raise JwksUnavailable("the JWKS endpoint answered HTTP 503")
        return {"keys": [k.jwk for k in self.keys]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
