"""``rotator demo`` starts in the background as soon as collection ends, and its test collects
the result when its turn comes. The demo spends its two minutes mostly waiting on its own
Airflow, OpenBao and simulator (about a third of one core): run beside the tests collected
before it, that waiting stops adding to the suite's wall time. It runs in its own process group,
which the session ends if it is still running then (an interrupted or failing run)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

DEMO_TEST = "tests/demo/test_demo.py::test_demo_runs_the_whole_loop"
TIMEOUT = 900.0


@dataclass
class DemoRun:
    proc: subprocess.Popen[bytes]
    workdir: Path
    stdout: Path
    stderr: Path

    def result(self) -> subprocess.CompletedProcess[str]:
        """Waits for the demo (up to ``TIMEOUT`` from now) and returns what it printed."""
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            stop(self)
            raise
        return subprocess.CompletedProcess(
            self.proc.args, code, self.stdout.read_text(), self.stderr.read_text()
        )


KEY = pytest.StashKey[DemoRun]()


def start() -> DemoRun:
    base = Path(tempfile.mkdtemp(prefix="rotator-demo-test-"))
    workdir = base / "demo"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ROTATOR_CONFIG", "VAULT_TOKEN", "TEAMCITY_TOKEN")
    }
    stdout, stderr = base / "stdout.txt", base / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rotator", "demo", "--workdir", str(workdir)],
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
        )
    return DemoRun(proc, workdir, stdout, stderr)


def stop(run: DemoRun) -> None:
    if run.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.proc.pid, signal.SIGTERM)
    try:
        run.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=10)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.nodeid == DEMO_TEST for item in items) and KEY not in config.stash:
        config.stash[KEY] = start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(KEY, None)
    if run is not None:
        stop(run)


@pytest.fixture
def demo_run(request: pytest.FixtureRequest) -> DemoRun:
    """The background demo run (started now if collection did not start it)."""
    config = request.config
    if KEY not in config.stash:
        config.stash[KEY] = start()
    return config.stash[KEY]
