"""TOML text from the data ``tomllib`` reads, for the few value types a ``rotator.toml`` uses.

The standard library reads TOML but does not write it, and a dependency for one generated
file is not worth it. ``dumps`` covers strings, integers, booleans, lists of those or of
inline tables, tables and arrays of tables; anything else is refused rather than guessed,
and the text is read back before it is returned, so what it writes is what it was given.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """``data`` as TOML text, after ``header`` (comment lines, each starting with ``#``)."""
    lines = header.splitlines()
    if lines:
        lines.append("")
    _table((), data, lines)
    text = "\n".join(lines).rstrip("\n") + "\n"
    if tomllib.loads(text) != data:
        raise ValueError("the TOML written does not read back as the data given")
    return text


def _table(path: tuple[str, ...], table: Mapping[str, Any], lines: list[str]) -> None:
    """Plain keys first (TOML puts every key after a header into that table), then sub-tables."""
    plain = {k: v for k, v in table.items() if not _is_table(v) and not _is_table_array(v)}
    if path and (plain or not any(_is_table(v) for v in table.values())):
        lines.append(f"[{_dotted(path)}]")
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in plain.items())
    if plain:
        lines.append("")
    for key, value in table.items():
        if _is_table(value):
            _table((*path, key), value, lines)
        elif _is_table_array(value):
            for item in value:
                lines.append(f"[[{_dotted((*path, key))}]]")
                lines.extend(f"{_key(k)} = {_value(v)}" for k, v in item.items())
                lines.append("")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    """A list of tables at table level is written as ``[[name]]`` blocks (credentials); one
    inside such a block stays inline (``permissions = [{ ... }]``)."""
    return isinstance(value, list) and bool(value) and all(_is_table(v) for v in value)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form here for a {type(value).__name__}")


def _string(value: str) -> str:
    """JSON's escapes are TOML's basic-string escapes; TOML also wants DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")
