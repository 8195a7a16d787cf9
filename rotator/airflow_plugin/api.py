"""The read-only JSON behind the Credentials page, guarded by Airflow's own auth.

Every route depends on ``requires_access_connection("GET")`` from Airflow's core API: the
caller is whoever Airflow's auth manager (FAB, simple, or any other) says the bearer token or
the UI's session cookie belongs to, and must be allowed to read connections, as on Airflow's
own Connections page. Anonymous callers get 401, others without that permission 403, from
Airflow's code, not ours.

No route returns a secret: rows are built from ``rotator.status`` (ids, times, words) and the
few connection fields named in ``CONNECTION_FIELDS``; version metadata is cut to
``VERSION_META``; audit events and journals never hold a value. There is no write route here.

Without rotator.toml (``Source.config`` is ``None``) the credentials are the store's own
(``Store.lock_names``), each row read from its lock document: see ``source.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.api_fastapi.core_api.security import requires_access_connection
from fastapi import APIRouter, Depends, HTTPException

from rotator.airflow_plugin.source import Source, open_source

CONNECTION_FIELDS = ("conn_type", "host", "login", "port", "schema")
"""What the page shows of a stored connection: never ``password`` or ``extra``."""
VERSION_META = ("rotation_id", "target_name", "issued", "expires")
HISTORY_EVENTS = 200
"""The newest audit events a history answer carries (the CLI's ``history`` has them all)."""

router = APIRouter(prefix="/api/v1", dependencies=[Depends(requires_access_connection("GET"))])


def _source() -> Source:
    """The request's config and store; a store or config error is a 503 naming the problem."""
    from backends.errors import RotatorError

    try:
        return open_source()
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store or config: {exc}") from exc


@router.get("/credentials")
def credentials() -> dict[str, Any]:
    """Every credential with its state (green/amber/red) and why: those of rotator.toml, or,
    without one, those whose lock documents the store holds. One the store will not show to
    Airflow (a value outside the connections prefix, on a least-privilege Vault policy) is
    listed as ``unknown`` with the store's refusal, the others as usual."""
    source = _source()
    now = datetime.now(UTC)
    if source.config is None:
        items = [_recorded(source, name, now) for name in _lock_names(source)]
    else:
        from rotator import audit

        events = audit.read(source.audit_file)
        items = [_credential(source, spec, events, now) for spec in source.config.credentials]
    return {
        "generated": now,
        "store": source.store_kind,
        "config": source.config.source if source.config is not None else None,
        "notes": source.notes,
        "credentials": items,
    }


def _lock_names(source: Source) -> list[str]:
    """The store's credentials; a store that refuses to list them gives none and a note."""
    from backends.errors import AccessDenied, RotatorError

    try:
        return source.store.lock_names()
    except AccessDenied as exc:
        source.notes.append(
            f"{exc}: the Airflow API server may not list Rotator's credentials (on Vault, give "
            "its token ops/vault/airflow-ui-policy.hcl), or set ROTATOR_CONFIG"
        )
        return []
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc


def _credential(
    source: Source, spec: Any, events: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    from dataclasses import replace

    from backends.errors import AccessDenied, RotatorError
    from rotator.status import last_rotation, state, status_rows

    last = last_rotation(e for e in events if e.get("credential") == spec.name)
    try:
        one = replace(source.config, credentials=(spec,))
        (row,) = status_rows(one, source.store, source.audit_file, now)
        colour, why = state(row, last, now)
        return _item(
            source, {**row, "conn_id": spec.conn_id, "unrecorded": []}, last, colour, why, now
        )
    except AccessDenied as exc:
        return {
            **_unread(spec.name, spec.type, spec.conn_id, spec.path, last),
            "state": "unknown",
            "state_reason": str(exc),
        }
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc


def _recorded(source: Source, name: str, now: datetime) -> dict[str, Any]:
    """The row of a credential found in the store alone (``rotator.status.recorded_row``); a
    lock document Airflow may not read, or that is not Rotator's, is ``unknown``."""
    from backends.errors import AccessDenied, CorruptDocument, RotatorError
    from rotator.status import recorded_row, state

    try:
        row, last = recorded_row(source.store, name, now)
        colour, why = state(row, last, now)
        return _item(source, row, last, colour, why, now)
    except (AccessDenied, CorruptDocument) as exc:
        return {
            **_unread(name, None, None, None, None),
            "state": "unknown",
            "state_reason": str(exc),
        }
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc


def _unread(
    name: str, type_: str | None, conn_id: str | None, path: str | None, last: dict[str, Any] | None
) -> dict[str, Any]:
    """The row of a credential whose stored state Airflow's access may not read."""
    keys = ("version", "issued", "expires", "next_due", "due", "pending_work", "last_proven")
    keys += ("last_proof", "locked_by", "target_name", "age_seconds", "connection")
    return {
        **dict.fromkeys(keys),
        "name": name,
        "type": type_,
        "conn_id": conn_id,
        "path": path,
        "retirements": 0,
        "retirements_overdue": 0,
        "last_rotation": last,
        "unrecorded": [],
    }


def _item(
    source: Source,
    row: dict[str, Any],
    last: dict[str, Any] | None,
    colour: str,
    why: str,
    now: datetime,
) -> dict[str, Any]:
    issued = row["issued"]
    return {
        **{k: row[k] for k in ("name", "type", "version", "issued", "expires", "next_due")},
        **{k: row[k] for k in ("due", "pending_work", "retirements", "retirements_overdue")},
        **{k: row[k] for k in ("last_proven", "last_proof", "locked_by", "target_name")},
        **{k: row[k] for k in ("conn_id", "path", "unrecorded")},
        "age_seconds": int((now - issued).total_seconds()) if issued else None,
        "connection": _connection(source, row["path"]) if row["version"] and row["path"] else None,
        "last_rotation": last,
        "state": colour,
        "state_reason": why,
    }


def _connection(source: Source, path: str) -> dict[str, Any] | None:
    """The non-secret fields of the stored connection document (never its password)."""
    value = source.store.read(path).value
    if not isinstance(value, dict):
        return None
    return {k: value[k] for k in CONNECTION_FIELDS if value.get(k) not in (None, "")}


@router.get("/credentials/{name}/history")
def history(name: str) -> dict[str, Any]:
    """The stored versions (ids, stages, times, non-secret metadata) and the newest audit
    events of one credential, newest first; without rotator.toml, the versions at the path its
    lock document records, and no events (the page has no audit file then)."""
    from backends.errors import AccessDenied, NotFound, RotatorError
    from rotator import audit

    source = _source()
    note = None
    if source.config is None:
        path, note = _recorded_path(source, name)
    else:
        spec = next((s for s in source.config.credentials if s.name == name), None)
        if spec is None:
            raise HTTPException(404, f"no credential named {name!r} in {source.config.source}")
        path = spec.path
    try:
        versions = source.store.versions(path) if path else []
    except NotFound:
        versions = []
    except AccessDenied as exc:  # the audit trail still tells the story
        versions, note = [], str(exc)
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc
    events = []
    if source.audit_file is not None:
        events = audit.read(source.audit_file, name)[-HISTORY_EVENTS:]
    return {
        "credential": name,
        "note": note,
        "versions": [
            {
                "id": v.id,
                "stages": sorted(v.stages),
                "created": v.created,
                "meta": {k: v.meta[k] for k in VERSION_META if k in v.meta},
            }
            for v in versions
        ],
        "events": list(reversed(events)),
    }


def _recorded_path(source: Source, name: str) -> tuple[str | None, str]:
    """Where a store-only credential's value is (404 if the store has no lock document of
    ``name``), and the note the history shows instead of an audit trail."""
    from backends.errors import RotatorError

    try:
        if name not in source.store.lock_names():
            raise HTTPException(
                404, f"no credential named {name!r} in the {source.store_kind} store"
            )
        _, journal = source.store.read_lock(name)
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc
    facts = (journal or {}).get("credential")
    path = facts.get("path") if isinstance(facts, dict) else None
    note = "no rotator.toml: no audit trail here (rotator history has it)"
    if not path:
        note += "; where the value is stored is not recorded yet"
    else:
        source.store.bind(path, name)  # its stage state is kept with this lock
    return path, note
