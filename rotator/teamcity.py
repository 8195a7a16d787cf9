"""A thin, typed client for the TeamCity REST calls Rotator makes (see teamcity-contract.md).

Every call goes through ``rotator.http.HttpClient``; dates use TeamCity's ``yyyyMMdd'T'HHmmssZ``;
the token Rotator authenticates with comes from ``[teamcity] token_env`` or ``token_file``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rotator.errors import ConfigError, TargetNotFound
from rotator.http import BearerAuth, HttpClient
from rotator.spec import TeamCitySettings

DATE_FORMAT = "%Y%m%dT%H%M%S%z"


def tc_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_tc_date(text: str | None) -> datetime | None:
    return datetime.strptime(text, DATE_FORMAT).astimezone(UTC) if text else None


def _seg(value: str) -> str:
    return quote(value, safe=":(),")


@dataclass(frozen=True)
class CreatedToken:
    name: str
    value: str = field(repr=False)
    created: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class ListedToken:
    name: str
    created: datetime | None
    expires: datetime | None


def bootstrap_token(settings: TeamCitySettings) -> str:
    """Rotator's own TeamCity token, from the file or variable the config names."""
    if settings.token_file:
        try:
            token = Path(settings.token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the TeamCity token file {settings.token_file}: {exc.strerror}"
            ) from None
        if token:
            return token
        raise ConfigError(f"the TeamCity token file {settings.token_file} is empty")
    token = os.environ.get(settings.token_env, "").strip()
    if not token:
        raise ConfigError(
            f"no TeamCity token: set ${settings.token_env} (or [teamcity] token_file) to the "
            "token Rotator uses to manage tokens and parameters"
        )
    return token


class TeamCityClient:
    """One TeamCity server, as one user (the token given)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        verify: bool | str = True,
        auth_hint: str | None = "the TeamCity token",
    ) -> None:
        self.url = url.rstrip("/")
        self.http = HttpClient(
            self.url,
            target="TeamCity",
            auth=BearerAuth(token),
            timeout=timeout,
            retries=retries,
            verify=verify,
            auth_hint=auth_hint,
        )

    def __repr__(self) -> str:
        return f"TeamCityClient({self.url!r})"

    @classmethod
    def from_settings(cls, settings: TeamCitySettings, token: str | None = None) -> TeamCityClient:
        hint = (
            f"the TeamCity token in {settings.token_file}"
            if settings.token_file
            else f"the TeamCity token in ${settings.token_env}"
        )
        return cls(
            settings.url,
            token if token is not None else bootstrap_token(settings),
            timeout=settings.timeout,
            retries=settings.retries,
            verify=settings.ca_bundle or settings.verify_tls,
            auth_hint=hint if token is None else "the token being verified",
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, f"/app/rest{path}", **kwargs).json()

    # -- reading -------------------------------------------------------------------------
    def server(self) -> dict[str, Any]:
        return self._json("GET", "/server")

    def current_user(self) -> dict[str, Any]:
        return self._json("GET", "/users/current")

    def build(self, locator: str) -> dict[str, Any]:
        return self._json("GET", f"/builds/{_seg(locator)}")

    def project(self, project_id: str, fields: str | None = None) -> dict[str, Any]:
        params = {"fields": fields} if fields else None
        return self._json("GET", f"/projects/id:{_seg(project_id)}", params=params)

    def read_only_ui(self, project_id: str) -> bool:
        found = self.project(project_id, fields="readOnlyUI").get("readOnlyUI") or {}
        return bool(found.get("value", False))

    # -- tokens --------------------------------------------------------------------------
    def create_token(
        self,
        user: str,
        name: str,
        expires: datetime | None = None,
        permissions: tuple[dict[str, str], ...] | list[dict[str, str]] = (),
    ) -> CreatedToken:
        body: dict[str, Any] = {"name": name}
        if expires is not None:
            body["expirationTime"] = tc_date(expires)
        if permissions:
            body["permissionRestrictions"] = {
                "permissionRestriction": [
                    {
                        "isGlobalScope": False,
                        "project": {"id": p["project"]},
                        "permission": {"id": p["permission"]},
                    }
                    for p in permissions
                ]
            }
        # Not retried: a POST whose answer was lost may have created the token. The engine
        # knows the name from its journal and revokes it before minting again.
        data = self._json("POST", f"/users/{_seg(user)}/tokens", json=body, retry=False)
        self.http.add_secret(data["value"])
        return CreatedToken(
            data["name"],
            data["value"],
            parse_tc_date(data.get("creationTime")),
            parse_tc_date(data.get("expirationTime")),
        )

    def delete_token(self, user: str, name: str) -> bool:
        """True if it was deleted now, False if it was already gone."""
        try:
            self.http.request("DELETE", f"/app/rest/users/{_seg(user)}/tokens/{_seg(name)}")
        except TargetNotFound:
            return False
        return True

    def list_tokens(self, user: str) -> list[ListedToken]:
        data = self._json(
            "GET",
            f"/users/{_seg(user)}/tokens",
            params={"fields": "count,token(name,creationTime,expirationTime)"},
        )
        return [
            ListedToken(
                t["name"],
                parse_tc_date(t.get("creationTime")),
                parse_tc_date(t.get("expirationTime")),
            )
            for t in data.get("token", [])
        ]

    # -- parameters ----------------------------------------------------------------------
    @staticmethod
    def _owner(kind: str, owner_id: str) -> str:
        if kind not in ("projects", "buildTypes"):
            raise ValueError(f"parameter owner kind must be projects or buildTypes, not {kind}")
        return f"/{kind}/id:{_seg(owner_id)}/parameters"

    def parameter(self, kind: str, owner_id: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json("GET", f"{self._owner(kind, owner_id)}/{_seg(name)}")
        except TargetNotFound as exc:
            if "No parameter" in str(exc):
                return None
            raise

    def put_parameter(
        self, kind: str, owner_id: str, name: str, value: str, type_spec: str
    ) -> dict[str, Any]:
        body = {"name": name, "value": value, "type": {"rawValue": type_spec}}
        return self._json("PUT", f"{self._owner(kind, owner_id)}/{_seg(name)}", json=body)

    def put_parameter_value(self, kind: str, owner_id: str, name: str, value: str) -> None:
        self.http.request(
            "PUT",
            f"/app/rest{self._owner(kind, owner_id)}/{_seg(name)}/value",
            data=value.encode(),
            headers={"Content-Type": "text/plain", "Accept": "text/plain"},
        )

    def set_versioned_settings_token(
        self, project_id: str, name: str, value: str, description: str
    ) -> None:
        body = {
            "versionedSettingsToken": [{"name": name, "value": value, "description": description}]
        }
        self.http.request(
            "POST",
            f"/app/rest/projects/id:{_seg(project_id)}/versionedSettings/tokens",
            json=body,
            retry=True,  # replacing a token's value is idempotent
        )
