"""The issuer's public keys (JWKS), cached, refetched sparingly, and never trusted past their
time.

- Keys are fetched on first use and trusted for ``ttl``; a request after that refetches.
- A token whose ``kid`` is not in the cache triggers one refetch, at most once per
  ``refetch_interval`` (whatever the outcome): TeamCity rotates its key and the new ``kid``
  appears without waiting for the TTL, while a flood of made-up ``kid``s costs one fetch per
  interval, not one per request.
- When the keys are older than ``ttl`` and cannot be fetched again, ``key()`` raises
  ``JwksUnavailable``: fail closed. A revoked (purged) key must not live on because the issuer
  is unreachable.

Parsing a JWK into a key object is PyJWT's (``PyJWKSet``); nothing here touches key material.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

from rotator.errors import Unavailable

MAX_JWKS_BYTES = 256 * 1024


class JwksUnavailable(Unavailable):
    """The keys are stale and could not be fetched again: nothing can be verified."""


def fetch_jwks(url: str, timeout: float) -> dict[str, Any]:
    """GET the JWKS document; any failure (network, status, size, not JSON) raises."""
    response = requests.get(
        url, timeout=timeout, headers={"Accept": "application/json"}, allow_redirects=False
    )
    if response.status_code != 200:
        raise JwksUnavailable(f"the JWKS endpoint answered HTTP {response.status_code}")
    if len(response.content) > MAX_JWKS_BYTES:
        raise JwksUnavailable("the JWKS document is larger than 256 KiB")
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksUnavailable("the JWKS document has no 'keys' list")
    return data


class JwksCache:
    """Keys by ``kid`` from one JWKS URL (see the module docstring for the rules)."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        refetch_interval: float = 30.0,
        timeout: float = 5.0,
        fetch: Callable[[str, float], dict[str, Any]] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl, self.refetch_interval, self.timeout = ttl, refetch_interval, timeout
        self._fetch, self._clock = fetch, clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()
        self.fetches = 0
        """Attempts so far (tests and the benchmark read it)."""
        self.last_error: str | None = None

    def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK (a dict) for ``kid``; None if the issuer does not list it;
        ``JwksUnavailable`` if the cache is stale and the issuer cannot be reached."""
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self.ttl:
                if not self._may_attempt(now) or not self._refresh(now):
                    raise JwksUnavailable(
                        "the issuer's keys are stale and could not be fetched"
                        + (f" ({self.last_error})" if self.last_error else "")
                    )
            elif kid not in self._keys and self._may_attempt(now):
                self._refresh(now)  # a failure keeps the fresh cache: the kid stays unknown
            return self._keys.get(kid)

    def _may_attempt(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.refetch_interval

    def _refresh(self, now: float) -> bool:
        self._attempted_at = now
        self.fetches += 1
        try:
            document = self._fetch(self.url, self.timeout)
            usable = {k.key_id for k in jwt.PyJWKSet.from_dict(document).keys if k.key_id}
        except (JwksUnavailable, requests.RequestException, ValueError, jwt.PyJWTError) as exc:
            self.last_error = str(exc)[:200]
            return False
        # The JWKs themselves, as published: the verifier binds each to the algorithm the
        # token names (PyJWT checks that the two agree); PyJWKSet has checked they parse.
        self._keys = {
            k["kid"]: k for k in document["keys"] if isinstance(k, dict) and k.get("kid") in usable
        }
        self._fetched_at, self.last_error = now, None
        return True
