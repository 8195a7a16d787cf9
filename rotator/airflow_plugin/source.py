"""What the Credentials page reads: the credentials of ``rotator.toml`` and the store the
Airflow secrets backend reads, so the page shows what tasks actually get.

- Credentials (names, types, schedules, the audit file) come from ``rotator.toml``, found as
  the CLI finds it: ``$ROTATOR_CONFIG`` in the API server's environment, else ``rotator.toml``
  in its working directory. It is read on every request, so an edit shows without a restart.
- The store is the one the secrets backend reads, when Airflow's backend is Rotator's: its
  ``[secrets] backend_kwargs`` parsed by ``RotatorSecretsBackend`` itself (same validation,
  same store options), opened as a full store because the page reads stages, metadata and the
  journal, not only documents (the backend's light readers only fetch documents). Otherwise
  the store ``rotator.toml`` names. The file store is opened read-only either way; on Vault,
  the API server's token needs ``ops/vault/airflow-ui-policy.hcl`` besides the backend's.

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
    kind, options = _backend_settings()
    from_backend = bool(kind)
    if not from_backend:
        kind, options = config.store_kind, config.store_options
    elif kind != config.store_kind:
        notes.append(
            f"Airflow's secrets backend reads a {kind} store but {config.source} names a "
            f"{config.store_kind} store: the page shows the backend's"
        )
    store = _open_store(kind, options, missing_ok=not from_backend)
    return Source(config, store, kind, audit_path(config, store), notes)


def _backend_settings() -> tuple[str, dict[str, Any]]:
    """``(kind, store options)`` of Airflow's secrets backend when it is Rotator's, else
    ``("", {})``: parsed by the backend class, so both refuse the same settings."""
    from airflow.configuration import conf

    if conf.get("secrets", "backend", fallback="") != BACKEND:
        return "", {}
    from backends.airflow import RotatorSecretsBackend

    kwargs = conf.getjson("secrets", "backend_kwargs", fallback={}) or {}
    backend = RotatorSecretsBackend(**kwargs)  # type: ignore[arg-type]
    return backend.kind, dict(backend.store_options)


def _open_store(kind: str, options: dict[str, Any], *, missing_ok: bool) -> Any:
    """The full store, opened once per process for the same settings (one Vault login). The
    file store is read-only; a database missing where the backend's settings say is an error
    (tasks would fail the same way), where only rotator.toml names it, an empty store (as for
    ``rotator status`` before the first rotation)."""
    from backends.store import open_store

    key = json.dumps([kind, options, missing_ok], sort_keys=True, default=str)
    with _stores_lock:
        if key not in _stores:
            extra = {"read_only": True, "missing_ok": missing_ok} if kind == "file" else {}
            _stores[key] = open_store(kind, **options, **extra)
        return _stores[key]
