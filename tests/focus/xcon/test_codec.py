"""Decoding details, errors and extensions of the XCON codec."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from focus.xcon.codec import (
    XconDecodeError,
    conference_info_to_bytes,
    parse_conference_info,
    parse_sidebars_by_ref,
    parse_uris,
    parse_user,
    parse_users,
    serialize_conference_info,
    serialize_sidebars_by_ref,
    serialize_uris,
    serialize_user,
    user_to_bytes,
)
from focus.xcon.model import (
    CI_NS,
    XCON_NS,
    Anonymity,
    CodecDecision,
    ConferenceDescription,
    ConferenceInfo,
    Controls,
    EndpointStatus,
    FloorAlgorithm,
    JoiningMethod,
    MediaStatus,
    MixerName,
    Role,
    State,
    TargetMethod,
    UriEntry,
    Uris,
    User,
    VideoLayout,
)
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "xcon"
HEAD = f'<conference-info xmlns="{CI_NS}" xmlns:xcon="{XCON_NS}" entity="xcon:c@example.com">'


def doc(body: str, head: str = HEAD) -> bytes:
    return (head + body + "</conference-info>").encode()


def test_rfc6501_example_decodes_to_the_expected_values() -> None:
    ci = parse_conference_info((VECTORS / "rfc6501-s7-example.xml").read_bytes())
    assert ci.entity == "conference123@example.com"
    d = ci.conference_description
    assert d is not None
    assert d.lang == "en-us"
    assert d.keywords == ("Formula-1", "cars")
    assert d.maximum_user_count == 50
    assert d.allow_sidebars is True
    assert d.language == "En-us"
    assert d.conf_uris is not None
    assert d.conf_uris.entries[0].conference_passwords == ("5678",)
    assert d.available_media is not None
    audio, video = d.available_media.entries
    assert (audio.label, audio.type, audio.status) == ("10234", "audio", MediaStatus.SENDRECV)
    assert audio.codecs is not None
    assert audio.codecs.decision is CodecDecision.AUTOMATIC
    assert audio.codecs.codecs[0].subtype == "PCMU"
    assert audio.controls == Controls(mute=True, gain=50)
    assert video.controls == Controls(video_layout=VideoLayout.SINGLE_VIEW)
    assert d.conference_time is not None
    entry = d.conference_time.entries[0]
    assert entry.base.startswith("BEGIN:VCALENDAR")
    assert entry.mixing_start_offset is not None
    assert entry.mixing_start_offset.required_participant is Role.MODERATOR
    assert entry.mixing_start_offset.time == datetime(2007, 10, 17, 14, 29, tzinfo=UTC)
    # whitespace around a typed value is not part of it
    assert entry.must_join_before_offset == datetime(2007, 10, 17, 15, 30, tzinfo=UTC)
    assert ci.conference_state is not None
    assert ci.conference_state.allow_conference_event_subscription is True
    assert ci.users is not None
    bob = ci.user("xcon-userid:bob534")
    assert bob is not None
    assert bob.roles == (Role.PARTICIPANT,)
    assert bob.languages == ("en-us",)
    assert bob.provide_anonymity is Anonymity.SEMI_PRIVATE
    assert bob.allow_refer_users_dynamically is False
    ep = bob.endpoints[0]
    assert ep.status is EndpointStatus.CONNECTED
    assert ep.joining_method is JoiningMethod.DIALED_OUT
    assert ep.referred is not None and ep.referred.by == "sip:alice@example.com"
    assert ep.call_info is not None and ep.call_info.sip is not None
    assert ep.call_info.sip.call_id == "hsjh8980vhsb78"
    assert ep.media[0].to_mixer is not None
    assert ep.media[0].to_mixer.name is MixerName.VIDEO_IN
    alice = ci.user("xcon-userid:alice334")
    assert alice is not None
    # <xcon:floor> directly in <endpoint> is not in the schema: kept verbatim
    assert alice.endpoints[0].extensions == (
        f'<xcon:floor xmlns:xcon="{XCON_NS}" id="345">true</xcon:floor>',
    )
    assert alice.endpoints[0].media[1].from_mixer is not None
    assert alice.endpoints[0].media[1].from_mixer.controls == (Controls(gain=50),)
    assert ci.users.allowed_users_list is not None
    targets = ci.users.allowed_users_list.targets
    assert targets[-1].uri == "sip:john@example.com"
    assert targets[-1].method is TargetMethod.REFER
    assert ci.users.deny_users_list is not None
    assert ci.users.deny_users_list.targets[0].method is None
    assert ci.sidebars_by_ref is not None
    assert ci.sidebars_by_ref.entries[0].uri == "xcon:conf223"
    assert ci.sidebars_by_val is not None
    sidebar = ci.sidebars_by_val.entries[0]
    assert sidebar.entity == "conf223"
    assert sidebar.users is not None and len(sidebar.users.users) == 2
    fi = ci.floor_information
    assert fi is not None
    assert fi.conference_id == 567
    assert fi.conference_floor_policy is not None
    floor = fi.conference_floor_policy.floors[0]
    assert floor.media_labels == ("10234", "10235")
    assert floor.algorithm is FloorAlgorithm.MODERATOR_CONTROLLED
    assert floor.moderator_id == 234


def test_state_and_version_of_notifications() -> None:
    ci = parse_conference_info((VECTORS / "rfc4575-s7.2-rich.xml").read_bytes())
    assert ci.state is State.PARTIAL
    assert ci.version == 5


def test_empty_element_means_cleared() -> None:
    # RFC 6503 s5.3.4 Figure 8: an empty <display-text/> removes the title.
    ci = parse_conference_info(
        doc("<conference-description><display-text/><maximum-user-count/></conference-description>")
    )
    d = ci.conference_description
    assert d is not None
    assert d.display_text is None
    assert d.cleared == {"display_text", "maximum_user_count"}
    out = serialize_conference_info(ci)
    desc = out.find(f"{{{CI_NS}}}conference-description")
    assert desc is not None
    assert [etree.QName(c).localname for c in desc] == ["display-text", "maximum-user-count"]
    assert parse_conference_info(conference_info_to_bytes(ci)) == ci


def test_text_is_kept_verbatim_and_escaped() -> None:
    title = ' *** <NEW> & "TITLE" *** '
    ci = ConferenceInfo(
        entity="xcon:a&b@example.com",
        conference_description=ConferenceDescription(display_text=title, subject="a\r\nb"),
    )
    back = parse_conference_info(conference_info_to_bytes(ci))
    assert back == ci


def test_free_text_extension_values_are_kept_as_strings() -> None:
    ci = parse_conference_info(
        doc(
            '<users><user entity="xcon-userid:x"><roles><entry>chair</entry>'
            "<entry>moderator</entry></roles><endpoint entity='sip:x@h'>"
            "<status>teleporting</status></endpoint></user></users>"
        )
    )
    user = ci.user("xcon-userid:x")
    assert user is not None
    assert user.roles == ("chair", Role.MODERATOR)
    assert user.endpoints[0].status == "teleporting"
    assert not isinstance(user.endpoints[0].status, EndpointStatus)
    assert parse_conference_info(conference_info_to_bytes(ci)) == ci


def test_unknown_elements_and_attributes_round_trip() -> None:
    ci = parse_conference_info(
        doc(
            '<conference-state xmlns:v="urn:vendor" v:flag="1" plain="p">'
            '<active>true</active><v:colour v:x="y">blue<v:b/></v:colour>'
            '<bare xmlns="">naked</bare></conference-state>'
        )
    )
    state = ci.conference_state
    assert state is not None
    assert state.active is True
    assert state.extension_attributes == (("{urn:vendor}flag", "1"), ("plain", "p"))
    assert state.extensions == (
        '<v:colour xmlns:v="urn:vendor" v:x="y">blue<v:b></v:b></v:colour>',
        '<bare xmlns="">naked</bare>',
    )
    out = serialize_conference_info(ci)
    bare = out.find(f"{{{CI_NS}}}conference-state/bare")
    assert bare is not None and bare.text == "naked"
    assert parse_conference_info(conference_info_to_bytes(ci)) == ci
    assert parse_conference_info(out) == ci


def test_serializes_under_a_ccmp_element_name() -> None:
    ccmp = "urn:ietf:params:xml:ns:xcon-ccmp"
    user = User(entity="xcon-userid:bob", display_text="Bob", roles=(Role.USER,))
    el = serialize_user(user, tag=f"{{{ccmp}}}userInfo")
    assert el.tag == f"{{{ccmp}}}userInfo"
    assert el.find(f"{{{CI_NS}}}display-text") is not None
    assert parse_user(el) == user
    assert parse_user(user_to_bytes(user)) == user


def test_sidebars_by_ref_and_users() -> None:
    uris = Uris(entries=(UriEntry(uri="xcon:side1@example.com", display_text="s1"),))
    el = serialize_sidebars_by_ref(uris)
    assert el.tag == f"{{{CI_NS}}}sidebars-by-ref"
    assert parse_sidebars_by_ref(etree.tostring(el)) == uris
    users = parse_users(
        f'<users xmlns="{CI_NS}"><user entity="a"/><user entity="b"/></users>'.encode()
    )
    assert [u.entity for u in users.users] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "<conference-state><active>maybe</active></conference-state>",
            r"<active>: 'maybe' is not a boolean",
        ),
        ("<conference-state><user-count>-1</user-count></conference-state>", "out of range"),
        ("<conference-state><user-count>many</user-count></conference-state>", "not an integer"),
        (
            "<conference-state><user-count>" + "9" * 5000 + "</user-count></conference-state>",
            "not an integer",
        ),
        (
            "<conference-state><user-count>99999999999999999999</user-count></conference-state>",
            "out of range",
        ),
        (
            "<conference-description><available-media><entry label='1'><xcon:controls>"
            "<xcon:gain>128</xcon:gain></xcon:controls></entry></available-media>"
            "</conference-description>",
            r"<xcon:gain>|<gain>: 128 is out of range -127..127",
        ),
        (
            "<conference-description><display-text>a</display-text>"
            "<display-text>b</display-text></conference-description>",
            "appears more than once",
        ),
        (
            "<conference-description><available-media><entry/></available-media></conference-description>",
            "missing required attribute 'label'",
        ),
        (
            "<users><user><endpoint><joining-info><when>yesterday</when></joining-info></endpoint></user></users>",
            "not an xsd:dateTime",
        ),
        ("<users state='sideways'/>", r"'sideways' is not one of 'full', 'partial', 'deleted'"),
        (
            "<users><user><display-text>a<b/></display-text></user></users>",
            "must contain only text",
        ),
        (
            "<users><user><endpoint><call-info><sip><call-id>c</call-id></sip></call-info></endpoint></user></users>",
            "missing required element <from-tag>",
        ),
        ("<users><user><roles><entry/></roles></user></users>", "empty role"),
        (
            "<conference-description><xcon:conference-time><xcon:entry/></xcon:conference-time></conference-description>",
            "missing required element <base>",
        ),
    ],
)
def test_decode_errors_name_the_element_and_the_fault(body: str, message: str) -> None:
    with pytest.raises(XconDecodeError, match=message) as info:
        parse_conference_info(doc(body))
    assert info.value.element.startswith("<conference-info>/")
    assert info.value.fault


def test_missing_entity_and_wrong_root() -> None:
    with pytest.raises(XconDecodeError, match="missing required attribute 'entity'"):
        parse_conference_info(f'<conference-info xmlns="{CI_NS}"/>'.encode())
    with pytest.raises(XconDecodeError, match="root element must be"):
        parse_conference_info(b'<conference-info entity="x"/>')
    with pytest.raises(XconDecodeError, match="DTDs are not allowed"):
        parse_conference_info(b'<!DOCTYPE x [<!ENTITY a "b">]><x/>')


def test_characters_xml_cannot_carry_are_refused_on_output() -> None:
    ci = ConferenceInfo(entity="x", conference_description=ConferenceDescription(subject="\x00"))
    with pytest.raises(ValueError, match="XML can not carry"):
        conference_info_to_bytes(ci)


def test_datetimes_keep_their_offset() -> None:
    ci = parse_conference_info(
        doc(
            "<users><user entity='u'><endpoint entity='e'><joining-info>"
            "<when>2007-10-17T13:35:08.250+02:00</when></joining-info>"
            "</endpoint></user></users>"
        )
    )
    user = ci.user("u")
    assert user is not None
    info = user.endpoints[0].joining_info
    assert info is not None and info.when is not None
    assert info.when.utcoffset() is not None
    assert b"2007-10-17T13:35:08.250000+02:00" in conference_info_to_bytes(ci)


@pytest.mark.parametrize(
    "bad",
    ["<a>", "text", '<?xml version="1.0"?><a/>', "<a/><b/>", '<!DOCTYPE a [<!ENTITY e "x">]><a/>'],
)
def test_malformed_extension_strings_are_refused_on_output(bad: str) -> None:
    ci = ConferenceInfo(entity="x", extensions=(bad,))
    with pytest.raises(ValueError, match="not a valid extension element"):
        conference_info_to_bytes(ci)
    with pytest.raises(ValueError, match="not a valid extension element"):
        serialize_conference_info(ci)


def test_uris_of_any_name() -> None:
    ccmp = "urn:ietf:params:xml:ns:xcon-ccmp"
    data = (
        f'<confsInfo xmlns="{ccmp}" xmlns:i="{CI_NS}"><i:entry><i:uri>xcon:a@example.com</i:uri>'
        "</i:entry></confsInfo>"
    ).encode()
    assert parse_uris(data) == Uris(entries=(UriEntry(uri="xcon:a@example.com"),))
    el = serialize_uris(parse_uris(data), f"{{{ccmp}}}confsInfo")
    assert el.tag == f"{{{ccmp}}}confsInfo"
