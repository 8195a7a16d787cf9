"""What tests (and the demo) do to builds that a real server's agents and users would do:
``sim.builds``.

::

    sim.builds.plan("DataPipelines_Publish", queue_seconds=2, run_seconds=30,
                    status="FAILURE", status_text="Tests failed: 3")
    sim.builds.hold("DataPipelines_Publish")   # builds wait for start()/finish()
    b = sim.builds.queue("DataPipelines_Publish", tags=["k"])   # as a user would
    sim.builds.start(b.id); sim.builds.finish(b.id, "FAILURE", "Exit code 1")
    sim.builds.cancel(b.id, comment="stopped from the UI")
    sim.advance_clock(60)                       # scheduled transitions happen on the clock
    sim.builds.get(b.id).state                  # "queued" | "running" | "finished"

Every call takes the model's lock and first applies the transitions that are due, so what it
returns is what a client asking at that moment would see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from rotator.sim.teamcity import builds as lifecycle
from rotator.sim.teamcity.builds import HELD, Build, BuildPlan
from rotator.sim.teamcity.model import Principal

if TYPE_CHECKING:
    from rotator.sim.teamcity.model import Model


class BuildControl:
    """The build lifecycle's test API, over the simulator's model (see the module doc)."""

    def __init__(self, model: Model) -> None:
        self._model = model

    def plan(self, build_type: str, **settings: object) -> BuildPlan:
        """Set how builds of ``build_type`` queued from now on go (``BuildPlan`` fields:
        ``queue_seconds``, ``run_seconds``, ``status``, ``status_text``, ``running_status``,
        ``running_text``, ``wait_reason``, ``stop_seconds``, ``settle_seconds``)."""
        model = self._model
        with model.lock:
            if build_type not in model.build_types:
                raise KeyError(f"no build type {build_type!r}")
            plan = BuildPlan(**settings)  # type: ignore[arg-type]
            model.build_plans[build_type] = plan
            return plan

    def hold(self, build_type: str | None = None) -> None:
        """Builds of ``build_type`` (of every type without a plan, if None) wait for
        ``start``/``finish``."""
        with self._model.lock:
            if build_type is None:
                self._model.default_plan = HELD
            else:
                self.plan(build_type, queue_seconds=None, run_seconds=None)

    def default(self, **settings: object) -> BuildPlan:
        """The plan of build types that have none of their own."""
        with self._model.lock:
            self._model.default_plan = BuildPlan(**settings)  # type: ignore[arg-type]
            return self._model.default_plan

    def queue(
        self,
        build_type: str,
        *,
        user: str = "admin",
        branch: str | None = None,
        tags: Iterable[str] = (),
        properties: dict[str, str] | None = None,
        comment: str | None = None,
    ) -> Build:
        """Queue a build as ``user`` would from the UI (no permission check)."""
        model = self._model
        with model.lock:
            caller = model.find_user(user)
            return lifecycle.queue(
                model,
                model.build_types[build_type],
                Principal(caller) if caller else None,
                branch=branch,
                tags=list(tags),
                properties=properties,
                comment=comment,
            )

    def get(self, build_id: int) -> Build:
        """A copy of the build as it is now."""
        with self._model.lock:
            lifecycle.advance(self._model)
            return replace(self._model.builds[build_id])

    def all(self, build_type: str | None = None) -> list[Build]:
        with self._model.lock:
            lifecycle.advance(self._model)
            return [
                replace(b)
                for b in sorted(self._model.builds.values(), key=lambda b: b.id)
                if build_type is None or b.build_type == build_type
            ]

    def start(self, build_id: int) -> Build:
        """An agent picks the queued build up now."""
        with self._model.lock:
            lifecycle.advance(self._model)
            build = self._model.builds[build_id]
            lifecycle.start(self._model, build)
            return replace(build)

    def finish(self, build_id: int, status: str | None = None, text: str | None = None) -> Build:
        """Finish now with ``status`` (default: the plan's outcome) and ``text``."""
        with self._model.lock:
            lifecycle.advance(self._model)
            build = self._model.builds[build_id]
            lifecycle.finish(self._model, build, status, text)
            return replace(build)

    def cancel(self, build_id: int, comment: str | None = None, user: str = "admin") -> Build:
        """Cancel from the UI: a queued build is removed, a running one stops."""
        with self._model.lock:
            lifecycle.advance(self._model)
            build = self._model.builds[build_id]
            if build.state == "finished":
                raise ValueError(f"build {build_id} already finished")
            lifecycle.cancel(self._model, build, user, comment)
            return replace(build)
