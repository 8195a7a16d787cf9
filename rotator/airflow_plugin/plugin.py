"""The Airflow plugin: a "Credentials" entry in Airflow's navigation and the FastAPI app under
``/rotator`` that serves it.

Airflow imports this module in every process (scheduler, DAG processor, workers, CLI), but only
the API server mounts ``fastapi_apps``: the app is therefore built on first access, not at
import, and a failure to build it is logged rather than raised, because an exception here would
stop Airflow's API server from starting at all.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

URL_PREFIX = "/rotator"
PAGE = "credentials"


def _base_path() -> str:
    """The path Airflow is served under (``[api] base_url``), so the iframe's ``href`` works
    behind a reverse proxy that serves Airflow at ``https://host/airflow/``."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return urlsplit(base).path.rstrip("/")


class RotatorPlugin(AirflowPlugin):
    """Rotator's Credentials page (read only; Airflow's own login and permissions guard it)."""

    name = "rotator"

    @cached_property
    def external_views(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [
            {
                "name": "Credentials",
                "href": f"{_base_path()}{URL_PREFIX}/{PAGE}",
                "url_route": "rotator-credentials",
                "destination": "nav",
                "nav_top_level": True,
            }
        ]

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        try:
            from rotator.airflow_plugin.app import create_app

            app = create_app()
        except Exception:
            log.exception("Rotator's Credentials page is off: its FastAPI app failed to build")
            return []
        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Rotator credentials"}]
