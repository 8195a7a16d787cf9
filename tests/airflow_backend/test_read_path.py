"""The backend's light read path (``backends.vault_read``, ``backends.aws_read``) against the
real OpenBao and moto servers: the same documents and the same errors as the full stores, a
clear error with no secret in it for every way a read can fail, and no hvac / boto3 in a task
process that reads with a token or with credentials from the environment.

Answers no real Vault or AWS gives (an HTML page, a malformed body, an AWS refusal moto does
not enforce) come from a small loopback HTTP server that answers one fixed response: nothing
is patched at the HTTP layer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hvac
import pytest

from backends import airflow as backend_module
from backends import aws_read
from backends.airflow import RotatorSecretsBackend
from backends.aws import AwsStore
from backends.aws_read import AwsReader, open_reader, sign
from backends.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    CorruptDocument,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.store import open_store
from backends.vault_read import VaultReader
from rotator.servers.moto import REGION, MotoServer
from tests.fixtures.stores import store_env

POLICY = Path(__file__).resolve().parents[2] / "ops" / "vault" / "airflow-policy.hcl"
ROOT = Path(__file__).resolve().parents[2]
VALUE = {"conn_type": "http", "host": "h", "password": "pw-read-path-123456"}


@pytest.fixture(autouse=True)
def fresh_process_state():
    backend_module._shared.clear()
    yield
    backend_module._shared.clear()


@pytest.fixture
def vault_env(openbao, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    return openbao


@pytest.fixture
def aws_env(moto_server, monkeypatch, tmp_path):
    for key, value in MotoServer.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setattr(aws_read, "BACKOFF", 0.01)
    return moto_server


class FixedAnswer:
    """A loopback HTTP server answering every request with one status, type and body."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.requests = 0
        answer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                answer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fixed_answer() -> Iterator:
    started: list[FixedAnswer] = []

    def start(status: int, content_type: str, body: bytes) -> FixedAnswer:
        started.append(FixedAnswer(status, content_type, body))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


HTML = b"<html><body><form>Please log in</form></body></html>"


# -- Vault ---------------------------------------------------------------------------------------
def test_vault_reader_reads_what_the_store_wrote_and_misses_what_it_deleted(vault_env, ns):
    store = open_store("vault", url=vault_env.url, state_prefix=f"{ns}/rotator")
    path = f"{ns}/airflow/connections/c1"
    store.put_current(path, VALUE, expected=None)
    reader = VaultReader(url=vault_env.url, state_prefix=f"{ns}/rotator")
    assert reader.get_document(path) == store.get_document(path) == VALUE
    with pytest.raises(NotFound, match="nothing stored at"):
        reader.get_document(f"{ns}/airflow/connections/missing")
    admin = hvac.Client(url=vault_env.url, token=vault_env.token)
    admin.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point="secret")
    for read in (reader.get_document, store.get_document):
        with pytest.raises(NotFound):
            read(path)
    with pytest.raises(ConfigError):
        reader.get_document(f"{ns}/airflow/connections/../../x")


def test_vault_reader_takes_the_store_options_and_refuses_the_same(vault_env, monkeypatch):
    VaultReader(url=vault_env.url, connections_prefix="a", config_prefix=None, role_id="r")
    for bad in ({"token": "s.pasted"}, {"secret_id": "x"}, {"bogus": 1}, {"auth": "ldap"}):
        with pytest.raises(ConfigError):
            VaultReader(url=vault_env.url, **bad)
    monkeypatch.delenv("VAULT_TOKEN")
    with pytest.raises(ConfigError, match="VAULT_TOKEN"):
        VaultReader(url=vault_env.url).get_document("airflow/connections/x")


def test_vault_refusals_are_access_denied_without_the_token(vault_env, ns, monkeypatch):
    admin = hvac.Client(url=vault_env.url, token=vault_env.token)
    admin.sys.create_or_update_policy(name="airflow", policy=POLICY.read_text())
    token = admin.auth.token.create(policies=["airflow"], ttl="10m")["auth"]["client_token"]
    open_store("vault", url=vault_env.url).put_current(
        f"{ns}/airflow/connections/c1", VALUE, expected=None
    )
    for given in (token, "s.not-a-real-token-123456"):
        monkeypatch.setenv("VAULT_TOKEN", given)
        with pytest.raises(AccessDenied, match="permission denied") as err:
            VaultReader(url=vault_env.url).get_document(f"{ns}/airflow/connections/c1")
        assert given not in str(err.value)


