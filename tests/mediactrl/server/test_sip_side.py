"""The media server's SIP side over real UDP/TCP sockets: control channels (RFC 6230 s4) and
media legs (3PCC), driven by the project's own UA as the focus would."""

from __future__ import annotations

import asyncio
import random
import secrets

import pytest

from focus.sip.aio.ua import UserAgent
from focus.sip.offer_answer import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    LocalSession,
    MediaCapability,
    create_answer,
    create_offer,
)
from focus.sip.sdp import Direction, SessionDescription, parse_sdp
from focus.sip.uacore import CallAnswered, CallFailedError, CallState, RequestCompleted, UAEvent
from mediactrl.cfw.sdp import build_offer, parse_cfw_sdp
from mediactrl.client import channel_offer
from mediactrl.legs import MediaLegError, MediaLegs
from mediactrl.media.errors import MediaUsageError
from mediactrl.media.g711 import Law
from mediactrl.mixer import model as m
from mediactrl.server.app import MediaServer, MediaServerConfig, start_media_server
from mediactrl.server.mixer_service import swapped_connection_id
from tests.mediactrl.client.test_channel import until
from tests.mediactrl.media.phones import Phone, press_key
from tests.mediactrl.server.conftest import DtmfLog, sip_channel


def phone_sdp(
    port: int,
    *,
    codecs: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT),
    direction: Direction | None = None,
    version: int = 1,
) -> bytes:
    local = LocalSession("127.0.0.1", 4242, version)
    cap = MediaCapability(codecs=codecs)
    directions = [direction] if direction is not None else None
    return create_offer(local, [(cap, port)], directions=directions).to_bytes()


def audio_of(sdp: bytes) -> tuple[SessionDescription, int]:
    parsed = parse_sdp(sdp)
    return parsed, parsed.media[0].port


# ------------------------------------------------------------------ control channel


async def test_control_invite_answered_passive_with_listener_port_and_own_cfw_id(
    media_server: MediaServer, ua: UserAgent
) -> None:
    offer = channel_offer("127.0.0.1")
    call = await ua.invite(media_server.sip_uri, offer.sdp.encode())
    answer = parse_cfw_sdp(call.remote_sdp.decode())
    assert answer.setup == "passive"
    assert answer.connection == "new"
    assert (answer.address, answer.port) == media_server.cfw_address
    assert answer.cfw_id != offer.cfw_id
    assert media_server.control.expects(offer.cfw_id)
    await ua.bye(call)
    await until(lambda: not media_server.control.expects(offer.cfw_id))


async def test_channel_over_sip_carries_control_and_bye_ends_it(
    media_server: MediaServer, ua: UserAgent
) -> None:
    async with sip_channel(ua, media_server.sip_uri, 5) as (opener, client):
        answer = await client.mixer(m.CreateConference("sipconf1"))
        assert isinstance(answer, m.Response) and answer.status == 200
        first = opener.call
        assert first is not None
        # BYE of the channel's dialog ends the channel (s4.2): the client notices the drop
        # and negotiates a new channel with a new INVITE, keeping its conferences (same cfw-id).
        await ua.bye(first)
        await until(lambda: opener.call not in (None, first) and client.is_up, timeout=5)
        audit = await client.mixer(m.Audit())
        assert isinstance(audit, m.AuditResponse)
        assert audit.mixers is not None
        assert [c.conferenceid for c in audit.mixers.conferences] == ["sipconf1"]
    await until(lambda: not media_server.control.open_channels)


@pytest.mark.parametrize(
    ("sdp", "why"),
    [
        (
            build_offer(address="127.0.0.1", cfw_id="x1", session_id=1).replace(
                "setup:active", "setup:passive"
            ),
            "passive",
        ),
        (build_offer(address="127.0.0.1", cfw_id="x2", session_id=1, tls=True), "TLS"),
        (
            build_offer(address="127.0.0.1", cfw_id="x3", session_id=1).replace(
                "m=application 9", "m=application 0"
            ),
            "port 0",
        ),
        (
            build_offer(address="127.0.0.1", cfw_id="x4", session_id=1).replace(
                "a=cfw-id:x4\r\n", ""
            ),
            "cfw-id",
        ),
        ("v=0\r\nthis is not sdp\r\n", "garbage"),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=video 5000 RTP/AVP 31\r\n",
            "video only",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 5000 RTP/SAVP 0\r\n",
            "SRTP audio",
        ),
    ],
)
async def test_unusable_offers_get_488_with_a_reason(
    media_server: MediaServer, ua: UserAgent, sdp: str, why: str
) -> None:
    with pytest.raises(CallFailedError) as failed:
        await ua.invite(media_server.sip_uri, sdp.encode())
    assert failed.value.status == 488, why
    assert failed.value.reason.startswith("Not Acceptable Here - "), failed.value.reason
    assert not media_server.sip.channels and not media_server.sip.legs


