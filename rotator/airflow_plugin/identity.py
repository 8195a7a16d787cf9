"""The identity-aware trigger endpoint: a TeamCity build triggers a DAG with its own OIDC token,
no stored credential (``rotator.identity`` decides; this module is its HTTP face in Airflow).

- ``POST /rotator/identity/v1/dags/{dag_id}/dagRuns``, ``Authorization: Bearer <build JWT>``,
  the body of Airflow's own trigger endpoint (``conf``, ``logical_date``, ``note``, ...):
  401 (the token proves nothing), 503 (the issuer's keys are unavailable: fail closed), 422
  (a body Airflow's model refuses), 403 (``[[identity.allow]]`` does not allow it), 409 (the
  token's ``max_runs`` are spent), then Airflow's own ``trigger_dag_run`` with its checks (404
  no such DAG or stale, 400 import errors, manual runs not allowed, params invalid).
- ``GET /rotator/identity/v1/dags/{dag_id}/dagRuns/{run_id}``: the run's state, for the build
  that started it only (any other caller gets the same 404 as for a run that does not exist).

Airflow does not authenticate plugin apps, so every route here checks the token itself and
nothing else grants access: Airflow's session cookies and its own JWTs mean nothing here.
The run is created by Airflow's code path behind ``POST /api/v2/dags/{dag_id}/dagRuns``
(``trigger_dag_run``, called with a user named ``teamcity:<build type>#<build id>`` and no
referer, so ``triggered_by`` is ``rest_api``). The policy comes from ``rotator.toml``
(``$ROTATOR_CONFIG`` or the API server's working directory), re-read when the file changes.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from rotator.identity.gate import Decision, Gate, triggering_user
from rotator.identity.replay import ReplayCounter

log = logging.getLogger(__name__)

router = APIRouter(prefix="/identity/v1", tags=["identity"])
_replay = ReplayCounter()  # outlives config reloads: a budget spent stays spent
_lock = threading.Lock()
_cached: tuple[Any, Gate] | None = None
_dag_bag: Any = None


@dataclass(frozen=True)
class BuildUser:
    """The triggering user Airflow records: ``teamcity:<build type>#<build id>``."""

    name: str

    def get_name(self) -> str:
        return self.name

    def get_id(self) -> str:
        return self.name


class _NoReferer:
    """What ``trigger_dag_run`` reads of the request: headers without a referer, so the run
    is ``triggered_by: rest_api`` whatever the build's HTTP client sends."""

    headers: dict[str, str] = {}


def _metric(name: str, tags: Any) -> None:
    from airflow.stats import Stats

    Stats.incr(name, tags=dict(tags))


def gate() -> Gate:
    """The gate for the current rotator.toml (rebuilt when the file changes); 503 when the
    file is broken or has no ``[identity]``."""
    global _cached
    from rotator.config import config_path, load
    from rotator.errors import ConfigError

    path = config_path()
    try:
        stamp = (str(path), os.stat(path).st_mtime_ns, os.stat(path).st_size) if path else None
    except OSError:
        stamp = None
    with _lock:
        if _cached is not None and _cached[0] == stamp and stamp is not None:
            return _cached[1]
        try:
            config = load()
        except ConfigError as exc:
            raise HTTPException(503, f"identity triggering is off: {exc}") from None
        if config.identity is None:
            raise HTTPException(503, "identity triggering is off: rotator.toml has no [identity]")
        from rotator.audit import Audit

        audit = Audit(config.engine.audit_file) if config.engine.audit_file else Audit()
        built = Gate(config.identity, replay=_replay, audit=audit, metric=_metric)
        _cached = (stamp, built)
        return built


def _bearer(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _refuse(decision: Decision) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if decision.status == 401 else {}
    # A 403 goes to a caller with a valid build token: which rule and which claim failed would
    # teach it the policy, so that stays in the audit event and `rotator identity check`.
    detail = (
        "the identity policy does not allow this build to do this (the audit log says why)"
        if decision.status == 403
        else decision.reason
    )
    return JSONResponse({"detail": detail}, decision.status, headers=headers)


def _airflow_dag_bag() -> Any:
    global _dag_bag
    if _dag_bag is None:
        from airflow.api_fastapi.common.dagbag import create_dag_bag

        _dag_bag = create_dag_bag()
    return _dag_bag


@router.post("/dags/{dag_id}/dagRuns")
async def trigger(dag_id: str, request: Request) -> Any:
    """Verify the build's token, apply the policy, trigger through Airflow's own code."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from pydantic import ValidationError

    g = gate()
    verified = g.authenticate(_bearer(request))
    if not verified.allowed:
        g.record(verified, dag_id)
        return _refuse(verified)
    try:
        raw = await request.json()
        body = TriggerDAGRunPostBody.model_validate(raw)
    except ValidationError as exc:
        return JSONResponse({"detail": exc.errors(include_url=False, include_input=False)}, 422)
    except ValueError:
        return JSONResponse({"detail": "the body is not JSON"}, 422)
    decision = g.judge(verified.claims, dag_id, (body.conf or {}).keys())
    if not decision.allowed:
        g.record(decision, dag_id)
        return _refuse(decision)
    from starlette.concurrency import run_in_threadpool

    try:
        answer = await run_in_threadpool(_create_run, dag_id, body, decision)
    except HTTPException as exc:
        g.release(decision)
        g.record(decision, dag_id, outcome="failed", error=f"Airflow refused: {exc.detail}")
        raise
    g.record(decision, dag_id, run_id=answer["dag_run_id"])
    return answer


def _create_run(dag_id: str, body: Any, decision: Decision) -> dict[str, Any]:
    from airflow.api_fastapi.core_api.routes.public.dag_run import trigger_dag_run
    from airflow.utils.session import create_session
    from sqlalchemy.exc import IntegrityError

    try:
        with create_session(scoped=False) as session:
            run = trigger_dag_run(
                dag_id=dag_id,
                body=body,
                dag_bag=_airflow_dag_bag(),
                user=BuildUser(decision.triggering_user),
                session=session,
                request=_NoReferer(),  # type: ignore[arg-type]
            )
            session.flush()
            answer = {
                "dag_id": run.dag_id,
                "dag_run_id": run.run_id,
                "state": str(run.state),
                "run_type": str(run.run_type),
                "triggered_by": str(run.triggered_by),
                "triggering_user_name": run.triggering_user_name,
                "logical_date": run.logical_date,
                "conf": run.conf,
                "rule": decision.rule,
            }
    except IntegrityError:
        raise HTTPException(409, f"a run with that id already exists for {dag_id!r}") from None
    return answer


@router.get("/dags/{dag_id}/dagRuns/{run_id}")
def run_state(dag_id: str, run_id: str, request: Request) -> Any:
    """A run this build started (else 404: other builds' runs are not confirmed to exist)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    verified = gate().authenticate(_bearer(request))
    if not verified.allowed:
        return _refuse(verified)
    with create_session(scoped=False) as session:
        run = session.scalar(
            select(DagRun).where(
                DagRun.dag_id == dag_id,
                DagRun.run_id == run_id,
                DagRun.triggering_user_name == triggering_user(verified.claims),
            )
        )
        if run is None:
            raise HTTPException(404, f"no run {run_id!r} of {dag_id!r} started by this build")
        return {
            "dag_id": run.dag_id,
            "dag_run_id": run.run_id,
            "state": str(run.state),
            "start_date": run.start_date,
            "end_date": run.end_date,
        }
