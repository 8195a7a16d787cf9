"""The simulator as a server: an HTTP server thread over a ``Model``, plus its control surface.

Control endpoints (``/__sim/...``, administrators only) stand in for what tests and the demo
need from a real server's UI or agents: inject faults, read the request log, move the clock,
finish builds, and read what a build agent would receive as a parameter value.
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rotator.sim.teamcity import seed as seeding
from rotator.sim.teamcity.build_control import BuildControl
from rotator.sim.teamcity.call import Call
from rotator.sim.teamcity.call import Text as _Text
from rotator.sim.teamcity.errors import BadRequest, Forbidden, NotFoundError
from rotator.sim.teamcity.faults import Faults
from rotator.sim.teamcity.handler import Handler, RequestRecord
from rotator.sim.teamcity.model import Model, Token, User
from rotator.sim.teamcity.oidc import OidcControl

ADMIN_TOKEN_NAME = "bootstrap-admin"  # noqa: S105 - a token's name, not its value


class TeamCitySimulator:
    """A TeamCity REST server on loopback, faithful to ``teamcity-contract.md``."""

    def __init__(
        self,
        admin_token: str | None = None,
        seed: dict[str, Any] | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
        admin_user: str = "admin",
    ) -> None:
        self.state = Model(clock)
        self.faults = Faults()
        self.faults._model = self.state
        self._requests: collections.deque[RequestRecord] = collections.deque(maxlen=20_000)
        self._sessions: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self.host, self.port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if seed is not None:
            seeding.apply(self.state, seeding.load(seed))
        self.builds = BuildControl(self.state)
        """The build lifecycle's test API (``build_control.py``)."""
        if admin_token is not None:
            self.add_token(admin_user, ADMIN_TOKEN_NAME, admin_token, admin=True)

    def __repr__(self) -> str:
        return f"TeamCitySimulator(url={self.url!r})"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> str:
        handler = type("BoundHandler", (Handler,), {"sim": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.state.base_url = self.url  # type: ignore[attr-defined]
        self.state.started = self.state.now()  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="teamcity-sim", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TeamCitySimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def oidc(self) -> OidcControl:
        """The OIDC plugin's test API (``oidc.py``): features, issuer URL, rotate, purge."""
        return OidcControl(self.state)

    # -- setup helpers for tests and the demo ---------------------------------------------
    def add_token(
        self,
        username: str,
        name: str,
        value: str,
        *,
        admin: bool = False,
        expires: datetime | None = None,
    ) -> Token:
        """Give ``username`` (created if missing) a token with a known value."""
        with self.state.lock:
            user = self.state.find_user(username) or self.state.add_user(username, admin=admin)
            token = Token(name, value, self.state.now(), expires, [])
            user.tokens[name] = token
            return token

    def advance_clock(self, seconds: float) -> None:
        with self.state.lock:
            self.state.clock_offset += timedelta(seconds=seconds)

    # -- request log and sessions ---------------------------------------------------------
    def record(self, entry: RequestRecord) -> None:
        self._requests.append(entry)

    @property
    def requests(self) -> list[RequestRecord]:
        return list(self._requests)

    def clear_requests(self) -> None:
        self._requests.clear()

    def open_session(self, user: User) -> str:
        session = secrets.token_urlsafe(18)
        with self._lock:
            self._sessions[session] = (user.id, secrets.token_urlsafe(18))
        return session

    def session_user(self, session: str) -> User | None:
        found = self._sessions.get(session)
        return self.state.users.get(found[0]) if found else None

    def csrf_token(self, session: str) -> str | None:
        found = self._sessions.get(session)
        return found[1] if found else None

    # -- control surface ------------------------------------------------------------------
    def control(self, call: Call) -> tuple[int, Any]:
        if not call.principal.user.admin:
            raise Forbidden("simulator control needs an administrator")
        parts = call.path.strip("/").split("/")[1:]
        data = call.entity() if call.body else {}
        if call.method == "POST" and parts == ["faults"]:
            return self._control_faults(data)
        if call.method == "GET" and parts == ["requests"]:
            return 200, _Text(json.dumps([r.__dict__ for r in self.requests]))
        if call.method == "POST" and parts == ["clock"]:
            self.advance_clock(float(data.get("advance_seconds", 0)))
            return 200, _Text(json.dumps({"now": self.state.now().isoformat()}))
        if call.method == "GET" and len(parts) == 2 and parts[0] == "tokens":
            user = self.state.find_user(parts[1])
            if user is None:
                raise NotFoundError("User not found")
            listed = [
                {
                    "name": t.name,
                    "created": t.created.isoformat(),
                    "expires": t.expires.isoformat() if t.expires else None,
                }
                for t in user.tokens.values()
            ]
            return 200, _Text(json.dumps(listed))
        if call.method == "POST" and len(parts) == 3 and parts[0] in ("builds", "buildTypes"):
            return self._control_builds(parts[0], parts[1], parts[2], data)
        if call.method == "GET" and len(parts) == 3 and parts[0] == "agent-parameter":
            return 200, _Text(self.agent_parameter(parts[1], parts[2]))
        raise NotFoundError(f"unknown simulator control {call.method} {call.path}")

    def _control_builds(
        self, kind: str, key: str, action: str, data: dict[str, Any]
    ) -> tuple[int, Any]:
        """``POST /__sim/builds/<id>/start|finish|cancel`` and
        ``POST /__sim/buildTypes/<id>/plan`` (the seed's ``lifecycle`` object)."""
        try:
            if kind == "buildTypes" and action == "plan":
                if key not in self.state.build_types:
                    raise NotFoundError(f"No build type nor template is found by id '{key}'.")
                with self.state.lock:
                    self.state.build_plans[key] = seeding.plan(data)
                return 200, _Text("ok")
            if (
                kind == "builds"
                and key.isascii()
                and key.isdigit()
                and int(key) in self.state.builds
            ):
                if action == "start":
                    self.builds.start(int(key))
                elif action == "finish":
                    self.builds.finish(int(key), data.get("status"), data.get("statusText"))
                elif action == "cancel":
                    self.builds.cancel(int(key), data.get("comment"))
                else:
                    raise NotFoundError(f"unknown build control '{action}'")
                return 200, _Text(json.dumps({"state": self.builds.get(int(key)).state}))
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"bad build control: {exc}") from None
        raise NotFoundError(f"No build found by id '{key}'.")

    def _control_faults(self, data: dict[str, Any]) -> tuple[int, Any]:
        try:
            self.faults.configure(data)
            if "read_only_project" in data:
                spec = data["read_only_project"]
                self.faults.read_only_project(spec["id"], bool(spec.get("value", True)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest(f"bad fault specification: {exc}") from None
        return 200, _Text("ok")

    def agent_parameter(self, build_type: str, name: str) -> str:
        """The value a build agent receives for parameter ``name`` of ``build_type``:
        resolved through inheritance, password values included, versioned-settings
        ``credentialsJSON:`` references replaced by their token's secret."""
        with self.state.lock:
            bt = self.state.build_types.get(build_type)
            if bt is None:
                raise NotFoundError(f"No build type or template is found by id '{build_type}'.")
            found = self.state.effective_parameter(bt, name)
            if found is None:
                raise NotFoundError(f"No parameter with name '{name}' is found.")
            value = found[0].value
            if value.startswith("credentialsJSON:"):
                ref = value.removeprefix("credentialsJSON:")
                for project_id in self.state.ancestors(bt.project):
                    tokens = self.state.projects[project_id].settings_tokens
                    if ref in tokens:
                        return tokens[ref][0]
            return value
