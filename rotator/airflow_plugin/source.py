"""What the Credentials page reads: the credentials of ``rotator.toml`` and the store the
Airflow secrets backend reads, so the page shows what tasks actually get.

- Credentials (names, types, schedules, the audit file) come from ``rotator.toml``, found as
  the CLI finds it: ``$ROTATOR_CONFIG`` in the API server's environment, else ``rotator.toml``
  in its working directory. It is read on every request, so an edit shows without a restart.
- The store is the secrets backend's own (``[secrets] backend_kwargs``, the process-wide store
  ``RotatorSecretsBackend`` shares, the file store opened read-only) when Airflow's backend is
  Rotator's; otherwise the store ``rotator.toml`` names, opened read-only.

Whatever looks wrong (no ``rotator.toml``; a backend reading another kind of store than the
config names) is reported in ``notes`` for the page to show, never raised: the page is where a
user finds out that the setup is incomplete.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKEND = "backends.airflow.RotatorSecretsBackend"

_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


@dataclass
class Source:
    config: Any
    store: Any
    store_kind: str
    audit_file: Path
    notes: list[str] = field(default_factory=list)


def open_source() -> Source:
    """The config and the store for one request (see the module docstring)."""
    from rotator.config import config_path, load
    from rotator.status import audit_path

    notes: list[str] = []
    config = load()
    if config_path() is None:
        notes.append(
            "no rotator.toml: set ROTATOR_CONFIG in the Airflow API server's environment to the "
            "rotator.toml Rotator runs with, then restart it"
        )
    store, kind = _backend_store()
    if store is None:
        store, kind = _config_store(config), config.store_kind
    elif kind != config.store_kind:
        notes.append(
            f"Airflow's secrets backend reads a {kind} store but {config.source} names a "
            f"{config.store_kind} store: the page shows the backend's"
        )
    return Source(config, store, kind, audit_path(config, store), notes)


def _backend_store() -> tuple[Any, str]:
    """The store of Airflow's secrets backend, when it is Rotator's; else ``(None, "")``."""
    from airflow.configuration import conf

    if conf.get("secrets", "backend", fallback="") != BACKEND:
        return None, ""
    from backends.airflow import RotatorSecretsBackend

    kwargs = conf.getjson("secrets", "backend_kwargs", fallback={}) or {}
    backend = RotatorSecretsBackend(**kwargs)  # type: ignore[arg-type]
    store, _cache = backend._shared()
    return store, backend.kind


def _config_store(config: Any) -> Any:
    """The config's store, opened read-only once per process for the same settings."""
    key = json.dumps([config.store_kind, config.store_options], sort_keys=True, default=str)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = config.open_store(read_only=True)
        return _stores[key]
