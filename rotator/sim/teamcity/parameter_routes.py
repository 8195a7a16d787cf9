"""HTTP endpoints for parameters of projects and build configurations alike:
``/app/rest/{projects|buildTypes}/{locator}/parameters`` (the collection, one parameter, its
``/value`` and ``/type``), and ``/app/rest/projects/{locator}/versionedSettings/tokens``, the
way to change a secret of a project whose settings live in VCS; both follow the contract's
"Parameters" section.

One module because they are one idea to a client: where a parameter's value is written.
Inheritance is the model's (``Model.effective_parameter(s)``), who may write is
``Model.check_edit``, and the entities are ``render.property_entity``/``render.properties``.
"""

from __future__ import annotations

from typing import Any

from rotator.sim.teamcity import render
from rotator.sim.teamcity.call import TEXT, Answer, Call, Text, entity, produces, routes, str_field
from rotator.sim.teamcity.errors import BadRequest, NotFoundError
from rotator.sim.teamcity.model import BuildType, Model, Parameter, Project

VALID_TYPES = ("text", "password", "checkbox", "select")


# -- parsing and lookups ---------------------------------------------------------------------


def _owner(model: Model, call: Call, kind: str, locator: str) -> Project | BuildType:
    if kind == "projects":
        return model.locate_project(locator, call.principal)
    return model.locate_build_type(locator, call.principal)


def _type_spec(raw: Any, name: str) -> str | None:
    if raw is None:
        return None
    spec = raw.get("rawValue") if isinstance(raw, dict) else None
    if spec is None:
        return None
    if not isinstance(spec, str) or not spec.strip() or spec.split()[0] not in VALID_TYPES:
        raise BadRequest(f"Wrong parameter type '{spec}' for parameter '{name}'")
    return spec


def _parameter_from(data: dict[str, Any], url_name: str | None = None) -> Parameter:
    """A posted property; the name in the URL, when there is one, wins over the body's."""
    name = url_name if url_name is not None else str_field(data, "name", "parameter")
    if not name or not name.strip():
        raise BadRequest("Parameter name cannot be empty.")
    value = str_field(data, "value", "parameter")
    if value is None:
        raise BadRequest(
            f"Parameter value for the parameter '{name}' should be specified (can be \"\")."
        )
    return Parameter(name, value, _type_spec(data.get("type"), name))


def _own(owner: Project | BuildType, name: str) -> Parameter:
    found = owner.parameters.get(name)
    if found is None:
        raise NotFoundError(f"No parameter with name '{name}' is found.")
    return found


def _effective(model: Model, owner: Project | BuildType, name: str) -> tuple[Parameter, bool]:
    found = model.effective_parameter(owner, name)
    if found is None:
        raise NotFoundError(f"No parameter with name '{name}' is found.")
    return found


# -- the collection --------------------------------------------------------------------------


def _collection(
    model: Model, call: Call, owner: Project | BuildType, kind: str, loc: str
) -> Answer:
    pairs = model.effective_parameters(owner)
    raw = (call.query.get("locator") or [""])[0]
    for part in filter(None, raw.split(",")):
        key, _, value = part.partition(":")
        if key == "name":
            pairs = [p for p in pairs if p[0].name == value]
        elif key == "inherited":
            pairs = [p for p in pairs if p[1] == (value == "true")]
        else:
            raise BadRequest(f"Unsupported parameter locator dimension '{key}'")
    return entity(
        call, "properties", render.properties(pairs, f"/app/rest/{kind}/{loc}/parameters")
    )


def get_parameters(model: Model, call: Call, kind: str, loc: str) -> Answer:
    return _collection(model, call, _owner(model, call, kind, loc), kind, loc)


