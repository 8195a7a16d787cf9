"""Rotator inside Airflow's UI: a "Credentials" page and the JSON behind it.

Airflow loads ``plugin.RotatorPlugin`` through the ``airflow.plugins`` entry point in every
process it starts, so this package imports nothing at module level beyond what the plugin class
needs; the FastAPI app (``app.py``) is built only when the API server asks for it.

Modules: ``plugin`` (what Airflow loads), ``app`` (the FastAPI app and its routers), ``source``
(the config and the store the page reads: the ones the secrets backend reads), ``api`` (the
read-only JSON, behind Airflow's own auth), ``page`` (the HTML page).
"""
