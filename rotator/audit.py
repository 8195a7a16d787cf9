"""The audit trail: one JSON line per protocol step, to stderr or a file, never stdout.

Each event carries time, rotation id, credential, step, outcome, actor (host, pid, OS user),
target, store version and, on failure, the error's class and message (which never hold a
secret). Lines are written whole under a lock, so parallel rotations do not interleave.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


def actor() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "user": user}


class Audit:
    def __init__(self, path: str | os.PathLike[str] | None = None, stream: IO[str] | None = None):
        self.path = Path(path) if path else None
        self._stream = stream
        self._lock = threading.Lock()
        self._actor = actor()
        self.events: list[dict[str, Any]] = []

    def event(
        self,
        credential: str,
        step: str,
        outcome: str,
        *,
        rotation_id: str | None = None,
        target: str | None = None,
        version: str | None = None,
        error: BaseException | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "rotation_id": rotation_id,
            "credential": credential,
            "step": step,
            "outcome": outcome,
            "actor": self._actor,
        }
        if target is not None:
            record["target"] = target
        if version is not None:
            record["version"] = version
        if error is not None:
            record["error"] = {"class": type(error).__name__, "message": str(error)}
        record.update({k: v for k, v in extra.items() if v is not None})
        line = json.dumps(record, default=str)
        with self._lock:
            self.events.append(record)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a") as f:
                    f.write(line + "\n")
            else:
                stream = self._stream or sys.stderr
                stream.write(line + "\n")
                stream.flush()
        return record


def read(path: str | os.PathLike[str], credential: str | None = None) -> list[dict[str, Any]]:
    """Events from an audit file (all, or one credential's), skipping lines that are not ours."""
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and (
            credential is None or record.get("credential") == credential
        ):
            out.append(record)
    return out
