"""Hostile input never crashes the sans-IO machines: random well-formed-ish messages in
random order, with random timer firings, into a TransactionLayer, the dialog table, the
notifier, the subscriber and the REFER helpers.  Each either handles the message or says
why not (an event, an error response); none raises."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.dialog import Dialog, DialogTable
from focus.sip.errors import SipParseError
from focus.sip.events import MessageDiscarded, RequestReceived
from focus.sip.flow import Flow, TransportKind
from focus.sip.headers import parse_name_addr
from focus.sip.message import Response, make_response
from focus.sip.parser import parse_message
from focus.sip.refer import ReferConfig, Referrer, receive_refer
from focus.sip.subscription import Notifier, NotifierConfig, Subscriber
from focus.sip.transaction import TransactionLayer

SOURCE = Flow(TransportKind.UDP, "127.0.0.1", 5099)
CONTACT = parse_name_addr("<sip:me@127.0.0.1:5060>")

methods = st.sampled_from(
    ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "SUBSCRIBE", "NOTIFY", "REFER", "INFO"]
)
branches = st.sampled_from(["z9hG4bKa", "z9hG4bKb", "oldstyle", "z9hG4bK"])
tags = st.one_of(st.none(), st.sampled_from(["t1", "t2"]))
cseqs = st.integers(min_value=0, max_value=5)
optional_headers = st.lists(
    st.sampled_from(
        [
            "Expires: 0",
            "Expires: 5",
            "Expires: 3600",
            "Expires: banana",
            "Event: conference",
            "Event: refer;id=1",
            "Event: presence",
            "Subscription-State: active;expires=10",
            "Subscription-State: terminated;reason=timeout",
            "Subscription-State: weird",
            "Refer-To: <sip:c@127.0.0.1>",
            "Refer-To: <sip:c@127.0.0.1;method=BYE>",
            "Refer-Sub: false",
            "Contact: <sip:peer@127.0.0.1:5099>",
            "Contact: *",
            "Record-Route: <sip:p1.example;lr>",
            "Content-Type: message/sipfrag",
        ]
    ),
    max_size=5,
    unique=True,
)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    method = draw(methods)
    cseq_method = draw(st.one_of(st.just(method), methods))
    to_tag = draw(tags)
    from_tag = draw(st.one_of(st.just("f1"), st.none()))
    head = [
        f"Via: SIP/2.0/UDP 127.0.0.1:5099;branch={draw(branches)};rport",
        "From: <sip:peer@127.0.0.1>" + (f";tag={from_tag}" if from_tag else ""),
        "To: <sip:me@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {draw(st.sampled_from(['c1', 'c2']))}",
        f"CSeq: {draw(cseqs)} {cseq_method}",
        "Max-Forwards: 70",
        *draw(optional_headers),
    ]
    body = draw(st.sampled_from([b"", b"SIP/2.0 200 OK\r\n", b"garbage"]))
    if draw(st.booleans()):
        start = f"{method} sip:me@127.0.0.1:5060 SIP/2.0"
    else:
        start = f"SIP/2.0 {draw(st.sampled_from([100, 180, 200, 202, 401, 481, 486, 503]))} X"
    text = "\r\n".join([start, *head, f"Content-Length: {len(body)}", "", ""])
    return text.encode() + body


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(messages(), st.floats(min_value=0, max_value=5)), max_size=12))
def test_transaction_layer_never_raises_on_network_input(
    inputs: list[tuple[bytes, float]],
) -> None:
    layer = TransactionLayer()
    now = 0.0
    for data, dt in inputs:
        now += dt
        try:
            message = parse_message(data)
        except SipParseError:
            continue
        layer.receive_message(message, SOURCE, now)
        layer.handle_timer(now)
        while (event := layer.next_event()) is not None:
            assert not isinstance(event, MessageDiscarded) or event.reason
            if isinstance(event, RequestReceived) and event.transaction is not None:
                # a TU that answers everything with 200 must never be refused
                with contextlib.suppress(SipParseError):
                    layer.send_response(make_response(event.request, 200, to_tag="x"), now)
        layer.outgoing()
    layer.handle_timer(now + 1000)
    assert len(layer) == 0  # every transaction ended by its timers
    assert layer.get_timer() is None


@settings(max_examples=150, deadline=None)
@given(st.lists(messages(), max_size=8))
def test_dialog_subscription_refer_helpers_never_raise(datas: list[bytes]) -> None:
    notifier = Notifier(
        NotifierConfig(
            packages=frozenset({"conference"}), sent_by="127.0.0.1:5060", contact=CONTACT
        )
    )
    table = DialogTable()
    subscriber = Subscriber(
        package="conference",
        local_uri=CONTACT,
        remote_uri=CONTACT,
        request_uri="sip:me@127.0.0.1",
        contact=CONTACT,
        sent_by="127.0.0.1:5060",
        call_id="c1",
        local_tag="t1",
    )
    referrer = Referrer.out_of_dialog(
        local_uri=CONTACT,
        remote_uri=CONTACT,
        request_uri="sip:me@127.0.0.1",
        contact=CONTACT,
        sent_by="127.0.0.1:5060",
    )
    referrer.call_id, referrer.local_tag, referrer.cseq = "c1", "t1", 1
    config = ReferConfig(sent_by="127.0.0.1:5060", contact=CONTACT)
    for n, data in enumerate(datas):
        try:
            message = parse_message(data)
        except SipParseError:
            continue
        if isinstance(message, Response):
            continue
        try:
            message.cseq  # noqa: B018 -- the layer rejects requests without these
            message.from_  # noqa: B018
            message.to  # noqa: B018
            message.call_id  # noqa: B018
        except SipParseError:
            continue
        method = message.method
        if method == "SUBSCRIBE":
            result = notifier.receive_subscribe(message, float(n))
            assert 200 <= result.response.status < 700
        elif method == "REFER":
            found = table.dispatch(message)
            dialog = found if isinstance(found, Dialog) else None
            result_r = receive_refer(message, float(n), config=config, dialog=dialog)
            assert 200 <= result_r.response.status < 700
            if result_r.referral is not None and result_r.referral.subscription is not None:
                table.add(result_r.referral.subscription.dialog)
        elif method == "NOTIFY":
            assert 200 <= subscriber.receive_notify(message).status < 700
            assert 200 <= referrer.receive_notify(message).status < 700
        else:
            found = table.dispatch(message)
            if isinstance(found, Dialog):
                answer = found.receive_request(message)
                assert answer is None or 400 <= answer.status < 600
            elif isinstance(found, Response):
                assert found.status == 481
    notifier.handle_timer(1e9)
    assert notifier.subscriptions == {}
