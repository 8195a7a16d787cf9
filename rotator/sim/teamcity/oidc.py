"""The simulated ``teamcity-oidc-jwt`` plugin: the server's signing keys, the JWTs builds get,
the JWKS and the OpenID configuration (the contract's "OIDC identity for builds" section).

- Keys: RSA, 3072 bits by default (``OidcState.key_size``; a test that rotates often may
  lower it), RS256, ``kid`` = the RFC 7638 thumbprint of the public key. ``rotate`` makes a
  new current key; an old key stays in the JWKS until the last token it signed expires (on
  the simulator's clock); ``purge`` drops every old key at once.
- Issuer: ``https://<root url>/app/oidc-jwt`` (the plugin rewrites http to https), or the
  "Issuer URL" setting (``issuer_url``), which a simulator on loopback http needs so that
  verifiers can fetch ``{iss}/.well-known/jwks``.
- Build features per build type (``Feature``): ``oidcTokenInParams`` puts a token in a masked
  password parameter when the build starts (``builds.start`` calls ``build_started``);
  ``oidcTokenOnDemand`` lets the running build ask ``/app/oidc-jwt/issue?aud=`` with its own
  credentials (TeamCity's ``teamcity.auth.userId``/``teamcity.auth.password``, i.e. Basic
  ``TeamCityBuildId=<id>:<password>``), for 300 s tokens.
- Claims follow the plugin's ``JWTClaimsGenerator``; ``sub`` is the internal-id path
  ``_Root:project1:bt2`` (the simulator numbers projects and build types in seed order), and
  every part carries ``user{id}_`` for a personal build.

State lives on the model (``model.oidc``), created on first use, so a reset model starts with
no keys; keys are generated lazily (a 3072-bit key takes ~0.5 s).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

if TYPE_CHECKING:
    from rotator.sim.teamcity.builds import Build
    from rotator.sim.teamcity.model import Model

PATH = "/app/oidc-jwt"
DEFAULT_PARAM = "env.TEAMCITY_BUILD_OIDC_TOKEN"
ON_DEMAND_LIFETIME = 300
DEFAULT_BUILD_TIMEOUT = 3600
"""The simulator has no build timeouts: the in-params lifetime assumes this one (+10 min)."""
BUILD_USER_PREFIX = "TeamCityBuildId="
AGENT = {
    "agent_id": 1,
    "agent_name": "Default Agent",
    "agent_hostname": "localhost",
    "agent_pool": "Default",
    "agent_is_cloud": False,
    "agent_version": "2025.11.1",
    "agentless": False,
}


@dataclass
class SigningKey:
    private: rsa.RSAPrivateKey = field(repr=False)
    kid: str
    jwk: dict[str, Any]
    signed_until: datetime | None = None  # the latest exp of a token it signed


@dataclass
class Feature:
    """A build type's OIDC build features (None: that feature is not added)."""

    in_params: bool = False
    build_param: str = DEFAULT_PARAM
    audiences: tuple[str, ...] = ()  # in-params token; empty: the issuer URL
    lifetime_seconds: int | None = None
    on_demand_audiences: tuple[str, ...] | None = None


@dataclass
class BuildSecrets:
    """What a started build receives: its own credentials and the in-params token."""

    password: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass
class OidcState:
    key_size: int = 3072
    issuer_url: str | None = None
    keys: list[SigningKey] = field(default_factory=list)  # the last one is current
    features: dict[str, Feature] = field(default_factory=dict)
    builds: dict[int, BuildSecrets] = field(default_factory=dict)
    issued: int = 0


def state(model: Model) -> OidcState:
    if model.oidc is None:
        model.oidc = OidcState()
    return model.oidc  # type: ignore[no-any-return]


# -- keys -------------------------------------------------------------------------------------


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members of an RSA JWK, in order, no whitespace."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _new_key(size: int) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=size)
    public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = thumbprint(public)
    return SigningKey(private, kid, {**public, "kid": kid, "use": "sig", "alg": "RS256"})


def current_key(model: Model) -> SigningKey:
    oidc = state(model)
    if not oidc.keys:
        oidc.keys.append(_new_key(oidc.key_size))
    return oidc.keys[-1]


