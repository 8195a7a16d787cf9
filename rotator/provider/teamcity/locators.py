"""TeamCity build locators (``GET /app/rest/builds?locator=...``), written from criteria.

TeamCity adds default filters to a locator that does not name a state (``state:finished``,
default branch only, no canceled or personal builds). Looking for "the build this task
started" must not be fooled by them, so ``state`` defaults to ``any`` and ``defaultFilter:false``
is sent whenever a tag or state is asked for (the contract's retry lookup).
"""

from __future__ import annotations

import re

from rotator.provider.teamcity.errors import TeamCityConfigError

STATES = {
    "any": "any",
    "queued": "queued",
    "running": "running",
    "finished": "finished",
    "active": "(queued:true,running:true)",
}
_PLAIN = re.compile(r"[^,():\s]+")


def _value(name: str, value: str) -> str:
    """A locator value; the characters that structure a locator are refused, not guessed at."""
    text = str(value)
    if not _PLAIN.fullmatch(text):
        raise TeamCityConfigError(
            f"{name} {text!r} cannot be used in a TeamCity locator (no commas, parentheses, "
            "colons or spaces)"
        )
    return text


def build_locator(
    *,
    build_type_id: str | None = None,
    tag: str | None = None,
    branch: str | None = None,
    state: str = "any",
    count: int | None = None,
) -> str:
    """``buildType:(id:X),tag:T,branch:B,state:S,defaultFilter:false[,count:N]``.

    ``state`` is one of ``any``, ``queued``, ``running``, ``finished`` or ``active`` (queued or
    running). ``branch=None`` means any branch.
    """
    if state not in STATES:
        raise TeamCityConfigError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    parts = []
    if build_type_id:
        parts.append(f"buildType:(id:{_value('build type', build_type_id)})")
    if tag:
        parts.append(f"tag:{_value('tag', tag)}")
    parts.append(f"branch:{_value('branch', branch)}" if branch else "branch:(default:any)")
    parts.append(f"state:{STATES[state]}")
    parts.append("defaultFilter:false")
    if count is not None:
        parts.append(f"count:{int(count)}")
    return ",".join(parts)
