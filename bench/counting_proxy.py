"""A loopback HTTP proxy that forwards to one server and counts the requests it sees, so the
benchmark's "store requests per task" is counted on the wire, for every backend alike."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self
        session = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                # AWS APIs are all ``POST /``: the action is in X-Amz-Target.
                action = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                key = f"{self.command} {self.path.split('?')[0]}"
                with proxy._lock:
                    proxy.counts[f"{key} {action}" if action else key] += 1
                upstream = session.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=body,
                    headers=headers,
                    timeout=30,
                    allow_redirects=False,
                )
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def writes(self) -> int:
        """Requests that change something: Vault's POST/PUT/DELETE, AWS's Put/Create/Update/
        Delete/Tag actions."""
        with self._lock:
            return sum(n for key, n in self.counts.items() if _is_write(key))

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _is_write(key: str) -> bool:
    verb, _, rest = key.partition(" ")
    action = rest.partition(" ")[2]
    if action:
        return action.startswith(("Put", "Create", "Update", "Delete", "Tag", "Untag", "Restore"))
    return verb in ("POST", "PUT", "DELETE", "PATCH")
