"""What the CLI prints: aligned tables for people, one JSON document for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from rotator.durations import format_duration


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit_json(document: Any, stream: TextIO = sys.stdout) -> None:
    stream.write(json.dumps(document, indent=2, default=str) + "\n")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    delta = (now or datetime.now(UTC)) - moment
    if delta < timedelta():
        return "in " + format_duration(-delta)
    return format_duration(timedelta(seconds=int(delta.total_seconds()))) + " ago"


def until(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    delta = moment - (now or datetime.now(UTC))
    if delta <= timedelta():
        return "now" if delta > timedelta(seconds=-1) else format_duration(-delta) + " overdue"
    return "in " + format_duration(timedelta(seconds=int(delta.total_seconds())))
