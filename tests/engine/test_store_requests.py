"""What a rotation costs the store, counted on the wire, and the stage state kept in the lock.

Issue 13's budget: at most 8 store requests per rotation. Vault makes 7: the lock read (its
journal and the stage state), the current read, three lock writes (the lease taken with the
intent, "staged", the release with the last journal and the state), the pending write and the
promotion. AWS makes the same seven, its previous read from the state, plus, on an emulator
only, a re-put of the promoted version: 8 on moto, 7 on AWS's own endpoints, where that re-put
is skipped. One read and no write per idle credential. A regression shows here before it
shows in a benchmark.

The stage state (which version is previous, each version's metadata) lives in the
credential's lock document since; a store written by an older Rotator keeps it in a document
of its own, which must still be read, and is then recorded with the lock.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.errors import NotFound, StoreUnavailable
from backends.store import open_store
from bench.counting_proxy import CountingProxy
from rotator.audit import Audit
from rotator.config import parse
from rotator.engine import Engine
from tests.engine.conftest import token_config
from tests.fixtures.store_harness import options_of

BUDGET = {"vault": 7, "aws": 8}
"""Requests per forced rotation of a teamcity-token credential (no push), on OpenBao and moto."""


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


@pytest.mark.parametrize(
    ("endpoint", "emulated"),
    [
        (None, False),  # the region's public endpoint
        ("https://secretsmanager-fips.us-east-1.amazonaws.com", False),
        ("https://vpce-0a1b.secretsmanager.eu-west-1.vpce.amazonaws.com", False),
        ("https://secretsmanager.cn-north-1.amazonaws.com.cn", False),
        ("http://127.0.0.1:5000", True),
        ("https://localstack.internal:4566", True),
    ],
)
def test_the_promoted_version_is_re_put_only_for_an_emulator(
    endpoint: str | None, emulated: bool, monkeypatch
):
    """The eighth request on moto: AWS documents it as a (billed) no-op, so AWS's own endpoints
    (whichever way they are named) skip it; an endpoint that is not AWS's gets it."""
    from backends.aws import AwsStore

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    store = AwsStore(region="eu-west-1", endpoint_url=endpoint)
    assert store.emulator is emulated


@pytest.mark.parametrize("store_kind", ["aws"])
def test_previous_named_by_the_state_only_while_it_names_the_current_just_read(
    store, store_kind, teamcity_sim, teamcity_admin_token, monkeypatch, tmp_path
):
    """AWS's ``previous`` (its names only) comes from the state the last promotion recorded,
    no request; a label moved by anyone else makes the state's pair stale, and AWSPREVIOUS
    itself is read instead."""
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    options = options_of(store)
    engine, spec = _engine(store_kind, options, teamcity_sim.url, tmp_path)
    versions = [engine.rotate_one(spec, force=True).version for _ in range(3)]
    bound = open_store(store_kind, **options)
    bound.bind(spec.path, spec.name)
    assert bound.read(spec.path).id == versions[2]
    assert bound.read(spec.path, "previous", value=False).id == versions[1]

    # Someone else rolls back: AWSCURRENT on versions[1], AWSPREVIOUS on versions[2].
    open_store(store_kind, **options).rollback(spec.path, expected=versions[2])
    assert bound.read(spec.path).id == versions[1]
    previous = bound.read(spec.path, "previous", value=False)
    assert previous.id == versions[2]
    assert previous.meta["rotation_id"]  # its metadata, from the state, all the same


class _Dying:
    """A store that stops answering once ``dead``: a process killed at a fault point sends
    nothing more (not even its release)."""

    def __init__(self, store: Any) -> None:
        self._store, self.dead = store, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise StoreUnavailable("the process is gone")
            return attr(*args, **kwargs)

        return call


def test_a_crash_right_after_the_first_promotion_is_finished_not_undone(
    store, teamcity_sim, teamcity_admin_token, monkeypatch, tmp_path
):
    """The link between a value and its rotation (its metadata) must be in the store before
    anything else that records it is dropped: here, a credential's first promotion, after
    which the process dies, and the next run finds the journal at "staged" and must recognise
    the current value as that rotation's (it once revoked it as abandoned: the model's long
    run on AWS)."""
    from rotator import faults

    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    dying = _Dying(store)
    engine, spec = _engine(store.kind, options_of(store), teamcity_sim.url, tmp_path, dying)
    real_point = faults.point

    def crash_after_promote(name: str) -> None:
        if name == "after:promote":
            dying.dead = True
            raise faults.InjectedFault(name)
        real_point(name)

    monkeypatch.setattr(faults, "point", crash_after_promote)
    with pytest.raises(faults.InjectedFault):
        engine.rotate_one(spec, force=True)
    monkeypatch.setattr(faults, "point", real_point)
    promoted = store.read(spec.path)
    other = open_store(store.kind, **options_of(store))  # knows nothing the dead one meant
    other.release_lease(other.read_lease(spec.name))  # as if it had lapsed
    # The same store object goes on (a daemon's next pass), then another process.
    for _ in range(2):
        again, _ = _engine(store.kind, options_of(store), teamcity_sim.url, tmp_path, store)
        outcome = again.rotate_one(spec)
        assert outcome.result in ("rotated", "not-due"), outcome
        assert outcome.revoked == [], outcome
    current = store.read(spec.path)
    assert current.id == promoted.id
    alive = {t.name for t in teamcity_sim.state.find_user("airflow-bot").tokens.values()}
    assert current.meta["target_name"] in alive
