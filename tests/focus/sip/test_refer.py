"""REFER (RFC 3515) and Refer-Sub (RFC 4488): RFC vectors and end-to-end over transactions."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.errors import SipParseError
from focus.sip.events import RequestReceived, ResponseReceived
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.refer import (
    SIPFRAG,
    ReferConfig,
    Referrer,
    ReferResult,
    parse_sipfrag,
    receive_refer,
    sipfrag,
)
from focus.sip.subscription import Subscription, SubState
from tests.focus.sip.test_dialog import Call
from tests.focus.sip.test_transaction_wire import ALICE_PORT, BOB_PORT, Sent, Wire, of_type
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "refer"
ALICE = parse_name_addr("<sip:alice@127.0.0.1>")
FOCUS = parse_name_addr("<sip:conf@127.0.0.1>")
ALICE_CONTACT = parse_name_addr(f"<sip:alice@127.0.0.1:{ALICE_PORT}>")
FOCUS_CONTACT = parse_name_addr(f"<sip:conf@127.0.0.1:{BOB_PORT}>")
CONFIG = ReferConfig(sent_by=f"127.0.0.1:{BOB_PORT}", contact=FOCUS_CONTACT, expires=60)


def vector(name: str) -> Request | Response:
    return parse_message((VECTORS / name).read_bytes())


def test_rfc3515_flow_vectors_referrer_side() -> None:
    refer = vector("rfc3515-f1-refer.sip")
    accepted = vector("rfc3515-f2-202.sip")
    assert isinstance(refer, Request) and isinstance(accepted, Response)
    referrer = Referrer.out_of_dialog(
        local_uri=parse_name_addr("<sip:a@atlanta.example.com>"),
        remote_uri=parse_name_addr("<sip:b@atlanta.example.com>"),
        request_uri="sip:b@atlanta.example.com",
        contact=parse_name_addr("<sip:a@atlanta.example.com>"),
        sent_by="agenta.atlanta.example.com",
    )
    referrer.call_id, referrer.local_tag, referrer.cseq = (
        "898234234@agenta.atlanta.example.com",
        "193402342",
        93809823,
    )
    referrer.receive_response(refer, accepted)
    assert referrer.accepted and referrer.state is SubState.ACTIVE
    for name, status, state in [
        ("rfc3515-f3-notify-trying.sip", 100, SubState.ACTIVE),
        ("rfc3515-f5-notify-ok.sip", 200, SubState.TERMINATED),
    ]:
        notify = vector(name)
        assert isinstance(notify, Request)
        response = referrer.receive_notify(notify)
        assert response.status == 200
        assert referrer.statuses[-1] == status and referrer.state is state
    assert referrer.final_status == 200
    assert referrer.updates[-1].reason == "noresource"


def test_rfc3515_refer_vector_referee_side() -> None:
    refer = vector("rfc3515-f1-refer.sip")
    assert isinstance(refer, Request)
    result = receive_refer(refer, 0.0, config=CONFIG)
    assert result.response.status == 202
    assert result.response.to.tag is not None
    assert result.referral is not None and result.notify is not None
    assert str(result.referral.refer_to.uri) == "sip:c@atlanta.example.com"
    assert result.referral.method == "INVITE"
    notify = result.notify
    assert notify.headers.get("Event") == "refer;id=93809823"
    assert notify.headers.get("Subscription-State") == "active;expires=60"
    assert notify.headers.get("Content-Type") == SIPFRAG
    assert notify.body == b"SIP/2.0 100 Trying\r\n"
    assert notify.to.tag == "193402342" and notify.from_.tag == result.response.to.tag
    assert str(notify.uri) == "sip:a@atlanta.example.com"  # the REFER's Contact


class ReferWorld:
    """Alice (referrer, wire side a) asks the focus (referee, side b) to act."""

    def __init__(self, *, drop: Callable[[Sent], bool] | None = None) -> None:
        self.wire = Wire() if drop is None else Wire(drop=drop)
        self.referrer = Referrer.out_of_dialog(
            local_uri=ALICE,
            remote_uri=FOCUS,
            request_uri=f"sip:conf@127.0.0.1:{BOB_PORT}",
            contact=ALICE_CONTACT,
            sent_by=f"127.0.0.1:{ALICE_PORT}",
        )
        self.result: ReferResult | None = None
        self.seen_a = self.seen_b = 0
        self.responses: list[Response] = []

    def run(self) -> None:
        while True:
            self.wire.pump()
            moved = False
            for e in self.wire.b_events[self.seen_b :]:
                self.seen_b += 1
                moved = True
                if isinstance(e, RequestReceived) and e.request.method == "REFER":
                    self.result = receive_refer(e.request, self.wire.now, config=CONFIG)
                    self.wire.b.send_response(self.result.response, self.wire.now)
                    if self.result.notify is not None:
                        self.focus_sends(self.result.notify)
            for e in self.wire.a_events[self.seen_a :]:
                self.seen_a += 1
                moved = True
                if isinstance(e, RequestReceived) and e.request.method == "NOTIFY":
                    answer = self.referrer.receive_notify(e.request)
                    self.wire.a.send_response(answer, self.wire.now)
                elif isinstance(e, ResponseReceived) and e.request.method == "REFER":
                    self.responses.append(e.response)
                    self.referrer.receive_response(e.request, e.response)
            if not moved:
                return

    def refer_carol(self) -> Subscription:
        """Alice refers the focus to carol; the focus's implicit subscription."""
        self.wire.a.send_request(
            self.referrer.refer("<sip:carol@127.0.0.1>"), self.wire.b_flow, 0.0
        )
        self.run()
        assert self.result is not None and self.result.referral is not None
        sub = self.result.referral.subscription
        assert sub is not None
        return sub

    def focus_sends(self, notify: Request | None) -> None:
        assert notify is not None
        self.wire.b.send_request(notify, self.wire.a_flow, self.wire.now)


