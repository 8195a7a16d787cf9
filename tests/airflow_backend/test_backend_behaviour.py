"""The backend's own promises, in this process, against real stores: a cache shared by every
instance, negative caching, bounded staleness, lookup patterns, access denied stops the chain,
and compatibility with what the official providers store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import hvac
import pytest

from backends import airflow as backend_module
from backends.airflow import RotatorSecretsBackend
from backends.cache import DocumentCache
from backends.errors import ConfigError, NotFound, StoreUnavailable
from backends.store import open_store
from rotator.servers.openbao import OpenBao
from tests.fixtures.stores import store_options

POLICY = Path(__file__).resolve().parents[2] / "ops" / "vault" / "airflow-policy.hcl"


@pytest.fixture(autouse=True)
def fresh_process_state():
    backend_module._shared.clear()
    yield
    backend_module._shared.clear()


@pytest.fixture
def vault(openbao, monkeypatch, ns):
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    store = open_store("vault", **store_options("vault", openbao=openbao, ns=ns))
    return openbao, store


def make(openbao, ns, **kwargs) -> RotatorSecretsBackend:
    return RotatorSecretsBackend(
        store="vault",
        url=openbao.url,
        auth="token",
        mount="secret",
        connections_prefix=f"{ns}/airflow/connections",
        variables_prefix=f"{ns}/airflow/variables",
        **kwargs,
    )


def requests_to(openbao_log_count, _):
    return openbao_log_count


def test_instances_share_one_cache_and_one_store(vault, ns):
    openbao, store = vault
    store.put_current(
        f"{ns}/airflow/connections/c1",
        {"conn_type": "http", "password": "tok-aaaaaaaaaa"},
        expected=None,
    )
    first = make(openbao, ns)
    assert json.loads(first.get_conn_value("c1"))["password"] == "tok-aaaaaaaaaa"
    _, cache = first._shared()
    loads = cache.loads
    for _ in range(20):  # Airflow re-creates backends; each new one must hit the same cache
        assert make(openbao, ns).get_conn_value("c1") is not None
    assert cache.loads == loads


def test_missing_ids_are_negatively_cached(vault, ns):
    openbao, _ = vault
    backend = make(openbao, ns)
    assert backend.get_conn_value("nope") is None
    _, cache = backend._shared()
    loads = cache.loads
    assert backend.get_conn_value("nope") is None and backend.get_variable("nope") is None
    assert cache.loads == loads + 1  # the variable was a new id; the connection was remembered


def test_lookup_patterns_and_disabled_kinds(vault, ns):
    openbao, store = vault
    store.put_current(f"{ns}/airflow/connections/tc_main", {"conn_type": "http"}, expected=None)
    backend = make(openbao, ns, connections_lookup_pattern=r"^tc_")
    assert backend.get_conn_value("tc_main") is not None
    assert backend.get_conn_value("other") is None
    _, cache = backend._shared()
    assert cache.loads == 1, "ids outside the pattern must not reach the store"
    off = RotatorSecretsBackend(
        store="vault", url=openbao.url, connections_prefix=None, variables_prefix=None
    )
    assert off.get_conn_value("tc_main") is None and off.get_variable("x") is None


def test_access_denied_stops_the_chain(vault, ns, monkeypatch):
    """With Airflow's least-privilege policy (ops/vault/airflow-policy.hcl), reading outside
    airflow/... is a 403, which must become Airflow's authoritative deny."""
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied

    openbao, store = vault
    admin = hvac.Client(url=openbao.url, token=openbao.token)
    admin.sys.create_or_update_policy(name="airflow", policy=POLICY.read_text())
    token = admin.auth.token.create(policies=["airflow"], ttl="10m")["auth"]["client_token"]
    store.put_current(f"{ns}/airflow/connections/c1", {"conn_type": "http"}, expected=None)
    monkeypatch.setenv("VAULT_TOKEN", token)
    restricted = RotatorSecretsBackend(
        store="vault",
        url=openbao.url,
        connections_prefix=f"{ns}/airflow/connections",
        state_prefix=f"{ns}/rotator-x",
    )
    with pytest.raises(AirflowSecretsBackendAccessDenied) as err:
        restricted.get_conn_value("c1")
    assert token not in str(err.value)
    allowed = RotatorSecretsBackend(
        store="vault", url=openbao.url, connections_prefix="airflow/connections", state_prefix="x"
    )
    assert allowed.get_conn_value("does-not-exist") is None  # readable prefix: a plain miss


def test_stale_value_is_served_while_the_store_is_down(tmp_path, monkeypatch, ns):
    """A second, private OpenBao that the test stops: the last good value keeps being served
    for at most stale_ttl, then the error surfaces (Airflow moves on to its next backend)."""
    with OpenBao(tmp_path) as bao:
        monkeypatch.setenv("VAULT_TOKEN", bao.token)
        store = open_store("vault", url=bao.url, state_prefix="rotator")
        store.put_current(
            "airflow/connections/c1",
            {"conn_type": "http", "password": "tok-bbbbbbbbbb"},
            expected=None,
        )
        backend = RotatorSecretsBackend(
            store="vault", url=bao.url, cache_ttl=0, stale_ttl=300, timeout=1
        )
        assert backend.get_conn_value("c1") is not None
    _, cache = backend._shared()
    assert json.loads(backend.get_conn_value("c1"))["password"] == "tok-bbbbbbbbbb"
    assert cache.stale_served == 1


