"""A thin, typed client for the TeamCity REST calls Rotator makes (see teamcity-contract.md).

Every call goes through ``rotator.targets.http.HttpClient``; dates use TeamCity's
``yyyyMMdd'T'HHmmssZ``; the token Rotator authenticates with comes from ``[teamcity]
token_env`` or ``token_file``.

Every answer is decoded by ``HttpClient.json`` and the fields Rotator relies on are checked
here, at the edge: an answer that is not what the contract promises (an HTML login page,
truncated JSON, an array for an object, a token without ``value``, a date in another format)
raises ``TargetMalformed`` naming the call, so no ``KeyError``/``ValueError``/``TypeError``
reaches the engine and stops a whole pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from rotator.errors import ConfigError, TargetMalformed, TargetNotFound
from rotator.spec import TeamCitySettings
from rotator.targets.http import BearerAuth, HttpClient

DATE_FORMAT = "%Y%m%dT%H%M%S%z"


def tc_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_tc_date(text: Any) -> datetime | None:
    """A TeamCity date (``20270101T120000+0000``) in UTC; ``None`` for a missing one.

    Anything else is ``TargetMalformed``, not ``ValueError``: it came from the server, and a bad
    answer must fail one credential with a clear error, not the whole pass.
    """
    if text is None or text == "":
        return None
    if isinstance(text, str):
        try:
            return datetime.strptime(text, DATE_FORMAT).astimezone(UTC)
        except ValueError:
            pass
    raise TargetMalformed(
        f"TeamCity sent {str(text)[:40]!r} where a date in yyyyMMdd'T'HHmmssZ belongs"
    )


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


def is_password_type(spec: str | None) -> bool:
    """Whether a parameter's type spec (``password display='hidden'``) makes it a password
    parameter: TeamCity masks its value in logs and never returns it over REST."""
    return bool(spec) and spec.split()[0] == "password"  # type: ignore[union-attr]


@dataclass(frozen=True)
class ListedParameter:
    """A parameter as listed, without its value: a listing is for audits, which must not
    hold a secret that a non-password parameter would show."""

    name: str
    type_spec: str | None
    inherited: bool

    @property
    def password(self) -> bool:
        return is_password_type(self.type_spec)


class _Answer:
    """A decoded JSON answer that remembers which call it answers, so that a missing or
    malformed field fails as ``TargetMalformed`` naming target, method, path, status and
    content type (``HttpClient.malformed``), never quoting the body."""

    def __init__(
        self, http: HttpClient, response: requests.Response, method: str, path: str, expect: type
    ) -> None:
        self._http, self._response, self._method, self._path = http, response, method, path
        self.data: Any = http.json(response, method, path, expect=expect)

    def fail(self, problem: str) -> TargetMalformed:
        return self._http.malformed(self._response, self._method, self._path, problem)

    def text(self, obj: dict[str, Any], key: str) -> str:
        """``obj[key]``, which must be a non-empty string."""
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(
                f"no {key!r}" if value is None else f"{key!r} that is not a non-empty string"
            )
        return value

    def optional_text(self, obj: dict[str, Any], key: str) -> str | None:
        """``obj[key]`` as a string, or ``None`` when absent (TeamCity omits nulls)."""
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"{key!r} that is not a string")
        return value

    def date(self, obj: dict[str, Any], key: str) -> datetime | None:
        """``obj[key]`` as a TeamCity date, or ``None`` when absent (TeamCity omits nulls)."""
        value = obj.get(key)
        try:
            return parse_tc_date(value)
        except TargetMalformed:
            raise self.fail(
                f"{key} {str(value)[:40]!r} that is not a TeamCity date (yyyyMMdd'T'HHmmssZ)"
            ) from None

    def objects(self, obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """``obj[key]`` as a list of JSON objects; absent is ``[]`` (TeamCity omits empties)."""
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"{key!r} that is not a list of objects")
        return value

    def object(self, obj: dict[str, Any], key: str) -> dict[str, Any] | None:
        """``obj[key]`` as a JSON object, or ``None`` when absent."""
        value = obj.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.fail(f"{key!r} that is not an object")
        return value


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

    def __repr__(self) -> str:  # never userinfo: a URL may carry a password
        return f"TeamCityClient({self.http.url_for('')!r})"

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

    def _call(self, method: str, path: str, *, expect: type = dict, **kwargs: Any) -> _Answer:
        """One REST call whose answer must be JSON of type ``expect``."""
        full = f"/app/rest{path}"
        return _Answer(self.http, self.http.request(method, full, **kwargs), method, full, expect)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).data

    # -- reading -------------------------------------------------------------------------
    def server(self) -> dict[str, Any]:
        """The server's facts; ``currentTime`` (when present) is checked to be a date, so that
        ``doctor``'s clock-skew check reads a valid one."""
        answer = self._call("GET", "/server")
        answer.date(answer.data, "currentTime")
        return answer.data

    def current_user(self) -> dict[str, Any]:
        return self._json("GET", "/users/current")

    def build(self, locator: str) -> dict[str, Any]:
        return self._json("GET", f"/builds/{_seg(locator)}")

    def project(self, project_id: str, fields: str | None = None) -> dict[str, Any]:
        params = {"fields": fields} if fields else None
        return self._json("GET", f"/projects/id:{_seg(project_id)}", params=params)

    def read_only_ui(self, project_id: str) -> bool:
        answer = self._call(
            "GET", f"/projects/id:{_seg(project_id)}", params={"fields": "readOnlyUI"}
        )
        found = answer.object(answer.data, "readOnlyUI") or {}
        value = found.get("value", False)
        if not isinstance(value, bool):
            raise answer.fail("a readOnlyUI value that is not true or false")
        return value

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
        # knows the name from its journal and revokes it before minting again. The same holds
        # for a malformed answer (TargetMalformed): the answer was bad, the token may exist.
        answer = self._call("POST", f"/users/{_seg(user)}/tokens", json=body, retry=False)
        data = answer.data
        if isinstance(data.get("value"), str):
            self.http.add_secret(data["value"])  # before any check below can raise a message
        return CreatedToken(
            answer.text(data, "name"),
            answer.text(data, "value"),
            answer.date(data, "creationTime"),
            answer.date(data, "expirationTime"),
        )

    def delete_token(self, user: str, name: str) -> bool:
        """True if it was deleted now, False if it was already gone."""
        try:
            self.http.request("DELETE", f"/app/rest/users/{_seg(user)}/tokens/{_seg(name)}")
        except TargetNotFound:
            return False
        return True

    def list_tokens(self, user: str) -> list[ListedToken]:
        answer = self._call(
            "GET",
            f"/users/{_seg(user)}/tokens",
            params={"fields": "count,token(name,creationTime,expirationTime)"},
        )
        return [
            ListedToken(
                answer.text(t, "name"),
                answer.date(t, "creationTime"),
                answer.date(t, "expirationTime"),
            )
            for t in answer.objects(answer.data, "token")
        ]

    # -- parameters ----------------------------------------------------------------------
    @staticmethod
    def _owner(kind: str, owner_id: str) -> str:
        if kind not in ("projects", "buildTypes"):
            raise ValueError(f"parameter owner kind must be projects or buildTypes, not {kind}")
        return f"/{kind}/id:{_seg(owner_id)}/parameters"

    @staticmethod
    def _property(answer: _Answer) -> dict[str, Any]:
        """A parameter as the contract shapes it; ``type.rawValue`` and ``inherited`` are what
        the sink decides on (a password or not, ours or inherited), so they are checked."""
        data = answer.data
        found_type = answer.object(data, "type")
        if found_type is not None:
            answer.optional_text(found_type, "rawValue")
        if not isinstance(data.get("inherited", False), bool):
            raise answer.fail("an 'inherited' that is not true or false")
        return data

    def parameter(self, kind: str, owner_id: str, name: str) -> dict[str, Any] | None:
        try:
            answer = self._call("GET", f"{self._owner(kind, owner_id)}/{_seg(name)}")
        except TargetNotFound as exc:
            if "No parameter" in str(exc):
                return None
            raise
        return self._property(answer)

    def list_parameters(self, kind: str, owner_id: str) -> list[ListedParameter]:
        """Own and inherited parameters of a project or build configuration; values dropped."""
        answer = self._call("GET", self._owner(kind, owner_id))
        out = []
        for prop in answer.objects(answer.data, "property"):
            found_type = answer.object(prop, "type") or {}
            out.append(
                ListedParameter(
                    answer.text(prop, "name"),
                    answer.optional_text(found_type, "rawValue"),
                    prop.get("inherited") is True,
                )
            )
        return out

    def put_parameter(
        self, kind: str, owner_id: str, name: str, value: str, type_spec: str
    ) -> dict[str, Any]:
        self.http.add_secret(value)  # before it is sent: an error may quote it back
        body = {"name": name, "value": value, "type": {"rawValue": type_spec}}
        answer = self._call("PUT", f"{self._owner(kind, owner_id)}/{_seg(name)}", json=body)
        return self._property(answer)

    def put_parameter_value(self, kind: str, owner_id: str, name: str, value: str) -> None:
        self.http.add_secret(value)  # before it is sent: an error may quote it back
        self.http.request(
            "PUT",
            f"/app/rest{self._owner(kind, owner_id)}/{_seg(name)}/value",
            data=value.encode(),
            headers={"Content-Type": "text/plain", "Accept": "text/plain"},
        )

    def set_versioned_settings_token(
        self, project_id: str, name: str, value: str, description: str
    ) -> None:
        self.http.add_secret(value)  # before it is sent: an error may quote it back
        body = {
            "versionedSettingsToken": [{"name": name, "value": value, "description": description}]
        }
        self.http.request(
            "POST",
            f"/app/rest/projects/id:{_seg(project_id)}/versionedSettings/tokens",
            json=body,
            retry=True,  # replacing a token's value is idempotent
        )