# ------------------------------------------------------------------ media legs


async def test_leg_with_offer_gets_an_endpoint_named_by_the_dialog_tags(
    media_server: MediaServer, legs: MediaLegs
) -> None:
    phone = Phone(None)
    await phone.open()
    try:
        leg = await legs.open(phone_sdp(phone.address[1]))
        answer, port = audio_of(leg.answer)
        assert answer.media[0].formats[0] == "0"  # PCMU: the offerer's first choice
        assert "101" in answer.media[0].formats  # telephone-event kept next to it
        # The media server names the dialog local:remote; the focus the other way (A.1).
        ms_id = swapped_connection_id(leg.connection)
        assert leg.connection == f"{leg.call.local_tag}:{leg.call.dialog.id.remote_tag}"  # type: ignore[union-attr]
        endpoint = media_server.engine.endpoint(ms_id)
        assert endpoint.local_port == port
        assert endpoint.remote == phone.address
        assert endpoint.payload_types.send is Law.PCMU
        assert endpoint.payload_types.telephone_event == 101
        await legs.close(leg)
        await until(lambda: not media_server.sip.legs)
        await until(lambda: media_server.engine.stats().endpoints == 0)
        with pytest.raises(MediaUsageError):
            media_server.engine.endpoint(ms_id)
    finally:
        phone.close()


async def test_pcma_only_offer_is_answered_pcma(media_server: MediaServer, legs: MediaLegs) -> None:
    leg = await legs.open(phone_sdp(30000, codecs=(PCMA,)))
    answer, _ = audio_of(leg.answer)
    assert answer.media[0].formats == ("8",)
    endpoint = media_server.engine.endpoint(swapped_connection_id(leg.connection))
    assert endpoint.payload_types.send is Law.PCMA
    assert endpoint.payload_types.telephone_event is None
    await legs.close(leg)


async def test_no_common_codec_is_488(media_server: MediaServer, legs: MediaLegs) -> None:
    g729 = Codec("G729", 8000, payload_type=18)
    with pytest.raises(MediaLegError) as failed:
        await legs.open(phone_sdp(30000, codecs=(g729,)))
    assert failed.value.status == 488  # the participant's SDP is the problem
    assert "codec" in str(failed.value)
    assert not legs.open_legs
    await until(lambda: media_server.engine.stats().endpoints == 0)


async def test_reinvite_moves_the_remote_and_hold_stops_sending(
    media_server: MediaServer, ua: UserAgent, legs: MediaLegs
) -> None:
    leg = await legs.open(phone_sdp(30000))
    ms_id = swapped_connection_id(leg.connection)
    assert media_server.engine.endpoint(ms_id).remote == ("127.0.0.1", 30000)
    # The participant moves to another port (re-offer, version bumped, RFC 3264 s8).
    ua.core.reinvite(leg.call, phone_sdp(30010, version=2), ua.now)
    ua.flush()
    await until(lambda: media_server.engine.endpoint(ms_id).remote == ("127.0.0.1", 30010))
    # Hold: the participant only sends; the media server must not send to it (s8.4).
    ua.core.reinvite(leg.call, phone_sdp(30010, direction=Direction.SENDONLY, version=3), ua.now)
    ua.flush()
    await until(lambda: media_server.engine.endpoint(ms_id).remote is None)
    assert media_server.sip.legs[next(iter(media_server.sip.legs))].stream is not None
    stream = next(iter(media_server.sip.legs.values())).stream
    assert stream is not None and stream.direction is Direction.RECVONLY
    await legs.close(leg)


async def test_offerless_invite_gets_our_offer_and_the_ack_answer_sets_the_remote(
    media_server: MediaServer, legs: MediaLegs
) -> None:
    leg = await legs.open(b"")
    assert leg.needs_answer
    offer = parse_sdp(leg.answer)
    assert offer.media[0].media == "audio" and offer.media[0].port != 0
    ms_id = swapped_connection_id(leg.connection)
    assert media_server.engine.endpoint(ms_id).remote is None  # no answer yet
    # The participant's answer (3PCC flow I: the focus relays it in the ACK).
    answer = create_answer(
        offer, LocalSession("127.0.0.1", 77), (MediaCapability(codecs=(PCMA,)),), [30020]
    )
    leg.complete(answer.to_bytes())
    await until(lambda: media_server.engine.endpoint(ms_id).remote == ("127.0.0.1", 30020))
    assert media_server.engine.endpoint(ms_id).payload_types.send is Law.PCMA
    await legs.close(leg)
    await until(lambda: media_server.engine.stats().endpoints == 0)


async def test_offerless_invite_with_an_empty_ack_is_hung_up(
    media_server: MediaServer, legs: MediaLegs
) -> None:
    leg = await legs.open(b"")
    leg.complete(b"")  # no answer in the ACK (RFC 3264 s5: the offer in the 2xx needs one)
    with pytest.raises(ValueError, match="nothing to answer"):
        leg.complete(b"")
    await until(lambda: not media_server.sip.legs)
    await until(lambda: media_server.engine.stats().endpoints == 0)


