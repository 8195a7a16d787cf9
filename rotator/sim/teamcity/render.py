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

from rotator.sim.teamcity.errors import BadRequest

DATE_FORMAT = "%Y%m%dT%H%M%S%z"
ITEM_NAMES = {
    "token": "token",
    "property": "property",
    "permissionRestriction": "permissionRestriction",
    "versionedSettingsToken": "versionedSettingsToken",
}


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
        raise BadRequest(f"Could not parse XML request body: {type(exc).__name__}") from None
    return _from_element(root)


def _from_element(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = dict(element.attrib)
    for child in element:
        converted = _from_element(child)
        plural = child.tag in ITEM_NAMES
        if plural:
            out.setdefault(child.tag, []).append(converted)
        else:
            out[child.tag] = converted
    return out
