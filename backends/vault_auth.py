"""Logging in to Vault/OpenBao once per process, and again only when the token runs out.

Airflow builds its secrets backends again and again in one process, and every task is a new
process; the official provider logs in (and looks its token up) far more often than needed. Here
clients are cached at module level, keyed by everything that identifies a login, and a login
method's token is replaced shortly before its TTL ends, never checked per read.

Each auth type has its own function; each fails fast with a ``ConfigError`` naming the missing
parameter. Credentials come from environment variables or files, never from arguments that
would end up in a config file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import ConfigError

AUTH_TYPES = ("token", "approle", "kubernetes", "jwt")
RENEW_MARGIN = 0.2
"""Log in again when less than this fraction of the token's TTL is left."""

K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


@dataclass(frozen=True)
class VaultAuth:
    """Where a login's credentials come from: names of variables and files, not values."""

    method: str = "token"
    token_env: str = "VAULT_TOKEN"  # noqa: S105 - variable names, not values
    token_file: str | None = None
    role: str | None = None
    role_id: str | None = None
    role_id_env: str = "VAULT_ROLE_ID"
    secret_id_env: str = "VAULT_SECRET_ID"  # noqa: S105
    secret_id_file: str | None = None
    jwt_env: str = "VAULT_JWT"
    jwt_file: str | None = None
    kubernetes_token_path: str = K8S_TOKEN_PATH
    auth_mount: str | None = None

    def __post_init__(self) -> None:
        if self.method not in AUTH_TYPES:
            raise ConfigError(
                f"unknown Vault auth {self.method!r}; expected one of: {', '.join(AUTH_TYPES)}"
            )
        if self.method in ("kubernetes", "jwt") and not self.role:
            raise ConfigError(f"Vault auth {self.method!r} needs 'role'")
        if self.method == "approle" and not (self.role_id or os.environ.get(self.role_id_env)):
            raise ConfigError(f"Vault auth 'approle' needs 'role_id' or ${self.role_id_env}")

    @classmethod
    def from_options(cls, method: str, options: dict[str, Any]) -> VaultAuth:
        """The auth part of a ``[store] kind = "vault"`` table, checked in the same words by
        every reader of that table (the store and the Airflow backend's reader)."""
        unknown = sorted(set(options) - (set(cls.__dataclass_fields__) - {"method"}))
        if unknown:
            raise ConfigError(f"unknown vault store option(s): {', '.join(unknown)}")
        if "token" in options or "secret_id" in options:
            raise ConfigError("never put a Vault token or secret_id in config; use *_env/*_file")
        return cls(method=method, **options)


def _secret_from(env: str, file: str | None, what: str) -> str:
    if file:
        try:
            value = Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {what} from file {file}: {exc.strerror}") from None
        if value:
            return value
        raise ConfigError(f"{what} file {file} is empty")
    value = os.environ.get(env, "").strip()
    if not value:
        raise ConfigError(f"{what} missing: set ${env}" + (" or a file" if file is None else ""))
    return value


def _login_token(client: Any, auth: VaultAuth) -> float | None:
    client.token = _secret_from(auth.token_env, auth.token_file, "Vault token")
    return None  # a given token is not ours to replace; it is renewed by whoever issued it


def _login_approle(client: Any, auth: VaultAuth) -> float | None:
    role_id = auth.role_id or os.environ.get(auth.role_id_env, "")
    secret_id = _secret_from(auth.secret_id_env, auth.secret_id_file, "AppRole secret_id")
    result = client.auth.approle.login(
        role_id=role_id, secret_id=secret_id, mount_point=auth.auth_mount or "approle"
    )
    return float(result["auth"]["lease_duration"])


def _login_kubernetes(client: Any, auth: VaultAuth) -> float | None:
    try:
        jwt = Path(auth.kubernetes_token_path).read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the Kubernetes service-account token at {auth.kubernetes_token_path}: "
            f"{exc.strerror}"
        ) from None
    result = client.auth.kubernetes.login(
        role=auth.role, jwt=jwt, mount_point=auth.auth_mount or "kubernetes"
    )
    return float(result["auth"]["lease_duration"])


def _login_jwt(client: Any, auth: VaultAuth) -> float | None:
    jwt = _secret_from(auth.jwt_env, auth.jwt_file, "JWT for Vault")
    result = client.auth.jwt.jwt_login(role=auth.role, jwt=jwt, path=auth.auth_mount or "jwt")
    return float(result["auth"]["lease_duration"])


LOGINS: dict[str, Callable[[Any, VaultAuth], float | None]] = {
    "token": _login_token,
    "approle": _login_approle,
    "kubernetes": _login_kubernetes,
    "jwt": _login_jwt,
}


class _Session:
    """One hvac client and when its token should be replaced."""

    def __init__(self, make_client: Callable[[], Any], auth: VaultAuth) -> None:
        self.make_client = make_client
        self.auth = auth
        self.client: Any = None
        self.relogin_at: float | None = None
        self.lock = threading.Lock()
        self.logins = 0

    def get(self) -> Any:
        with self.lock:
            if self.client is None or (
                self.relogin_at is not None and time.monotonic() >= self.relogin_at
            ):
                self._login()
            elif self.auth.method == "token":
                # A given token is re-read (env or file, no request): when an operator or an
                # agent replaces it, the next read uses the new one.
                _login_token(self.client, self.auth)
            return self.client

    def _login(self) -> None:
        client = self.client or self.make_client()
        ttl = LOGINS[self.auth.method](client, self.auth)
        self.logins += 1
        self.relogin_at = None if not ttl else time.monotonic() + ttl * (1 - RENEW_MARGIN)
        self.client = client

    def invalidate(self) -> None:
        """Forget the token (after a 403 on a login method), so the next call logs in again."""
        with self.lock:
            if self.auth.method != "token":
                self.relogin_at = time.monotonic()


_SESSIONS: dict[tuple[Any, ...], _Session] = {}
_SESSIONS_LOCK = threading.Lock()


def session(key: tuple[Any, ...], make_client: Callable[[], Any], auth: VaultAuth) -> _Session:
    """The process-wide session for ``key`` (url, namespace, tls settings and ``auth``)."""
    with _SESSIONS_LOCK:
        found = _SESSIONS.get(key)
        if found is None:
            found = _SESSIONS[key] = _Session(make_client, auth)
        return found
