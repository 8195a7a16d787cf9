"""Pushes a promoted credential into a TeamCity password parameter (project or build
configuration), so builds receive it as ``%env.NAME%`` without anyone pasting it.

Rules: a value is only ever written as a password-type parameter; an existing password
parameter keeps its exact type spec (``PUT .../value``); an existing *non-password* parameter is
never overwritten with a secret (that would print it in build logs and the UI). A project that
keeps its settings in VCS (``readOnlyUI``) is updated through its versioned-settings token named
by ``settings_token``. After writing, the parameter's type is read back: the value of a
password parameter cannot be read, but its type can.

The value is registered for redaction with the client before anything is sent: TeamCity's
error answers may quote a request back, and no secret may reach an exception text.
"""

from __future__ import annotations

from rotator.errors import Refused, TargetError
from rotator.spec import PushTarget, TeamCitySettings
from rotator.targets.teamcity import TeamCityClient, is_password_type


class RefusedPush(Refused):
    """The push would expose a secret or cannot be done as configured; nothing was written."""


class TeamCityParameterSink:
    def __init__(self, settings: TeamCitySettings, client: TeamCityClient | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> TeamCityClient:
        if self._client is None:
            self._client = TeamCityClient.from_settings(self.settings)
        return self._client

    @staticmethod
    def _owner(target: PushTarget) -> tuple[str, str]:
        if target.teamcity_build_type:
            return "buildTypes", target.teamcity_build_type
        if target.teamcity_project:
            return "projects", target.teamcity_project
        raise RefusedPush(f"push of {target.parameter!r} names no teamcity_project or build type")

    def push(self, target: PushTarget, value: str) -> None:
        self.client.http.add_secret(value)
        kind, owner = self._owner(target)
        where = f"{kind[:-1]} {owner} parameter {target.parameter}"
        if kind == "projects" and self.client.read_only_ui(owner):
            self._push_versioned(target, owner, value, where)
            return
        existing = self.client.parameter(kind, owner, target.parameter)
        if existing is not None:
            type_spec = (existing.get("type") or {}).get("rawValue")
            if not is_password_type(type_spec):
                raise RefusedPush(
                    f"refusing to write a secret into {where}: it exists and is not a password "
                    "parameter (its value would show in the UI and build logs); make it a "
                    "password parameter or push to another name"
                )
            if not existing.get("inherited"):
                self.client.put_parameter_value(kind, owner, target.parameter, value)
                self._check(kind, owner, target.parameter, where)
                return
        self.client.put_parameter(kind, owner, target.parameter, value, "password")
        self._check(kind, owner, target.parameter, where)

    def _push_versioned(self, target: PushTarget, project: str, value: str, where: str) -> None:
        if not target.settings_token:
            raise RefusedPush(
                f"project {project} keeps its settings in VCS (read-only in the UI); set "
                f"settings_token to the name behind {target.parameter}'s credentialsJSON: "
                "reference"
            )
        self.client.set_versioned_settings_token(
            project, target.settings_token, value, f"rotated by Rotator for {target.parameter}"
        )

    def _check(self, kind: str, owner: str, name: str, where: str) -> None:
        found = self.client.parameter(kind, owner, name)
        type_spec = ((found or {}).get("type") or {}).get("rawValue")
        if found is None or found.get("inherited") or not is_password_type(type_spec):
            raise TargetError(
                f"after writing {where}, TeamCity does not show it as a password parameter"
            )
