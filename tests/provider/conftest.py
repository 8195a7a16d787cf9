"""The provider's suites share the session's full Airflow stack and the TeamCity simulator."""

from tests.fixtures.airflow_stack import airflow_stack  # noqa: F401
