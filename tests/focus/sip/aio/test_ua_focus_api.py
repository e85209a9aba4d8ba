"""The focus's UA additions on the asyncio UserAgent over real loopback sockets: two
UserAgents, one calling the other (UDP and TCP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.message import make_response
from focus.sip.uacore import (
    Call,
    CallEndedError,
    CallFailedError,
    CallProgress,
    CallState,
    IncomingCall,
    IncomingRequest,
    RequestCompleted,
    UAConfig,
    UAEvent,
)
from focus.sip.uri import parse_uri

OFFER = (
    b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0\r\n"
)
ANSWER = OFFER.replace(b"o=alice", b"o=bob").replace(b"30000", b"40000")
OFFER2 = OFFER.replace(b"1 1 IN", b"1 2 IN").replace(b"30000", b"30002")
ANSWER2 = ANSWER.replace(b"1 1 IN", b"1 2 IN").replace(b"40000", b"40002")
LOOPBACK = TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE"})

Handler = Callable[[UserAgent, UAEvent], None]


def state_of(call: Call) -> CallState:
    # A function, so that mypy does not narrow call.state across awaits.
    return call.state


class Peer:
    """A UserAgent whose on_event is whatever the test sets, recording every event."""

    def __init__(self) -> None:
        self.handle: Handler = lambda ua, event: None
        self.seen: list[UAEvent] = []

    def __call__(self, ua: UserAgent, event: UAEvent) -> None:
        self.seen.append(event)
        self.handle(ua, event)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[UserAgent, Peer, UserAgent, Peer]]:
    a_peer, b_peer = Peer(), Peer()
    alice = await UserAgent.start(
        UAConfig(user="alice", methods=METHODS), LOOPBACK, on_event=a_peer
    )
    bob = await UserAgent.start(UAConfig(user="bob", methods=METHODS), LOOPBACK, on_event=b_peer)
    try:
        yield alice, a_peer, bob, b_peer
    finally:
        await alice.close()
        await bob.close()


def accept_calls(answer: bytes = ANSWER, contact: str | None = None) -> Handler:
    def handle(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall) and not event.reinvite:
            ua.accept(event.call, answer, contact=contact)

    return handle


@pytest.mark.parametrize("transport", [TransportKind.UDP, TransportKind.TCP])
async def test_the_caller_answers_a_reinvite_and_awaits_its_ack(
    pair: tuple[UserAgent, Peer, UserAgent, Peer], transport: TransportKind
) -> None:
    alice, a_peer, bob, b_peer = pair
    b_peer.handle = accept_calls()
    reinvited: asyncio.Future[Call] = asyncio.get_running_loop().create_future()

    def alice_answers(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall) and event.reinvite:
            ua.accept(event.call, ANSWER2)
            reinvited.set_result(event.call)

    a_peer.handle = alice_answers
    call = await asyncio.wait_for(alice.invite(bob.local_uri(transport), OFFER), 10)
    callee = next(e.call for e in b_peer.seen if isinstance(e, IncomingCall))
    await asyncio.wait_for(bob.confirmed(callee), 10)
    response = await asyncio.wait_for(bob.reinvite(callee, OFFER2), 10)
    assert response.status == 200 and response.body == ANSWER2
    assert await asyncio.wait_for(reinvited, 10) is call
    assert await asyncio.wait_for(alice.confirmed(call), 10) == b""
    assert call.state is CallState.CONFIRMED and call.remote_sdp == OFFER2
    assert callee.remote_sdp == ANSWER2
    await asyncio.wait_for(alice.bye(call), 10)
    assert callee.state is CallState.ENDED


async def test_accept_and_invite_with_a_focus_contact(
    pair: tuple[UserAgent, Peer, UserAgent, Peer],
) -> None:
    alice, a_peer, bob, b_peer = pair
    host, port = bob.core.local[TransportKind.UDP]
    focus = f"<sip:conf1@{host}:{port}>;isfocus"
    b_peer.handle = accept_calls(contact=focus)
    call = await asyncio.wait_for(alice.invite(bob.local_uri(), OFFER), 10)
    assert call.dialog is not None
    assert call.dialog.remote_target == parse_uri(f"sip:conf1@{host}:{port}")
    await asyncio.wait_for(alice.bye(call), 10)  # reaches bob at the conference URI
    # The other way round: bob dials out as the focus.
    a_peer.handle = accept_calls()
    out = await asyncio.wait_for(
        bob.invite(alice.local_uri(), OFFER, contact=focus, from_user="conf1"), 10
    )
    incoming = next(e for e in a_peer.seen if isinstance(e, IncomingCall))
    assert incoming.request.headers.get("Contact") == focus
    assert incoming.request.from_.uri.user == "conf1"  # type: ignore[union-attr]
    assert incoming.call.dialog is not None
    assert incoming.call.dialog.remote_target == parse_uri(f"sip:conf1@{host}:{port}")
    assert out.state is CallState.CONFIRMED
    assert await asyncio.wait_for(alice.bye(incoming.call), 10) is not None
    assert state_of(out) is CallState.ENDED


async def test_reject_with_a_challenge(pair: tuple[UserAgent, Peer, UserAgent, Peer]) -> None:
    alice, _, bob, b_peer = pair
    challenge = 'Digest realm="conf.example.com", nonce="n0", qop="auth"'

    def refuse(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall):
            ua.reject(event.call, 401, headers=[("WWW-Authenticate", challenge)])

    b_peer.handle = refuse
    with pytest.raises(CallFailedError) as failed:
        await asyncio.wait_for(alice.invite(bob.local_uri(), OFFER), 10)
    assert failed.value.status == 401


async def test_ringing_is_reported_before_the_answer(
    pair: tuple[UserAgent, Peer, UserAgent, Peer],
) -> None:
    alice, a_peer, bob, b_peer = pair

    def ring_then_answer(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall):
            ua.progress(event.call)
            ua.accept(event.call, ANSWER)

    b_peer.handle = ring_then_answer
    events = alice.events()
    call = await asyncio.wait_for(alice.invite(bob.local_uri(TransportKind.TCP), OFFER), 10)
    progress = [e for e in a_peer.seen if isinstance(e, CallProgress)]
    assert [p.response.status for p in progress] == [180]
    assert progress[0].call is call and not progress[0].reinvite
    # The same events reach the async iterator, in order: progress before the answer.
    async with asyncio.timeout(10):
        first = await anext(events)
    assert isinstance(first, CallProgress)


async def test_confirmed_raises_when_the_call_ends_before_the_ack(
    pair: tuple[UserAgent, Peer, UserAgent, Peer],
) -> None:
    alice, _, bob, b_peer = pair
    waiting: list[asyncio.Task[bytes]] = []

    def accept_and_wait(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall):
            ua.accept(event.call, ANSWER)
            waiting.append(asyncio.ensure_future(ua.confirmed(event.call)))
            waiting.append(asyncio.ensure_future(ua.confirmed(event.call)))  # two waiters

    b_peer.handle = accept_and_wait
    # Offerless: the application must ACK, and instead hangs up at once (BYE before ACK).
    call = await asyncio.wait_for(alice.invite(bob.local_uri(), b""), 10)
    assert call.state is CallState.ANSWERED
    await asyncio.wait_for(alice.bye(call), 10)
    for task in waiting:
        with pytest.raises(CallEndedError, match="ended before the ACK"):
            await asyncio.wait_for(task, 10)
    callee = next(e.call for e in b_peer.seen if isinstance(e, IncomingCall))
    # Asked again once ended: at once, not forever.
    with pytest.raises(CallEndedError):
        await asyncio.wait_for(bob.confirmed(callee), 1)


async def test_confirmed_raises_when_a_ringing_call_is_cancelled(
    pair: tuple[UserAgent, Peer, UserAgent, Peer],
) -> None:
    alice, _, bob, b_peer = pair
    waiting: list[asyncio.Task[bytes]] = []

    def wait_unanswered(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall):
            waiting.append(asyncio.ensure_future(ua.confirmed(event.call)))

    b_peer.handle = wait_unanswered
    call = alice.dial(bob.local_uri(), OFFER)
    async with asyncio.timeout(10):
        while not waiting:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(alice.bye(call), 10)  # CANCEL
    with pytest.raises(CallEndedError, match="487"):
        await asyncio.wait_for(waiting[0], 10)
    with pytest.raises(CallFailedError):
        await asyncio.wait_for(alice.answered(call), 10)


async def test_answer_with_on_the_user_agent(pair: tuple[UserAgent, Peer, UserAgent, Peer]) -> None:
    alice, _, bob, b_peer = pair

    def answer_built(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingRequest):
            ua.answer_with(event.request, make_response(event.request, 202, to_tag="pre"))

    b_peer.handle = answer_built
    done = await asyncio.wait_for(
        alice.transaction(bob.local_uri(), "MESSAGE", body=b"x", content_type="text/plain"), 10
    )
    assert isinstance(done, RequestCompleted)
    assert done.response.status == 202 and done.response.to.tag == "pre"


async def test_confirmed_on_an_offerless_call_we_placed_waits_for_our_ack(
    pair: tuple[UserAgent, Peer, UserAgent, Peer],
) -> None:
    alice, _, bob, b_peer = pair
    b_peer.handle = accept_calls(answer=OFFER)
    call = await asyncio.wait_for(alice.invite(bob.local_uri(), b""), 10)
    assert call.state is CallState.ANSWERED
    waiter = asyncio.ensure_future(alice.confirmed(call))
    await asyncio.sleep(0)
    assert not waiter.done()
    alice.ack(call, ANSWER)
    assert await asyncio.wait_for(waiter, 10) == b""
    callee = next(e.call for e in b_peer.seen if isinstance(e, IncomingCall))
    assert await asyncio.wait_for(bob.confirmed(callee), 10) == ANSWER
    await asyncio.wait_for(alice.bye(call), 10)
