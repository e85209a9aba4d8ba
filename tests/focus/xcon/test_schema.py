"""What the codec writes is valid per RFC 4575 (XSD) and RFC 6501 (RELAX NG)."""

from __future__ import annotations

import dataclasses

import pytest
from lxml import etree

from focus.xcon.codec import parse_conference_info, parse_element, serialize_conference_info
from focus.xcon.model import (
    AvailableMedia,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    Controls,
    Endpoint,
    User,
    Users,
)
from focus.xcon.safexml import parse_xml
from tests.paths import ROOT
from tests.paths import VECTORS as TEST_VECTORS

SCHEMA = ROOT / "focus" / "xcon" / "schema"
VECTORS = TEST_VECTORS / "xcon"
PARSER = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
XSD = etree.XMLSchema(etree.parse(str(SCHEMA / "conference-info.xsd"), PARSER))
RNG = etree.RelaxNG(etree.parse(str(SCHEMA / "xcon-conference-info.rng"), PARSER))

DOCUMENTS = sorted(p for p in VECTORS.glob("*.xml") if not p.name.startswith("malformed"))

# RFC examples that are not valid per the RFC 6501 schema, and why.
NOT_RFC6501_VALID = {
    # RFC 4575 notifications carry 'state'/'version' (RFC 6501 s4.1: unused)
    "rfc4575-s7.1-basic.xml": "state/version attributes",
    "rfc4575-s7.2-rich.xml": "state/version attributes",
    # <xcon:floor> directly in <endpoint> (s7); the schema puts it in a mixer
    "rfc6501-s7-example.xml": "xcon:floor in endpoint",
    # <xcon:media-label> is xsd:nonNegativeInteger, these use names like "audioLabel"
    "rfc6503-04.xml": "media-label not an integer",
    "rfc6504-02.xml": "media-label not an integer",
    "rfc6504-08.xml": "media-label not an integer",
    "seed000-06.xml": "media-label not an integer",
    "seed000-10.xml": "media-label not an integer",
    "seed000-12.xml": "media-label not an integer",
    # <xcon:sidebar-parent> directly in the conference, not its description
    "rfc6504-27.xml": "misplaced xcon:sidebar-parent",
}


def conference_bodies() -> list[tuple[str, ConferenceInfo]]:
    found = [(p.name, parse_conference_info(p.read_bytes())) for p in DOCUMENTS]
    for path in sorted((VECTORS / "ccmp").glob("*.xml")):
        for el in parse_xml(path.read_bytes()).iter():
            if etree.QName(el).localname in {"confInfo", "blueprintInfo", "sidebarByValInfo"}:
                found.append((path.name, parse_element(ConferenceInfo, el)))
    return found


BODIES = conference_bodies()


def errors(schema: etree._Validator) -> list[str]:
    return str(schema.error_log).splitlines()


@pytest.mark.parametrize(("name", "ci"), BODIES, ids=[n for n, _ in BODIES])
def test_output_is_valid_per_rfc4575_xsd(name: str, ci: ConferenceInfo) -> None:
    out = serialize_conference_info(ci)
    assert XSD.validate(out), errors(XSD)


@pytest.mark.parametrize(("name", "ci"), BODIES, ids=[n for n, _ in BODIES])
def test_output_is_valid_per_rfc6501_relax_ng(name: str, ci: ConferenceInfo) -> None:
    out = serialize_conference_info(ci)
    valid = RNG.validate(out)
    if name in NOT_RFC6501_VALID:
        # the schema check is not vacuous: the known faults are found
        assert not valid, NOT_RFC6501_VALID[name]
    else:
        assert valid, errors(RNG)


def test_rfc6501_example_is_valid_once_its_stray_floor_is_removed() -> None:
    ci = parse_conference_info((VECTORS / "rfc6501-s7-example.xml").read_bytes())
    assert ci.users is not None
    users = tuple(
        dataclasses.replace(
            u, endpoints=tuple(dataclasses.replace(e, extensions=()) for e in u.endpoints)
        )
        for u in ci.users.users
    )
    fixed = dataclasses.replace(ci, users=dataclasses.replace(ci.users, users=users))
    assert RNG.validate(serialize_conference_info(fixed)), errors(RNG)


def test_schemas_catch_invalid_values() -> None:
    # The model lets us build these; the schemas must refuse them.
    loud = ConferenceInfo(
        entity="xcon:c@example.com",
        conference_description=ConferenceDescription(
            available_media=AvailableMedia(
                entries=(ConferenceMedium(label="1", type="audio", controls=Controls(gain=500)),)
            )
        ),
    )
    assert XSD.validate(serialize_conference_info(loud)), errors(XSD)
    assert not RNG.validate(serialize_conference_info(loud))
    odd = ConferenceInfo(
        entity="xcon:c@example.com",
        users=Users(
            users=(User(entity="u", endpoints=(Endpoint(entity="sip:u@h", status="teleporting"),)),)
        ),
    )
    assert RNG.validate(serialize_conference_info(odd)), errors(RNG)  # free-text-extension
    assert not XSD.validate(serialize_conference_info(odd))  # RFC 4575's list is closed