def test_vault_unreachable_html_and_malformed_answers_are_clear_errors(vault_env, fixed_answer):
    with pytest.raises(StoreUnavailable, match="cannot reach Vault for airflow/connections/x"):
        VaultReader(url=closed_port_url(), timeout=2).get_document("airflow/connections/x")
    portal = fixed_answer(200, "text/html; charset=utf-8", HTML)
    with pytest.raises(StoreUnavailable, match="answered 200 with text/html") as err:
        VaultReader(url=portal.url).get_document("airflow/connections/x")
    assert vault_env.token not in str(err.value) and "log in" not in str(err.value)
    odd = fixed_answer(200, "application/json", b'{"data": {"data": "not an object"}}')
    with pytest.raises(CorruptDocument, match="does not hold a KV v2 document"):
        VaultReader(url=odd.url).get_document("airflow/connections/x")
    down = fixed_answer(503, "application/json", b'{"errors": ["Vault is sealed"]}')
    with pytest.raises(StoreUnavailable, match="HTTP 503"):
        VaultReader(url=down.url).get_document("airflow/connections/x")
    teapot = fixed_answer(429, "application/json", b'{"errors": []}')
    with pytest.raises(StoreError, match="HTTP 429"):
        VaultReader(url=teapot.url).get_document("airflow/connections/x")


def test_vault_approle_reads_through_the_shared_login(vault_env, ns, tmp_path, monkeypatch):
    admin = hvac.Client(url=vault_env.url, token=vault_env.token)
    mount = f"approle-{ns}"
    admin.sys.enable_auth_method("approle", path=mount)
    admin.sys.create_or_update_policy(name="airflow", policy=POLICY.read_text())
    admin.auth.approle.create_or_update_approle(
        "airflow", token_policies=["airflow"], token_ttl="10m", mount_point=mount
    )
    role_id = admin.auth.approle.read_role_id("airflow", mount_point=mount)["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id("airflow", mount_point=mount)["data"][
        "secret_id"
    ]
    (tmp_path / "secret-id").write_text(secret_id)
    open_store("vault", url=vault_env.url).put_current(
        "airflow/connections/approle_read", VALUE, expected=None
    )
    monkeypatch.delenv("VAULT_TOKEN")
    backend = RotatorSecretsBackend(
        store="vault",
        url=vault_env.url,
        auth="approle",
        role_id=role_id,
        auth_mount=mount,
        secret_id_file=str(tmp_path / "secret-id"),
    )
    assert json.loads(backend.get_conn_value("approle_read")) == VALUE
    (first,) = approle_logins(admin, mount)
    admin.auth.token.revoke_accessor(first)  # revoked early: log in again once
    backend_module._shared.clear()
    assert json.loads(backend.get_conn_value("approle_read")) == VALUE
    (again,) = approle_logins(admin, mount)
    assert again != first


def approle_logins(admin: hvac.Client, mount: str) -> list[str]:
    """Accessors of the live tokens AppRole logins at ``mount`` created, as the server counts
    them (the reader's own login count is private to it)."""
    found = []
    for accessor in admin.auth.token.list_accessors()["data"]["keys"]:
        try:
            token = admin.auth.token.lookup_accessor(accessor)["data"]
        except hvac.exceptions.InvalidRequest:  # revoked or expired since the listing
            continue
        if token.get("path") == f"auth/{mount}/login":
            found.append(accessor)
    return found


# -- AWS -----------------------------------------------------------------------------------------
def test_aws_reader_reads_what_the_store_wrote(aws_env, ns):
    store = AwsStore(region=REGION, endpoint_url=aws_env.url, state_prefix=f"{ns}/rotator")
    path = f"{ns}/airflow/connections/c1"
    store.put_current(path, VALUE, expected=None)
    reader = open_reader(region=REGION, endpoint_url=aws_env.url, state_prefix=f"{ns}/rotator")
    assert isinstance(reader, AwsReader)
    assert json.loads(reader.get_document(path)) == VALUE == json.loads(store.get_document(path))
    with pytest.raises(NotFound, match="nothing stored at"):
        reader.get_document(f"{ns}/airflow/connections/missing")
    with pytest.raises(TypeError):  # AwsStore takes no unknown option; neither does this
        open_reader(region=REGION, bogus=1)


def test_aws_binary_and_deleted_secrets_fail_like_the_store(aws_env, ns):
    import boto3

    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_env.url)
    sm.create_secret(Name=f"{ns}/bin", SecretBinary=b"\x00\x01")
    sm.create_secret(Name=f"{ns}/gone", SecretString="x")
    sm.delete_secret(SecretId=f"{ns}/gone", RecoveryWindowInDays=7)
    reader = open_reader(region=REGION, endpoint_url=aws_env.url)
    store = AwsStore(region=REGION, endpoint_url=aws_env.url)
    for name, error in ((f"{ns}/bin", CorruptDocument), (f"{ns}/gone", Conflict)):
        for read in (reader.get_document, store.get_document):
            with pytest.raises(error):
                read(name)


