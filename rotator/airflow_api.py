"""The few Airflow 3.3 API calls Rotator makes: log in (``POST /auth/token``), set a FAB user's
password (``PATCH /auth/fab/v1/users/{name}?update_mask=password``), and prove a token works.

The admin login (for the users API) comes from ``[airflow] username_env`` / ``password_env``
(or ``password_file``) and is used once per process: its JWT is cached until shortly before it
expires.
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

from rotator.errors import ConfigError, TargetAuthError, TargetDenied, TargetError
from rotator.http import BearerAuth, HttpClient
from rotator.spec import AirflowSettings

RELOGIN_MARGIN = 60.0


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: we only read ``exp``/``iat`` of a token we were just
    given by the server we trust; verifying it is the server's job."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError) as exc:
        raise TargetError(
            f"Airflow returned a token that is not a JWT ({type(exc).__name__})"
        ) from None
    if not isinstance(claims, dict):
        raise TargetError("Airflow returned a token whose payload is not a JSON object")
    return claims


def claim_time(claims: dict[str, Any], key: str) -> datetime | None:
    value = claims.get(key)
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


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

    def __repr__(self) -> str:
        return f"AirflowApi({self.url!r})"

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
        token = response.json().get("access_token")
        if not isinstance(token, str) or not token:
            raise TargetError("Airflow /auth/token answered without an access_token")
        self.http.add_secret(token)
        return token

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
        data = self.http.request(
            "GET", "/api/v2/version", auth=BearerAuth(self.admin_token())
        ).json()
        return str(data.get("version"))

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
