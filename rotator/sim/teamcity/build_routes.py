"""HTTP endpoints for builds: ``/app/rest/buildQueue`` (queue, read, cancel, delete) and
``/app/rest/builds`` (lists, one build, cancel, tags), following the contract's "Builds"
section and the REST plugin's ``BuildQueueRequest``/``BuildRequest``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rotator.sim.teamcity import build_finder, render
from rotator.sim.teamcity import builds as lifecycle
from rotator.sim.teamcity import locator as loc
from rotator.sim.teamcity.builds import REST_CANCEL_COMMENT, Build
from rotator.sim.teamcity.call import (
    TEXT,
    Answer,
    Call,
    Text,
    entity,
    produces,
    routes,
    str_field,
)
from rotator.sim.teamcity.errors import BadRequest, Forbidden, LocatorError, NotFoundError
from rotator.sim.teamcity.model import BuildType, Model

# -- queueing ------------------------------------------------------------------------------


def queue_build(model: Model, call: Call) -> Answer:
    """``POST /buildQueue``: the queued build in long form (``?fields`` is not read here)."""
    data = call.entity()
    build_type = _posted_build_type(model, call, data)
    comment = _comment(data.get("comment"))
    branch = str_field(data, "branchName", "build")
    properties = _properties(data.get("properties"))
    tags = _tag_names(data.get("tags"))
    personal = _flag(data.get("personal"), "personal")
    options = data.get("triggeringOptions")
    at_top = _flag(options.get("queueAtTop"), "queueAtTop") if isinstance(options, dict) else False
    at_top = at_top or (call.param("moveToTop") or "").lower() == "true"
    call.principal.require(model, build_type.project, "run_build")
    build = lifecycle.queue(
        model,
        build_type,
        call.principal,
        branch=branch,
        personal=personal,
        comment=comment,
        properties=properties,
        tags=tags,
        at_top=at_top,
    )
    return entity(call, "build", render.build(model, build, long=True))


def _posted_build_type(model: Model, call: Call, data: dict[str, Any]) -> BuildType:
    posted = data.get("buildType")
    if posted is None:
        bt_id = str_field(data, "buildTypeId", "build")
        if bt_id is None:
            raise BadRequest("No 'buildType' element in the posted entry.")
        found = model.build_types.get(bt_id)
        if found is None or not call.principal.can(model, found.project, "view_project"):
            raise NotFoundError(f"No build type found by submitted id '{bt_id}'")
        return found
    if not isinstance(posted, dict):
        raise BadRequest("Wrong value type for 'buildType' of build: expected an object")
    bt_id = str_field(posted, "id", "buildType")
    locator = str_field(posted, "locator", "buildType")
    internal = str_field(posted, "internalId", "buildType")
    if bt_id is None and locator is None and internal is None:
        raise BadRequest(
            "No build type specified. Either 'id', 'internalId' or 'locator' attribute should "
            "be present."
        )
    if bt_id is None and locator is not None:
        return model.locate_build_type(locator, call.principal)
    if bt_id is None:
        # The simulator keeps no internal ids: every internal id is unknown.
        raise NotFoundError(f"No build type nor template is found by internal id '{internal}'.")
    found = model.build_types.get(bt_id)
    if found is None or not call.principal.can(model, found.project, "view_project"):
        raise NotFoundError(f"No build type nor template is found by id '{bt_id}'.")
    return found


def _comment(posted: Any) -> str | None:
    if posted is None:
        return None
    if not isinstance(posted, dict):
        raise BadRequest("Wrong value type for 'comment' of build: expected an object")
    text = str_field(posted, "text", "comment")
    if text is None:
        raise BadRequest("Submitted comment does not have 'text' set.")
    return text


def _properties(posted: Any) -> dict[str, str]:
    if posted is None:
        return {}
    items = posted.get("property", []) if isinstance(posted, dict) else None
    if not isinstance(items, list):
        raise BadRequest("Wrong value type for 'properties' of build: expected a property list")
    out: dict[str, str] = {}
    for item in items:
        item = item if isinstance(item, dict) else {}
        name = str_field(item, "name", "property")
        if not name:
            raise BadRequest("Parameter name cannot be empty.")
        value = str_field(item, "value", "property")
        if value is None:
            raise BadRequest(
                f"Parameter value for the parameter '{name}' should be specified (can be \"\")."
            )
        out[name] = value
    return out


def _tag_names(posted: Any) -> list[str]:
    if posted is None:
        return []
    items = posted.get("tag", []) if isinstance(posted, dict) else None
    if not isinstance(items, list):
        raise BadRequest("Wrong value type for 'tags': expected a tag list")
    names = []
    for item in items:
        name = str_field(item if isinstance(item, dict) else {}, "name", "tag")
        if not name:
            raise BadRequest("Tag name should not be empty.")
        names.append(name)
    return names


def _flag(value: Any, name: str) -> bool:
    """A boolean field; XML bodies carry it as the text ``true``/``false``."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"Wrong value type for '{name}': expected true or false")


