"""The embedded file store on the read path: a reader creates nothing, says where it looked,
refuses files others may read, and cannot be fooled by edited version metadata.

The Airflow backend and the CLI's read commands open the store with ``read_only=True``; a
store opened from the wrong working directory or without ``ROTATOR_MASTER_KEY`` used to create
a fresh key and an empty database there and then serve nothing.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from backends.errors import AccessDenied, ConfigError, CorruptDocument, StoreError
from backends.file import FileStore
from tests.fixtures.leaks import register_secret

SECRET = "file-store-readonly-secret-0123456789"
PATH = "airflow/connections/teamcity_default"
KEY = base64.b64encode(b"r" * 32).decode()


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    register_secret(SECRET)
    monkeypatch.delenv("ROTATOR_MASTER_KEY", raising=False)


def seed(directory: Path) -> Path:
    """A store with a current and a previous version, a lease and a journal; closed."""
    store = FileStore(path=directory / "store.db")
    first = store.put_current(PATH, {"password": SECRET}, expected=None, meta={"issued": "x"})
    store.put_pending(PATH, {"password": SECRET + "-2"}, rotation_id="r2")
    store.promote(PATH, rotation_id="r2", expected=first.id)
    store.acquire_lease("teamcity_default", "host:1:r2", ttl=30)
    store.write_journal("teamcity_default", {"retire": []})
    store.close()
    return directory / "store.db"


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file below ``directory``: mode, mtime and bytes."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root, name)
            st = path.stat()
            content = path.read_bytes() if path.is_file() else b""
            out[str(path.relative_to(directory))] = (st.st_mode, st.st_mtime_ns, content)
    return out


def every_read(store: FileStore) -> None:
    store.read(PATH)
    store.get_document(PATH)
    store.versions(PATH)
    store.read_lease("teamcity_default")
    store.read_journal("teamcity_default")


def test_a_reader_in_the_wrong_directory_creates_nothing_and_says_where_it_looked(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    store = FileStore(read_only=True)  # the default path, relative to the working directory
    for read in (
        lambda: store.read(PATH),
        lambda: store.get_document(PATH),
        lambda: store.versions(PATH),
        lambda: store.read_lease("x"),
        lambda: store.read_journal("x"),
        store.check,
    ):
        with pytest.raises(ConfigError) as err:
            read()
        message = str(err.value)
        assert str(tmp_path / ".rotator" / "store.db") in message
        assert "working directory" in message and "`path`" in message
        assert "ROTATOR_MASTER_KEY" in message and "key_file" in message
        assert str(tmp_path / ".rotator" / "master.key") in message
    assert list(tmp_path.iterdir()) == []


def test_a_reader_without_the_key_creates_none_and_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("ROTATOR_MASTER_KEY", KEY)  # the writer had the key in its environment
    seed(tmp_path)
    monkeypatch.delenv("ROTATOR_MASTER_KEY")  # the reader does not
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError) as err:
        FileStore(path=tmp_path / "store.db", read_only=True).read(PATH)
    message = str(err.value)
    assert "$ROTATOR_MASTER_KEY is not set" in message
    assert str(tmp_path / "master.key") in message and "key_file" in message
    assert SECRET not in message
    assert snapshot(tmp_path) == before


def test_a_writer_never_makes_a_new_key_for_a_database_that_holds_values(tmp_path, monkeypatch):
    """A fresh key could open nothing stored; the old code made one and then failed to decrypt."""
    monkeypatch.setenv("ROTATOR_MASTER_KEY", KEY)
    seed(tmp_path)
    monkeypatch.delenv("ROTATOR_MASTER_KEY")
    store = FileStore(path=tmp_path / "store.db")
    with pytest.raises(ConfigError) as err:
        store.read(PATH)
    assert "holds sealed versions" in str(err.value) and "ROTATOR_MASTER_KEY" in str(err.value)
    with pytest.raises(ConfigError):
        store.put_current("c/other", {"a": "b"}, expected=None)
    assert not (tmp_path / "master.key").exists()


def test_a_read_only_store_in_a_read_only_directory_reads_everything_and_writes_nothing(
    tmp_path,
):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    seed(state)
    for name in ("store.db", "master.key"):
        (state / name).chmod(0o400)
    state.chmod(0o500)
    before = snapshot(tmp_path)
    try:
        store = FileStore(path=state / "store.db", read_only=True)
        assert store.read(PATH).value == {"password": SECRET + "-2"}
        assert [sorted(v.stages) for v in store.versions(PATH)] == [["current"], ["previous"]]
        assert store.read_lease("teamcity_default").holder == "host:1:r2"
        assert store.read_journal("teamcity_default") == {"retire": []}
        assert "2 version(s)" in store.check() and "read-only" in store.check()
        store.close()
        # no -wal, -shm or -journal left beside it, nothing touched, also when run as root
        assert snapshot(tmp_path) == before
    finally:
        state.chmod(0o700)


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.put_current(PATH, {"a": "b"}, expected="2"),
        lambda s: s.put_pending(PATH, {"a": "b"}, rotation_id="r3"),
        lambda s: s.discard_pending(PATH),
        lambda s: s.promote(PATH, rotation_id="r3", expected="2"),
        lambda s: s.rollback(PATH, expected="2"),
        lambda s: s.delete(PATH),
        lambda s: s.acquire_lease("other", "me", ttl=5),
        lambda s: s.write_journal("teamcity_default", {"step": "mint"}),
        lambda s: s.clear_journal("teamcity_default"),
    ],
)
def test_writes_to_a_read_only_store_are_refused_clearly(tmp_path, write):
    seed(tmp_path)
    before = snapshot(tmp_path)
    store = FileStore(path=tmp_path / "store.db", read_only=True)
    with pytest.raises(AccessDenied) as err:
        write(store)
    assert "read-only" in str(err.value) and str(tmp_path / "store.db") in str(err.value)
    store.close()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["store.db", "master.key"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666])
@pytest.mark.parametrize("read_only", [True, False])
def test_a_database_or_key_that_others_may_read_is_refused(tmp_path, name, mode, read_only):
    seed(tmp_path)
    (tmp_path / name).chmod(mode)
    mode_option = {"read_only": True} if read_only else {}  # the plain store refuses them too
    with pytest.raises(ConfigError) as err:
        FileStore(path=tmp_path / "store.db", **mode_option).read(PATH)
    message = str(err.value)
    assert str(tmp_path / name) in message
    assert f"{mode:04o}" in message and f"chmod 600 {tmp_path / name}" in message
    assert SECRET not in message
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode  # reported, not changed


def test_what_the_store_creates_is_private(tmp_path):
    store = FileStore(path=tmp_path / "deep" / "store.db")
    store.put_current(PATH, {"password": SECRET}, expected=None)
    store.close()
    assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) & 0o077 == 0
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["master.key", "store.db"]
    for name in ("master.key", "store.db"):
        assert stat.S_IMODE((tmp_path / "deep" / name).stat().st_mode) == 0o600


def test_a_store_that_cannot_be_created_says_where_and_why(tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    with pytest.raises(StoreError) as err:
        FileStore(path=tmp_path / "not-a-directory" / "store.db").read(PATH)
    assert "cannot create the store directory" in str(err.value)
    assert str(tmp_path / "not-a-directory") in str(err.value)


@pytest.mark.parametrize(
    "column, value",
    [
        ("meta", json.dumps({"issued": "x", "target_name": "rotator-other-token"})),
        ("meta", json.dumps({"rotation_id": "r2", "expires": "2999-01-01T00:00:00+00:00"})),
        ("created", "2999-01-01T00:00:00+00:00"),
    ],
)
def test_edited_version_metadata_is_refused(tmp_path, column, value):
    """Metadata is what retirement and due-ness read: it is bound to the sealed value."""
    seed(tmp_path)
    update = {
        "meta": "UPDATE versions SET meta = ?",
        "created": "UPDATE versions SET created = ?",
    }[column]
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(update, (value,))
    db.close()
    store = FileStore(path=tmp_path / "store.db")
    with pytest.raises(CorruptDocument) as err:
        store.read(PATH)
    assert "tampered" in str(err.value)
    with pytest.raises(CorruptDocument):
        store.versions(PATH)


def test_rows_sealed_before_metadata_was_bound_still_open(tmp_path, monkeypatch):
    """A row written with the earlier associated data (path and version only)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    monkeypatch.setenv("ROTATOR_MASTER_KEY", KEY)
    store = FileStore(path=tmp_path / "store.db")
    store.read_lease("create-the-schema")
    store.close()
    key = base64.b64decode(KEY)
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps({"password": SECRET}).encode(), b"c/old\x001")
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute(
            "INSERT INTO versions (id, path, created, nonce, sealed, meta) VALUES (?,?,?,?,?,?)",
            (1, "c/old", "2026-01-01T00:00:00+00:00", nonce, sealed, '{"rotation_id": "r1"}'),
        )
        db.execute("INSERT INTO stages (path, stage, version) VALUES ('c/old', 'current', 1)")
    db.close()
    found = FileStore(path=tmp_path / "store.db", read_only=True).read("c/old")
    assert found.value == {"password": SECRET} and found.meta == {"rotation_id": "r1"}


def test_a_database_left_in_wal_mode_is_read_and_converted(tmp_path):
    """Earlier versions kept the database in WAL mode, which a reader cannot use read-only."""
    seed(tmp_path)
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
    db.close()
    store = FileStore(path=tmp_path / "store.db")
    assert store.read(PATH).value == {"password": SECRET + "-2"}
    store.close()
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()


def test_the_cli_read_mode_reads_a_store_not_created_yet_as_empty(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    store = FileStore(read_only=True, missing_ok=True)
    assert store.versions(PATH) == [] and store.read_lease("x") is None
    assert "no database yet at" in store.check()
    assert str(tmp_path / ".rotator" / "store.db") in caplog.text
    assert list(tmp_path.iterdir()) == []
