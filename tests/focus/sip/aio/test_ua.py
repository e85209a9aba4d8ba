"""The asyncio UserAgent on real loopback sockets: a caller UA against the standalone UAS's
responder (focus.sip.__main__.Responder) running in another UserAgent, over UDP and TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from focus.sip.__main__ import Responder
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.message import Request
from focus.sip.sdp import Direction, parse_sdp
from focus.sip.uacore import (
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallFailedError,
    CallState,
    IncomingCall,
    RequestCompleted,
    UAConfig,
    UAError,
    UAEvent,
)
from tests.focus.sip.conftest import TlsFiles, notify_answering_ua

OFFER = (
    b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
)
LOOPBACK = TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
RESPONDER_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER"}
)


@pytest.fixture
async def uas() -> AsyncIterator[UserAgent]:
    agent = await UserAgent.start(
        UAConfig(user="uas", methods=RESPONDER_METHODS), LOOPBACK, on_event=Responder("127.0.0.1")
    )
    try:
        yield agent
    finally:
        await agent.close()


@pytest.fixture
async def caller() -> AsyncIterator[UserAgent]:
    async with notify_answering_ua("alice", LOOPBACK) as agent:
        yield agent


async def next_of(events: AsyncIterator[UAEvent], kind: type) -> UAEvent:
    async with asyncio.timeout(10):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError("event stream ended")


@pytest.mark.parametrize("transport", [TransportKind.UDP, TransportKind.TCP])
async def test_call_answer_and_hang_up(
    caller: UserAgent, uas: UserAgent, transport: TransportKind
) -> None:
    events = uas.events()
    call = await asyncio.wait_for(caller.invite(uas.local_uri(transport), OFFER), 10)
    assert call.state is CallState.CONFIRMED
    answer = parse_sdp(call.remote_sdp)
    # The answer keeps the offerer's codec order (RFC 3264 s6.1): PCMA first.
    assert answer.media[0].formats[:2] == ("8", "0")
    incoming = await next_of(events, IncomingCall)
    assert isinstance(incoming, IncomingCall) and incoming.offer == OFFER
    await next_of(events, CallConfirmed)
    response = await asyncio.wait_for(caller.bye(call), 10)
    assert response is not None and response.status == 200
    ended = await next_of(events, CallEnded)
    assert isinstance(ended, CallEnded) and ended.by_peer
    if transport is TransportKind.TCP:
        # INVITE, ACK and BYE all went over the one connection the caller opened.
        assert caller.transport.stats.connections_opened == 1
        assert uas.transport.stats.connections_opened == 1


@pytest.mark.parametrize("transport", [TransportKind.UDP, TransportKind.TCP])
async def test_reinvite_awaits_the_final_response(
    caller: UserAgent, uas: UserAgent, transport: TransportKind
) -> None:
    events = uas.events()
    call = await asyncio.wait_for(caller.invite(uas.local_uri(transport), OFFER), 10)
    first_cseq = call.invite.cseq.number
    hold = OFFER.replace(b"1 1 IN", b"1 2 IN") + b"a=sendonly\r\n"
    ok = await asyncio.wait_for(caller.reinvite(call, hold), 10)
    assert ok.status == 200 and ok.cseq.number == first_cseq + 1
    assert parse_sdp(ok.body).media[0].direction is Direction.RECVONLY
    assert call.state is CallState.CONFIRMED and call.remote_sdp == ok.body
    await next_of(events, IncomingCall)  # the call itself
    again = await next_of(events, IncomingCall)
    assert isinstance(again, IncomingCall) and again.reinvite
    # a refused re-INVITE is returned too, and the call goes on (s14.1)
    refused = await asyncio.wait_for(caller.reinvite(call, b"not SDP"), 10)
    assert refused.status == 488 and call.state is CallState.CONFIRMED
    bye = await asyncio.wait_for(caller.bye(call), 10)
    assert bye is not None and bye.status == 200
    with pytest.raises(UAError):
        await caller.reinvite(call, OFFER)


async def test_flush_sends_what_the_sans_io_core_queued(caller: UserAgent, uas: UserAgent) -> None:
    events = caller.events()
    key = caller.core.request(uas.local_uri(), "OPTIONS", caller.now)
    caller.flush()
    done = await next_of(events, RequestCompleted)
    assert isinstance(done, RequestCompleted) and done.key == key
    assert done.response.status == 200


async def test_offerless_invite_answer_in_ack(caller: UserAgent, uas: UserAgent) -> None:
    events = uas.events()
    call = await asyncio.wait_for(caller.invite(uas.local_uri()), 10)
    assert call.state is CallState.ANSWERED
    offer = parse_sdp(call.remote_sdp)
    assert offer.media[0].media == "audio"
    caller.ack(call, OFFER)
    confirmed = await next_of(events, CallConfirmed)
    assert isinstance(confirmed, CallConfirmed) and confirmed.body == OFFER
    await caller.bye(call)


async def test_unusable_offer_gets_488(caller: UserAgent, uas: UserAgent) -> None:
    with pytest.raises(CallFailedError) as failed:
        await asyncio.wait_for(caller.invite(uas.local_uri(), b"this is not SDP"), 10)
    assert failed.value.status == 488


async def test_options_and_message(caller: UserAgent, uas: UserAgent) -> None:
    options = await asyncio.wait_for(caller.options(uas.local_uri()), 10)
    assert options.status == 200 and "INVITE" in (options.headers.get("Allow") or "")
    message = await asyncio.wait_for(caller.message(uas.local_uri(), "hello"), 10)
    assert message.status == 200
    sub = await asyncio.wait_for(caller.subscribe(uas.local_uri(), "presence"), 10)
    assert sub[0].status == 489 and sub[1] is None


async def test_refer_makes_the_uas_call_the_target(caller: UserAgent, uas: UserAgent) -> None:
    target = await UserAgent.start(
        UAConfig(user="carol", methods=RESPONDER_METHODS), LOOPBACK, on_event=Responder("127.0.0.1")
    )
    try:
        target_events = target.events()
        call = await asyncio.wait_for(caller.invite(uas.local_uri(), OFFER), 10)
        response = await asyncio.wait_for(caller.refer(call, target.local_uri()), 10)
        assert response.status == 202
        transferred = await next_of(target_events, IncomingCall)
        assert isinstance(transferred, IncomingCall)
        notifies: list[Request] = caller.notifies  # type: ignore[attr-defined]
        async with asyncio.timeout(10):
            while len(notifies) < 2:
                await asyncio.sleep(0.01)
        assert [n.body.strip() for n in notifies] == [b"SIP/2.0 100 Trying", b"SIP/2.0 200 OK"]
        assert (notifies[1].headers.get("Subscription-State") or "").startswith("terminated")
        assert all(
            n.headers.get("Event") == f"refer;id={call.invite.cseq.number + 1}" for n in notifies
        )
        await caller.bye(call)
    finally:
        await target.close()


async def test_a_ringing_call_can_be_cancelled(caller: UserAgent) -> None:
    silent = await UserAgent.start(UAConfig(user="silent"), LOOPBACK)  # never answers
    try:
        events = silent.events()
        call = caller.dial(silent.local_uri(), OFFER)
        await next_of(events, IncomingCall)
        await asyncio.wait_for(caller.bye(call), 10)  # CANCEL while it rings
        with pytest.raises(CallFailedError) as failed:
            await asyncio.wait_for(caller.answered(call), 10)
        assert failed.value.status == 487
        cancelled = await next_of(events, CallFailed)
        assert isinstance(cancelled, CallFailed) and cancelled.status == 487
    finally:
        await silent.close()


async def test_close_cancels_pending_requests(caller: UserAgent) -> None:
    # Nobody listens there: the request would wait for Timer F; close must not hang.
    task = asyncio.ensure_future(caller.options("sip:nobody@127.0.0.1:9"))
    await asyncio.sleep(0.05)
    await caller.close()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_wildcard_listen_address_is_refused() -> None:
    with pytest.raises(UAError, match="concrete address"):
        await UserAgent.start(UAConfig(), TransportConfig(host="0.0.0.0", udp_port=0))


async def test_call_over_tls(tls_files: TlsFiles) -> None:
    config = TransportConfig(
        host="127.0.0.1",
        udp_port=0,
        tcp_port=0,
        tls_port=0,
        tls_server=tls_files.server(),
        tls_client=tls_files.client(),
    )
    callee = await UserAgent.start(
        UAConfig(user="uas", methods=RESPONDER_METHODS), config, on_event=Responder("127.0.0.1")
    )
    caller = await UserAgent.start(UAConfig(user="alice"), config)
    try:
        events = callee.events()
        target = callee.local_uri(TransportKind.TLS)
        assert target.endswith(";transport=tls")
        call = await asyncio.wait_for(caller.invite(target, OFFER), 10)
        incoming = await next_of(events, IncomingCall)
        assert isinstance(incoming, IncomingCall)
        assert incoming.request.via[0].transport == "TLS"
        assert call.flow.transport is TransportKind.TLS
        response = await asyncio.wait_for(caller.bye(call), 10)
        assert response is not None and response.status == 200
        # INVITE, ACK and BYE shared one TLS connection.
        assert caller.transport.stats.connections_opened == 1
    finally:
        await caller.close()
        await callee.close()
