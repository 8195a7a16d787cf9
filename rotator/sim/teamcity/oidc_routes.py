"""HTTP for the simulated OIDC plugin (``oidc.py``), reached through one hook in
``handler.py`` before TeamCity's own authentication, because each endpoint authenticates in
its own way, as on the server:

| endpoint | who |
|---|---|
| `GET /app/oidc-jwt/.well-known/openid-configuration` | anyone (public) |
| `GET /app/oidc-jwt/.well-known/jwks[?currentOnly=true]` | anyone (public) |
| `GET /app/oidc-jwt/issue?aud=A[&aud=B]` | a running build, with its own credentials |
| `POST /app/oidc-jwt/builtin-rsa/rotate` | "Change server settings" (administrators) |
| `POST /app/oidc-jwt/jwk-cache/purge` | "Change server settings" (administrators) |
| `/__sim/oidc/...` | administrators: the simulator's controls (below) |

Controls: ``POST /__sim/oidc/settings`` (``{"issuerUrl": ..., "keySize": 2048}``),
``POST /__sim/oidc/buildTypes/<id>/features`` (``{"inParams": {"buildParam", "audiences",
"tokenLifetimeSeconds"}, "onDemand": {"audiences": [...]}}``; a missing key removes that
feature), ``GET /__sim/oidc/builds/<id>/parameters/<name>`` (what the build's agent receives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from rotator.sim.teamcity import oidc
from rotator.sim.teamcity.call import JSON, XML, Text, basic_credentials
from rotator.sim.teamcity.errors import (
    AUTH_REQUIRED,
    BadRequest,
    Forbidden,
    HttpError,
    MethodNotAllowed,
    NotFoundError,
    Unauthorized,
)

if TYPE_CHECKING:
    from rotator.sim.teamcity.handler import Handler

PREFIXES = (oidc.PATH + "/", "/__sim/oidc/")
NO_BUILD = "No authenticated build was found. Access to build tokens is denied."


class _Status(HttpError):
    """A plain-text error with the plugin's message (Spring's ResponseStatusException)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def body(self) -> str:
        return self.message + "\n"


def dispatch(handler: Handler, path: str, query: str, body: bytes) -> tuple[int, Any]:
    """Answer one request under ``PREFIXES`` (``handler`` authenticates users when needed)."""
    model = handler.sim.state
    params = parse_qs(query, keep_blank_values=True)
    method = handler.command
    routes = {
        oidc.PATH + "/.well-known/openid-configuration": ("GET", _configuration),
        oidc.PATH + "/.well-known/jwks": ("GET", _jwks),
        oidc.PATH + "/issue": ("GET", _issue),
        oidc.PATH + "/builtin-rsa/rotate": ("POST", _rotate),
        oidc.PATH + "/jwk-cache/purge": ("POST", _purge),
    }
    if path.startswith("/__sim/oidc/"):
        if not handler._authenticate()[0].user.admin:
            raise Forbidden("simulator control needs an administrator")
        with model.lock:
            return _control(model, method, path.split("/")[3:], body)
    if path not in routes:
        raise NotFoundError(f"Unable to find resource for the request path '{path}'")
    wanted, endpoint = routes[path]
    if method != wanted:
        raise MethodNotAllowed(f"HTTP method {method} is not supported by this resource")
    with model.lock:
        return endpoint(handler, model, params)


def _configuration(handler: Handler, model: Any, params: dict[str, list[str]]) -> tuple[int, Any]:
    return 200, ("configuration", oidc.openid_configuration(model), JSON)


def _jwks(handler: Handler, model: Any, params: dict[str, list[str]]) -> tuple[int, Any]:
    current_only = (params.get("currentOnly") or ["false"])[0].lower() == "true"
    return 200, ("jwks", oidc.jwks(model, current_only), JSON)


def _admin(handler: Handler, what: str) -> None:
    principal = handler._authenticate()[0]
    if not principal.user.admin:
        raise Forbidden(f"You do not have permission to {what}.")


