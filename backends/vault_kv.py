"""``VaultStore``'s KV v2 reads and writes: one urllib3 request each, not hvac and requests.

A rotation makes seven Vault requests, and a pool of rotations runs on one core (the GIL): the
HTTP client's own CPU is what bounds its throughput on a fast network. Measured on loopback
against OpenBao (2 cores): a KV read through hvac and requests costs about 0.87 ms of CPU, a
write 0.91 ms; the same request through urllib3 0.40 and 0.48 ms. requests prepares every
request again (session headers, cookies, hooks, environment), and hvac adds its adapter on top;
a KV call needs none of it: a path, a token header, a JSON body.

hvac stays for everything else (logins with AppRole, Kubernetes or JWT, metadata, deletes,
lists), and for these two calls too when a proxy applies to the Vault URL
(``HTTP(S)_PROXY`` / ``NO_PROXY``): requests' proxy handling is not repeated here. TLS follows
requests: ``verify`` true means ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` if set, else the
bundle requests uses; a path is a CA bundle (or directory); false turns checking off. Like
hvac, redirects are followed (a standby node sends requests to the active one; a 307 keeps the
method and body) and nothing is retried. The environment is read once per process and URL, as
``backends.env_session`` does for requests.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from backends.errors import StoreUnavailable

_pools: dict[tuple[str, bool | str, float], Any] = {}
_lock = threading.Lock()
POOL_SIZE = 32
"""Connections kept per host: a rotation pool of up to 32 threads reuses its connections."""


def kv_pool(url: str, verify: bool | str, timeout: float) -> Any | None:
    """The process's connection pool for the Vault at ``url``, or ``None`` when a proxy
    applies to it (the caller then goes through hvac and requests)."""
    key = (url, verify, timeout)
    with _lock:
        if key not in _pools:
            _pools[key] = None if _proxied(url) else _build(url, verify, timeout)
        return _pools[key]


def _proxied(url: str) -> bool:
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url)) is not None


def _build(url: str, verify: bool | str, timeout: float) -> Any:
    import urllib3

    options: dict[str, Any] = {
        "maxsize": POOL_SIZE,
        "block": False,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        # No retry, as hvac makes none; redirects are followed as requests follows them.
        "retries": urllib3.Retry(
            total=None, connect=0, read=0, status=0, other=0, redirect=10, raise_on_status=False
        ),
    }
    if url.startswith("https:"):
        if verify is False:
            options["cert_reqs"] = "CERT_NONE"
        else:
            from requests.certs import where

            environ = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            bundle = verify if isinstance(verify, str) else environ or where()
            options["cert_reqs"] = "CERT_REQUIRED"
            options["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
    return urllib3.PoolManager(**options)


def send(
    pool: Any, method: str, url: str, headers: dict[str, str], body: Any, what: str
) -> tuple[int, Any, str]:
    """``(status, decoded JSON or None, content type)`` of one request; ``StoreUnavailable``
    when Vault cannot be reached (the message names the cause's type, never a header)."""
    import urllib3

    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers = {**headers, "Content-Type": "application/json"}
    try:
        response = pool.request(method, url, body=data, headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        cause = getattr(exc, "reason", None) or exc
        raise StoreUnavailable(f"cannot reach Vault for {what}: {type(cause).__name__}") from None
    kind = str(response.headers.get("Content-Type", "no content type")).split(";")[0]
    try:
        decoded = json.loads(response.data) if response.data else None
    except ValueError:
        return response.status, _NOT_JSON, kind
    return response.status, decoded, kind


class _NotJson:
    def __repr__(self) -> str:
        return "<not JSON>"


_NOT_JSON: Any = _NotJson()
"""A body that is not JSON (an HTML page from a proxy, a truncated answer)."""


def not_json(decoded: Any) -> bool:
    return decoded is _NOT_JSON
