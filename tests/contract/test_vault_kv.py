"""The Vault store's KV reads and writes (``backends/vault_kv.py``: urllib3, not hvac and
requests) keep what hvac gave: proxies honoured, an answer that is not Vault's JSON refused with
a message that names no token, and every outcome in the store's own errors."""

from __future__ import annotations

import http.server
import threading

import pytest

from backends.errors import StoreUnavailable
from backends.store import open_store
from rotator.servers.process import free_port

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY")


def test_a_proxy_in_the_environment_is_honoured_and_no_proxy_skips_it(openbao, monkeypatch, ns):
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nobody listens
    # The environment is read once per process, URL and settings: a timeout of its own each.
    proxied = open_store("vault", url=openbao.url, timeout=2.51)
    with pytest.raises(StoreUnavailable):
        proxied.put_current(f"{ns}/kv/x", {"a": "b"}, expected=None)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = open_store("vault", url=openbao.url, timeout=2.52)
    direct.put_current(f"{ns}/kv/x", {"a": "b"}, expected=None)
    assert direct.get_document(f"{ns}/kv/x") == {"a": "b"}


@pytest.fixture
def html_server():
    """Where Vault should be, a login page answering 200 to everything (an SSO proxy)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _page(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b"<html><title>Sign in</title></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_html_page_where_vault_belongs_is_refused_without_naming_the_token(
    html_server, monkeypatch
):
    monkeypatch.setenv("VAULT_TOKEN", "s.html-page-test-token")
    store = open_store("vault", url=html_server, timeout=2)
    for attempt in (
        lambda: store.get_document("airflow/connections/x"),
        lambda: store.put_current("airflow/connections/x", {"a": "b"}, expected=None),
    ):
        with pytest.raises(StoreUnavailable, match="not Vault's JSON") as err:
            attempt()
        assert "s.html-page-test-token" not in str(err.value)
