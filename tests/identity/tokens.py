"""Test-side token factory: RSA keys generated here, tokens signed with PyJWT, each
registered with the leak scan. Attack tokens (``alg: none``, HMAC keyed with the public key)
are built the way an attacker builds them, from their parts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.fixtures.leaks import register_secret

ISSUER = "https://teamcity.example.com/app/oidc-jwt"
AUDIENCE = "airflow-trigger"


class Token(str):
    """A JWT that pytest never prints whole."""

    def __repr__(self) -> str:
        return "Token(...)"


@dataclass
class Key:
    private: rsa.RSAPrivateKey = field(repr=False)
    kid: str

    @property
    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(kid: str | None = None) -> Key:
    return Key(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), kid or uuid.uuid4().hex
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "_Root:project1:bt1",
        "aud": AUDIENCE,
        "exp": now + 600,
        "nbf": now,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "build_type_id": "bt1",
        "build_type_external_id": "DataPipelines_Publish",
        "project_id": "project1",
        "project_external_id": "DataPipelines",
        "build_id": 42,
        "branch_name": "main",
        "branch_is_default": True,
        "is_personal": False,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, payload: dict[str, Any], alg: str = "RS256") -> Token:
    token = Token(
        jwt.encode(payload, key.private, algorithm=alg, headers={"kid": key.kid, "typ": None})
    )
    register_secret(token)
    return token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], kid: str) -> Token:
    """``alg: none`` with an empty signature."""
    head = _b64(json.dumps({"alg": "none", "kid": kid}).encode())
    token = Token(f"{head}.{_b64(json.dumps(payload).encode())}.")
    register_secret(token)
    return token


def hs256_with_public_key(key: Key, payload: dict[str, Any]) -> Token:
    """The classic confusion attack: HS256 keyed with the issuer's public key (PEM)."""
    head = _b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.new(key.public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    token = Token(f"{head}.{body}.{_b64(mac)}")
    register_secret(token)
    return token


def tampered(token: str) -> Token:
    """Same header and signature, a payload that says another build type."""
    head, body, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["build_type_external_id"] = "DataPipelines_Deploy"
    forged = Token(f"{head}.{_b64(json.dumps(data).encode())}.{sig}")
    register_secret(forged)
    return forged
