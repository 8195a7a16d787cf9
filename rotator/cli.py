"""``rotator``: the command line. Exit codes are ``rotator.errors.ExitCode`` (the table is there;
``exit_code_for`` maps an error, ``worst`` several results), and per command:

- ``rotator audit [teamcity]``: 0 nothing flagged, 1 a standing token is flagged (never expires,
  or expires soon), a TeamCity -> Airflow standing credential is flagged (one Rotator did not
  push, or one that ``[[identity.allow]]`` rules make unnecessary), or tokens or parameters could
  not be read; 2 bad input;
- ``rotator run`` stopped by Ctrl-C (SIGINT) exits 130: it says "rotator: stopped" and lets the
  pass under way (the rotations it started) finish first; a second Ctrl-C stops at once, and the
  next run rolls a cut rotation forward from its journal;
- ``rotator run`` stopped by SIGTERM (systemd, Kubernetes) says the same and exits 0.

Heavy modules (boto3, hvac, requests, prometheus) are imported by the commands that need them,
so ``rotator --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rotator.errors import ExitCode, exit_code_for, worst


def _common() -> argparse.ArgumentParser:
    """Options accepted both before and after the command (``--config`` anywhere)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="rotator.toml to use (default: $ROTATOR_CONFIG, then ./rotator.toml)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON document on stdout",
    )
    common.add_argument(
        "--audit-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="append audit events (JSON lines) here (default: stderr; on a terminal, "
        "audit.jsonl beside the store)",
    )
    common.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="tell each step on stderr in one short line (when the audit JSON is not there)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback on unexpected errors",
    )
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(
        prog="rotator",
        parents=[common],
        description="Rotates the credentials between TeamCity and Airflow.",
        epilog="Exit codes: 0 ok or nothing due; 1 a rotation/check failed (current kept); "
        "2 bad input (nothing changed); 3 another rotator holds a lock; 130 stopped by Ctrl-C. "
        "'rotator run' finishes the rotations under way on Ctrl-C (exit 130) or SIGTERM "
        "(exit 0) and says 'rotator: stopped'.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "rotate", parents=[common], help="rotate credentials now (if due, or --force)"
    )
    r.add_argument("names", nargs="*", metavar="NAME")
    r.add_argument("--all", action="store_true", help="every credential of the config")
    r.add_argument("--force", action="store_true", help="rotate even if not due")
    r.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    r.add_argument(
        "--revoke-previous",
        action="store_true",
        help="break glass for a leaked credential: rotate now (implies --force) and revoke every "
        "older one at once, even those still settling",
    )
    r.add_argument("--parallel", type=int, metavar="N", help="credentials rotated at once")

    run = sub.add_parser("run", parents=[common], help="the scheduler daemon")
    run.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics")
    run.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST")
    run.add_argument(
        "--tick",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often to check what is due (default 60, with 20%% jitter)",
    )
    run.add_argument("--once", action="store_true", help="one pass, then exit")

    sub.add_parser(
        "status", parents=[common], help="per credential: version, age, expiry, next due"
    )
    h = sub.add_parser("history", parents=[common], help="versions and audit trail of a credential")
    h.add_argument("name", metavar="NAME")
    rb = sub.add_parser(
        "rollback", parents=[common], help="make the previous version current again"
    )
    rb.add_argument("name", metavar="NAME")
    rb.add_argument(
        "--to",
        metavar="VERSION",
        help="the version to make current (default: previous; see 'rotator history NAME')",
    )
    v = sub.add_parser(
        "verify", parents=[common], help="prove current credentials work at their target"
    )
    v.add_argument("names", nargs="*", metavar="NAME")
    sub.add_parser("doctor", parents=[common], help="check config, store, targets and clocks")
    au = sub.add_parser(
        "audit",
        parents=[common],
        help="standing credentials in each direction between Airflow and TeamCity, and the "
        "TeamCity tokens that never expire or expire soon (read-only)",
        epilog="Per direction: Airflow -> TeamCity (the teamcity-token credentials Airflow "
        "uses) and TeamCity -> Airflow (Airflow credentials the config pushes into TeamCity, "
        "and parameters named like an Airflow credential that Rotator did not push, "
        "read where the config pushes, where [[identity.allow]] rules point and at --project/"
        "--build-type). 'no standing token' when none exists and identity rules are "
        "configured. Exit 1 when a token or parameter is flagged: a foreign token never "
        "expiring or expiring within --within, a parameter Rotator did not push, a pushed "
        "Airflow credential while identity rules exist (the build's own token replaces it), or "
        "what could not be read; 0 otherwise; 2 bad input. 'rotator audit teamcity' is the same.",
    )
    au.add_argument("system", nargs="?", choices=["teamcity"], help="optional: the same audit")
    au.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="USER",
        help="audit this TeamCity user's tokens (repeatable; default: the users of the config's "
        "teamcity-token credentials, [audit.teamcity] users and the admin)",
    )
    au.add_argument(
        "--within",
        metavar="DURATION",
        help="flag foreign tokens expiring within this (default [audit.teamcity] within, 14d)",
    )
    au.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="ID",
        help="also read this TeamCity project's parameters (repeatable)",
    )
    au.add_argument(
        "--build-type",
        action="append",
        default=[],
        metavar="ID",
        help="also read this build configuration's parameters (repeatable)",
    )
    ident = sub.add_parser(
        "identity", parents=[common], help="explain what the trigger endpoint decides for a token"
    )
    ident.add_argument("action", choices=["check"])
    ident.add_argument("--token-file", required=True, metavar="FILE", help="the build's JWT")
    ident.add_argument("--dag", required=True, metavar="DAG_ID")
    ident.add_argument("--conf-key", action="append", default=[], metavar="KEY")
    ident.add_argument("--jwks-file", metavar="FILE", help="the issuer's JWKS: no network")
    sim = sub.add_parser("sim", help="simulators (rotator sim teamcity --help)")
    sim.add_argument("system", choices=["teamcity"])
    sim.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    demo = sub.add_parser(
        "demo", parents=[common], help="the whole loop on loopback, embedded defaults"
    )
    demo.add_argument(
        "--workdir", metavar="DIR", help="where to put logs and state (default: a new temp dir)"
    )
    init = sub.add_parser("init", parents=[common], help="write a commented starter rotator.toml")
    init.add_argument("--store", choices=["file", "vault", "aws"], default="file", help="kind")
    init.add_argument("--teamcity", metavar="URL", help="add [teamcity] and a token credential")
    init.add_argument("--airflow", metavar="URL", help="add [airflow] and a password credential")
    init.add_argument("--path", metavar="FILE", help="default: --config, else ./rotator.toml")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "sim":
        from rotator.sim.teamcity.cli import main as sim_main

        return sim_main(args.rest)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("rotator: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        from rotator.errors import RotatorError

        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        kind = "error" if isinstance(exc, RotatorError) else f"unexpected {type(exc).__name__}"
        print(f"rotator: {kind}: {exc}", file=sys.stderr)
        return exit_code_for(exc)


# -- shared plumbing ----------------------------------------------------------------------


class Context:
    """What a command works with, built lazily from the arguments."""

    def __init__(self, args: argparse.Namespace) -> None:
        from rotator.config import load

        self.args = args
        self.json = bool(getattr(args, "json", False))
        self.config = load(getattr(args, "config", None))
        for warning in self.config.warnings:
            print(f"rotator: warning: {warning}", file=sys.stderr)
        self._store: Any = None
        self._engine: Any = None

    READ_ONLY_COMMANDS = frozenset({"status", "history", "verify", "doctor", "audit"})

    @property
    def store(self) -> Any:
        if self._store is None:
            read_only = getattr(self.args, "command", None) in self.READ_ONLY_COMMANDS
            self._store = self.config.open_store(read_only=read_only)
        return self._store

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from rotator.audit import Audit
            from rotator.engine import Engine

            audit_file = getattr(self.args, "audit_file", None) or self.config.engine.audit_file
            self._engine = Engine.from_config(
                self.config,
                self.store,
                Audit.for_cli(
                    audit_file,
                    self.config.store_kind,
                    self.store,
                    verbose=bool(getattr(self.args, "verbose", False)),
                ),
                observe=getattr(self, "observe", None),
            )
        return self._engine

    def specs(self, names: list[str], all_: bool = False) -> list[Any]:
        from rotator.errors import ConfigError

        if all_ and names:
            raise ConfigError("give credential names or --all, not both")
        if all_ or not names:
            if not all_ and self.args.command == "rotate":
                raise ConfigError("name the credentials to rotate, or use --all")
            return list(self.config.credentials)
        return self.config.select(names)


def _summarise(outcomes: list[Any]) -> int:
    return worst(o.exit_code for o in outcomes)


def _print_outcomes(ctx: Context, outcomes: list[Any], code: int) -> None:
    from rotator.output import emit_json

    if ctx.json:
        emit_json({"outcomes": [o.as_dict() for o in outcomes], "exit_code": code})
    else:
        print(_outcome_table(outcomes), flush=True)


def _outcome_rows(outcomes: list[Any]) -> list[list[Any]]:
    """One row per outcome; DETAIL as a person reads it (``output.plain_error``: no exception
    class names, each thing said once). ``--json`` keeps the engine's text whole."""
    from rotator.output import plain_error

    rows = []
    for o in outcomes:
        detail = "; ".join(filter(None, [o.error or o.reason, *o.warnings]))
        rows.append(
            [o.credential, o.result, o.version or "-", o.rotation_id or "-", plain_error(detail)]
        )
    return rows


def _outcome_table(outcomes: list[Any]) -> str:
    """The outcomes fitted to the terminal; a cut DETAIL points to ``--json`` and ``history``."""
    from rotator.output import table

    failed = [o.credential for o in outcomes if o.result != "rotated" and o.error]
    name = failed[0] if len(failed) == 1 else "NAME"
    return table(
        ["CREDENTIAL", "RESULT", "VERSION", "ROTATION", "DETAIL"],
        _outcome_rows(outcomes),
        more="({mark} cut to fit {width} columns: --json shows the whole text, "
        f"rotator history {name} every step)",
    )


# -- commands -------------------------------------------------------------------------------


def cmd_rotate(args: argparse.Namespace) -> int:

    ctx = Context(args)
    specs = ctx.specs(args.names, args.all)
    if args.parallel is not None and not 1 <= args.parallel <= 64:
        from rotator.errors import ConfigError

        raise ConfigError("--parallel must be from 1 to 64")
    many = len(specs) > 1 and not ctx.json

    def progress(outcome: Any) -> None:
        if many:
            print(f"  {outcome.credential}: {outcome.result}", file=sys.stderr, flush=True)

    if args.revoke_previous and args.dry_run:
        from rotator.errors import ConfigError

        raise ConfigError("--revoke-previous revokes credentials; it cannot be a --dry-run")
    outcomes = ctx.engine.rotate_all(
        specs,
        force=args.force or args.revoke_previous,
        dry_run=args.dry_run,
        revoke_previous=args.revoke_previous,
        parallel=args.parallel,
        progress=progress,
    )
    followup = _followup(ctx)
    followup.after(specs, outcomes)
    code = _summarise(outcomes)
    _print_outcomes(ctx, outcomes, code)
    _close_followup(followup)
    return code


def _followup(ctx: Context, metrics: Any = None) -> Any:
    """Announce and notify around the engine (``rotator.followup``)."""
    from rotator.followup import Followup

    return Followup.build(ctx.config, ctx.engine, metrics)


def _close_followup(followup: Any) -> None:
    from rotator.followup import FLUSH_BOUND

    if not followup.close(FLUSH_BOUND):
        print(
            f"rotator: warning: notifications still unsent after {FLUSH_BOUND:g}s were dropped",
            file=sys.stderr,
        )


def cmd_run(args: argparse.Namespace) -> int:
    from rotator.metrics import Metrics
    from rotator.scheduler import Scheduler

    ctx = Context(args)
    metrics = Metrics() if args.metrics_port is not None else None
    if metrics is not None:
        ctx.observe = metrics.observe_step  # type: ignore[attr-defined]
        metrics.serve(args.metrics_port, args.metrics_host)

    def report(outcomes: list[Any]) -> None:
        acted = [o for o in outcomes if o.result != "not-due" or o.revoked]
        if acted and not ctx.json:
            print(_outcome_table(acted), flush=True)

    followup = _followup(ctx, metrics)
    scheduler = Scheduler(
        ctx.engine, tick=args.tick, metrics=metrics, report=report, after=followup.after
    )
    if args.once:
        code = _summarise(scheduler.run_pass())
        _close_followup(followup)
        return code
    scheduler.install_signal_handlers()
    print(
        f"rotator run: watching {len(ctx.config.credentials)} credential(s), tick {args.tick:g}s",
        file=sys.stderr,
        flush=True,
    )
    code = scheduler.run_forever()
    _close_followup(followup)
    # SIGINT (Ctrl-C): 130, as a shell expects; SIGTERM (systemd, Kubernetes stopping us): 0
    print("rotator: stopped", file=sys.stderr, flush=True)
    return code


def status_rows(ctx: Context) -> list[dict[str, Any]]:
    from rotator.status import audit_path, status_rows

    explicit = getattr(ctx.args, "audit_file", None)
    return status_rows(ctx.config, ctx.store, audit_path(ctx.config, ctx.store, explicit))


def _proof(row: dict[str, Any]) -> str:
    from datetime import datetime

    from rotator.output import ago

    if not row["last_proven"]:
        return "-"
    when = ago(datetime.fromisoformat(row["last_proven"]))
    return when if row["last_proof"] == "ok" else f"REFUSED {when}"


def _retirements(row: dict[str, Any]) -> str:
    if not row["retirements"]:
        return "-"
    overdue = f", {row['retirements_overdue']} OVERDUE" if row["retirements_overdue"] else ""
    return f"{row['retirements']} to retire{overdue}"


def cmd_status(args: argparse.Namespace) -> int:
    from rotator.output import ago, emit_json, table, until

    ctx = Context(args)
    rows = status_rows(ctx)
    if ctx.json:
        emit_json({"store": ctx.config.store_kind, "credentials": rows})
        return ExitCode.OK
    print(
        table(
            [
                "CREDENTIAL",
                "TYPE",
                "VERSION",
                "AGE",
                "EXPIRES",
                "NEXT DUE",
                "LAST",
                "PROVEN",
                "PENDING WORK",
            ],
            [
                [
                    r["name"],
                    r["type"],
                    r["version"] or "-",
                    ago(r["issued"]),
                    until(r["expires"]),
                    "now (" + r["due"] + ")" if r["due"] else until(r["next_due"]),
                    r["last_result"],
                    _proof(r),
                    r["pending_work"] or _retirements(r),
                ]
                for r in rows
            ],
        )
    )
    return ExitCode.OK


def cmd_history(args: argparse.Namespace) -> int:
    from rotator import audit
    from rotator.output import emit_json, expiry, plain_error, short_time, table

    ctx = Context(args)
    spec = ctx.config.credential(args.name)
    versions = ctx.store.versions(spec.path)
    # the file the audit went to: named, else the default a rotation on a terminal wrote
    audit_file = audit.history_path(
        getattr(args, "audit_file", None) or ctx.config.engine.audit_file,
        ctx.config.store_kind,
        ctx.store,
    )
    events = audit.read(audit_file, spec.name)
    if ctx.json:
        emit_json(
            {
                "credential": spec.name,
                "versions": [
                    {
                        "id": v.id,
                        "stages": sorted(v.stages),
                        "created": v.created,
                        "meta": dict(v.meta),
                    }
                    for v in versions
                ],
                "audit_file": str(audit_file),
                "events": events,
            }
        )
        return ExitCode.OK
    more = "({mark} cut to fit {width} columns: " + f"rotator history {spec.name} --json shows all)"
    rows = [
        [
            v.id,
            ",".join(sorted(v.stages)) or "-",
            short_time(v.created),
            expiry(v.meta.get("expires")),
            v.meta.get("rotation_id", "-"),
            v.meta.get("target_name", "-"),
        ]
        for v in versions
    ]
    headers = ["VERSION", "STAGES", "CREATED", "EXPIRES", "ROTATION", "TARGET NAME"]
    # TeamCity token names are rotator-<credential>-<rotation id>: say so once, not per row
    standard = bool(rows) and all(r[5] == f"rotator-{spec.name}-{r[4]}" for r in rows)
    if standard:
        rows, headers = [r[:5] for r in rows], headers[:5]
    cut = [5, 0, 4] if len(headers) == 6 else [0, 4]  # target name, then ids: in the middle
    print(table(headers, rows, cut=cut, middle=cut, more=more))
    if standard:
        print(f"(TeamCity token names: rotator-{spec.name}-<ROTATION>)")
    print()
    if events:
        print(
            table(
                ["TIME", "ROTATION", "STEP", "OUTCOME", "DETAIL"],
                [
                    [
                        short_time(e.get("time")),
                        e.get("rotation_id") or "-",
                        e.get("step"),
                        e.get("outcome"),
                        plain_error((e.get("error") or {}).get("message"))
                        or _unless_standard(e.get("target"), spec.name, e.get("rotation_id")),
                    ]
                    for e in events
                ],
                more=more,
            )
        )
        print(f"(audit trail: {_shown_path(audit_file)})")
    else:
        print(
            f"(no audit events for {spec.name} in {_shown_path(audit_file)}; "
            "--audit-file names another)"
        )
    return ExitCode.OK


def _unless_standard(target: str | None, name: str, rotation_id: str | None) -> str:
    """A history DETAIL: the target name, unless it is the one the note under the table gives."""
    return "" if not target or target == f"rotator-{name}-{rotation_id}" else target


def _shown_path(path: Any) -> str:
    """A path for a person: relative below the working directory, ~ for the home directory."""
    import os
    from pathlib import Path

    absolute = Path(path).absolute()
    relative = os.path.relpath(absolute)
    if not relative.startswith(".."):
        return relative
    home = Path.home()
    return f"~/{absolute.relative_to(home)}" if absolute.is_relative_to(home) else str(absolute)


def cmd_rollback(args: argparse.Namespace) -> int:
    from rotator.output import emit_json, table

    ctx = Context(args)
    outcome = ctx.engine.rollback(ctx.config.credential(args.name), to=args.to)
    if ctx.json:
        emit_json(outcome.as_dict())
    else:
        print(
            table(
                ["CREDENTIAL", "RESULT", "VERSION", "ROTATION", "DETAIL"], _outcome_rows([outcome])
            )
        )
    return outcome.exit_code


def cmd_verify(args: argparse.Namespace) -> int:

    ctx = Context(args)
    outcomes = [ctx.engine.verify(spec) for spec in ctx.specs(args.names)]
    code = _summarise(outcomes)
    _print_outcomes(ctx, outcomes, code)
    return code


def cmd_doctor(args: argparse.Namespace) -> int:
    from rotator.doctor import run_checks
    from rotator.output import emit_json, table

    ctx = Context(args)
    checks = run_checks(ctx.config, lambda: ctx.store)
    code = ExitCode.OK if all(c.ok for c in checks) else ExitCode.FAILED
    if ctx.json:
        emit_json({"checks": [c.__dict__ for c in checks], "exit_code": code})
    else:
        print(
            table(
                ["CHECK", "RESULT", "DETAIL"],
                [[c.name, "ok" if c.ok else "FAILED", c.detail] for c in checks],
            )
        )
    return code


def cmd_audit(args: argparse.Namespace) -> int:
    """``rotator audit``: read-only; ``rotator.standing`` says what is flagged."""
    from datetime import UTC, datetime

    from rotator import standing
    from rotator.durations import parse_duration
    from rotator.errors import ConfigError
    from rotator.targets.teamcity import TeamCityClient

    ctx = Context(args)
    if ctx.config.teamcity is None:
        raise ConfigError(f"{ctx.config.source}: rotator audit needs a [teamcity] table")
    within = ctx.config.standing.within
    if args.within is not None:
        within = parse_duration(args.within, where="--within")
    client = TeamCityClient.from_settings(ctx.config.teamcity)
    users = list(dict.fromkeys(args.user)) or standing.default_users(ctx.config, client)
    report = standing.audit(ctx.config, client, ctx.store, users, within, datetime.now(UTC))
    ways = standing.directions(ctx.config, client, report, args.project, args.build_type)
    found = report.flagged or report.errors or any(d.flagged or d.errors for d in ways)
    code = ExitCode.FAILED if found else ExitCode.OK
    _print_standing(ctx, report, code, ways)
    return code


def _print_standing(ctx: Context, report: Any, code: int, ways: Any) -> None:
    from rotator.durations import format_duration
    from rotator.output import emit_json, expiry, short_time, table

    if ctx.json:
        emit_json(
            {
                "users": list(report.users),
                "within": format_duration(report.within),
                "tokens": [t.as_dict() for t in report.tokens],
                "flagged": len(report.flagged),
                "errors": list(report.errors),
                "directions": {d.key: d.as_dict() for d in ways},
                "exit_code": code,
            }
        )
        return
    print(
        table(
            ["USER", "TOKEN", "FLAG", "EXPIRES", "OWNER", "CREATED"],
            [
                [
                    t.user,
                    t.name,
                    t.flag or "-",
                    expiry(t.expires) if t.expires else "never",
                    t.owner if not t.credential else f"{t.owner} ({t.credential})",
                    short_time(t.created),
                ]
                for t in report.tokens
            ],
            cut=[5, 1, 4],
            middle=[1],
            more="({mark} cut to fit {width} columns: rotator audit --json shows all)",
        )
    )
    for error in report.errors:
        print(f"rotator: cannot list tokens of {error}", file=sys.stderr)
    print(
        f"{len(report.tokens)} token(s) of {len(report.users)} user(s); {len(report.flagged)} "
        f"flagged (foreign, never expiring or expiring within {format_duration(report.within)}); "
        "nothing was revoked"
    )
    for way in ways:
        print(way.summary())
        for item in way.standing:
            print(f"  {item.describe()}")
        for error in way.errors:
            print(f"rotator: cannot read the parameters of {error}", file=sys.stderr)
    read = [r for way in ways for r in way.parameters_read]
    print(f"(parameters read: {', '.join(read) or 'none'}; their values are never read)")


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter rotator.toml; never overwrites, never opens a store."""
    from rotator import starter
    from rotator.output import emit_json

    path = args.path or getattr(args, "config", None) or "rotator.toml"
    written, warnings = starter.write(path, args.store, args.teamcity, args.airflow)
    for warning in warnings:
        print(f"rotator: warning: {warning}", file=sys.stderr)
    commands = starter.next_commands(written)
    if getattr(args, "json", False):
        emit_json({"written": str(written.absolute()), "next": commands})
    else:
        print(f"wrote {written.absolute()} (no secrets in it; edit it, then try:)")
        print("\n".join(f"  {c}" for c in commands))
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    from rotator.demo import main as demo_main

    return demo_main(args)


def cmd_identity(args: argparse.Namespace) -> int:
    """``rotator identity check``: ``rotator.identity.explain`` says what and why."""
    from rotator.identity import explain
    from rotator.output import emit_json

    ctx = Context(args)
    report = explain.check(ctx.config, args.token_file, args.dag, args.conf_key, args.jwks_file)
    if ctx.json:
        emit_json(report)
    else:
        print(explain.render(report))
    return ExitCode.OK if report["allowed"] else ExitCode.FAILED


COMMANDS = {
    "rotate": cmd_rotate,
    "run": cmd_run,
    "status": cmd_status,
    "history": cmd_history,
    "rollback": cmd_rollback,
    "verify": cmd_verify,
    "doctor": cmd_doctor,
    "audit": cmd_audit,
    "identity": cmd_identity,
    "demo": cmd_demo,
    "init": cmd_init,
}
