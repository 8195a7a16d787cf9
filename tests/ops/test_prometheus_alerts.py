"""The alert rules and the dashboard against the real things.

- ``promtool check rules`` and ``promtool test rules`` on ``ops/prometheus/``;
- a real Prometheus (Debian's package, on loopback) scrapes a real ``rotator run
  --metrics-port`` (a subprocess, rotating against the TeamCity simulator), a rotation is made
  to fail, and the alert is seen going pending, then firing, through Prometheus's HTTP API. The
  rules are a test copy of the shipped file with every ``for:`` cut to 2 s; the expressions
  are the shipped ones;
- every metric name the dashboard and the rules use is one the live daemon serves, and every
  dashboard query runs in that Prometheus.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from rotator.servers.process import free_port
from rotator.servers.prometheus import Prometheus
from rotator.sim.teamcity import DEMO_SEED, TeamCitySimulator
from tests.fixtures.leaks import record_output, register_output, register_secret

OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "prometheus" / "rotator-alerts.yml"
DASHBOARD = OPS / "grafana" / "rotator-dashboard.json"
ROTATOR = [sys.executable, "-m", "rotator"]
needs_prometheus = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="Debian's prometheus package is not installed (ops/system-packages.txt lists it)",
)

CONFIG = """
[store]
kind = "file"
path = "{store}"

[teamcity]
url = "{url}"
timeout = 2
retries = 0

[[credentials]]                       # rotated once, healthy all along
name = "steady"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "steady_conn"
every = "7d"
lifetime = "10d"

[[credentials]]                       # due every 3 s: the one the test makes fail
name = "busy"
type = "teamcity-token"
user = "airflow-bot"
conn_id = "busy_conn"
every = "3s"
grace = "0s"

[[notify]]                            # nothing listens: its counters are served and count
url_env = "NOTIFY_URL"
on = ["failed"]
"""


@needs_prometheus
def test_promtool_checks_and_unit_tests_the_rules():
    for argv in (
        ["promtool", "check", "rules", str(RULES)],
        ["promtool", "test", "rules", "rotator-alerts.test.yml"],
    ):
        result = subprocess.run(
            argv, cwd=RULES.parent, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def _fast_rules(path: Path) -> Path:
    """The shipped rules with every ``for:`` cut to 2 s (the expressions unchanged)."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = "2s"
    path.write_text(yaml.safe_dump(doc))
    return path


def _wait(what: str, probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # poll interval


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """TeamCity simulator, ``rotator run --metrics-port --tick 1`` and Prometheus scraping it."""
    work = tmp_path_factory.mktemp("prometheus-stack")
    admin = f"adm-{secrets.token_urlsafe(24)}"
    register_secret(admin)
    with TeamCitySimulator(admin_token=admin, seed=DEMO_SEED) as sim:
        config = work / "rotator.toml"
        config.write_text(CONFIG.format(store=work / "store.db", url=sim.url))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
        env |= {"TEAMCITY_TOKEN": admin, "NOTIFY_URL": f"json://127.0.0.1:{free_port()}/x"}
        log = work / "daemon.log"
        register_output(log)
        argv = [*ROTATOR, "--config", str(config), "run", "--metrics-port", str(port)]
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [*argv, "--tick", "1"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        prometheus = None
        try:
            _wait(
                "the daemon's first rotation",
                lambda: _served(metrics_url, "rotator_credential_expiry_seconds{"),
            )
            prometheus = Prometheus(
                work / "prom", [f"127.0.0.1:{port}"], [_fast_rules(work / "rules.yml")]
            ).start()
            yield {"sim": sim, "prometheus": prometheus, "metrics_url": metrics_url}
        finally:
            if prometheus is not None:
                prometheus.stop()
            daemon.terminate()
            daemon.wait(timeout=30)
            for user in sim.state.users.values():
                for token in user.tokens.values():
                    register_secret(token.value)
            record_output("rotator run (prometheus stack)", log.read_text(errors="replace"))


def _served(url: str, needle: str) -> bool:
    try:
        return needle in requests.get(url, timeout=1).text
    except requests.RequestException:
        return False


def _states(prometheus: Prometheus, name: str) -> dict[str, str]:
    """credential -> state of the alert ``name`` (pending or firing)."""
    return {
        a["labels"].get("credential", ""): a["state"]
        for a in prometheus.alerts()
        if a["labels"]["alertname"] == name
    }


@needs_prometheus
def test_a_failed_rotation_goes_pending_then_firing_in_prometheus(stack):
    prometheus, sim = stack["prometheus"], stack["sim"]
    # healthy first: Prometheus scraped both credentials as not failing, and nothing alerts
    query = 'rotator_credential_failing{credential="busy"}'
    _wait("a scrape of busy", lambda: prometheus.api("query", query=query)["result"])
    assert prometheus.api("query", query=query)["result"][0]["value"][1] == "0"
    assert _states(prometheus, "RotatorRotationFailed") == {}

    sim.faults.fail_next(100_000, status=500, only="/tokens", method="POST")
    seen: list[str] = []

    def firing() -> bool:
        state = _states(prometheus, "RotatorRotationFailed").get("busy")
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        return state == "firing"

    started = time.monotonic()
    _wait("RotatorRotationFailed to fire", firing)
    took = time.monotonic() - started
    assert seen == ["pending", "firing"], seen
    assert set(_states(prometheus, "RotatorRotationFailed")) == {"busy"}  # steady is fine
    # the busy credential fails every pass now: the daemon's heartbeat stops too
    _wait(
        "RotatorNoSuccessfulPass",
        lambda: (
            prometheus.alerts()
            and any(
                a["labels"]["alertname"] == "RotatorNoSuccessfulPass" for a in prometheus.alerts()
            )
        ),
    )
    print(f"failure to firing: {took:.1f}s")


METRIC = re.compile(r"\b(rotator_[a-z_]+|up)\b")


def _served_names(text: str) -> set[str]:
    return {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _dashboard_exprs() -> list[str]:
    import json

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    return exprs


@needs_prometheus
def test_the_dashboard_and_rules_use_only_served_names_and_every_query_runs(stack):
    prometheus = stack["prometheus"]
    _wait(
        "a failure counted",
        lambda: _served(stack["metrics_url"], "rotator_rotation_failures_total{"),
    )
    served = _served_names(requests.get(stack["metrics_url"], timeout=5).text) | {"up"}
    exprs = _dashboard_exprs()
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert len(used) >= 12, used
    assert used <= served, f"dashboard names not served: {sorted(used - served)}"
    rules = yaml.safe_load(RULES.read_text())
    rule_names = {m for g in rules["groups"] for r in g["rules"] for m in METRIC.findall(r["expr"])}
    assert rule_names <= served, f"rule names not served: {sorted(rule_names - served)}"

    for expr in exprs:
        if expr.startswith("label_values("):
            continue
        query = expr.replace("$__rate_interval", "1m").replace('"$credential"', '".*"')
        result = prometheus.api("query", query=query)["result"]
        assert result, f"no data for dashboard query {query}"
