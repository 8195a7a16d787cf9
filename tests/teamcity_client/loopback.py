"""Tiny real servers on 127.0.0.1 for the client's edge cases the simulator does not serve.

``ScriptedServer`` answers each ``(method, path)`` from a script: an HTML login page with 200,
a truncated body, a field missing, an error that quotes the request back. It is a real
``http.server`` on a free loopback port: nothing in ``requests`` is patched, so the client's
whole stack (sockets, headers, decoding) runs as it does against a real target.

The socket is listening once the constructor returns, so a client may connect at once: no
readiness wait is needed.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

LOGIN_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="UTF-8">'
    "<title>Log in to TeamCity &mdash; TeamCity</title></head>\n"
    '<body class="loginPage"><form action="/sso/login" method="post">'
    '<input type="text" name="username"><input type="password" name="password">'
    "</form></body></html>\n"
)
"""What an SSO proxy in front of TeamCity answers to an API call: 200, an HTML login page."""


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``body`` may be a function of the request (to quote it back)."""

    status: int = 200
    body: bytes | str | Callable[[Seen], bytes | str] = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """A loopback HTTP server answering from ``script[(METHOD, path)]``; 404 otherwise."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], Reply] = {}
        self.requests: list[Seen] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parts.query, dict(self.headers), body)
                owner.requests.append(seen)
                reply = owner.script.get(
                    (self.command, parts.path),
                    Reply(404, "Responding with error, status code: 404.\n", "text/plain"),
                )
                payload = reply.body(seen) if callable(reply.body) else reply.body
                data = payload.encode() if isinstance(payload, str) else payload
                self.send_response(reply.status)
                if reply.content_type:
                    self.send_header("Content-Type", reply.content_type)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def on(self, method: str, path: str, reply: Reply) -> None:
        self.script[(method.upper(), path)] = reply

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.path) == (method, path))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.close()
