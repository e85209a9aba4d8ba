"""Control-channel SDP (RFC 6230 s4): building and checking offers and answers."""

from __future__ import annotations

import pytest

from mediactrl.cfw.sdp import (
    CfwSdp,
    SdpError,
    build_answer,
    build_offer,
    parse_cfw_sdp,
    validate_answer,
)

# RFC 6230 s10, messages (1) and (2).
RFC6230_OFFER = """v=0
o=originator 2890844526 2890842808 IN IP4 controller.example.com
s=-
c=IN IP4 control-client.example.com
m=application 49153 TCP cfw
a=setup:active
a=connection:new
a=cfw-id:fndskuhHKsd783hjdla
"""
RFC6230_ANSWER = """v=0
o=responder 2890844600 2890842900 IN IP4 controller.example.com
s=-
c=IN IP4 control-server.example.com
m=application 49153 TCP cfw
a=setup:passive
a=connection:new
a=cfw-id:7JeDi23i7eiysi32
"""


def test_rfc6230_offer_and_answer() -> None:
    offer = parse_cfw_sdp(RFC6230_OFFER)
    assert offer == CfwSdp(
        "control-client.example.com", "IP4", 49153, "TCP", "active", "new", "fndskuhHKsd783hjdla"
    )
    answer = parse_cfw_sdp(RFC6230_ANSWER)
    assert (answer.setup, answer.cfw_id, answer.port) == ("passive", "7JeDi23i7eiysi32", 49153)
    validate_answer(offer, answer)


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


def test_control_channel_found_among_other_media() -> None:
    text = RFC6230_OFFER.replace(
        "m=application", "m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\nm=application"
    )
    assert parse_cfw_sdp(text).cfw_id == "fndskuhHKsd783hjdla"


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (("m=application 49153 TCP cfw", "m=audio 49153 RTP/AVP 0"), "no 'm=application"),
        (("a=cfw-id:fndskuhHKsd783hjdla\n", ""), "cfw-id"),
        (("a=setup:active", "a=setup:sideways"), "setup"),
        (("a=connection:new", "a=connection:old"), "connection"),
        (("c=IN IP4 control-client.example.com", "c=IN IPX host"), "connection line"),
        (("49153", "99999"), "port"),
        (("s=-", "garbage"), "not an SDP line"),
    ],
)
def test_invalid_offers_say_why(mutation: tuple[str, str], message: str) -> None:
    with pytest.raises(SdpError, match=message) as info:
        parse_cfw_sdp(RFC6230_OFFER.replace(*mutation))
    assert info.value.sip_status == 488


def test_two_control_channels_are_refused() -> None:
    block = RFC6230_OFFER[RFC6230_OFFER.index("m=") :]
    with pytest.raises(SdpError, match="more than one"):
        parse_cfw_sdp(RFC6230_OFFER + block)


def test_passive_offer_is_not_answered_passively() -> None:
    offer = parse_cfw_sdp(RFC6230_OFFER.replace("setup:active", "setup:passive"))
    with pytest.raises(SdpError, match="listens"):
        build_answer(offer, address="127.0.0.1", port=7575, cfw_id="other1", session_id=1)
