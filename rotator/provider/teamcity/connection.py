"""The Airflow connection a TeamCity hook uses, read normally or fresh.

Connection: type ``teamcity`` (or the ``http`` connections Rotator has always written), ``host``
= the server URL (``https://teamcity.example.com``; a bare host name takes ``schema`` http or
https and ``port``), ``password`` = the access token, ``login`` = the TeamCity user
(informational). Extras: ``verify`` (default true), ``ca_bundle`` (a CA file, implies verify),
``timeout`` (seconds per request, default 30).

Why a *fresh* read: Rotator replaces the token while tasks wait on builds. A token that
TeamCity refuses (401) may just be one a cache still holds: Airflow's own ``SecretCache``
(``[secrets] use_cache``) and the process-wide cache of Rotator's secrets backend
(``backends/cache.py``, up to ``cache_ttl`` seconds). ``read_fresh`` walks the process's
secrets backends itself, drops the Rotator backend's cache first, and writes what it found back
into Airflow's cache, so the next normal read sees the new token too.

The token is kept out of ``repr`` and is registered with Airflow's secrets masker.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

from rotator.provider.teamcity.errors import TeamCityConfigError

DEFAULT_TIMEOUT = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeamCitySettings:
    conn_id: str
    url: str
    token: str = field(repr=False)
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT

    @property
    def rest(self) -> str:
        return f"{self.url}/app/rest"


def _flag(name: str, value: Any, conn_id: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise TeamCityConfigError(f"connection {conn_id!r}: extra {name!r} must be true or false")


def settings_from(conn: Any, conn_id: str) -> TeamCitySettings:
    """Check an Airflow connection and turn it into settings, naming the field that is wrong."""
    host = (conn.host or "").strip()
    if not host:
        raise TeamCityConfigError(
            f"connection {conn_id!r} has no host: set it to the TeamCity server URL"
        )
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    if not host.startswith(("http://", "https://")):
        raise TeamCityConfigError(f"connection {conn_id!r}: host must be an http(s) URL")
    url = host.rstrip("/")
    if url.endswith("/app/rest"):
        url = url[: -len("/app/rest")]
    token = conn.password
    if not token:
        raise TeamCityConfigError(
            f"connection {conn_id!r} has no token: put the TeamCity access token in its "
            "password field (Rotator writes it there)"
        )
    extra = conn.extra_dejson or {}
    verify: bool | str = _flag("verify", extra.get("verify", True), conn_id)
    if extra.get("ca_bundle"):
        verify = str(extra["ca_bundle"])
    try:
        timeout = float(extra.get("timeout", DEFAULT_TIMEOUT))
    except (TypeError, ValueError):
        raise TeamCityConfigError(
            f"connection {conn_id!r}: extra 'timeout' must be seconds"
        ) from None
    if timeout <= 0:
        raise TeamCityConfigError(f"connection {conn_id!r}: extra 'timeout' must be > 0")
    return TeamCitySettings(conn_id, url, str(token), verify, timeout)


def _missing(conn_id: str) -> TeamCityConfigError:
    return TeamCityConfigError(
        f"no Airflow connection {conn_id!r}: create it (type teamcity, host = the TeamCity URL, "
        "password = the token) or let Rotator store it"
    )


def read(conn_id: str) -> TeamCitySettings:
    """The connection as Airflow serves it (caches included)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise _missing(conn_id) from None
    return settings_from(conn, conn_id)


async def aread(conn_id: str) -> TeamCitySettings:
    """``read`` for the triggerer's event loop."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        raise _missing(conn_id) from None
    return settings_from(conn, conn_id)


def _drop_cache(backend: Any, conn_id: str) -> None:
    """Forget what Rotator's secrets backend cached of ``conn_id`` in this process (its public
    ``forget_connection``); other backends have no cache of their own."""
    forget = getattr(backend, "forget_connection", None)
    if callable(forget):
        forget(conn_id)


def _next_backend(exc: Exception, backend: Any) -> None:
    """Airflow's own lookup order: a backend that fails is skipped, one that denies access
    stops the search (falling through to a less protected backend would be worse)."""
    from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied

    if isinstance(exc, AirflowSecretsBackendAccessDenied):
        raise exc
    log.debug("secrets backend %s failed; trying the next", type(backend).__name__)


def _remember(conn_id: str, conn: Any) -> TeamCitySettings:
    from airflow.sdk.execution_time.cache import SecretCache
    from airflow.sdk.log import mask_secret

    settings = settings_from(conn, conn_id)
    mask_secret(settings.token)
    SecretCache.save_connection_uri(conn_id, conn.get_uri())
    return settings


def read_fresh(conn_id: str) -> TeamCitySettings:
    """The connection read again from the secrets backends themselves, caches bypassed."""
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    for backend in ensure_secrets_backend_loaded():
        try:
            _drop_cache(backend, conn_id)
            conn = backend.get_connection(conn_id=conn_id)
        except Exception as exc:
            _next_backend(exc, backend)
            continue
        if conn:
            return _remember(conn_id, conn)
    raise _missing(conn_id)


async def aread_fresh(conn_id: str) -> TeamCitySettings:
    """``read_fresh`` for the triggerer: blocking backends run in a thread."""
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    for backend in ensure_secrets_backend_loaded():
        try:
            await asyncio.to_thread(_drop_cache, backend, conn_id)
            method = getattr(backend, "aget_connection", None)
            if method is not None:
                found = method(conn_id)
                conn = await found if inspect.isawaitable(found) else found
            else:
                conn = await asyncio.to_thread(backend.get_connection, conn_id)
        except Exception as exc:
            _next_backend(exc, backend)
            continue
        if conn:
            return _remember(conn_id, conn)
    raise _missing(conn_id)
