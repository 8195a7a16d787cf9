"""Turning TeamCity's answers into data or into the error tree of ``errors.py``.

TeamCity answers JSON when asked (``Accept: application/json``) and errors as ``text/plain``
(``Responding with error, status code: 404 (Not Found).`` then ``Details: <Exception>: <text>``
and a hint); newer servers may answer errors as XML or JSON ``errors`` documents. The text
surfaced to users is TeamCity's own message (``No build type nor template is found by id
'X'.``), because that is what an operator will search for. A 2xx that is not JSON is an error
too: single sign-on proxies answer their login page with 200.
"""

from __future__ import annotations

import json
import re
from typing import Any

from defusedxml import ElementTree

from rotator.provider.teamcity.errors import (
    TeamCityAuthError,
    TeamCityBadResponse,
    TeamCityNotFound,
    TeamCityRequestError,
)

_DETAILS = re.compile(r"^Details:\s*(?:[\w.$]+(?:Exception|Error)\s*:\s*)?(.+)$", re.M)
MAX_TEXT = 300


def error_text(content_type: str, body: bytes) -> str:
    """TeamCity's message from an error body, whichever of its formats it came in."""
    text = body.decode("utf-8", "replace").strip()
    if "json" in content_type:
        try:
            errors = json.loads(text).get("errors") or []
            messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
            if any(messages):
                return "; ".join(m for m in messages if m)[:MAX_TEXT]
        except (ValueError, AttributeError):
            pass
    if "xml" in content_type:
        try:
            root = ElementTree.fromstring(text)
            messages = [el.text or "" for el in root.iter("message")]
            if any(messages):
                return "; ".join(m for m in messages if m)[:MAX_TEXT]
        except ElementTree.ParseError:
            pass
    if "html" in content_type or text.lstrip().startswith("<"):
        return f"an HTML page ({content_type or 'no content type'}), not TeamCity's REST API"
    match = _DETAILS.search(text)
    if match:
        return match.group(1).strip()[:MAX_TEXT]
    first = text.splitlines()[0] if text else ""
    return first[:MAX_TEXT] or "(empty body)"


def raise_for_error(method: str, url: str, status: int, content_type: str, body: bytes) -> None:
    """Raise the error class for a 4xx/5xx answer; return for a success status."""
    if status < 400:
        return
    text = error_text(content_type, body)
    if status in (401, 403):
        raise TeamCityAuthError(method, url, status, text)
    if status == 404:
        raise TeamCityNotFound(method, url, status, text)
    raise TeamCityRequestError(method, url, status, text)


def json_body(method: str, url: str, status: int, content_type: str, body: bytes) -> Any:
    """The JSON document of a success answer, or ``TeamCityBadResponse`` naming what came."""
    raise_for_error(method, url, status, content_type, body)
    if status == 204 or not body:
        return None
    if "json" not in content_type:
        raise TeamCityBadResponse(
            f"TeamCity at {url} answered {status} with {content_type or 'no content type'} "
            "instead of JSON: a login page from a proxy or single sign-on in front of TeamCity? "
            "Check the connection's host"
        )
    try:
        return json.loads(body)
    except ValueError:
        raise TeamCityBadResponse(
            f"TeamCity at {url} answered {status} with a JSON body that does not parse "
            f"({len(body)} bytes): truncated?"
        ) from None