def post_parameter(model: Model, call: Call, kind: str, loc: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    parameter = _parameter_from(call.entity())
    model.check_edit(owner, call.principal)
    owner.parameters[parameter.name] = parameter
    return entity(call, "property", render.property_entity(parameter, False))


def put_parameters(model: Model, call: Call, kind: str, loc: str) -> Answer:
    """Replaces all own parameters at once: every item is parsed before any is stored."""
    owner = _owner(model, call, kind, loc)
    data = call.entity()
    model.check_edit(owner, call.principal)
    items = data.get("property", [])
    if not isinstance(items, list):
        raise BadRequest("Cannot set parameters: 'property' must be a list")
    try:
        new = {
            p.name: p
            for p in (_parameter_from(item if isinstance(item, dict) else {}) for item in items)
        }
    except BadRequest as err:
        raise BadRequest(f"Cannot set parameters: {err.message}") from None
    owner.parameters = new
    return _collection(model, call, owner, kind, loc)


def delete_parameters(model: Model, call: Call, kind: str, loc: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    model.check_edit(owner, call.principal)
    owner.parameters = {}
    return 204, None


# -- one parameter ---------------------------------------------------------------------------


def get_parameter(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    parameter, inherited = _effective(model, owner, name)
    return entity(call, "property", render.property_entity(parameter, inherited))


def put_parameter(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    parameter = _parameter_from(call.entity(), url_name=name)
    model.check_edit(owner, call.principal)
    owner.parameters[name] = parameter
    return entity(call, "property", render.property_entity(parameter, False))


def delete_parameter(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    _own(owner, name)
    model.check_edit(owner, call.principal)
    del owner.parameters[name]
    return 204, None


@produces(TEXT)
def get_parameter_value(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    parameter, _ = _effective(model, owner, name)
    if parameter.secure:
        raise BadRequest("Secure parameters cannot be retrieved via remote API by default.")
    return 200, Text(parameter.value)


@produces(TEXT)
def put_parameter_value(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    """Writes an own parameter; a missing one is created with the type of the parameter it
    overrides, so a password stays a password and its value never echoes back."""
    owner = _owner(model, call, kind, loc)
    value = call.text()
    model.check_edit(owner, call.principal)
    existing = owner.parameters.get(name)
    if existing is None:
        inherited = model.effective_parameter(owner, name)
        existing = Parameter(name, "", inherited[0].type if inherited else None)
        owner.parameters[name] = existing
    existing.value = value
    return 200, Text("" if existing.secure else value)


def get_parameter_type(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    parameter, _ = _effective(model, owner, name)
    return entity(call, "type", {"rawValue": parameter.type} if parameter.type else {})


def put_parameter_type(model: Model, call: Call, kind: str, loc: str, name: str) -> Answer:
    owner = _owner(model, call, kind, loc)
    spec = _type_spec(call.entity(), name)
    model.check_edit(owner, call.principal)
    parameter = _own(owner, name)
    if parameter.secure and spec != parameter.type:
        parameter.value = ""  # TeamCity blanks a password when its type changes
    parameter.type = spec
    return entity(call, "type", {"rawValue": spec} if spec else {})


# -- versioned settings ----------------------------------------------------------------------


def post_settings_tokens(model: Model, call: Call, project: str) -> Answer:
    """Sets the secrets behind ``credentialsJSON:`` references without a commit; needs "Edit
    project" but, unlike parameter edits, works on a project whose settings are read-only."""
    found = model.locate_project(project, call.principal)
    data = call.entity()
    call.principal.require(model, found.id, "edit_project")
    items = data.get("versionedSettingsToken")
    if not isinstance(items, list) or not items:
        raise BadRequest("versionedSettingsToken must be a non-empty list")
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("each versionedSettingsToken must be an object")
        name = str_field(item, "name", "versionedSettingsToken")
        value = str_field(item, "value", "versionedSettingsToken")
        if not name or value is None:
            raise BadRequest("each versionedSettingsToken needs a name and a value")
        found.settings_tokens[name] = (value, str_field(item, "description", "token") or "")
    listed = [{"name": n, "description": d} for n, (_, d) in sorted(found.settings_tokens.items())]
    return entity(
        call, "versionedSettingsTokens", {"count": len(listed), "versionedSettingsToken": listed}
    )


_OWNER = r"/app/rest/(?P<kind>projects|buildTypes)/(?P<loc>[^/]+)/parameters"
_ONE = _OWNER + r"/(?P<name>[^/]+)"
ROUTES = routes(
    [
        (
            "POST",
            r"/app/rest/projects/(?P<project>[^/]+)/versionedSettings/tokens",
            post_settings_tokens,
        ),
        ("GET", _OWNER, get_parameters),
        ("POST", _OWNER, post_parameter),
        ("PUT", _OWNER, put_parameters),
        ("DELETE", _OWNER, delete_parameters),
        ("GET", _ONE, get_parameter),
        ("PUT", _ONE, put_parameter),
        ("DELETE", _ONE, delete_parameter),
        ("GET", _ONE + "/value", get_parameter_value),
        ("PUT", _ONE + "/value", put_parameter_value),
        ("GET", _ONE + "/type", get_parameter_type),
        ("PUT", _ONE + "/type", put_parameter_type),
    ]
)
