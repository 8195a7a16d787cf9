"""The Credentials page: one self-contained HTML file (inline CSS and JS, no build step, nothing
fetched from elsewhere) that Airflow's UI shows in its frame and that reads ``api/v1`` with the
UI's own session cookie.

The HTML holds no data, so serving it needs no login; every number on it comes from the JSON
routes, which do. It sends a Content-Security-Policy that allows only this origin, so even a
credential name crafted to look like markup could not load or run anything.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'"
)


@cache
def _html() -> str:
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


@router.get("/credentials", response_class=HTMLResponse)
def page() -> HTMLResponse:
    return HTMLResponse(_html(), headers={"Content-Security-Policy": CSP})
