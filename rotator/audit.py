"""The audit trail: one JSON line per protocol step, to stderr or a file, never stdout.

Each event carries time, rotation id, credential, step, outcome, actor (host, pid, OS user),
target, store version and, on failure, the error's class and message (which never hold a
secret). Lines are written whole under a lock, so parallel rotations do not interleave.

Where the lines go (``for_cli``), in this order:

- ``--audit-file PATH`` or ``[rotator] audit_file``: appended to that file (created 0600);
- stderr is not a terminal (systemd, Kubernetes, CI, a pipe): JSON lines on stderr;
- stderr is a terminal: appended to ``default_path`` (beside the file store's database, or
  ``$XDG_STATE_HOME/rotator/audit.jsonl``, ``~/.local/state/rotator/audit.jsonl`` by default,
  for Vault and AWS), created 0600, so that JSON never floods an interactive terminal.

With ``--verbose``, when the JSON goes to a file, each step is also told on stderr in one short
line that fits the terminal. ``rotator history`` reads the same file (``history_path``).
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


def default_path(store_kind: str, store: Any = None) -> Path:
    """The audit file used when stderr is a terminal and no file was named: ``audit.jsonl`` in
    the file store's directory, else under the user's state directory (XDG)."""
    store_path = getattr(store, "path", None)
    if store_kind == "file" and store_path is not None:
        return Path(store_path).absolute().parent / "audit.jsonl"
    state = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(state) / "rotator" / "audit.jsonl"


def history_path(explicit: str | os.PathLike[str] | None, store_kind: str, store: Any) -> Path:
    """The file ``rotator history`` reads: the named one, else the one the default writes."""
    return Path(explicit) if explicit else default_path(store_kind, store)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Audit:
    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        stream: IO[str] | None = None,
        *,
        human: IO[str] | None = None,
    ):
        self.path = Path(path) if path else None
        self._stream = stream
        self._human = human
        self._lock = threading.Lock()
        self._actor = actor()
        self.events: list[dict[str, Any]] = []

    @classmethod
    def for_cli(
        cls,
        explicit: str | os.PathLike[str] | None,
        store_kind: str,
        store: Any = None,
        *,
        verbose: bool = False,
        stderr: IO[str] | None = None,
    ) -> Audit:
        """The audit of one command: see the module docstring for where it goes."""
        err = stderr or sys.stderr
        if explicit:
            return cls(explicit, human=err if verbose else None)
        if not _isatty(err):
            return cls(None, stream=stderr)
        return cls(default_path(store_kind, store), human=err if verbose else None)

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
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a") as f:
                    f.write(line + "\n")
                if self._human is not None:
                    from rotator.output import terminal_width

                    self._human.write(human_line(record, terminal_width(self._human)) + "\n")
                    self._human.flush()
            else:
                stream = self._stream or sys.stderr
                stream.write(line + "\n")
                stream.flush()
        return record


def human_line(record: dict[str, Any], width: int = 100) -> str:
    """One short line for a person: ``rotator: NAME: step outcome[: what went wrong]``, at most
    ``width`` characters (the whole event is in the JSON audit file)."""
    text = f"rotator: {record.get('credential')}: {record.get('step')} {record.get('outcome')}"
    error = record.get("error")
    if error:
        text += ": " + " ".join(str(error.get("message", "")).split())
    elif record.get("outcome") == "held" and record.get("holder"):
        text += f" by {record['holder']}"
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


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