def rotate(model: Model) -> SigningKey:
    """A new current key; the old ones stay published while tokens they signed live."""
    oidc = state(model)
    current_key(model)
    oidc.keys.append(_new_key(oidc.key_size))
    return oidc.keys[-1]


def purge(model: Model) -> int:
    """Drop every key but the current one at once (tokens they signed stop verifying)."""
    oidc = state(model)
    current = current_key(model)
    dropped = len(oidc.keys) - 1
    oidc.keys = [current]
    return dropped


def jwks(model: Model, current_only: bool = False) -> dict[str, Any]:
    current = current_key(model)
    now = model.now()
    keys = [
        k.jwk
        for k in state(model).keys
        if k is current
        or (not current_only and k.signed_until is not None and k.signed_until > now)
    ]
    return {"keys": keys}


def issuer(model: Model) -> str:
    oidc = state(model)
    if oidc.issuer_url:
        return oidc.issuer_url.rstrip("/")
    root = str(getattr(model, "base_url", "http://localhost:8111"))
    if root.startswith("http://"):
        root = "https://" + root[len("http://") :]
    return root.rstrip("/") + PATH


def openid_configuration(model: Model) -> dict[str, Any]:
    iss = issuer(model)
    return {
        "issuer": iss,
        "jwks_uri": f"{iss}/.well-known/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "authorization_endpoint": f"{iss}/blackhole",
        "claims_supported": CLAIMS,
    }


# -- tokens -------------------------------------------------------------------------------------

CLAIMS = [
    *("iss", "sub", "aud", "exp", "nbf", "iat", "jti"),
    *("build_type_id", "build_type_external_id", "project_id", "project_external_id"),
    *("build_id", "build_number", "vcs_roots"),
    *("triggered_by_user_id", "triggered_by_user_name", "triggered_by_snapshot"),
    *("branch_name", "branch_display_name", "branch_is_default"),
    *AGENT,
    "is_personal",
]


def internal_project_id(model: Model, project_id: str) -> str:
    """``_Root`` stays; other projects are ``project<N>`` in the order the seed made them."""
    if project_id == "_Root":
        return project_id
    return f"project{list(model.projects).index(project_id)}"


def internal_build_type_id(model: Model, build_type_id: str) -> str:
    return f"bt{list(model.build_types).index(build_type_id) + 1}"


def claims(model: Model, build: Build, audiences: list[str], lifetime: int) -> dict[str, Any]:
    """The plugin's claim set for ``build`` (see the module docstring)."""
    bt = model.build_types[build.build_type]
    user = model.find_user(build.triggered_by) if build.triggered_by else None
    path = [internal_project_id(model, p) for p in reversed(model.ancestors(bt.project))]
    path.append(internal_build_type_id(model, bt.id))
    if build.personal and user is not None:
        path = [f"user{user.id}_{part}" for part in path]
    now = int(model.precise_now().timestamp())
    out: dict[str, Any] = {
        "iss": issuer(model),
        "sub": ":".join(path),
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "build_type_id": internal_build_type_id(model, bt.id),
        "build_type_external_id": bt.id,
        "project_id": internal_project_id(model, bt.project),
        "project_external_id": bt.project,
        "build_id": build.id,
        "build_number": build.number,
        "vcs_roots": [],
        "triggered_by_user_id": user.id if user else None,
        "triggered_by_user_name": user.username if user else None,
        "triggered_by_snapshot": False,
        **AGENT,
        "is_personal": build.personal,
    }
    if build.branch_name is not None:
        out["branch_name"] = build.branch_name
        out["branch_display_name"] = build.branch_name.removeprefix("refs/heads/")
    out["branch_is_default"] = build.default_branch
    return {k: v for k, v in out.items() if v is not None}


def mint(model: Model, build: Build, audiences: list[str], lifetime: int) -> str:
    """A signed token for ``build``: header ``{kid, alg}`` only, as the plugin's."""
    key = current_key(model)
    payload = claims(model, build, audiences, lifetime)
    expires = model.precise_now() + timedelta(seconds=lifetime)
    if key.signed_until is None or expires > key.signed_until:
        key.signed_until = expires
    state(model).issued += 1
    header = {"kid": key.kid, "typ": None}  # None: PyJWT leaves typ out
    return jwt.encode(payload, key.private, algorithm="RS256", headers=header)


