"""``rotator status / history / verify / doctor`` only read: on a store the user may not write
(0400 database and key in a 0500 directory), from a working directory the user may not write,
they work and create nothing; the first write (``rotate``) says clearly when it cannot create
the store.

Permissions mean nothing to root, so when the suite runs as root each command runs as the
unprivileged user ``nobody`` (``setpriv``), on a tree that user owns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.configs import VIEW_PIPELINES, one_token_toml
from tests.fixtures.leaks import record_output, register_secret

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
NAME = "airflow-teamcity-token"


class Tree:
    """A directory the reader's user owns; ``run`` runs ``rotator`` as that user."""

    def __init__(self, base: Path, env: dict[str, str], sim) -> None:
        self.base = base
        self.env = env
        self.sim = sim
        self.root = os.geteuid() == 0

    def run(self, *args: str, cwd: Path, as_reader: bool = True) -> subprocess.CompletedProcess:
        prefix: list[str] = []
        if as_reader and self.root:
            prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "rotator", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=self.env,
            timeout=60,
            check=False,
        )
        record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
        for user in self.sim.state.users.values():
            for token in user.tokens.values():
                register_secret(token.value)
        assert "unexpected" not in result.stderr, result.stderr
        return result

    def lock_down(self, *writable_never: Path) -> None:
        """Hand the tree to the reader's user; database and key 0400, directories 0500."""
        for path in sorted(self.base.rglob("*"), reverse=True):
            if self.root:
                os.chown(path, NOBODY, NOBODY)
            path.chmod(0o500 if path.is_dir() else 0o400)
        if self.root:
            os.chown(self.base, NOBODY, NOBODY)
        for directory in writable_never:
            directory.chmod(0o500)

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        out = {}
        for root, dirs, files in os.walk(self.base):
            for name in dirs + files:
                st = Path(root, name).stat()
                out[str(Path(root, name).relative_to(self.base))] = (
                    st.st_mode,
                    st.st_size,
                    st.st_mtime_ns,
                )
        return out


@pytest.fixture
def tree(teamcity_sim, teamcity_admin_token) -> Iterator[Tree]:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop to an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="rotator-readonly-"))  # reachable by the reader's user
    base.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    env.update(
        TEAMCITY_TOKEN=teamcity_admin_token,
        PYTHONPATH=str(REPO),  # this checkout's code, whichever checkout runs the test
        PYTHONDONTWRITEBYTECODE="1",
        HOME=str(base),
    )
    yield Tree(base, env, teamcity_sim)
    for path in [base, *base.rglob("*")]:
        if path.is_dir():
            path.chmod(0o700)
    shutil.rmtree(base)


def write_config(tree: Tree, store: Path) -> Path:
    etc = tree.base / "etc"
    etc.mkdir()
    config = etc / "rotator.toml"
    config.write_text(one_token_toml(store, tree.sim.url, grace="1d", permissions=VIEW_PIPELINES))
    (tree.base / "cwd").mkdir()
    return config


def test_read_commands_on_a_store_the_user_may_not_write_work_and_create_nothing(tree):
    state = tree.base / "state"
    config = write_config(tree, state / "store.db")
    seeded = tree.run("--config", str(config), "rotate", "--all", cwd=tree.base, as_reader=False)
    assert seeded.returncode == 0, seeded.stderr
    assert sorted(p.name for p in state.iterdir()) == ["master.key", "store.db"]
    tree.lock_down()
    before = tree.snapshot()
    cwd = tree.base / "cwd"

    status = tree.run("status", "--config", str(config), "--json", cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["credentials"][0]["version"] == "1"
    history = tree.run("history", NAME, "--config", str(config), "--json", cwd=cwd)
    assert history.returncode == 0, history.stderr
    assert [v["stages"] for v in json.loads(history.stdout)["versions"]] == [["current"]]
    verify = tree.run("verify", "--config", str(config), "--json", cwd=cwd)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["outcomes"][0]["result"] == "verified"
    doctor = tree.run("doctor", "--config", str(config), "--json", cwd=cwd)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 0, checks
    assert "read-only" in checks["store"]["detail"] and "1 version(s)" in checks["store"]["detail"]

    assert tree.snapshot() == before  # no -journal, -wal, -shm, .rotator, key: nothing


def test_before_the_first_rotation_nothing_is_created_and_rotate_says_why_it_cannot(tree):
    store = tree.base / "etc" / "state" / "store.db"  # its directory is not there yet
    config = write_config(tree, store)
    tree.lock_down()  # etc/ and cwd/ are 0500: nothing can be created in either
    before = tree.snapshot()
    cwd = tree.base / "cwd"

    status = tree.run("status", "--config", str(config), "--json", cwd=cwd)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["credentials"][0]["last_result"] == "never rotated"
    assert f"no database at {store}" in status.stderr  # says where it looked
    history = tree.run("history", NAME, "--config", str(config), "--json", cwd=cwd)
    assert history.returncode == 0 and json.loads(history.stdout)["versions"] == []
    verify = tree.run("verify", "--config", str(config), "--json", cwd=cwd)
    assert verify.returncode == 1  # nothing to verify yet: a failed check, not a crash
    assert "has no current value" in json.loads(verify.stdout)["outcomes"][0]["error"]
    doctor = tree.run("doctor", "--config", str(config), "--json", cwd=cwd)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 0, checks
    assert f"no database yet at {store}" in checks["store"]["detail"]
    assert tree.snapshot() == before

    rotate = tree.run("rotate", "--all", "--config", str(config), "--json", cwd=cwd)
    assert rotate.returncode == 1
    error = json.loads(rotate.stdout)["outcomes"][0]["error"]
    assert f"cannot create the store directory {store.parent}" in error
    assert "Permission denied" in error and "[store] path" in error
    assert tree.snapshot() == before
    assert tree.sim.state.find_user("airflow-bot").tokens == {}  # nothing minted either


def test_without_a_config_in_an_unwritable_directory_nothing_is_created(tree):
    cwd = tree.base / "cwd"
    cwd.mkdir()
    tree.lock_down()
    tree.env.pop("ROTATOR_CONFIG", None)
    for command in ("status", "doctor"):
        result = tree.run(command, "--json", cwd=cwd)
        assert result.returncode == 0, result.stdout + result.stderr
    doctor = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert f"no database yet at {cwd / '.rotator' / 'store.db'}" in doctor["store"]["detail"]
    assert list(cwd.iterdir()) == []
