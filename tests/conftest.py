"""Fixtures live in ``tests/fixtures/``, one module per real part, each owned by one suite."""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "tests.fixtures.leaks",
        # session servers set up in the background from the end of collection
        "tests.fixtures.early",
        "tests.fixtures.stores",
        "tests.fixtures.teamcity",
        "tests.fixtures.airflow",
        "tests.fixtures.recorder",
        # registered once here, not imported per package: each import would start its own
        # session stack (pytest keys a session fixture by where it is defined)
        "tests.fixtures.airflow_stack",
    )
    if importlib.util.find_spec(name) is not None
]
