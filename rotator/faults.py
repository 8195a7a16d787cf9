"""Fault-injection points at every step boundary of the rotation protocol.

The reliability suite kills the rotator at each point and checks that the next run converges.
``ROTATOR_FAULT`` holds comma-separated ``<when>:<step>[:<action>]`` entries: ``when`` is
``before`` or ``after``; ``step`` one of ``STEPS``; ``action`` ``kill`` (SIGKILL to ourselves,
the default: no cleanup, no ``finally``) or ``raise`` (an ``InjectedFault``). Example:
``ROTATOR_FAULT=after:mint`` dies with a token minted at TeamCity and not yet in the store.
Unset, every point is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

from rotator.errors import RotatorError

STEPS = (
    "lock",
    "intent",
    "mint",
    "stage",
    "apply",
    "verify",
    "promote",
    "push",
    "retire",
    "unlock",
)
POINTS = tuple(f"{when}:{step}" for step in STEPS for when in ("before", "after"))


class InjectedFault(BaseException):
    """Raised at a fault point configured with ``raise``. A ``BaseException`` on purpose: like
    a crash, no error handler of the engine may catch it and tidy up."""


def _parse(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        when, _, rest = entry.partition(":")
        step, _, action = rest.partition(":")
        point = f"{when}:{step}"
        if point not in POINTS or action not in ("", "kill", "raise"):
            raise RotatorError(f"ROTATOR_FAULT: unknown fault point {entry!r}")
        out[point] = action or "kill"
    return out


def point(name: str) -> None:
    """Fire the fault configured for ``name`` (e.g. ``after:mint``), if any."""
    raw = os.environ.get("ROTATOR_FAULT")
    if not raw:
        return
    action = _parse(raw).get(name)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise InjectedFault(f"injected fault at {name}")
