"""GeoReport v2 XML: the same data as the JSON answers, in the element layout the spec shows
(`<services><service>…`, `<service_requests><request>…`, `<errors><error>…`).

Only writing: Open311 clients post form fields, so no XML is ever parsed from outside.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET

# A JSON list field and the element each of its entries becomes, as the spec names them.
LIST_ITEMS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute",
              "values": "value"}
# Characters XML 1.0 cannot carry at all (escaping does not help): a stray control character
# in a worker's note must not make the whole answer unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    """None stays an empty element (the spec's examples keep absent values as empty tags)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(ET.SubElement(element, key), inner)
    elif isinstance(value, list):
        child = LIST_ITEMS.get(element.tag, "item")
        for inner in value:
            _fill(ET.SubElement(element, child), inner)
    elif value is not None:
        element.text = _text(value)


def document(root: str, data: Any, item: str | None = None) -> bytes:
    """`data` under `<root>`: a list becomes one `<item>` per entry, a dict its fields."""
    element = ET.Element(root)
    if isinstance(data, list):
        for entry in data:
            _fill(ET.SubElement(element, item or "item"), entry)
    else:
        _fill(element, data)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)
