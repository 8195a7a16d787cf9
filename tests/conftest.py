"""Fixtures live in ``tests/fixtures/``, one module per real part, each owned by one suite."""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "tests.fixtures.leaks",
        "tests.fixtures.stores",
        "tests.fixtures.teamcity",
        "tests.fixtures.airflow",
    )
    if importlib.util.find_spec(name) is not None
]