# -- build features ---------------------------------------------------------------------------


def build_started(model: Model, build: Build) -> None:
    """Called by ``builds.start``: the build's own credentials, and the in-params token when
    its build type has ``oidcTokenInParams``."""
    oidc = model.oidc
    if oidc is None:
        return
    feature = oidc.features.get(build.build_type)
    if feature is None:
        return
    secrets_ = BuildSecrets(password=secrets.token_urlsafe(24))
    if feature.in_params:
        lifetime = feature.lifetime_seconds or DEFAULT_BUILD_TIMEOUT + 600
        secrets_.token = mint(model, build, list(feature.audiences) or [issuer(model)], lifetime)
    oidc.builds[build.id] = secrets_


def build_parameter(model: Model, build_id: int, name: str) -> str | None:
    """What the running build's agent receives for ``name``: the in-params token under the
    feature's ``build_param``, and ``teamcity.auth.userId``/``teamcity.auth.password``."""
    oidc = state(model)
    build = model.builds.get(build_id)
    found = oidc.builds.get(build_id)
    if build is None or found is None:
        return None
    feature = oidc.features[build.build_type]
    if name == "teamcity.auth.userId":
        return f"{BUILD_USER_PREFIX}{build_id}"
    if name == "teamcity.auth.password":
        return found.password
    if name == feature.build_param:
        return found.token
    return None


def authenticate_build(model: Model, username: str, password: str) -> Build | None:
    """The build whose credentials these are, if it is running; else None."""
    raw = username.removeprefix(BUILD_USER_PREFIX)
    if not username.startswith(BUILD_USER_PREFIX) or not (raw.isascii() and raw.isdigit()):
        return None
    found = state(model).builds.get(int(raw))
    build = model.builds.get(int(raw))
    if found is None or build is None or not secrets.compare_digest(found.password, password):
        return None
    return build


class OidcControl:
    """``sim.oidc``: what a test does to the plugin that an administrator or a build would."""

    def __init__(self, model: Model) -> None:
        self._model = model

    def configure(self, *, issuer_url: str | None = None, key_size: int | None = None) -> str:
        """The "Issuer URL" setting and the key size of keys made from now on; the issuer."""
        with self._model.lock:
            oidc = state(self._model)
            oidc.issuer_url = issuer_url if issuer_url is not None else oidc.issuer_url
            oidc.key_size = key_size or oidc.key_size
            return issuer(self._model)

    def features(
        self,
        build_type: str,
        *,
        in_params: bool = False,
        audiences: tuple[str, ...] = (),
        build_param: str = DEFAULT_PARAM,
        lifetime_seconds: int | None = None,
        on_demand_audiences: tuple[str, ...] | None = None,
    ) -> None:
        """Add ``oidcTokenInParams`` (``in_params``) and/or ``oidcTokenOnDemand``
        (``on_demand_audiences`` not None) to ``build_type``, replacing what it had."""
        with self._model.lock:
            if build_type not in self._model.build_types:
                raise KeyError(f"no build type {build_type!r}")
            state(self._model).features[build_type] = Feature(
                in_params, build_param, tuple(audiences), lifetime_seconds, on_demand_audiences
            )

    @property
    def issuer(self) -> str:
        with self._model.lock:
            return issuer(self._model)

    def rotate(self) -> str:
        with self._model.lock:
            return rotate(self._model).kid

    def purge(self) -> int:
        with self._model.lock:
            return purge(self._model)

    def kids(self) -> list[str]:
        """Every key the server holds, oldest first (the current one last)."""
        with self._model.lock:
            current_key(self._model)
            return [k.kid for k in state(self._model).keys]

    def parameter(self, build_id: int, name: str) -> str | None:
        """What the build's agent receives for ``name`` (the in-params token, its creds)."""
        with self._model.lock:
            return build_parameter(self._model, build_id, name)

    def mint(self, build_id: int, audiences: list[str], lifetime: int = ON_DEMAND_LIFETIME) -> str:
        """A token for a build as the plugin would sign it (for tests that need odd ones)."""
        with self._model.lock:
            return mint(self._model, self._model.builds[build_id], audiences, lifetime)
