"""msc-mixer/1.0 model and codec (RFC 6505 s4, s5): every element, schema-checked."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from mediactrl.mixer.codec import (
    NAMESPACE,
    SCHEMA_DIR,
    DecodeLimits,
    MixerDecodeError,
    decode,
    encode,
    schema,
)
from mediactrl.mixer.model import (
    ActiveTalker,
    ActiveTalkersNotify,
    ActiveTalkersSub,
    AudioMixing,
    AudioMixType,
    Audit,
    AuditResponse,
    Capabilities,
    Clamp,
    Codec,
    ConferenceAudit,
    ConferenceExit,
    CreateConference,
    DestroyConference,
    Direction,
    Event,
    Join,
    JoinAudit,
    MixerMessage,
    Mixers,
    MixerStatus,
    ModifyConference,
    ModifyJoin,
    Param,
    Response,
    Stream,
    Subscribe,
    Unjoin,
    UnjoinNotify,
    VideoLayout,
    VideoLayoutKind,
    VideoSwitch,
    VideoSwitchPolicy,
    Volume,
    VolumeControlType,
)
from tests.mediactrl.mixer.extract_schemas import extract

CODECS = (
    Codec("audio", "PCMU"),
    Codec(
        "video",
        "H264",
        (
            Param("profile-level-id", "42e01f"),
            Param("blob", "AAEC", "application/octet-stream", "base64"),
        ),
    ),
    Codec("audio", "telephone-event", ()),
)
STREAMS = (
    Stream("audio"),
    Stream(
        "audio",
        label="a1",
        direction=Direction.RECVONLY,
        volume=Volume(VolumeControlType.SETGAIN, "-3"),
        clamp=Clamp(),
        priority=2,
    ),
    Stream(
        "video",
        direction=Direction.SENDONLY,
        volume=Volume(VolumeControlType.AUTOMATIC),
        clamp=Clamp("1 2 #"),
        region="r1",
    ),
    Stream(
        "audio", direction=Direction.INACTIVE, volume=Volume(VolumeControlType.SETSTATE, "mute")
    ),
)

EVERY_ELEMENT: list[MixerMessage] = [
    CreateConference(),
    CreateConference(
        conferenceid="conf1",
        reserved_talkers=5,
        reserved_listeners=10,
        codecs=CODECS,
        audio_mixing=AudioMixing(AudioMixType.NBEST, 3),
        video_layouts=tuple(VideoLayout(kind, i + 1) for i, kind in enumerate(VideoLayoutKind)),
        video_switch=VideoSwitch(VideoSwitchPolicy.VAS, 5, True),
        subscribe=Subscribe(ActiveTalkersSub(4)),
    ),
    CreateConference(
        audio_mixing=AudioMixing(AudioMixType.CONTROLLER),
        video_layouts=(),
        video_switch=VideoSwitch(VideoSwitchPolicy.CONTROLLER),
        subscribe=Subscribe(),
        codecs=(),
    ),
    ModifyConference("conf1", audio_mixing=AudioMixing(n=2)),
    ModifyConference("conf1", subscribe=Subscribe(ActiveTalkersSub())),
    DestroyConference("conf1"),
    Join("1536067209:913cd14c", "conf1"),
    Join("a:b", "c:d", STREAMS),
    ModifyJoin("a:b", "conf1", STREAMS[1:2]),
    Unjoin("a:b", "conf1"),
    Unjoin("a:b", "conf1", (Stream("video"),)),
    Audit(),
    Audit(capabilities=False, mixers=True, conferenceid="conf1"),
    Response(200),
    Response(405, "Conference already exists", "en", conferenceid="conf1"),
    Response(200, "Conference created", connectionid="x:y"),
    Event(ActiveTalkersNotify("conf1", (ActiveTalker("a:b"), ActiveTalker(conferenceid="c2")))),
    Event(ActiveTalkersNotify("conf1")),
    Event(UnjoinNotify(0, "a:b", "conf1")),
    Event(UnjoinNotify(2, "a:b", "conf1", "connection gone", "en")),
    Event(ConferenceExit("conf1", 0)),
    Event(ConferenceExit("conf1", 3, "execution error", "en")),
    Event(),
    AuditResponse(200),
    AuditResponse(
        200,
        "ok",
        "en",
        Capabilities(CODECS),
        Mixers(
            (
                ConferenceAudit(
                    "conf1", CODECS[:1], ("a:b", "c:d"), VideoLayout(VideoLayoutKind.QUAD_VIEW)
                ),
                ConferenceAudit("conf2"),
                ConferenceAudit("conf3", participants=()),
            ),
            (JoinAudit("a:b", "conf1"), JoinAudit("c:d", "conf1")),
        ),
    ),
    AuditResponse(406, "no such conference", capabilities=Capabilities(), mixers=Mixers()),
]


@pytest.mark.parametrize("message", EVERY_ELEMENT, ids=lambda m: type(m).__name__)
def test_every_element_encodes_valid_and_round_trips(message: MixerMessage) -> None:
    body = encode(message)
    document = etree.fromstring(body)
    assert schema().validate(document), schema().error_log
    assert document.tag == f"{{{NAMESPACE}}}mscmixer" and document.get("version") == "1.0"
    assert decode(body) == message


def test_every_element_of_section_4_is_covered() -> None:
    names = set()
    for message in EVERY_ELEMENT:
        names |= {str(e.tag).split("}")[1] for e in etree.fromstring(encode(message)).iter()}
    xsd = etree.parse(str(SCHEMA_DIR / "mixer.xsd")).getroot()
    found = xsd.xpath("//xsd:element/@name", namespaces={"xsd": "http://www.w3.org/2001/XMLSchema"})
    declared = {str(name) for name in cast("list[str]", found)}
    assert declared - names == set()


def test_desclang_on_the_root() -> None:
    body = encode(Response(200), desclang="en")
    assert etree.fromstring(body).get("desclang") == "en"


def test_defaults_are_implicit() -> None:
    body = encode(Join("a:b", "c", (Stream("audio"),)))
    assert body == (
        b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0">'
        b'<join id1="a:b" id2="c"><stream media="audio"/></join></mscmixer>'
    )


def test_rfc6505_example_decodes() -> None:
    body = b"""<mscmixer version="1.0" xmlns="urn:ietf:params:xml:ns:msc-mixer">
      <createconference conferenceid="conference1" reserved-talkers="3">
        <audio-mixing type="nbest" n="3"/>
        <subscribe><active-talkers-sub interval="4"/></subscribe>
      </createconference></mscmixer>"""
    assert decode(body) == CreateConference(
        "conference1",
        reserved_talkers=3,
        audio_mixing=AudioMixing(AudioMixType.NBEST, 3),
        subscribe=Subscribe(ActiveTalkersSub(4)),
    )


def test_foreign_namespace_content_is_skipped() -> None:
    body = b"""<mscmixer version="1.0" xmlns="urn:ietf:params:xml:ns:msc-mixer"
        xmlns:x="urn:example:ext"><join id1="a" id2="b" x:note="1"><stream media="audio"/>
        <x:extra/></join></mscmixer>"""
    assert decode(body) == Join("a", "b", (Stream("audio"),))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not xml", "well-formed"),
        (b'<mscmixer version="1.0"/>', "not mscmixer"),
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-ivr" version="1.0"><audit/></mscmixer>',
            "not mscmixer",
        ),
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="2.0"><audit/></mscmixer>',
            "schema",
        ),
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0"><join id1="a"/>'
            b"</mscmixer>",
            "schema",
        ),
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0"><dance/></mscmixer>',
            "schema",
        ),
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0">'
            b'<join id1="a" id2="b">'
            b'<stream media="audio" direction="sideways"/></join></mscmixer>',
            "schema",
        ),
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0"><createconference>'
            b"<subscribe/><codecs/></createconference></mscmixer>",
            "schema",
        ),  # order matters
        (
            b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" version="1.0">'
            b'<response status="2"/>'
            b"</mscmixer>",
            "schema",
        ),
        (
            b'<!DOCTYPE m [<!ENTITY a "aaaa">]><mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" '
            b'version="1.0"><response status="200" reason="&a;"/></mscmixer>',
            "DOCTYPE",
        ),
        # XML is case-sensitive: a lower-case doctype is no declaration, just broken markup.
        (
            b'<?xml version="1.0"?><!doctype m SYSTEM "http://example.com/x.dtd"><m/>',
            "not well-formed",
        ),
    ],
)
def test_bad_bodies_are_400_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(MixerDecodeError, match=fragment) as info:
        decode(body)
    assert info.value.status == 400


def test_doctype_hidden_in_utf16_is_refused() -> None:
    body = '<!DOCTYPE m [<!ENTITY a "x">]><mscmixer/>'.encode("utf-16")
    with pytest.raises(MixerDecodeError, match=r"DOCTYPE|well-formed"):
        decode(body)


def test_size_and_depth_caps() -> None:
    big = encode(Response(200, "x" * 5000))
    with pytest.raises(MixerDecodeError, match="too large"):
        decode(big, DecodeLimits(max_bytes=1000))
    deep = (
        b'<mscmixer xmlns="urn:ietf:params:xml:ns:msc-mixer" xmlns:x="urn:x" version="1.0">'
        b'<response status="200">' + b"<x:a>" * 40 + b"</x:a>" * 40 + b"</response></mscmixer>"
    )
    with pytest.raises(MixerDecodeError, match="nested too deeply"):
        decode(deep)


def test_status_codes_and_their_classes() -> None:
    assert MixerStatus.classify(406) is MixerStatus.CONFERENCE_DOES_NOT_EXIST
    assert MixerStatus.classify(499) is MixerStatus.SYNTAX_ERROR  # s4.6: unknown -> x00
    assert MixerStatus.classify(299) is MixerStatus.OK
    assert len(MixerStatus) == 21


def test_stored_schemas_are_the_rfc_text() -> None:
    for name, content in extract().items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == content


# ----------------------------------------------------------------- property round trip
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
_nmtoken = st.from_regex(r"[A-Za-z0-9._:-]{1,8}", fullmatch=True)
_streams = st.builds(
    Stream,
    media=st.sampled_from(["audio", "video"]),
    label=st.none() | _text,
    direction=st.sampled_from(Direction),
    volume=st.none() | st.builds(Volume, st.sampled_from(VolumeControlType), st.none() | _text),
    clamp=st.none() | st.builds(Clamp, _text),
    region=st.none() | _nmtoken,
    priority=st.none() | st.integers(1, 10**6),
)
_messages: st.SearchStrategy[MixerMessage] = st.one_of(
    st.builds(Join, _text, _text, st.lists(_streams, max_size=3).map(tuple)),
    st.builds(ModifyJoin, _text, _text, st.lists(_streams, max_size=3).map(tuple)),
    st.builds(
        CreateConference,
        st.none() | _text,
        st.integers(0, 1000),
        st.integers(0, 1000),
        audio_mixing=st.none()
        | st.builds(AudioMixing, st.sampled_from(AudioMixType), st.integers(0, 9)),
        video_layouts=st.none()
        | st.lists(
            st.builds(VideoLayout, st.sampled_from(VideoLayoutKind), st.integers(1, 9)), max_size=3
        ).map(tuple),
    ),
    st.builds(Response, st.integers(100, 999), st.none() | _text, conferenceid=st.none() | _text),
)


@settings(max_examples=100, deadline=None)
@given(_messages)
def test_property_round_trip(message: MixerMessage) -> None:
    body = encode(message)
    assert schema().validate(etree.fromstring(body))
    assert decode(body) == message
