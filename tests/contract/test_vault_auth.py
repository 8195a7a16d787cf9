"""Vault/OpenBao logins other than a plain token, against the real dev server: AppRole and JWT,
one login per process, and a new login shortly before the token's TTL runs out. (Kubernetes
auth needs a Kubernetes API for TokenReview and is not exercised here.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import hvac
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backends.errors import ConfigError
from backends.store import open_store
from backends.vault_auth import _SESSIONS
from tests.fixtures.leaks import register_secret

POLICY = (
    'path "secret/data/*" { capabilities = ["create", "read", "update", "delete"] }\n'
    'path "secret/metadata/*" { capabilities = ["read", "list", "delete"] }\n'
)


@pytest.fixture
def admin(openbao):
    client = hvac.Client(url=openbao.url, token=openbao.token)
    client.sys.create_or_update_policy(name="rotator-test", policy=POLICY)
    return client


def enable(client: hvac.Client, method: str, path: str) -> None:
    if f"{path}/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method(method, path=path)


def test_approle_login_once_per_process_and_again_before_ttl_ends(
    openbao, admin, tmp_path, monkeypatch, ns
):
    mount = f"approle-{ns}"
    enable(admin, "approle", mount)
    admin.auth.approle.create_or_update_approle(
        "rotator",
        token_policies=["rotator-test"],
        token_ttl="4s",
        token_max_ttl="1h",
        mount_point=mount,
    )
    role_id = admin.auth.approle.read_role_id("rotator", mount_point=mount)["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id("rotator", mount_point=mount)["data"][
        "secret_id"
    ]
    register_secret(secret_id)
    (tmp_path / "secret-id").write_text(secret_id)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    options = {
        "url": openbao.url,
        "auth": "approle",
        "role_id": role_id,
        "auth_mount": mount,
        "secret_id_file": str(tmp_path / "secret-id"),
        "state_prefix": f"{ns}/rotator",
    }
    store = open_store("vault", **options)
    store.put_current(f"{ns}/airflow/connections/a", {"conn_type": "http"}, expected=None)
    session = next(s for k, s in _SESSIONS.items() if k[-1] == store.auth)
    assert session.logins == 1
    for _ in range(5):
        open_store("vault", **options).get_document(f"{ns}/airflow/connections/a")
    assert session.logins == 1, "one login per process, whatever the number of stores"
    deadline = time.monotonic() + 15
    while session.logins == 1:  # 80% of the 4 s TTL: the next call logs in again
        assert time.monotonic() < deadline, "never logged in again before the TTL ran out"
        store.get_document(f"{ns}/airflow/connections/a")
        time.sleep(0.2)
    assert store.get_document(f"{ns}/airflow/connections/a") == {"conn_type": "http"}


def test_jwt_login(openbao, admin, tmp_path, monkeypatch, ns):
    jwt = pytest.importorskip("jwt", reason="PyJWT signs the test's token (it comes with Airflow)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    mount = f"jwt-{ns}"
    enable(admin, "jwt", mount)
    admin.write(f"auth/{mount}/config", jwt_validation_pubkeys=[public])
    admin.write(
        f"auth/{mount}/role/rotator",
        role_type="jwt",
        user_claim="sub",
        bound_audiences=["rotator"],
        token_policies=["rotator-test"],
        token_ttl="1h",
    )
    now = datetime.now(UTC)
    token = jwt.encode(
        {"sub": "ci", "aud": "rotator", "iat": now, "exp": now + timedelta(minutes=5)},
        key,
        algorithm="RS256",
    )
    register_secret(token)
    (tmp_path / "jwt").write_text(token)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    store = open_store(
        "vault",
        url=openbao.url,
        auth="jwt",
        role="rotator",
        auth_mount=mount,
        jwt_file=str(tmp_path / "jwt"),
        state_prefix=f"{ns}/rotator",
    )
    store.put_current(f"{ns}/airflow/connections/j", {"conn_type": "http"}, expected=None)
    assert store.get_document(f"{ns}/airflow/connections/j") == {"conn_type": "http"}


def test_missing_auth_parameters_are_named(openbao, monkeypatch):
    monkeypatch.delenv("VAULT_ROLE_ID", raising=False)
    with pytest.raises(ConfigError, match="role_id"):
        open_store("vault", url=openbao.url, auth="approle")
    with pytest.raises(ConfigError, match="'role'"):
        open_store("vault", url=openbao.url, auth="kubernetes")
    store = open_store(
        "vault", url=openbao.url, auth="jwt", role="r", jwt_env="NO_SUCH_VAR_FOR_TEST"
    )
    with pytest.raises(ConfigError, match="NO_SUCH_VAR_FOR_TEST"):
        store.get_document("x/y")
