"""What the CLI prints: aligned tables for people, one JSON document for programs.

Tables fit the terminal: ``$COLUMNS`` first (as ``shutil.get_terminal_size`` does), then the
terminal's own width, and 100 columns when stdout is not a terminal. When a row does not fit,
the columns marked as cuttable (by default the last one, the free text) are shortened with an
ellipsis, and a footer line says where the whole text is; on a terminal too narrow even for
that, each row becomes a block of ``HEADER  value`` lines (not on a terminal, where nothing
wraps, the table stays whole). Durations for people read "in 9d 23h" (two largest units,
rounded down); ``rotator.durations.format_duration`` stays the exact spelling for config and
engine messages. In JSON, every date is ISO 8601 with ``T``, in UTC.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from rotator.durations import format_duration

FALLBACK_WIDTH = 100
MIN_WIDTH = 40
MIN_CUT = 12  # a cut column keeps at least this many characters
_SEP = "  "


def terminal_width(stream: TextIO | None = None) -> int:
    """Columns to fit ``stream`` (stdout): ``$COLUMNS``, else the terminal's width, else 100."""
    stream = stream or sys.stdout
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        width = 0
    if width <= 0:
        try:
            width = os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
        except (AttributeError, ValueError, OSError):
            width = 0
    return max(MIN_WIDTH, width or FALLBACK_WIDTH)


def _isatty(stream: TextIO | None) -> bool:
    try:
        return (stream or sys.stdout).isatty()
    except (AttributeError, ValueError):
        return False


def _ellipsis(stream: TextIO | None = None) -> str:
    encoding = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        "\u2026".encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return "..."
    return "\u2026"


def cut_end(text: str, width: int, mark: str = "\u2026") -> str:
    return text if len(text) <= width else text[: max(0, width - len(mark))].rstrip() + mark


def cut_middle(text: str, width: int, mark: str = "\u2026") -> str:
    """Keep both ends (a name's suffix often tells two apart)."""
    if len(text) <= width:
        return text
    keep = max(0, width - len(mark))
    head = keep // 2
    return text[:head] + mark + text[len(text) - (keep - head) :]


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None = None,
    cut: Iterable[int] | None = None,
    middle: Iterable[int] = (),
    more: str | None = None,
    stream: TextIO | None = None,
    blocks: bool | None = None,
) -> str:
    """Rows aligned under ``headers``, at most ``width`` columns wide.

    ``cut``: the columns that may be shortened (default: the last), widest first, never below
    their header; ``middle``: those of them cut in the middle (identifiers) rather than at the
    end (text). ``more``: the footer shown when something was cut, with ``{mark}`` and
    ``{width}`` filled in (default: a pointer to ``--json``), wrapped to ``width``. The dashed
    rule is never wider than ``width``. When even that cannot fit on a terminal (``blocks``:
    default, whether ``stream`` is one), each row is shown as a block, one ``HEADER  value`` line
    per column; not on a terminal (a log, a pipe) the table is printed whole, its rule as wide as
    its rows.
    """
    n = len(headers)
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else " ".join(str(c).split()) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(n)]
    limit = width if width is not None else terminal_width(stream)
    cuttable = list(cut) if cut is not None else [n - 1]
    middle = set(middle)
    mark = _ellipsis(stream)
    was_cut = False
    overflow = sum(widths) + len(_SEP) * (n - 1) - limit
    while overflow > 0:
        candidates = [i for i in cuttable if widths[i] > max(MIN_CUT, len(cells[0][i]))]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        floor = max(MIN_CUT, len(cells[0][widest]))
        others = [widths[i] for i in candidates if i != widest]
        # shrink the widest down to the next widest (or as far as needed), one step at a time
        target = max(floor, widths[widest] - overflow, max(others, default=floor))
        if target >= widths[widest]:
            target = widths[widest] - 1
        overflow -= widths[widest] - target
        widths[widest] = target
        was_cut = True
    if overflow > 0 and (_isatty(stream) if blocks is None else blocks):
        return _blocks(cells, limit, cuttable, middle, mark, more)
    if was_cut:
        for row in cells[1:]:
            for i in cuttable:
                if len(row[i]) > widths[i]:
                    row[i] = (cut_middle if i in middle else cut_end)(row[i], widths[i], mark)
    lines = [
        _SEP.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, _SEP.join("-" * w for w in widths))  # as wide as the rows, no wider
    if was_cut:
        lines.extend(_footer(more, mark, limit))
    return "\n".join(lines)


def _footer(more: str | None, mark: str, limit: int) -> list[str]:
    text = (more or "({mark} cut to fit {width} columns: add --json for the whole text)").format(
        mark=mark, width=limit
    )
    return textwrap.wrap(text, limit, break_on_hyphens=False, break_long_words=False)


