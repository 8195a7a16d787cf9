"""How many runs each token (its ``jti``) has started: a rule's ``max_runs`` is a budget per
token, so a token copied out of a build log cannot start runs beyond it.

Entries are kept until the token expires (after that the token is refused anyway) and are
dropped then. The counter lives in the API server process: with several API server workers
(``[api] workers``) each keeps its own, so a token's budget is per worker; run the identity
endpoint's API server with one worker where that matters (the README's threat table says so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_ENTRIES = 100_000


class ReplayCounter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._uses: dict[str, tuple[int, float]] = {}  # jti -> (runs reserved, exp)
        self._lock = threading.Lock()

    def reserve(self, jti: str, limit: int, exp: float) -> int | None:
        """Take one run from ``jti``'s budget: the run's number (1-based), or None when the
        budget is spent (or the table is full of live tokens: refuse rather than forget)."""
        with self._lock:
            now = self._clock()
            if len(self._uses) >= MAX_ENTRIES:
                self._uses = {k: v for k, v in self._uses.items() if v[1] > now}
            used, _ = self._uses.get(jti, (0, exp))
            if used >= limit or (jti not in self._uses and len(self._uses) >= MAX_ENTRIES):
                return None
            self._uses[jti] = (used + 1, exp)
            return used + 1

    def release(self, jti: str) -> None:
        """Give a reserved run back (Airflow refused to create it)."""
        with self._lock:
            used, exp = self._uses.get(jti, (0, 0.0))
            if used <= 1:
                self._uses.pop(jti, None)
            else:
                self._uses[jti] = (used - 1, exp)

    def used(self, jti: str) -> int:
        with self._lock:
            return self._uses.get(jti, (0, 0.0))[0]
