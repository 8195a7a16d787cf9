"""The provider's suites share the session's full Airflow stack (``airflow_stack``, registered
once in ``tests/conftest.py``) and the TeamCity simulator."""
