"""The few Airflow 3.3 API calls Rotator makes: log in (``POST /auth/token``), set a FAB user's
password (``PATCH /auth/fab/v1/users/{name}?update_mask=password``), and prove a token works.

The admin login (for the users API) comes from ``[airflow] username_env`` / ``password_env``
(or ``password_file``) and is used once per process: its JWT is cached until shortly before it
expires.

Answers are decoded by ``HttpClient.json`` and checked here: an HTML login page, truncated JSON,
a missing ``access_token`` or a token that is not a JWT raises ``TargetMalformed``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rotator.errors import ConfigError, TargetAuthError, TargetDenied, TargetMalformed
from rotator.spec import AirflowSettings
from rotator.targets.http import BearerAuth, HttpClient

RELOGIN_MARGIN = 60.0


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: we only read ``exp``/``iat`` of a token we were just
    given by the server we trust; verifying it is the server's job."""
    problem = None
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError) as exc:  # raised outside: the context would hold the token
        problem = f"that is not a JWT ({type(exc).__name__})"
    if problem is None and not isinstance(claims, dict):
        problem = "whose payload is not a JSON object"
    if problem is not None:
        raise TargetMalformed(f"Airflow returned a token {problem}")
    return claims


def claim_time(claims: dict[str, Any], key: str) -> datetime | None:
    """A JWT time claim (seconds since the epoch) as a UTC datetime; ``None`` when absent."""
    value = claims.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise TargetMalformed(f"Airflow returned a token whose {key!r} claim is not a time")


class AirflowApi:
    def __init__(self, settings: AirflowSettings) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.http = HttpClient(
            self.url,
            target="Airflow",
            timeout=settings.timeout,
            retries=settings.retries,
            verify=settings.ca_bundle or settings.verify_tls,
        )
        self._admin: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never userinfo: a URL may carry a password
        return f"AirflowApi({self.http.url_for('')!r})"

    def admin_login(self) -> tuple[str, str]:
        s = self.settings
        user = os.environ.get(s.username_env, "").strip()
        if not user:
            raise ConfigError(f"no Airflow admin user: set ${s.username_env}")
        if s.password_file:
            try:
                password = Path(s.password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read {s.password_file}: {exc.strerror}") from None
        else:
            password = os.environ.get(s.password_env, "")
        if not password:
            raise ConfigError(f"no Airflow admin password: set ${s.password_env} or password_file")
        return user, password

    def token(self, username: str, password: str, *, who: str | None = None) -> str:
        """A JWT for ``username``; a 401 names whose login failed (never the password)."""
        self.http.add_secret(password)
        previous_hint = self.http.auth_hint
        self.http.auth_hint = who or f"the password of Airflow user {username!r}"
        try:
            response = self.http.request(
                "POST", "/auth/token", json={"username": username, "password": password}, retry=True
            )
        finally:
            self.http.auth_hint = previous_hint
        data = self.http.json(response, "POST", "/auth/token")
        token = data.get("access_token")
        if isinstance(token, str) and token:
            self.http.add_secret(token)
            return token
        raise self.http.malformed(
            response,
            "POST",
            "/auth/token",
            "no 'access_token'" if token is None else "an 'access_token' that is not a string",
        )

    def admin_token(self) -> str:
        with self._lock:
            if self._admin is not None and time.time() < self._admin[1] - RELOGIN_MARGIN:
                return self._admin[0]
            user, password = self.admin_login()
            s = self.settings
            token = self.token(
                user,
                password,
                who=f"the Airflow admin login in ${s.username_env}/${s.password_env}",
            )
            exp = jwt_claims(token).get("exp")
            self._admin = (token, float(exp) if isinstance(exp, int | float) else time.time() + 300)
            return token

    def version(self) -> str:
        path = "/api/v2/version"
        response = self.http.request("GET", path, auth=BearerAuth(self.admin_token()))
        version = self.http.json(response, "GET", path).get("version")
        if not isinstance(version, str) or not version:
            raise self.http.malformed(response, "GET", path, "no 'version'")
        return version

    def set_password(self, username: str, password: str) -> None:
        self.http.add_secret(password)
        self.http.request(
            "PATCH",
            f"/auth/fab/v1/users/{quote(username, safe='')}",
            params={"update_mask": "password"},
            json={"password": password},
            auth=BearerAuth(self.admin_token()),
            retry=True,  # same password again is harmless
        )

    def check_token(self, token: str) -> None:
        """An authenticated request that needs a valid token (401 otherwise)."""
        self.http.add_secret(token)
        previous_hint = self.http.auth_hint
        self.http.auth_hint = "the Airflow API token being verified"
        try:
            self.http.request("GET", "/api/v2/dags", params={"limit": "1"}, auth=BearerAuth(token))
        except TargetDenied as exc:  # Airflow answers 403 "Invalid JWT token" to a bad token
            raise TargetAuthError(str(exc), status=exc.status) from exc
        finally:
            self.http.auth_hint = previous_hint