# -- reading -------------------------------------------------------------------------------


def _fields(call: Call) -> loc.Spec | None:
    raw = call.param("fields")
    return loc.parse_fields(raw) if raw else None


def _one(model: Model, call: Call, build: Build) -> Answer:
    body = render.build(model, build, long=True)
    return entity(call, "build", loc.apply_fields(body, _fields(call)))


def _listing(model: Model, call: Call, path: str, *, queue_only: bool) -> Answer:
    text = call.param("locator") or ""
    spec = _fields(call)  # a malformed spec is a 400 before anything is looked up
    found, more = build_finder.page(model, text, call.principal, queue_only=queue_only)
    body: dict[str, Any] = {
        "count": len(found),
        "href": f"{path}?locator={quote(text, safe=':,()')}" if text else path,
        "nextHref": _next_href(path, text) if more else None,
        # The contract could not verify whether an empty list has "build": [] or no "build";
        # Jackson writes the empty list, so the simulator does too.
        "build": [render.build(model, b, long=False) for b in found],
    }
    return entity(call, "builds", loc.apply_fields(body, spec))


def _next_href(path: str, text: str) -> str:
    parsed = loc.parse(text)
    count = parsed.number("count", build_finder.DEFAULT_COUNT) or 0
    start = parsed.number("start", 0) or 0
    dims = [
        f"{name}:({value})" if any(c in value for c in ",:") else f"{name}:{value}"
        for name, values in parsed.dims.items()
        if name not in ("count", "start")
        for value in values
    ]
    if parsed.single is not None:
        dims.append(f"id:{parsed.single}")
    dims += [f"count:{count}", f"start:{start + count}"]
    return f"{path}?locator={quote(','.join(dims), safe=':,()')}"


def list_builds(model: Model, call: Call) -> Answer:
    return _listing(model, call, "/app/rest/builds", queue_only=False)


def list_queue(model: Model, call: Call) -> Answer:
    return _listing(model, call, "/app/rest/buildQueue", queue_only=True)


def get_build(model: Model, call: Call, locator: str) -> Answer:
    spec = _fields(call)
    build = build_finder.first(model, locator, call.principal)
    return entity(call, "build", loc.apply_fields(render.build(model, build, long=True), spec))


def get_queued_build(model: Model, call: Call, locator: str) -> Answer:
    """``/buildQueue/<loc>`` keeps answering after the start (``id:`` finds any state)."""
    spec = _fields(call)
    build = _queue_lookup(model, call, locator, queued_only=False)
    return entity(call, "build", loc.apply_fields(render.build(model, build, long=True), spec))


def _queue_lookup(model: Model, call: Call, locator: str, *, queued_only: bool) -> Build:
    lifecycle.advance(model)
    parsed = loc.parse(locator)
    raw = parsed.single if parsed.single is not None else parsed.get("id") or parsed.get("taskId")
    if raw is not None and (parsed.single is not None or len(parsed.dims) == 1):
        if not (raw.isascii() and raw.isdigit()):
            raise LocatorError(f"Invalid value of dimension 'id': '{raw}'. Should be a number.")
        build = model.builds.get(int(raw))
        if build is None or not lifecycle.can_view(model, build, call.principal):
            if queued_only or parsed.single is not None:
                raise NotFoundError(f"No build promotion can be found by promotion id {raw}")
            raise NotFoundError(f"No build found by id '{raw}'.")
        if queued_only and build.state != "queued":
            raise NotFoundError(
                f"No queued build with id '{raw}' can be found (build already started or "
                "finished?)."
            )
        return build
    found = build_finder.find(model, locator, call.principal, queue_only=True)
    if not found:
        raise NotFoundError(f"Nothing is found by locator '{locator}'.")
    return found[0]


# -- canceling -----------------------------------------------------------------------------


def _cancel_request(call: Call) -> tuple[str | None, bool]:
    data = call.entity()
    return str_field(data, "comment", "buildCancelRequest"), _flag(
        data.get("readdIntoQueue"), "readdIntoQueue"
    )


