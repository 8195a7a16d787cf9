"""TeamCity locators (``buildType:(id:X),tag:T,count:1``) and ``?fields=`` specifications.

A locator is either a single value (``42``) or comma-separated ``dimension:value`` pairs; a
value in parentheses may hold commas and nested locators. A dimension may repeat
(``tag:a,tag:b``). Errors are 400s with the server's ``LocatorProcessException`` wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rotator.sim.teamcity.errors import BadRequest, LocatorError


@dataclass
class Locator:
    text: str
    single: str | None = None
    dims: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        values = self.dims.get(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return list(self.dims.get(name, []))

    def __contains__(self, name: str) -> bool:
        return name in self.dims

    def check(self, supported: tuple[str, ...]) -> None:
        """400 for a dimension the finder does not know, as ``checkLocatorFullyProcessed``."""
        unknown = [name for name in self.dims if name not in supported]
        if unknown:
            listed = ", ".join(unknown)
            verb = "is" if len(unknown) == 1 else "are"
            noun = "dimension" if len(unknown) == 1 else "dimensions"
            raise LocatorError(
                f"Locator {noun} [{listed}] {verb} unknown. "
                f"Supported dimensions are: [{', '.join(supported)}]"
            )

    def number(self, name: str, default: int | None = None) -> int | None:
        raw = self.get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.lstrip("-").isdigit()):
            raise LocatorError(f"Invalid value of dimension '{name}': '{raw}'. Should be a number.")
        return int(raw)


def parse(text: str) -> Locator:
    """Parse a locator; an empty text is a locator with no dimensions."""
    if text == "":
        return Locator(text)
    if not any(ch in text for ch in ":,()"):
        return Locator(text, single=text)
    dims: dict[str, list[str]] = {}
    for part in _split(text):
        name, sep, value = part.partition(":")
        if not sep or not name:
            raise LocatorError(f"Bad locator syntax: '{text}'. Details: '{part}' has no name.")
        if value.startswith("(") and value.endswith(")"):
            value = value[1:-1]
        dims.setdefault(name, []).append(value)
    return Locator(text, dims=dims)


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise LocatorError(f"Bad locator syntax: '{text}'. Details: unbalanced ')'.")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise LocatorError(f"Bad locator syntax: '{text}'. Details: unbalanced '('.")
    parts.append("".join(current))
    return [p for p in parts if p]


def boolean(value: str | None, name: str) -> bool | None:
    """``true``/``false``/``any`` (None means "any") as the server reads boolean dimensions."""
    if value is None or value.lower() == "any":
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise LocatorError(
        f"Invalid value of dimension '{name}': '{value}'. Should be 'true', 'false' or 'any'."
    )


# -- ?fields= -----------------------------------------------------------------------------

Spec = dict[str, "Spec | None"]
"""A parsed fields specification: name -> nested spec (None: the field as it is)."""


def parse_fields(text: str) -> Spec:
    """``id,state,buildType(id,name)`` -> ``{"id": None, "state": None, "buildType": {...}}``."""
    spec, rest = _fields(text, 0, text)
    if rest != len(text):
        raise BadRequest(f"Error parsing fields specification: unexpected ')' in '{text}'")
    return spec


def _fields(text: str, pos: int, whole: str) -> tuple[Spec, int]:
    spec: Spec = {}
    name: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == "(":
            if not "".join(name).strip():
                raise BadRequest(
                    f"Error parsing fields specification: '(' without a name in '{whole}'"
                )
            nested, pos = _fields(text, pos + 1, whole)
            if pos >= len(text) or text[pos] != ")":
                raise BadRequest(f"Error parsing fields specification: missing ')' in '{whole}'")
            spec["".join(name).strip()] = nested
            name = []
            pos += 1
            continue
        if ch == ")":
            break
        if ch == ",":
            if "".join(name).strip():
                spec.setdefault("".join(name).strip(), None)
            name = []
        else:
            name.append(ch)
        pos += 1
    if "".join(name).strip():
        spec.setdefault("".join(name).strip(), None)
    return spec, pos


def apply_fields(body: dict[str, Any], spec: Spec | None) -> dict[str, Any]:
    """Keep what ``spec`` names (``*``/``$long`` keep everything at that level); unknown names
    are ignored; null fields stay out as they always do."""
    if spec is None or "*" in spec or "$long" in spec:
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in spec:
            continue
        nested = spec[key]
        if nested is not None and isinstance(value, dict):
            out[key] = apply_fields(value, nested)
        elif nested is not None and isinstance(value, list):
            out[key] = [apply_fields(v, nested) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out
