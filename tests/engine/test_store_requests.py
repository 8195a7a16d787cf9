"""What a rotation costs the store, counted on the wire, and the stage state kept in the lock.

Issue 13's budget: at most 8 store requests per rotation on Vault (the lock read and its four
writes, the current read, the pending write and the promotion), one read and no write per
idle credential. AWS pays two requests per compare-and-set (a version, then a label move),
so it has its own, larger budget. A regression shows here before it shows in a benchmark.

The stage state (which version is previous, each version's metadata) lives in the
credential's lock document since; a store written by an older Rotator keeps it in a document
of its own, which must still be read, and is then recorded with the lock.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.errors import NotFound
from backends.store import open_store
from bench.counting_proxy import CountingProxy
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from tests.engine.conftest import token_config
from tests.fixtures.store_harness import options_of

BUDGET = {"vault": 8, "aws": 16}
"""Requests per forced rotation of a teamcity-token credential (no push)."""


@pytest.fixture
def proxied(request, store_kind: str, store_servers: dict[str, Any], ns: str, tmp_path):
    """``(options through a counting proxy, proxy)`` for the kinds that talk HTTP."""
    from tests.fixtures.stores import store_options

    if store_kind == "file":
        pytest.skip("the file store makes no requests: SQLite transactions in-process")
    options = store_options(store_kind, tmp_path=tmp_path, ns=ns, **store_servers)
    key = "url" if store_kind == "vault" else "endpoint_url"
    proxy = CountingProxy(options[key])
    yield {**options, key: proxy.url}, proxy
    proxy.stop()


def _engine(kind: str, options: dict[str, Any], sim_url: str, tmp_path, store: Any = None):
    config = parse(token_config(kind, options, sim_url), "test.toml")
    engine = Engine.from_config(config, store, Audit(tmp_path / "audit.jsonl"))
    return engine, config.credentials[0]


def test_a_rotation_and_an_idle_pass_stay_within_their_request_budgets(
    proxied, store_kind, teamcity_sim, teamcity_admin_token, monkeypatch, tmp_path
):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    options, proxy = proxied
    engine, spec = _engine(store_kind, options, teamcity_sim.url, tmp_path)
    for _ in range(2):  # the first creates the documents; the second has a previous
        assert engine.rotate_one(spec, force=True).result == "rotated"
    proxy.reset()
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "rotated", outcome
    rotation = dict(proxy.counts)
    assert proxy.total() <= BUDGET[store_kind], rotation

    proxy.reset()
    assert engine.rotate_one(spec).result == "not-due"
    assert (proxy.total(), proxy.writes()) == (1, 0), dict(proxy.counts)

    # What the budget bought is still all there: a fresh reader sees the new current with its
    # metadata and the replaced one as previous, and nothing pending.
    reader = open_store(store_kind, **options)
    reader.bind(spec.path, spec.name)
    current = reader.read(spec.path)
    assert current.id == outcome.version and current.meta["rotation_id"] == outcome.rotation_id
    assert reader.read(spec.path, "previous").meta.get("target_name")
    with pytest.raises(NotFound):
        reader.read(spec.path, "pending")


class _OlderRotator:
    """A store as an older Rotator used it: stage state in a document of its own."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def bind(self, path: str, key: str) -> None:
        """Ignored: older Rotators kept no state in the lock."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.mark.usefixtures("store_servers")
def test_state_an_older_rotator_kept_apart_is_read_and_moves_into_the_lock(
    store, store_kind, teamcity_sim, teamcity_admin_token, monkeypatch, tmp_path
):
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    options = options_of(store)
    if store_kind == "file":
        pytest.skip("the file store keeps stages in its own tables, unchanged")
    older = _OlderRotator(open_store(store_kind, **options))
    old_engine, spec = _engine(store_kind, options, teamcity_sim.url, tmp_path, older)
    assert old_engine.rotate_one(spec, force=True).result == "rotated"
    legacy = older.read(spec.path)
    assert legacy.meta.get("target_name")
    _, journal = store.read_lock(spec.name)
    assert "state" not in str(journal)  # nothing of it in the lock yet

    engine, spec = _engine(store_kind, options, teamcity_sim.url, tmp_path)
    outcome = engine.rotate_one(spec, force=True)
    assert outcome.result == "rotated", outcome
    # The legacy current's name was known: it is retired after the grace period, not orphaned.
    _, journal = store.read_lock(spec.name)
    retiring = {entry["target_name"] for entry in journal["retire"]}
    assert legacy.meta["target_name"] in retiring, journal

    reader = open_store(store_kind, **options)
    reader.bind(spec.path, spec.name)
    assert reader.read(spec.path, "previous").meta["target_name"] == legacy.meta["target_name"]
    assert reader.read(spec.path).meta["rotation_id"] == outcome.rotation_id