def cancel_queued(model: Model, call: Call, locator: str) -> Answer:
    """``POST /buildQueue/<loc>``: cancel a queued build; the answer is the canceled build."""
    comment, readd = _cancel_request(call)
    if readd:
        raise BadRequest("Restore in queue is not supported for queued builds.")
    build = _queue_lookup(model, call, locator, queued_only=True)
    if not lifecycle.can_stop(model, build, call.principal):
        raise Forbidden("Build was not canceled. Probably not sufficient permissions.")
    lifecycle.cancel(model, build, call.principal.user.username, comment)
    return entity(call, "build", render.build(model, build, long=True))


def delete_queued(model: Model, call: Call, locator: str) -> Answer:
    """``DELETE /buildQueue/<loc>``: cancel if still queued, then remove for good (204)."""
    build = _queue_lookup(model, call, locator, queued_only=False)
    if build.started:
        raise NotFoundError(
            f"No queued build with id '{build.id}' can be found (build already started or "
            "finished?)."
        )
    if not lifecycle.can_stop(model, build, call.principal):
        raise Forbidden("Build was not canceled. Probably not sufficient permissions.")
    del model.builds[build.id]
    return 204, None


def cancel_build(model: Model, call: Call, locator: str) -> Answer:
    """``POST /builds/<loc>``: cancel a queued or running build (reads ``?fields``)."""
    comment, readd = _cancel_request(call)
    spec = _fields(call)
    build = build_finder.first(model, locator, call.principal)
    if build.state == "finished":
        if build.canceled is None:
            raise BadRequest("Cannot cancel finished build")
    elif not lifecycle.can_stop(model, build, call.principal):
        raise Forbidden("You do not have enough permissions to cancel the build")
    elif build.state == "queued":
        lifecycle.cancel(model, build, call.principal.user.username, comment)
    else:
        lifecycle.cancel(model, build, call.principal.user.username, comment or REST_CANCEL_COMMENT)
        if readd:
            lifecycle.requeue_copy(model, build, call.principal)
    return entity(call, "build", loc.apply_fields(render.build(model, build, long=True), spec))


# -- tags ----------------------------------------------------------------------------------


def _taggable(model: Model, call: Call, locator: str) -> Build:
    build = build_finder.first(model, locator, call.principal)
    project = model.build_types[build.build_type].project
    # TeamCity's "Tag build" permission; the simulator grants it with "Run build".
    call.principal.require(model, project, "run_build", shown="Tag build")
    return build


def get_tags(model: Model, call: Call, locator: str) -> Answer:
    build = build_finder.first(model, locator, call.principal)
    return entity(call, "tags", loc.apply_fields(render.tags(build.tags), _fields(call)))


def post_tags(model: Model, call: Call, locator: str) -> Answer:
    """JSON/XML ``{"tag": [...]}`` adds and answers the posted tags; ``text/plain`` adds one
    and answers its name."""
    if call.content_type() == TEXT:
        name = call.text()
        if not name:
            raise BadRequest("Cannot apply empty tag, should have non empty request body")
        build = _taggable(model, call, locator)
        build.tags = list(dict.fromkeys([*build.tags, name]))
        return 200, Text(name)
    names = _tag_names(call.entity())
    build = _taggable(model, call, locator)
    build.tags = list(dict.fromkeys([*build.tags, *names]))
    return entity(call, "tags", render.tags(names))


def put_tags(model: Model, call: Call, locator: str) -> Answer:
    names = _tag_names(call.entity())
    build = _taggable(model, call, locator)
    build.tags = list(dict.fromkeys(names))
    return entity(call, "tags", render.tags(names))


# A text/plain POST answers text/plain, a JSON/XML one an entity: both are acceptable.
post_tags = produces("application/xml", "application/json", TEXT)(post_tags)

_LOC = r"(?P<locator>[^/]+)"
ROUTES = routes(
    [
        ("GET", r"/app/rest/builds/?", list_builds),
        ("GET", rf"/app/rest/builds/{_LOC}", get_build),
        ("POST", rf"/app/rest/builds/{_LOC}", cancel_build),
        ("GET", rf"/app/rest/builds/{_LOC}/tags/?", get_tags),
        ("POST", rf"/app/rest/builds/{_LOC}/tags/?", post_tags),
        ("PUT", rf"/app/rest/builds/{_LOC}/tags/?", put_tags),
        ("GET", r"/app/rest/buildQueue/?", list_queue),
        ("POST", r"/app/rest/buildQueue/?", queue_build),
        ("GET", rf"/app/rest/buildQueue/{_LOC}", get_queued_build),
        ("POST", rf"/app/rest/buildQueue/{_LOC}", cancel_queued),
        ("DELETE", rf"/app/rest/buildQueue/{_LOC}", delete_queued),
    ]
)
