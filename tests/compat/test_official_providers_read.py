"""What Rotator's stores write, the official Airflow providers read unchanged.

The official ``VaultBackend`` (apache-airflow-providers-hashicorp) and
``SecretsManagerBackend`` (apache-airflow-providers-amazon) run in a fresh process with their
own AIRFLOW_HOME, against the same OpenBao and moto servers the stores wrote to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backends.store import open_store
from tests.fixtures.stores import store_env, store_options

pytest.importorskip("airflow.providers.hashicorp", reason="needs the hashicorp provider")
pytest.importorskip("airflow.providers.amazon", reason="needs the amazon provider")

READER = r"""
import json, os, sys
args = json.loads(sys.stdin.read())
out = {}
from airflow.providers.hashicorp.secrets.vault import VaultBackend
vault = VaultBackend(
    connections_path=args["vault_prefix"], variables_path=None, config_path=None,
    mount_point="secret", url=args["vault_url"], token=os.environ["VAULT_TOKEN"],
    kv_engine_version=2,
)
c = vault.get_connection("teamcity_default")
out["vault"] = {"conn_type": c.conn_type, "host": c.host, "login": c.login, "password": c.password,
                "port": c.port, "extra": c.extra_dejson}
from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend
aws = SecretsManagerBackend(
    connections_prefix=args["aws_prefix"], variables_prefix=None, config_prefix=None,
    endpoint_url=args["aws_url"], region_name="us-east-1",
)
c = aws.get_connection("teamcity_default")
out["aws"] = {"conn_type": c.conn_type, "host": c.host, "login": c.login, "password": c.password,
              "port": c.port, "extra": c.extra_dejson}
print("RESULT " + json.dumps(out))
"""


def test_official_backends_read_what_rotator_wrote(openbao, moto_server, tmp_path, ns, monkeypatch):
    env = store_env(openbao, moto_server)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    value = {
        "conn_type": "http",
        "host": "https://teamcity.example.com",
        "login": "airflow-bot",
        "password": "tok-compat-" + ns,
        "port": 8111,
        "extra": json.dumps({"verify": True}),
    }
    written = {}
    for kind, server in (("vault", {"openbao": openbao}), ("aws", {"moto": moto_server})):
        store = open_store(kind, **store_options(kind, ns=ns, **server))
        path = f"{store.connections_prefix}/teamcity_default"
        first = store.put_current(path, {**value, "password": "tok-old-" + ns}, expected=None)
        store.put_pending(path, value, rotation_id="r1", meta={"target_name": "x"})
        store.promote(path, rotation_id="r1", expected=first.id)
        written[kind] = store.connections_prefix

    args = {
        "vault_prefix": written["vault"],
        "vault_url": openbao.url,
        "aws_prefix": written["aws"],
        "aws_url": moto_server.url,
    }
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    child_env.update(env, AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [sys.executable, "-c", READER],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        env=child_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    seen = json.loads(line.removeprefix("RESULT "))
    for kind in ("vault", "aws"):
        assert seen[kind]["password"] == value["password"], kind  # the promoted one, not the old
        assert seen[kind]["host"] == value["host"]
        assert seen[kind]["login"] == value["login"]
        assert seen[kind]["port"] == 8111
        assert seen[kind]["conn_type"] == "http"
        assert seen[kind]["extra"] == {"verify": True}
