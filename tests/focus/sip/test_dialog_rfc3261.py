"""The RFC 3261 s24.2 call flow as test vectors for transactions and dialogs."""

from __future__ import annotations

from focus.sip.dialog import Dialog, DialogState, DialogTable
from focus.sip.events import RequestReceived, ResponseReceived
from focus.sip.flow import Flow, TransportKind
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.transaction import State, TransactionLayer
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "dialog"
ALICE_CONTACT = parse_name_addr("<sip:alice@pc33.atlanta.com>")
BOB_CONTACT = parse_name_addr("<sip:bob@192.0.2.4>")
PROXY = Flow(TransportKind.UDP, "192.0.2.2", 5060)


def load(name: str) -> Request | Response:
    return parse_message((VECTORS / f"rfc3261-24.2-{name}.sip").read_bytes())


def req(name: str) -> Request:
    m = load(name)
    assert isinstance(m, Request)
    return m


def resp(name: str) -> Response:
    m = load(name)
    assert isinstance(m, Response)
    return m


def state_of(dialog: Dialog) -> DialogState:
    return dialog.state  # a call, so that mypy does not keep an earlier narrowing


def same_fields(a: Request | Response, b: Request | Response, *names: str) -> None:
    for name in names:
        assert a.headers.get_all(name) == b.headers.get_all(name), name


def test_alice_side_transactions_match_the_flow() -> None:
    layer = TransactionLayer()
    f1 = req("f1")
    key = layer.send_request(f1, PROXY, 0.0)
    assert [t.message for t in layer.outgoing()] == [f1]
    for name in ("f2", "f8", "f11"):
        layer.receive_message(resp(name), PROXY, 0.1)
    statuses = [
        e.response.status for e in iter(layer.next_event, None) if isinstance(e, ResponseReceived)
    ]
    assert statuses == [100, 180, 200]
    assert layer.transaction_state(key) is State.ACCEPTED


def test_bob_side_transactions_match_the_flow() -> None:
    layer = TransactionLayer()
    layer.receive_message(req("f5"), PROXY, 0.0)
    [invite_event, *_] = list(iter(layer.next_event, None))
    assert isinstance(invite_event, RequestReceived) and invite_event.transaction is not None
    assert invite_event.transaction.branch == "z9hG4bK4b43c2ff8.1"
    assert invite_event.transaction.sent_by == "server10.biloxi.com:5060"
    # the 100 Trying went out at once, with every Via of F5
    [trying] = layer.outgoing()
    assert isinstance(trying.message, Response) and trying.message.status == 100
    assert len(trying.message.via) == 3
    layer.send_response(resp("f6"), 0.1)
    layer.send_response(resp("f9"), 0.2)
    sent = [t.message for t in layer.outgoing()]
    assert [m.status for m in sent if isinstance(m, Response)] == [180, 200]
    layer.receive_message(req("f12"), Flow(TransportKind.UDP, "192.0.2.1", 5060), 0.3)
    acks = [e for e in iter(layer.next_event, None) if isinstance(e, RequestReceived)]
    assert len(acks) == 1 and acks[0].transaction is None and acks[0].request.method == "ACK"
    layer.handle_timer(10.0)  # the ACK stopped the 2xx retransmissions
    assert not any(
        isinstance(t.message, Response) and t.message.status == 200 for t in layer.outgoing()
    )


def test_alice_dialog_from_the_flow() -> None:
    f1, f8, f11 = req("f1"), resp("f8"), resp("f11")
    alice = Dialog.from_uac(f1, f8, ALICE_CONTACT)
    assert alice.state is DialogState.EARLY
    alice.receive_response(f1, f11)
    assert state_of(alice) is DialogState.CONFIRMED
    assert (alice.id.call_id, alice.id.local_tag, alice.id.remote_tag) == (
        "a84b4c76e66710",
        "1928301774",
        "a6c85cf",
    )
    assert str(alice.remote_target) == "sip:bob@192.0.2.4"
    assert alice.route_set == []
    ack = alice.create_ack(314159, sent_by="pc33.atlanta.com")
    f12 = req("f12")
    assert ack.method == "ACK" and ack.uri == f12.uri
    assert ack.cseq == f12.cseq
    assert (ack.from_.tag, ack.to.tag, ack.call_id) == (f12.from_.tag, f12.to.tag, f12.call_id)
    assert ack.to.uri == f12.to.uri and ack.from_.uri == f12.from_.uri
    # Bob hangs up: F13 arrives in the dialog, Alice answers F14
    table = DialogTable()
    table.add(alice)
    f13 = req("f13")
    assert table.dispatch(f13) is alice
    assert alice.receive_request(f13) is None
    assert alice.terminated
    ok = alice.create_response(f13, 200)
    same_fields(ok, resp("f14"), "Via", "From", "To", "Call-ID", "CSeq")


def test_bob_dialog_from_the_flow() -> None:
    f5, f6 = req("f5"), resp("f6")
    bob = Dialog.from_uas(f5, f6, BOB_CONTACT)
    assert (bob.id.local_tag, bob.id.remote_tag) == ("a6c85cf", "1928301774")
    assert str(bob.remote_target) == "sip:alice@pc33.atlanta.com"
    assert bob.remote_seq == 314159 and bob.local_seq is None
    ok = bob.create_response(f5, 200)
    assert bob.state is DialogState.CONFIRMED
    assert ok.headers.get("Contact") == str(BOB_CONTACT)
    assert bob.receive_request(req("f12")) is None  # the ACK does not count
    bob.local_seq = 230  # Bob's phone numbers its own requests from 231 in the example
    bye = bob.create_request("BYE", sent_by="192.0.2.4")
    f13 = req("f13")
    assert bye.uri == f13.uri
    assert bye.cseq == f13.cseq
    assert (bye.from_.tag, bye.to.tag, bye.call_id) == (f13.from_.tag, f13.to.tag, f13.call_id)
    assert bye.from_.uri == f13.from_.uri and bye.to.uri == f13.to.uri
    assert bye.route == []
    bob.receive_response(bye, resp("f14"))
    assert bob.terminated
