"""Where each credential stands, read from the store and the audit trail without the lock.

One computation for every reader: ``rotator status`` prints these rows and the Airflow plugin's
Credentials page (``rotator.airflow_plugin``) serves them, so the two never disagree. Nothing
here writes, takes a lease or talks to a target, and no row holds a secret value: only version
ids, times, rotation ids and the words of recorded errors (which never hold a secret either).

``last_rotation`` and ``state`` add what a page shows at a glance (the outcome of the latest
rotation, and green/amber/red); the CLI's rows stay as they were. ``recorded_row`` builds the
same row for a reader with the store alone (no rotator.toml, no audit file), from what the
engine records in each credential's lock document; ``state`` judges both alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROTATION_STEPS = frozenset(
    {"plan", "intent", "mint", "stage", "apply", "verify", "promote", "push", "resume"}
)
"""Steps that belong to a rotation (or rollback) run; ``revoke``/``retire`` failures are about
older values and show as overdue retirements instead."""


def audit_path(config: Any, store: Any, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The audit file a rotation with this config wrote (``rotator history`` reads the same)."""
    from rotator import audit

    return audit.history_path(explicit or config.engine.audit_file, config.store_kind, store)


def status_rows(
    config: Any, store: Any, audit_file: str | os.PathLike[str], now: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per configured credential: version, age, expiry, next due, pending work, when
    it was last proven. The rows of ``rotator status --json``."""
    now = now or datetime.now(UTC)
    planner = _planner(config, store)
    proofs = _proofs(audit_file)
    out = []
    for spec in config.credentials:
        current = planner.current(spec)
        journal = store.read_journal(spec.name) or {}
        lease = store.read_lease(spec.name)
        out.append(
            _row(
                {"name": spec.name, "type": spec.type, "login_from": spec.login_from},
                spec.path,
                current,
                journal,
                lease,
                planner.next_due(spec, current),
                planner.due(spec, current, now),
                proofs.get(spec.name),
                now,
            )
        )
    return out


def _proofs(audit_file: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The latest ``verify`` outcome per credential: when its value was last proven."""
    from rotator import audit

    return {
        e.get("credential"): e
        for e in audit.read(audit_file)
        if e.get("step") == "verify" and e.get("outcome") in ("ok", "failed")
    }


def _row(
    facts: dict[str, Any],
    path: str | None,
    current: Any,
    journal: dict[str, Any],
    lease: Any,
    next_due: datetime | None,
    due: str | None,
    proof: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The fields of one row, whoever named the credential (rotator.toml or the store's lock
    documents) and however ``next_due``/``due`` were found: the rest is read the same way."""
    from rotator.journal import parse_time as _time

    issued = current.issued if current else None
    rotation = journal.get("rotation")
    retire = journal.get("retire") or []
    return {
        **facts,
        "path": path,
        "version": current.id if current else None,
        "issued": issued,
        "expires": current.expires if current else None,
        "next_due": next_due,
        "due": due,
        "target_name": current.meta.get("target_name") if current else None,
        "pending_work": f"interrupted rotation at {rotation.get('step')}" if rotation else None,
        "retirements": len(retire),
        "retirements_overdue": sum(_time(e.get("not_before")) < now for e in retire),
        "last_proven": (proof or {}).get("time"),
        "last_proof": (proof or {}).get("outcome"),
        "locked_by": lease.holder if lease else None,
        "last_result": "interrupted" if rotation else ("ok" if current else "never rotated"),
    }


NOT_RECORDED = "not recorded yet"
"""What a store-only row says of a field its lock document does not hold (written by an older
Rotator, or the credential never finished a run with this one)."""


def recorded_row(
    store: Any, name: str, now: datetime | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(row, last)`` of credential ``name`` from the store alone, for a reader without
    rotator.toml (the Airflow UI's Credentials page): the lock document's journal says what the
    credential is (``credential``), when it is next due (``current``), how its last run ended
    (``last``); the current version is read at the path the journal records. The row has the
    keys of ``status_rows`` plus ``conn_id`` and ``unrecorded`` (the fields the document did not
    hold); ``last`` is shaped like ``last_rotation``'s, for ``state``."""
    from rotator.journal import parse_time as _time
    from rotator.journal import recorded_current

    now = now or datetime.now(UTC)
    lease, read = store.read_lock(name)
    journal = read or {}
    facts = _mapping(journal.get("credential"))
    dates = _mapping(journal.get("current"))
    path = facts.get("path") or None
    if path:
        store.bind(path, name)  # its stage state is kept with this lock (``Store.bind``)
    current = _current(store, path) if path else recorded_current(dates)
    next_due = _time(dates["next_due"]) if dates.get("next_due") else None
    row = _row(
        {"name": name, "type": facts.get("type"), "login_from": facts.get("login_from")},
        path,
        current,
        journal,
        lease,
        next_due,
        _recorded_due(current, next_due, path, now),
        None,
        now,
    )
    last = _journal_last(journal.get("last"))
    row["conn_id"] = facts.get("conn_id")
    row["unrecorded"] = [
        *(() if facts else ("type", "conn_id", "path")),
        *(("next_due",) if current is not None and next_due is None else ()),
        *(("last_rotation",) if last is None else ()),
    ]
    return row, last


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _current(store: Any, path: str) -> Any:
    from backends.errors import NotFound

    try:
        return store.read(path)
    except NotFound:
        return None


def _recorded_due(
    current: Any, next_due: datetime | None, path: str | None, now: datetime
) -> str | None:
    """Why a store-only row is due: the engine's ``due`` needs ``every`` and ``lead`` from
    rotator.toml, so here the recorded ``next_due`` (which the engine computed from them)
    decides, and the words say what the row can show."""
    from rotator.durations import format_duration

    if current is None:
        return "nothing stored yet" if path else None
    if next_due is None or next_due > now:
        return None
    expires = current.expires
    why = f"next due {format_duration(now - next_due)} ago"
    if expires is not None:
        why += f", expires in {format_duration(max(expires - now, timedelta()))}"
    return why


def _journal_last(last: Any) -> dict[str, Any] | None:
    """The journal's ``last`` record in ``last_rotation``'s shape."""
    if not isinstance(last, dict) or not last.get("result"):
        return None
    return {
        "rotation_id": last.get("rotation_id"),
        "outcome": last["result"],
        "step": last.get("step"),
        "reason": last.get("reason"),
        "time": last.get("at"),
    }


def _planner(config: Any, store: Any) -> Any:
    """The engine's own planning (``current``, ``due``, ``next_due``), so that "due" means here
    what it means to a rotation. Planning only reads the store: no issuer, sink or audit is
    built, so a reader needs no bootstrap credential of any target."""
    from rotator.audit import Audit
    from rotator.engine import Engine

    return Engine(config, store, {}, None, Audit(None))


def last_rotation(events: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest rotation of one credential's audit events (oldest first), as
    ``{"rotation_id", "outcome", "step", "reason", "time"}``; ``None`` if it never ran.

    ``outcome`` is ``failed`` when a step failed after the last promotion of that rotation
    (a run that resumed and promoted it later has ``rotated``), ``rotated`` once promoted,
    else ``started`` (under way, or cut: the journal says which).
    """
    runs: dict[str, list[dict[str, Any]]] = {}
    latest: str | None = None
    for event in events:
        rid = event.get("rotation_id")
        if rid and event.get("step") in ROTATION_STEPS:
            runs.setdefault(rid, []).append(event)
            latest = rid
    if latest is None:
        return None
    outcome, step, reason = "started", None, None
    for event in runs[latest]:
        if event.get("outcome") == "failed":
            outcome, step = "failed", event.get("step")
            reason = (event.get("error") or {}).get("message")
        elif event.get("step") == "promote" and event.get("outcome") == "ok":
            outcome, step, reason = "rotated", None, None
    return {
        "rotation_id": latest,
        "outcome": outcome,
        "step": step,
        "reason": reason,
        "time": runs[latest][-1].get("time"),
    }


def state(
    row: dict[str, Any], last: dict[str, Any] | None, now: datetime | None = None
) -> tuple[str, str]:
    """``(colour, why)``: ``red`` if the latest rotation failed or the current value expired;
    ``amber`` if it is due (inside the lead time, or older than ``every``), a retirement is
    overdue, a rotation was cut, nothing is stored yet, or (a store-only row) the lock document
    does not say where the value is; else ``green``."""
    now = now or datetime.now(UTC)
    expires = row.get("expires")
    if last is not None and last["outcome"] == "failed":
        return "red", f"last rotation failed at {last['step']}"
    if expires is not None and expires <= now:
        return "red", "expired"
    if row.get("version") is None and "path" in row.get("unrecorded", ()):
        return "amber", f"{NOT_RECORDED}: the next run of this Rotator records it"
    if row.get("pending_work"):
        return "amber", row["pending_work"]
    if row.get("retirements_overdue"):
        return "amber", f"{row['retirements_overdue']} retirement(s) overdue"
    if row.get("due"):
        return "amber", f"due: {row['due']}"
    return "green", "ok"
