"""Prints what the model suite did (rules per kind, faults injected per kind, run outcomes) at
the end of a session that ran it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.model.world import STATS


def _families(counter: Counter) -> Counter:
    """``crash before:mint`` -> ``crash``; ``target 5xx`` and ``store unavailable`` stay."""
    out: Counter = Counter()
    for name, count in counter.items():
        out["crash" if name.startswith("crash") else name] += count
    return out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rules = sum(STATS.rules.values())
    if not rules:
        return
    airflow = sum(v for k, v in STATS.rules.items() if k.startswith("airflow "))
    write = terminalreporter.write_line
    write(
        f"model: {rules} rules ({rules - airflow} TeamCity-token, {airflow} Airflow), "
        f"{sum(STATS.faults.values())} faults injected"
    )
    write("  faults: " + ", ".join(f"{k} {v}" for k, v in sorted(_families(STATS.faults).items())))
    write("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(STATS.outcomes.items())))
