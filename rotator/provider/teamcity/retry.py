"""When a request to TeamCity may be sent again, and after how long.

Connection errors, 429 and 5xx are retried with exponential backoff and full jitter (a fleet of
triggers that lost TeamCity together must not come back in step), honouring ``Retry-After``.
A request that changes state is sent again only when it provably never reached TeamCity (the
connection was refused or never established) or was refused as a whole (429): a POST that timed
out or got a 5xx may have queued a build, and the caller must look before it tries again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.cap * 3)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))  # noqa: S311

    def may_repeat(self, status: int, *, idempotent: bool) -> bool:
        """Whether an answer with ``status`` is worth sending again."""
        if status == 429:
            return True
        return idempotent and status in RETRY_STATUSES


DEFAULT = RetryPolicy()
