"""HashiCorp Vault / OpenBao KV v2 (through hvac).

Layout under the KV mount, for a document at ``path``:

- ``path`` itself: the consumer document. Its latest version is ``current``, which is exactly
  what the official ``VaultBackend`` reads; every write uses ``cas``.
- ``<state_prefix>/state/<path>``: which KV version is ``previous`` and each version's metadata
  (for a path bound to its credential's lock, ``CasLeases.bind``: inside that lock document).
- ``<state_prefix>/pending/<path>``: the ``pending`` value (it must not be a KV version of
  ``path``, or consumers would read it before it is proven). For a bound path a promoted
  pending document stays where it is, marked consumed by the version that carries its rotation
  id (it holds the value that is now current, behind Rotator's own policy; the next rotation
  overwrites it with ``cas``), which spares a delete per rotation.
- ``<state_prefix>/locks/<key>``: the lease and, inside it, the journal (``backends.lease``:
  a journal write is a ``cas`` write of the lock, so it lands only while the lease is held),
  and the state of the paths bound to it.

Differences from the other stores that callers can see: a rollback writes the old value as a
*new* KV version (KV v2 has no way to make an older version "latest"), so the version id of
``current`` changes on rollback; how many old versions stay readable is the mount's
``max_versions`` (10 by default).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from backends.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    CorruptDocument,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.lease import CasLeases, LeaseRecord
from backends.store import (
    STAGES,
    Version,
    check_document,
    check_path,
    expect_current,
    issued_at,
)
from backends.vault_auth import VaultAuth, session
from backends.vault_kv import kv_pool, not_json, send

T = TypeVar("T")
STATE_MARKER = "rotator_state"
PENDING_MARKER = "rotator_pending"
_CAS_MISMATCH = "check-and-set parameter"
_STATE_RETRIES = 5


def _translate(what: str, exc: Exception) -> StoreError:
    import hvac.exceptions as hx
    import requests

    if isinstance(exc, hx.InvalidPath):
        return NotFound(f"nothing stored at {what}")
    if isinstance(exc, hx.Forbidden):
        return AccessDenied(f"Vault refused access to {what} (permission denied)")
    if isinstance(exc, hx.InvalidRequest) and _CAS_MISMATCH in str(exc):
        return Conflict(f"{what} changed under us (check-and-set did not match)")
    if isinstance(exc, hx.Unauthorized):
        return AccessDenied(f"Vault token rejected while accessing {what} (expired or revoked?)")
    if isinstance(
        exc, hx.InternalServerError | hx.VaultDown | hx.BadGateway | hx.VaultNotInitialized
    ):
        return StoreUnavailable(f"Vault failed on {what}: {type(exc).__name__}")
    if isinstance(exc, requests.RequestException):
        return StoreUnavailable(f"cannot reach Vault for {what}: {type(exc).__name__}")
    if isinstance(exc, hx.VaultError):
        return StoreError(f"Vault error on {what}: {type(exc).__name__}: {exc}")
    return StoreError(f"unexpected error on {what}: {type(exc).__name__}")


def _kv_answer(url: str, what: str, status: int, answer: Any, kind: str) -> dict[str, Any]:
    """A KV answer's JSON, or the error ``_translate`` gives for what hvac raises on it."""
    if status == 200 and isinstance(answer, dict):
        return answer
    if status < 400 or not_json(answer):
        raise StoreUnavailable(
            f"Vault at {url} answered {status} with {kind}, not Vault's JSON, for {what} (a "
            "proxy or a wrong url?)"
        )
    errors = answer.get("errors") if isinstance(answer, dict) else None
    said = "; ".join(str(e) for e in errors or [])
    if status == 404:
        raise NotFound(f"nothing stored at {what}")
    if status == 403:
        raise AccessDenied(f"Vault refused access to {what} (permission denied)")
    if status == 400 and _CAS_MISMATCH in said:
        raise Conflict(f"{what} changed under us (check-and-set did not match)")
    if status == 401:
        raise AccessDenied(f"Vault token rejected while accessing {what} (expired or revoked?)")
    if status in (500, 501, 502, 503):
        raise StoreUnavailable(f"Vault failed on {what}: HTTP {status}")
    raise StoreError(f"Vault error on {what}: HTTP {status}: {said}")