def _blocks(
    cells: list[list[str]],
    limit: int,
    cuttable: list[int],
    middle: set[int],
    mark: str,
    more: str | None,
) -> str:
    """The narrow-terminal form: the first column as a title, then ``HEADER  value`` lines."""
    headers, n = cells[0], len(cells[0])
    label = max(len(h) for h in headers[1:]) if n > 1 else 0
    room = max(MIN_CUT, limit - 2 - label - len(_SEP))
    lines, was_cut = [], False
    for row in cells[1:]:
        lines.append(cut_end(row[0], limit, mark))
        for i in range(1, n):
            value = row[i]
            if len(value) > room and i in cuttable:
                value = (cut_middle if i in middle else cut_end)(value, room, mark)
                was_cut = True
            lines.append(f"  {headers[i].ljust(label)}{_SEP}{value}".rstrip())
        lines.append("")
    if lines:
        lines.pop()
    if was_cut:
        lines.extend(_footer(more, mark, limit))
    return "\n".join(lines)


def iso(moment: datetime) -> str:
    """ISO 8601 with ``T``, in UTC, whole seconds: the one date format of Rotator's JSON."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def short_time(moment: datetime | str | None) -> str:
    """A date for a table: ``2026-11-25T18:29:43Z`` (UTC)."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    return iso(moment).replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def emit_json(document: Any, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(json.dumps(document, indent=2, default=_json_default) + "\n")


_HUMAN_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def human_duration(value: timedelta) -> str:
    """The two largest units, rounded down: ``9d 23h``, ``5h 2m``, ``40s`` (never weeks)."""
    seconds = int(abs(value.total_seconds()))
    parts = []
    for unit, size in _HUMAN_UNITS:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append((count, unit))
        if len(parts) == 2:
            break
    shown = [f"{count}{unit}" for count, unit in parts if count]
    return " ".join(shown) or "0s"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    delta = (now or datetime.now(UTC)) - moment
    if delta < timedelta():
        return "in " + human_duration(-delta)
    return human_duration(delta) + " ago"


def until(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    delta = moment - (now or datetime.now(UTC))
    if delta <= timedelta():
        return "now" if delta > timedelta(seconds=-1) else human_duration(-delta) + " overdue"
    return "in " + human_duration(delta)


def expiry(moment: datetime | str | None, now: datetime | None = None) -> str:
    """``in 9d 23h``, or ``expired 2d 3h ago``."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if moment is None:
        return "-"
    delta = moment - (now or datetime.now(UTC))
    if delta > timedelta():
        return "in " + human_duration(delta)
    return "expired " + human_duration(-delta) + " ago"


# -- error text for people --------------------------------------------------------------------

_REPEAT_MIN = 24  # shorter fragments ("not found") may honestly be said of two things
_CLASS_PREFIX = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*:\s+")


def _exception_names() -> set[str]:
    names: set[str] = set()
    todo: list[type] = [BaseException]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _strip_class(text: str, known: set[str]) -> str:
    while True:
        match = _CLASS_PREFIX.match(text)
        if not match:
            return text
        word = match.group(1).rsplit(".", 1)[-1]
        if word not in known and not re.search(r"(Error|Exception|Warning)$", word):
            return text
        text = text[match.end() :]


def _segments(clause: str) -> list[str]:
    """A clause split at ``": "`` outside parentheses, a trailing ``(hint)`` its own segment."""
    out, depth, start = [], 0, 0
    i = 0
    while i < len(clause):
        ch = clause[i]
        if ch == "(":
            if depth == 0 and i > start and clause[i - 1] == " ":
                out.append(clause[start:i].strip())
                start = i
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and clause.startswith(": ", i):
            out.append(clause[start:i].strip())
            start = i + 2
            i += 1
        i += 1
    out.append(clause[start:].strip())
    return [s for s in out if s]


def _join(segments: list[str]) -> str:
    text = ""
    for seg in segments:
        if not text:
            text = seg
        elif seg.startswith("("):
            text += " " + seg
        else:
            text += ": " + seg
    return text


def plain_error(text: str | None) -> str:
    """An error as a person reads it: no exception class names in front of it, and each thing
    said once (a later clause that repeats an earlier server message or hint loses the repeat).
    """
    if not text:
        return ""
    known = _exception_names()
    seen: set[str] = set()
    clauses = []
    for raw in re.split(r";\s+", " ".join(text.split())):
        clause = _strip_class(raw, known)
        kept = []
        for seg in _segments(clause):
            bare = _strip_class(seg, known)
            key = bare.lower().rstrip(".")
            if key in seen and (len(key) >= _REPEAT_MIN or bare.startswith("(")):
                continue
            seen.add(key)
            kept.append(bare)
        if kept:
            clauses.append(_join(kept))
    return "; ".join(dict.fromkeys(clauses))
