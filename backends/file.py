"""The embedded store: one SQLite file, every value sealed with AES-GCM. Zero setup.

Why SQLite: its transactions make each store operation atomic across processes on one host
(``BEGIN IMMEDIATE`` takes the write lock before reading, so compare-and-set and lease
takeover cannot interleave). Why AES-GCM with the path and version id as associated data: a
row copied to another path or version fails to decrypt instead of serving the wrong secret.

The key is 32 random bytes, from ``ROTATOR_MASTER_KEY`` (base64) or a key file (created with
mode 0600 beside the database when missing). The database file is kept at mode 0600. Journal
records and version metadata hold no secrets and are stored as plain JSON.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from backends.errors import (
    ConfigError,
    Conflict,
    CorruptDocument,
    LeaseLost,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.lease import LeaseRecord, held_by_other, new_record, released, renewed, utcnow
from backends.store import STAGES, Lease, Version, check_document, check_path, expect_current

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    created TEXT NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_path ON versions (path);
CREATE TABLE IF NOT EXISTS stages (
    path TEXT NOT NULL,
    stage TEXT NOT NULL,
    version INTEGER NOT NULL REFERENCES versions (id),
    PRIMARY KEY (path, stage)
);
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (key TEXT PRIMARY KEY, record TEXT NOT NULL);
"""

DEFAULT_PATH = ".rotator/store.db"


