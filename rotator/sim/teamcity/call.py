"""One request as the endpoint functions see it, and what they answer with.

Kept apart from ``handler.py`` (the HTTP cycle and routing) so that the endpoint modules
(the ``*_routes.py`` files and ``discovery.py``) share one request type and one route-table
shape without importing each other or the handler.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rotator.sim.teamcity import render
from rotator.sim.teamcity.errors import (
    BadRequest,
    MalformedBody,
    NotAcceptable,
    UnsupportedMediaType,
)
from rotator.sim.teamcity.model import Principal

JSON, XML, TEXT = "application/json", "application/xml", "text/plain"


AUTH_PREFIXES = ("/httpAuth", "/guestAuth")


def strip_auth_prefix(path: str) -> tuple[str, bool]:
    """TeamCity's documented URL prefixes: ``/httpAuth/app/rest/...`` is the same API with
    HTTP (Basic or bearer) authentication, as an unprefixed request; ``/guestAuth/...`` acts
    as the guest user. Returns the path to route and whether it is a guest request."""
    for prefix in AUTH_PREFIXES:
        if path.startswith(prefix + "/"):
            return path[len(prefix) :], prefix == "/guestAuth"
    return path, False


def basic_credentials(credential: str) -> tuple[str, str] | None:
    """The ``(user, password)`` of a Basic ``Authorization`` value, or None when it does not
    decode; each caller answers that in its own words (a user login and a build's login
    differ)."""
    try:
        decoded = base64.b64decode(credential.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    principal: Principal
    via_session: bool
    media: str = XML

    def param(self, name: str) -> str | None:
        """A query parameter's first value, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def accepts(self, produces: tuple[str, ...]) -> str:
        """The media type to answer with, or 406."""
        accept = (self.headers.get("Accept") or "*/*").lower()
        wanted = [part.split(";")[0].strip() for part in accept.split(",") if part.strip()]
        for media in wanted:
            if media in produces:
                return media
            if media == "text/xml" and XML in produces:
                return XML
            if media in ("*/*", "application/*") or (media == "text/*" and TEXT in produces):
                return produces[0]
        raise NotAcceptable("unsupported Accept")

    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def entity(self) -> dict[str, Any]:
        """The request body as a dict (JSON or XML), or 415/400."""
        ctype = self.content_type()
        if ctype == JSON:
            try:
                data = json.loads(self.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise MalformedBody(f"Could not parse JSON request body: {exc}") from None
            if not isinstance(data, dict):
                raise MalformedBody("Request body must be a JSON object")
            return data
        if ctype in (XML, "text/xml"):
            return render.from_xml(self.body)
        raise UnsupportedMediaType("unsupported Content-Type")

    def text(self) -> str:
        if self.content_type() not in (TEXT, ""):
            raise UnsupportedMediaType("unsupported Content-Type")
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("Request body is not valid UTF-8") from None


@dataclass
class Text:
    """A ``text/plain`` answer."""

    text: str


Answer = tuple[int, Any]
Route = tuple[str, re.Pattern[str], Callable[..., Answer]]


def routes(table: list[tuple[str, str, Callable[..., Answer]]]) -> list[Route]:
    """A module's ``(method, path regex, endpoint)`` table, compiled for ``handler.py``, which
    matches the whole path (``fullmatch``) and passes named groups as keyword arguments."""
    return [(method, re.compile(pattern), endpoint) for method, pattern, endpoint in table]


def entity(call: Call, root: str, body: dict[str, Any], status: int = 200) -> Answer:
    """An entity answer, rendered later as JSON or XML (``root`` names the XML element)."""
    return status, (root, body, call.media)


def str_field(data: dict[str, Any], key: str, what: str) -> str | None:
    """``data[key]`` as a string (numbers accepted, as Jackson does), None if absent, else 400."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f"Wrong value type for '{key}' of {what}: expected a string")
    return str(value)


def produces(*media: str):  # type: ignore[no-untyped-def]
    """Mark an endpoint function with the media types it answers in (default XML, JSON)."""

    def mark(func):  # type: ignore[no-untyped-def]
        func.produces = media
        return func

    return mark
