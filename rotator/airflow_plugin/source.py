"""What the Credentials page reads: the store the Airflow secrets backend reads (so the page
shows what tasks actually get) and, when there is one, ``rotator.toml``.

- The store is the one the secrets backend reads, when Airflow's backend is Rotator's: its
  ``[secrets] backend_kwargs`` parsed by ``RotatorSecretsBackend`` itself (same validation,
  same store options), opened as a full store because the page reads stages, metadata and the
  journal, not only documents (the backend's light readers only fetch documents). Otherwise
  the store ``rotator.toml`` names. The file store is opened read-only either way; on Vault,
  the API server's token needs ``ops/vault/airflow-ui-policy.hcl`` besides the backend's.
- The credentials come from ``rotator.toml`` when the API server finds one as the CLI does
  (``$ROTATOR_CONFIG``, else ``rotator.toml`` in its working directory): it is authoritative,
  names credentials never rotated yet, and has the audit file. It is read on every request,
  so an edit shows without a restart. Without one (``config`` is ``None``), the page lists the
  credentials whose lock documents the store holds (``Store.lock_names``) and reads each one's
  journal (``rotator.status.recorded_row``): installing the plugin is then all it takes.

Whatever looks wrong (no Rotator backend and no ``rotator.toml``; a backend reading another
kind of store than the config names) is reported in ``notes`` for the page to show, never
raised: the page is where a user finds out that the setup is incomplete.
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
    config: Any | None
    """``rotator.toml``, or ``None``: the page then reads the store alone."""
    store: Any
    store_kind: str
    audit_file: Path | None
    notes: list[str] = field(default_factory=list)


STORE_ONLY = (
    "no rotator.toml: this page lists the credentials Rotator has rotated into this store, "
    "from the store alone (the last outcome from its journal; no audit trail). Set "
    "ROTATOR_CONFIG in the Airflow API server's environment to add credentials not rotated "
    "yet and their audit trail"
)
NOTHING = (
    "Airflow's secrets backend is not Rotator's and there is no rotator.toml: set [secrets] "
    f"backend = {BACKEND} (the page reads its store), or ROTATOR_CONFIG in the Airflow API "
    "server's environment to the rotator.toml Rotator runs with, then restart it"
)


def open_source() -> Source:
    """The config (if any) and the store for one request (see the module docstring)."""
    from rotator.config import config_path, load
    from rotator.status import audit_path

    notes: list[str] = []
    found = config_path() is not None
    config = load()  # the embedded defaults when there is no file: they name a store
    kind, options = _backend_settings()
    from_backend = bool(kind)
    if not from_backend:
        kind, options = config.store_kind, config.store_options
        if not found:
            notes.append(NOTHING)
    elif not found:
        notes.append(STORE_ONLY)
    elif kind != config.store_kind:
        notes.append(
            f"Airflow's secrets backend reads a {kind} store but {config.source} names a "
            f"{config.store_kind} store: the page shows the backend's"
        )
    store = _open_store(kind, options, missing_ok=not from_backend)
    if not found:
        return Source(None, store, kind, None, notes)
    return Source(config, config.bind(store), kind, audit_path(config, store), notes)


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
