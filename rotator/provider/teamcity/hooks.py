"""``TeamCityHook``: TeamCity's REST API for Airflow tasks (sync, ``requests``) and triggers
(async, ``httpx``, which Airflow ships), with the token from an Airflow connection.

Two things set it apart from a plain HTTP hook:

- **A rotated token is picked up, not failed.** On a 401 the hook reads its connection again,
  bypassing every cache (``connection.read_fresh``), and sends the request once more with what
  it found. A second 401 is final (``TeamCityAuthError``). Rotator keeps a replaced token alive
  for its settle period, so this only happens when a token was revoked early (``rotate
  --revoke-previous``) or a cache outlived it.
- **A build is never queued twice by accident.** Reads and cancels (idempotent at TeamCity:
  canceling a canceled build is a no-op) are retried on connection errors, 429 and 5xx. Queueing
  a build is retried only when the request provably never arrived; after a timeout or a 5xx
  the hook first looks for the build by its idempotency tag and returns it if it is there.

The token is sent only in the ``Authorization`` header: never in a URL, a log line or an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from airflow.sdk import BaseHook

from rotator.provider.teamcity import connection, locators
from rotator.provider.teamcity.builds import Build
from rotator.provider.teamcity.connection import TeamCitySettings
from rotator.provider.teamcity.errors import (
    TeamCityConfigError,
    TeamCityError,
    TeamCityOutcomeUnknown,
    TeamCityRequestError,
    TeamCityUnreachable,
)
from rotator.provider.teamcity.responses import json_body
from rotator.provider.teamcity.retry import DEFAULT, RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "teamcity_default"
CANCEL_COMMENT = "Canceled by Airflow"


def _not_sent(exc: BaseException) -> bool:
    """Whether a transport error happened before any byte of the request left (refused,
    unresolvable, connect timeout): then even a POST may be sent again."""
    import httpx

    if isinstance(
        exc, (requests.exceptions.ConnectTimeout, httpx.ConnectError, httpx.ConnectTimeout)
    ):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        from urllib3.exceptions import MaxRetryError, NewConnectionError

        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return isinstance(reason, NewConnectionError)
    return False


class _Call:
    """One logical request: what to send, and whether sending it twice is harmless."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> None:
        self.method, self.path, self.params, self.body = method, path, params, body
        self.idempotent = idempotent

    def headers(self, settings: TeamCitySettings) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {settings.token}", "Accept": "application/json"}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return headers


