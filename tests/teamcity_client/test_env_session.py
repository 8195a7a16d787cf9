"""``backends.env_session.EnvOnceSession``: the environment's proxy settings still apply (read
once per host), so caching them for speed does not quietly drop a corporate proxy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from backends.env_session import EnvOnceSession


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that refuses every connection, for every scheme, bypassed for nothing."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("dead_proxy")
def test_a_proxy_from_the_environment_is_used(server: str) -> None:
    with pytest.raises(requests.exceptions.ProxyError):
        EnvOnceSession().get(server, timeout=5)


@pytest.mark.usefixtures("dead_proxy")
def test_no_proxy_from_the_environment_is_honoured(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert EnvOnceSession().get(server, timeout=5).text == "ok"


def test_settings_are_read_at_the_first_request_to_a_host(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trade made for speed, and documented: a process keeps the proxy settings its
    environment had when it first talked to a host."""
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    session = EnvOnceSession()
    assert session.get(server, timeout=5).text == "ok"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert session.get(server, timeout=5).text == "ok"
    with pytest.raises(requests.exceptions.ProxyError):
        EnvOnceSession().get(server, timeout=5)  # a new process (session) reads it again
