"""``TeamCityBuildTrigger``: the triggerer's poller for one build, shared by the operator and
the sensor.

It asks for the build every ``poll_interval`` seconds and fires one event when the build
finished (``success``, ``failed``, ``canceled``, with TeamCity's ``statusText``), when
``end_time`` passed (``timeout``: the operator then cancels the build, so a deadline never
leaks one), or when TeamCity cannot be asked any more (``error``). Each event carries the time
Airflow noticed the end and TeamCity's ``finishDate``, for the event-latency metric.

A TeamCity outage is waited out for ``unreachable_grace`` seconds: a wait of hours must not
fail because TeamCity restarted. A 401 is handled by the hook (one fresh read of the token).
When a user stops the task (mark failed, clear, run timeout) Airflow 3.3 calls ``on_kill``:
with ``cancel_on_kill`` the build is canceled too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from rotator.provider.teamcity.builds import TERMINAL, UNSETTLED, Build
from rotator.provider.teamcity.errors import TeamCityError, TeamCityUnreachable
from rotator.provider.teamcity.hooks import DEFAULT_CONN_ID, TeamCityHook

DEFAULT_POLL_INTERVAL = 10.0
UNSETTLED_RECHECK = 1.0
UNSETTLED_TRIES = 10


def build_summary(build: Build) -> dict[str, Any]:
    """What an event carries about the build (JSON-safe, no secret)."""
    return {
        "id": build.id,
        "build_type_id": build.build_type_id,
        "number": build.number,
        "state": build.state,
        "status": build.status,
        "status_text": build.status_text,
        "branch_name": build.branch_name,
        "web_url": build.web_url,
    }


def event_for(build: Build, outcome: str, message: str | None = None) -> dict[str, Any]:
    return {
        "status": outcome,
        "build_id": build.id,
        "build": build_summary(build),
        "status_text": build.status_text,
        "message": message or build.describe(),
        "finish_date": build.finish_date.isoformat() if build.finish_date else None,
        "noticed_at": datetime.now(UTC).isoformat(),
    }


class TeamCityBuildTrigger(BaseTrigger):
    """Fires when TeamCity build ``build_id`` ends, or at ``end_time`` (epoch seconds)."""

    def __init__(
        self,
        build_id: int,
        teamcity_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        cancel_on_kill: bool = False,
        unreachable_grace: float = 600.0,
    ) -> None:
        super().__init__()
        self.build_id = int(build_id)
        self.teamcity_conn_id = teamcity_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.cancel_on_kill = cancel_on_kill
        self.unreachable_grace = float(unreachable_grace)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__name__}",
            {
                "build_id": self.build_id,
                "teamcity_conn_id": self.teamcity_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "cancel_on_kill": self.cancel_on_kill,
                "unreachable_grace": self.unreachable_grace,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = TeamCityHook(self.teamcity_conn_id)
        try:
            yield TriggerEvent(await self._wait(hook))
        finally:
            await hook.aclose()

    async def _wait(self, hook: TeamCityHook) -> dict[str, Any]:
        unsettled = 0
        unreachable_since: float | None = None
        build: Build | None = None
        while True:
            try:
                build = await hook.aget_build(self.build_id)
                unreachable_since = None
            except TeamCityUnreachable as exc:
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > self.unreachable_grace:
                    return self._error(f"{exc} (for more than {self.unreachable_grace:.0f} s)")
                self.log.warning("%s; still waiting for build %d", exc, self.build_id)
            except TeamCityError as exc:
                return self._error(str(exc))
            if build is not None and build.outcome in TERMINAL:
                return event_for(build, build.outcome)
            if build is not None and build.outcome == UNSETTLED:
                unsettled += 1
                if unsettled >= UNSETTLED_TRIES:
                    return event_for(build, "failed", f"{build.describe()}: status stayed UNKNOWN")
                await asyncio.sleep(UNSETTLED_RECHECK)
                continue
            left = None if self.end_time is None else self.end_time - time.time()
            if left is not None and left <= 0:
                message = f"TeamCity build {self.build_id} did not finish before the deadline"
                summary = event_for(build, "timeout", message) if build else self._error(message)
                summary["status"] = "timeout"
                return summary
            await asyncio.sleep(
                self.poll_interval if left is None else min(self.poll_interval, left)
            )

    def _error(self, message: str) -> dict[str, Any]:
        return {
            "status": "error",
            "build_id": self.build_id,
            "message": message,
            "noticed_at": datetime.now(UTC).isoformat(),
        }

    async def on_kill(self) -> None:
        """The user stopped the task: cancel the build this trigger waits on, if we own it."""
        if not self.cancel_on_kill:
            return
        hook = TeamCityHook(self.teamcity_conn_id)
        try:
            build = await hook.acancel_build(
                self.build_id, "Canceled by Airflow: the task was stopped while it waited"
            )
            self.log.info("canceled TeamCity build %d (%s)", build.id, build.state)
        finally:
            await hook.aclose()
