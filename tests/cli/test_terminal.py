"""What a person at a terminal sees, and what a service manager or a pipe gets.

The CLI runs as a subprocess. Terminal behaviour is tested through a pseudo-terminal: the
child's stdin, stdout and stderr are the pty's slave (with a window size), the test reads the
master. Not-a-terminal behaviour is a plain ``capture_output`` run, as systemd, Kubernetes or CI
would see it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from rotator.output import plain_error, table
from tests.fixtures.configs import VIEW_PIPELINES, one_token_toml
from tests.fixtures.leaks import record_output, register_output, register_secret

NAME = "airflow-teamcity-token"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


class Terminal:
    """``rotator ARGS`` with a pseudo-terminal of ``columns`` x 24 as stdin, stdout and stderr."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], columns: int = 80):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rotator", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""
        self.eof = False

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace").replace("\r\n", "\n")

    def _read(self, deadline: float) -> None:
        ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError as exc:  # EIO: every slave end closed (the child exited)
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if chunk:
            self.raw += chunk
        else:
            self.eof = True

    def expect(self, text: str, timeout: float = 30) -> str:
        """Read until ``text`` was printed; fail with everything printed so far."""
        deadline = time.monotonic() + timeout
        while text not in self.text:
            assert not self.eof and time.monotonic() < deadline, (
                f"{text!r} never printed by rotator {' '.join(self.args)}:\n{self.text}"
            )
            self._read(deadline)
        return self.text

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while not self.eof:
            assert time.monotonic() < deadline, f"rotator did not finish:\n{self.text}"
            self._read(deadline)
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        record_output(f"rotator {' '.join(self.args)} [terminal]", self.text)
        return code, self.text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.master)