def _rotate(handler: Handler, model: Any, params: dict[str, list[str]]) -> tuple[int, Any]:
    _admin(handler, "rotate keys")
    oidc.rotate(model)
    return 200, ("response", {"task": {"id": str(len(oidc.state(model).keys))}}, XML)


def _purge(handler: Handler, model: Any, params: dict[str, list[str]]) -> tuple[int, Any]:
    _admin(handler, "purge the JWK cache")
    oidc.purge(model)
    return 200, ("response", {}, XML)


def _issue(handler: Handler, model: Any, params: dict[str, list[str]]) -> tuple[int, Any]:
    """``OIDCOnDemandTokenIssuerController.issue``: 401 without build credentials, 404 when
    the build is not running, 403 without the feature, 400 for an audience the feature does
    not list (or none at all: ``aud`` is a required parameter there)."""
    build = _build_of(handler, model)
    if build.state != "running":
        raise _Status(404, f"Running build with ID {build.id} not found")
    feature = oidc.state(model).features.get(build.build_type)
    if feature is None or feature.on_demand_audiences is None:
        raise _Status(403, "No 'OIDC token on demand' build features were found for this build.")
    requested = [a.strip() for a in params.get("aud", [])]
    if not requested:
        raise BadRequest("Required request parameter 'aud' is not present")
    allowed = list(feature.on_demand_audiences) or [oidc.issuer(model)]
    unknown = [a for a in requested if a not in allowed]
    if unknown:
        raise _Status(
            400,
            "The following requested audiences are not specified in on-demand build features: "
            f"{', '.join(unknown)}. Allowed audiences: {', '.join(allowed)}",
        )
    return 200, Text(oidc.mint(model, build, requested, oidc.ON_DEMAND_LIFETIME))


def _build_of(handler: Handler, model: Any) -> Any:
    header = handler.headers.get("Authorization") or ""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "basic":
        raise _Status(401, NO_BUILD)
    login = basic_credentials(credential)
    if login is None:
        raise Unauthorized(AUTH_REQUIRED)
    user, password = login
    build = oidc.authenticate_build(model, user, password)
    if build is None:
        raise _Status(401, NO_BUILD)
    return build


def _control(model: Any, method: str, parts: list[str], body: bytes) -> tuple[int, Any]:
    import json

    try:
        data = json.loads(body) if body else {}
        if method == "POST" and parts == ["settings"]:
            state = oidc.state(model)
            state.issuer_url = data.get("issuerUrl", state.issuer_url)
            state.key_size = int(data.get("keySize", state.key_size))
            return 200, Text(json.dumps({"issuer": oidc.issuer(model)}))
        if method == "POST" and len(parts) == 3 and parts[0] == "buildTypes":
            if parts[1] not in model.build_types or parts[2] != "features":
                raise NotFoundError(f"No build type nor template is found by id '{parts[1]}'.")
            oidc.state(model).features[parts[1]] = feature_from(data)
            return 200, Text("ok")
        if method == "GET" and len(parts) == 4 and parts[0] == "builds" and parts[1].isdigit():
            value = oidc.build_parameter(model, int(parts[1]), parts[3])
            if value is None:
                raise NotFoundError(f"No parameter with name '{parts[3]}' is found.")
            return 200, Text(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"bad OIDC control: {exc}") from None
    raise NotFoundError(f"unknown simulator control {method} /__sim/oidc/{'/'.join(parts)}")


def feature_from(data: dict[str, Any]) -> oidc.Feature:
    """A build type's features from the control body (the seed's ``oidc`` object)."""
    in_params = data.get("inParams")
    on_demand = data.get("onDemand")
    feature = oidc.Feature(
        in_params=in_params is not None,
        on_demand_audiences=None if on_demand is None else tuple(on_demand.get("audiences", [])),
    )
    if isinstance(in_params, dict):
        feature.build_param = str(in_params.get("buildParam", oidc.DEFAULT_PARAM))
        feature.audiences = tuple(in_params.get("audiences", []))
        lifetime = in_params.get("tokenLifetimeSeconds")
        feature.lifetime_seconds = None if lifetime is None else int(lifetime)
    return feature
