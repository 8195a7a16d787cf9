"""A per-process cache of stored documents, shared by every backend instance built with the
same settings (Airflow builds its secrets backends again and again in one process).

Three lifetimes, all bounded:

- ``ttl``: a value found in the store is served from memory this long;
- ``negative_ttl``: an id the store does not have is remembered as missing this long (most of a
  task's lookups fall through to the next backend, and each would otherwise cost a round trip);
- ``stale_ttl``: when the store cannot be reached, the last good value is served this long past
  its ``ttl``, with a warning, instead of failing the task.

The cache keeps values only in this process's memory; it never writes them anywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backends.errors import NotFound, StoreUnavailable

MISSING = object()


@dataclass
class _Entry:
    value: Any = field(repr=False)  # MISSING for a negative entry
    fresh_until: float
    stale_until: float


class DocumentCache:
    def __init__(self, ttl: float, negative_ttl: float, stale_ttl: float) -> None:
        self.ttl, self.negative_ttl, self.stale_ttl = ttl, negative_ttl, stale_ttl
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.loads = 0
        self.stale_served = 0

    def get(
        self, key: str, load: Callable[[], Any], clock: Callable[[], float] = time.monotonic
    ) -> Any:
        """The document at ``key``: from memory if fresh, else ``load()``; ``None`` if missing.

        ``load`` raises ``NotFound`` for a missing id and ``StoreUnavailable`` when the store
        cannot answer; any other error propagates untouched (and nothing is cached).
        """
        now = clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now < entry.fresh_until:
            return None if entry.value is MISSING else entry.value
        try:
            value = load()
        except NotFound:
            self._put(key, _Entry(MISSING, now + self.negative_ttl, now + self.negative_ttl))
            return None
        except StoreUnavailable:
            if entry is not None and entry.value is not MISSING and now < entry.stale_until:
                self.stale_served += 1
                return entry.value
            raise
        finally:
            self.loads += 1
        self._put(key, _Entry(value, now + self.ttl, now + self.ttl + self.stale_ttl))
        return value

    def _put(self, key: str, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def drop(self, key: str) -> None:
        """Forget ``key``: the next ``get`` loads it (a value the target just refused)."""
        with self._lock:
            self._entries.pop(key, None)
