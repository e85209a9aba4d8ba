"""Damaged documents give a decoded object or XconDecodeError, never a crash."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from focus.xcon.codec import XconDecodeError, conference_info_to_bytes, parse_conference_info
from focus.xcon.safexml import parse_xml
from tests.paths import VECTORS

EXAMPLE = (VECTORS / "xcon" / "rfc6501-s7-example.xml").read_bytes()
ROOT = parse_xml(EXAMPLE)  # without comments: every node is an element
COUNT = sum(1 for _ in ROOT.iter())

mutation = st.tuples(
    st.integers(0, COUNT - 1),
    st.sampled_from(["text", "drop-attrs", "duplicate", "remove", "child", "attr"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=30),
)


def damage(root: etree._Element, index: int, how: str, text: str) -> None:
    el = list(root.iter())[index]
    if how == "text":
        el.text = text
    elif how == "drop-attrs":
        el.attrib.clear()
    elif how == "duplicate":
        parent = el.getparent()
        if parent is not None:
            parent.append(copy.deepcopy(el))
    elif how == "remove":
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)
    elif how == "child":
        etree.SubElement(el, el.tag).text = text
    else:
        for name in list(el.attrib):
            el.set(name, text)


@settings(max_examples=150, deadline=None)
@given(st.lists(mutation, min_size=1, max_size=4))
def test_damaged_documents_never_crash_the_decoder(mutations: list[tuple[int, str, str]]) -> None:
    root = copy.deepcopy(ROOT)
    for index, how, text in mutations:
        if index < sum(1 for _ in root.iter()):
            damage(root, index, how, text)
    data = etree.tostring(root)
    try:
        ci = parse_conference_info(data)
    except XconDecodeError as exc:
        assert exc.element and exc.fault
        return
    # whatever decodes also encodes and decodes to the same thing
    assert parse_conference_info(conference_info_to_bytes(ci)) == ci
