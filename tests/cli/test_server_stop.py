"""``ServerProcess.stop``: SIGTERM, an optional second SIGTERM (``nudge``), then SIGKILL."""

from __future__ import annotations

import sys
from pathlib import Path

from rotator.servers.process import ServerProcess

# Ready once it has written its marker; the first SIGTERM is ignored (as an Airflow supervisor
# waiting on a child it missed), the second exits with code 3.
SECOND_SIGNAL_EXITS = """
import pathlib, signal, sys, time
seen = []
def on_term(*_):
    seen.append(1)
    if len(seen) == 2:
        sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
pathlib.Path(sys.argv[1]).write_text("up")
while True:
    time.sleep(0.05)
"""


def _server(tmp_path: Path) -> ServerProcess:
    marker = tmp_path / "ready"
    return ServerProcess(
        "stubborn",
        [sys.executable, "-c", SECOND_SIGNAL_EXITS, str(marker)],
        ready=marker.exists,
        log_path=tmp_path / "stubborn.log",
    ).start()


def test_a_nudge_ends_a_server_that_waits_for_a_second_signal(tmp_path: Path) -> None:
    server = _server(tmp_path)
    server.stop(grace=60, nudge=0.5)
    assert server.proc is not None and server.proc.returncode == 3  # its own exit, not a kill


def test_without_a_nudge_it_is_killed_after_the_grace(tmp_path: Path) -> None:
    server = _server(tmp_path)
    server.stop(grace=1)
    assert server.proc is not None and server.proc.returncode == -9
