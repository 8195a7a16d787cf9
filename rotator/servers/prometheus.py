"""A Prometheus server on loopback (Debian's ``prometheus`` package), for tests and rehearsals
of the alert rules against a real ``rotator run --metrics-port``.

It scrapes the given targets as job ``rotator`` (the job name the rules expect) every
``interval`` and evaluates the rule files on the same interval, with its data in a directory
of its own. Ready when ``/-/ready`` answers 200; ``alerts()`` reads ``/api/v1/alerts``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from rotator.servers.process import ServerProcess, ServerStartError, free_port


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise ServerStartError("the 'prometheus' binary was not found: apt-get install prometheus")
    return found


class Prometheus(ServerProcess):
    def __init__(
        self,
        work_dir: Path,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        *,
        interval: str = "1s",
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        config = {  # JSON is YAML: no YAML writer needed
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(Path(f).absolute()) for f in rule_files],
            "scrape_configs": [
                {"job_name": "rotator", "static_configs": [{"targets": [*targets]}]}
            ],
        }
        config_path = work_dir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2))
        super().__init__(
            "Prometheus",
            [
                prometheus_binary(),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.console.templates=/dev/null",
                "--web.console.libraries=/dev/null",
            ],
            ready=self._ready,
            log_path=work_dir / "prometheus.log",
            timeout=30,
        )

    def __repr__(self) -> str:
        return f"Prometheus(url={self.url!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a ``/api/v1/...`` answer."""
        answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        answer.raise_for_status()
        body = answer.json()
        if body.get("status") != "success":
            raise ServerStartError(f"Prometheus /api/v1/{path}: {body.get('error')}")
        return body["data"]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])
