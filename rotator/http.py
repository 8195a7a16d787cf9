"""The one HTTP layer for every target Rotator talks to (TeamCity, Airflow).

Why one layer: timeouts, retries and error translation must behave the same everywhere, and
the one place that touches headers is the one place that must keep tokens out of messages.

- explicit (connect, read) timeouts on every request;
- retries with exponential backoff and full jitter on connection errors, timeouts and 5xx only,
  never on a 4xx, and for a POST only when the caller says it is safe;
- errors become ``rotator.errors.Target*`` with method, path, status and the server's own first
  error line, with every known secret value redacted; never a header, never a whole body.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from requests.auth import AuthBase

from rotator.errors import (
    TargetAuthError,
    TargetDenied,
    TargetError,
    TargetNotFound,
    TargetUnavailable,
)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "rotator/0.1"


class BearerAuth(AuthBase):
    """``Authorization: Bearer``; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


def _server_message(response: requests.Response) -> str:
    """The server's own words, one line: TeamCity's ``Details:`` line, Airflow's ``detail``."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("detail"):
        return str(data["detail"])[:300]
    lines = [line.strip() for line in response.text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Details:"):
            return line.removeprefix("Details:").strip()[:300]
    return lines[0][:300] if lines else ""


class HttpClient:
    """A ``requests.Session`` bound to one base URL, with Rotator's rules.

    ``target`` names the system in messages ("TeamCity", "Airflow"); ``auth_hint`` is added to a
    401's message to say which credential was refused (e.g. "the token in $TEAMCITY_TOKEN").
    """

    def __init__(
        self,
        base_url: str,
        *,
        target: str,
        auth: AuthBase | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        verify: bool | str = True,
        auth_hint: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.target = target
        self.timeout = (connect_timeout or min(timeout, 5.0), timeout)
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.auth_hint = auth_hint
        self.session = requests.Session()
        self.session.auth = auth
        self.session.verify = verify
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self._secrets = [s for s in secrets if s]
        if isinstance(auth, BearerAuth):
            self._secrets.append(auth.token)

    def __repr__(self) -> str:
        return f"HttpClient({self.target} at {self.base_url})"

    def add_secret(self, value: str) -> None:
        """Redact ``value`` from every message this client raises from now on."""
        if value:
            self._secrets.append(value)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: str | bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
        auth: AuthBase | None = None,
    ) -> requests.Response:
        """Send, retrying what is safe to retry; return a 2xx response or raise Target*."""
        method = method.upper()
        may_retry = (method in IDEMPOTENT) if retry is None else retry
        attempts = 1 + (self.retries if may_retry else 0)
        url = f"{self.base_url}{path}"
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._delay(attempt))  # backoff between retries, not a readiness wait
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=self.timeout,
                    auth=auth,
                    # Per request: otherwise $REQUESTS_CA_BUNDLE silently overrides Session.verify.
                    verify=self.session.verify,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = exc
                continue
            if response.status_code >= 500:
                last = self._error(method, path, response)
                continue
            if response.status_code >= 400:
                raise self._error(method, path, response)
            return response
        if isinstance(last, TargetError):
            raise last
        kind = "timed out" if isinstance(last, requests.Timeout) else "could not be reached"
        raise TargetUnavailable(
            f"{self.target} {kind}: {method} {path} after {attempts} attempt(s) "
            f"({type(last).__name__})"
        ) from None

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography

    def _error(self, method: str, path: str, response: requests.Response) -> TargetError:
        status = response.status_code
        said = redact(_server_message(response), self._secrets)
        text = f"{self.target} answered {status} to {method} {path}" + (f": {said}" if said else "")
        if status == 401:
            hint = (
                f" ({self.auth_hint} was refused: missing, expired or revoked?)"
                if self.auth_hint
                else ""
            )
            return TargetAuthError(text + hint, status=status)
        if status == 403:
            return TargetDenied(text, status=status)
        if status == 404:
            return TargetNotFound(text, status=status)
        if status >= 500:
            return TargetUnavailable(text, status=status)
        return TargetError(text, status=status)

    def close(self) -> None:
        self.session.close()