def test_refer_progress_to_final_over_the_wire() -> None:
    w = ReferWorld()
    w.wire.a.send_request(w.referrer.refer("<sip:carol@127.0.0.1>"), w.wire.b_flow, 0.0)
    w.run()
    assert [r.status for r in w.responses] == [202]
    assert w.referrer.statuses == [100]
    assert w.result is not None and w.result.referral is not None
    referral = w.result.referral
    w.focus_sends(referral.progress(1.0, 180))
    w.run()
    w.focus_sends(referral.progress(2.0, 200))
    w.run()
    assert w.referrer.statuses == [100, 180, 200]
    assert w.referrer.state is SubState.TERMINATED
    assert w.referrer.updates[-1].reason == "noresource"
    assert referral.progress(3.0, 200) is None  # the subscription is over
    # every NOTIFY was answered 200 by the referrer
    notify_answers = [
        e.response.status
        for e in of_type(w.wire.b_events, ResponseReceived)
        if e.request.method == "NOTIFY"
    ]
    assert notify_answers == [200, 200, 200]


def test_refer_failure_sipfrag_terminates() -> None:
    w = ReferWorld()
    w.wire.a.send_request(w.referrer.refer("<sip:carol@127.0.0.1>"), w.wire.b_flow, 0.0)
    w.run()
    assert w.result is not None and w.result.referral is not None
    w.focus_sends(w.result.referral.progress(1.0, 486, "Busy Here"))
    w.run()
    assert w.referrer.final_status == 486 and w.referrer.state is SubState.TERMINATED


def test_refer_sub_false_has_no_subscription() -> None:
    w = ReferWorld()
    w.wire.a.send_request(
        w.referrer.refer("<sip:carol@127.0.0.1>", subscribe=False), w.wire.b_flow, 0.0
    )
    w.run()
    assert [r.status for r in w.responses] == [202]
    assert w.responses[0].headers.get("Refer-Sub") == "false"
    assert w.result is not None and w.result.notify is None
    assert w.result.referral is not None and w.result.referral.progress(1.0, 200) is None
    assert w.referrer.state is SubState.TERMINATED and w.referrer.statuses == []


def test_in_dialog_refer_with_method_bye() -> None:
    # RFC 4579 s5.8: the focus removes a participant with a REFER whose Refer-To has method=BYE
    call = Call()
    referrer = Referrer.in_dialog(call.alice, sent_by=f"127.0.0.1:{ALICE_PORT}")
    refer = referrer.refer("<sip:carol@127.0.0.1>", method="BYE")
    assert refer.to.tag == call.alice.id.remote_tag
    assert refer.headers.get("Refer-To") == "<sip:carol@127.0.0.1;method=BYE>"
    call.wire.a.send_request(refer, call.wire.b_flow, call.wire.now)
    call.wire.pump()
    got = call.last_request("REFER")
    result = receive_refer(got, call.wire.now, config=CONFIG, dialog=call.bob)
    assert result.response.status == 202
    assert result.referral is not None and result.referral.method == "BYE"
    assert result.notify is not None
    assert result.notify.headers.get("Event") == f"refer;id={refer.cseq.number}"
    assert result.notify.to.tag == call.alice.id.local_tag
    # the NOTIFY is in the call's dialog: the referrer accepts it
    referrer.receive_response(refer, result.response)
    assert referrer.receive_notify(result.notify).status == 200
    assert referrer.statuses == [100]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([], 400),
        ([("Refer-To", "<sip:a@x>"), ("Refer-To", "<sip:b@x>")], 400),
        ([("Refer-To", "<sip:a@x>, <sip:b@x>")], 400),
        ([("Refer-To", "<sip:a@x")], 400),
    ],
)
def test_bad_refer_to_is_400(headers: list[tuple[str, str]], status: int) -> None:
    w = Wire()
    refer = w.request("REFER")
    for name, value in headers:
        refer.headers.add(name, value)
    result = receive_refer(refer, 0.0, config=CONFIG)
    assert result.response.status == status
    assert result.notify is None and result.referral is None