def test_aws_unreachable_refused_throttled_and_html_are_clear_errors(aws_env, fixed_answer):
    with pytest.raises(StoreUnavailable, match="cannot reach AWS Secrets Manager for a/b"):
        open_reader(region=REGION, endpoint_url=closed_port_url(), timeout=2).get_document("a/b")
    refused = fixed_answer(
        400,
        "application/x-amz-json-1.1",
        b'{"__type": "com.amazonaws#AccessDeniedException", "message": "no"}',
    )
    with pytest.raises(AccessDenied, match=r"AWS refused access to a/b \(AccessDeniedException\)"):
        open_reader(region=REGION, endpoint_url=refused.url).get_document("a/b")
    assert refused.requests == 1
    throttled = fixed_answer(
        400, "application/x-amz-json-1.1", b'{"__type": "ThrottlingException"}'
    )
    with pytest.raises(StoreUnavailable, match="ThrottlingException"):
        open_reader(region=REGION, endpoint_url=throttled.url).get_document("a/b")
    assert throttled.requests == 3, "retried like botocore's standard mode"
    failing = fixed_answer(500, "application/x-amz-json-1.1", b'{"__type": "InternalServiceError"}')
    with pytest.raises(StoreUnavailable, match="InternalServiceError"):
        open_reader(region=REGION, endpoint_url=failing.url).get_document("a/b")
    assert failing.requests == 3
    portal = fixed_answer(200, "text/html", HTML)
    with pytest.raises(StoreUnavailable, match="answered 200 with text/html") as err:
        open_reader(region=REGION, endpoint_url=portal.url).get_document("a/b")
    assert "testing" not in str(err.value)


def test_aws_settings_the_reader_does_not_model_go_to_boto3(aws_env, tmp_path, monkeypatch):
    assert isinstance(open_reader(region=REGION), AwsReader)
    assert open_reader(region="eu-west-1").url == "https://secretsmanager.eu-west-1.amazonaws.com"
    assert open_reader(region="cn-north-1").url.endswith(".amazonaws.com.cn")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_env.url)
    assert open_reader(region=REGION).url == aws_env.url
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert open_reader(region=REGION).url.startswith("https://secretsmanager.")
    assert isinstance(open_reader(region="us-iso-east-1"), AwsStore)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert isinstance(open_reader(), AwsStore)  # no region: boto3 says NoRegionError
    config = tmp_path / "aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    config.write_text("[default]\nregion = eu-central-1\n")
    assert open_reader().region == "eu-central-1"
    config.write_text("[default]\nregion = eu-central-1\n[profile other]\nca_bundle = /x\n")
    assert isinstance(open_reader(), AwsReader)
    monkeypatch.setenv("AWS_PROFILE", "other")
    assert isinstance(open_reader(region=REGION), AwsStore)
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert isinstance(open_reader(region=REGION), AwsStore)


def test_sigv4_signature_is_botocores():
    """The signer against botocore's own SigV4Auth, same request, time and credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)
    body = json.dumps({"SecretId": "airflow/connections/x", "VersionStage": "AWSCURRENT"}).encode()
    base = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": aws_read.TARGET}
    for url, token in (
        ("https://secretsmanager.eu-west-1.amazonaws.com", None),
        ("http://127.0.0.1:5123", "session-token-value"),
    ):
        credentials = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
        ours = sign(url, "eu-west-1", body, dict(base), credentials, now)
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(base))
        request.context["timestamp"] = now.strftime("%Y%m%dT%H%M%SZ")
        auth = SigV4Auth(Credentials(*credentials), "secretsmanager", "eu-west-1")
        auth._modify_request_before_signing(request)
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        assert ours["Authorization"].endswith(f"Signature={expected}")
        assert (
            f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))},"
            in ours["Authorization"]
        )


# -- a task process ------------------------------------------------------------------------------
TASK = r"""
import json, sys
import airflow.secrets
before = set(sys.modules)
from backends.airflow import RotatorSecretsBackend
backend = RotatorSecretsBackend(**json.loads(sys.argv[1]))
value = backend.get_conn_value(sys.argv[2])
loaded = sorted(m for m in set(sys.modules) - before
                if m.split(".")[0] in ("hvac", "boto3", "botocore", "requests"))
print("RESULT " + json.dumps({"value": json.loads(value), "loaded": loaded}))
"""


def run_task(kwargs: dict, conn_id: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", TASK, json.dumps(kwargs), conn_id],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_a_task_reads_vault_and_aws_without_hvac_or_boto3(
    openbao, moto_server, ns, tmp_path, monkeypatch
):
    env = {
        **os.environ,
        **store_env(openbao, moto_server),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "PYTHONPATH": str(ROOT),
    }
    for key, value in env.items():
        if key.startswith(("AWS_", "VAULT_")):
            monkeypatch.setenv(key, value)
    for kind, options in (
        ("vault", {"url": openbao.url}),
        ("aws", {"region": REGION, "endpoint_url": moto_server.url}),
    ):
        open_store(kind, **options).put_current(
            f"{ns}/airflow/connections/task", VALUE, expected=None
        )
        kwargs = {"store": kind, "connections_prefix": f"{ns}/airflow/connections", **options}
        result = run_task(kwargs, "task", env)
        assert result == {"value": VALUE, "loaded": []}, kind

    # Keys in a shared credentials file: botocore's credential chain, still no boto3 client.
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    file_env = {
        k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    file_env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    kwargs = {
        "store": "aws",
        "region": REGION,
        "endpoint_url": moto_server.url,
        "connections_prefix": f"{ns}/airflow/connections",
    }
    result = run_task(kwargs, "task", file_env)
    assert result["value"] == VALUE
    assert "boto3" not in result["loaded"] and "botocore.credentials" in result["loaded"]
