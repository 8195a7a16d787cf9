"""The HTTP client of the Airflow backend's read path (``vault_read``, ``aws_read``).

httpx, because every Airflow process has imported it already (the task SDK talks to the API
server with it): the read path pays no HTTP library import. One client per process and
settings, so connections are kept alive between reads. Proxy variables are honoured
(``HTTP(S)_PROXY``, ``NO_PROXY``), as requests and botocore honour them.
"""

from __future__ import annotations

import threading
from typing import Any

from backends.errors import StoreError

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def http_client(base_url: str, verify: bool | str, timeout: float) -> Any:
    """The shared client for ``base_url``. ``verify``: ``True``, ``False`` or a CA bundle path.

    A plain ``http`` URL builds no TLS context (loading a CA bundle costs ~20 ms on a cold
    process) and refuses to follow a redirect to ``https``: give the ``https`` URL instead.
    Redirects are followed otherwise (a Vault standby sends reads to the active node).
    """
    key = (base_url, verify, timeout)
    with _lock:
        found = _clients.get(key)
        if found is None:
            import httpx

            hooks: dict[str, list[Any]] = {}
            tls: bool | str = verify
            if not base_url.startswith("https:"):
                tls = False

                def plain_only(request: Any) -> None:
                    if request.url.scheme != "http":
                        raise StoreError(
                            f"{base_url} redirected to {request.url.scheme}: configure that URL"
                        )

                hooks["request"] = [plain_only]
            found = _clients[key] = httpx.Client(
                verify=tls, timeout=timeout, follow_redirects=True, event_hooks=hooks
            )
        return found