class TeamCityHook(BaseHook):
    """TeamCity's REST API with the token of connection ``teamcity_conn_id``.

    :param teamcity_conn_id: an Airflow connection of type ``teamcity`` (or ``http``): host =
        server URL, password = access token; extras ``verify``, ``ca_bundle``, ``timeout``.
    :param retry: how often and how long to retry (default: 4 attempts, 0.5 s doubling, jitter).
    """

    conn_name_attr = "teamcity_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "teamcity"
    hook_name = "TeamCity"

    def __init__(
        self, teamcity_conn_id: str = DEFAULT_CONN_ID, retry: RetryPolicy = DEFAULT, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not teamcity_conn_id or not isinstance(teamcity_conn_id, str):
            raise TeamCityConfigError("teamcity_conn_id must be a connection id")
        self.teamcity_conn_id = teamcity_conn_id
        self.retry = retry
        self._settings: TeamCitySettings | None = None
        self._session: requests.Session | None = None
        self._client: Any = None  # httpx.AsyncClient, made in the loop that uses it
        self.requests_sent = 0
        self.token_refreshes = 0

    def __repr__(self) -> str:
        return f"TeamCityHook(teamcity_conn_id={self.teamcity_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "Server URL", "login": "User", "password": "Access token"},
            "placeholders": {
                "host": "https://teamcity.example.com",
                "login": "airflow-bot (informational)",
                "password": "kept fresh by Rotator",
            },
        }

    # -- settings ------------------------------------------------------------------------
    def settings(self) -> TeamCitySettings:
        if self._settings is None:
            self._settings = connection.read(self.teamcity_conn_id)
        return self._settings

    async def asettings(self) -> TeamCitySettings:
        if self._settings is None:
            self._settings = await connection.aread(self.teamcity_conn_id)
        return self._settings

    def _refreshed(self, settings: TeamCitySettings, url: str) -> None:
        self.token_refreshes += 1
        self._settings = settings
        log.warning(
            "TeamCity refused the token of connection %r (401) at %s; read the connection again "
            "past every cache and retrying once",
            self.teamcity_conn_id,
            url,
        )

    # -- the request loops: one sync, one async, same decisions ---------------------------
    def _send(self, call: _Call) -> Any:
        settings = self.settings()
        if self._session is None:
            self._session = requests.Session()
        refreshed, attempt = False, 0
        while True:
            attempt += 1
            url = settings.rest + call.path
            try:
                self.requests_sent += 1
                response = self._session.request(
                    call.method,
                    url,
                    params=call.params,
                    json=call.body,
                    headers=call.headers(settings),
                    timeout=settings.timeout,
                    verify=settings.verify,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self._transport_failed(call, url, exc, attempt, time.sleep)
                continue
            if response.status_code == 401 and not refreshed:
                refreshed = True
                settings = connection.read_fresh(self.teamcity_conn_id)
                self._refreshed(settings, url)
                continue
            delay = self._status_retry(
                call, url, response.status_code, attempt, response.headers.get("Retry-After")
            )
            if delay is not None:
                time.sleep(delay)
                continue
            return json_body(
                call.method,
                url,
                response.status_code,
                response.headers.get("Content-Type", ""),
                response.content,
            )

    async def _asend(self, call: _Call) -> Any:
        import httpx

        settings = await self.asettings()
        if self._client is None:
            self._client = httpx.AsyncClient(verify=settings.verify, timeout=settings.timeout)
        refreshed, attempt = False, 0
        while True:
            attempt += 1
            url = settings.rest + call.path
            try:
                self.requests_sent += 1
                response = await self._client.request(
                    call.method,
                    url,
                    params=call.params,
                    json=call.body,
                    headers=call.headers(settings),
                )
            except httpx.HTTPError as exc:
                delay = self._transport_failed(call, url, exc, attempt, None)
                await asyncio.sleep(delay)
                continue
            if response.status_code == 401 and not refreshed:
                refreshed = True
                settings = await connection.aread_fresh(self.teamcity_conn_id)
                self._refreshed(settings, url)
                continue
            delay = self._status_retry(
                call, url, response.status_code, attempt, response.headers.get("Retry-After")
            )
            if delay is not None:
                await asyncio.sleep(delay)
                continue
            return json_body(
                call.method,
                url,
                response.status_code,
                response.headers.get("Content-Type", ""),
                response.content,
            )

    def _transport_failed(
        self,
        call: _Call,
        url: str,
        exc: BaseException,
        attempt: int,
        sleep: Callable[[float], None] | None,
    ) -> float:
        """Decide after a transport error: raise, or return (and with ``sleep``, wait) the delay."""
        what = f"{call.method} {url}: {type(exc).__name__}"
        if not call.idempotent and not _not_sent(exc):
            raise TeamCityOutcomeUnknown(f"no answer to {what}; it may have taken effect") from None
        if attempt >= self.retry.attempts:
            raise TeamCityUnreachable(
                f"TeamCity unreachable after {attempt} attempts: {what}"
            ) from None
        delay = self.retry.delay(attempt)
        log.info(
            "%s; retrying in %.1f s (attempt %d of %d)",
            what,
            delay,
            attempt + 1,
            self.retry.attempts,
        )
        if sleep is not None:
            sleep(delay)
        return delay

    def _status_retry(
        self, call: _Call, url: str, status: int, attempt: int, retry_after: str | None
    ) -> float | None:
        """The delay before sending again after ``status``, or ``None`` to take the answer."""
        if status < 429 or status == 501:
            return None
        if not self.retry.may_repeat(status, idempotent=call.idempotent):
            if status >= 500 and not call.idempotent:
                raise TeamCityOutcomeUnknown(
                    f"TeamCity answered {status} to {call.method} {url}; it may have taken effect"
                )
            return None
        if attempt >= self.retry.attempts:
            raise TeamCityUnreachable(
                f"TeamCity answered {status} to {call.method} {url} {attempt} times; giving up"
            )
        delay = self.retry.delay(attempt, retry_after)
        log.info(
            "TeamCity answered %d to %s %s; retrying in %.1f s", status, call.method, url, delay
        )
        return delay

    # -- the API -------------------------------------------------------------------------
    @staticmethod
    def _queue_body(
        build_type_id: str,
        branch: str | None,
        properties: dict[str, Any] | None,
        comment: str | None,
        tags: list[str] | None,
    ) -> dict[str, Any]:
        if not build_type_id or not isinstance(build_type_id, str):
            raise TeamCityConfigError("build_type_id must be a TeamCity build configuration id")
        body: dict[str, Any] = {"buildType": {"id": build_type_id}}
        if branch:
            body["branchName"] = branch
        if comment:
            body["comment"] = {"text": comment}
        if properties:
            body["properties"] = {
                "property": [{"name": str(k), "value": str(v)} for k, v in properties.items()]
            }
        if tags:
            body["tags"] = {"tag": [{"name": str(t)} for t in tags]}
        return body

    def trigger_build(
        self,
        build_type_id: str,
        *,
        branch: str | None = None,
        properties: dict[str, Any] | None = None,
        comment: str | None = None,
        tags: list[str] | None = None,
        idempotency_tag: str | None = None,
    ) -> Build:
        """Queue a build (``POST /app/rest/buildQueue``) and return it, queued.

        ``idempotency_tag`` (added to ``tags``) is how an answer lost on the way back is
        resolved: the hook looks the build up by it instead of queueing a second one. Without
        it, a lost answer raises ``TeamCityOutcomeUnknown``.
        """
        all_tags = [*(tags or []), *([idempotency_tag] if idempotency_tag else [])]
        body = self._queue_body(build_type_id, branch, properties, comment, all_tags)
        call = _Call("POST", "/buildQueue", body=body, idempotent=False)
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return Build.from_json(self._checked(self._send(call), call))
            except TeamCityOutcomeUnknown:
                if not idempotency_tag:
                    raise
                found = self.find_builds(build_type_id=build_type_id, tag=idempotency_tag)
                if found:
                    log.info(
                        "queue request's answer was lost; found the build it queued: %d",
                        found[0].id,
                    )
                    return found[0]
                if attempt == self.retry.attempts:
                    raise
                time.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def atrigger_build(self, build_type_id: str, **kwargs: Any) -> Build:
        """``trigger_build`` for async callers (it runs in a thread: queueing is rare)."""
        return await asyncio.to_thread(self.trigger_build, build_type_id, **kwargs)

    @staticmethod
    def _checked(data: Any, call: _Call) -> dict[str, Any]:
        from rotator.provider.teamcity.errors import TeamCityBadResponse

        if not isinstance(data, dict) or "id" not in data or "state" not in data:
            raise TeamCityBadResponse(
                f"TeamCity's answer to {call.method} {call.path} is not a build (no id or state)"
            )
        return data

    def get_build(self, build_id: int) -> Build:
        """A build in any state (``GET /app/rest/builds/id:N``; works while queued too)."""
        call = _Call("GET", f"/builds/id:{int(build_id)}")
        return Build.from_json(self._checked(self._send(call), call))

    async def aget_build(self, build_id: int) -> Build:
        call = _Call("GET", f"/builds/id:{int(build_id)}")
        return Build.from_json(self._checked(await self._asend(call), call))

    def find_builds(self, **criteria: Any) -> list[Build]:
        """Builds matching ``locators.build_locator(**criteria)``: queued, then running, then
        finished newest first (TeamCity's order); ``[]`` when none match."""
        call = _Call("GET", "/builds", params={"locator": locators.build_locator(**criteria)})
        return self._build_list(self._send(call), call)

    async def afind_builds(self, **criteria: Any) -> list[Build]:
        call = _Call("GET", "/builds", params={"locator": locators.build_locator(**criteria)})
        return self._build_list(await self._asend(call), call)

    def _build_list(self, data: Any, call: _Call) -> list[Build]:
        from rotator.provider.teamcity.errors import TeamCityBadResponse

        if not isinstance(data, dict) or "count" not in data:
            raise TeamCityBadResponse(f"TeamCity's answer to GET {call.path} is not a build list")
        return [Build.from_json(item) for item in data.get("build") or []]

    def cancel_build(self, build_id: int, comment: str = CANCEL_COMMENT) -> Build:
        """Cancel a queued or running build (``POST /app/rest/builds/id:N``); a build that
        already finished is returned as it is. Stopping is asynchronous at TeamCity: the answer
        may still say ``running``."""
        try:
            data = self._send(self._cancel_call(build_id, comment))
        except TeamCityRequestError as exc:
            if exc.status == 400 and "finished" in exc.text.lower():
                return self.get_build(build_id)
            raise
        return Build.from_json(self._checked(data, self._cancel_call(build_id, comment)))

    async def acancel_build(self, build_id: int, comment: str = CANCEL_COMMENT) -> Build:
        try:
            data = await self._asend(self._cancel_call(build_id, comment))
        except TeamCityRequestError as exc:
            if exc.status == 400 and "finished" in exc.text.lower():
                return await self.aget_build(build_id)
            raise
        return Build.from_json(self._checked(data, self._cancel_call(build_id, comment)))

    @staticmethod
    def _cancel_call(build_id: int, comment: str) -> _Call:
        # canceling a canceled build is a no-op at TeamCity, so a repeat is harmless
        body = {"comment": comment, "readdIntoQueue": False}
        return _Call("POST", f"/builds/id:{int(build_id)}", body=body, idempotent=True)

    def get_server(self) -> dict[str, Any]:
        """``GET /app/rest/server``: the cheapest authenticated request."""
        data = self._send(_Call("GET", "/server"))
        if not isinstance(data, dict) or "version" not in data:
            from rotator.provider.teamcity.errors import TeamCityBadResponse

            raise TeamCityBadResponse("TeamCity's /app/rest/server answer has no version")
        return data

    def test_connection(self) -> tuple[bool, str]:
        """The UI's "Test" button: proves the URL and the token in one request."""
        try:
            server = self.get_server()
        except TeamCityError as exc:
            return False, str(exc)
        except Exception as exc:  # the UI shows the message; never a traceback
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to TeamCity {server.get('version')} at {self.settings().url}"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
