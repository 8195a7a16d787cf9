"""A child server process on loopback: start it, wait until it answers, stop it for sure.

Readiness is a probe that polls the server itself (an HTTP request, a port), never a sleep:
the caller gets control back the moment the server answers, or a clear error with the tail of
the server's log when it dies or does not answer within the deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from backends.errors import RotatorError


class ServerStartError(RotatorError):
    """A local server exited or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


class ServerProcess:
    """One server child process with its own log file.

    ``ready`` is called repeatedly until it returns True (exceptions count as "not yet").
    The process runs in its own session so that ``stop`` also ends whatever it spawned.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[], bool],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready = ready
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        """Spawn the server and wait until it answers."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> ServerProcess:
        """Spawn the server without waiting for it, so that several servers can boot at once
        (each Airflow component spends seconds importing; on 2 cores, one after the other
        costs the sum). Call ``wait_ready`` before using it."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if self.ready():
                    return
            except Exception:  # noqa: S110 - "not ready yet" has many shapes
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise ServerStartError(
                    f"{self.name} did not answer within {self.timeout:.0f}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(delay)  # a poll interval between probes, not a readiness guess
            # at most 0.25 s: a server that takes seconds to boot (Airflow's) is seen ready
            # within a quarter second of it, for one cheap probe four times a second
            delay = min(delay * 1.5, 0.25)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0, nudge: float | None = None) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``grace``.
        ``nudge``: if it is still running that many seconds after the first SIGTERM, send a
        second one (for servers that take a repeated signal as "exit now")."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            remaining = grace
            try:
                if nudge is not None and nudge < grace:
                    remaining -= nudge
                    try:
                        self.proc.wait(timeout=nudge)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=grace)
        # children that outlived the leader (same process group)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
