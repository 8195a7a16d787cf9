"""What a TeamCity client calls first: the server and its fields, users, projects and build
configurations (lists and single entities with their parameters, build types and
subprojects).

Where the contract is silent, the simulator does what the REST plugin's ``ServerRequest``,
``UserRequest``, ``ProjectRequest`` and ``BuildTypeRequest`` do; each such place says so.
"""

from __future__ import annotations

from typing import Any

from rotator.sim.teamcity import locator as loc
from rotator.sim.teamcity import render
from rotator.sim.teamcity.call import TEXT, Answer, Call, Text, entity, produces, routes
from rotator.sim.teamcity.errors import Forbidden, NotFoundError
from rotator.sim.teamcity.model import ROOT_PROJECT, BuildType, Model, Project

VERSION = "2025.07.1 (build 197398)"


def _server(model: Model) -> dict[str, Any]:
    return {
        "version": VERSION,
        "versionMajor": 2025,
        "versionMinor": 7,
        "buildNumber": "197398",
        "buildDate": "20250801T000000+0000",
        "currentTime": render.tc_date(model.now()),
        "startTime": render.tc_date(model.started),
        "internalId": "rotator-sim",
        "role": "main_node",
        "webUrl": model.base_url,
    }


def get_server(model: Model, call: Call) -> Answer:
    return entity(call, "server", _server(model))


@produces(TEXT)
def get_server_field(model: Model, call: Call, field: str) -> Answer:
    """``/server/{field}`` as ``Server.getFieldValue``: text/plain, aliases included."""
    server = _server(model)
    aliases = {
        "build": "buildNumber",
        "majorVersion": "versionMajor",
        "minorVersion": "versionMinor",
        "url": "webUrl",
    }
    name = aliases.get(field, field)
    if name not in server or name == "buildDate":
        raise NotFoundError(
            f"Field '{field}' is not supported. Supported are: version, versionMajor, "
            "versionMinor, buildNumber, startTime, currentTime, internalId, role, artifactsUrl."
        )
    return 200, Text(str(server[name]))


# -- users ---------------------------------------------------------------------------------


def get_user(model: Model, call: Call, user: str) -> Answer:
    return entity(call, "user", render.user_ref(model.locate_user(user, call.principal)))


def list_users(model: Model, call: Call) -> Answer:
    """All users; needs the global "View user profile" permission (administrators here),
    as ``UserFinder`` enforces it: 403 otherwise."""
    if not call.principal.user.admin:
        raise Forbidden('You do not have "View user profile" permission to list all users')
    users = [render.user_ref(u) for u in sorted(model.users.values(), key=lambda u: u.id)]
    body = {"count": len(users), "user": users}
    return entity(call, "users", _narrow(call, body))


# -- projects ------------------------------------------------------------------------------


def _visible_projects(model: Model, call: Call) -> list[Project]:
    # The root project is visible to everybody, as on a server.
    return [
        p
        for p in model.projects.values()
        if p.id == ROOT_PROJECT or call.principal.can(model, p.id, "view_project")
    ]


def _visible_build_types(model: Model, call: Call) -> list[BuildType]:
    return [
        bt
        for bt in model.build_types.values()
        if call.principal.can(model, bt.project, "view_project")
    ]


def _project(model: Model, call: Call, locator: str) -> Project:
    if locator.startswith("name:"):
        wanted = locator[5:]
        found = next((p for p in _visible_projects(model, call) if p.name == wanted), None)
        if found is None:
            raise NotFoundError(f"No project found by name '{wanted}'.")
        return found
    if locator in (ROOT_PROJECT, f"id:{ROOT_PROJECT}"):
        return model.projects[ROOT_PROJECT]
    return model.locate_project(locator, call.principal)


def _build_type(model: Model, call: Call, locator: str) -> BuildType:
    if locator.startswith("name:"):
        wanted = locator[5:]
        found = next((b for b in _visible_build_types(model, call) if b.name == wanted), None)
        if found is None:
            raise NotFoundError(f"No build type or template is found by name '{wanted}'.")
        return found
    return model.locate_build_type(locator, call.principal)


def get_project(model: Model, call: Call, project: str) -> Answer:
    """One project with its parameters, build types and subprojects, as ``Project.java``
    includes them in the long form."""
    found = _project(model, call, project)
    base = model.base_url
    children = [p for p in _visible_projects(model, call) if p.parent == found.id]
    types = [b for b in _visible_build_types(model, call) if b.project == found.id]
    parent = model.projects.get(found.parent) if found.parent else None
    body: dict[str, Any] = {
        **render.project_ref(found, base),
        "parentProject": render.project_ref(parent, base) if parent else None,
        "readOnlyUI": {"value": found.read_only_ui},
        "buildTypes": {
            "count": len(types),
            "buildType": [render.build_type_ref(model, b) for b in types],
        },
        "templates": {"count": 0, "buildType": []},
        "parameters": _parameters(model, found, f"/app/rest/projects/id:{found.id}"),
        "projects": {
            "count": len(children),
            "project": [render.project_ref(p, base) for p in children],
        },
    }
    return entity(call, "project", _narrow(call, body))


