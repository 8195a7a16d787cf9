"""Durations as written in rotator.toml: one or more ``<integer><unit>`` parts, units s m h d w.

``90s``, ``1h30m``, ``7d``, ``2w``; ``0s`` only where zero makes sense (a grace period).
"""

from __future__ import annotations

import re
from datetime import timedelta

from rotator.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: object, *, where: str, allow_zero: bool = False) -> timedelta:
    if not isinstance(text, str):
        raise ConfigError(f'{where}: expected a duration string like "7d" or "1h30m", got {text!r}')
    compact = text.strip()
    if not compact or _PART.sub("", compact) != "":
        raise ConfigError(
            f"{where}: {text!r} is not a duration; write <integer><unit> parts with units "
            's, m, h, d, w (e.g. "90s", "1h30m", "7d")'
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(compact))
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
