"""A TeamCity build as Airflow sees it: the fields of TeamCity's JSON that decide what a task does,
and the one place that turns ``state``/``status``/``statusText`` into an outcome.

TeamCity's rules (the contract's "Lifecycle" section): ``state`` goes queued -> running ->
finished; ``status`` is absent while queued, SUCCESS or FAILURE once started, UNKNOWN for a
canceled build; a canceled build carries ``canceledInfo`` and a ``statusText`` starting with
"Canceled"; ``failedToStart`` marks a build the server dropped itself. Right after a build
finishes, ``status`` may read UNKNOWN for a moment without the build being canceled: that is
``UNSETTLED`` here, and pollers ask again shortly instead of calling it a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

QUEUED, RUNNING = "queued", "running"
SUCCESS, FAILED, CANCELED, UNSETTLED = "success", "failed", "canceled", "unsettled"
TERMINAL = frozenset({SUCCESS, FAILED, CANCELED})

_DATE = re.compile(r"(\d{8}T\d{6})([+-]\d{4})")


def parse_date(value: str | None) -> datetime | None:
    """TeamCity's ``yyyyMMdd'T'HHmmssZ`` (``20270101T120000+0000``) as an aware datetime."""
    if not value:
        return None
    match = _DATE.fullmatch(value.strip())
    if not match:
        return None
    return datetime.strptime(match.group(1) + match.group(2), "%Y%m%dT%H%M%S%z").astimezone(UTC)


@dataclass(frozen=True)
class Build:
    id: int
    state: str
    build_type_id: str | None = None
    status: str | None = None
    status_text: str | None = None
    number: str | None = None
    branch_name: str | None = None
    web_url: str | None = None
    finish_date: datetime | None = None
    canceled: bool = False
    failed_to_start: bool = False
    tags: tuple[str, ...] = field(default=())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Build:
        """Read TeamCity's build JSON (long or short form); ``KeyError``/``ValueError`` if it has
        no ``id`` or ``state`` (the caller turns that into a bad-response error)."""
        tags = data.get("tags") or {}
        status_text = data.get("statusText")
        return cls(
            id=int(data["id"]),
            state=str(data["state"]),
            build_type_id=data.get("buildTypeId") or (data.get("buildType") or {}).get("id"),
            status=data.get("status"),
            status_text=status_text,
            number=data.get("number"),
            branch_name=data.get("branchName"),
            web_url=data.get("webUrl"),
            finish_date=parse_date(data.get("finishDate")),
            canceled="canceledInfo" in data
            or (data.get("status") == "UNKNOWN" and str(status_text or "").startswith("Canceled")),
            failed_to_start=bool(data.get("failedToStart")),
            tags=tuple(str(t.get("name")) for t in tags.get("tag") or [] if isinstance(t, dict)),
        )

    @property
    def outcome(self) -> str:
        """``queued``, ``running``, ``success``, ``failed``, ``canceled`` or ``unsettled``."""
        if self.state in (QUEUED, RUNNING):
            return self.state
        if self.canceled:
            return CANCELED
        if self.failed_to_start or self.status == "FAILURE":
            return FAILED
        if self.status == "SUCCESS":
            return SUCCESS
        return UNSETTLED

    def describe(self) -> str:
        """One line for logs and failure messages: id, number, state and TeamCity's text."""
        parts = [f"TeamCity build {self.id}"]
        if self.number and self.number != "N/A":
            parts.append(f"#{self.number}")
        if self.build_type_id:
            parts.append(f"of {self.build_type_id}")
        text = f" ({self.status_text})" if self.status_text else ""
        return f"{' '.join(parts)}: {self.outcome}{text}"
