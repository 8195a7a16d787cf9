"""Builds: the queue, the lifecycle queued -> running -> finished, cancelation, and who may
see or stop a build, as the contract's "Builds" section describes the server (finding builds
by locator is ``build_finder.py``).

A build follows its build type's ``BuildPlan``: how long it waits in the queue, how long it
runs, and how it ends. Time is the model's clock (``Model.now``, moved by tests with
``advance_clock``), and transitions are applied lazily, whenever builds are looked at
(``advance``), at the instants the plan scheduled: a test that moves the clock by an hour sees
``startDate``/``finishDate`` exactly where the plan put them, without sleeping. A plan with
``queue_seconds=None`` (or ``run_seconds=None``) holds the build until the test starts (or
finishes) it.

Everything here runs under the model's lock; the functions take the model instead of keeping a
reference to it, because the test fixtures reset a shared simulator by swapping the model's
attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rotator.sim.teamcity import oidc
from rotator.sim.teamcity.errors import Forbidden, LocatorError, NotFoundError

if TYPE_CHECKING:
    from rotator.sim.teamcity.model import BuildType, Model, Principal

STATES = ("queued", "running", "finished")
OUTCOMES = ("SUCCESS", "FAILURE")
REST_CANCEL_COMMENT = "Canceled via REST API"


@dataclass(frozen=True)
class BuildPlan:
    """How builds of one build type go. Times are seconds on the simulator's clock.

    ``queue_seconds``/``run_seconds`` None: the build waits for ``start``/``finish`` from the
    test. ``stop_seconds``: how long a stop takes (the cancel answer may still say
    ``running``; the contract could not verify the real duration). ``settle_seconds``: how
    long a just-finished build reads ``status: UNKNOWN`` (JetBrains' CLI saw it briefly).
    """

    queue_seconds: float | None = 1.0
    run_seconds: float | None = 3.0
    status: str = "SUCCESS"
    status_text: str | None = None  # the finished text; default "Success" / "Failure"
    running_status: str = "SUCCESS"  # "so far", while running
    running_text: str = "Running"
    wait_reason: str | None = None
    stop_seconds: float = 0.0
    settle_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in OUTCOMES or self.running_status not in OUTCOMES:
            raise ValueError(f"a build ends SUCCESS or FAILURE, not {self.status!r}")
        for name in ("queue_seconds", "run_seconds", "stop_seconds", "settle_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def final_text(self) -> str:
        if self.status_text is not None:
            return self.status_text
        return "Success" if self.status == "SUCCESS" else "Failure"


HELD = BuildPlan(queue_seconds=None, run_seconds=None)
"""Builds stay queued until the test starts them, then run until it finishes them."""


@dataclass
class Canceled:
    user: str | None
    at: datetime
    text: str | None


@dataclass
class Build:
    id: int
    build_type: str
    queued_date: datetime
    plan: BuildPlan = HELD
    number: str | None = None
    state: str = "queued"  # queued | running | finished
    status: str | None = None  # SUCCESS | FAILURE | UNKNOWN once started
    status_text: str | None = None
    start_date: datetime | None = None
    finish_date: datetime | None = None
    triggered_by: str | None = None
    branch_name: str | None = None
    default_branch: bool = True
    personal: bool = False
    comment: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    queue_order: float = 0.0
    canceled: Canceled | None = None
    failed_to_start: bool = False
    starts_at: datetime | None = None  # precise instants the plan scheduled; None: held
    finishes_at: datetime | None = None
    stops_at: datetime | None = None

    @property
    def started(self) -> bool:
        return self.start_date is not None

    def visible_status(self, now: datetime) -> str | None:
        """``status`` as a client reads it at ``now`` (``UNKNOWN`` while settling)."""
        if (
            self.state == "finished"
            and self.canceled is None
            and self.finish_date is not None
            and now < self.finish_date + timedelta(seconds=self.plan.settle_seconds)
        ):
            return "UNKNOWN"
        return self.status


# -- the lifecycle ------------------------------------------------------------------------


def plan_for(model: Model, build_type: str) -> BuildPlan:
    return model.build_plans.get(build_type, model.default_plan)


def queue(
    model: Model,
    build_type: BuildType,
    caller: Principal | None,
    *,
    branch: str | None = None,
    personal: bool = False,
    comment: str | None = None,
    properties: dict[str, str] | None = None,
    tags: list[str] | None = None,
    at_top: bool = False,
) -> Build:
    """Queue a build (permission checks are the caller's job)."""
    advance(model)
    now = model.precise_now()
    plan = plan_for(model, build_type.id)
    if branch is None and build_type.default_branch is not None:
        branch = build_type.default_branch
    model.queue_counter += 1
    build = Build(
        id=max(model.builds, default=0) + 1,
        build_type=build_type.id,
        queued_date=now,
        plan=plan,
        triggered_by=caller.user.username if caller else None,
        branch_name=branch,
        default_branch=branch is None or branch == build_type.default_branch,
        personal=personal,
        comment=comment,
        properties=dict(properties or {}),
        tags=_unique(tags or []),
        queue_order=-model.queue_counter if at_top else model.queue_counter,
        starts_at=None if plan.queue_seconds is None else now + _secs(plan.queue_seconds),
    )
    model.builds[build.id] = build
    return build


def advance(model: Model) -> None:
    """Apply every transition whose scheduled instant has passed."""
    now = model.precise_now()
    for build in sorted(model.builds.values(), key=lambda b: b.id):
        if build.state == "queued" and build.starts_at is not None and build.starts_at <= now:
            start(model, build, at=build.starts_at)
        if build.state == "running" and build.stops_at is not None and build.stops_at <= now:
            _stop(build, build.stops_at, model)
        if build.state == "running" and build.finishes_at is not None and build.finishes_at <= now:
            finish(model, build, at=build.finishes_at)


def start(model: Model, build: Build, *, at: datetime | None = None) -> None:
    """queued -> running: the build gets its number and a status "so far"."""
    if build.state != "queued":
        raise ValueError(f"build {build.id} is {build.state}, not queued")
    at = at or model.precise_now()
    model.build_counters[build.build_type] = model.build_counters.get(build.build_type, 0) + 1
    build.number = str(model.build_counters[build.build_type])
    build.state, build.start_date = "running", at
    build.status, build.status_text = build.plan.running_status, build.plan.running_text
    build.starts_at = None
    if build.plan.run_seconds is not None:
        build.finishes_at = at + _secs(build.plan.run_seconds)
    oidc.build_started(model, build)  # the OIDC plugin: build credentials, in-params token


def finish(
    model: Model,
    build: Build,
    status: str | None = None,
    text: str | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """-> finished with ``status`` (default: the plan's outcome); a queued build starts first."""
    if build.state == "finished":
        raise ValueError(f"build {build.id} already finished")
    at = at or model.precise_now()
    if build.state == "queued":
        start(model, build, at=at)
    outcome = status or build.plan.status
    if outcome not in OUTCOMES:
        raise ValueError(f"a build ends SUCCESS or FAILURE, not {outcome!r}")
    if text is None:
        text = build.plan.final_text if status in (None, build.plan.status) else outcome.title()
    build.state, build.status, build.status_text = "finished", outcome, text
    build.finish_date, build.finishes_at = at, None


def cancel(model: Model, build: Build, user: str | None, comment: str | None) -> None:
    """Cancel a queued build (it becomes a finished, canceled build with the same id) or
    ask a running one to stop (it stops after the plan's ``stop_seconds``)."""
    now = model.precise_now()
    if build.state == "queued":
        build.canceled = Canceled(user, now, comment)
        build.state, build.number = "finished", "N/A"
        build.status, build.status_text = "UNKNOWN", model.canceled_status_text
        # No start; the contract does not say whether a canceled queued build has a
        # finishDate. It is finished, and clients time "finished" by finishDate: set it.
        build.finish_date, build.starts_at = now, None
    elif build.state == "running" and build.canceled is None:
        build.canceled = Canceled(user, now, comment)
        build.stops_at = now + _secs(build.plan.stop_seconds)
        if build.plan.stop_seconds == 0:
            _stop(build, now, model)


def _stop(build: Build, at: datetime, model: Model) -> None:
    build.state, build.status, build.status_text = "finished", "UNKNOWN", model.canceled_status_text
    build.finish_date, build.finishes_at, build.stops_at = at, None, None


def requeue_copy(model: Model, build: Build, caller: Principal) -> Build:
    """``readdIntoQueue: true`` on a running build: the same build, queued again."""
    build_type = model.build_types[build.build_type]
    return queue(
        model,
        build_type,
        caller,
        branch=build.branch_name,
        personal=build.personal,
        comment=build.comment,
        properties=build.properties,
        tags=build.tags,
    )


def _secs(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


# -- permissions ---------------------------------------------------------------------------


def can_view(model: Model, build: Build, caller: Principal) -> bool:
    return caller.can(model, model.build_types[build.build_type].project, "view_project")


def can_stop(model: Model, build: Build, caller: Principal) -> bool:
    """TeamCity's "Stop build / remove from queue": the simulator grants it with "Run build",
    and to whoever triggered the build."""
    project = model.build_types[build.build_type].project
    return build.triggered_by == caller.user.username or caller.can(model, project, "run_build")


def by_id(model: Model, raw: str, caller: Principal) -> Build:
    """``id:N``: any state; 404 ``No build found by id 'N'.``; 403 if not visible."""
    build = model.builds.get(int(raw)) if (raw.isascii() and raw.isdigit()) else None
    if build is None:
        if not (raw.isascii() and raw.isdigit()):
            raise LocatorError(f"Invalid value of dimension 'id': '{raw}'. Should be a number.")
        raise NotFoundError(f"No build found by id '{raw}'.")
    if not can_view(model, build, caller):
        raise Forbidden(f"Not enough permissions to access build with id: {raw}")
    return build


def with_plan(plan: BuildPlan, **changes: object) -> BuildPlan:
    return replace(plan, **changes)  # type: ignore[arg-type]