def list_projects(model: Model, call: Call) -> Answer:
    locator = loc.parse(call.param("locator") or "")
    locator.check(("id", "name", "parentProject", "affectedProject", "count", "start"))
    projects = [p for p in _visible_projects(model, call) if _project_matches(model, p, locator)]
    return _list(
        call,
        "projects",
        "project",
        [render.project_ref(p, model.base_url) for p in projects],
        locator,
    )


def _project_matches(model: Model, project: Project, locator: loc.Locator) -> bool:
    if locator.single is not None:
        return project.id == locator.single
    if locator.get("id") is not None and project.id != locator.get("id"):
        return False
    if locator.get("name") is not None and project.name != locator.get("name"):
        return False
    parent = locator.get("parentProject")
    if parent is not None and project.parent != _entity_id(parent):
        return False
    affected = locator.get("affectedProject")
    return affected is None or (
        project.id != _entity_id(affected) and _entity_id(affected) in model.ancestors(project.id)
    )


# -- build configurations ------------------------------------------------------------------


def list_build_types(model: Model, call: Call) -> Answer:
    return _build_type_list(model, call, None)


def project_build_types(model: Model, call: Call, project: str) -> Answer:
    return _build_type_list(model, call, _project(model, call, project).id)


def _build_type_list(model: Model, call: Call, project: str | None) -> Answer:
    locator = loc.parse(call.param("locator") or "")
    locator.check(("id", "name", "project", "affectedProject", "templateFlag", "count", "start"))
    template = loc.boolean(locator.get("templateFlag"), "templateFlag")
    types = [
        b
        for b in _visible_build_types(model, call)
        if (project is None or b.project == project)
        and not template  # the simulator has no templates
        and _build_type_matches(model, b, locator)
    ]
    items = [render.build_type_ref(model, b) for b in types]
    return _list(call, "buildTypes", "buildType", items, locator)


def _build_type_matches(model: Model, bt: BuildType, locator: loc.Locator) -> bool:
    if locator.single is not None:
        return bt.id == locator.single
    for name, actual in (("id", bt.id), ("name", bt.name)):
        if locator.get(name) is not None and actual != locator.get(name):
            return False
    wanted = locator.get("project")
    if wanted is not None and bt.project != _entity_id(wanted):
        return False
    affected = locator.get("affectedProject")
    return affected is None or _entity_id(affected) in model.ancestors(bt.project)


def get_build_type(model: Model, call: Call, build_type: str) -> Answer:
    found = _build_type(model, call, build_type)
    body = {
        **render.build_type_ref(model, found),
        "project": render.project_ref(model.projects[found.project], model.base_url),
        "parameters": _parameters(model, found, f"/app/rest/buildTypes/id:{found.id}"),
    }
    return entity(call, "buildType", _narrow(call, body))


# -- shared ---------------------------------------------------------------------------------


def _entity_id(value: str) -> str:
    parsed = loc.parse(value)
    return parsed.single if parsed.single is not None else parsed.get("id") or ""


def _parameters(model: Model, owner: Project | BuildType, href: str) -> dict[str, Any]:
    return render.properties(model.effective_parameters(owner), f"{href}/parameters")


def _narrow(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    raw = call.param("fields")
    return loc.apply_fields(body, loc.parse_fields(raw)) if raw else body


def _list(
    call: Call, root: str, item: str, items: list[dict[str, Any]], locator: loc.Locator
) -> Answer:
    start = locator.number("start", 0) or 0
    count = locator.number("count", len(items)) or 0
    page = items[start : start + count]
    body = {"count": len(page), "href": f"/app/rest/{root}", item: page}
    return entity(call, root, _narrow(call, body))


ROUTES = routes(
    [
        ("GET", r"/app/rest/server", get_server),
        ("GET", r"/app/rest/server/(?P<field>[^/]+)", get_server_field),
        ("GET", r"/app/rest/users/?", list_users),
        ("GET", r"/app/rest/users/(?P<user>[^/]+)", get_user),
        ("GET", r"/app/rest/projects/?", list_projects),
        ("GET", r"/app/rest/projects/(?P<project>[^/]+)", get_project),
        ("GET", r"/app/rest/projects/(?P<project>[^/]+)/buildTypes/?", project_build_types),
        ("GET", r"/app/rest/buildTypes/?", list_build_types),
        ("GET", r"/app/rest/buildTypes/(?P<build_type>[^/]+)", get_build_type),
    ]
)
