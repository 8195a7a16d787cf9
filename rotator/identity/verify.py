"""Verify a TeamCity build's OIDC token: PyJWT does the cryptography and the standard claim
checks; this module decides which keys, algorithms, issuer and audience it is given.

Checks, in order (each failure is a ``Rejected`` with a reason that never holds the token):
size and shape; the header's ``alg`` is in the configured allow-list (RS/PS/ES only, so
``none`` and HMAC never verify anything, whatever the header says); ``iss`` is the pinned
issuer (read before any key lookup, so another issuer's tokens cost no JWKS fetch); the
``kid`` is in the issuer's JWKS (``jwks.py``); then PyJWT verifies the signature with that
key bound to that algorithm, ``iss``, exact ``aud`` membership, ``exp``/``nbf``/``iat`` with
the leeway, and requires ``sub`` and ``jti``; last, ``iat`` is no older than ``max_age``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from rotator.errors import RotatorError, Unavailable
from rotator.identity.jwks import JwksCache, JwksUnavailable
from rotator.identity.settings import IdentitySettings

MAX_TOKEN_BYTES = 16 * 1024
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")


class Rejected(RotatorError):
    """The token proves nothing (HTTP 401). ``reason`` is safe to log and to answer with."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unverifiable(Unavailable):
    """The issuer's keys are unavailable (HTTP 503): fail closed."""


_PYJWT_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf/iat in the future)"),
    (jwt.InvalidAudienceError, "the token's audience is not this endpoint's"),
    (jwt.InvalidIssuerError, "the token's issuer is not the configured one"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not allowed for its key"),
    (jwt.InvalidKeyError, "the issuer's key does not fit the token's algorithm"),
    (jwt.PyJWKError, "the issuer's key does not fit the token's algorithm"),
)


@dataclass
class Verifier:
    settings: IdentitySettings
    jwks: JwksCache
    clock: Callable[[], float] = time.time
    """For ``max_age`` only; PyJWT checks ``exp``/``nbf``/``iat`` against ``time.time()``."""

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> Verifier:
        return cls(
            settings,
            JwksCache(
                settings.jwks_url,
                ttl=settings.jwks_ttl.total_seconds(),
                refetch_interval=settings.jwks_refetch.total_seconds(),
                timeout=settings.timeout,
            ),
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or ``Rejected``/``Unverifiable``."""
        s = self.settings
        if not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise Rejected("not a JWT (expected header.payload.signature)")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Rejected("not a JWT (its header or payload does not decode)") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in s.algorithms:
            raise Rejected(f"algorithm not allowed (allowed: {', '.join(s.algorithms)})")
        if unverified.get("iss") != s.issuer:
            raise Rejected("the token's issuer is not the configured one")
        if not isinstance(kid, str) or not kid:
            raise Rejected("the token names no key (kid)")
        try:
            jwk = self.jwks.key(kid)
        except JwksUnavailable as exc:
            raise Unverifiable(str(exc)) from None
        if jwk is None:
            raise Rejected("the token's key id is not in the issuer's JWKS")
        claims = self._decode(token, jwk, alg)
        iat = claims.get("iat")
        if not isinstance(iat, int) or self.clock() - iat > (s.max_age + s.leeway).total_seconds():
            raise Rejected(f"the token is older than max_age ({_human(s.max_age.total_seconds())})")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Rejected("the token's sub is not a string")
        return claims

    def _decode(self, token: str, jwk: dict[str, Any], alg: str) -> dict[str, Any]:
        s = self.settings
        if jwk.get("alg") not in (None, alg):
            raise Rejected("the token's algorithm is not the one its key is published for")
        try:
            # Bound to the header's alg (in the allow-list): PyJWT refuses a key type that does
            # not fit it, and verifies with this algorithm only.
            key = jwt.PyJWK(jwk, algorithm=alg)
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Rejected(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            for kind, reason in _PYJWT_REASONS:
                if isinstance(exc, kind):
                    raise Rejected(reason) from None
            raise Rejected("the token is malformed") from None


def _human(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds:g}s"