def _created(text: str) -> datetime:
    # Vault prints nanoseconds; fromisoformat takes at most microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


class VaultStore(CasLeases[int]):
    """``[store] kind = "vault"``: ``url``, ``auth`` (token | approle | kubernetes | jwt),
    ``mount`` (KV v2, default ``secret``), ``namespace``, ``verify`` / ``ca_bundle``, ``timeout``,
    the auth options of ``backends.vault_auth.VaultAuth`` (``token_file``, ``role``,
    ``role_id``, ``secret_id_file``, ``jwt_file``, ``auth_mount``, ...), and the prefixes.
    """

    kind: ClassVar[str] = "vault"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8200",
        auth: str = "token",
        mount: str = "secret",
        namespace: str | None = None,
        verify: bool = True,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        connections_prefix: str | None = "airflow/connections",
        variables_prefix: str | None = "airflow/variables",
        config_prefix: str | None = "airflow/config",
        state_prefix: str = "rotator",
        **auth_options: Any,
    ) -> None:
        auth_ = VaultAuth.from_options(auth, auth_options)
        self.url = url.rstrip("/")
        self.mount = mount
        self.namespace = namespace
        self.verify: bool | str = ca_bundle or verify
        self.timeout = timeout
        self.connections_prefix = connections_prefix
        self.variables_prefix = variables_prefix
        self.config_prefix = config_prefix
        self.state_prefix = check_path(state_prefix)
        self.auth = auth_
        key = (self.url, namespace, str(self.verify), timeout, self.auth)
        self._session = session(key, self._make_client, self.auth)
        self._staged: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        """(path, rotation id) -> the value and metadata ``put_pending`` staged (``promote``)."""

    def __repr__(self) -> str:
        return f"VaultStore(url={self.url!r}, mount={self.mount!r}, auth={self.auth.method!r})"

    # -- plumbing --------------------------------------------------------------------------
    def _make_client(self) -> Any:
        import hvac

        from backends.env_session import EnvOnceSession

        # hvac lets a given session's own ``verify`` win over its argument: set it there too,
        # or a ``ca_bundle`` would be dropped for the default trust store.
        http = EnvOnceSession()
        http.verify = self.verify
        return hvac.Client(
            url=self.url,
            namespace=self.namespace,
            verify=self.verify,
            timeout=self.timeout,
            session=http,
        )

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(kv)``; on a 403 with a login method, log in again once and retry."""
        import hvac.exceptions as hx

        for attempt in (1, 2):
            try:
                client = self._session.get()
                return fn(client.secrets.kv.v2)
            except StoreError:
                raise
            except ConfigError:
                raise
            except hx.Forbidden as exc:
                if attempt == 1 and self.auth.method != "token":
                    self._session.invalidate()
                    continue
                raise _translate(what, exc) from exc
            except Exception as exc:
                raise _translate(what, exc) from exc
        raise AssertionError("unreachable")

    def _kv(self, method: str, path: str, body: Any = None, query: str = "") -> Any:
        """One KV v2 ``data`` request through ``backends.vault_kv`` (``None``: a proxy applies,
        use hvac); errors as ``_translate`` words them, a 403 with a login method logs in
        again once."""
        pool = kv_pool(self.url, self.verify, self.timeout)
        if pool is None:
            return None
        url = f"{self.url}/v1/{quote(self.mount)}/data/{quote(path)}{query}"
        for attempt in (1, 2):
            try:
                token = self._session.get().token
            except (StoreError, ConfigError):
                raise
            except Exception as exc:  # hvac's login failed
                raise _translate(path, exc) from exc
            headers = {"X-Vault-Request": "true", "X-Vault-Token": str(token)}
            if self.namespace:
                headers["X-Vault-Namespace"] = self.namespace
            status, answer, kind = send(pool, method, url, headers, body, path)
            if status == 403 and attempt == 1 and self.auth.method != "token":
                self._session.invalidate()
                continue
            return _kv_answer(self.url, path, status, answer, kind)
        raise AssertionError("unreachable")

    def _hvac_json(self, what: str, fn: Callable[[Any], Any]) -> dict[str, Any]:
        """``_call`` for an answer that must be Vault's JSON: hvac hands back the raw
        response when it is not (an HTML page from a proxy), which is ``StoreUnavailable``."""
        answer = self._call(what, fn)
        if not isinstance(answer, dict):
            raise StoreUnavailable(
                f"Vault at {self.url} answered with something that is not Vault's JSON for "
                f"{what} (a proxy or a wrong url?)"
            )
        return answer

    def _read(self, path: str, version: int | None = None) -> tuple[dict[str, Any], int, str]:
        """``(data, version, created_time)`` of a KV path. ``NotFound`` if missing/deleted."""

        def fn(kv: Any) -> Any:
            return kv.read_secret_version(
                path=path, version=version, mount_point=self.mount, raise_on_deleted_version=True
            )

        query = f"?version={int(version)}" if version is not None else ""
        response = self._kv("GET", path, query=query)
        if response is None:
            response = self._hvac_json(path, fn)
        data = (response or {}).get("data") or {}
        if data.get("data") is None:
            raise NotFound(f"nothing stored at {path}")
        meta = data.get("metadata") or {}
        return data["data"], int(meta.get("version", 0)), str(meta.get("created_time", ""))

    def _current_version(self, path: str) -> int | None:
        try:
            meta = self._hvac_json(
                path, lambda kv: kv.read_secret_metadata(path=path, mount_point=self.mount)
            )
        except NotFound:
            return None
        data = meta["data"]
        current = int(data.get("current_version") or 0)
        if current == 0:
            return None
        info = (data.get("versions") or {}).get(str(current)) or {}
        if info.get("deletion_time") or info.get("destroyed"):
            return None
        return current

    def _write(self, path: str, data: dict[str, Any], cas: int | None) -> tuple[int, str]:
        def fn(kv: Any) -> Any:
            return kv.create_or_update_secret(
                path=path, secret=data, cas=cas, mount_point=self.mount
            )

        body = {"options": {} if cas is None else {"cas": cas}, "data": data}
        response = self._kv("POST", path, body)
        if response is None:
            response = self._hvac_json(path, fn)
        return int(response["data"]["version"]), str(response["data"]["created_time"])

    def _delete_all(self, path: str) -> None:
        with contextlib.suppress(NotFound):
            self._call(
                path,
                lambda kv: kv.delete_metadata_and_all_versions(path=path, mount_point=self.mount),
            )

    def _state_path(self, kind: str, name: str) -> str:
        return f"{self.state_prefix}/{kind}/{check_path(name)}"

    def _read_state(self, path: str) -> tuple[dict[str, Any], int]:
        """The state of ``path`` and the KV version of its state document (0: none yet, or the
        state is kept in the lock document ``path`` is bound to)."""
        if self._bound_key(path) is not None:
            state = self.bound_state_copy(path, STATE_MARKER)
            if state is not None:
                return state, 0
            # Nothing recorded in the lock yet: what an older Rotator kept beside the path
            # (the first write records it in the lock).
        where = self._state_path("state", path)
        try:
            data, version, _ = self._read(where)
        except NotFound:
            return {STATE_MARKER: 1, "previous": None, "meta": {}}, 0
        if data.get(STATE_MARKER) != 1 or not isinstance(data.get("meta"), dict):
            raise CorruptDocument(f"{where} is not a Rotator state document; left untouched")
        return data, version

    def _update_state(
        self,
        path: str,
        change: Callable[[dict[str, Any]], None],
        known: tuple[dict[str, Any], int] | None = None,
    ) -> None:
        """Read-modify-write the state document with cas, retrying lost races; ``known``: a
        state just read (with its version) that the first attempt uses instead of reading."""
        if self._bound_key(path) is not None:
            state = json.loads(json.dumps((known or self._read_state(path))[0]))
            change(state)
            self.record_state(path, state)
            return
        for _ in range(_STATE_RETRIES):
            state, version = known or self._read_state(path)
            known = None
            state = json.loads(json.dumps(state))  # ``change`` must not edit the caller's copy
            change(state)
            try:
                self._write(self._state_path("state", path), state, cas=version)
                return
            except Conflict:
                continue
        raise Conflict(f"state of {path!r} kept changing under us")

    def _read_pending(self, path: str) -> tuple[dict[str, Any], int, str] | None:
        where = self._state_path("pending", path)
        try:
            data, version, created = self._read(where)
        except NotFound:
            return None
        if data.get(PENDING_MARKER) != 1 or not isinstance(data.get("value"), dict):
            raise CorruptDocument(f"{where} is not a Rotator pending document; left untouched")
        if self._bound_key(path) is not None and self._consumed(path, data):
            return None
        return data, version, created

    def _consumed(self, path: str, pending: dict[str, Any]) -> bool:
        """Whether a bound path's pending document was promoted: a version it keeps state for
        carries its rotation id (the document stays, see the module docstring)."""
        state, _ = self._read_state(path)
        rid = pending.get("rotation_id")
        return any(m.get("rotation_id") == rid for m in state["meta"].values())

    def _consumer_version(
        self, path: str, version: int, state: dict[str, Any], stages: set[str]
    ) -> Version:
        data, number, created = self._read(path, version)
        return Version(
            id=str(number),
            value=data,
            stages=frozenset(stages),
            created=_created(created),
            meta=dict(state["meta"].get(str(number), {})),
        )

    def _stages(self, path: str, state: dict[str, Any]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        current = self._current_version(path)
        if current is not None:
            out.setdefault(str(current), set()).add("current")
        if state.get("previous"):
            out.setdefault(str(state["previous"]), set()).add("previous")
        return out

    @staticmethod
    def _pending_version(data: dict[str, Any], number: int, created: str) -> Version:
        return Version(
            id=f"pending-{number}",
            value=data["value"],
            stages=frozenset({"pending"}),
            created=_created(created),
            meta=dict(data.get("meta") or {}),
        )

    # -- documents -------------------------------------------------------------------------
    def get_document(self, path: str) -> dict[str, Any]:
        return self._read(check_path(path))[0]

    def read(self, path: str, stage: str = "current", *, value: bool = True) -> Version:
        check_path(path)
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        if stage == "pending":
            found = self._read_pending(path)
            if found is None:
                raise NotFound(f"{path!r} has no pending version")
            return self._pending_version(*found)
        state, _ = self._read_state(path)
        if stage == "current":
            # The latest version says which one it is: no metadata request needed.
            data, number, created = self._read(path)
        else:
            if not state.get("previous"):
                raise NotFound(f"{path!r} has no previous version")
            number = int(state["previous"])
            if not value:  # the state says all that is asked: no read of the version
                meta = dict(state["meta"].get(str(number), {}))
                return Version(str(number), {}, frozenset({stage}), issued_at(meta), meta)
            data, number, created = self._read(path, number)
        return Version(
            id=str(number),
            value=data,
            stages=frozenset({stage}),
            created=_created(created),
            meta=dict(state["meta"].get(str(number), {})),
        )

    def read_version(self, path: str, version_id: str) -> Version:
        check_path(path)
        if version_id.startswith("pending-"):
            found = self._read_pending(path)
            if found is None or f"pending-{found[1]}" != version_id:
                raise NotFound(f"{path!r} has no version {version_id!r}")
            return self._pending_version(*found)
        if not version_id.isdigit():
            raise NotFound(f"{path!r} has no version {version_id!r}")
        state, _ = self._read_state(path)
        stages = self._stages(path, state)
        return self._consumer_version(path, int(version_id), state, stages.get(version_id, set()))

    def versions(self, path: str) -> list[Version]:
        check_path(path)
        state, _ = self._read_state(path)
        stages = self._stages(path, state)
        out: list[Version] = []
        pending = self._read_pending(path)
        if pending is not None:
            out.append(self._pending_version(*pending))
        try:
            meta = self._hvac_json(
                path, lambda kv: kv.read_secret_metadata(path=path, mount_point=self.mount)
            )
        except NotFound:
            return out
        numbers = sorted(
            (
                int(n)
                for n, info in meta["data"]["versions"].items()
                if not info.get("deletion_time") and not info.get("destroyed")
            ),
            reverse=True,
        )
        for number in numbers:
            with contextlib.suppress(NotFound):
                out.append(
                    self._consumer_version(path, number, state, stages.get(str(number), set()))
                )
        return out

    def _commit(
        self,
        path: str,
        value: dict[str, Any],
        expected: str | None,
        meta: Mapping[str, Any],
        known: tuple[dict[str, Any], int] | None = None,
    ) -> Version:
        """Write ``value`` as the new current with cas, then record previous and meta."""
        number, created = self._write(path, value, cas=int(expected) if expected else 0)
        self._record(path, number, expected, meta, known)
        return Version(str(number), value, frozenset({"current"}), _created(created), dict(meta))

    def _record(
        self,
        path: str,
        number: int,
        previous: str | None,
        meta: Mapping[str, Any],
        known: tuple[dict[str, Any], int] | None = None,
    ) -> None:
        def change(state: dict[str, Any]) -> None:
            state["previous"] = previous
            state["meta"][str(number)] = dict(meta)
            keep = {str(number), previous}
            state["meta"] = {k: v for k, v in state["meta"].items() if k in keep}

        self._update_state(path, change, known)

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
        expect_current(path, self._current_version(path), expected)
        return self._commit(path, value, expected, dict(meta or {}))

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
        document = {
            PENDING_MARKER: 1,
            "rotation_id": rotation_id,
            "value": value,
            "meta": {**dict(meta or {}), "rotation_id": rotation_id},
        }
        where = self._state_path("pending", path)
        bound = self._bound_key(path) is not None
        # Usually one write: nothing pending yet (create-only), or for a bound path the
        # promoted document the state recorded, replaced with ``cas`` on its version.
        last = self._read_state(path)[0].get("pending") if bound else None
        with contextlib.suppress(Conflict):
            number, created = self._write(where, document, cas=last if type(last) is int else 0)
            return self._staged_as(path, document, number, created)
        found = self._read_pending(path)
        if found is not None and found[0].get("rotation_id") == rotation_id:
            if found[0]["value"] != value:
                raise Conflict(f"{path!r}: rotation {rotation_id} already staged another value")
            return self._staged_as(path, *found)
        if found is None and bound:  # a consumed document reads as nothing pending
            found = self._pending_document(where)
        number, created = self._write(where, document, cas=found[1] if found else 0)
        return self._staged_as(path, document, number, created)

    def _pending_document(self, where: str) -> tuple[dict[str, Any], int, str] | None:
        try:
            return self._read(where)
        except NotFound:
            return None

    def _staged_as(self, path: str, document: dict[str, Any], number: int, created: str) -> Version:
        """The pending version just written (or found), remembered for ``promote``: the value
        and metadata of a rotation id never change once staged (``Conflict`` otherwise), so
        promoting it needs no read; a bound path's state records the document's KV version
        for the next rotation's ``cas``."""
        self._staged[(path, document["rotation_id"])] = (document["value"], document["meta"])
        if self._bound_key(path) is not None:
            self._update_state(path, lambda state: state.__setitem__("pending", number))
        return self._pending_version(document, number, created)

    def discard_pending(self, path: str, *, rotation_id: str | None = None) -> None:
        check_path(path)
        for staged in [k for k in list(self._staged) if k[0] == path]:
            if rotation_id in (None, staged[1]):
                self._staged.pop(staged, None)
        found = self._read_pending(path)
        if found is None or (
            rotation_id is not None and found[0].get("rotation_id") != rotation_id
        ):
            return
        self._delete_all(self._state_path("pending", path))

    def promote(self, path: str, *, rotation_id: str, expected: str | None) -> Version:
        check_path(path)
        staged = self._staged.get((path, rotation_id))
        if staged is not None and self._bound_key(path) is not None:
            # One write: the value staged by this object, with ``cas`` on what the caller
            # saw current; the state rides on the lock's next write. A conflict may be our
            # own earlier write whose answer was lost: the reads below tell.
            with contextlib.suppress(Conflict):
                number, created = self._write(path, staged[0], cas=int(expected) if expected else 0)
                self._staged.pop((path, rotation_id), None)
                self._record(path, number, expected, staged[1])
                return Version(
                    str(number), staged[0], frozenset({"current"}), _created(created), staged[1]
                )
        state, state_version = self._read_state(path)
        current = self._current_version(path)
        if (
            current is not None
            and state["meta"].get(str(current), {}).get("rotation_id") == rotation_id
        ):
            return self._consumer_version(path, current, state, {"current"})
        found = self._read_pending(path)
        if found is None:
            raise Conflict(f"{path!r}: no pending version to promote")
        pending, _, _ = found
        if pending.get("rotation_id") != rotation_id:
            raise Conflict(
                f"{path!r}: pending belongs to rotation {pending.get('rotation_id')}, "
                f"not {rotation_id}"
            )
        if current is not None and str(current) != expected and str(current) not in state["meta"]:
            # A crash between writing the document and recording its state: finish the record.
            data, _, _ = self._read(path, current)
            if data == pending["value"]:
                self._record(path, current, expected, pending["meta"])
                self._delete_all(self._state_path("pending", path))
                return self.read(path)
        expect_current(path, current, expected)
        known = (state, state_version)
        version = self._commit(path, pending["value"], expected, pending["meta"], known)
        self._staged.pop((path, rotation_id), None)
        self._delete_all(self._state_path("pending", path))
        return version

    def rollback(self, path: str, *, expected: str) -> Version:
        check_path(path)
        state, _ = self._read_state(path)
        expect_current(path, self._current_version(path), expected)
        previous = state.get("previous")
        if not previous:
            raise NotFound(f"{path!r} has no previous version to roll back to")
        data, _, _ = self._read(path, int(previous))
        return self._commit(path, data, expected, state["meta"].get(str(previous), {}))

    def delete(self, path: str) -> None:
        check_path(path)
        for where in (path, self._state_path("state", path), self._state_path("pending", path)):
            self._delete_all(where)
        if self._bound_key(path) is not None:
            self.record_state(path, None)

    # -- lease lock ------------------------------------------------------------------------
    def _lease(self, key: str) -> tuple[LeaseRecord | None, int]:
        where = self._state_path("locks", key)
        try:
            data, version, _ = self._read(where)
        except NotFound:
            # Create-only. Asking the metadata for a version here would be a second, later read:
            # a racer could learn the winner's fresh version and overwrite its lease with it.
            return None, 0
        return LeaseRecord.from_data(key, data), version

    def _swap_lease(self, key: str, record: LeaseRecord, expected: int | None) -> int:
        where = self._state_path("locks", key)
        return self._write(where, json.loads(record.to_json()), cas=expected or 0)[0]

    def close(self) -> None:
        """Clients are shared per process (one login); nothing to release per store."""

    def lock_names(self) -> list[str]:
        """One LIST of ``<state_prefix>/locks/`` (KV v2 metadata): Vault answers every key at
        once unless asked to page, and the Airflow UI's policy grants ``list`` on that path
        only. Sub-folders (``a/``) are not lock keys: credential names hold no ``/``."""
        where = f"{self.state_prefix}/locks"
        try:
            response = self._hvac_json(
                where + "/", lambda kv: kv.list_secrets(path=where, mount_point=self.mount)
            )
        except NotFound:  # Vault answers 404 for a folder with nothing in it
            return []
        keys = ((response or {}).get("data") or {}).get("keys") or []
        return sorted(k for k in keys if isinstance(k, str) and k and "/" not in k)
