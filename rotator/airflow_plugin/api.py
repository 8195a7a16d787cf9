"""The read-only JSON behind the Credentials page, guarded by Airflow's own auth.

Every route depends on ``requires_access_connection("GET")`` from Airflow's core API: the
caller is whoever Airflow's auth manager (FAB, simple, or any other) says the bearer token or
the UI's session cookie belongs to, and must be allowed to read connections, as on Airflow's
own Connections page. Anonymous callers get 401, others without that permission 403, from
Airflow's code, not ours.

No route returns a secret: rows are built from ``rotator.status`` (ids, times, words) and the
few connection fields named in ``CONNECTION_FIELDS``; version metadata is cut to
``VERSION_META``; audit events never hold a value. There is no write route here.
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
    """Every credential of rotator.toml with its state (green/amber/red) and why; one the
    store will not show to Airflow (a value outside the connections prefix, on a least-privilege
    Vault policy) is listed as ``unknown`` with the store's refusal, the others as usual."""
    from rotator import audit

    source = _source()
    now = datetime.now(UTC)
    events = audit.read(source.audit_file)
    items = [_credential(source, spec, events, now) for spec in source.config.credentials]
    return {
        "generated": now,
        "store": source.store_kind,
        "config": source.config.source,
        "notes": source.notes,
        "credentials": items,
    }


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
        return _item(source, spec, row, last, colour, why, now)
    except AccessDenied as exc:
        return {**_unread(spec, last), "state": "unknown", "state_reason": str(exc)}
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc


def _unread(spec: Any, last: dict[str, Any] | None) -> dict[str, Any]:
    """The row of a credential whose stored state Airflow's access may not read."""
    keys = ("version", "issued", "expires", "next_due", "due", "pending_work", "last_proven")
    keys += ("last_proof", "locked_by", "target_name", "age_seconds", "connection")
    return {
        **dict.fromkeys(keys),
        "name": spec.name,
        "type": spec.type,
        "conn_id": spec.conn_id,
        "path": spec.path,
        "retirements": 0,
        "retirements_overdue": 0,
        "last_rotation": last,
    }


def _item(
    source: Source,
    spec: Any,
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
        "conn_id": spec.conn_id,
        "path": spec.path,
        "age_seconds": int((now - issued).total_seconds()) if issued else None,
        "connection": _connection(source, spec) if row["version"] else None,
        "last_rotation": last,
        "state": colour,
        "state_reason": why,
    }


def _connection(source: Source, spec: Any) -> dict[str, Any] | None:
    """The non-secret fields of the stored connection document (never its password)."""
    value = source.store.read(spec.path).value
    if not isinstance(value, dict):
        return None
    return {k: value[k] for k in CONNECTION_FIELDS if value.get(k) not in (None, "")}


@router.get("/credentials/{name}/history")
def history(name: str) -> dict[str, Any]:
    """The stored versions (ids, stages, times, non-secret metadata) and the newest audit
    events of one credential, newest first."""
    from backends.errors import AccessDenied, NotFound, RotatorError
    from rotator import audit

    source = _source()
    spec = next((s for s in source.config.credentials if s.name == name), None)
    if spec is None:
        raise HTTPException(404, f"no credential named {name!r} in {source.config.source}")
    note = None
    try:
        versions = source.store.versions(spec.path)
    except NotFound:
        versions = []
    except AccessDenied as exc:  # the audit trail still tells the story
        versions, note = [], str(exc)
    except RotatorError as exc:
        raise HTTPException(503, f"Rotator cannot read its store: {exc}") from exc
    events = audit.read(source.audit_file, spec.name)[-HISTORY_EVENTS:]
    return {
        "credential": spec.name,
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
