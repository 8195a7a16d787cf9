"""A ``requests.Session`` that reads its environment settings once per host.

``requests`` looks at the environment on every request (``HTTP(S)_PROXY``, ``NO_PROXY``,
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, ``.netrc``), walking ``os.environ`` twice each time:
on loopback that was about a tenth of Rotator's CPU per rotation, for an answer that does not
change while a process runs. This session asks once per scheme and host and reuses the
answer, so a process sees the settings its environment had at its first request to a host
(as a daemon reads its configuration when it starts).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests


class EnvOnceSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._settled: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._settled_lock = threading.Lock()

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if not self.trust_env or proxies:  # a caller's own proxies: requests' own rules
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url if isinstance(url, str) else (url or b"").decode())
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        with self._settled_lock:
            settled = self._settled.get(key)
        if settled is None:
            settled = super().merge_environment_settings(url, {}, stream, verify, cert)
            with self._settled_lock:
                self._settled[key] = settled
        return {**settled, "proxies": dict(settled["proxies"])}
