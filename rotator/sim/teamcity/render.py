"""Entities as TeamCity renders them: JSON when asked, XML by default; TeamCity's date format.

An entity is a plain dict: scalar values become XML attributes, dicts child elements and lists
repeated child elements named by the ``_item`` hints below. ``None`` values are left out in both
formats, as TeamCity omits null fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET  # building responses only; parsing goes through defusedxml

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from rotator.sim.teamcity.errors import BadRequest, MalformedBody

DATE_FORMAT = "%Y%m%dT%H%M%S%z"
ITEM_NAMES = {
    "token": "token",
    "property": "property",
    "permissionRestriction": "permissionRestriction",
    "versionedSettingsToken": "versionedSettingsToken",
    "tag": "tag",
}
TEXT_ELEMENTS = frozenset(
    {"statusText", "queuedDate", "startDate", "finishDate", "waitReason", "timestamp", "text"}
)
"""Scalars the server writes as child elements (``@XmlElement``), not attributes."""


def tc_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_tc_date(text: str) -> datetime:
    try:
        return datetime.strptime(text, DATE_FORMAT)
    except (ValueError, TypeError):
        raise BadRequest(
            f"Could not parse date from value '{text}'. Supported format is yyyyMMdd'T'HHmmssZ"
        ) from None


def prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def to_json(entity: dict[str, Any]) -> bytes:
    return json.dumps(prune(entity)).encode()


def to_xml(root: str, entity: dict[str, Any]) -> bytes:
    element = _element(root, prune(entity))
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + ET.tostring(element)


def _element(name: str, value: dict[str, Any]) -> ET.Element:
    element = ET.Element(name)
    for key, item in value.items():
        if isinstance(item, dict):
            element.append(_element(key, item))
        elif isinstance(item, list):
            for entry in item:
                child_name = ITEM_NAMES.get(key, key)
                element.append(
                    _element(child_name, entry)
                    if isinstance(entry, dict)
                    else _text(child_name, entry)
                )
        elif key in TEXT_ELEMENTS:
            element.append(_text(key, item))
        elif isinstance(item, bool):
            element.set(key, "true" if item else "false")
        else:
            element.set(key, str(item))
    return element


def _text(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    element.text = str(value)
    return element


def from_xml(body: bytes) -> dict[str, Any]:
    """An XML request body as the dict its JSON twin would be (attributes and children)."""
    try:
        root = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise MalformedBody(f"Could not parse XML request body: {type(exc).__name__}") from None
    return _from_element(root)


def _from_element(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = dict(element.attrib)
    for child in element:
        converted: Any = _from_element(child)
        if not converted and len(child) == 0 and child.text and child.text.strip():
            converted = child.text  # <text>a comment</text>
        plural = child.tag in ITEM_NAMES
        if plural:
            out.setdefault(child.tag, []).append(converted)
        else:
            out[child.tag] = converted
    return out


# -- users, projects, builds and build types ----------------------------------------------


def user_ref(user: Any) -> dict[str, Any]:
    return {
        "username": user.username,
        "name": user.name,
        "id": user.id,
        "href": f"/app/rest/users/id:{user.id}",
    }


def project_ref(project: Any, base_url: str) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "parentProjectId": project.parent,
        "href": f"/app/rest/projects/id:{project.id}",
        "webUrl": f"{base_url}/project/{project.id}",
    }


def build_type_ref(model: Any, build_type: Any) -> dict[str, Any]:
    project = model.projects[build_type.project]
    return {
        "id": build_type.id,
        "name": build_type.name,
        "projectName": project.name,
        "projectId": project.id,
        "href": f"/app/rest/buildTypes/id:{build_type.id}",
        "webUrl": f"{model.base_url}/buildConfiguration/{build_type.id}",
    }


def tags(names: list[str]) -> dict[str, Any]:
    return {"count": len(names), "tag": [{"name": n} for n in names]}


def build(model: Any, item: Any, *, long: bool) -> dict[str, Any]:
    """A build as ``model/build/Build.java`` shows it: the short form (lists) or the long one
    (a single build). Null fields are left out later, so absent facts are simply None."""
    now = model.precise_now()
    queued = item.state == "queued"
    running = item.state == "running"
    percentage = _percentage(item, now) if running else None
    base = model.base_url
    out: dict[str, Any] = {
        "id": item.id,
        "buildTypeId": item.build_type,
        "number": item.number,
        "status": item.visible_status(now),
        "state": item.state,
        "branchName": item.branch_name,
        # true-only flags, as ValueWithDefault leaves a false one out
        "defaultBranch": True if item.branch_name is not None and item.default_branch else None,
        "personal": True if item.personal else None,
        "failedToStart": True if item.failed_to_start else None,
        "percentageComplete": percentage or None,
        "href": f"/app/rest/{'buildQueue' if queued else 'builds'}/id:{item.id}",
        # The contract could not confirm webUrl formats; these are TeamCity's WebLinks ones.
        "webUrl": f"{base}/viewQueued.html?itemId={item.id}"
        if queued
        else f"{base}/buildConfiguration/{item.build_type}/{item.id}",
    }
    if not long:
        return out
    build_type = model.build_types[item.build_type]
    out.update(
        {
            "statusText": item.status_text,
            "buildType": build_type_ref(model, build_type),
            "waitReason": item.plan.wait_reason if queued else None,
            "queuedDate": tc_date(item.queued_date),
            "startDate": tc_date(item.start_date) if item.start_date else None,
            "finishDate": tc_date(item.finish_date) if item.finish_date else None,
            "running-info": _running_info(item, now, percentage) if running else None,
            "canceledInfo": _canceled(model, item.canceled) if item.canceled else None,
            "triggered": _triggered(model, item),
            "comment": {"text": item.comment} if item.comment is not None else None,
            "tags": tags(item.tags) if item.tags else None,
            "properties": {
                "count": len(item.properties),
                "property": [{"name": k, "value": v} for k, v in item.properties.items()],
            }
            if item.properties
            else None,
        }
    )
    return out


def _percentage(item: Any, now: datetime) -> int:
    if item.plan.run_seconds in (None, 0) or item.start_date is None:
        return 0
    elapsed = (now - item.start_date).total_seconds()
    return max(0, min(99, int(elapsed * 100 / item.plan.run_seconds)))


def _running_info(item: Any, now: datetime, percentage: int | None) -> dict[str, Any]:
    return {
        "percentageComplete": percentage or 0,
        "elapsedSeconds": int((now - item.start_date).total_seconds()),
        "estimatedTotalSeconds": int(item.plan.run_seconds)
        if item.plan.run_seconds is not None
        else None,
        "currentStageText": item.status_text,
    }


def _canceled(model: Any, info: Any) -> dict[str, Any]:
    user = model.find_user(info.user) if info.user else None
    return {
        "user": user_ref(user) if user else None,
        "timestamp": tc_date(info.at),
        "text": info.text,
    }


def _triggered(model: Any, item: Any) -> dict[str, Any]:
    user = model.find_user(item.triggered_by) if item.triggered_by else None
    return {
        "type": "user" if user else "unknown",
        "date": tc_date(item.queued_date),
        "user": user_ref(user) if user else None,
    }


# -- parameters ----------------------------------------------------------------------------


def property_entity(parameter: Any, inherited: bool) -> dict[str, Any]:
    """A parameter; a password's value never leaves the server."""
    out: dict[str, Any] = {"name": parameter.name}
    if not parameter.secure:
        out["value"] = parameter.value
    if parameter.type:
        out["type"] = {"rawValue": parameter.type}
    if inherited:
        out["inherited"] = True
    return out


def properties(pairs: list[tuple[Any, bool]], href: str) -> dict[str, Any]:
    """A parameter collection (``Properties``): the one a project or build type embeds and
    the one ``.../parameters`` answers are the same entity."""
    props = [property_entity(parameter, inherited) for parameter, inherited in pairs]
    return {"count": len(props), "href": href, "property": props}


# -- tokens --------------------------------------------------------------------------------


def token(token: Any, with_value: bool, fields: set[str] | None = None) -> dict[str, Any]:
    """An access token; ``fields`` None means all of them. The value appears only in the
    answer that creates the token (``with_value``), as on the server."""
    out: dict[str, Any] = {"name": token.name}
    if fields is None or "creationTime" in fields:
        out["creationTime"] = tc_date(token.created)
    if token.expires is not None and (fields is None or "expirationTime" in fields):
        out["expirationTime"] = tc_date(token.expires)
    if token.restrictions and (fields is None or "permissionRestrictions" in fields):
        out["permissionRestrictions"] = {
            "count": len(token.restrictions),
            "permissionRestriction": [
                {"isGlobalScope": False, "project": {"id": p}, "permission": {"id": perm}}
                for p, perm in token.restrictions
            ],
        }
    if with_value:
        out["value"] = token.value
    return out
