"""What one notification says, for a person reading it on a phone.

A ``Notice`` holds only names, ids, steps, times and the engine's error text (which never
holds a secret: ``rotator.targets.http`` redacts every known value before an error is built).
It has no field for a credential's value, so none can be sent by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rotator.engine import Outcome

HINTS = {
    "failed": "the current credential was kept; see `rotator history {credential}`, fix the "
    "cause, then `rotator rotate {credential}`",
    "rotated": "consumers pick the new value up from the store",
    "expiring": "it expires within its lead time and was not replaced; `rotator status` and "
    "`rotator history {credential}` say why",
    "retire-overdue": "an old credential is still alive past its grace period; `rotator rotate "
    "{credential}` retries the retirement",
    "lock-stuck": "a rotator holds the lock far longer than a rotation takes; check the holder "
    "named above (a lease lapses by itself once its holder stops)",
    "foreign-expiring": "tokens Rotator does not manage; `rotator audit teamcity` lists them "
    "(Rotator revokes none of them)",
}
TYPES = {"failed": "failure", "rotated": "success"}
"""apprise notify types (colour, icon); everything else is a warning."""


@dataclass(frozen=True)
class Notice:
    event: str
    credential: str | None
    """None for notices about no managed credential (the standing-token audit)."""
    summary: str
    rotation_id: str | None = None
    step: str | None = None
    reason: str | None = None
    next_due: datetime | None = None
    details: tuple[str, ...] = ()
    state: str = ""
    """For conditions that last (expiring, stuck, overdue): the same state is not sent again
    until ``Notifier.repeat`` has passed; empty for one-off events."""

    @property
    def title(self) -> str:
        about = f" {self.credential}" if self.credential else ""
        return f"rotator {self.event}:{about}"

    @property
    def notify_type(self) -> str:
        return TYPES.get(self.event, "warning")

    @property
    def body(self) -> str:
        lines = [self.summary]
        for label, value in (
            ("credential", self.credential),
            ("rotation", self.rotation_id),
            ("step", self.step),
            ("reason", self.reason),
            ("next due", self.next_due.isoformat(timespec="seconds") if self.next_due else None),
        ):
            if value:
                lines.append(f"{label}: {value}")
        lines.extend(self.details)
        hint = HINTS.get(self.event)
        if hint:
            lines.append("hint: " + hint.format(credential=self.credential or "NAME"))
        return "\n".join(lines)


def from_outcome(outcome: Outcome, next_due: datetime | None) -> Notice | None:
    """The notice an outcome deserves: a failure or a rotation; nothing for the rest."""
    if outcome.result == "failed":
        return Notice(
            "failed",
            outcome.credential,
            f"rotation of {outcome.credential} failed at {outcome.step or 'an unknown step'}",
            rotation_id=outcome.rotation_id,
            step=outcome.step,
            reason=outcome.error or outcome.reason or None,
            next_due=next_due,
        )
    if outcome.result == "rotated":
        warned = [f"warning: {w}" for w in outcome.warnings]
        return Notice(
            "rotated",
            outcome.credential,
            f"{outcome.credential} rotated to version {outcome.version or '?'}",
            rotation_id=outcome.rotation_id,
            reason=outcome.reason or None,
            next_due=next_due,
            details=tuple(warned),
        )
    return None
