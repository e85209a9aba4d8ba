"""Every RFC / seed example of the data model decodes, and round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from focus.xcon.codec import (
    XconDecodeError,
    conference_info_to_bytes,
    parse_conference_info,
    parse_element,
    serialize_element,
)
from focus.xcon.model import ConferenceInfo, Uris, User, Users, XconElement
from focus.xcon.safexml import parse_xml
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "xcon"
DOCUMENTS = sorted(p for p in VECTORS.glob("*.xml") if not p.name.startswith("malformed"))
CCMP = sorted((VECTORS / "ccmp").glob("*.xml"))

# The data-model bodies of CCMP messages, by element name (RFC 6503 s5).
BODY_TYPES: dict[str, type[XconElement]] = {
    "confInfo": ConferenceInfo,
    "blueprintInfo": ConferenceInfo,
    "sidebarByValInfo": ConferenceInfo,
    "userInfo": User,
    "usersInfo": Users,
    "confsInfo": Uris,
    "blueprintsInfo": Uris,
    "sidebarsByRefInfo": Uris,
}


def normalized(el: etree._Element) -> object:
    """Tag, attributes, trimmed text and children: what the document means
    once insignificant whitespace and namespace prefixes are set aside."""
    children = [normalized(c) for c in el if isinstance(c.tag, str)]
    text = (el.text or "").strip()
    return (el.tag, sorted(el.attrib.items()), text, children)


def test_vectors_are_present() -> None:
    assert len(DOCUMENTS) >= 5
    assert len(CCMP) >= 25


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_document_round_trips(path: Path) -> None:
    data = path.read_bytes()
    ci = parse_conference_info(data)
    out = conference_info_to_bytes(ci)
    assert parse_conference_info(out) == ci
    # The output says the same as the input, element for element.
    assert normalized(parse_xml(out)) == normalized(parse_xml(data))


def ccmp_bodies(path: Path) -> list[tuple[etree._Element, type[XconElement]]]:
    root = parse_xml(path.read_bytes())
    return [
        (el, BODY_TYPES[etree.QName(el).localname])
        for el in root.iter()
        if isinstance(el.tag, str) and etree.QName(el).localname in BODY_TYPES
    ]


@pytest.mark.parametrize("path", CCMP, ids=lambda p: p.name)
def test_ccmp_bodies_round_trip(path: Path) -> None:
    bodies = ccmp_bodies(path)
    assert bodies, "each CCMP vector carries at least one data-model body"
    for el, cls in bodies:
        obj = parse_element(cls, el)
        again = serialize_element(obj, el.tag)
        assert again.tag == el.tag
        assert parse_element(cls, again) == obj
        assert normalized(again) == normalized(el)


@pytest.mark.parametrize("path", sorted(VECTORS.glob("malformed-*.xml")), ids=lambda p: p.name)
def test_malformed_seed_blocks_are_refused_clearly(path: Path) -> None:
    with pytest.raises(XconDecodeError, match="not well-formed"):
        parse_conference_info(path.read_bytes())
