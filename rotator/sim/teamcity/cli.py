"""``rotator sim teamcity``: run the simulator in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from rotator.errors import ExitCode
from rotator.sim.teamcity.seed import DEMO_SEED, SeedError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rotator sim teamcity",
        description="A TeamCity REST server simulator on loopback.",
        epilog="What it implements (endpoints, auth, tokens, errors, faults, the /__sim/ "
        "control surface) and how it follows TeamCity: rotator/sim/teamcity/README.md in "
        "Rotator's repository. The default seed has the users admin (give it a token with "
        "--admin-token-env), airflow-bot and teamcity-bot.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8111, help="port (default 8111; 0 picks one)")
    p.add_argument("--seed", default=str(DEMO_SEED), help="seed file (default: the demo seed)")
    p.add_argument("--admin-user", default="admin", help="user that owns the admin token")
    p.add_argument(
        "--admin-token-env",
        metavar="VAR",
        help="create an administrator whose bearer token is the value of this variable",
    )
    p.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="same, from the command line (visible in the process list: prefer --admin-token-env)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    token = args.admin_token
    if args.admin_token_env:
        token = os.environ.get(args.admin_token_env)
        if not token:
            print(f"rotator sim teamcity: ${args.admin_token_env} is empty", file=sys.stderr)
            return ExitCode.BAD_INPUT
    elif token:
        print(
            "warning: --admin-token is visible to every user of this machine; "
            "use --admin-token-env",
            file=sys.stderr,
        )
    from rotator.sim.teamcity.simulator import TeamCitySimulator

    try:
        sim = TeamCitySimulator(
            admin_token=token,
            seed=args.seed,
            host=args.host,
            port=args.port,
            admin_user=args.admin_user,
        )
        sim.start()
    except SeedError as exc:
        print(f"rotator sim teamcity: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(
            f"rotator sim teamcity: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return ExitCode.BAD_INPUT
    print(f"TeamCity simulator listening on {sim.url}", flush=True)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        # From another thread: the handler may interrupt ``stop.wait`` while it holds the
        # event's non-reentrant lock (as the daemon's did, rotator.scheduler).
        threading.Thread(target=stop.set, daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    stop.wait()
    sim.stop()
    return ExitCode.OK
