"""``Store.lock_names()`` on SQLite, OpenBao and moto: the credentials a store-only reader (the
Airflow UI's Credentials page without rotator.toml) finds, and nothing else.

A name that is a prefix of another (``ci``, ``ci-prod``) and a ``state_prefix`` that is a prefix
of another's are where a listing by prefix goes wrong; the least-privilege Vault token of
``ops/vault/airflow-ui-policy.hcl`` is what the page runs with.
"""

from __future__ import annotations

import hvac
import pytest

from backends.errors import AccessDenied
from backends.store import Store, open_store
from tests.fixtures.stores import store_options

OPS_VAULT = "ops/vault"
CONN = {"conn_type": "http", "host": "https://tc.example", "login": "bot", "password": "x" * 12}


def test_an_empty_store_lists_nothing(store: Store) -> None:
    assert store.lock_names() == []


def test_every_locked_or_journaled_credential_is_listed_once(store: Store, ns: str) -> None:
    for name in ("ci-prod", "ci"):  # a name that is a prefix of another
        lease = store.acquire_lease(name, "host-1", 30)
        store.write_journal(name, {"retire": []}, lease=lease, release=True)
    store.acquire_lease("held-now", "host-2", 30)  # held, never journaled
    store.write_journal("journal-only", {"rotation": None})  # no lease ever taken
    store.put_current(f"{ns}/airflow/connections/ci", CONN, expected=None)  # not a lock
    store.put_pending(f"{ns}/airflow/connections/ci", CONN, rotation_id="r1")
    assert store.lock_names() == ["ci", "ci-prod", "held-now", "journal-only"]
    assert store.lock_names() == ["ci", "ci-prod", "held-now", "journal-only"]  # read-only


@pytest.mark.parametrize("store_kind", ["vault", "aws"])
def test_a_state_prefix_that_prefixes_another_sees_only_its_own(
    store: Store, store_kind: str, store_servers: dict, ns: str
) -> None:
    """``<ns>/rotator`` against ``<ns>/rotator2`` (a string prefix) and against a prefix that
    sits inside its own locks folder (``<ns>/rotator/locks/x``: nested keys, never names)."""
    others = [
        open_store(store_kind, **{**store_options(store_kind, ns=ns, **store_servers), **extra})
        for extra in ({"state_prefix": f"{ns}/rotator2"}, {"state_prefix": f"{ns}/rotator/locks/x"})
    ]
    store.acquire_lease("ci", "host-1", 30)
    for other in others:
        other.acquire_lease("ci-prod", "host-2", 30)
        other.acquire_lease("other", "host-2", 30)
    assert store.lock_names() == ["ci"]
    assert [o.lock_names() for o in others] == [["ci-prod", "other"], ["ci-prod", "other"]]


@pytest.mark.parametrize("store_kind", ["aws"])
def test_aws_follows_next_token_to_the_last_page(store: Store, store_kind: str) -> None:
    names = [f"cred-{i}" for i in range(5)]
    for name in names:
        store.acquire_lease(name, "host-1", 30)
    store.LIST_PAGE = 2  # type: ignore[attr-defined]  # moto pages at 2: three pages
    assert store.lock_names() == names


@pytest.mark.parametrize("store_kind", ["vault"])
def test_the_airflow_ui_policy_lists_locks_and_nothing_more(
    store_kind: str, store_servers: dict, monkeypatch: pytest.MonkeyPatch, ns: str
) -> None:
    """The page's token (airflow + airflow-ui policies, as shipped) lists and reads lock
    documents under the default ``rotator`` prefix, and may not list pending values."""
    bao = store_servers["openbao"]
    admin = hvac.Client(url=bao.url, token=bao.token)
    for name in ("airflow", "airflow-ui"):
        with open(f"{OPS_VAULT}/{name}-policy.hcl") as policy:
            admin.sys.create_or_update_policy(name=name, policy=policy.read())
    token = admin.auth.token.create(policies=["airflow", "airflow-ui"], ttl="10m")["auth"]
    monkeypatch.setenv("UI_VAULT_TOKEN", token["client_token"])
    options = {"url": bao.url, "auth": "token", "mount": "secret", "token_env": "UI_VAULT_TOKEN"}
    writer = open_store("vault", url=bao.url, auth="token", mount="secret")
    mine = [f"{ns}-ci", f"{ns}-ci-prod"]
    for name in mine:
        lease = writer.acquire_lease(name, "host-1", 30)
        writer.write_journal(name, {"retire": []}, lease=lease, release=True)
    ui = open_store("vault", **options)
    assert set(mine) <= set(ui.lock_names())  # other tests may lock under rotator/ too
    assert ui.read_journal(mine[0]) == {"retire": []}
    with pytest.raises(AccessDenied):
        ui.acquire_lease(f"{ns}-new", "ui", 30)
    pending = hvac.Client(url=bao.url, token=token["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        pending.secrets.kv.v2.list_secrets(path="rotator/pending", mount_point="secret")
