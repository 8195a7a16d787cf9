"""``TeamCityRunBuildOperator``: queue a TeamCity build and (by default) wait for it.

What it guarantees, and why:

- **No second build on a retry.** The build is tagged with a key derived from the DAG id, run
  id, task id and map index. A retry (the worker died after queueing, the task was cleared)
  first looks for a queued or running build with that key and waits on it instead of queueing
  another (``reuse_existing_build``). A finished build is not reused: a retry after a failed
  build runs a new one.
- **No leaked build.** ``execution_timeout`` cancels the build in both modes: synchronously,
  Airflow calls ``on_kill``; deferred, the trigger fires a ``timeout`` event at the deadline
  and ``execute_complete`` cancels. Marking the task failed or stopping the run cancels it too
  (``on_kill`` here, the trigger's ``on_kill`` while deferred; ``cancel_on_kill=False`` leaves
  the build running).
- **Waiting costs no worker slot** with ``deferrable=True`` (default: ``[operators]
  default_deferrable``); before deferring it checks whether the build already finished.
- **The outcome is TeamCity's.** A failed or canceled build fails the task with TeamCity's
  ``statusText``; the build id is the task's return value and, with its web URL, is in XCom
  (``build_id``, ``build_url``) behind the "TeamCity build" link.

Example::

    run = TeamCityRunBuildOperator(
        task_id="publish",
        build_type_id="DataPipelines_Publish",
        branch="main",
        properties={"env.TARGET": "{{ ds }}"},
        deferrable=True,
        execution_timeout=timedelta(hours=1),
    )
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, conf

from rotator.provider.teamcity import metrics
from rotator.provider.teamcity.builds import SUCCESS, TERMINAL, Build
from rotator.provider.teamcity.errors import TeamCityBuildFailed, TeamCityConfigError, TeamCityError
from rotator.provider.teamcity.hooks import DEFAULT_CONN_ID, TeamCityHook
from rotator.provider.teamcity.links import XCOM_BUILD_ID, XCOM_BUILD_URL, TeamCityBuildLink
from rotator.provider.teamcity.triggers import (
    DEFAULT_POLL_INTERVAL,
    TeamCityBuildTrigger,
    build_summary,
    event_for,
)

DEFERRAL_MARGIN = timedelta(minutes=5)
"""How long after the trigger's own deadline Airflow's deferral timeout steps in. The trigger
fires first and the build is canceled; Airflow's timeout is only the backstop for a triggerer
that is gone."""


def idempotency_tag(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The tag that marks the build of one task instance, the same on every try.

    A hash, because run ids hold ``:`` and ``+``, which a TeamCity locator cannot carry.
    """
    raw = "\0".join((dag_id, run_id, task_id, str(map_index)))
    return "airflow-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def _positive(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TeamCityConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if number <= 0:
        raise TeamCityConfigError(f"{name} must be > 0, not {value!r}")
    return number


