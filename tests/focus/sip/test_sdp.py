"""SDP parsing and serialization (RFC 4566)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
    parse_sdp,
)
from tests.paths import VECTORS


def test_rfc4566_example_parses_to_its_values_and_back() -> None:
    data = (VECTORS / "rfc4566" / "s5-example.sdp").read_bytes()
    sdp = parse_sdp(data)
    assert sdp.origin == Origin("jdoe", 2890844526, 2890842807, "10.47.16.5")
    assert sdp.session_name == "SDP Seminar"
    assert sdp.information == "A Seminar on the session description protocol"
    assert sdp.uri == "http://www.example.com/seminars/sdp.pdf"
    assert sdp.emails == ("j.doe@example.com (Jane Doe)",)
    assert sdp.connection == Connection("224.2.17.12/127")
    assert sdp.connection.host == "224.2.17.12"
    assert sdp.timings == (Timing(2873397496, 2873404696),)
    assert sdp.direction is Direction.RECVONLY
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        49170,
        "RTP/AVP",
        ("0",),
    )
    assert audio.rtpmaps == {0: RtpMap(0, "PCMU", 8000)}  # RFC 3551 static type
    assert video.rtpmaps == {99: RtpMap(99, "h263-1998", 90000)}
    # No media-level direction: the session-level recvonly applies (RFC 4566 s6).
    assert sdp.direction_of(0) is Direction.RECVONLY
    assert bytes(sdp) == data


@pytest.mark.parametrize("name", sorted(p.name for p in (VECTORS / "rfc3264").glob("*.sdp")))
def test_rfc3264_examples_round_trip(name: str) -> None:
    data = (VECTORS / "rfc3264" / name).read_bytes()
    sdp = parse_sdp(data)
    assert sdp.session_name == ""  # the RFC's examples use an empty s=
    assert bytes(sdp) == data


def test_media_level_details() -> None:
    sdp = parse_sdp(
        "v=0\n"
        "o=- 1 2 IN IP6 ::1\n"
        "s=-\n"
        "t=0 0\n"
        "m=audio 5004/2 RTP/AVP 96 101\n"
        "i=voice\n"
        "c=IN IP6 ::1\n"
        "b=AS:64\n"
        "a=rtpmap:96 opus/48000/2\n"
        "a=fmtp:96 useinbandfec=1; stereo=0\n"
        "a=rtpmap:101 telephone-event/48000\n"
        "a=fmtp:101 0-16\n"
        "a=ptime:20\n"
        "a=sendonly\n"
    )
    (audio,) = sdp.media
    assert audio.port_count == 2
    assert audio.information == "voice"
    assert sdp.connection_of(0) == Connection("::1", addrtype="IP6")
    assert audio.bandwidths == (("AS", 64),)
    assert audio.rtpmaps[96] == RtpMap(96, "opus", 48000, 2)
    assert audio.fmtps == {"96": "useinbandfec=1; stereo=0", "101": "0-16"}
    assert audio.attribute("ptime") == "20"
    assert audio.direction is Direction.SENDONLY
    assert audio.with_direction(Direction.INACTIVE).direction is Direction.INACTIVE
    assert audio.with_direction(None).direction is None
    assert str(sdp).endswith("a=sendonly\r\n")


def test_build_and_serialize() -> None:
    sdp = SessionDescription(
        origin=Origin("focus", 7, 1, "192.0.2.10"),
        connection=Connection("192.0.2.10"),
        media=(
            MediaDescription(
                "audio", 40000, "RTP/AVP", ("0",), attributes=(Attribute("rtpmap", "0 PCMU/8000"),)
            ),
        ),
    )
    assert str(sdp) == (
        "v=0\r\no=focus 7 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    assert sdp.bump_version().origin.version == 2
    assert parse_sdp(bytes(sdp)) == sdp


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("", "required"),
        ("v=0\no=a 1 1 IN IP4 h\n", "required"),
        ("o=a 1 1 IN IP4 h\nv=0\ns=x\nt=0 0\n", "v=, o=, s="),
        ("v=1\no=a 1 1 IN IP4 h\ns=x\nt=0 0\n", "version"),
        ("v=0\no=a 1 IN IP4 h\ns=x\nt=0 0\n", "o="),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\n", "t= line required"),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nm=audio x RTP/AVP 0\n", "m="),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nm=audio 70000 RTP/AVP 0\n", "m="),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nc=IN IP4\n", "c="),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nb=AS\n", "b="),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nx=1\n", "unknown type"),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nv = 0\n", "<type>=<value>"),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\nm=audio 1 RTP/AVP 0\nt=0 0\n", "media section"),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\na=rtpmap:x PCMU/8000\n", "rtpmap"),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nt=0 0\na=rtpmap:200 PCMU/8000\n", "rtpmap"),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nr=1\nt=0 0\n", "r= without t="),
        ("v=0\no=a 1 1 IN IP4 h\ns=x\nc=IN IP4 a\nc=IN IP4 b\nt=0 0\n", "second"),
    ],
)
def test_malformed_sdp_names_the_fault(text: str, fault: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(text)
    assert info.value.status == 400
    assert fault in info.value.reason


def test_direction_algebra() -> None:
    assert Direction.SENDONLY.mirror() is Direction.RECVONLY
    assert Direction.RECVONLY.mirror() is Direction.SENDONLY
    assert Direction.SENDRECV.mirror() is Direction.SENDRECV
    assert Direction.INACTIVE.mirror() is Direction.INACTIVE
    assert Direction.of(sends=True, receives=False) is Direction.SENDONLY


def test_null_connection_is_hold() -> None:
    assert Connection("0.0.0.0").is_null
    assert not Connection("192.0.2.1").is_null


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(
    lambda t: t != "rtpmap"
)
_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=20,
)


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    media = tuple(
        MediaDescription(
            draw(st.sampled_from(["audio", "video", "application"])),
            draw(st.integers(0, 65535)),
            draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "TCP/CFW", "TCP/TLS/CFW"])),
            tuple(draw(st.lists(st.integers(0, 127).map(str), min_size=1, max_size=4))),
            information=draw(st.none() | _text),
            connections=tuple(draw(st.lists(st.just(Connection("192.0.2.7")), max_size=1))),
            attributes=tuple(
                draw(st.lists(st.builds(Attribute, _token, st.none() | _text), max_size=4))
            ),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    return SessionDescription(
        origin=Origin(draw(_token), draw(st.integers(0, 2**63)), draw(st.integers(0, 2**63)), "h"),
        session_name=draw(_text),
        connection=draw(st.none() | st.just(Connection("192.0.2.1"))),
        attributes=tuple(
            draw(st.lists(st.builds(Attribute, _token, st.none() | _text), max_size=3))
        ),
        media=media,
    )


@settings(max_examples=100, deadline=None)
@given(descriptions())
def test_generated_descriptions_round_trip(sdp: SessionDescription) -> None:
    assert parse_sdp(bytes(sdp)) == sdp


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_sdp_error(data: bytes) -> None:
    try:
        sdp = parse_sdp(b"v=0\r\no=a 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\n" + data)
    except SdpError:
        return
    for index in range(len(sdp.media)):
        sdp.direction_of(index)
        assert isinstance(sdp.media[index].rtpmaps, dict)  # validated while parsing
    assert replace(sdp) == sdp
