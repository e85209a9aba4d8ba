"""Control-channel SDP (RFC 6230 s4): building and checking offers and answers."""

from __future__ import annotations

import pytest

from focus.sip.sdp import SdpError, parse_sdp
from mediactrl.cfw.sdp import (
    CfwSdp,
    build_answer,
    build_offer,
    is_cfw_media,
    parse_cfw_sdp,
    validate_answer,
)
from tests.paths import VECTORS


def vector(name: str) -> str:
    return (VECTORS / name).read_bytes().decode("ascii")


# RFC 6230 s10, messages (1) and (2), with the t= line they lack (see the vectors' README).
RFC6230_OFFER = vector("rfc6230/10-1-offer.sdp").replace("s=-\r\n", "s=-\r\nt=0 0\r\n")
RFC6230_ANSWER = vector("rfc6230/10-2-answer.sdp").replace("s=-\r\n", "s=-\r\nt=0 0\r\n")


def test_rfc6230_offer_and_answer() -> None:
    offer = parse_cfw_sdp(RFC6230_OFFER)
    assert offer == CfwSdp(
        "control-client.example.com", "IP4", 49153, "TCP", "active", "new", "fndskuhHKsd783hjdla"
    )
    answer = parse_cfw_sdp(RFC6230_ANSWER)
    assert (answer.setup, answer.cfw_id, answer.port) == ("passive", "7JeDi23i7eiysi32", 49153)
    validate_answer(offer, answer)


def test_rfc6230_examples_lack_the_timing_line() -> None:
    with pytest.raises(SdpError, match="t= line required") as info:
        parse_cfw_sdp(vector("rfc6230/10-1-offer.sdp"))
    assert info.value.status == 400  # malformed SDP (RFC 4566 s5), not a CFW refusal


def test_rfc7058_comedia_negotiation() -> None:
    offer = parse_cfw_sdp(vector("rfc7058/5.1-1-offer.sdp").encode())
    assert offer == CfwSdp("as.example.com", "IP4", 5757, "TCP", "active", "new", "5feb6486792a")
    answer = parse_cfw_sdp(parse_sdp(vector("rfc7058/5.1-3-answer.sdp")))
    assert (answer.address, answer.port, answer.setup) == ("ms.example.net", 7575, "passive")
    with pytest.raises(SdpError, match="reuses the offer's cfw-id") as info:
        validate_answer(offer, answer)  # the RFC's answer breaks RFC 6230 s4.2
    assert info.value.status == 488


def test_built_offer_and_answer_fit_together() -> None:
    text = build_offer(address="127.0.0.1", cfw_id="5feb6486792a", session_id=42)
    assert "m=application 9 TCP cfw\r\n" in text
    assert "a=setup:active\r\na=connection:new\r\na=cfw-id:5feb6486792a\r\n" in text
    offer = parse_cfw_sdp(text)
    assert offer.port == 9 and offer.setup == "active"
    answer_text = build_answer(offer, address="::1", port=7575, cfw_id="a1b2c3", session_id=7)
    assert "c=IN IP6 ::1\r\n" in answer_text and "a=setup:passive\r\n" in answer_text
    answer = parse_cfw_sdp(answer_text)
    assert (answer.address, answer.port, answer.cfw_id) == ("::1", 7575, "a1b2c3")
    validate_answer(offer, answer)
    tls = parse_cfw_sdp(build_offer(address="192.0.2.1", cfw_id="x1", session_id=1, tls=True))
    assert tls.proto == "TCP/TLS"


def test_answer_must_use_its_own_cfw_id() -> None:
    offer = parse_cfw_sdp(RFC6230_OFFER)
    with pytest.raises(ValueError, match="differ"):
        build_answer(offer, address="127.0.0.1", port=7575, cfw_id=offer.cfw_id, session_id=1)
    same = CfwSdp("h", "IP4", 1, "TCP", "passive", "new", offer.cfw_id)
    with pytest.raises(SdpError, match="cfw-id"):
        validate_answer(offer, same)


def test_rejected_channel() -> None:
    offer = parse_cfw_sdp(RFC6230_OFFER)
    rejected = parse_cfw_sdp(RFC6230_ANSWER.replace("49153", "0"))
    assert rejected.rejected
    with pytest.raises(SdpError, match="rejected"):
        validate_answer(offer, rejected)
    bare = parse_cfw_sdp(RFC6230_ANSWER.replace("49153", "0").split("a=")[0])
    assert bare.rejected and bare.cfw_id == ""  # a rejected stream needs no attributes


def test_control_channel_found_among_other_media() -> None:
    text = RFC6230_OFFER.replace(
        "m=application", "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=application"
    )
    assert parse_cfw_sdp(text).cfw_id == "fndskuhHKsd783hjdla"
    media = parse_sdp(text).media
    assert [is_cfw_media(m) for m in media] == [False, True]


def test_session_level_setup_and_connection() -> None:
    """RFC 4145 s4, s5: setup and connection may be session-level; media level wins."""
    text = RFC6230_OFFER.replace("a=setup:active\r\na=connection:new\r\n", "")
    text = text.replace("t=0 0\r\n", "t=0 0\r\na=setup:actpass\r\na=connection:existing\r\n")
    offer = parse_cfw_sdp(text)
    assert (offer.setup, offer.connection) == ("actpass", "existing")
    defaults = parse_cfw_sdp(RFC6230_OFFER.replace("a=setup:active\r\na=connection:new\r\n", ""))
    assert (defaults.setup, defaults.connection) == ("active", "new")  # RFC 4145 defaults


@pytest.mark.parametrize(
    ("mutation", "message", "status"),
    [
        (("m=application 49153 TCP cfw", "m=audio 49153 RTP/AVP 0"), "no 'm=application", 488),
        (("a=cfw-id:fndskuhHKsd783hjdla\r\n", ""), "no a=cfw-id", 488),
        (("a=cfw-id:fndskuhHKsd783hjdla", "a=cfw-id"), "bad a=cfw-id", 488),
        (("a=cfw-id:fndskuhHKsd783hjdla", "a=cfw-id:bad@id"), "bad a=cfw-id", 488),
        (("a=setup:active", "a=setup:sideways"), "setup", 488),
        (("a=setup:active", "a=setup"), "bad a=setup", 488),
        (("a=connection:new", "a=connection:old"), "connection", 488),
        (("c=IN IP4 control-client.example.com", "c=IN IPX host"), "connection line", 488),
        (("c=IN IP4 control-client.example.com\r\n", ""), "no c= line", 488),
        (("49153", "99999"), "malformed m=", 400),
        (("s=-", "garbage"), "not <type>=<value>", 400),
    ],
)
def test_invalid_offers_say_why(mutation: tuple[str, str], message: str, status: int) -> None:
    with pytest.raises(SdpError, match=message) as info:
        parse_cfw_sdp(RFC6230_OFFER.replace(*mutation))
    assert info.value.status == status


def test_two_control_channels_are_refused() -> None:
    block = RFC6230_OFFER[RFC6230_OFFER.index("m=") :]
    with pytest.raises(SdpError, match="more than one"):
        parse_cfw_sdp(RFC6230_OFFER + block)


def test_passive_offer_is_not_answered_passively() -> None:
    offer = parse_cfw_sdp(RFC6230_OFFER.replace("setup:active", "setup:passive"))
    with pytest.raises(SdpError, match="listens") as info:
        build_answer(offer, address="127.0.0.1", port=7575, cfw_id="other1", session_id=1)
    assert info.value.status == 488