def test_referrer_rejects_bad_notifies() -> None:
    w = ReferWorld()
    sub = w.refer_carol()
    garbage = sub.notify(1.0, body=b"hello", content_type=SIPFRAG)
    assert w.referrer.receive_notify(garbage).status == 400
    wrong_type = sub.notify(1.0, body=sipfrag(180), content_type="text/plain")
    assert w.referrer.receive_notify(wrong_type).status == 415
    wrong_id = sub.notify(1.0, body=sipfrag(180), content_type=SIPFRAG)
    wrong_id.headers.set("Event", "refer;id=999")
    assert w.referrer.receive_notify(wrong_id).status == 481
    other_event = sub.notify(1.0, body=sipfrag(180), content_type=SIPFRAG)
    other_event.headers.set("Event", "presence")
    assert w.referrer.receive_notify(other_event).status == 489


def test_rfc6665_s4_1_2_4_notify_before_the_202_creates_the_dialog() -> None:
    # The referee's 202 is lost: its first NOTIFY makes the referrer's dialog, whose
    # identity and remote target come from the NOTIFY; the 202 resent later is absorbed.
    first_202 = itertools.count()

    def drop(s: Sent) -> bool:
        return s.first_line.startswith("SIP/2.0 202") and s.sender == "b" and next(first_202) == 0

    w = ReferWorld(drop=drop)
    sub = w.refer_carol()
    dialog = w.referrer.dialog
    assert w.responses == [] and dialog is not None
    assert dialog.id.remote_tag == sub.dialog.id.local_tag
    assert dialog.remote_target == FOCUS_CONTACT.uri
    assert w.referrer.statuses == [100]
    assert [u.state for u in w.referrer.updates] == [SubState.ACTIVE]
    w.wire.run_until(0.5)  # REFER retransmitted, the 202 resent
    w.run()
    assert [r.status for r in w.responses] == [202] and w.referrer.dialog is dialog
    assert w.result is not None and w.result.referral is not None
    w.focus_sends(w.result.referral.progress(1.0, 200))
    w.run()
    assert w.referrer.final_status == 200 and w.referrer.state is SubState.TERMINATED


def test_rfc3515_s2_4_6_notify_without_id_matches_the_first_refer() -> None:
    # The first REFER's NOTIFYs may leave the id out; another id is another subscription.
    w = ReferWorld()
    sub = w.refer_carol()
    no_id = sub.notify(1.0, body=sipfrag(180), content_type=SIPFRAG)
    no_id.headers.set("Event", "refer")
    assert w.referrer.receive_notify(no_id).status == 200
    assert w.referrer.statuses == [100, 180]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"SIP/2.0 100 Trying\r\n", (100, "Trying")),
        (b"SIP/2.0 200 OK\r\n", (200, "OK")),
        (b"SIP/2.0 603 Declined\r\nWarning: 399 x\r\n", (603, "Declined")),
        (b"SIP/2.0 180", (180, "")),
    ],
)
def test_parse_sipfrag(body: bytes, expected: tuple[int, str]) -> None:
    assert parse_sipfrag(body) == expected


@pytest.mark.parametrize("body", [b"", b"INVITE sip:x SIP/2.0\r\n", b"SIP/2.0 99 x", b"\xff\xfe"])
def test_parse_sipfrag_rejects(body: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_sipfrag(body)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=100, max_value=699))
def test_sipfrag_round_trip(status: int) -> None:
    assert parse_sipfrag(sipfrag(status))[0] == status


def test_referral_subscription_times_out_without_final_status() -> None:
    refer = vector("rfc3515-f1-refer.sip")
    assert isinstance(refer, Request)
    result = receive_refer(refer, 0.0, config=CONFIG)
    referral = result.referral
    assert referral is not None
    assert referral.get_timer() == 60.0
    assert referral.handle_timer(59.0) is None
    notify = referral.progress(10.0, 180)
    assert notify is not None
    final = referral.handle_timer(60.0)
    assert final is not None
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert final.body == b"SIP/2.0 180 Ringing\r\n"
    assert referral.get_timer() is None and referral.progress(61.0, 200) is None
