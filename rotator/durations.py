"""Durations as written in rotator.toml: one or more ``<integer><unit>`` parts, units s m h d w.

``90s``, ``1h30m``, ``7d``, ``2w``; ``0s`` only where zero makes sense (a grace period). No
duration is longer than ``MAX_DURATION`` (100 years): anything longer is a typo, and would
overflow date arithmetic further down.
"""

from __future__ import annotations

import re
from datetime import timedelta

from rotator.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")
MAX_DURATION = timedelta(days=36500)
"""100 years: the longest duration rotator.toml accepts."""
_MAX_DIGITS = 12
"""More digits than this in one part is out of range whatever the unit (and ``int()`` of a
few thousand digits is refused by Python itself)."""


def parse_duration(text: object, *, where: str, allow_zero: bool = False) -> timedelta:
    if not isinstance(text, str):
        # Name the type, never the value: whatever was written here may be a pasted secret.
        raise ConfigError(
            f'{where}: expected a duration string like "7d" or "1h30m", got {type(text).__name__}'
        )
    compact = text.strip()
    if not compact or _PART.sub("", compact) != "":
        raise ConfigError(
            f"{where}: not a duration; write <integer><unit> parts with units "
            's, m, h, d, w (e.g. "90s", "1h30m", "7d")'
        )
    parts = _PART.findall(compact)
    too_long = f"{where}: too long; at most {MAX_DURATION.days // 365} years (36500d)"
    if any(len(n.lstrip("0")) > _MAX_DIGITS for n, _ in parts):
        raise ConfigError(too_long)
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds > MAX_DURATION.total_seconds():
        raise ConfigError(too_long)
    if seconds == 0 and not allow_zero:
        raise ConfigError(f"{where}: must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest rotator.toml spelling of ``value`` (whole seconds)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
