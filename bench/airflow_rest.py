"""What the Airflow benchmarks share: Airflow's public REST API with a user's JWT, and polling a
condition with a deadline (a benchmark stops with a clear message rather than hang)."""

from __future__ import annotations

import time
from typing import Any

import requests


class Api:
    """Airflow's public REST API with the given user's JWT."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 60) -> None:
        self.url, self.timeout = url, timeout
        answer = requests.post(
            f"{url}/auth/token", json={"username": user, "password": password}, timeout=timeout
        )
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(
            method, f"{self.url}{path}", headers=self.headers, timeout=self.timeout, **kwargs
        )
        answer.raise_for_status()
        return answer.json()


def wait(what: str, check: Any, timeout: float, every: float = 2.0) -> Any:
    """``check()``'s first truthy result, polled every ``every`` seconds until ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)  # the interval between checks of a condition
    return found
