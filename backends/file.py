"""The embedded store: one SQLite file, every value sealed with AES-GCM. Zero setup.

Why SQLite: its transactions make each store operation atomic across processes on one host
(``BEGIN IMMEDIATE`` takes the write lock before reading, so compare-and-set and lease
takeover cannot interleave). The database uses SQLite's rollback journal, not WAL: a reader
of a WAL database must create or write the ``-wal`` and ``-shm`` files beside it, so it could
not read a database in a directory it may not write, and it would leave files behind. With the
rollback journal a reader takes a shared lock on the database file and writes nothing.

The key is 32 random bytes, from ``ROTATOR_MASTER_KEY`` (base64) or a key file (default
``master.key`` beside the database). Journal records and leases hold no secrets and are plain
JSON; version metadata is plain JSON too, but authenticated (below).

**Created by a writer, never by a reader.** A read-write store creates its directory (0700)
and database (0600) on first use, and the key file (0600, when no key is set) with the first
sealed value; when it cannot, the error names the path and the setting to change. A key is
created only for a database that holds no sealed version: a database whose key is missing is
an error, never a fresh key that opens nothing.

**Read-only** (``read_only=True``: the Airflow backend and ``rotator status / history /
verify / doctor``) opens the database with ``mode=ro`` and creates nothing, ever: a missing
database or key is a ``ConfigError`` that names the absolute paths it looked at and the
settings that choose them (``path``, ``key_file``, ``$ROTATOR_MASTER_KEY``); a write raises
``AccessDenied``. ``missing_ok=True`` (the CLI's read commands) reads a database that does
not exist yet as empty instead, with a warning naming where it looked.

**Private files only.** Like ssh with a private key, the store refuses a database or key file
that its group or others may read or write: ``ConfigError`` naming the file, its mode and the
``chmod 600`` that fixes it.

**What is authenticated.** Each value is sealed with AES-GCM; its associated data binds it to
its path, its version id, its creation time and its metadata (``rotation_id``, the
credential's name at the target, ``issued``, ``expires`` ...). Someone who can write the
database but does not have the key therefore cannot read a value, cannot forge one, cannot
move one to another path or version, and cannot alter a version's metadata or creation time
(any read of that version then fails as ``CorruptDocument``); so they cannot make Rotator
revoke another token by renaming ``previous`` at the target, nor change how old a credential
looks. (Rows sealed before the metadata was bound, whose associated data is only path and
version, still open; their metadata is not authenticated.)

What is *not* authenticated, and why: the stage pointers (which version of a path is
``current``, ``previous``, ``pending``), the journal and the leases. They change on every
rotation, and a tag computed over them could be replayed: whoever can write the file can put
back an older copy of a row, or of the whole file, and nothing inside the file can tell an
old consistent state from the present one (that needs state kept elsewhere, such as a counter
in a TPM or a remote log). So such an attacker *can*: point a stage of a path at another of
that path's own versions (serve an older, possibly revoked, value: a denial of service), drop
versions, stages or journal entries (tokens left to expire at the target instead of being
revoked), put a token name of that credential into the journal's retire list (Rotator then
revokes that one of its own tokens early), or hold or free a lease. They *cannot*: serve a
value Rotator did not store for that path, read any value, or make Rotator revoke a token
that is not one of its own for that credential (names are checked against the rotation id
pattern). Keeping the file private (0600, checked on every open) is the protection.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from backends.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    CorruptDocument,
    LeaseLost,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.lease import (
    LeaseRecord,
    held_by_other,
    new_record,
    released,
    renewed,
    still_held,
    utcnow,
)
from backends.store import STAGES, Lease, Version, check_document, check_path, expect_current

log = logging.getLogger(__name__)

_TABLES = ("versions", "stages", "leases", "journal")
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
_AAD_TAG = b"rotator-file/2"
_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def _mode_problem(what: str, path: Path, mode: int) -> ConfigError:
    return ConfigError(
        f"{what} {path} has mode {stat.S_IMODE(mode):04o}: its group or others may read or "
        f"write it, so Rotator refuses to use it (like ssh with a private key); run "
        f"`chmod 600 {path}` (and check who could have read it)"
    )


def _check_private(what: str, path: Path, mode: int) -> None:
    if stat.S_IMODE(mode) & 0o077:
        raise _mode_problem(what, path, mode)


class FileStore:
    """``[store] kind = "file"``: ``path`` (default ``.rotator/store.db``), ``key_file``
    (default ``master.key`` beside the database), ``key_env`` (default ``ROTATOR_MASTER_KEY``),
    ``read_only`` (default false: see the module docstring), ``missing_ok`` (read-only only:
    a database that does not exist yet reads as empty instead of raising).

    A relative ``path`` or ``key_file`` is made absolute against the working directory when
    the store is built, and every error names the absolute path.
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
        read_only: bool = False,
        missing_ok: bool = False,
    ) -> None:
        self._given_path = str(path)
        self._given_key_file = None if key_file is None else str(key_file)
        self.path = Path(os.path.abspath(path))
        self.key_file = (
            Path(os.path.abspath(key_file)) if key_file else self.path.parent / "master.key"
        )
        self.key_env = key_env
        self.connections_prefix = connections_prefix
        self.variables_prefix = variables_prefix
        self.config_prefix = config_prefix
        self.busy_timeout = busy_timeout
        self.read_only = bool(read_only)
        self.missing_ok = bool(missing_ok)
        self._local = threading.local()
        self._aead: Any = None
        self._key_lock = threading.Lock()
        self._warned_missing = False

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"FileStore(path={str(self.path)!r}{mode})"

    # -- where things are, in words --------------------------------------------------------
    def _where_db(self) -> str:
        given = self._given_path
        if os.path.isabs(given):
            return f"{self.path} (option `path`)"
        return f"{self.path} (`path` {given!r}, relative to the working directory {os.getcwd()})"

    def _where_key(self) -> str:
        env = f"${self.key_env} is not set"
        if self._given_key_file is None:
            return f"{env} and no key file at {self.key_file} (default: beside the database)"
        return f"{env} and no key file at {self.key_file} (option `key_file`)"

    def _missing_database(self) -> ConfigError:
        return ConfigError(
            f"file store: no database at {self._where_db()}; opened read-only, so nothing was "
            "created. Point `path` ([store] path in rotator.toml, `path` in the Airflow "
            "backend_kwargs) at the database Rotator writes; its key is then read from "
            f"${self.key_env} or else {self.key_file} (`key_file`)"
        )

    def _missing_key(self, why: str) -> ConfigError:
        return ConfigError(
            f"file store {self.path}: no master key: {self._where_key()}; {why}. Set "
            f"${self.key_env} (base64 of the 32-byte key) or `key_file` ([store] key_file in "
            "rotator.toml, `key_file` in the Airflow backend_kwargs) to the key this database "
            "was written with"
        )

    def _os_error(self, doing: str, target: Path, exc: OSError) -> StoreError:
        reason = exc.strerror or str(exc)
        if exc.errno in _PERMISSION and doing.startswith("create"):
            parent = target.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            return AccessDenied(
                f"file store: cannot {doing} {target}: {reason}. The file store is created by "
                f"its first writer (`rotator rotate`); make {parent} writable for this user "
                f"(uid {os.getuid()}), or set [store] path in rotator.toml to a writable place"
            )
        if exc.errno in _PERMISSION:
            return AccessDenied(
                f"file store: cannot {doing} {target}: {reason} (uid {os.getuid()})"
            )
        return StoreUnavailable(f"file store: cannot {doing} {target}: {reason}")

    # -- the key ---------------------------------------------------------------------------
    def _cipher(self, conn: sqlite3.Connection) -> Any:
        if self._aead is None:
            with self._key_lock:
                if self._aead is None:
                    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

                    self._aead = AESGCM(self._load_key(conn))
        return self._aead

    def _load_key(self, conn: sqlite3.Connection) -> bytes:
        encoded = os.environ.get(self.key_env)
        source = f"${self.key_env}"
        if not encoded:
            source = str(self.key_file)
            encoded = self._read_key_file()
            if encoded is None:
                if self.read_only:
                    raise self._missing_key("opened read-only, so no key was created")
                if conn.execute("SELECT 1 FROM versions LIMIT 1").fetchone() is not None:
                    raise self._missing_key(
                        "the database holds sealed versions, so a new key (which could not "
                        "open them) was not created"
                    )
                encoded = self._create_key_file()
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ConfigError(f"master key in {source} is not base64") from None
        if len(key) != 32:
            raise ConfigError(f"master key in {source} must be 32 bytes (base64), got {len(key)}")
        return key

    def _read_key_file(self) -> str | None:
        try:
            fd = os.open(self.key_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._os_error("read the key file", self.key_file, exc) from None
        with os.fdopen(fd, "r") as f:
            _check_private("key file", self.key_file, os.fstat(fd).st_mode)
            return f.read().strip()

    def _create_key_file(self) -> str:
        """A new key, made visible atomically (written aside, then linked into place)."""
        encoded = base64.b64encode(os.urandom(32)).decode()
        aside = self.key_file.with_name(f".{self.key_file.name}.{os.getpid()}.new")
        try:
            self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(encoded + "\n")
            try:
                os.link(aside, self.key_file)
            except FileExistsError:  # another process made one first: use theirs
                found = self._read_key_file()
                if found is not None:
                    return found
                raise
        except OSError as exc:
            raise self._os_error("create the key file", self.key_file, exc) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)
        return encoded

    # -- the database ----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if not os.path.lexists(self.path):
            if self.read_only:
                return self._missing()
            self._create_database()
        conn = self._connect()
        if conn is None:  # read-only, and a writer is creating the database right now
            return self._empty()
        self._local.conn = conn
        return conn

    def _missing(self) -> sqlite3.Connection:
        """A read-only read of a store not created yet: empty if ``missing_ok``, else an error."""
        if not self.missing_ok:
            raise self._missing_database()
        if not self._warned_missing:
            self._warned_missing = True
            log.warning(
                "file store: no database at %s yet: reading it as empty (the first "
                "`rotator rotate` creates it)",
                self._where_db(),
            )
        return self._empty()

    def _empty(self) -> sqlite3.Connection:
        """An empty schema in memory: what a read sees of a store that holds nothing yet."""
        empty = getattr(self._local, "empty", None)
        if empty is None:
            empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            empty.executescript(_SCHEMA)
            self._local.empty = empty
        return empty

    def _create_database(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise self._os_error("create the store directory", self.path.parent, exc) from None
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it first
        except OSError as exc:
            raise self._os_error("create the store database", self.path, exc) from None

    def _connect(self) -> sqlite3.Connection | None:
        target: str | Path = self.path
        if self.read_only:
            target = f"{self.path.as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(
                target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self.read_only,
            )
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {name for (name,) in rows}
            _check_private("store database", self.path, os.stat(self.path).st_mode)
            if self.read_only:
                missing = set(_TABLES) - tables
                if not tables:  # created this instant by a writer that has not committed yet
                    conn.close()
                    return None
                if missing:
                    raise CorruptDocument(
                        f"{self.path} is not a Rotator store database (no table "
                        f"{', '.join(sorted(missing))}); left untouched"
                    )
                return conn
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() == "wal":  # written by an earlier Rotator: see the docstring
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._translate(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _tx(self, doing: str | None = None) -> Iterator[sqlite3.Connection]:
        """One transaction; ``doing`` (what the caller writes, in words) makes it a write."""
        if doing is not None and self.read_only:
            raise AccessDenied(
                f"file store {self.path} is open read-only: cannot {doing} (the Airflow backend "
                "and rotator status / history / verify / doctor only read; writes are for "
                "rotator rotate, run and rollback)"
            )
        try:
            conn = self._conn()
            conn.execute("BEGIN" if doing is None else "BEGIN IMMEDIATE")
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
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                with contextlib.suppress(sqlite3.DatabaseError):
                    conn.execute("ROLLBACK")
                raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.DatabaseError) -> StoreError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return CorruptDocument(f"{self.path} is not a Rotator store database; left untouched")
        if "readonly" in text or "read-only" in text:
            if self.read_only:
                return StoreUnavailable(
                    f"cannot read the store database {self.path} read-only: {text} (a write "
                    "interrupted by a crash must be rolled back by a read-write open, e.g. "
                    "the next `rotator rotate`; a database written by an earlier Rotator in "
                    "WAL mode is converted by it too)"
                )
            return AccessDenied(
                f"the store database {self.path} or its directory is not writable by this "
                f"user ({text}): give the user write access to both, or run read-only commands"
            )
        if isinstance(exc, sqlite3.OperationalError):
            return StoreUnavailable(f"cannot use the store database {self.path}: {text}")
        return StoreError(f"store database {self.path}: {text}")

    # -- sealing ---------------------------------------------------------------------------
    @staticmethod
    def _aad(path: str, version: int, created: str, meta: str) -> bytes:
        """Path, version, creation time and metadata: none contains NUL (paths are checked,
        JSON escapes control characters), and the metadata comes last."""
        return b"\x00".join(
            (_AAD_TAG, path.encode(), str(version).encode(), created.encode(), meta.encode())
        )

    @staticmethod
    def _legacy_aad(path: str, version: int) -> bytes:
        return f"{path}\x00{version}".encode()

    def _seal(
        self,
        conn: sqlite3.Connection,
        path: str,
        version: int,
        created: str,
        meta: str,
        value: dict[str, Any],
    ) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        aad = self._aad(path, version, created, meta)
        return nonce, self._cipher(conn).encrypt(nonce, json.dumps(value).encode(), aad)

    def _open(
        self,
        conn: sqlite3.Connection,
        path: str,
        version: int,
        created: str,
        meta: str,
        nonce: bytes,
        sealed: bytes,
    ) -> dict[str, Any]:
        from cryptography.exceptions import InvalidTag

        cipher = self._cipher(conn)
        for aad in (self._aad(path, version, created, meta), self._legacy_aad(path, version)):
            try:
                plain = cipher.decrypt(nonce, sealed, aad)
            except InvalidTag:
                continue
            return json.loads(plain)
        raise CorruptDocument(
            f"{path!r} version {version}: cannot decrypt (wrong master key, or the row, its "
            "metadata or its creation time was tampered with or moved)"
        )

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
        value = self._open(conn, path, version, created, meta, nonce, sealed)
        stages = self._stages_of(conn, path).get(version, set())
        return Version(
            id=str(version),
            value=value,
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
        created = utcnow().isoformat()
        meta_text = json.dumps(dict(meta or {}))
        nonce, sealed = self._seal(conn, path, version, created, meta_text, value)
        conn.execute(
            "INSERT INTO versions (id, path, created, nonce, sealed, meta) VALUES (?,?,?,?,?,?)",
            (version, path, created, nonce, sealed, meta_text),
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

    # -- for `rotator doctor` --------------------------------------------------------------
    def check(self) -> str:
        """Prove the store can be used as configured, changing nothing; a sentence saying
        what was checked. Raises the error a real use would raise."""
        key = f"${self.key_env}" if os.environ.get(self.key_env) else str(self.key_file)
        if not os.path.lexists(self.path):
            if self.read_only and not self.missing_ok:
                raise self._missing_database()
            return (
                f"no database yet at {self._where_db()}: the first `rotator rotate` creates it "
                f"(key from {key})"
            )
        with self._tx() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM versions").fetchone()
            newest = conn.execute(
                "SELECT path, id FROM versions ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if newest is not None:
                self._version(conn, newest[0], int(newest[1]))  # proves the key opens it
            elif not os.environ.get(self.key_env) and os.path.lexists(self.key_file):
                self._cipher(conn)  # a key file that is there must be private and valid
        mode = "read-only" if self.read_only else "read-write"
        if not count:
            return f"{self.path} ({mode}): empty; key from {key}"
        return f"{self.path} ({mode}): {count} version(s); the key from {key} opens the newest"

    # -- documents -------------------------------------------------------------------------
    def get_document(self, path: str) -> dict[str, Any]:
        return self.read(path).value

    def read(self, path: str, stage: str = "current", *, value: bool = True) -> Version:
        check_path(path)
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        with self._tx() as conn:
            version = self._stage(conn, path, stage)
            if version is None:
                raise NotFound(f"{path!r} has no {stage} version")
            return self._version(conn, path, version)

    def read_version(self, path: str, version_id: str) -> Version:
        check_path(path)
        if not str(version_id).isdigit():
            raise NotFound(f"{path!r} has no version {version_id!r}")
        with self._tx() as conn:
            return self._version(conn, path, int(version_id))

    def versions(self, path: str) -> list[Version]:
        check_path(path)
        with self._tx() as conn:
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
        with self._tx("store a new current version") as conn:
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
        with self._tx("stage a pending version") as conn:
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
        with self._tx("discard a pending version") as conn:
            pending = self._stage(conn, path, "pending")
            if pending is None:
                return
            if rotation_id is not None:
                staged = self._version(conn, path, pending)  # authenticates its metadata
                if staged.meta.get("rotation_id") != rotation_id:
                    return
            self._set_stage(conn, path, "pending", None)

    def promote(self, path: str, *, rotation_id: str, expected: str | None) -> Version:
        check_path(path)
        with self._tx("promote a pending version") as conn:
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
        with self._tx("roll back") as conn:
            current = self._stage(conn, path, "current")
            previous = self._stage(conn, path, "previous")
            expect_current(path, current, expected)
            if previous is None:
                raise NotFound(f"{path!r} has no previous version to roll back to")
            self._set_stage(conn, path, "current", previous)
            self._set_stage(conn, path, "previous", current)
            return self._version(conn, path, previous)

    def bind(self, path: str, key: str) -> None:
        """Stages and metadata are rows of this database already, written in the same
        transaction as the value: nothing to move next to the lock."""
        check_path(path)

    def delete(self, path: str) -> None:
        check_path(path)
        with self._tx("delete a document") as conn:
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

    def acquire_lease(
        self,
        key: str,
        holder: str,
        ttl: float,
        *,
        journal: tuple[dict[str, Any] | None, dict[str, Any] | None] | None = None,
    ) -> Lease:
        with self._tx("take a lease") as conn:
            now = utcnow()
            held_by_other(key, self._lease_record(conn, key), now)
            if journal is not None:
                read, new = journal
                if self._journal_in(conn, key) != read:
                    raise Conflict(f"lock {key!r}: its journal changed since it was read")
                if new is None:
                    conn.execute("DELETE FROM journal WHERE key = ?", (key,))
                else:
                    self._put_journal_row(conn, key, check_document(f"journal {key}", new))
            record = new_record(holder, ttl, now)
            self._write_lease(conn, key, record)
            return record.as_lease(key)

    def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        with self._tx("renew a lease") as conn:
            current = self._lease_record(conn, lease.key)
            if current is None or current.token != lease.token or current.released:
                raise LeaseLost(f"lease {lease.key!r} is no longer held by {lease.holder}")
            record = renewed(current, ttl)
            self._write_lease(conn, lease.key, record)
            return record.as_lease(lease.key)

    def release_lease(self, lease: Lease) -> None:
        with self._tx("release a lease") as conn:
            current = self._lease_record(conn, lease.key)
            if current is not None and current.token == lease.token:
                self._write_lease(conn, lease.key, released(current))

    def read_lease(self, key: str) -> Lease | None:
        with self._tx() as conn:
            record = self._lease_record(conn, key)
        if record is None or record.free(utcnow()):
            return None
        return record.as_lease(key)

    def read_lock(self, key: str) -> tuple[Lease | None, dict[str, Any] | None]:
        lease = self.read_lease(key)
        return lease, self.read_journal(key)

    # -- journal ---------------------------------------------------------------------------
    def read_journal(self, key: str, *, lease: Lease | None = None) -> dict[str, Any] | None:
        # ``lease`` saves a request on the remote stores; a local read is as cheap as recalling.
        with self._tx() as conn:
            return self._journal_in(conn, key)

    @staticmethod
    def _journal_in(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
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

    @staticmethod
    def _put_journal_row(conn: sqlite3.Connection, key: str, record: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO journal (key, record) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
            (key, json.dumps(record)),
        )

    def write_journal(
        self,
        key: str,
        record: dict[str, Any],
        *,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        check_document(f"journal {key}", record)
        with self._tx("write the journal") as conn:
            held = self._lease_record(conn, key)
            if lease is not None:  # in the same transaction: the write is fenced by the lease
                still_held(key, held, lease, utcnow())
            self._put_journal_row(conn, key, record)
            if release and lease is not None and held is not None:
                self._write_lease(conn, key, released(held))

    def clear_journal(self, key: str, *, lease: Lease | None = None) -> None:
        with self._tx("clear the journal") as conn:
            if lease is not None:
                still_held(key, self._lease_record(conn, key), lease, utcnow())
            conn.execute("DELETE FROM journal WHERE key = ?", (key,))

    def close(self) -> None:
        for name in ("conn", "empty"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)

    def lock_names(self) -> list[str]:
        """Keys of the lease and journal tables (one database per store, so ``state_prefix``
        plays no part); a journal written without a lease is a lock document elsewhere too."""
        with self._tx() as conn:
            rows = conn.execute("SELECT key FROM leases UNION SELECT key FROM journal").fetchall()
        return sorted(key for (key,) in rows if "/" not in key)
