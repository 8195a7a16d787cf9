"""Finding builds by locator, as ``BuildPromotionFinder`` does (contract: "Locators").

``find`` lists matches in the server's order (the queue in queue order, then running, then
finished, newest first), after adding the default filters: no ``state`` means
``state:finished``; when finished builds are included, ``personal:false``, ``canceled:false``,
``failedToStart:false`` and ``branch:(default:true)`` are added unless given. No defaults for a
single value, ``id:`` or ``defaultFilter:false``; only the state default with ``user:``/
``agent:`` or when only queued/running builds are asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotator.sim.teamcity import builds as lifecycle
from rotator.sim.teamcity import locator as loc
from rotator.sim.teamcity.builds import STATES, Build
from rotator.sim.teamcity.errors import BadRequest, LocatorError, NotFoundError

if TYPE_CHECKING:
    from rotator.sim.teamcity.model import Model, Principal

DIMENSIONS = (
    "id",
    "buildType",
    "tag",
    "state",
    "branch",
    "property",
    "defaultFilter",
    "count",
    "start",
    "lookupLimit",
    "canceled",
    "failedToStart",
    "personal",
    "status",
    "number",
    "user",
    "agent",
    "project",
    "affectedProject",
)
QUEUE_DIMENSIONS = (
    "id",
    "taskId",
    "project",
    "pool",
    "buildType",
    "agent",
    "user",
    "personal",
    "count",
    "start",
    "lookupLimit",
)
DEFAULT_COUNT = 100
LOOKUP_LIMIT = 5000


def states(value: str | None) -> set[str]:
    """The states a ``state:`` value selects; 400 for one the server does not know."""
    if value is None:
        return set(STATES)
    if value in STATES:
        return {value}
    if value == "any":
        return set(STATES)
    parsed = loc.parse(value)
    if parsed.single is not None or not parsed.dims:
        raise BadRequest(
            f"Unsupported value of 'state' dimension: '{value}'. Should be one of the build "
            "states('queued', 'running', 'finished') or 'any'"
        )
    parsed.check(STATES)
    return {s for s in STATES if loc.boolean(parsed.get(s) or "false", s)}


def with_defaults(locator: loc.Locator) -> loc.Locator:
    """The locator the finder really runs: ``setLocatorDefaults``."""
    if locator.single is not None:
        return locator
    default_filter = loc.boolean(locator.get("defaultFilter"), "defaultFilter")
    if default_filter is False:
        return locator
    if default_filter is None and "id" in locator:
        return locator
    dims = {k: list(v) for k, v in locator.dims.items()}
    if "state" not in dims:
        dims["state"] = ["finished"]
    if default_filter is None:
        if "agent" in dims or "user" in dims:
            return loc.Locator(locator.text, dims=dims)
        if "finished" not in states(dims["state"][-1]):
            return loc.Locator(locator.text, dims=dims)
    for name, value in (
        ("personal", "false"),
        ("canceled", "false"),
        ("failedToStart", "false"),
        ("branch", "default:true"),
    ):
        dims.setdefault(name, [value])
    return loc.Locator(locator.text, dims=dims)


def find(model: Model, text: str, caller: Principal, *, queue_only: bool = False) -> list[Build]:
    """Every visible build the locator selects, in the server's order, paged by
    ``start``/``count`` (the caller sees the page; ``more`` tells if there is another)."""
    return page(model, text, caller, queue_only=queue_only)[0]


def page(
    model: Model, text: str, caller: Principal, *, queue_only: bool = False
) -> tuple[list[Build], bool]:
    lifecycle.advance(model)
    parsed = loc.parse(text)
    if parsed.single is not None:
        parsed = loc.Locator(text, dims={"id": [parsed.single]})
    parsed.check(QUEUE_DIMENSIONS if queue_only else DIMENSIONS)
    if queue_only:
        parsed.dims.setdefault("state", ["queued"])
        if "taskId" in parsed:
            parsed.dims.setdefault("id", parsed.all("taskId"))
    effective = parsed if queue_only else with_defaults(parsed)
    count = effective.number("count", DEFAULT_COUNT) or 0
    start = effective.number("start", 0) or 0
    limit = effective.number("lookupLimit", LOOKUP_LIMIT) or 0
    wanted = states(effective.get("state"))
    candidates = [
        b
        for b in model.builds.values()
        if b.state in wanted and lifecycle.can_view(model, b, caller)
    ]
    matched = [b for b in _ordered(candidates)[:limit] if _matches(model, b, effective)]
    return matched[start : start + count], len(matched) > start + count


def first(model: Model, text: str, caller: Principal) -> Build:
    """``/app/rest/builds/<locator>``: the first match, or the server's 404."""
    parsed = loc.parse(text)
    raw_id = parsed.single if parsed.single is not None else None
    if raw_id is None and set(parsed.dims) == {"id"}:
        raw_id = parsed.get("id")
    if raw_id is not None:
        lifecycle.advance(model)
        return lifecycle.by_id(model, raw_id, caller)
    found = find(model, text, caller)
    if not found:
        raise NotFoundError(f"Nothing is found by locator '{text}'.")
    return found[0]