def test_cache_bounds_with_a_controlled_clock():
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    cache = DocumentCache(ttl=10, negative_ttl=5, stale_ttl=20)
    answers = iter([{"v": 1}, {"v": 2}])
    assert cache.get("k", lambda: next(answers), clock) == {"v": 1}
    now[0] = 9.9
    assert cache.get("k", lambda: pytest.fail("served from memory"), clock) == {"v": 1}
    now[0] = 10.0
    assert cache.get("k", lambda: next(answers), clock) == {"v": 2}

    def down():
        raise StoreUnavailable("down")

    now[0] = 39.9  # refreshed at 10: fresh until 20, stale-servable until 40
    assert cache.get("k", down, clock) == {"v": 2}
    now[0] = 40.1
    with pytest.raises(StoreUnavailable):
        cache.get("k", down, clock)

    def missing():
        raise NotFound("x")

    assert cache.get("m", missing, clock) is None
    now[0] = 45.0
    assert cache.get("m", lambda: pytest.fail("negative entry still fresh"), clock) is None


def test_secrets_in_kwargs_and_unbounded_staleness_are_refused():
    with pytest.raises(ConfigError):
        RotatorSecretsBackend(store="vault", url="http://x", token="s.pasted")
    with pytest.raises(ConfigError):
        RotatorSecretsBackend(store="vault", cache_ttl=3000, stale_ttl=3000)
    with pytest.raises(ConfigError):
        RotatorSecretsBackend(store="vault", cache_ttl="soon")
    # per-key AIRFLOW__WORKERS__SECRETS_BACKEND_KWARG__CACHE_TTL=30 arrives as a string
    assert RotatorSecretsBackend(store="vault", cache_ttl="30")._ttls[0] == 30.0


def test_reads_what_the_official_providers_store(vault, moto_server, ns, monkeypatch):
    """Formats the official VaultBackend and SecretsManagerBackend read (and users write by hand)."""
    openbao, _ = vault
    kv = hvac.Client(url=openbao.url, token=openbao.token).secrets.kv.v2
    kv.create_or_update_secret(
        path=f"{ns}/airflow/connections/as_json",
        mount_point="secret",
        secret={"conn_type": "postgres", "host": "db", "login": "u", "password": "pw-1234567890"},
    )
    kv.create_or_update_secret(
        path=f"{ns}/airflow/connections/as_uri",
        mount_point="secret",
        secret={"conn_uri": "postgres://u:pw-uri-123456@db:5432/x"},
    )
    kv.create_or_update_secret(
        path=f"{ns}/airflow/variables/v", mount_point="secret", secret={"value": "42"}
    )
    backend = make(openbao, ns)
    assert backend.get_connection("as_json").password == "pw-1234567890"
    assert backend.get_connection("as_uri").host == "db"
    assert backend.get_variable("v") == "42"

    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_server.url)
    sm.create_secret(
        Name=f"{ns}/airflow/connections/aws_json",
        SecretString=json.dumps({"conn_type": "http", "host": "h", "password": "pw-aws-1234567"}),
    )
    sm.create_secret(
        Name=f"{ns}/airflow/connections/aws_uri", SecretString="http://u:pw-aws-uri-1234@h:80"
    )
    sm.create_secret(Name=f"{ns}/airflow/variables/plain", SecretString="just a string")
    aws = RotatorSecretsBackend(
        store="aws",
        region="us-east-1",
        endpoint_url=moto_server.url,
        connections_prefix=f"{ns}/airflow/connections",
        variables_prefix=f"{ns}/airflow/variables",
    )
    assert aws.get_connection("aws_json").password == "pw-aws-1234567"
    assert aws.get_connection("aws_uri").login == "u"
    assert aws.get_variable("plain") == "just a string"


def test_async_variants(vault, ns):
    import asyncio

    openbao, store = vault
    store.put_current(
        f"{ns}/airflow/connections/c1", {"conn_type": "http", "login": "x"}, expected=None
    )
    store.put_current(f"{ns}/airflow/variables/v", {"value": "1"}, expected=None)
    backend = make(openbao, ns)
    assert asyncio.run(backend.aget_connection("c1")).login == "x"
    assert asyncio.run(backend.aget_variable("v")) == "1"


def test_importing_the_backend_loads_no_client_library():
    import subprocess
    import sys

    code = (
        "import sys, airflow.secrets; before = set(sys.modules); import backends.airflow; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in new if m.split('.')[0] in ('hvac', 'boto3', 'botocore', 'sqlalchemy', 'requests')))"
    )
    env = {**os.environ}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_forget_connection_makes_the_next_lookup_read_the_store(vault, ns):
    """What a TeamCity hook calls after a 401: the cached token may have been rotated since."""
    openbao, store = vault
    path = f"{ns}/airflow/connections/tc"
    first = store.put_current(
        path, {"conn_type": "http", "password": "tok-first-aaaa"}, expected=None
    )
    backend = make(openbao, ns, cache_ttl=300)
    assert "tok-first-aaaa" in backend.get_conn_value("tc")
    store.put_current(path, {"conn_type": "http", "password": "tok-second-bbbb"}, expected=first.id)
    assert "tok-first-aaaa" in backend.get_conn_value("tc")  # cached for 300 s
    make(openbao, ns, cache_ttl=300).forget_connection("tc")  # any instance: the cache is shared
    assert "tok-second-bbbb" in backend.get_conn_value("tc")
