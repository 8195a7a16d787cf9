"""HTTP for the simulated TeamCity: the request cycle (faults, body, reply), authentication
and routing. The endpoints live in the ``*_routes.py`` modules and ``discovery.py``; this file
only finds one and answers with what it returns.

Order of checks follows the server's: authentication (401) before routing (404/405), before
media types (415/406), before the entity's own validation (400/403/404). Nothing that a client
sends can produce a 500: bodies are size-capped and parsed defensively.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from rotator.sim.teamcity import (
    build_routes,
    discovery,
    oidc_routes,
    parameter_routes,
    render,
    token_routes,
)
from rotator.sim.teamcity.call import (
    JSON,
    TEXT,
    XML,
    Call,
    Route,
    Text,
    basic_credentials,
    strip_auth_prefix,
)
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
from rotator.sim.teamcity.model import Principal

if TYPE_CHECKING:
    from rotator.sim.teamcity.simulator import TeamCitySimulator

MAX_BODY = 1024 * 1024
ROUTES: list[Route] = (
    token_routes.ROUTES + parameter_routes.ROUTES + discovery.ROUTES + build_routes.ROUTES
)
"""Every ``/app/rest`` endpoint, tried in this order (the OIDC plugin's paths and the
simulator's ``/__sim/`` controls are dispatched before it)."""


@dataclass
class RequestRecord:
    """One request the simulator answered. ``auth`` names the token or user, never a value."""

    method: str
    path: str
    status: int
    auth: str | None


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
        else:
            self._send(status, *_encode(payload))

    def _reply_truncated(self, status: int, payload: Any) -> None:
        """The injected ``truncate`` fault: the processed request's answer, cut in half."""
        if status == 204:
            self._send(204, b"", TEXT)  # nothing to cut
            return
        data, media = _encode(payload)
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
                login = basic_credentials(credential)
                if login is None:
                    raise Unauthorized(AUTH_INVALID)
                username, password = login
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


def _encode(payload: Any) -> tuple[bytes, str]:
    """An endpoint's answer as bytes and their media type: text as is, an entity in the media
    type the request's ``Accept`` chose (``Call.media``)."""
    if isinstance(payload, Text):
        return payload.text.encode(), TEXT
    root, entity, media = payload
    return (render.to_json(entity) if media == JSON else render.to_xml(root, entity)), media
