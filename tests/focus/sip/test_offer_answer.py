"""RFC 3264 offer/answer, checked against the exchanges of RFC 3264 s10 and the rules of s6-s8."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.errors import LocalProtocolError
from focus.sip.offer_answer import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    LocalSession,
    MediaCapability,
    add_stream,
    create_answer,
    create_offer,
    hold,
    negotiate,
    remove_stream,
    resume,
)
from focus.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
)
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "rfc3264"
ALICE = LocalSession("host.anywhere.com", 2890844526, 2890844526, "alice", session_name="")
BOB = LocalSession("host.example.com", 2890844730, 2890844730, "bob", session_name="")
H261 = Codec("H261", 90000)
MPV = Codec("MPV", 90000)
G723 = Codec("G723", 8000)
G729 = Codec("G729", 8000)


def vector(name: str) -> SessionDescription:
    return parse_sdp((VECTORS / f"{name}.sdp").read_bytes())


def comparable(sdp: SessionDescription) -> SessionDescription:
    """Rejected streams compared by media, port 0 and proto only: RFC 3264's own examples
    differ in whether they keep rtpmaps on a rejected m= line."""
    media = tuple(MediaDescription(m.media, 0, m.proto, ()) if m.rejected else m for m in sdp.media)
    return replace(sdp, media=media)


# --- RFC 3264 s10.1 ----------------------------------------------------------------------


def test_s10_1_bob_rejects_the_h261_stream() -> None:
    offer = vector("10.1-offer")
    bob = [MediaCapability("audio", (PCMU,)), MediaCapability("video", (MPV,))]
    answer = create_answer(offer, BOB, bob, [49920, 51000, 53000])
    assert bytes(answer) == (VECTORS / "10.1-answer.sdp").read_bytes()


def test_s10_1_bob_reoffers_a_new_port_and_an_added_stream() -> None:
    previous = vector("10.1-answer")
    moved = replace(previous, media=(replace(previous.media[0], port=65422), *previous.media[1:]))
    events = MediaDescription(
        "audio",
        51434,
        "RTP/AVP",
        ("110",),
        attributes=(Attribute("rtpmap", "110 telephone-events/8000"), Attribute("recvonly")),
    )
    reoffer, index = add_stream(moved, events)
    assert index == 3
    assert bytes(reoffer) == (VECTORS / "10.1-reoffer.sdp").read_bytes()


def test_s10_1_alice_answers_the_reoffer_sendonly() -> None:
    reoffer = vector("10.1-reoffer")
    alice = [
        MediaCapability("audio", (PCMU, Codec("telephone-events", 8000))),
        MediaCapability("video", (H261, MPV)),
    ]
    previous = vector("10.1-offer")
    answer = create_answer(reoffer, ALICE, alice, [49170, 51372, 53000, 53122], previous=previous)
    assert answer.origin.version == 2890844527  # changed, so bumped (s8)
    assert comparable(answer) == comparable(vector("10.1-reanswer"))
    assert answer.media[3].direction is Direction.SENDONLY  # mirrors recvonly (s6.1)
    assert answer.media[1].rejected  # removed by the offerer, stays removed (s8.2)


# --- RFC 3264 s10.2 ----------------------------------------------------------------------


def test_s10_2_one_of_n_codec_selection() -> None:
    alice_caps = MediaCapability("audio", (PCMU, G723, G729), direction=Direction.INACTIVE)
    offer = create_offer(ALICE, [(alice_caps, 62986)])
    assert bytes(offer) == (VECTORS / "10.2-offer.sdp").read_bytes()

    bob_caps = [MediaCapability("audio", (PCMU, G723))]
    bob = replace(BOB, session_version=2890844731)
    answer = create_answer(offer, bob, bob_caps, [54344])
    assert bytes(answer) == (VECTORS / "10.2-answer.sdp").read_bytes()

    locked = MediaCapability("audio", (Codec("G723", 8000, payload_type=4),))
    reoffer = create_offer(
        ALICE, [(locked, 62986)], previous=offer, directions=[Direction.SENDRECV]
    )
    assert bytes(reoffer) == (VECTORS / "10.2-reoffer.sdp").read_bytes()

    reanswer = create_answer(reoffer, bob, bob_caps, [54344], previous=answer)
    assert bytes(reanswer) == (VECTORS / "10.2-reanswer.sdp").read_bytes()

    (stream,) = negotiate(reoffer, reanswer)
    assert stream.accepted
    assert stream.codec == RtpMap(4, "G723", 8000)
    assert (stream.remote_address, stream.remote_port) == ("host.example.com", 54344)
    assert stream.direction is Direction.SENDRECV


# --- rules of s6 -------------------------------------------------------------------------

FOCUS = LocalSession("192.0.2.10", 42, 1, "focus")
AUDIO = MediaCapability("audio", (PCMA, PCMU, TELEPHONE_EVENT))


def offer_of(*lines: str) -> SessionDescription:
    head = "v=0\r\no=peer 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    return parse_sdp(head + "".join(f"{line}\r\n" for line in lines))


def test_codec_intersection_keeps_the_offerers_order_and_numbers() -> None:
    offer = offer_of(
        "m=audio 4000 RTP/AVP 18 0 96 8 101",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
    )
    answer = create_answer(offer, FOCUS, [AUDIO], [5000])
    (audio,) = answer.media
    assert audio.formats == ("0", "8", "101")  # offerer's order, not ours (PCMA first)
    assert audio.rtpmaps[101] == RtpMap(101, "telephone-event", 8000)
    assert audio.fmtps == {"101": "0-16"}  # our own fmtp for what we receive
    assert audio.port == 5000
    assert audio.direction is None  # plain sendrecv, as offered
    assert answer.connection == Connection("192.0.2.10")


def test_dynamic_payload_type_numbers_follow_the_offer() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 120", "a=rtpmap:120 PCMA/8000")
    (audio,) = create_answer(offer, FOCUS, [AUDIO], [5000]).media
    assert audio.formats == ("120",)
    assert audio.rtpmaps[120] == RtpMap(120, "PCMA", 8000)


def test_no_common_codec_rejects_the_stream_with_port_zero() -> None:
    offer = offer_of(
        "m=audio 4000 RTP/AVP 18 101",
        "a=rtpmap:101 telephone-event/8000",  # events alone are no codec
        "m=video 4002 RTP/AVP 31",
        "m=audio 4004 RTP/SAVP 0",  # unsupported profile
        "m=audio 0 RTP/AVP 0",  # already disabled by the offerer
        "m=audio 4006 RTP/AVP 0",
    )
    answer = create_answer(offer, FOCUS, [AUDIO], [5000, 5002, 5004, 5006, 5008])
    assert [m.port for m in answer.media] == [0, 0, 0, 0, 5008]
    assert [m.media for m in answer.media] == ["audio", "video", "audio", "audio", "audio"]
    assert answer.media[1].formats == ("31",)
    streams = negotiate(answer, offer)
    assert [s.accepted for s in streams] == [False, False, False, False, True]


@pytest.mark.parametrize(
    ("offered", "ours", "expected"),
    [
        ("sendonly", Direction.SENDRECV, Direction.RECVONLY),
        ("recvonly", Direction.SENDRECV, Direction.SENDONLY),
        ("inactive", Direction.SENDRECV, Direction.INACTIVE),
        ("sendrecv", Direction.SENDRECV, Direction.SENDRECV),
        ("sendrecv", Direction.RECVONLY, Direction.RECVONLY),
        ("sendonly", Direction.SENDONLY, Direction.INACTIVE),
        ("recvonly", Direction.RECVONLY, Direction.INACTIVE),
    ],
)
def test_direction_is_mirrored_and_intersected(
    offered: str, ours: Direction, expected: Direction
) -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", f"a={offered}")
    capability = replace(AUDIO, direction=ours)
    (audio,) = create_answer(offer, FOCUS, [capability], [5000]).media
    assert audio.direction is expected


def test_session_level_direction_applies() -> None:
    offer = parse_sdp(
        "v=0\r\no=p 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        "a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n"
    )
    (audio,) = create_answer(offer, FOCUS, [AUDIO], [5000]).media
    assert audio.direction is Direction.RECVONLY


def test_rfc2543_hold_with_null_address() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "c=IN IP4 0.0.0.0")
    answer = create_answer(offer, FOCUS, [AUDIO], [5000])
    assert answer.media[0].direction is Direction.RECVONLY
    (stream,) = negotiate(answer, offer)
    assert stream.direction is Direction.RECVONLY


def test_ptime_is_echoed() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "a=ptime:30")
    (audio,) = create_answer(offer, FOCUS, [AUDIO], [5000]).media
    assert audio.attribute("ptime") == "30"


def test_answer_needs_a_port_per_stream() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "m=audio 4002 RTP/AVP 0")
    with pytest.raises(LocalProtocolError):
        create_answer(offer, FOCUS, [AUDIO], [5000])


# --- s8: re-offers and re-answers ------------------------------------------------------


def test_reanswer_keeps_version_when_nothing_changed_and_bumps_when_it_did() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0 8")
    first = create_answer(offer, FOCUS, [AUDIO], [5000])
    same = create_answer(offer, FOCUS, [AUDIO], [5000], previous=first)
    assert same == first
    held = create_answer(hold(offer), FOCUS, [AUDIO], [5000], previous=first)
    assert held.origin.version == first.origin.version + 1
    assert held.origin.session_id == first.origin.session_id


def test_reoffer_removing_m_lines_is_refused_with_488() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "m=audio 4002 RTP/AVP 0")
    first = create_answer(offer, FOCUS, [AUDIO], [5000, 5002])
    shorter = replace(offer, media=offer.media[:1])
    with pytest.raises(SdpError) as info:
        create_answer(shorter, FOCUS, [AUDIO], [5000], previous=first)
    assert info.value.status == 488


def test_hold_and_resume_our_offer() -> None:
    offer = create_offer(
        FOCUS, [(AUDIO, 5000), (replace(AUDIO, direction=Direction.RECVONLY), 5002)]
    )
    assert offer.media[0].direction is None
    held = hold(offer)
    assert held.origin.version == offer.origin.version + 1
    assert [m.direction for m in held.media] == [Direction.SENDONLY, Direction.INACTIVE]
    # The peer answers the hold with the mirrored direction.
    answer = create_answer(held, BOB, [AUDIO], [6000, 6002])
    assert [m.direction for m in answer.media] == [Direction.RECVONLY, Direction.INACTIVE]
    streams = negotiate(held, answer)
    assert [s.direction for s in streams] == [Direction.SENDONLY, Direction.INACTIVE]
    resumed = resume(held)
    assert resumed.origin.version == offer.origin.version + 2
    assert [m.direction for m in resumed.media] == [None, None]


def test_remove_and_add_streams() -> None:
    offer = create_offer(FOCUS, [(AUDIO, 5000), (AUDIO, 5002)])
    removed = remove_stream(offer, 0)
    assert removed.media[0].rejected and not removed.media[1].rejected
    assert len(removed.media) == 2  # the m= line stays (s8.2)
    new = MediaDescription("video", 5004, "RTP/AVP", ("31",))
    reused, index = add_stream(removed, new, reuse_slot=True)
    assert index == 0 and reused.media[0] == new
    appended, index = add_stream(removed, new)
    assert index == 2 and len(appended.media) == 3
    assert appended.origin.version == removed.origin.version + 1


def test_reoffer_must_not_shrink() -> None:
    offer = create_offer(FOCUS, [(AUDIO, 5000), (AUDIO, 5002)])
    with pytest.raises(LocalProtocolError):
        create_offer(FOCUS, [(AUDIO, 5000)], previous=offer)


def test_offer_assigns_payload_types() -> None:
    caps = MediaCapability(
        "audio", (Codec("opus", 48000, 2), PCMU, Codec("G722", 8000), TELEPHONE_EVENT)
    )
    (audio,) = create_offer(FOCUS, [(caps, 5000)]).media
    assert audio.formats == ("96", "0", "9", "101")
    assert audio.rtpmaps[96] == RtpMap(96, "opus", 48000, 2)
    assert audio.fmtps == {"101": "0-16"}


def test_negotiate_mismatched_answer() -> None:
    offer = create_offer(FOCUS, [(AUDIO, 5000)])
    with pytest.raises(SdpError):
        negotiate(offer, replace(offer, media=()))
    video = replace(offer, media=(replace(offer.media[0], media="video"),))
    with pytest.raises(SdpError):
        negotiate(offer, video)


def test_negotiate_reports_telephone_event_and_remote_address() -> None:
    offer = create_offer(FOCUS, [(AUDIO, 5000)])
    answer = create_answer(offer, BOB, [MediaCapability("audio", (PCMU, TELEPHONE_EVENT))], [6000])
    (stream,) = negotiate(offer, answer)
    assert stream.codec == RtpMap(0, "PCMU", 8000)
    assert stream.telephone_event == 101
    assert (stream.remote_address, stream.remote_port) == ("host.example.com", 6000)


def test_non_rtp_streams_match_formats_literally() -> None:
    offer = offer_of("m=application 9 TCP/CFW *", "m=application 9 TCP/BFCP *")
    cfw = MediaCapability("application", (), ("TCP/CFW",), formats=("*",))
    answer = create_answer(offer, FOCUS, [cfw], [7575, 7576])
    assert [(m.port, m.formats) for m in answer.media] == [(7575, ("*",)), (0, ("*",))]
    strict = replace(cfw, formats=("cfw",))
    assert create_answer(offer, FOCUS, [strict], [7575, 0]).media[0].rejected


# --- properties --------------------------------------------------------------------------

CODECS = [PCMU, PCMA, G723, G729, Codec("opus", 48000, 2), Codec("G722", 8000), TELEPHONE_EVENT]
capabilities = st.builds(
    MediaCapability,
    st.sampled_from(["audio", "video"]),
    st.lists(st.sampled_from(CODECS), min_size=1, max_size=5, unique=True).map(tuple),
    st.just(("RTP/AVP",)),
    st.sampled_from(list(Direction)),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(capabilities, st.integers(0, 65535)), min_size=1, max_size=4),
    st.lists(capabilities, max_size=3),
)
def test_answers_pair_up_with_their_offers(
    offered: list[tuple[MediaCapability, int]], ours: list[MediaCapability]
) -> None:
    offer = parse_sdp(bytes(create_offer(FOCUS, offered)))
    answer = create_answer(offer, BOB, ours, [6000 + 2 * i for i in range(len(offer.media))])
    assert parse_sdp(bytes(answer)) == answer
    assert len(answer.media) == len(offer.media)
    streams = negotiate(offer, answer)
    for i, (o, a) in enumerate(zip(offer.media, answer.media, strict=True)):
        assert a.media == o.media
        if o.rejected:
            assert a.rejected
        if a.rejected:
            assert not streams[i].accepted
            continue
        # Formats: a subsequence of the offer's, same numbers, same order (s6.1).
        positions = [o.formats.index(f) for f in a.formats]
        assert positions == sorted(positions)
        assert any(a.rtpmaps[int(f)].encoding != "telephone-event" for f in a.formats)
        # Direction: never more than the mirror of the offer (s6.1).
        offered_dir, answered = offer.direction_of(i), answer.direction_of(i)
        assert not (answered.sends and not offered_dir.receives)
        assert not (answered.receives and not offered_dir.sends)
        codec = streams[i].codec
        assert streams[i].accepted and codec is not None
        assert str(codec.payload_type) in a.formats
