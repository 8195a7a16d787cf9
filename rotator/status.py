"""Where each credential stands, read from the store and the audit trail without the lock.

One computation for every reader: ``rotator status`` prints these rows and the Airflow plugin's
Credentials page (``rotator.airflow_plugin``) serves them, so the two never disagree. Nothing
here writes, takes a lease or talks to a target, and no row holds a secret value: only version
ids, times, rotation ids and the words of recorded errors (which never hold a secret either).

``last_rotation`` and ``state`` add what a page shows at a glance (the outcome of the latest
rotation, and green/amber/red); the CLI's rows stay as they were.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
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
    from rotator import audit
    from rotator.engine import _meta_time, _time

    now = now or datetime.now(UTC)
    planner = _planner(config, store)
    proofs = {
        e.get("credential"): e
        for e in audit.read(audit_file)
        if e.get("step") == "verify" and e.get("outcome") in ("ok", "failed")
    }
    out = []
    for spec in config.credentials:
        current = planner.current(spec)
        journal = store.read_journal(spec.name) or {}
        lease = store.read_lease(spec.name)
        issued = (_meta_time(current, "issued") or current.created) if current else None
        rotation = journal.get("rotation")
        out.append(
            {
                "name": spec.name,
                "type": spec.type,
                "login_from": spec.login_from,
                "path": spec.path,
                "version": current.id if current else None,
                "issued": issued,
                "expires": _meta_time(current, "expires") if current else None,
                "next_due": planner.next_due(spec, current),
                "due": planner.due(spec, current, now),
                "target_name": current.meta.get("target_name") if current else None,
                "pending_work": (
                    f"interrupted rotation at {rotation.get('step')}" if rotation else None
                ),
                "retirements": len(journal.get("retire") or []),
                "retirements_overdue": sum(
                    _time(e.get("not_before")) < now for e in journal.get("retire") or []
                ),
                "last_proven": (proofs.get(spec.name) or {}).get("time"),
                "last_proof": (proofs.get(spec.name) or {}).get("outcome"),
                "locked_by": lease.holder if lease else None,
                "last_result": "interrupted"
                if rotation
                else ("ok" if current else "never rotated"),
            }
        )
    return out


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
    overdue, a rotation was cut, or nothing is stored yet; else ``green``."""
    now = now or datetime.now(UTC)
    expires = row.get("expires")
    if last is not None and last["outcome"] == "failed":
        return "red", f"last rotation failed at {last['step']}"
    if expires is not None and expires <= now:
        return "red", "expired"
    if row.get("pending_work"):
        return "amber", row["pending_work"]
    if row.get("retirements_overdue"):
        return "amber", f"{row['retirements_overdue']} retirement(s) overdue"
    if row.get("due"):
        return "amber", f"due: {row['due']}"
    return "green", "ok"
