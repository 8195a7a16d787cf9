"""``TeamCityBuildSensor``: wait for a TeamCity build that something else started (a TeamCity
trigger, a build step that triggered this DAG run, another task).

The build is named by id, or found by build type plus branch and/or tag (the newest match, in
any state: TeamCity's default filters would hide queued, running and non-default-branch builds).
A build that is not there yet is waited for. The sensor succeeds when the build ends in one of
``success_states`` and fails with TeamCity's status text when it ends in another; it never
cancels the build it watches. ``mode="poke"``, ``mode="reschedule"`` and ``deferrable=True``
all work; deferred, it holds no worker slot.

With ``report_trigger_latency`` (default) the first try also reports how long the DAG run took
to start after a TeamCity build step triggered it (``conf.teamcity_sent_at``, see
``metrics.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from rotator.provider.teamcity import metrics
from rotator.provider.teamcity.builds import CANCELED, FAILED, SUCCESS, TERMINAL, Build
from rotator.provider.teamcity.errors import TeamCityBuildFailed, TeamCityConfigError, TeamCityError
from rotator.provider.teamcity.hooks import DEFAULT_CONN_ID, TeamCityHook
from rotator.provider.teamcity.links import XCOM_BUILD_ID, XCOM_BUILD_URL, TeamCityBuildLink
from rotator.provider.teamcity.triggers import TeamCityBuildTrigger, event_for

OUTCOMES = (SUCCESS, FAILED, CANCELED)


class TeamCityBuildSensor(BaseSensorOperator):
    """Wait until a TeamCity build ends.

    :param build_id: the build's id (templated), or
    :param build_type_id: with ``branch`` and/or ``tag``, find the newest matching build
        (templated).
    :param success_states: outcomes that count as success (default ``["success"]``; any of
        ``success``, ``failed``, ``canceled``). The others fail the task.
    :param teamcity_conn_id: the connection with the server URL and token.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param report_trigger_latency: emit ``teamcity.dag_run_trigger_latency`` on the first try.
    """

    template_fields: Sequence[str] = ("build_id", "build_type_id", "branch", "tag")
    operator_extra_links = (TeamCityBuildLink(),)
    ui_color = "#b4e0f7"

    def __init__(
        self,
        *,
        build_id: int | str | None = None,
        build_type_id: str | None = None,
        branch: str | None = None,
        tag: str | None = None,
        success_states: Sequence[str] = (SUCCESS,),
        teamcity_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        report_trigger_latency: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if build_id in (None, "") and not build_type_id:
            raise TeamCityConfigError(
                f"{self.task_id}: give build_id, or build_type_id with branch and/or tag"
            )
        if build_type_id and not (branch or tag) and build_id in (None, ""):
            raise TeamCityConfigError(
                f"{self.task_id}: build_type_id alone would match any build of it; add a "
                "branch or a tag"
            )
        unknown = set(success_states) - set(OUTCOMES)
        if unknown or not success_states:
            raise TeamCityConfigError(
                f"{self.task_id}: success_states must be some of {', '.join(OUTCOMES)}"
            )
        self.build_id = build_id
        self.build_type_id = build_type_id
        self.branch = branch
        self.tag = tag
        self.success_states = tuple(success_states)
        self.teamcity_conn_id = teamcity_conn_id
        self.deferrable = deferrable
        self.report_trigger_latency = report_trigger_latency
        self._pushed: int | None = None

    # -- one look ------------------------------------------------------------------------
    def _find(self, hook: TeamCityHook) -> Build | None:
        if self.build_id not in (None, ""):
            try:
                number = int(str(self.build_id))
            except ValueError:
                raise TeamCityConfigError(
                    f"{self.task_id}: build_id must be a number, not {self.build_id!r}"
                ) from None
            return hook.get_build(number)
        found = hook.find_builds(
            build_type_id=self.build_type_id, branch=self.branch, tag=self.tag, count=1
        )
        return found[0] if found else None

    def _publish(self, build: Build, context: Any) -> None:
        if self._pushed != build.id:
            context["ti"].xcom_push(key=XCOM_BUILD_ID, value=build.id)
            context["ti"].xcom_push(key=XCOM_BUILD_URL, value=build.web_url)
            self._pushed = build.id

    def _decide(self, event: dict[str, Any], context: Any) -> int:
        """The end of the wait: the build id on success, an error naming TeamCity's text else."""
        build_id = int(event["build_id"])
        status = str(event.get("status"))
        summary = event.get("build") or {}
        metrics.build_event_latency(
            event.get("finish_date"),
            event.get("noticed_at"),
            dag_id=context["ti"].dag_id,
            task_id=context["ti"].task_id,
            build_type_id=summary.get("build_type_id"),
            outcome=status,
        )
        if status in self.success_states:
            self.log.info("%s", event.get("message"))
            return build_id
        if status in OUTCOMES:
            text = event.get("status_text") or "no status text"
            raise TeamCityBuildFailed(f"TeamCity build {build_id} {status}: {text}", build_id)
        if status == "timeout":
            from airflow.sdk.exceptions import AirflowSensorTimeout

            raise AirflowSensorTimeout(str(event.get("message")))
        raise TeamCityError(str(event.get("message") or f"unexpected event {status!r}"))

    def poke(self, context: Any) -> PokeReturnValue:
        build = self._find(TeamCityHook(self.teamcity_conn_id))
        if build is None:
            self.log.info("no matching TeamCity build yet")
            return PokeReturnValue(is_done=False)
        self._publish(build, context)
        if build.outcome not in TERMINAL:
            self.log.info("%s", build.describe())
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(
            is_done=True, xcom_value=self._decide(event_for(build, build.outcome), context)
        )

    # -- the wait ------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        self._report_trigger_latency(context)
        if not self.deferrable:
            return super().execute(context)
        return self._defer_or_finish(context, time.time() + self._timeout_seconds())

    def _timeout_seconds(self) -> float:
        timeout = self.timeout
        if isinstance(timeout, timedelta):
            return timeout.total_seconds()
        return float(timeout) if timeout else 7 * 24 * 3600.0

    def _defer_or_finish(self, context: Any, end_time: float) -> Any:
        build = self._find(TeamCityHook(self.teamcity_conn_id))
        if build is not None:
            self._publish(build, context)
            if build.outcome in TERMINAL:
                return self._decide(event_for(build, build.outcome), context)
            self.defer(
                trigger=TeamCityBuildTrigger(
                    build_id=build.id,
                    teamcity_conn_id=self.teamcity_conn_id,
                    poll_interval=float(self._poke_seconds()),
                    end_time=end_time,
                    cancel_on_kill=False,
                ),
                method_name="execute_complete",
            )
        if time.time() >= end_time:
            from airflow.sdk.exceptions import AirflowSensorTimeout

            raise AirflowSensorTimeout(f"{self.task_id}: no matching TeamCity build appeared")
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.log.info("no matching TeamCity build yet; looking again in %s s", self._poke_seconds())
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self._poke_seconds())),
            method_name="look_again",
            kwargs={"end_time": end_time},
        )

    def _poke_seconds(self) -> float:
        interval = self.poke_interval
        return interval.total_seconds() if isinstance(interval, timedelta) else float(interval)

    def look_again(self, context: Any, end_time: float, event: Any = None) -> Any:
        """Resumed after a pause: the build may exist now."""
        return self._defer_or_finish(context, end_time)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> int:
        return self._decide(event, context)

    def _report_trigger_latency(self, context: Any) -> None:
        ti = context["ti"]
        if not self.report_trigger_latency or getattr(ti, "try_number", 1) != 1:
            return
        if self.mode == "reschedule" and ti.xcom_pull(task_ids=ti.task_id, key="trigger_latency"):
            return
        seconds = metrics.dag_run_trigger_latency(context.get("dag_run"))
        if seconds is not None:
            self.log.info("this DAG run started %.2f s after TeamCity triggered it", seconds)
            if self.mode == "reschedule":
                ti.xcom_push(key="trigger_latency", value=seconds)
