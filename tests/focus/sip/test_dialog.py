"""Dialogs (RFC 3261 s12-s15) between two transaction layers over the real parser."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.dialog import (
    DIALOG_TABLE,
    Dialog,
    DialogInput,
    DialogState,
    DialogTable,
    glare_retry_delay,
)
from focus.sip.errors import LocalProtocolError
from focus.sip.events import RequestReceived, ResponseReceived
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, Response, make_response
from focus.sip.uri import SipURI
from tests.focus.sip.test_transaction_wire import ALICE_PORT, BOB_PORT, Wire, of_type

ALICE_CONTACT = parse_name_addr(f"<sip:alice@127.0.0.1:{ALICE_PORT}>")
BOB_CONTACT = parse_name_addr(f"<sip:bob@127.0.0.1:{BOB_PORT}>")
RR = ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]


class Call:
    """Alice calls Bob; each side keeps its own DialogTable."""

    def __init__(self, *, record_route: list[str] | None = None, early: bool = True) -> None:
        self.wire = Wire()
        self.alice_dialogs = DialogTable()
        self.bob_dialogs = DialogTable()
        self.invite = self.wire.request("INVITE")
        for rr in record_route or []:
            # as if proxies on the way had inserted them (s16.6)
            self.invite.headers.add("Record-Route", rr)
        self.wire.a.send_request(self.invite, self.wire.b_flow, 0.0)
        self.wire.pump()
        self.bob_invite = self.last_request("INVITE")
        if early:
            ringing = make_response(self.bob_invite, 180, to_tag="bobtag")
            ringing.headers.add("Contact", str(BOB_CONTACT))
            self.bob = self.bob_dialogs.add(Dialog.from_uas(self.bob_invite, ringing, BOB_CONTACT))
            self.wire.b.send_response(ringing, self.wire.now)
            self.wire.pump()
            r180 = self.last_response()
            self.alice = self.alice_dialogs.add(Dialog.from_uac(self.invite, r180, ALICE_CONTACT))
            assert self.alice.state is DialogState.EARLY
            ok = self.bob.create_response(self.bob_invite, 200, body=b"v=0\r\n")
        else:
            ok = make_response(self.bob_invite, 200, to_tag="bobtag")
            ok.headers.add("Contact", str(BOB_CONTACT))
            self.bob = self.bob_dialogs.add(Dialog.from_uas(self.bob_invite, ok, BOB_CONTACT))
        self.wire.b.send_response(ok, self.wire.now)
        self.wire.pump()
        r200 = self.last_response()
        if early:
            self.alice.receive_response(self.invite, r200)
        else:
            self.alice = self.alice_dialogs.add(Dialog.from_uac(self.invite, r200, ALICE_CONTACT))
        ack = self.alice.create_ack(self.invite.cseq.number, sent_by=f"127.0.0.1:{ALICE_PORT}")
        self.wire.a.send_ack(ack, self.wire.b_flow)
        self.wire.pump()

    def last_request(self, method: str) -> Request:
        return [
            e.request
            for e in of_type(self.wire.b_events, RequestReceived)
            if e.request.method == method
        ][-1]

    def last_response(self) -> Response:
        return of_type(self.wire.a_events, ResponseReceived)[-1].response

    def alice_sends(self, method: str, **kw: object) -> Request:
        req = self.alice.create_request(method, sent_by=f"127.0.0.1:{ALICE_PORT}", **kw)  # type: ignore[arg-type]
        self.wire.a.send_request(req, self.wire.b_flow, self.wire.now)
        self.wire.pump()
        return req


def test_uac_and_uas_dialogs_agree() -> None:
    call = Call(record_route=RR)
    a, b = call.alice, call.bob
    assert a.state is DialogState.CONFIRMED and b.state is DialogState.CONFIRMED
    assert a.id.call_id == b.id.call_id
    assert (a.id.local_tag, a.id.remote_tag) == (b.id.remote_tag, b.id.local_tag)
    # route set: UAS keeps Record-Route order, UAC reverses it (s12.1.1, s12.1.2)
    assert [str(r.uri) for r in b.route_set] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert [str(r.uri) for r in a.route_set] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    assert str(a.remote_target) == str(BOB_CONTACT.uri)
    assert str(b.remote_target) == str(ALICE_CONTACT.uri)
    assert a.local_seq == call.invite.cseq.number and a.remote_seq is None
    assert b.remote_seq == call.invite.cseq.number and b.local_seq is None
    # the ACK of the 2xx reached Bob's TU outside any transaction, in the dialog
    ack = call.last_request("ACK")
    assert call.bob_dialogs.dispatch(ack) is b


def test_in_dialog_request_loose_routing() -> None:
    call = Call(record_route=RR)
    req = call.alice.create_request("INFO", sent_by="127.0.0.1:5071")
    assert str(req.uri) == str(BOB_CONTACT.uri)  # Request-URI = remote target
    assert [str(r.uri) for r in req.route] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    assert call.alice.next_hop() == req.route[0].uri
    assert req.cseq.number == call.invite.cseq.number + 1
    assert req.from_.tag == call.alice.id.local_tag and req.to.tag == call.alice.id.remote_tag
    assert (req.via[0].branch or "").startswith("z9hG4bK")


def test_in_dialog_request_strict_routing() -> None:
    call = Call(record_route=["<sip:strict.example;maddr=10.0.0.1>", "<sip:p2.example;lr>"])
    req = call.alice.create_request("INFO", sent_by="127.0.0.1:5071")
    # UAC route set is reversed: p2 (loose) first -> loose routing
    assert str(req.uri) == str(BOB_CONTACT.uri)
    strict = Call(record_route=["<sip:p2.example;lr>", "<sip:strict.example;maddr=10.0.0.1>"])
    req = strict.alice.create_request("INFO", sent_by="127.0.0.1:5071")
    # first route lacks lr: it becomes the Request-URI (params stripped), the remote
    # target goes last in Route (s12.2.1.1)
    assert isinstance(req.uri, SipURI) and req.uri.host == "strict.example"
    assert "maddr" not in req.uri.params
    assert [str(r.uri) for r in req.route] == ["sip:p2.example;lr", str(BOB_CONTACT.uri)]


def test_cseq_lower_gets_500_and_higher_is_accepted() -> None:
    call = Call()
    info = call.alice_sends("INFO")
    got = call.last_request("INFO")
    assert call.bob.receive_request(got) is None
    assert call.bob.remote_seq == info.cseq.number
    stale = call.alice.create_request("INFO", sent_by="127.0.0.1:5071")
    stale.headers.set("CSeq", f"{info.cseq.number - 1} INFO")
    response = call.bob.receive_request(stale)
    assert response is not None and response.status == 500
    assert response.to.tag == "bobtag"


def test_target_refresh_by_reinvite_both_sides() -> None:
    call = Call()
    new_contact = parse_name_addr("<sip:alice@127.0.0.1:6000>")
    call.alice.local_contact = new_contact
    reinvite = call.alice_sends("INVITE")
    got = call.last_request("INVITE")
    assert call.bob.receive_request(got) is None
    assert str(call.bob.remote_target) == "sip:alice@127.0.0.1:6000"
    bob_new = parse_name_addr("<sip:bob@127.0.0.1:7000>")
    call.bob.local_contact = bob_new
    ok = call.bob.create_response(got, 200)
    call.wire.b.send_response(ok, call.wire.now)
    call.wire.pump()
    call.alice.receive_response(reinvite, call.last_response())
    assert str(call.alice.remote_target) == "sip:bob@127.0.0.1:7000"
    assert not call.alice.client_invite_pending
    assert call.bob.server_invite_pending is None


def test_reinvite_glare_gets_491_on_both_sides() -> None:
    call = Call()
    a_inv = call.alice.create_request("INVITE", sent_by="127.0.0.1:5071")
    b_inv = call.bob.create_request("INVITE", sent_by="127.0.0.1:5072")
    # each receives the other's INVITE while its own is pending (s14.2)
    a_answer = call.alice.receive_request(b_inv)
    b_answer = call.bob.receive_request(a_inv)
    assert a_answer is not None and a_answer.status == 491
    assert b_answer is not None and b_answer.status == 491
    call.alice.receive_response(a_inv, b_answer)
    assert not call.alice.client_invite_pending
    # and a UA may not start a second INVITE of its own meanwhile (s14.1)
    with pytest.raises(LocalProtocolError):
        call.bob.create_request("INVITE", sent_by="127.0.0.1:5072")


def test_second_invite_before_first_answered_gets_500_retry_after() -> None:
    call = Call()
    first = call.alice.create_request("INVITE", sent_by="127.0.0.1:5071")
    assert call.bob.receive_request(first) is None
    call.alice.client_invite_pending = False  # a misbehaving peer would do this
    second = call.alice.create_request("INVITE", sent_by="127.0.0.1:5071")
    response = call.bob.receive_request(second)
    assert response is not None and response.status == 500
    retry = response.headers.get("Retry-After")
    assert retry is not None and 0 < int(retry) <= 10


@pytest.mark.parametrize("method", ["INFO", "INVITE", "SUBSCRIBE", "NOTIFY", "REFER", "BYE"])
def test_checking_the_same_request_twice_gives_the_same_verdict(method: str) -> None:
    call = Call()
    sent = call.alice_sends(method)
    got = call.last_request(method)
    assert call.bob.receive_request(got) is None
    state = (
        call.bob.remote_seq,
        call.bob.state,
        call.bob.server_invite_pending,
        str(call.bob.remote_target),
    )
    # the UA core checked it; a subscription / REFER helper checks it again
    assert call.bob.receive_request(got) is None
    assert call.bob.receive_request(got) is None
    assert (
        call.bob.remote_seq,
        call.bob.state,
        call.bob.server_invite_pending,
        str(call.bob.remote_target),
    ) == state
    # a new request with that CSeq is still out of order (s12.2.2)
    if method != "BYE":
        again = call.alice.create_request("INFO", sent_by="127.0.0.1:5071")
        again.headers.set("CSeq", f"{sent.cseq.number} INFO")
        answer = call.bob.receive_request(again)
        assert answer is not None and answer.status == 500


def test_an_error_verdict_is_repeated_too() -> None:
    call = Call()
    first = call.alice.create_request("INVITE", sent_by="127.0.0.1:5071")
    assert call.bob.receive_request(first) is None
    call.alice.client_invite_pending = False
    second = call.alice.create_request("INVITE", sent_by="127.0.0.1:5071")
    one, two = call.bob.receive_request(second), call.bob.receive_request(second)
    assert one is not None and two is not None
    assert (one.status, two.status) == (500, 500)
    assert one is not two, "each caller gets its own response to send"
    assert one.headers.get("Retry-After") == two.headers.get("Retry-After") is not None
    assert call.bob.server_invite_pending == first.cseq.number


@settings(max_examples=100, deadline=None)
@given(st.booleans(), st.integers(min_value=0, max_value=2**32))
def test_glare_retry_ranges(owner: bool, seed: int) -> None:
    delay = glare_retry_delay(owner, random.Random(seed))
    if owner:
        assert 2.1 <= delay <= 4.0
    else:
        assert 0.0 <= delay <= 2.0
    assert round(delay * 100) == pytest.approx(delay * 100)  # 10 ms units


def test_bye_ends_the_dialog_on_both_sides() -> None:
    call = Call()
    bye = call.alice_sends("BYE")
    got = call.last_request("BYE")
    assert call.bob_dialogs.dispatch(got) is call.bob
    assert call.bob.receive_request(got) is None
    assert call.bob.terminated
    call.wire.b.send_response(call.bob.create_response(got, 200), call.wire.now)
    call.wire.pump()
    call.alice.receive_response(bye, call.last_response())
    assert call.alice.terminated
    # a request on the dead dialog gets 481 (s12.2.2)
    late = Request("INFO", str(BOB_CONTACT.uri), got.headers.copy())
    late.headers.set("CSeq", f"{bye.cseq.number + 1} INFO")
    answer = call.bob_dialogs.dispatch(late)
    assert isinstance(answer, Response) and answer.status == 481
    with pytest.raises(LocalProtocolError):
        call.alice.create_request("INFO", sent_by="127.0.0.1:5071")


def test_unknown_dialog_gets_481_and_stray_ack_is_dropped() -> None:
    table = DialogTable()
    wire = Wire()
    req = wire.request("INFO", to_tag="nosuch")
    answer = table.dispatch(req)
    assert isinstance(answer, Response) and answer.status == 481
    assert table.dispatch(wire.request("ACK", to_tag="nosuch")) is None
    assert table.dispatch(wire.request("INVITE")) is None  # no To tag: not in a dialog


def test_dialog_without_early_state_and_481_kills_it() -> None:
    call = Call(early=False)
    info = call.alice_sends("INFO")
    got = call.last_request("INFO")
    call.wire.b.send_response(make_response(got, 481), call.wire.now)
    call.wire.pump()
    call.alice.receive_response(info, call.last_response())
    assert call.alice.terminated


def test_early_dialog_ends_on_failure() -> None:
    wire = Wire()
    invite = wire.request("INVITE")
    r180 = make_response(invite, 180, to_tag="t")
    r180.headers.add("Contact", str(BOB_CONTACT))
    d = Dialog.from_uac(invite, r180, ALICE_CONTACT)
    d.receive_response(invite, make_response(invite, 486, to_tag="t"))
    assert d.terminated


def test_dialog_needs_tagged_response() -> None:
    wire = Wire()
    invite = wire.request("INVITE")
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(invite, make_response(invite, 180), ALICE_CONTACT)
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(invite, make_response(invite, 100, to_tag="x"), ALICE_CONTACT)


@pytest.mark.parametrize("state", list(DialogState))
@pytest.mark.parametrize("event", list(DialogInput))
def test_dialog_table_total_or_error(state: DialogState, event: DialogInput) -> None:
    wire = Wire()
    invite = wire.request("INVITE")
    r = make_response(invite, 200, to_tag="t")
    r.headers.add("Contact", str(BOB_CONTACT))
    d = Dialog.from_uac(invite, r, ALICE_CONTACT)
    d.state = state
    if (state, event) in DIALOG_TABLE:
        d._move(event)
        assert d.state in DialogState
    else:
        with pytest.raises(LocalProtocolError):
            d._move(event)
    assert not any(s is DialogState.TERMINATED for (s, _) in DIALOG_TABLE)


def test_ack_is_remembered_for_2xx_retransmissions() -> None:
    call = Call()
    n = call.invite.cseq.number
    ack = call.alice.ack_for(n)
    assert ack is not None and ack.method == "ACK" and ack.cseq.number == n
    assert ack.to.tag == "bobtag" and ack.via[0].branch != call.invite.via[0].branch
    assert call.alice.ack_for(n + 1) is None
