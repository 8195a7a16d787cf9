"""The daemon's notifications, in process: one pass after another through ``Scheduler.run_pass``
with the real engine, the TeamCity simulator and real apprise deliveries to a local receiver.

Lasting states (expiring) are sent once, not on every pass; a receiver that refuses is counted
in ``rotator_notify_failures_total``; a receiver that hangs costs the worker a bounded time and
the pass nothing.
"""

from __future__ import annotations

import os
import time

import pytest
from prometheus_client import generate_latest

from rotator.cli import Context, parser
from rotator.followup import Followup
from rotator.metrics import Metrics
from rotator.notify import Notice, Notifier
from rotator.scheduler import Scheduler
from rotator.spec import NotifySpec
from tests.fixtures.configs import one_token_toml, rotator_toml
from tests.fixtures.leaks import register_output, register_secret

NOTIFY = [
    {
        "url_env": "NOTIFY_URL",
        "on": ["rotated", "failed", "expiring", "retire-overdue", "lock-stuck"],
    },
    {"url_env": "NOTIFY_DEAD", "on": ["failed"]},
]


@pytest.fixture
def daemon(tmp_path, monkeypatch, teamcity_sim, teamcity_admin_token, receiver, dead_url):
    config = tmp_path / "rotator.toml"
    config.write_text(
        one_token_toml(
            tmp_path / "store.db",
            teamcity_sim.url,
            retries=0,
            notify=NOTIFY,
            every="59m",
            lifetime="1h",
            lead="59m59s",  # expiring one second after each rotation
            grace="10m",
        )
    )
    audit = tmp_path / "audit.jsonl"
    register_output(audit)
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    monkeypatch.setenv("NOTIFY_URL", receiver.url)
    monkeypatch.setenv("NOTIFY_DEAD", dead_url)
    ctx = Context(parser().parse_args(["run", "--config", str(config), "--audit-file", str(audit)]))
    metrics = Metrics()
    followup = Followup.build(ctx.config, ctx.engine, metrics)
    assert followup.notifier is not None
    followup.notifier.backoff = 0.05  # the CLI test keeps the default; here passes are many
    scheduler = Scheduler(ctx.engine, metrics=metrics, after=followup.after)
    yield scheduler, followup, metrics, ctx
    for user in teamcity_sim.state.users.values():
        for token in user.tokens.values():
            register_secret(token.value)


def _sample(metrics: Metrics, line_start: str) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start}")


def test_expiring_is_sent_once_and_a_refusing_receiver_is_counted(daemon, receiver, teamcity_sim):
    scheduler, followup, metrics, ctx = daemon
    spec = ctx.config.credentials[0]
    [outcome] = scheduler.run_pass()
    assert outcome.result == "rotated"
    assert receiver.wait_for(1)[0]["title"] == "rotator rotated: airflow-teamcity-token"

    teamcity_sim.faults.fail_next(10, status=500, only="/tokens", method="POST")
    deadline = time.monotonic() + 5
    while ctx.engine.due(spec, ctx.engine.current(spec), ctx.engine.clock()) is None:
        assert time.monotonic() < deadline, "the credential never came within its lead time"
        time.sleep(0.05)  # waiting on the wall clock (lead = lifetime - 1s), polled
    [outcome] = scheduler.run_pass()
    assert outcome.result == "failed"
    assert followup.close(10)
    titles = receiver.titles()
    assert titles[1:] == [
        "rotator failed: airflow-teamcity-token",
        "rotator expiring: airflow-teamcity-token",
    ]
    [expiring] = [p for p in receiver.posts if p["title"].startswith("rotator expiring")]
    assert "within its lead time, and was not replaced" in expiring["message"]

    [outcome] = scheduler.run_pass()  # still failing, still expiring
    assert outcome.result == "failed" and followup.close(10)
    assert receiver.titles()[3:] == ["rotator failed: airflow-teamcity-token"]  # not expiring

    assert _sample(metrics, 'rotator_notify_failures_total{event="failed"}') == 2
    assert _sample(metrics, 'rotator_notify_failures_total{event="rotated"}') == 0
    assert _sample(metrics, 'rotator_notifications_total{event="expiring"}') == 1
    assert _sample(metrics, 'rotator_credential_failing{credential="airflow-teamcity-token"}') == 1


def test_a_hanging_receiver_bounds_the_worker_and_never_the_caller(receiver):
    receiver.hang.set()
    target = NotifySpec("notify[0]", ("failed",), url_env="NOTIFY_HANG")
    results: list[tuple[str, bool]] = []
    notifier = Notifier(
        [target],
        attempts=2,
        timeout=0.5,
        backoff=0.1,
        on_result=lambda e, ok: results.append((e, ok)),
    )
    os.environ["NOTIFY_HANG"] = receiver.url
    try:
        started = time.monotonic()
        assert notifier.submit(Notice("failed", "c", "boom")) == 1
        submitted = time.monotonic() - started
        assert notifier.flush(10)
        spent = time.monotonic() - started
    finally:
        del os.environ["NOTIFY_HANG"]
    assert submitted < 0.1, submitted  # the caller only queues
    assert results == [("failed", False)]
    # two attempts cut at 0.5 s each plus 0.1 s backoff: well under the 10 s we allowed
    assert 1.0 <= spent < 3.0, spent


STANDING_NOTIFY = [{"url_env": "NOTIFY_URL", "on": ["foreign-expiring"]}]


def test_the_daemon_audits_standing_tokens_on_its_schedule_and_tells_once(
    tmp_path, monkeypatch, teamcity_sim, teamcity_admin_token, receiver
):
    from rotator.targets.teamcity import TeamCityClient

    register_secret(
        TeamCityClient(teamcity_sim.url, teamcity_admin_token)
        .create_token("teamcity-bot", "left-by-hand")
        .value
    )
    teamcity_sim.clear_requests()
    config = tmp_path / "rotator.toml"
    config.write_text(
        rotator_toml(
            store=tmp_path / "store.db",
            teamcity=teamcity_sim.url,
            audit={"teamcity": {"every": "1h", "users": ["teamcity-bot"]}},
            notify=STANDING_NOTIFY,
        )
    )
    register_output(tmp_path / "audit.jsonl")
    monkeypatch.setenv("TEAMCITY_TOKEN", teamcity_admin_token)
    monkeypatch.setenv("NOTIFY_URL", receiver.url)
    args = ["run", "--config", str(config), "--audit-file", str(tmp_path / "audit.jsonl")]
    ctx = Context(parser().parse_args(args))
    followup = Followup.build(ctx.config, ctx.engine)
    scheduler = Scheduler(ctx.engine, after=followup.after)
    scheduler.run_pass()
    scheduler.run_pass()  # within the hour: not audited again
    assert followup.close(10)
    [notice] = receiver.wait_for(1)
    assert notice["title"] == "rotator foreign-expiring:"
    assert "teamcity-bot/left-by-hand: never expires" in notice["message"]
    assert len(receiver.posts) == 1
    listed = [r for r in teamcity_sim.requests if r.path.endswith("/tokens")]
    assert {r.method for r in listed} == {"GET"}  # read-only: it revoked nothing
    assert len([r for r in listed if "teamcity-bot" in r.path]) == 1
