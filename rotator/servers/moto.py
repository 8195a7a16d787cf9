"""moto in server mode on loopback: a real HTTP endpoint speaking the AWS Secrets Manager API."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from rotator.servers.process import ServerProcess, free_port

REGION = "us-east-1"


class MotoServer(ServerProcess):
    def __init__(self, log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        super().__init__(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            ready=self._up,
            log_path=Path(log_dir) / f"moto-{self.port}.log",
            timeout=30,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        return requests.get(f"{self.url}/moto-api/", timeout=1).status_code < 500

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=5).raise_for_status()

    @staticmethod
    def client_env() -> dict[str, str]:
        """Dummy credentials and region for boto3 clients pointed at this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }
