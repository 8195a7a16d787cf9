"""HTTP endpoints for a user's access tokens: ``/app/rest/users/{user}/tokens`` (list, create,
delete), following the contract's "Access tokens" section.

Kept apart from the user lookups in ``discovery.py`` because tokens are what Rotator rotates:
the only place a token's value leaves the server is the create answer built here (the entity
itself is ``render.token``), and who may manage whose tokens is ``Model.create_token``'s rule.
"""

from __future__ import annotations

import re
from datetime import UTC

from rotator.sim.teamcity import render
from rotator.sim.teamcity.call import Answer, Call, entity, routes, str_field
from rotator.sim.teamcity.errors import BadRequest
from rotator.sim.teamcity.model import Model


def _fields(call: Call) -> set[str] | None:
    """The names inside ``?fields=token(...)``; None when the spec does not name any."""
    raw = (call.query.get("fields") or [""])[0]
    match = re.search(r"token\(([^)]*)\)", raw)
    return {f.strip() for f in match.group(1).split(",")} if match else None


def list_tokens(model: Model, call: Call, user: str) -> Answer:
    found = model.locate_user(user, call.principal)
    fields = _fields(call) or {"name"}
    tokens = [
        render.token(t, False, fields) for t in sorted(found.tokens.values(), key=lambda t: t.name)
    ]
    return entity(call, "tokens", {"count": len(tokens), "token": tokens})


def create_token(model: Model, call: Call, user: str, name: str | None = None) -> Answer:
    found = model.locate_user(user, call.principal)
    data = call.entity() if call.body else {}
    token_name = name if name is not None else str_field(data, "name", "token")
    expires = None
    raw_expiry = str_field(data, "expirationTime", "token")
    if raw_expiry:
        expires = render.parse_tc_date(raw_expiry).astimezone(UTC)
    restrictions = _restrictions(data.get("permissionRestrictions"))
    token = model.create_token(found, token_name or "", expires, restrictions, call.principal)
    return entity(call, "token", render.token(token, with_value=True))


def _restrictions(block: object) -> list[tuple[str, str]]:
    """``permissionRestrictions`` as (project id, permission) pairs, permission lower-cased as
    the model names them; 400 for any item without both ids as strings."""
    restrictions: list[tuple[str, str]] = []
    if block is None:
        return restrictions
    items = block.get("permissionRestriction") if isinstance(block, dict) else None
    if not isinstance(items, list):
        raise BadRequest("permissionRestrictions must hold a permissionRestriction list")
    for item in items:
        try:
            project = item["project"]["id"]
            permission = item["permission"]["id"]
        except (KeyError, TypeError):
            raise BadRequest(
                "each permissionRestriction needs project.id and permission.id"
            ) from None
        if not isinstance(project, str) or not isinstance(permission, str):
            raise BadRequest("project.id and permission.id must be strings")
        restrictions.append((project, permission.lower()))
    return restrictions


def delete_token(model: Model, call: Call, user: str, name: str) -> Answer:
    found = model.locate_user(user, call.principal)
    model.delete_token(found, name, call.principal)
    return 204, None


_TOKENS = r"/app/rest/users/(?P<user>[^/]+)/tokens"
ROUTES = routes(
    [
        ("GET", _TOKENS, list_tokens),
        ("POST", _TOKENS, create_token),
        ("POST", _TOKENS + r"/(?P<name>[^/]+)", create_token),
        ("DELETE", _TOKENS + r"/(?P<name>[^/]+)", delete_token),
    ]
)
