"""The Airflow backend's read of Vault / OpenBao: the latest KV v2 version of one path.

A KV v2 read is one ``GET /v1/<mount>/data/<path>`` with an ``X-Vault-Token`` header (and
``X-Vault-Namespace`` when configured), so this reader does not import hvac: it uses httpx,
which every Airflow process has already imported. That keeps hvac's import (about 50 ms on a
2-core machine) out of every task's first lookup. hvac is still what logs in with AppRole,
Kubernetes or JWT (``backends.vault_auth``), imported only when such a login is configured,
and it shares that login with ``VaultStore`` in the same process.

It takes the same options as ``backends.vault.VaultStore`` (those only the writer needs are
accepted and ignored) and raises the same errors: ``NotFound`` for a missing or deleted path,
``AccessDenied`` for a 403 / 401, ``StoreUnavailable`` when Vault cannot be reached, answers 5xx,
or answers with something that is not Vault's JSON (an HTML page from a proxy), ``StoreError``
otherwise. Messages name the path and the HTTP status, never a token or a value. Like hvac it
follows redirects (a standby node sends reads to the active one) and honours the proxy
variables and ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from backends.errors import (
    AccessDenied,
    ConfigError,
    CorruptDocument,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from backends.http_read import http_client
from backends.vault_auth import VaultAuth, _secret_from, session

_UNAVAILABLE = {500, 501, 502, 503, 504}  # hvac: InternalServerError, VaultNotInitialized, ...


def _hvac_client(url: str, namespace: str | None, verify: bool | str, timeout: float) -> Any:
    import hvac  # only for the logins that need it (AppRole, Kubernetes, JWT)

    return hvac.Client(url=url, namespace=namespace, verify=verify, timeout=timeout)


class VaultReader:
    """Reads what consumers read at a KV v2 path: its latest version's data, in one GET."""

    kind = "vault"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8200",
        auth: str = "token",
        mount: str = "secret",
        namespace: str | None = None,
        verify: bool = True,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        connections_prefix: str | None = "airflow/connections",
        variables_prefix: str | None = "airflow/variables",
        config_prefix: str | None = "airflow/config",
        state_prefix: str = "rotator",
        **auth_options: Any,
    ) -> None:
        # The same checks, in the same order and words, as VaultStore: a config that one
        # accepts the other accepts.
        auth_ = VaultAuth.from_options(auth, auth_options)
        from backends.store import check_path

        check_path(state_prefix)
        self.url = url.rstrip("/")
        self.mount = mount
        self.namespace = namespace
        self.verify: bool | str = ca_bundle or verify
        self.timeout = timeout
        self.auth = auth_
        self._session = None
        if self.auth.method != "token":
            # The key VaultStore uses: one login per process, whichever of the two asks first.
            key = (self.url, namespace, str(self.verify), timeout, self.auth)
            url, verify_, timeout_ = self.url, self.verify, timeout
            self._session = session(
                key, lambda: _hvac_client(url, namespace, verify_, timeout_), self.auth
            )

    def __repr__(self) -> str:
        return f"VaultReader(url={self.url!r}, mount={self.mount!r}, auth={self.auth.method!r})"

    def _token(self, path: str) -> str:
        if self._session is None:
            # A given token is re-read on every read (env or file, no request), as VaultStore
            # does: when an operator or an agent replaces it, the next read uses the new one.
            return _secret_from(self.auth.token_env, self.auth.token_file, "Vault token")
        try:
            return str(self._session.get().token)
        except ConfigError:
            raise
        except Exception as exc:  # hvac's login failed: translated like VaultStore does
            from backends.vault import _translate

            raise _translate(path, exc) from exc

    def get_document(self, path: str) -> dict[str, Any]:
        """The latest version's data at ``path``. ``NotFound`` if missing or deleted."""
        from backends.store import check_path

        check_path(path)
        for attempt in (1, 2):
            status, body = self._get(path)
            if status == 403 and attempt == 1 and self._session is not None:
                self._session.invalidate()  # a login token revoked early: log in again once
                continue
            return self._document(path, status, body)
        raise AssertionError("unreachable")

    def _get(self, path: str) -> tuple[int, Any]:
        headers = {"X-Vault-Request": "true", "X-Vault-Token": self._token(path)}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        where = f"{self.url}/v1/{quote(self.mount)}/data/{quote(path)}"
        verify = self.verify
        if verify is True:  # as requests does for hvac
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        client = http_client(self.url, verify, self.timeout)
        import httpx

        try:
            response = client.get(where, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach Vault for {path}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if body is None and response.status_code < 500:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise StoreUnavailable(
                f"Vault at {self.url} answered {response.status_code} with {kind}, not Vault's "
                f"JSON, for {path} (a proxy or a wrong url?)"
            )
        return response.status_code, body

    def _document(self, path: str, status: int, body: Any) -> dict[str, Any]:
        if status == 404:
            raise NotFound(f"nothing stored at {path}")
        if status == 403:
            raise AccessDenied(f"Vault refused access to {path} (permission denied)")
        if status == 401:
            raise AccessDenied(f"Vault token rejected while accessing {path} (expired or revoked?)")
        if status in _UNAVAILABLE:
            raise StoreUnavailable(f"Vault failed on {path}: HTTP {status}")
        if status != 200:
            raise StoreError(f"Vault error on {path}: HTTP {status}")
        data = body.get("data") if isinstance(body, dict) else None
        document = data.get("data") if isinstance(data, dict) else None
        if document is None:
            raise NotFound(f"nothing stored at {path}")
        if not isinstance(document, dict):
            raise CorruptDocument(f"{path} does not hold a KV v2 document; left untouched")
        return document

    def close(self) -> None:
        """Clients are shared per process; nothing to release per reader."""