async def test_dtmf_from_a_leg_is_reported_by_connection(
    media_server: MediaServer, dtmf: DtmfLog, legs: MediaLegs
) -> None:
    phone = Phone(None)
    await phone.open()
    try:
        leg = await legs.open(phone_sdp(phone.address[1]))
        _, port = audio_of(leg.answer)
        press_key(phone, port, secrets.randbits(16), "5")
        await until(lambda: bool(dtmf.digits))
        await asyncio.sleep(0.1)
        assert dtmf.digits == [(swapped_connection_id(leg.connection), "5")]
        await legs.close(leg)
    finally:
        phone.close()


async def test_unusable_reoffer_is_488_and_the_session_stays(
    media_server: MediaServer, ua: UserAgent, legs: MediaLegs
) -> None:
    completed: list[int] = []

    def watch(_: UserAgent, event: UAEvent) -> None:
        if isinstance(event, RequestCompleted) and event.request.method == "INVITE":
            completed.append(event.response.status)

    ua.on_event = watch
    leg = await legs.open(phone_sdp(30030))
    ms_id = swapped_connection_id(leg.connection)
    g729 = Codec("G729", 8000, payload_type=18)
    ua.core.reinvite(leg.call, phone_sdp(30040, codecs=(g729,), version=2), ua.now)
    ua.flush()
    await until(lambda: completed == [488])
    endpoint = media_server.engine.endpoint(ms_id)
    assert endpoint.remote == ("127.0.0.1", 30030)
    assert endpoint.payload_types.send is Law.PCMU
    await legs.close(leg)


async def test_no_free_rtp_port_is_503(ua: UserAgent) -> None:
    base = random.randrange(20000, 60000, 2)
    server = await start_media_server(MediaServerConfig(sip_port=0, rtp_ports=(base, base + 1)))
    try:
        legs = MediaLegs(ua, server.sip_uri)
        await legs.open(phone_sdp(30050))
        with pytest.raises(MediaLegError) as failed:
            await legs.open(phone_sdp(30052))
        assert failed.value.status == 503
        assert "RTP port" in str(failed.value)
        assert len(legs.open_legs) == 1
        await legs.close_all()
    finally:
        await server.close()


async def test_closing_the_server_ends_every_dialog_with_bye(
    media_server: MediaServer, ua: UserAgent, legs: MediaLegs
) -> None:
    leg = await legs.open(phone_sdp(30060))
    channel = await ua.invite(media_server.sip_uri, channel_offer("127.0.0.1").sdp.encode())
    await media_server.close()
    assert leg.call.state is CallState.ENDED
    assert channel.state is CallState.ENDED
    assert media_server.engine.stats().endpoints == 0


async def test_a_leg_cancelled_while_it_is_set_up_leaves_nothing_behind(
    media_server: MediaServer, ua: UserAgent
) -> None:
    call = ua.core.invite(media_server.sip_uri, phone_sdp(30070), ua.now)
    ua.flush()
    ua.core.bye(call, ua.now)  # CANCEL (or BYE, if the 200 won the race)
    ua.flush()
    await until(lambda: call.state is CallState.ENDED, timeout=5)
    await until(lambda: not media_server.sip.legs, timeout=5)
    await until(lambda: media_server.engine.stats().endpoints == 0, timeout=5)


async def test_reinvite_of_the_control_dialog_keeps_the_channel(
    media_server: MediaServer, ua: UserAgent
) -> None:
    completed: list[bytes] = []

    def watch(_: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallAnswered) and event.response.cseq.number > 1:
            completed.append(event.response.body)

    ua.on_event = watch
    offer = channel_offer("127.0.0.1")
    call = await ua.invite(media_server.sip_uri, offer.sdp.encode())
    first = call.remote_sdp
    ua.core.reinvite(call, offer.sdp.encode(), ua.now)  # a session refresh
    ua.flush()
    await until(lambda: bool(completed))
    assert completed == [first]
    assert media_server.control.expects(offer.cfw_id)
    await ua.bye(call)


async def test_hold_then_resume_restores_sending(
    media_server: MediaServer, ua: UserAgent, legs: MediaLegs
) -> None:
    leg = await legs.open(phone_sdp(30080))
    ms_id = swapped_connection_id(leg.connection)
    ua.core.reinvite(leg.call, phone_sdp(30080, direction=Direction.INACTIVE, version=2), ua.now)
    ua.flush()
    await until(lambda: media_server.engine.endpoint(ms_id).remote is None)
    ua.core.reinvite(leg.call, phone_sdp(30080, direction=Direction.SENDRECV, version=3), ua.now)
    ua.flush()
    await until(lambda: media_server.engine.endpoint(ms_id).remote == ("127.0.0.1", 30080))
    await legs.close(leg)
