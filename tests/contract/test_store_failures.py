"""Bad things at the store: foreign or corrupt documents, tampering, wrong keys, no server.

Every case checks both halves of the contract: a clear error, and nothing overwritten.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat

import pytest

from backends.errors import ConfigError, CorruptDocument, StoreUnavailable
from backends.file import FileStore
from backends.store import open_store
from rotator.servers.process import free_port

SECRET = "tok-plaintext-must-not-leak-7781"


def test_a_foreign_lock_document_is_refused_and_left_alone(store_harness, ns):
    store, key = store_harness.store, f"{ns}-foreign"
    store_harness.plant_foreign_lock(key)
    before = store_harness.raw_lock(key)
    with pytest.raises(CorruptDocument) as err:
        store.acquire_lease(key, "me", ttl=10)
    assert key in str(err.value)
    assert store_harness.raw_lock(key) == before


def test_a_foreign_state_document_is_refused_and_left_alone(store_harness, conn_path):
    if not store_harness.state_documents:
        pytest.skip(f"the {store_harness.kind} store keeps stages in tables: no state document")
    store = store_harness.store
    store.put_current(conn_path, {"conn_type": "http", "password": "tok-aaaaaaaaaa"}, expected=None)
    store_harness.plant_foreign_state(conn_path)
    with pytest.raises(CorruptDocument):
        store.read(conn_path)
    with pytest.raises(CorruptDocument):
        store.put_current(
            conn_path, {"conn_type": "http"}, expected=store_harness.current_id(conn_path)
        )
    assert store.get_document(conn_path)  # the consumer document itself is untouched


def test_file_store_bytes_on_disk_hold_no_plaintext(tmp_path, monkeypatch):
    monkeypatch.delenv("ROTATOR_MASTER_KEY", raising=False)
    store = FileStore(path=tmp_path / "store.db")
    first = store.put_current("c/x", {"password": SECRET}, expected=None)
    store.put_pending("c/x", {"password": SECRET + "-next"}, rotation_id="r1")
    store.promote("c/x", rotation_id="r1", expected=first.id)
    store.close()
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes(), file.name
    assert stat.S_IMODE(os.stat(tmp_path / "store.db").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600


def test_file_store_with_the_wrong_key_refuses_to_decrypt(tmp_path, monkeypatch):
    monkeypatch.setenv("ROTATOR_MASTER_KEY", base64.b64encode(b"k" * 32).decode())
    FileStore(path=tmp_path / "s.db").put_current("c/x", {"password": SECRET}, expected=None)
    monkeypatch.setenv("ROTATOR_MASTER_KEY", base64.b64encode(b"j" * 32).decode())
    with pytest.raises(CorruptDocument) as err:
        FileStore(path=tmp_path / "s.db").read("c/x")
    assert "wrong master key" in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize("key", ["not base64!!", base64.b64encode(b"short").decode()])
def test_file_store_rejects_a_malformed_key(tmp_path, monkeypatch, key):
    monkeypatch.setenv("ROTATOR_MASTER_KEY", key)
    with pytest.raises(ConfigError) as err:
        FileStore(path=tmp_path / "s.db").put_current("c/x", {"a": "b"}, expected=None)
    assert "ROTATOR_MASTER_KEY" in str(err.value)
    assert key not in str(err.value)


def test_file_store_detects_a_row_moved_to_another_path(tmp_path, monkeypatch):
    monkeypatch.delenv("ROTATOR_MASTER_KEY", raising=False)
    store = FileStore(path=tmp_path / "s.db")
    store.put_current("c/victim", {"password": SECRET}, expected=None)
    store.put_current("c/attacker", {"password": "x" * 20}, expected=None)
    with sqlite3.connect(tmp_path / "s.db") as db:  # swap the sealed values between paths
        rows = dict(db.execute("SELECT path, sealed FROM versions").fetchall())
        db.execute("UPDATE versions SET sealed = ? WHERE path = 'c/attacker'", (rows["c/victim"],))
    with pytest.raises(CorruptDocument):
        store.read("c/attacker")


def test_file_store_on_a_file_that_is_not_a_database(tmp_path, monkeypatch):
    monkeypatch.delenv("ROTATOR_MASTER_KEY", raising=False)
    path = tmp_path / "s.db"
    path.write_text("this is somebody's notes file\n" * 100)
    with pytest.raises(CorruptDocument):
        FileStore(path=path).read("c/x")
    assert path.read_text().startswith("this is somebody's notes file")


@pytest.mark.parametrize("kind", ["vault", "aws"])
def test_an_unreachable_store_is_store_unavailable(kind, monkeypatch):
    port = free_port()
    monkeypatch.setenv("VAULT_TOKEN", "s.unreachable-test")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    options = (
        {"url": f"http://127.0.0.1:{port}", "timeout": 2}
        if kind == "vault"
        else {"region": "us-east-1", "endpoint_url": f"http://127.0.0.1:{port}", "timeout": 2}
    )
    store = open_store(kind, **options)
    with pytest.raises(StoreUnavailable) as err:
        store.get_document("airflow/connections/x")
    assert "s.unreachable-test" not in str(err.value)


def test_unknown_store_kind_and_options_are_bad_input():
    with pytest.raises(ConfigError):
        open_store("etcd")
    with pytest.raises(ConfigError):
        open_store("vault", url="http://127.0.0.1:1", colour="blue")
    with pytest.raises(ConfigError):
        open_store("vault", url="http://127.0.0.1:1", auth="ldap")
    with pytest.raises(ConfigError) as err:
        open_store("vault", url="http://127.0.0.1:1", token="s.pasted-into-config")
    assert "s.pasted-into-config" not in str(err.value)


def test_stored_document_is_exactly_the_connection_json(store, conn_path):
    value = {"conn_type": "http", "host": "h", "login": "l", "password": "tok-zzzzzzzzzz"}
    store.put_current(conn_path, value, expected=None, meta={"target_name": "t"})
    raw = store.get_document(conn_path)
    assert (json.loads(raw) if isinstance(raw, str) else raw) == value