@pytest.fixture
def cli(tmp_path, teamcity_sim, teamcity_admin_token):
    """Run the CLI in tmp_path, in a terminal (``cli.tty``) or not (``cli.run``)."""
    (tmp_path / "rotator.toml").write_text(
        one_token_toml(
            tmp_path / "store.db",
            teamcity_sim.url,
            timeout=10,
            grace="1d",
            permissions=VIEW_PIPELINES,
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ROTATOR_", "XDG_")) and k not in ("COLUMNS", "LINES")
    }
    env["TEAMCITY_TOKEN"] = teamcity_admin_token
    env["HOME"] = str(tmp_path / "home")
    started: list[Terminal] = []

    def register_tokens() -> None:
        for user in teamcity_sim.state.users.values():
            for token in user.tokens.values():
                register_secret(token.value)

    def run(*args: str, expect: int | None = 0, extra_env: dict | None = None):
        result = subprocess.run(
            [sys.executable, "-m", "rotator", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, **(extra_env or {})},
            timeout=60,
            check=False,
        )
        record_output(f"rotator {' '.join(args)} [stdout]", result.stdout)
        record_output(f"rotator {' '.join(args)} [stderr]", result.stderr)
        register_tokens()
        if expect is not None:
            assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
        return result

    def tty(*args: str, columns: int = 80, extra_env: dict | None = None) -> Terminal:
        terminal = Terminal(
            list(args), cwd=tmp_path, env={**env, **(extra_env or {})}, columns=columns
        )
        started.append(terminal)
        return terminal

    def tty_run(*args: str, expect: int | None = 0, **kw) -> str:
        code, text = tty(*args, **kw).finish()
        register_tokens()
        if expect is not None:
            assert code == expect, (code, text)
        return text

    run.tty = tty  # type: ignore[attr-defined]
    run.tty_run = tty_run  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    register_output(tmp_path / "audit.jsonl")
    yield run
    for terminal in started:
        terminal.kill()


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- item 2: tables fit, errors said once, durations and dates ---------------------------------


def test_a_failure_table_fits_the_terminal_and_names_no_exception_class(cli):
    text = cli.tty_run("rotate", "--all", expect=1, extra_env={"TEAMCITY_TOKEN": "wrong-token-1"})
    table_lines = [line for line in lines_of(text) if not line.startswith("rotator:")]
    assert max(len(line) for line in table_lines) <= 80, text
    assert "TargetAuthError" not in text and "Error:" not in text
    assert "\u2026" in text  # DETAIL was cut ...
    footer = " ".join(table_lines[3:])
    assert "--json" in footer and f"rotator history {NAME}" in footer  # ... and says where
    # the whole message is one --json away, as the engine wrote it
    whole = cli("rotate", "--all", "--json", expect=1, extra_env={"TEAMCITY_TOKEN": "wrong-1"})
    assert "401" in json.loads(whole.stdout)["outcomes"][0]["error"]


def test_tables_are_100_columns_when_stdout_is_not_a_terminal(cli):
    out = cli("rotate", "--all", expect=1, extra_env={"TEAMCITY_TOKEN": "wrong-token-2"}).stdout
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert out.splitlines()[1] == out.splitlines()[1].strip() and len(out.splitlines()[1]) <= 100
    assert "--json" in " ".join(out.splitlines()[3:])
    wide = cli(
        "rotate", "--all", expect=1, extra_env={"TEAMCITY_TOKEN": "wrong-2", "COLUMNS": "400"}
    ).stdout
    assert "\u2026" not in wide and "--json" not in wide  # nothing cut, no footer
    assert "TargetAuthError" not in wide and wide.count("401") == 1


def test_status_says_durations_in_two_units(cli):
    cli("rotate", "--all")
    status = cli("status").stdout
    assert "in 9d 23h" in status and "in 6d 23h" in status, status  # lifetime 10d, every 7d
    assert not re.search(r"\d+w\d*d", status) and not re.search(r"\d+m\d+s", status)


def test_json_dates_are_iso_8601_in_utc(cli):
    cli.tty_run("rotate", "--all")  # at a terminal: the audit goes to the file history reads
    row = json.loads(cli("status", "--json").stdout)["credentials"][0]
    for key in ("issued", "expires", "next_due"):
        assert ISO_UTC.match(row[key]), (key, row[key])
    history = json.loads(cli("history", NAME, "--json").stdout)
    assert all(ISO_UTC.match(v["created"]) for v in history["versions"]), history["versions"]
    assert history["events"] and all(ISO_UTC.match(e["time"]) for e in history["events"])


def test_history_fits_the_terminal(cli):
    cli.tty_run("rotate", "--all")
    cli.tty_run("rotate", "--all", "--force")
    text = cli.tty_run("history", NAME, columns=80)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "promote" in text and "previous" in text


def test_plain_error_drops_class_names_and_repeats():
    hint = "(the TeamCity token in $TEAMCITY_TOKEN was refused: missing, expired or revoked?)"
    server = "Invalid authentication request or authentication scheme is not supported"
    raw = (
        f"TargetAuthError: TeamCity answered 401 to POST /app/rest/users/bot/tokens: {server} "
        f"{hint}; could not list issued credentials: TeamCity answered 401 to GET "
        f"/app/rest/users/bot/tokens: {server} {hint}"
    )
    said = plain_error(raw)
    assert said.count(server) == 1 and said.count(hint) == 1
    assert not said.startswith("TargetAuthError") and "GET /app/rest/users/bot/tokens" in said
    assert plain_error("NotFound: 'x' has no current value") == "'x' has no current value"
    # short clauses may honestly repeat; words that merely look like a prefix stay
    assert plain_error("mint: not found; push: not found") == "mint: not found; push: not found"
    assert plain_error("TeamCity could not be reached") == "TeamCity could not be reached"


def test_table_cuts_only_the_free_text_and_never_stretches_the_rule():
    rows = [["a", "x" * 300], ["b", "short"]]
    out = table(["NAME", "DETAIL"], rows, width=60).splitlines()
    assert all(len(line) <= 60 for line in out) and out[1] == "----  " + "-" * 54
    assert out[2].endswith("\u2026") and out[3].endswith("short") and "--json" in out[-1]
    assert "--json" not in table(["NAME", "DETAIL"], [["a", "b"]], width=60)


def test_a_terminal_too_narrow_for_the_columns_gets_one_block_per_row():
    headers = ["CREDENTIAL", "TYPE", "VERSION", "AGE", "EXPIRES", "NEXT DUE", "PENDING WORK"]
    row = [NAME, "teamcity-token", "4", "0s ago", "in 9d 23h", "in 6d 23h", "3 to retire " * 9]
    out = table(headers, [row, row], width=60, blocks=True).splitlines()
    assert all(len(line) <= 60 for line in out), out
    assert out[0] == NAME and out[1].split() == ["TYPE", "teamcity-token"]
    assert "  EXPIRES       in 9d 23h" in out and out.count("") == 1
    assert out[6].endswith("\u2026") and "--json" in out[-1]
    # not on a terminal (a log file, a pipe), nothing wraps: the table stays whole, rule included
    whole = table(headers, [row], width=60, blocks=False).splitlines()
    assert whole[0].startswith("CREDENTIAL") and len(whole[1]) == len(whole[2]) > 60


# -- item 3: the audit on a terminal, in a pipe, in a file ------------------------------------


def test_on_a_terminal_the_audit_goes_beside_the_store_not_on_screen(cli):
    text = cli.tty_run("rotate", "--all")
    assert "rotated" in text and '{"' not in text, text
    audit = cli.tmp / "audit.jsonl"
    assert oct(audit.stat().st_mode & 0o777) == "0o600"
    steps = [json.loads(line)["step"] for line in audit.read_text().splitlines()]
    # the plan reads TeamCity first; the lease comes with the intent
    assert steps[:3] == ["plan", "lock", "intent"] and "promote" in steps
    assert steps[-1] == "unlock"
    # history, at a terminal or not, reads the file the default wrote
    history = cli("history", NAME).stdout
    assert "promote" in history and "(audit trail: audit.jsonl)" in history


def test_verbose_tells_each_step_in_one_short_line(cli):
    text = cli.tty_run("rotate", "--all", "--verbose")
    said = [line for line in lines_of(text) if line.startswith(f"rotator: {NAME}: ")]
    assert said[:2] == [f"rotator: {NAME}: plan ok", f"rotator: {NAME}: lock ok"], text
    assert f"rotator: {NAME}: promote ok" in text and '{"' not in text
    assert all(len(line) <= 200 for line in said)
    quiet = cli.tty_run("rotate", "--all", "--force")
    assert f"rotator: {NAME}: " not in quiet  # without --verbose: the table only


def test_not_a_terminal_keeps_json_lines_on_stderr_and_writes_no_file(cli):
    result = cli("rotate", "--all")
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert events[0]["step"] == "plan" and events[-1]["step"] == "unlock"
    assert not (cli.tmp / "audit.jsonl").exists()


def test_audit_file_option_wins_on_a_terminal(cli):
    text = cli.tty_run("rotate", "--all", "--audit-file", str(cli.tmp / "named.jsonl"))
    assert '{"' not in text
    assert (cli.tmp / "named.jsonl").read_text().count('"step": "promote"') == 1
    assert not (cli.tmp / "audit.jsonl").exists()
    history = cli("history", NAME, "--audit-file", str(cli.tmp / "named.jsonl")).stdout
    assert "promote" in history


def test_vault_store_audit_goes_to_the_users_state_directory(cli, openbao, ns, teamcity_sim):
    config = cli.tmp / "rotator.toml"
    config.write_text(
        config.read_text().replace(
            f'kind = "file"\npath = "{cli.tmp / "store.db"}"',
            f'kind = "vault"\nurl = "{openbao.url}"\nauth = "token"\nmount = "secret"\n'
            f'connections_prefix = "{ns}/airflow/connections"\nstate_prefix = "{ns}/rotator"',
        )
    )
    vault = {"VAULT_TOKEN": openbao.token}
    cli.tty_run("rotate", "--all", extra_env=vault)
    audit = cli.tmp / "home" / ".local" / "state" / "rotator" / "audit.jsonl"
    assert oct(audit.stat().st_mode & 0o777) == "0o600"
    assert '"step": "promote"' in audit.read_text()
    assert "promote" in cli("history", NAME, extra_env=vault).stdout
    state = cli.tmp / "state"
    cli.tty_run("rotate", "--all", "--force", extra_env={**vault, "XDG_STATE_HOME": str(state)})
    assert '"step": "promote"' in (state / "rotator" / "audit.jsonl").read_text()
    register_output(audit)
    register_output(state / "rotator" / "audit.jsonl")


# -- item 6: stopping `rotator run` --------------------------------------------------------------


def test_help_lists_the_exit_codes_of_a_stop(cli):
    out = cli("--help").stdout
    assert "130" in out and "SIGTERM" in out


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_run_stops_on_a_signal_with_its_exit_code(cli, sig, code):
    terminal = cli.tty("run", "--tick", "60")
    terminal.expect("watching 1 credential(s)")
    terminal.expect(NAME)  # the first pass rotated it (its table is printed)
    terminal.proc.send_signal(sig)
    returncode, text = terminal.finish()
    assert returncode == code, text
    assert text.rstrip().endswith("rotator: stopped"), text


def _hold_token_creation(monkeypatch, teamcity_sim):
    """The simulator keeps the next token request waiting until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()
    original = teamcity_sim.state.create_token

    def held(*args, **kwargs):
        entered.set()
        assert release.wait(timeout=60), "the test never released the request"
        return original(*args, **kwargs)

    monkeypatch.setattr(teamcity_sim.state, "create_token", held)
    return entered, release


def test_ctrl_c_lets_the_rotation_in_progress_finish(cli, teamcity_sim, monkeypatch):
    entered, release = _hold_token_creation(monkeypatch, teamcity_sim)
    terminal = cli.tty("run", "--tick", "60")
    try:
        assert entered.wait(timeout=30), terminal.text  # rotator is inside the mint step
        terminal.proc.send_signal(signal.SIGINT)
        terminal.expect("stopping once the rotations under way are done")
        assert terminal.proc.poll() is None  # still running: the mint has not answered yet
    finally:
        release.set()
    code, text = terminal.finish()
    assert code == 130, text
    assert "rotated" in text and text.rstrip().endswith("rotator: stopped"), text
    status = json.loads(cli("status", "--json").stdout)["credentials"][0]
    assert status["version"] == "1" and status["pending_work"] is None, status
    tokens = teamcity_sim.state.find_user("airflow-bot").tokens
    assert [t for t in tokens if t.startswith(f"rotator-{NAME}-")] == [status["target_name"]]


def test_a_second_ctrl_c_stops_at_once_and_the_journal_keeps_the_rotation(
    cli, teamcity_sim, monkeypatch
):
    entered, release = _hold_token_creation(monkeypatch, teamcity_sim)
    terminal = cli.tty("run", "--tick", "60")
    try:
        assert entered.wait(timeout=30), terminal.text
        terminal.proc.send_signal(signal.SIGINT)
        terminal.expect("stopping once the rotations under way are done")
        terminal.proc.send_signal(signal.SIGINT)
        code, text = terminal.finish()
    finally:
        release.set()
    assert code == 130 and "stopped at once" in text, text
    status = json.loads(cli("status", "--json").stdout)["credentials"][0]
    assert status["version"] is None and "interrupted" in (status["pending_work"] or ""), status
