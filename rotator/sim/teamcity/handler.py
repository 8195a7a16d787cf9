"""HTTP for the simulated TeamCity: authentication, media types, routing, entity rendering.

Order of checks follows the server's: authentication (401) before routing (404/405), before
media types (415/406), before the entity's own validation (400/403/404). Nothing that a client
sends can produce a 500: bodies are size-capped and parsed defensively.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from rotator.sim.teamcity import build_routes, discovery, oidc_routes, render, token_routes
from rotator.sim.teamcity.call import JSON, TEXT, XML, Call, produces, strip_auth_prefix
from rotator.sim.teamcity.call import Text as _Text
from rotator.sim.teamcity.call import entity as _entity
from rotator.sim.teamcity.call import str_field as _str
from rotator.sim.teamcity.errors import (
    AUTH_EXPIRED,
    AUTH_INVALID,
    AUTH_REQUIRED,
    BadRequest,
    Forbidden,
    HttpError,
    MethodNotAllowed,
    NotFoundError,
    TooLarge,
    Unauthorized,
)
from rotator.sim.teamcity.faults import LOGIN_PAGE
from rotator.sim.teamcity.model import BuildType, Model, Parameter, Principal, Project

if TYPE_CHECKING:
    from rotator.sim.teamcity.simulator import TeamCitySimulator

MAX_BODY = 1024 * 1024
VALID_TYPES = ("text", "password", "checkbox", "select")


@dataclass
class RequestRecord:
    """One request the simulator answered. ``auth`` names the token or user, never a value."""

    method: str
    path: str
    status: int
    auth: str | None


Route = tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]


class Handler(BaseHTTPRequestHandler):
    """One instance per request (``http.server``); the simulator hangs off the server."""

    protocol_version = "HTTP/1.1"
    server_version = "TeamCity-Simulator"
    sim: TeamCitySimulator

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to responses on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's stderr log; the simulator keeps its own request log."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # -- the request cycle ---------------------------------------------------------------
    def _handle(self) -> None:
        self.sim.faults.enter()
        try:
            self._handle_request()
        except (BrokenPipeError, ConnectionResetError):
            # The client went away (it timed out on a slow answer): not a simulator error.
            self.close_connection = True
        finally:
            self.sim.faults.leave()

    def _handle_request(self) -> None:
        sim = self.sim
        split = urlsplit(self.path)
        path = split.path
        auth_label: str | None = None
        if sim.faults.delay:
            time.sleep(sim.faults.delay)
        fault = None if path.startswith("/__sim") else sim.faults.take_fault(path, self.command)
        if fault is not None and fault.action == "drop":
            sim.record(RequestRecord(self.command, path, 0, None))
            self.close_connection = True
            return
        if fault is not None and fault.action == "slow":
            time.sleep(fault.seconds)
        try:
            if fault is not None and fault.action in ("fail", "html"):
                self._read_body()
                raise _Injected(fault.status, html=fault.action == "html")
            body = self._read_body()
            route_path, guest = strip_auth_prefix(path)
            if route_path.startswith(oidc_routes.PREFIXES):  # authenticates in its own ways
                status, payload = oidc_routes.dispatch(self, route_path, split.query, body)
            else:
                if guest:
                    principal, auth_label, via_session = self._guest()
                else:
                    principal, auth_label, via_session = self._authenticate()
                call = Call(
                    self.command,
                    route_path,
                    parse_qs(split.query),
                    self.headers,
                    body,
                    principal,
                    via_session,
                )
                status, payload = self._dispatch(call)
        except HttpError as err:
            sim.record(RequestRecord(self.command, path, err.status, auth_label))
            if fault is not None and fault.action == "lose":
                self.close_connection = True
                return
            self._send(err.status, err.body().encode(), TEXT, err.headers())
            return
        except _Injected as inj:
            if inj.html:
                sim.record(RequestRecord(self.command, path, 200, None))
                self._send(200, LOGIN_PAGE.encode(), "text/html")
                return
            text = f"Responding with error, status code: {inj.status} (injected fault).\n"
            sim.record(RequestRecord(self.command, path, inj.status, None))
            self._send(inj.status, text.encode(), TEXT)
            return
        except Exception as exc:  # a simulator bug: say so, without a traceback
            msg = (
                "Responding with error, status code: 500 (Internal Server Error).\n"
                f"Details: {type(exc).__name__}\n"
            )
            sim.record(RequestRecord(self.command, path, 500, auth_label))
            self._send(500, msg.encode(), TEXT)
            return
        if fault is not None and fault.action == "lose":
            # Applied, then the answer is lost: the client sees the connection close.
            sim.record(RequestRecord(self.command, path, 0, auth_label))
            self.close_connection = True
            return
        if fault is not None and fault.action == "truncate":
            sim.record(RequestRecord(self.command, path, 200, auth_label))
            self._reply_truncated(status, payload)
            return
        # Logged before the answer leaves, so a client that got it can already see the record.
        sim.record(RequestRecord(self.command, path, status, auth_label))
        self._reply(status, payload)

    def _read_body(self) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise BadRequest("Invalid Content-Length header") from None
        if length < 0:
            self.close_connection = True
            raise BadRequest("Invalid Content-Length header")
        if length > MAX_BODY:
            self.close_connection = True
            raise TooLarge(f"Request body of {length} bytes exceeds the limit of {MAX_BODY} bytes")
        return self.rfile.read(length)

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", f"{ctype};charset=UTF-8")
        self.send_header("Content-Length", str(len(body) if status != 204 else 0))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        for cookie in getattr(self, "_cookies", []):
            self.send_header("Set-Cookie", cookie)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if status != 204:
            self.wfile.write(body)

    def _reply(self, status: int, payload: Any) -> None:
        if status == 204:
            self._send(204, b"", TEXT)
        elif isinstance(payload, _Text):
            self._send(status, payload.text.encode(), TEXT)
        else:
            root, entity, media = payload
            data = render.to_json(entity) if media == JSON else render.to_xml(root, entity)
            self._send(status, data, media)

    def _reply_truncated(self, status: int, payload: Any) -> None:
        """The injected ``truncate`` fault: the processed request's answer, cut in half."""
        if status == 204:
            self._send(204, b"", TEXT)  # nothing to cut
            return
        if isinstance(payload, _Text):
            data, media = payload.text.encode(), TEXT
        else:
            root, entity, media = payload
            data = render.to_json(entity) if media == JSON else render.to_xml(root, entity)
        self._send(200, data[: max(1, len(data) // 2)], media)

    # -- authentication ------------------------------------------------------------------
    def _guest(self) -> tuple[Principal, str | None, bool]:
        """``/guestAuth/``: the guest user, whatever credentials came along (as the server
        ignores them there); 401 when guest access is off, TeamCity's default."""
        guest = self.sim.state.guest
        if guest is None:
            raise Unauthorized(AUTH_REQUIRED)
        return Principal(guest), "guest", False

    def _authenticate(self) -> tuple[Principal, str | None, bool]:
        model = self.sim.state
        header = self.headers.get("Authorization")
        if header:
            scheme, _, credential = header.partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer" and credential.strip():
                found = model.authenticate_token(credential.strip())
                if found == "expired":
                    raise Unauthorized(
                        AUTH_EXPIRED if model.on_expiry_401 == "expired" else AUTH_INVALID
                    )
                if found is None:
                    raise Unauthorized(AUTH_INVALID)
                user, token = found  # type: ignore[misc]
                return Principal(user, token), f"bearer:{user.username}/{token.name}", False
            if scheme == "basic":
                try:
                    username, _, password = (
                        base64.b64decode(credential.strip(), validate=True).decode().partition(":")
                    )
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    raise Unauthorized(AUTH_INVALID) from None
                user = model.find_user(username)
                if (
                    user is None
                    or user.password is None
                    or not secrets.compare_digest(user.password, password)
                ):
                    raise Unauthorized(AUTH_INVALID)
                session = self.sim.open_session(user)
                self._cookies = [f"TCSESSIONID={session}; Path=/; HttpOnly"]
                return Principal(user), f"basic:{user.username}", False
            raise Unauthorized(AUTH_INVALID)
        cookie = self.headers.get("Cookie") or ""
        match = re.search(r"TCSESSIONID=([A-Za-z0-9_\-]+)", cookie)
        if match:
            user = self.sim.session_user(match.group(1))
            if user is not None:
                if self.command in ("POST", "PUT", "DELETE", "PATCH"):
                    csrf = self.headers.get("X-TC-CSRF-Token")
                    if csrf != self.sim.csrf_token(match.group(1)):
                        raise Forbidden(
                            "CSRF Header X-TC-CSRF-Token does not match CSRF session value"
                        )
                return Principal(user), f"session:{user.username}", True
        raise Unauthorized(AUTH_REQUIRED)

    # -- routing -------------------------------------------------------------------------
    def _dispatch(self, call: Call) -> tuple[int, Any]:
        if call.path.startswith("/__sim/"):
            return self.sim.control(call)
        allowed: set[str] = set()
        for method, pattern, handler in ROUTES:
            match = pattern.fullmatch(call.path)
            if match is None:
                continue
            if method != call.method:
                allowed.add(method)
                continue
            args = {k: unquote(v) for k, v in match.groupdict().items()}
            call.media = call.accepts(getattr(handler, "produces", (XML, JSON)))
            with self.sim.state.lock:
                return handler(self.sim.state, call, **args)
        if allowed:
            raise MethodNotAllowed(f"HTTP method {call.method} is not supported by this resource")
        raise NotFoundError(f"Unable to find resource for the request path '{call.path}'")


class _Injected(Exception):
    def __init__(self, status: int, *, html: bool = False) -> None:
        self.status = status
        self.html = html


# -- entities --------------------------------------------------------------------------------


def _owner(model: Model, call: Call, kind: str, locator: str) -> Project | BuildType:
    if kind == "projects":
        return model.locate_project(locator, call.principal)
    return model.locate_build_type(locator, call.principal)


def _type_spec(raw: Any, name: str) -> str | None:
    if raw is None:
        return None
    spec = raw.get("rawValue") if isinstance(raw, dict) else None
    if spec is None:
        return None
    if not isinstance(spec, str) or not spec.strip() or spec.split()[0] not in VALID_TYPES:
        raise BadRequest(f"Wrong parameter type '{spec}' for parameter '{name}'")
    return spec


def _parameter_from(data: dict[str, Any], url_name: str | None = None) -> Parameter:
    name = url_name if url_name is not None else _str(data, "name", "parameter")
    if not name or not name.strip():
        raise BadRequest("Parameter name cannot be empty.")
    value = _str(data, "value", "parameter")
    if value is None:
        raise BadRequest(
            f"Parameter value for the parameter '{name}' should be specified (can be \"\")."
        )
    return Parameter(name, value, _type_spec(data.get("type"), name))


def _own(owner: Project | BuildType, name: str) -> Parameter:
    found = owner.parameters.get(name)
    if found is None:
        raise NotFoundError(f"No parameter with name '{name}' is found.")
    return found


def _effective(model: Model, owner: Project | BuildType, name: str) -> tuple[Parameter, bool]:
    for parameter, inherited in model.effective_parameters(owner):
        if parameter.name == name:
            return parameter, inherited
    raise NotFoundError(f"No parameter with name '{name}' is found.")


def _collection(
    model: Model, call: Call, owner: Project | BuildType, kind: str, loc: str
) -> tuple[int, Any]:
    pairs = model.effective_parameters(owner)
    raw = (call.query.get("locator") or [""])[0]
    for part in filter(None, raw.split(",")):
        key, _, value = part.partition(":")
        if key == "name":
            pairs = [p for p in pairs if p[0].name == value]
        elif key == "inherited":
            pairs = [p for p in pairs if p[1] == (value == "true")]
        else:
            raise BadRequest(f"Unsupported parameter locator dimension '{key}'")
    props = [render.property_entity(p, inherited) for p, inherited in pairs]
    return _entity(
        call,
        "properties",
        {
            "count": len(props),
            "href": f"/app/rest/{kind}/{loc}/parameters",
            "property": props,
        },
    )


def get_parameters(model: Model, call: Call, kind: str, loc: str) -> tuple[int, Any]:
    return _collection(model, call, _owner(model, call, kind, loc), kind, loc)


def post_parameter(model: Model, call: Call, kind: str, loc: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    parameter = _parameter_from(call.entity())
    model.check_edit(owner, call.principal)
    owner.parameters[parameter.name] = parameter
    return _entity(call, "property", render.property_entity(parameter, False))


def put_parameters(model: Model, call: Call, kind: str, loc: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    data = call.entity()
    model.check_edit(owner, call.principal)
    items = data.get("property", [])
    if not isinstance(items, list):
        raise BadRequest("Cannot set parameters: 'property' must be a list")
    try:
        new = {
            p.name: p
            for p in (_parameter_from(item if isinstance(item, dict) else {}) for item in items)
        }
    except BadRequest as err:
        raise BadRequest(f"Cannot set parameters: {err.message}") from None
    owner.parameters = new
    return _collection(model, call, owner, kind, loc)


def delete_parameters(model: Model, call: Call, kind: str, loc: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    model.check_edit(owner, call.principal)
    owner.parameters = {}
    return 204, None


def get_parameter(model: Model, call: Call, kind: str, loc: str, name: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    parameter, inherited = _effective(model, owner, name)
    return _entity(call, "property", render.property_entity(parameter, inherited))


def put_parameter(model: Model, call: Call, kind: str, loc: str, name: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    parameter = _parameter_from(call.entity(), url_name=name)
    model.check_edit(owner, call.principal)
    owner.parameters[name] = parameter
    return _entity(call, "property", render.property_entity(parameter, False))


def delete_parameter(model: Model, call: Call, kind: str, loc: str, name: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    _own(owner, name)
    model.check_edit(owner, call.principal)
    del owner.parameters[name]
    return 204, None


@produces(TEXT)
def get_parameter_value(
    model: Model, call: Call, kind: str, loc: str, name: str
) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    parameter, _ = _effective(model, owner, name)
    if parameter.secure:
        raise BadRequest("Secure parameters cannot be retrieved via remote API by default.")
    return 200, _Text(parameter.value)


@produces(TEXT)
def put_parameter_value(
    model: Model, call: Call, kind: str, loc: str, name: str
) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    value = call.text()
    model.check_edit(owner, call.principal)
    existing = owner.parameters.get(name)
    if existing is None:
        inherited = next(
            (p for p, inh in model.effective_parameters(owner) if p.name == name), None
        )
        existing = Parameter(name, "", inherited.type if inherited else None)
        owner.parameters[name] = existing
    existing.value = value
    return 200, _Text("" if existing.secure else value)


def get_parameter_type(model: Model, call: Call, kind: str, loc: str, name: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    parameter, _ = _effective(model, owner, name)
    return _entity(call, "type", {"rawValue": parameter.type} if parameter.type else {})


def put_parameter_type(model: Model, call: Call, kind: str, loc: str, name: str) -> tuple[int, Any]:
    owner = _owner(model, call, kind, loc)
    spec = _type_spec(call.entity(), name)
    model.check_edit(owner, call.principal)
    parameter = _own(owner, name)
    if parameter.secure and spec != parameter.type:
        parameter.value = ""  # TeamCity blanks a password when its type changes
    parameter.type = spec
    return _entity(call, "type", {"rawValue": spec} if spec else {})


def post_settings_tokens(model: Model, call: Call, project: str) -> tuple[int, Any]:
    found = model.locate_project(project, call.principal)
    data = call.entity()
    if not call.principal.can(model, found.id, "edit_project"):
        raise Forbidden(f"You do not have \"Edit project\" permission in project '{found.id}'")
    items = data.get("versionedSettingsToken")
    if not isinstance(items, list) or not items:
        raise BadRequest("versionedSettingsToken must be a non-empty list")
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("each versionedSettingsToken must be an object")
        name = _str(item, "name", "versionedSettingsToken")
        value = _str(item, "value", "versionedSettingsToken")
        if not name or value is None:
            raise BadRequest("each versionedSettingsToken needs a name and a value")
        found.settings_tokens[name] = (value, _str(item, "description", "token") or "")
    listed = [{"name": n, "description": d} for n, (_, d) in sorted(found.settings_tokens.items())]
    return _entity(
        call, "versionedSettingsTokens", {"count": len(listed), "versionedSettingsToken": listed}
    )


_OWNER = r"/app/rest/(?P<kind>projects|buildTypes)/(?P<loc>[^/]+)/parameters"
ROUTES: list[Route] = [
    (m, re.compile(p), h)
    for m, p, h in [
        (
            "POST",
            r"/app/rest/projects/(?P<project>[^/]+)/versionedSettings/tokens",
            post_settings_tokens,
        ),
        ("GET", _OWNER, get_parameters),
        ("POST", _OWNER, post_parameter),
        ("PUT", _OWNER, put_parameters),
        ("DELETE", _OWNER, delete_parameters),
        ("GET", _OWNER + r"/(?P<name>[^/]+)", get_parameter),
        ("PUT", _OWNER + r"/(?P<name>[^/]+)", put_parameter),
        ("DELETE", _OWNER + r"/(?P<name>[^/]+)", delete_parameter),
        ("GET", _OWNER + r"/(?P<name>[^/]+)/value", get_parameter_value),
        ("PUT", _OWNER + r"/(?P<name>[^/]+)/value", put_parameter_value),
        ("GET", _OWNER + r"/(?P<name>[^/]+)/type", get_parameter_type),
        ("PUT", _OWNER + r"/(?P<name>[^/]+)/type", put_parameter_type),
    ]
]
ROUTES = token_routes.ROUTES + ROUTES + discovery.ROUTES + build_routes.ROUTES
