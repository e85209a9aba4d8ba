"""The sans-IO UA core: two real UACores talking through bytes and the real parser, on a
fake clock (no sockets), with a network that can drop chosen messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from focus.sip.dialog import Dialog, DialogId
from focus.sip.flow import Flow, TransportFailure, TransportKind
from focus.sip.headers import NameAddr
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.subscription import Notifier, NotifierConfig
from focus.sip.uacore import (
    Call,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallState,
    IncomingCall,
    IncomingRequest,
    RequestCompleted,
    UAConfig,
    UACore,
    UAError,
    UAEvent,
    resolve_target,
)
from focus.sip.uri import parse_uri

A_ADDR = ("127.0.0.1", 5070)
B_ADDR = ("127.0.0.1", 5060)
OFFER = (
    b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0\r\n"
)
ANSWER = OFFER.replace(b"30000", b"40000").replace(b"o=a", b"o=b")
METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "REFER", "NOTIFY", "SUBSCRIBE"}
)

Drop = Callable[[Request | Response], bool]


class Net:
    """Two cores, a fake clock and a wire through bytes; ``drop`` filters messages."""

    def __init__(self) -> None:
        self.a = UACore(UAConfig(user="alice", methods=METHODS), {TransportKind.UDP: A_ADDR})
        self.b = UACore(UAConfig(user="bob", methods=METHODS), {TransportKind.UDP: B_ADDR})
        self.now = 0.0
        self.drop: Drop = lambda message: False
        self.wire: list[tuple[str, Request | Response]] = []
        self.events: dict[str, list[UAEvent]] = {"a": [], "b": []}

    def core(self, side: str) -> UACore:
        return self.a if side == "a" else self.b

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for side, other, source in (("a", "b", A_ADDR), ("b", "a", B_ADDR)):
                for t in self.core(side).outgoing():
                    moved = True
                    assert t.destination is not None or isinstance(t.message, Response)
                    message = parse_message(t.message.to_bytes())
                    self.wire.append((side, message))
                    if self.drop(message):
                        continue
                    flow = Flow(TransportKind.UDP, *source)
                    self.core(other).receive_message(message, flow, self.now)
                for name in ("a", "b"):
                    while (event := self.core(name).next_event()) is not None:
                        self.events[name].append(event)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            deadlines = [d for d in (self.a.get_timer(), self.b.get_timer()) if d is not None]
            nxt = min(deadlines, default=None)
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.pump()
        self.now = end

    def take(self, side: str, kind: type) -> list[UAEvent]:
        found = [e for e in self.events[side] if isinstance(e, kind)]
        self.events[side] = [e for e in self.events[side] if not isinstance(e, kind)]
        return found

    def sent(self, side: str, what: str) -> list[Request | Response]:
        out = []
        for s, m in self.wire:
            if s != side:
                continue
            label = m.method if isinstance(m, Request) else f"{m.status}/{m.cseq.method}"
            if label == what:
                out.append(m)
        return out


@pytest.fixture
def net() -> Net:
    return Net()


def b_uri() -> str:
    return "sip:bob@127.0.0.1:5060"


def incoming(net: Net) -> Call:
    events = net.take("b", IncomingCall)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, IncomingCall)
    return event.call


def dialog_of(call: Call) -> Dialog:
    assert call.dialog is not None, call
    return call.dialog


def state_of(call: Call) -> CallState:
    # A function, so that mypy does not narrow call.state across core calls.
    return call.state


def establish(net: Net, offer: bytes = OFFER) -> tuple[Call, Call]:
    caller = net.a.invite(b_uri(), offer, net.now)
    net.pump()
    callee = incoming(net)
    net.b.accept(callee, ANSWER, net.now)
    net.pump()
    return caller, callee


def test_call_with_offer_is_answered_acked_and_hung_up(net: Net) -> None:
    caller, callee = establish(net)
    answered = net.take("a", CallAnswered)
    assert len(answered) == 1 and isinstance(answered[0], CallAnswered)
    assert not answered[0].needs_ack
    assert caller.state is CallState.CONFIRMED and caller.remote_sdp == ANSWER
    assert callee.state is CallState.CONFIRMED and callee.remote_sdp == OFFER
    assert len(net.take("b", CallConfirmed)) == 1
    # One dialog, the same on both sides (s12.1: Call-ID, swapped tags).
    assert caller.dialog is not None and callee.dialog is not None
    assert caller.dialog.id.remote_tag == callee.dialog.id.local_tag
    assert caller.dialog.id.local_tag == callee.dialog.id.remote_tag
    assert caller.dialog.id.call_id == callee.dialog.id.call_id
    assert net.sent("b", "100/INVITE"), "100 Trying is sent for INVITE"
    ok = net.sent("b", "200/INVITE")[0]
    assert ok.contact != "*" and ok.contact[0].uri == parse_uri("sip:bob@127.0.0.1:5060")
    assert net.a.bye(caller, net.now) is not None
    net.pump()
    ended = net.take("b", CallEnded)
    assert len(ended) == 1 and isinstance(ended[0], CallEnded) and ended[0].by_peer
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].response.status == 200
    assert net.a.calls == [] and net.b.calls == []


def test_offerless_invite_gets_the_offer_in_2xx_and_the_answer_in_ack(net: Net) -> None:
    caller, callee = establish(net, offer=b"")
    answered = net.take("a", CallAnswered)
    assert isinstance(answered[0], CallAnswered) and answered[0].needs_ack
    assert caller.state is CallState.ANSWERED and caller.remote_sdp == ANSWER
    assert not net.sent("a", "ACK"), "the application must supply the answer first"
    net.a.ack(caller, OFFER, net.now)
    net.pump()
    confirmed = net.take("b", CallConfirmed)
    assert isinstance(confirmed[0], CallConfirmed) and confirmed[0].body == OFFER
    assert callee.remote_sdp == OFFER
    ack = net.sent("a", "ACK")[0]
    assert isinstance(ack, Request) and ack.cseq.number == caller.invite.cseq.number


def test_a_2xx_from_a_second_fork_is_acked_and_ended_with_bye(net: Net) -> None:
    caller, _ = establish(net)
    first = net.sent("b", "200/INVITE")[0]
    fork = parse_message(
        first.to_bytes().replace(
            f"tag={dialog_of(caller).id.remote_tag}".encode(), b"tag=otherfork"
        )
    )
    assert isinstance(fork, Response) and fork.to.tag == "otherfork"
    net.a.receive_message(fork, Flow(TransportKind.UDP, *B_ADDR), net.now)
    net.pump()
    acks = [m for m in net.sent("a", "ACK") if m.to.tag == "otherfork"]
    byes = [m for m in net.sent("a", "BYE") if m.to.tag == "otherfork"]
    assert len(acks) == 1 and len(byes) == 1
    assert caller.state is CallState.CONFIRMED  # the first dialog is the call
    assert dialog_of(caller).id.remote_tag != "otherfork"


def test_rejected_call_fails_with_the_status(net: Net) -> None:
    caller = net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    net.b.reject(incoming(net), 486, net.now)
    net.pump()
    failed = net.take("a", CallFailed)
    assert isinstance(failed[0], CallFailed) and failed[0].status == 486
    assert caller.state is CallState.ENDED
    assert net.sent("a", "ACK"), "the transaction layer ACKs a non-2xx"


def test_cancel_of_a_ringing_call(net: Net) -> None:
    caller = net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    net.a.bye(caller, net.now)  # not answered yet: CANCEL
    net.pump()
    assert net.sent("a", "CANCEL")
    b_failed = net.take("b", CallFailed)
    assert isinstance(b_failed[0], CallFailed) and b_failed[0].status == 487
    a_failed = net.take("a", CallFailed)
    assert isinstance(a_failed[0], CallFailed) and a_failed[0].status == 487
    with pytest.raises(UAError):
        net.b.accept(callee, ANSWER, net.now)


def test_lost_ack_is_recovered_by_2xx_retransmission(net: Net) -> None:
    acks = 0

    def drop_first_ack(message: Request | Response) -> bool:
        nonlocal acks
        if isinstance(message, Request) and message.method == "ACK":
            acks += 1
            return acks == 1
        return False

    net.drop = drop_first_ack
    _, callee = establish(net)
    assert state_of(callee) is CallState.ANSWERED
    net.advance(0.6)  # T1: the UAS retransmits its 200, the UAC re-sends the same ACK
    assert len(net.sent("b", "200/INVITE")) == 2
    two = net.sent("b", "200/INVITE")
    assert two[0].to.tag == two[1].to.tag
    assert state_of(callee) is CallState.CONFIRMED
    first_ack, second_ack = net.sent("a", "ACK")
    assert first_ack.to_bytes() == second_ack.to_bytes()


def test_bye_before_the_lost_ack_stops_the_2xx_retransmissions(net: Net) -> None:
    net.drop = lambda m: isinstance(m, Request) and m.method == "ACK"
    caller, callee = establish(net)
    net.a.bye(caller, net.now)
    net.pump()
    assert state_of(callee) is CallState.ENDED
    before = len(net.sent("b", "200/INVITE"))
    net.advance(40.0)
    assert len(net.sent("b", "200/INVITE")) == before, "no 2xx after the BYE"
    assert not net.sent("b", "BYE"), "and no BYE for a missing ACK"
    assert len(net.b.layer) == 0


def test_no_ack_at_all_ends_the_call_with_bye_after_64_t1(net: Net) -> None:
    net.drop = lambda m: isinstance(m, Request) and m.method == "ACK"
    _, callee = establish(net)
    net.advance(31.0)
    assert callee.state is CallState.ANSWERED and not net.sent("b", "BYE")
    net.advance(2.0)  # past 64*T1 = 32 s
    assert net.sent("b", "BYE")
    ended = net.take("b", CallEnded)
    assert isinstance(ended[0], CallEnded) and "no ACK" in ended[0].reason
    # Retransmissions of the 200 followed T1, 2T1, 4T1, capped at T2 = 4 s.
    assert 8 <= len(net.sent("b", "200/INVITE")) <= 12


def test_bye_for_no_dialog_gets_481_and_unknown_methods_501_or_405(net: Net) -> None:
    caller, _ = establish(net)
    net.a.request(b_uri(), "BYE", net.now)  # a BYE outside any dialog
    net.pump()
    assert net.sent("b", "481/BYE")
    assert caller.state is CallState.CONFIRMED
    dialog = dialog_of(caller)
    dialog.id = DialogId(dialog.id.call_id, dialog.id.local_tag, "not-the-dialog")
    net.a.request(dialog, "BYE", net.now)  # in-dialog look, unknown tags
    net.pump()
    assert len(net.sent("b", "481/BYE")) == 2
    for method, status in (("FOO", 501), ("PUBLISH", 405)):
        net.a.request(b_uri(), method, net.now)
        net.pump()
        got = net.sent("b", f"{status}/{method}")
        assert got, method
        if status == 405:
            assert "INVITE" in (got[0].headers.get("Allow") or "")


def test_options_answered_by_the_core(net: Net) -> None:
    key = net.a.request(b_uri(), "OPTIONS", net.now)
    net.pump()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key
    response = done[0].response
    assert response.status == 200
    assert "MESSAGE" in (response.headers.get("Allow") or "")
    assert net.take("b", IncomingRequest) == []


def test_lower_cseq_in_dialog_gets_500(net: Net) -> None:
    caller, _ = establish(net)
    net.a.request(dialog_of(caller), "MESSAGE", net.now, body=b"hi", content_type="text/plain")
    net.pump()
    for event in net.take("b", IncomingRequest):
        assert isinstance(event, IncomingRequest)
        net.b.respond(event.request, 200, net.now)
    net.pump()
    dialog = dialog_of(caller)
    dialog.local_seq = (dialog.local_seq or 0) - 5  # a confused peer reuses old numbers
    net.a.request(dialog, "MESSAGE", net.now, body=b"again", content_type="text/plain")
    net.pump()
    assert net.sent("b", "500/MESSAGE")
    assert net.take("b", IncomingRequest) == []


@pytest.mark.parametrize("method", ["SUBSCRIBE", "NOTIFY", "REFER", "INFO"])
def test_every_in_dialog_method_is_cseq_checked_by_the_core(net: Net, method: str) -> None:
    caller, callee = establish(net)
    dialog = dialog_of(caller)
    dialog.local_seq = (dialog.local_seq or 0) - 5  # old numbers, whatever the method
    headers = {
        "SUBSCRIBE": [("Event", "dialog")],
        "NOTIFY": [("Event", "dialog"), ("Subscription-State", "active")],
        "REFER": [("Refer-To", "<sip:carol@127.0.0.1:5090>")],
        "INFO": [],
    }[method]
    net.a.request(dialog, method, net.now, headers=headers)
    net.pump()
    assert net.sent("b", f"500/{method}"), "s12.2.2: a lower CSeq is answered 500"
    assert net.take("b", IncomingRequest) == []
    assert dialog_of(callee).remote_seq == caller.invite.cseq.number


def test_unsupported_require_gets_420_naming_the_option_tags(net: Net) -> None:
    key = net.a.request(
        b_uri(), "OPTIONS", net.now, headers=[("Require", "nothingSupportsThis, neither")]
    )
    net.pump()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key
    assert done[0].response.status == 420
    assert done[0].response.headers.tokens("Unsupported") == ["nothingSupportsThis", "neither"]
    # an INVITE too: it never reaches the application (s8.2.2.3)
    caller = net.a.invite(b_uri(), OFFER, net.now, headers=[("Require", "100rel")])
    net.pump()
    assert net.take("b", IncomingCall) == []
    failed = net.take("a", CallFailed)
    assert isinstance(failed[0], CallFailed) and failed[0].status == 420
    assert caller.state is CallState.ENDED


def test_supported_option_tags_are_accepted() -> None:
    a = UACore(UAConfig(user="alice"), {TransportKind.UDP: A_ADDR})
    b = UACore(UAConfig(user="bob", supported=("timer",)), {TransportKind.UDP: B_ADDR})
    a.request(b_uri(), "OPTIONS", 0.0, headers=[("Require", "Timer")])  # tags: any case
    for t in a.outgoing():
        b.receive_message(
            parse_message(t.message.to_bytes()), Flow(TransportKind.UDP, *A_ADDR), 0.0
        )
    answers = [t.message for t in b.outgoing() if isinstance(t.message, Response)]
    assert [r.status for r in answers] == [200]


def test_message_out_of_dialog_is_delivered_and_answered(net: Net) -> None:
    key = net.a.request(b_uri(), "MESSAGE", net.now, body=b"hello", content_type="text/plain")
    net.pump()
    got = net.take("b", IncomingRequest)
    assert isinstance(got[0], IncomingRequest) and got[0].dialog is None
    assert got[0].request.body == b"hello"
    net.b.respond(got[0].request, 202, net.now)
    net.pump()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key
    assert done[0].response.status == 202 and done[0].response.to.tag


def test_nothing_is_kept_once_transactions_and_dialogs_are_over(net: Net) -> None:
    caller, _ = establish(net)
    net.a.request(b_uri(), "MESSAGE", net.now, body=b"x", content_type="text/plain")
    net.pump()
    for event in net.take("b", IncomingRequest):
        assert isinstance(event, IncomingRequest)
        net.b.respond(event.request, 200, net.now)
    net.a.request(b_uri(), "MESSAGE", net.now, body=b"y", content_type="text/plain")
    net.pump()  # this one is never answered by the application...
    net.a.bye(caller, net.now)
    net.pump()
    net.advance(70.0)  # past every timer (F, J, K, 64*T1)
    assert net.sent("b", "500/MESSAGE"), "...so the core answered it after answer_timeout"
    for core in (net.a, net.b):
        assert len(core.layer) == 0 and core.calls == [] and not core.dialogs.dialogs
        assert not core._sources and not core._finals_given and not core._pending
        assert not core._calls_by_invite and not core._incoming_invites


def test_an_incoming_call_left_ringing_gets_480(net: Net) -> None:
    caller = net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    net.advance(179.0)
    assert caller.state is CallState.CALLING
    net.advance(2.0)
    assert state_of(callee) is CallState.ENDED and net.sent("b", "480/INVITE")
    failed = net.take("a", CallFailed)
    assert isinstance(failed[0], CallFailed) and failed[0].status == 480


def test_unanswered_request_completes_with_408_after_timer_f(net: Net) -> None:
    net.drop = lambda m: True
    net.a.request(b_uri(), "OPTIONS", net.now)
    net.pump()
    net.advance(31.0)
    assert net.take("a", RequestCompleted) == []
    net.advance(2.0)
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].response.status == 408


def test_transport_failure_completes_with_503(net: Net) -> None:
    net.drop = lambda m: True
    key = net.a.request(b_uri(), "OPTIONS", net.now)
    net.pump()
    side, request = net.wire[0]
    assert side == "a" and isinstance(request, Request)
    # What the asyncio transport reports when sendto/connect fails (s17.1.4).
    net.a.transport_failed(TransportFailure(request, None, "unreachable"), net.now)
    net.pump()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key
    assert done[0].response.status == 503


def test_reinvite_in_a_dialog(net: Net) -> None:
    caller, callee = establish(net)
    net.take("b", CallConfirmed)
    net.take("a", CallAnswered)
    net.a.reinvite(caller, OFFER.replace(b"o=a 1 1", b"o=a 1 2"), net.now)
    net.pump()
    events = net.take("b", IncomingCall)
    assert isinstance(events[0], IncomingCall) and events[0].reinvite
    net.b.accept(callee, ANSWER, net.now)
    net.pump()
    assert len(net.sent("b", "200/INVITE")) == 2
    acks = net.sent("a", "ACK")
    assert [a.cseq.number for a in acks] == [
        caller.invite.cseq.number - 1,
        caller.invite.cseq.number,
    ]
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED
    assert len(net.take("b", CallConfirmed)) == 1


def test_refused_reinvite_keeps_the_call(net: Net) -> None:
    caller, callee = establish(net)
    key = net.a.reinvite(caller, OFFER, net.now)
    net.pump()
    net.b.reject(callee, 488, net.now)
    net.pump()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key
    assert done[0].response.status == 488
    assert caller.state is CallState.CONFIRMED and net.take("a", CallFailed) == []


def test_refer_and_early_notify_in_the_dialog(net: Net) -> None:
    caller, callee = establish(net)
    key = net.a.request(
        dialog_of(caller), "REFER", net.now, headers=[("Refer-To", "<sip:carol@127.0.0.1:5080>")]
    )
    net.pump()
    got = net.take("b", IncomingRequest)
    assert isinstance(got[0], IncomingRequest) and got[0].dialog is callee.dialog
    assert got[0].request.refer_to is not None
    net.b.respond(got[0].request, 202, net.now)
    net.b.request(
        dialog_of(callee),
        "NOTIFY",
        net.now,
        body=b"SIP/2.0 100 Trying\r\n",
        content_type="message/sipfrag",
        headers=[
            ("Event", f"refer;id={got[0].request.cseq.number}"),
            ("Subscription-State", "active;expires=60"),
        ],
    )
    net.pump()
    notify = net.take("a", IncomingRequest)
    assert isinstance(notify[0], IncomingRequest) and notify[0].dialog is caller.dialog
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key


def test_subscribe_creates_a_dialog_even_if_notify_beats_the_2xx(net: Net) -> None:
    net.drop = lambda m: isinstance(m, Response) and m.cseq.method == "SUBSCRIBE"
    net.a.request(
        b_uri(), "SUBSCRIBE", net.now, headers=[("Event", "conference"), ("Expires", "600")]
    )
    net.pump()
    sub = net.take("b", IncomingRequest)
    assert isinstance(sub[0], IncomingRequest)
    net.b.respond(sub[0].request, 200, net.now, headers=[("Expires", "600")])
    net.pump()
    dialog = net.b.find_dialog(
        sub[0].request.call_id,
        net.sent("b", "200/SUBSCRIBE")[0].to.tag or "",
        sub[0].request.from_.tag or "",
    )
    assert dialog is not None
    net.b.request(
        dialog,
        "NOTIFY",
        net.now,
        headers=[("Event", "conference"), ("Subscription-State", "active;expires=600")],
    )
    net.pump()
    notify = net.take("a", IncomingRequest)
    assert isinstance(notify[0], IncomingRequest) and notify[0].dialog is not None
    assert notify[0].dialog.id.remote_tag == dialog.id.local_tag


@pytest.mark.parametrize(
    ("uri", "flow"),
    [
        ("sip:x@127.0.0.1", Flow(TransportKind.UDP, "127.0.0.1", 5060)),
        ("sip:x@localhost:5070", Flow(TransportKind.UDP, "127.0.0.1", 5070)),
        ("sip:x@[::1]:5071;transport=tcp", Flow(TransportKind.TCP, "::1", 5071)),
        ("sip:x@example.com;maddr=127.0.0.2", Flow(TransportKind.UDP, "127.0.0.2", 5060)),
        ("sips:x@127.0.0.1", Flow(TransportKind.TLS, "127.0.0.1", 5061)),
        ("sip:x@127.0.0.1:5071;transport=TLS", Flow(TransportKind.TLS, "127.0.0.1", 5071)),
    ],
)
def test_resolve_target(uri: str, flow: Flow) -> None:
    assert resolve_target(parse_uri(uri)) == flow


@pytest.mark.parametrize("uri", ["sip:x@example.com", "tel:+15551234"])
def test_unroutable_targets_are_refused(uri: str) -> None:
    with pytest.raises(UAError):
        resolve_target(parse_uri(uri))


def test_large_requests_switch_to_tcp_when_tcp_is_there() -> None:
    core = UACore(UAConfig(), {TransportKind.UDP: A_ADDR, TransportKind.TCP: A_ADDR})
    big = b"x" * 1400
    core.request(b_uri(), "MESSAGE", 0.0, body=big, content_type="text/plain")
    small_key = core.request(b_uri(), "MESSAGE", 0.0, body=b"hi", content_type="text/plain")
    sent = core.outgoing()
    assert [t.destination.transport if t.destination else None for t in sent] == [
        TransportKind.TCP,
        TransportKind.UDP,
    ]
    assert sent[0].message.via[0].transport == "TCP"
    assert sent[1].message.via[0].transport == "UDP" and small_key.branch
    # A target that insists on UDP keeps it (s18.1.1 leaves the choice to the URI).
    core.request(b_uri() + ";transport=udp", "MESSAGE", 0.0, body=big, content_type="text/plain")
    (forced,) = core.outgoing()
    assert forced.destination is not None and forced.destination.transport is TransportKind.UDP


def test_notifier_from_the_subscription_layer_runs_on_the_ua(net: Net) -> None:
    """h5's Notifier (RFC 6665) driven through the UA core: adopt its dialogs, send its
    responses and NOTIFYs; refreshes reach it once-checked (no double CSeq check -> no 500)."""
    contact = NameAddr(parse_uri("sip:bob@127.0.0.1:5060"))
    notifier = Notifier(
        NotifierConfig(
            packages=frozenset({"conference"}), sent_by="127.0.0.1:5060", contact=contact
        )
    )

    def serve_b() -> None:
        for event in net.take("b", IncomingRequest):
            assert isinstance(event, IncomingRequest)
            result = notifier.receive_subscribe(event.request, net.now)
            net.b.send_response(result.response, net.now)
            sub = result.subscription
            if sub is not None and event.dialog is None:
                net.b.adopt(sub.dialog, request=event.request)
            if result.notify is not None and sub is not None:
                net.b.send(result.notify, sub.dialog, net.now)
            net.pump()

    net.a.request(
        b_uri(), "SUBSCRIBE", net.now, headers=[("Event", "conference"), ("Expires", "600")]
    )
    net.pump()
    serve_b()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].response.status == 200
    dialog = done[0].dialog
    assert dialog is not None
    notifies = net.take("a", IncomingRequest)
    assert isinstance(notifies[0], IncomingRequest) and notifies[0].dialog is dialog
    assert (notifies[0].request.headers.get("Subscription-State") or "").startswith("active")
    net.a.respond(notifies[0].request, 200, net.now)
    net.pump()
    # Refresh, then unsubscribe, in the dialog: the notifier answers 200 both times.
    for expires in ("600", "0"):
        net.a.request(
            dialog, "SUBSCRIBE", net.now, headers=[("Event", "conference"), ("Expires", expires)]
        )
        net.pump()
        serve_b()
        done = net.take("a", RequestCompleted)
        assert isinstance(done[0], RequestCompleted) and done[0].response.status == 200
        for event in net.take("a", IncomingRequest):
            assert isinstance(event, IncomingRequest)
            net.a.respond(event.request, 200, net.now)
        net.pump()
    assert not net.sent("b", "500/SUBSCRIBE")
    final = net.sent("b", "NOTIFY")[-1]
    assert (final.headers.get("Subscription-State") or "").startswith("terminated")
