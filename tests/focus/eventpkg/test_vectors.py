"""The RFC examples: schema-valid, and understood by our subscriber-side code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from focus.eventpkg.bodies import Outcome, apply_rfc4575, rfc4575_full, xcon_full
from focus.eventpkg.xmlpatch import PatchError, apply_patch
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import XCON_NS, State
from tests.focus.eventpkg.helpers import RFC4575_XSD, RFC6502_XSD, VECTORS, standard, valid

BASIC = VECTORS / "rfc4575-s7.1-basic.xml"
RICH = VECTORS / "rfc4575-s7.2-rich.xml"
DIFF = VECTORS / "rfc6502-s5.5-diff.xml"


@pytest.mark.parametrize("path", [BASIC, RICH], ids=lambda p: p.name)
def test_rfc4575_examples_are_schema_valid(path: Path) -> None:
    ok, log = valid(RFC4575_XSD, path.read_bytes())
    assert ok, log


def test_rfc6502_example_is_schema_valid() -> None:
    ok, log = valid(RFC6502_XSD, DIFF.read_bytes())
    assert ok, log
    root = etree.fromstring(DIFF.read_bytes())
    assert root.tag == f"{{{XCON_NS}}}conference-info-diff"
    assert [etree.QName(op).localname for op in root] == ["add", "replace"]


def test_the_diff_schema_is_not_vacuous() -> None:
    def broken(change: Callable[[etree._Element], None]) -> bytes:
        root = etree.fromstring(DIFF.read_bytes())
        change(root)
        return etree.tostring(root)

    def no_entity(root: etree._Element) -> None:
        del root.attrib["entity"]  # required (RFC 6502 s5.3)

    def bad_selector(root: etree._Element) -> None:
        root[0].set("sel", "*/users//x")  # '//' is not in RFC 5261's XPath subset

    def remove_with_content(root: etree._Element) -> None:
        etree.SubElement(root, f"{{{XCON_NS}}}remove", sel="*/users").append(etree.Element("x"))

    def bad_pos(root: etree._Element) -> None:
        root[0].set("pos", "sideways")

    for change in (no_entity, bad_selector, remove_with_content, bad_pos):
        assert not valid(RFC6502_XSD, broken(change))[0], change.__name__


def test_rfc4575_examples_through_the_s4_6_procedure() -> None:
    basic = parse_conference_info(BASIC.read_bytes())
    rich = parse_conference_info(RICH.read_bytes())
    assert (basic.state, basic.version) == (State.FULL, 1)
    assert (rich.state, rich.version) == (State.PARTIAL, 5)
    first = apply_rfc4575(None, None, basic)
    assert first.outcome is Outcome.REPLACED and first.version == 1
    # version 5 after version 1: a gap, the subscriber must refresh (s4.6)
    assert apply_rfc4575(first.info, first.version, rich).outcome is Outcome.REFRESH
    # had it been at version 4, the partial applies: the user is added
    applied = apply_rfc4575(first.info, 4, rich)
    assert applied.outcome is Outcome.UPDATED and applied.info is not None
    assert applied.info.users is not None
    entities = {u.entity for u in applied.info.users.users}
    assert {u.entity for u in rich.users.users} <= entities  # type: ignore[union-attr]
    # and our own writer produces valid documents from what was read
    ok, log = valid(RFC4575_XSD, rfc4575_full(applied.info, 6))
    assert ok, log


def test_rfc6502_example_selectors_name_xcon_users() -> None:
    # Unprefixed selector names are in the diff's default namespace (RFC 5261
    # s4.2.2), the XCON one, where no <users> exists: the example can not apply.
    with pytest.raises(PatchError, match="unlocated-node"):
        apply_patch(xcon_full(standard()), DIFF.read_bytes())