class FileStore:
    """``[store] kind = "file"``: ``path`` (default ``.rotator/store.db``), ``key_file``
    (default ``master.key`` beside the database), ``key_env`` (default ``ROTATOR_MASTER_KEY``).
    """

    kind: ClassVar[str] = "file"

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        key_file: str | os.PathLike[str] | None = None,
        key_env: str = "ROTATOR_MASTER_KEY",
        connections_prefix: str | None = "airflow/connections",
        variables_prefix: str | None = "airflow/variables",
        config_prefix: str | None = "airflow/config",
        state_prefix: str = "rotator",
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.key_file = Path(key_file) if key_file else self.path.parent / "master.key"
        self.key_env = key_env
        self.connections_prefix = connections_prefix
        self.variables_prefix = variables_prefix
        self.config_prefix = config_prefix
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._aead: Any = None

    def __repr__(self) -> str:
        return f"FileStore(path={str(self.path)!r})"

    # -- plumbing --------------------------------------------------------------------------
    def _cipher(self) -> Any:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._load_key())
        return self._aead

    def _load_key(self) -> bytes:
        encoded = os.environ.get(self.key_env)
        source = f"${self.key_env}"
        if not encoded:
            source = str(self.key_file)
            if not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
            encoded = self.key_file.read_text().strip()
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ConfigError(f"master key in {source} is not base64") from None
        if len(key) != 32:
            raise ConfigError(f"master key in {source} must be 32 bytes (base64), got {len(key)}")
        return key

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(f"{self.path}{suffix}", 0o600)
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            conn.execute("ROLLBACK")
            raise self._translate(exc) from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _translate(self, exc: sqlite3.DatabaseError) -> StoreError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return CorruptDocument(f"{self.path} is not a Rotator store database; left untouched")
        if isinstance(exc, sqlite3.OperationalError):
            return StoreUnavailable(f"cannot use the store database {self.path}: {text}")
        return StoreError(f"store database {self.path}: {text}")

    @staticmethod
    def _aad(path: str, version: int) -> bytes:
        return f"{path}\x00{version}".encode()

    def _seal(self, path: str, version: int, value: dict[str, Any]) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, json.dumps(value).encode(), self._aad(path, version))
        return nonce, sealed

    def _open(self, path: str, version: int, nonce: bytes, sealed: bytes) -> dict[str, Any]:
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._cipher().decrypt(nonce, sealed, self._aad(path, version))
        except InvalidTag:
            raise CorruptDocument(
                f"{path!r} version {version}: cannot decrypt (wrong master key, or the row "
                "was tampered with or moved)"
            ) from None
        return json.loads(plain)

    def _stages_of(self, conn: sqlite3.Connection, path: str) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for stage, version in conn.execute(
            "SELECT stage, version FROM stages WHERE path = ?", (path,)
        ):
            out.setdefault(version, set()).add(stage)
        return out

    def _version(self, conn: sqlite3.Connection, path: str, version: int) -> Version:
        row = conn.execute(
            "SELECT created, nonce, sealed, meta FROM versions WHERE id = ? AND path = ?",
            (version, path),
        ).fetchone()
        if row is None:
            raise NotFound(f"{path!r} has no version {version}")
        created, nonce, sealed, meta = row
        stages = self._stages_of(conn, path).get(version, set())
        return Version(
            id=str(version),
            value=self._open(path, version, nonce, sealed),
            stages=frozenset(stages),
            created=datetime.fromisoformat(created),
            meta=json.loads(meta),
        )

    def _stage(self, conn: sqlite3.Connection, path: str, stage: str) -> int | None:
        row = conn.execute(
            "SELECT version FROM stages WHERE path = ? AND stage = ?", (path, stage)
        ).fetchone()
        return None if row is None else int(row[0])

    def _insert(
        self,
        conn: sqlite3.Connection,
        path: str,
        value: dict[str, Any],
        meta: Mapping[str, str] | None,
    ) -> int:
        (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM versions").fetchone()
        version = int(last) + 1
        nonce, sealed = self._seal(path, version, value)
        conn.execute(
            "INSERT INTO versions (id, path, created, nonce, sealed, meta) VALUES (?,?,?,?,?,?)",
            (version, path, utcnow().isoformat(), nonce, sealed, json.dumps(dict(meta or {}))),
        )
        return version

    @staticmethod
    def _set_stage(conn: sqlite3.Connection, path: str, stage: str, version: int | None) -> None:
        if version is None:
            conn.execute("DELETE FROM stages WHERE path = ? AND stage = ?", (path, stage))
        else:
            conn.execute(
                "INSERT INTO stages (path, stage, version) VALUES (?, ?, ?) "
                "ON CONFLICT (path, stage) DO UPDATE SET version = excluded.version",
                (path, stage, version),
            )

    # -- documents -------------------------------------------------------------------------
    def get_document(self, path: str) -> dict[str, Any]:
        return self.read(path).value

    def read(self, path: str, stage: str = "current") -> Version:
        check_path(path)
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        with self._tx(write=False) as conn:
            version = self._stage(conn, path, stage)
            if version is None:
                raise NotFound(f"{path!r} has no {stage} version")
            return self._version(conn, path, version)

    def read_version(self, path: str, version_id: str) -> Version:
        check_path(path)
        if not str(version_id).isdigit():
            raise NotFound(f"{path!r} has no version {version_id!r}")
        with self._tx(write=False) as conn:
            return self._version(conn, path, int(version_id))

    def versions(self, path: str) -> list[Version]:
        check_path(path)
        with self._tx(write=False) as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM versions WHERE path = ? ORDER BY id DESC", (path,)
                )
            ]
            return [self._version(conn, path, v) for v in ids]

    def put_current(
        self,
        path: str,
        value: dict[str, Any],
        *,
        expected: str | None,
        meta: Mapping[str, str] | None = None,
    ) -> Version:
        check_path(path)
        check_document(path, value)
        with self._tx() as conn:
            current = self._stage(conn, path, "current")
            expect_current(path, current, expected)
            version = self._insert(conn, path, value, meta)
            self._set_stage(conn, path, "previous", current)
            self._set_stage(conn, path, "current", version)
            return self._version(conn, path, version)

    def put_pending(
        self,
        path: str,
        value: dict[str, Any],
        *,
        rotation_id: str,
        meta: Mapping[str, str] | None = None,
    ) -> Version:
        check_path(path)
        check_document(path, value)
        full_meta = {**dict(meta or {}), "rotation_id": rotation_id}
        with self._tx() as conn:
            for stage in ("pending", "current"):
                existing = self._stage(conn, path, stage)
                if existing is not None:
                    found = self._version(conn, path, existing)
                    if found.meta.get("rotation_id") == rotation_id:
                        if found.value != value:
                            raise Conflict(
                                f"{path!r}: rotation {rotation_id} already staged another value"
                            )
                        return found
            version = self._insert(conn, path, value, full_meta)
            self._set_stage(conn, path, "pending", version)
            return self._version(conn, path, version)

    def discard_pending(self, path: str, *, rotation_id: str | None = None) -> None:
        check_path(path)
        with self._tx() as conn:
            pending = self._stage(conn, path, "pending")
            if pending is None:
                return
            if rotation_id is not None:
                meta = json.loads(
                    conn.execute("SELECT meta FROM versions WHERE id = ?", (pending,)).fetchone()[0]
                )
                if meta.get("rotation_id") != rotation_id:
                    return
            self._set_stage(conn, path, "pending", None)

    def promote(self, path: str, *, rotation_id: str, expected: str | None) -> Version:
        check_path(path)
        with self._tx() as conn:
            current = self._stage(conn, path, "current")
            pending = self._stage(conn, path, "pending")
            if current is not None:
                found = self._version(conn, path, current)
                if found.meta.get("rotation_id") == rotation_id:
                    return found  # already promoted by this rotation: roll-forward is a no-op
            if pending is None:
                raise Conflict(f"{path!r}: no pending version to promote")
            staged = self._version(conn, path, pending)
            if staged.meta.get("rotation_id") != rotation_id:
                raise Conflict(
                    f"{path!r}: pending belongs to rotation {staged.meta.get('rotation_id')}, "
                    f"not {rotation_id}"
                )
            expect_current(path, current, expected)
            self._set_stage(conn, path, "previous", current)
            self._set_stage(conn, path, "current", pending)
            self._set_stage(conn, path, "pending", None)
            return self._version(conn, path, pending)

    def rollback(self, path: str, *, expected: str) -> Version:
        check_path(path)
        with self._tx() as conn:
            current = self._stage(conn, path, "current")
            previous = self._stage(conn, path, "previous")
            expect_current(path, current, expected)
            if previous is None:
                raise NotFound(f"{path!r} has no previous version to roll back to")
            self._set_stage(conn, path, "current", previous)
            self._set_stage(conn, path, "previous", current)
            return self._version(conn, path, previous)

    def delete(self, path: str) -> None:
        check_path(path)
        with self._tx() as conn:
            conn.execute("DELETE FROM stages WHERE path = ?", (path,))
            conn.execute("DELETE FROM versions WHERE path = ?", (path,))

    # -- lease lock ------------------------------------------------------------------------
    def _lease_record(self, conn: sqlite3.Connection, key: str) -> LeaseRecord | None:
        row = conn.execute("SELECT record FROM leases WHERE key = ?", (key,)).fetchone()
        return None if row is None else LeaseRecord.from_data(key, row[0])

    def _write_lease(self, conn: sqlite3.Connection, key: str, record: LeaseRecord) -> None:
        conn.execute(
            "INSERT INTO leases (key, record) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
            (key, record.to_json()),
        )

    def acquire_lease(self, key: str, holder: str, ttl: float) -> Lease:
        with self._tx() as conn:
            now = utcnow()
            held_by_other(key, self._lease_record(conn, key), now)
            record = new_record(holder, ttl, now)
            self._write_lease(conn, key, record)
            return record.as_lease(key)

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        with self._tx() as conn:
            current = self._lease_record(conn, lease.key)
            if current is None or current.token != lease.token or current.released:
                raise LeaseLost(f"lease {lease.key!r} is no longer held by {lease.holder}")
            record = renewed(current, ttl)
            self._write_lease(conn, lease.key, record)
            return record.as_lease(lease.key)

    def release_lease(self, lease: Lease) -> None:
        with self._tx() as conn:
            current = self._lease_record(conn, lease.key)
            if current is not None and current.token == lease.token:
                self._write_lease(conn, lease.key, released(current))

    def read_lease(self, key: str) -> Lease | None:
        with self._tx(write=False) as conn:
            record = self._lease_record(conn, key)
        if record is None or record.free(utcnow()):
            return None
        return record.as_lease(key)

    # -- journal ---------------------------------------------------------------------------
    def read_journal(self, key: str) -> dict[str, Any] | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT record FROM journal WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            record = json.loads(row[0])
        except ValueError:
            raise CorruptDocument(f"journal {key!r} is not JSON") from None
        if not isinstance(record, dict):
            raise CorruptDocument(f"journal {key!r} is not a JSON object")
        return record

    def write_journal(self, key: str, record: dict[str, Any]) -> None:
        check_document(f"journal {key}", record)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO journal (key, record) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
                (key, json.dumps(record)),
            )

    def clear_journal(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM journal WHERE key = ?", (key,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
