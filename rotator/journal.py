"""The journal: Rotator's write-ahead record, one per credential, written only under its lease.

Typed here so that the engine reads like the protocol and a misspelt key is an AttributeError
instead of a silent ``None``; stored as the same JSON document as before (``to_dict`` writes
the keys ``from_dict`` reads, and keys this version does not know are carried through
untouched, so an older and a newer Rotator can share a store)::

    {"rotation": {"id", "step", "kind", "target_name", "restores", "expected",
                  "current_target", "previous_target", "current_since", "started", "reason",
                  "revoke_previous"},
     "retire": [{"target_name", "not_before", "superseded", "why"}],
     "current": {"id", "issued", "expires", "next_due"},
     "credential": {"type", "conn_id", "path", "login_from"},
     "last": {"rotation_id", "result", "step", "reason", "at"}}

Like OpenBao's ``setCredentialsWAL``: the record says what may exist at the target before it
exists, so every crash point resumes from what the store holds.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from backends.store import Version

LONG_AGO = datetime.min.replace(tzinfo=UTC)


def parse_time(raw: Any, default: datetime | None = None) -> datetime:
    """A stored ISO time; a missing or unreadable one counts as ``default`` (or long ago)."""
    if raw:
        with contextlib.suppress(ValueError, TypeError):
            moment = datetime.fromisoformat(raw)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return default or LONG_AGO


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class Step(StrEnum):
    """How far a rotation got, as the journal records it (the audit has finer steps)."""

    INTENT = "intent"
    """Recorded before minting: names what may exist at the target."""
    STAGED = "staged"
    """The new value is in the store's pending slot."""
    PROMOTED = "promoted"
    """The new value is current; retirements are scheduled; push and clear remain."""


Kind = Literal["rotate", "rollback"]


@dataclass
class Rotation:
    """One rotation (or rollback) in flight."""

    id: str
    reason: str
    started: datetime
    step: Step = Step.INTENT
    kind: Kind = "rotate"
    target_name: str | None = None
    """The name the new value has at the target, chosen before minting (None: a password)."""
    restores: str | None = None
    """A rollback: the target name of the value it makes current again."""
    expected: str | None = None
    """The store version that was current when the rotation started (compare-and-set)."""
    current_target: str | None = None
    previous_target: str | None = None
    current_since: datetime | None = None
    revoke_previous: bool = False

    @property
    def rollback(self) -> bool:
        return self.kind == "rollback"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "step": str(self.step),
            "kind": self.kind,
            "target_name": self.target_name,
            "restores": self.restores,
            "expected": self.expected,
            "current_target": self.current_target,
            "previous_target": self.previous_target,
            "current_since": _iso(self.current_since),
            "started": _iso(self.started),
            "reason": self.reason,
            "revoke_previous": self.revoke_previous,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Rotation:
        step = raw.get("step")
        return cls(
            id=str(raw["id"]),
            reason=str(raw.get("reason") or ""),
            started=parse_time(raw.get("started")),
            step=Step(step) if step in set(Step) else Step.INTENT,
            kind="rollback" if raw.get("kind") == "rollback" else "rotate",
            target_name=raw.get("target_name"),
            restores=raw.get("restores"),
            expected=raw.get("expected"),
            current_target=raw.get("current_target"),
            previous_target=raw.get("previous_target"),
            current_since=parse_time(raw["current_since"]) if raw.get("current_since") else None,
            revoke_previous=bool(raw.get("revoke_previous")),
        )


@dataclass
class Retirement:
    """A value at the target to revoke once ``not_before`` has passed."""

    target_name: str
    not_before: datetime
    why: str
    superseded: datetime | None = None
    """When it stopped being current (settle is counted from here)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target_name": self.target_name,
            "not_before": _iso(self.not_before),
        }
        if self.superseded is not None:
            out["superseded"] = _iso(self.superseded)
        out["why"] = self.why
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Retirement:
        return cls(
            target_name=str(raw["target_name"]),
            not_before=parse_time(raw.get("not_before")),
            why=str(raw.get("why") or ""),
            superseded=parse_time(raw["superseded"]) if raw.get("superseded") else None,
        )


@dataclass
class Journal:
    """A credential's journal; ``current``, ``credential`` and ``last`` are kept as the plain
    records their readers (the idle check, the Credentials page) take."""

    rotation: Rotation | None = None
    retire: list[Retirement] = field(default_factory=list)
    current: dict[str, Any] | None = None
    """The dates of the value the last rotation made current (``id``, ``issued``,
    ``expires``, ``next_due``), so that an idle pass decides "not due" from the journal alone.
    A change of current outside Rotator is seen by the next rotation's read and by
    ``verify_every`` proofs, not by the idle check."""
    credential: dict[str, Any] | None = None
    """What the credential is (``type``, ``conn_id``, ``path``, ``login_from``), so that a reader
    with the store alone (the Credentials page without rotator.toml) can name it."""
    last: dict[str, Any] | None = None
    """How the last run that held the lock and did something ended (``rotation_id``,
    ``result``, ``step``, ``reason``, ``at``); written with the release."""
    other: dict[str, Any] = field(default_factory=dict)
    """Keys a newer Rotator wrote: written back as they were."""

    @property
    def recorded_current(self) -> Version | None:
        return recorded_current(self.current)

    def due_retirements(self, now: datetime) -> bool:
        return any(e.not_before <= now for e in self.retire)

    def retiring(self, name: str) -> Retirement | None:
        return next((e for e in self.retire if e.target_name == name), None)

    def names(self) -> set[str]:
        """Every name at the target this journal records: the retire list and the intent."""
        names = {e.target_name for e in self.retire}
        if self.rotation is not None:
            names |= {self.rotation.target_name, self.rotation.restores} - {None}  # type: ignore[arg-type]
        return names

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.other)
        if self.rotation is not None:
            out["rotation"] = self.rotation.to_dict()
        out["retire"] = [e.to_dict() for e in self.retire]
        if self.current is not None:
            out["current"] = self.current
        if self.credential is not None:
            out["credential"] = self.credential
        if self.last is not None:
            out["last"] = self.last
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Journal:
        raw = dict(raw or {})
        rotation = raw.pop("rotation", None)
        retire = raw.pop("retire", None) or []
        return cls(
            rotation=Rotation.from_dict(rotation) if rotation else None,
            retire=[Retirement.from_dict(e) for e in retire if e.get("target_name")],
            current=raw.pop("current", None),
            credential=raw.pop("credential", None),
            last=raw.pop("last", None),
            other=raw,
        )


def recorded_current(dates: Any) -> Version | None:
    """A journal's ``current`` record as a ``Version`` without a value (what ``due`` reads), or
    ``None`` when there is no usable record."""
    if not isinstance(dates, dict) or not dates.get("issued"):
        return None
    issued = parse_time(dates["issued"])
    if issued == LONG_AGO:
        return None
    meta = {"issued": issued.isoformat()}
    if dates.get("expires"):
        meta["expires"] = str(dates["expires"])
    return Version(str(dates.get("id")), {}, frozenset({"current"}), issued, meta)
