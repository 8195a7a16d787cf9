"""Rotator's Airflow secrets backend: reads connections, variables and config from Vault /
OpenBao, AWS Secrets Manager or Rotator's embedded store, through a cache shared by the whole
process. What the official providers store, it reads; what it reads, they store.

``airflow.cfg``::

    [secrets]
    backend = backends.airflow.RotatorSecretsBackend
    backend_kwargs = {"store": "vault", "url": "https://vault:8200", "auth": "approle",
                      "role_id": "airflow", "secret_id_file": "/run/secrets/vault-secret-id",
                      "connections_prefix": "airflow/connections"}

:param store: ``"vault"``, ``"aws"`` or ``"file"`` (the ``kind`` of rotator.toml's ``[store]``).
:param connections_prefix: path prefix of connections; ``None`` turns connections off.
    Default ``airflow/connections``.
:param variables_prefix: likewise for variables (default ``airflow/variables``).
:param config_prefix: likewise for config options (default ``None``: off).
:param connections_lookup_pattern: regex; only matching conn_ids are looked up (default all).
:param variables_lookup_pattern: likewise for variable keys.
:param config_lookup_pattern: likewise for config keys.
:param sep: separator between prefix and id (default ``/``).
:param cache_ttl: seconds a found value is served from memory (default 300). Keep it shorter
    than the shortest ``grace`` of the credentials it serves, so a cached value is never one
    that Rotator has already revoked.
:param negative_ttl: seconds an id the store does not have is remembered as missing (default 60).
:param stale_ttl: seconds past ``cache_ttl`` that the last good value is served while the
    store is unreachable (default 300; 0 turns it off). ``cache_ttl + stale_ttl`` is refused if
    it exceeds ``max_staleness`` (default 3600).
:param max_staleness: the bound above.
:param other keys: the store's own options, exactly as in rotator.toml's ``[store]``: Vault
    ``url``, ``auth`` (token | approle | kubernetes | jwt), ``mount``, ``namespace``,
    ``token_file``, ``role``, ``role_id``, ``secret_id_file``, ``jwt_file``, ``ca_bundle`` ...;
    AWS ``region``, ``endpoint_url``; file ``path``, ``key_file``. Secrets are never kwargs:
    the Vault token comes from ``VAULT_TOKEN`` or ``token_file``.

The file store is always opened read-only: the backend never creates a database, a key or a
directory. Give ``path`` (and ``key_file``, unless the key is in ``ROTATOR_MASTER_KEY``) as
absolute paths: a task's working directory is not Rotator's. A missing database or key raises
an error naming the absolute paths it looked at and the option or variable that sets them, and
logs it at ERROR (Airflow itself logs a backend's error only at debug level).

Nothing heavy is imported here, and the read path avoids the client libraries: a Vault read is
one GET (``backends.vault_read``; hvac only for an AppRole, Kubernetes or JWT login), an AWS read
one signed POST (``backends.aws_read``; botocore's credential chain only when the credentials are
not in the environment, boto3 only for settings that reader does not model). Both load on the
first lookup.
Values are never logged. A missing id returns ``None`` (Airflow tries the next backend); a
store that refuses us raises Airflow's ``AirflowSecretsBackendAccessDenied``, which stops the
chain instead of silently falling back to a less protected backend.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any

from airflow.secrets import BaseSecretsBackend

from backends.cache import DocumentCache
from backends.errors import AccessDenied, ConfigError

log = logging.getLogger(__name__)

_shared: dict[str, tuple[Any, DocumentCache]] = {}
_shared_lock = threading.Lock()


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"RotatorSecretsBackend: {name} must be a number of seconds") from None
    if seconds < 0:
        raise ConfigError(f"RotatorSecretsBackend: {name} must be >= 0")
    return seconds


def _key(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=str)


def open_reader(kind: str, options: dict[str, Any]) -> Any:
    """What the backend reads through: an object with the store's ``get_document``.

    Vault and AWS get the light readers of ``backends.vault_read`` / ``backends.aws_read`` (no
    hvac, no boto3 on a token-auth Vault or an AWS read with modelled settings: the cold path
    of every task). The file store is opened read-only: a reader never creates a store, a key
    or a directory. Options and errors are the stores' own.
    """
    if kind == "vault":
        from backends.vault_read import VaultReader

        return VaultReader(**options)
    if kind == "aws":
        from backends.aws_read import open_reader as open_aws

        return open_aws(**options)
    from backends.store import open_store

    options = dict(options)
    if kind == "file":
        options.update(read_only=True, missing_ok=False)
    return open_store(kind, **options)


class RotatorSecretsBackend(BaseSecretsBackend):
    def __init__(
        self,
        store: str = "file",
        connections_prefix: str | None = "airflow/connections",
        variables_prefix: str | None = "airflow/variables",
        config_prefix: str | None = None,
        connections_lookup_pattern: str | None = None,
        variables_lookup_pattern: str | None = None,
        config_lookup_pattern: str | None = None,
        sep: str = "/",
        cache_ttl: float = 300,
        negative_ttl: float = 60,
        stale_ttl: float = 300,
        max_staleness: float = 3600,
        **store_options: Any,
    ) -> None:
        super().__init__()
        if "token" in store_options or "secret_id" in store_options or "password" in store_options:
            raise ConfigError(
                "RotatorSecretsBackend: secrets do not belong in backend_kwargs (they end up in "
                "airflow.cfg and in process listings); use VAULT_TOKEN, token_file, "
                "secret_id_file or the AWS credential chain"
            )
        # Per-key AIRFLOW__WORKERS__SECRETS_BACKEND_KWARG__* values arrive as strings.
        cache_ttl = _seconds("cache_ttl", cache_ttl)
        negative_ttl = _seconds("negative_ttl", negative_ttl)
        stale_ttl = _seconds("stale_ttl", stale_ttl)
        max_staleness = _seconds("max_staleness", max_staleness)
        if cache_ttl + stale_ttl > max_staleness:
            raise ConfigError(
                "RotatorSecretsBackend: cache_ttl + stale_ttl exceeds max_staleness: a cached "
                "credential could outlive its grace period"
            )
        self.connections_prefix = connections_prefix.rstrip(sep) if connections_prefix else None
        self.variables_prefix = variables_prefix.rstrip(sep) if variables_prefix else None
        self.config_prefix = config_prefix.rstrip(sep) if config_prefix else None
        self.patterns = {
            "connections": re.compile(connections_lookup_pattern)
            if connections_lookup_pattern
            else None,
            "variables": re.compile(variables_lookup_pattern) if variables_lookup_pattern else None,
            "config": re.compile(config_lookup_pattern) if config_lookup_pattern else None,
        }
        self.sep = sep
        self.kind = store
        self.store_options = store_options
        self._cache_key = _key(
            {"store": store, "ttl": [cache_ttl, negative_ttl, stale_ttl], **store_options}
        )
        self._ttls = (float(cache_ttl), float(negative_ttl), float(stale_ttl))

    def _shared(self) -> tuple[Any, DocumentCache]:
        """The process-wide reader (one Vault login) and cache for these settings."""
        with _shared_lock:
            found = _shared.get(self._cache_key)
            if found is None:
                found = (open_reader(self.kind, self.store_options), DocumentCache(*self._ttls))
                _shared[self._cache_key] = found
            return found

    def _lookup(self, kind: str, prefix: str | None, secret_id: str) -> Any:
        if prefix is None:
            return None
        pattern = self.patterns[kind]
        if pattern is not None and not pattern.match(secret_id):
            return None
        path = self.build_path(prefix, secret_id, self.sep)
        store, cache = self._shared()
        try:
            return cache.get(path, lambda: store.get_document(path))
        except AccessDenied as exc:
            from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied

            raise AirflowSecretsBackendAccessDenied(str(exc)) from exc
        except ConfigError as exc:
            # Airflow logs a backend's exception at debug level only and moves on: without this
            # line a store in the wrong place would look like "connection not found".
            log.error("RotatorSecretsBackend cannot use its %s store: %s", self.kind, exc)
            raise

    def forget_connection(self, conn_id: str) -> None:
        """Drop ``conn_id`` from this process's cache, so that the next lookup reads the store:
        for a client whose credential was just refused (it may have been rotated since)."""
        if self.connections_prefix is None:
            return
        _, cache = self._shared()
        cache.drop(self.build_path(self.connections_prefix, conn_id, self.sep))

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        document = self._lookup("connections", self.connections_prefix, conn_id)
        if document is None:
            return None
        if isinstance(document, str):
            return document  # AWS: JSON or a URI, stored as a string
        if "conn_uri" in document:
            return str(document["conn_uri"])
        return json.dumps(document)

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        return self._value(self._lookup("variables", self.variables_prefix, key))

    def get_config(self, key: str) -> str | None:
        return self._value(self._lookup("config", self.config_prefix, key))

    @staticmethod
    def _value(document: Any) -> str | None:
        if document is None:
            return None
        if isinstance(document, str):
            return document  # AWS keeps variables as plain strings
        value = document.get("value")
        return None if value is None else str(value)

    async def aget_connection(self, conn_id: str, team_name: str | None = None) -> Any:
        return await asyncio.to_thread(self.get_connection, conn_id)

    async def aget_variable(self, key: str, team_name: str | None = None) -> str | None:
        return await asyncio.to_thread(self.get_variable, key)

    def __repr__(self) -> str:
        return f"RotatorSecretsBackend(store={self.kind!r})"
