"""Seed files: the users, projects, build configurations and builds a simulator starts with.

Format (JSON)::

    {
      "users": [
        {"username": "admin", "name": "Administrator", "admin": true},
        {"username": "airflow-bot", "password_env": "AIRFLOW_BOT_TC_PASSWORD",
         "permissions": {"DataPipelines": ["view_project"]}}
      ],
      "projects": [
        {"id": "DataPipelines", "name": "Data Pipelines", "parent": "_Root",
         "readOnlyUI": false,
         "parameters": [{"name": "env.STAGE", "value": "prod"},
                        {"name": "env.AIRFLOW_API_TOKEN", "value": "", "type": "password"}]}
      ],
      "buildTypes": [{"id": "DataPipelines_Publish", "name": "Publish", "project": "DataPipelines",
                      "parameters": [], "defaultBranch": "main",
                      "lifecycle": {"queueSeconds": 1, "runSeconds": 5, "status": "FAILURE",
                                    "statusText": "Tests failed: 2"}}],
      "builds": [{"buildType": "DataPipelines_Publish", "state": "finished", "status": "SUCCESS"}]

A build type without ``lifecycle`` follows the model's ``default_plan``; ``queueSeconds`` or
``runSeconds`` null holds its builds until a test starts or finishes them (``builds.py``).
    }

``"guest": {"enabled": true, "permissions": {"DataPipelines": ["view_project"]}}`` turns on
guest access (``/guestAuth/``); it is off by default, as on a server.

Permissions are TeamCity's ids: ``view_project``, ``edit_project``, ``run_build``,
``view_build_runtime_data``; a project's permissions cover its subprojects. Passwords (for
Basic auth) come from ``password_env``, never from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rotator.sim.teamcity import builds as lifecycle
from rotator.sim.teamcity.builds import HELD, BuildPlan
from rotator.sim.teamcity.model import Model, Parameter

DEMO_SEED = Path(__file__).with_name("demo_seed.json")


class SeedError(ValueError):
    """The seed file is not what the format above describes."""


def load(seed: dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(seed, dict):
        return seed
    try:
        data = json.loads(Path(seed).read_text())
    except OSError as exc:
        raise SeedError(f"cannot read seed file {seed}: {exc.strerror}") from None
    except ValueError as exc:
        raise SeedError(f"seed file {seed} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SeedError(f"seed file {seed} must hold a JSON object")
    return data


def apply(model: Model, seed: dict[str, Any]) -> None:
    try:
        for user in seed.get("users", []):
            password = os.environ.get(user["password_env"]) if user.get("password_env") else None
            model.add_user(
                user["username"],
                name=user.get("name"),
                password=password,
                admin=bool(user.get("admin", False)),
                permissions=user.get("permissions") or {},
            )
        if seed.get("guest", {}).get("enabled"):
            model.enable_guest(seed["guest"].get("permissions") or {})
        for project in seed.get("projects", []):
            created = model.add_project(project["id"], project.get("name"), project.get("parent"))
            created.read_only_ui = bool(project.get("readOnlyUI", False))
            created.parameters = _parameters(project.get("parameters", []))
        for bt in seed.get("buildTypes", []):
            created_bt = model.add_build_type(bt["id"], bt["project"], bt.get("name"))
            created_bt.parameters = _parameters(bt.get("parameters", []))
            created_bt.default_branch = bt.get("defaultBranch")
            if "lifecycle" in bt:
                model.build_plans[bt["id"]] = plan(bt["lifecycle"])
        for build in seed.get("builds", []):
            made = lifecycle.queue(
                model,
                model.build_types[build["buildType"]],
                None,
                branch=build.get("branchName"),
                tags=build.get("tags"),
            )
            made.plan = HELD
            made.starts_at = None
            if build.get("state") in ("running", "finished"):
                lifecycle.start(model, made)
            if build.get("state") == "finished":
                lifecycle.finish(
                    model, made, build.get("status", "SUCCESS"), build.get("statusText")
                )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SeedError(f"seed is malformed near {exc!s}") from None
    except Exception as exc:  # the model's own errors (duplicates, unknown parents)
        raise SeedError(f"seed rejected: {exc}") from None


def plan(spec: dict[str, Any]) -> BuildPlan:
    """A build type's ``lifecycle``: ``queueSeconds``/``runSeconds`` (null: wait for the test),
    ``status`` and ``statusText`` of the finished build, ``waitReason``, ``stopSeconds``."""
    if not isinstance(spec, dict):
        raise TypeError("lifecycle must be an object")
    return BuildPlan(
        queue_seconds=spec.get("queueSeconds"),
        run_seconds=spec.get("runSeconds"),
        status=spec.get("status", "SUCCESS"),
        status_text=spec.get("statusText"),
        wait_reason=spec.get("waitReason"),
        stop_seconds=spec.get("stopSeconds", 0.0),
    )


def _parameters(items: list[dict[str, Any]]) -> dict[str, Parameter]:
    return {p["name"]: Parameter(p["name"], str(p.get("value", "")), p.get("type")) for p in items}
