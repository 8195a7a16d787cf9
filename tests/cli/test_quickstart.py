"""The README's quick start, run exactly as written (on a free port and in a temporary
directory instead of 8111 and /tmp/rotator-quickstart): a README whose commands do not work is
a broken promise to the first user."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

from tests.fixtures.leaks import record_output

ROOT = Path(__file__).resolve().parents[2]


def quick_start_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the quick start has a bash block"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_quick_start_works_as_written(tmp_path):
    script = quick_start_block()
    assert "rotator init" in script and "rotator rotate --all" in script
    script = script.replace("8111", str(free_port())).replace(
        "/tmp/rotator-quickstart", str(tmp_path / "qs")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROTATOR_", "TEAMCITY_"))}
    # whatever happens, the simulator the block started does not outlive it
    script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    record_output("README quick start [stdout]", result.stdout)
    record_output("README quick start [stderr]", result.stderr)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    out = result.stdout
    assert re.search(r"airflow-teamcity-token\s+rotated\s+1\s", out), out
    assert re.search(r"airflow-teamcity-token\s+verified\s+1", out), out
    assert re.search(r"airflow-teamcity-token\s+rotated\s+2\s", out), out
    assert "current" in out and "previous" in out, "history shows both versions"
    store = tmp_path / "qs" / ".rotator" / "store.db"
    assert store.exists() and oct(store.stat().st_mode & 0o777) == "0o600"
    config = (tmp_path / "qs" / "rotator.toml").read_text()
    assert 'token_env = "TEAMCITY_TOKEN"' in config, "it names the variable, never a value"
