"""Secret stores behind one interface, and the Airflow secrets backend built on them.

Importing this package is cheap on purpose: it is imported in every Airflow task process.
Client libraries (hvac, boto3, sqlite3 + cryptography) are imported inside each store, on first
use. Nothing here imports ``rotator``.
"""

from __future__ import annotations

from backends.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    CorruptDocument,
    LeaseLost,
    LockHeld,
    NotFound,
    RotatorError,
    StoreError,
    StoreUnavailable,
)

__all__ = [
    "AccessDenied",
    "ConfigError",
    "Conflict",
    "CorruptDocument",
    "LeaseLost",
    "LockHeld",
    "NotFound",
    "RotatorError",
    "StoreError",
    "StoreUnavailable",
]
