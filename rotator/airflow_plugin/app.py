"""The FastAPI app Airflow mounts at ``/rotator``: one place where its routers are listed.

Each router guards its own routes with Airflow's auth dependencies (``api.py``); a new feature
(e.g. an identity-aware trigger endpoint) adds its router to ``routers()`` and nothing else.
The app has no OpenAPI or docs pages: Airflow's own ``/docs`` is the API documentation users
know, and a second, unauthenticated schema page would only widen what anonymous callers see.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def routers() -> list[APIRouter]:
    """Every router of the app, in mount order. Add new ones here."""
    from rotator.airflow_plugin.api import router as api_router
    from rotator.airflow_plugin.identity import router as identity_router
    from rotator.airflow_plugin.page import router as page_router

    return [page_router, api_router, identity_router]


def create_app() -> FastAPI:
    app = FastAPI(title="Rotator", docs_url=None, redoc_url=None, openapi_url=None)
    for router in routers():
        app.include_router(router)
    return app
