"""A local HTTP receiver for apprise's ``json://`` target: the real apprise sends real HTTP to it.

Every payload it receives joins the leak scan's corpus (``record_output``), so a notification
that carried a secret fails the session wherever it was sent from.

``test_announce`` uses the session's ``airflow_stack``, registered once in ``tests/conftest.py``:
importing it here too would define a second fixture and start a second full Airflow (~30 s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fixtures.leaks import record_output


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.hang = threading.Event()
        """While set, requests are read and never answered (a receiver that hangs)."""
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                text = body.decode("utf-8", "replace")
                record_output(f"notify receiver {self.path}", text)
                if receiver.hang.is_set():
                    receiver.hang_release.wait(30)
                    return
                with receiver._cond:
                    receiver.posts.append({"path": self.path, **json.loads(text)})
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.hang_release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first ``count`` posts, waiting for them up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.posts)} notification(s), wanted {count}")
                self._cond.wait(left)
            return list(self.posts[:count])

    def titles(self) -> list[str]:
        with self._cond:
            return [p["title"] for p in self.posts]

    def close(self) -> None:
        self.hang_release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def dead_url() -> str:
    """A json:// URL where nothing listens (a port that was free a moment ago)."""
    from rotator.servers.process import free_port

    return f"json://127.0.0.1:{free_port()}/hook"