class TeamCityRunBuildOperator(BaseOperator):
    """Queue a build of ``build_type_id`` at TeamCity and wait for it to finish.

    :param build_type_id: the build configuration's id (templated).
    :param branch: the branch to build (templated); default: TeamCity's default branch.
    :param properties: build parameters, ``{"env.X": "v"}`` (templated).
    :param comment: the build's comment (templated).
    :param tags: extra tags for the build (templated).
    :param teamcity_conn_id: the connection with the server URL and token.
    :param wait_for_termination: wait for the build (default); else return once queued.
    :param deferrable: wait in the triggerer, holding no worker slot.
    :param poll_interval: seconds between status checks (default 10).
    :param reuse_existing_build: on a retry, wait on this task instance's queued or running
        build instead of queueing another (default).
    :param cancel_on_kill: cancel the build when the task is killed or times out (default).
    """

    template_fields: Sequence[str] = ("build_type_id", "branch", "properties", "comment", "tags")
    template_fields_renderers = {"properties": "json"}
    operator_extra_links = (TeamCityBuildLink(),)
    ui_color = "#b4e0f7"

    def __init__(
        self,
        *,
        build_type_id: str,
        branch: str | None = None,
        properties: dict[str, Any] | None = None,
        comment: str | None = None,
        tags: list[str] | None = None,
        teamcity_conn_id: str = DEFAULT_CONN_ID,
        wait_for_termination: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        reuse_existing_build: bool = True,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not build_type_id or not isinstance(build_type_id, str):
            raise TeamCityConfigError(
                f"{self.task_id}: build_type_id must be a TeamCity build configuration id"
            )
        if properties is not None and not isinstance(properties, dict):
            raise TeamCityConfigError(f"{self.task_id}: properties must be a dict")
        if tags is not None and (isinstance(tags, str) or not isinstance(tags, list | tuple)):
            raise TeamCityConfigError(f"{self.task_id}: tags must be a list of strings")
        self.build_type_id = build_type_id
        self.branch = branch
        self.properties = properties
        self.comment = comment
        self.tags = list(tags) if tags else None
        self.teamcity_conn_id = teamcity_conn_id
        self.wait_for_termination = wait_for_termination
        self.deferrable = deferrable
        self.poll_interval = _positive("poll_interval", poll_interval)
        self.reuse_existing_build = reuse_existing_build
        self.cancel_on_kill = cancel_on_kill
        self.build_id: int | None = None

    def _hook(self) -> TeamCityHook:
        return TeamCityHook(self.teamcity_conn_id)

    # -- start ---------------------------------------------------------------------------
    def execute(self, context: Any) -> int:
        ti = context["ti"]
        tag = idempotency_tag(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        hook = self._hook()
        build = self._existing(hook, tag) if self.reuse_existing_build else None
        if build is None:
            build = hook.trigger_build(
                self.build_type_id,
                branch=self.branch,
                properties=self.properties,
                comment=self.comment,
                tags=self.tags,
                idempotency_tag=tag,
            )
            self.log.info(
                "queued TeamCity build %d of %s (tag %s)", build.id, self.build_type_id, tag
            )
        self.build_id = build.id
        ti.xcom_push(key=XCOM_BUILD_ID, value=build.id)
        ti.xcom_push(key=XCOM_BUILD_URL, value=build.web_url)
        if not self.wait_for_termination:
            return build.id
        deadline = (
            time.time() + self.execution_timeout.total_seconds() if self.execution_timeout else None
        )
        if self.deferrable:
            return self._defer(hook, build, deadline, context)
        return self._poll(hook, build, deadline, context)

    def _existing(self, hook: TeamCityHook, tag: str) -> Build | None:
        found = hook.find_builds(build_type_id=self.build_type_id, tag=tag, state="active")
        if found:
            self.log.info(
                "an earlier try already queued TeamCity build %d (tag %s, %s): waiting on it "
                "instead of queueing another",
                found[0].id,
                tag,
                found[0].state,
            )
            return found[0]
        return None

    # -- wait ----------------------------------------------------------------------------
    def _defer(self, hook: TeamCityHook, build: Build, deadline: float | None, context: Any) -> int:
        build = hook.get_build(build.id)  # it may have finished already: no deferral then
        if build.outcome in TERMINAL:
            return self._finish(event_for(build, build.outcome), context)
        timeout = None
        if deadline is not None:
            timeout = timedelta(seconds=max(deadline - time.time(), 0)) + DEFERRAL_MARGIN
        self.log.info("%s; deferring, polling every %.0f s", build.describe(), self.poll_interval)
        self.defer(
            trigger=TeamCityBuildTrigger(
                build_id=build.id,
                teamcity_conn_id=self.teamcity_conn_id,
                poll_interval=self.poll_interval,
                end_time=deadline,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            timeout=timeout,
        )
        raise AssertionError("defer() returned")  # pragma: no cover

    def _poll(self, hook: TeamCityHook, build: Build, deadline: float | None, context: Any) -> int:
        """Wait in this worker slot (``deferrable=False``)."""
        self.log.info("%s; polling every %.0f s", build.describe(), self.poll_interval)
        unsettled = 0
        while True:
            build = hook.get_build(build.id)
            if build.outcome in TERMINAL:
                return self._finish(event_for(build, build.outcome), context)
            if build.outcome == "unsettled" and unsettled < 10:
                unsettled += 1
                time.sleep(1)  # TeamCity's status settles a moment after the build finished
                continue
            left = None if deadline is None else deadline - time.time()
            if left is not None and left <= 0:
                return self._finish(event_for(build, "timeout", "deadline passed"), context)
            time.sleep(self.poll_interval if left is None else min(self.poll_interval, left))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> int:
        """Resumed from the trigger: turn its event into the task's outcome."""
        return self._finish(event, context)

    # -- end -----------------------------------------------------------------------------
    def _finish(self, event: dict[str, Any], context: Any) -> int:
        build_id = int(event["build_id"])
        self.build_id = build_id
        status = event.get("status")
        summary = event.get("build") or {}
        if summary.get("web_url"):  # a queued build's URL points at the queue; this one lasts
            context["ti"].xcom_push(key=XCOM_BUILD_URL, value=summary["web_url"])
        latency = metrics.build_event_latency(
            event.get("finish_date"),
            event.get("noticed_at"),
            dag_id=context["ti"].dag_id,
            task_id=context["ti"].task_id,
            build_type_id=summary.get("build_type_id"),
            outcome=str(status),
        )
        if latency is not None:
            self.log.info(
                "Airflow noticed the end of build %d %.1f s after TeamCity's finishDate",
                build_id,
                latency,
            )
        if status == SUCCESS:
            self.log.info("%s", event.get("message"))
            return build_id
        if status == "timeout":
            self._cancel(build_id, "Canceled by Airflow: the task's execution_timeout passed")
            raise TeamCityBuildFailed(
                f"TeamCity build {build_id} did not finish within the task's execution_timeout; "
                "Airflow canceled it",
                build_id,
            )
        if status in ("failed", "canceled"):
            text = event.get("status_text") or summary.get("status_text") or "no status text"
            raise TeamCityBuildFailed(f"TeamCity build {build_id} {status}: {text}", build_id)
        raise TeamCityError(str(event.get("message") or f"unexpected event {status!r}"))

    def _cancel(self, build_id: int, comment: str) -> None:
        if not self.cancel_on_kill:
            self.log.warning("leaving TeamCity build %d running (cancel_on_kill=False)", build_id)
            return
        try:
            build = self._hook().cancel_build(build_id, comment)
        except TeamCityError as exc:
            self.log.error("could not cancel TeamCity build %d: %s", build_id, exc)
            return
        self.log.info("canceled TeamCity build %d (%s)", build_id, build_summary(build)["state"])

    def on_kill(self) -> None:
        """The task was killed while it waited in the worker (mark failed, timeout)."""
        if self.build_id is not None and self.wait_for_termination:
            self._cancel(self.build_id, "Canceled by Airflow: the task was stopped")