def _ordered(candidates: list[Build]) -> list[Build]:
    queued = sorted((b for b in candidates if b.state == "queued"), key=lambda b: b.queue_order)
    running = sorted((b for b in candidates if b.state == "running"), key=lambda b: -b.id)
    done = sorted((b for b in candidates if b.state == "finished"), key=lambda b: -b.id)
    return queued + running + done


def _matches(model: Model, build: Build, locator: loc.Locator) -> bool:
    checks = (
        _id,
        _build_type,
        _project,
        _tags,
        _branch,
        _properties,
        _flags,
        _status,
        _number,
        _user,
    )
    return all(check(model, build, locator) for check in checks)


def _id(model: Model, build: Build, locator: loc.Locator) -> bool:
    for raw in locator.all("id"):
        if not (raw.isascii() and raw.isdigit()):
            raise LocatorError(f"Invalid value of dimension 'id': '{raw}'. Should be a number.")
        if build.id != int(raw):
            return False
    return True


def _entity_id(value: str) -> str:
    """``(id:X)`` / ``id:X`` / ``X`` -> ``X``."""
    parsed = loc.parse(value)
    if parsed.single is not None:
        return parsed.single
    found = parsed.get("id")
    if found is None:
        parsed.check(("id",))
        raise LocatorError(f"Unsupported locator '{value}': use id:<id>")
    return found


def _build_type(model: Model, build: Build, locator: loc.Locator) -> bool:
    return all(build.build_type == _entity_id(v) for v in locator.all("buildType"))


def _project(model: Model, build: Build, locator: loc.Locator) -> bool:
    project = model.build_types[build.build_type].project
    direct = all(project == _entity_id(v) for v in locator.all("project"))
    chain = model.ancestors(project)
    return direct and all(_entity_id(v) in chain for v in locator.all("affectedProject"))


def _tags(model: Model, build: Build, locator: loc.Locator) -> bool:
    for raw in locator.all("tag"):
        parsed = loc.parse(raw) if raw.startswith("name:") or "," in raw else None
        if parsed is not None and parsed.get("name") is not None:
            wanted = parsed.get("name") or ""
            if not any(t.lower() == wanted.lower() for t in build.tags):
                return False
        elif raw not in build.tags:
            return False
    return True


def _branch(model: Model, build: Build, locator: loc.Locator) -> bool:
    raw = locator.get("branch")
    if raw is None:
        return True
    parsed = loc.parse(raw)
    if parsed.single is not None:
        if raw == "<default>":
            return build.default_branch
        return build.branch_name == raw
    parsed.check(("name", "default", "unspecified", "branched"))
    default = loc.boolean(parsed.get("default"), "default")
    if default is not None and build.default_branch != default:
        return False
    name = parsed.get("name")
    return name is None or build.branch_name == name


def _properties(model: Model, build: Build, locator: loc.Locator) -> bool:
    for raw in locator.all("property"):
        parsed = loc.parse(raw)
        parsed.check(("name", "value", "matchType"))
        name, value = parsed.get("name"), parsed.get("value")
        if name is None:
            raise LocatorError("Property locator should have 'name' dimension")
        if name not in build.properties:
            return False
        if value is not None and build.properties[name] != value:
            return False
    return True


def _flags(model: Model, build: Build, locator: loc.Locator) -> bool:
    for name, actual in (
        ("canceled", build.canceled is not None),
        ("failedToStart", build.failed_to_start),
        ("personal", build.personal),
    ):
        wanted = loc.boolean(locator.get(name), name)
        if wanted is not None and wanted != actual:
            return False
    return True


def _status(model: Model, build: Build, locator: loc.Locator) -> bool:
    raw = locator.get("status")
    if raw is None:
        return True
    return (build.visible_status(model.precise_now()) or "").upper() == raw.upper()


def _number(model: Model, build: Build, locator: loc.Locator) -> bool:
    raw = locator.get("number")
    return raw is None or build.number == raw


def _user(model: Model, build: Build, locator: loc.Locator) -> bool:
    raw = locator.get("user")
    if raw is None:
        return True
    parsed = loc.parse(raw)
    name = parsed.single if parsed.single is not None else parsed.get("username")
    return name is not None and (build.triggered_by or "").lower() == name.lower()
