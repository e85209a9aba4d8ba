"""What the focus needs from the UA core, sans-IO: two real UACores through bytes and the real
parser on a fake clock (the ``Net`` of test_uacore).

* a re-INVITE from the callee is answered (or refused) by the caller (RFC 3261 s14.2);
* ``contact=`` on accept/invite (RFC 4579 s3, s5.5 ``;isfocus``), ``from_user=`` on invite;
* ``headers=`` on reject (a 401's WWW-Authenticate, s22.1; Retry-After; Warning);
* :class:`CallProgress` for 180/183 to our INVITEs (s13.2.2.1);
* :meth:`UACore.answer_with`: a prebuilt response that counts as the answer.
"""

from __future__ import annotations

import pytest

from focus.sip.events import TransactionKey
from focus.sip.flow import TransportKind
from focus.sip.headers import NameAddr
from focus.sip.message import Request, make_response
from focus.sip.uacore import (
    Call,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallProgress,
    CallState,
    IncomingCall,
    IncomingRequest,
    RequestCompleted,
    UAConfig,
    UACore,
    UAError,
)
from focus.sip.uri import Params, parse_uri
from tests.focus.sip.test_uacore import (
    ANSWER,
    B_ADDR,
    METHODS,
    OFFER,
    Net,
    b_uri,
    dialog_of,
    establish,
    incoming,
    state_of,
)

OFFER2 = OFFER.replace(b"o=a 1 1", b"o=a 1 2").replace(b"30000", b"30002")
ANSWER2 = ANSWER.replace(b"o=b 1 1", b"o=b 1 2").replace(b"40000", b"40002")
FOCUS_CONTACT = "<sip:conf1@127.0.0.1:5060>;isfocus"


@pytest.fixture
def net() -> Net:
    return Net()


def reinvite_from_callee(net: Net) -> tuple[Call, Call]:
    """An established call a -> b; b sends a re-INVITE; returns (caller, callee)."""
    caller, callee = establish(net)
    net.take("a", CallAnswered)
    net.take("b", CallConfirmed)
    net.b.reinvite(callee, OFFER2, net.now)
    net.pump()
    return caller, callee


def test_caller_answers_a_reinvite_from_the_callee(net: Net) -> None:
    caller, callee = establish(net)
    net.take("a", CallAnswered)
    net.take("b", CallConfirmed)
    net.b.reinvite(callee, OFFER2, net.now)
    net.pump()
    got = net.take("a", IncomingCall)
    assert len(got) == 1 and isinstance(got[0], IncomingCall)
    assert got[0].reinvite and got[0].call is caller and got[0].offer == OFFER2
    assert caller.outgoing and caller.remote_sdp == OFFER2
    net.a.accept(caller, ANSWER2, net.now)
    net.pump()
    oks = net.sent("a", "200/INVITE")
    assert len(oks) == 1 and oks[0].body == ANSWER2
    assert oks[0].contact != "*" and oks[0].contact[0].uri == parse_uri("sip:alice@127.0.0.1:5070")
    answered = net.take("b", CallAnswered)
    assert len(answered) == 1 and isinstance(answered[0], CallAnswered)
    assert answered[0].call is callee and answered[0].response.body == ANSWER2
    # b ACKs our 2xx; a sees it as the confirmation of its answer.
    acks = net.sent("b", "ACK")
    assert [a.cseq.number for a in acks] == [callee.invite.cseq.number]
    confirmed = net.take("a", CallConfirmed)
    assert len(confirmed) == 1 and isinstance(confirmed[0], CallConfirmed)
    assert confirmed[0].call is caller
    assert state_of(caller) is CallState.CONFIRMED and state_of(callee) is CallState.CONFIRMED
    assert caller.local_sdp == ANSWER2 and callee.remote_sdp == ANSWER2
    # The call goes on: the caller can hang up as usual.
    assert net.a.bye(caller, net.now) is not None
    net.pump()
    assert len(net.take("b", CallEnded)) == 1
    assert net.a.calls == [] and net.b.calls == []


def test_caller_refuses_a_reinvite_with_headers_and_the_call_goes_on(net: Net) -> None:
    caller, callee = establish(net)
    net.take("a", CallAnswered)
    key = net.b.reinvite(callee, OFFER2, net.now)
    net.pump()
    assert net.take("a", IncomingCall)
    net.a.reject(
        caller,
        488,
        net.now,
        "Not Acceptable Here",
        headers=[("Warning", '304 focus "Media type not available"')],
    )
    net.pump()
    done = net.take("b", RequestCompleted)
    assert len(done) == 1 and isinstance(done[0], RequestCompleted) and done[0].key == key
    assert done[0].response.status == 488
    assert done[0].response.headers.get("Warning") == '304 focus "Media type not available"'
    assert state_of(caller) is CallState.CONFIRMED and state_of(callee) is CallState.CONFIRMED
    assert net.take("a", CallEnded) == [] and net.take("b", CallFailed) == []
    # A second re-INVITE works as well (the first one is over on both sides, s14.1).
    net.b.reinvite(callee, OFFER2.replace(b"1 2", b"1 3"), net.now)
    net.pump()
    assert net.take("a", IncomingCall)
    net.a.accept(caller, ANSWER2, net.now)
    net.pump()
    assert len(net.take("b", CallAnswered)) == 1


def test_a_reinvite_of_an_outgoing_call_left_unanswered_gets_500(net: Net) -> None:
    caller, _ = reinvite_from_callee(net)
    assert net.take("a", IncomingCall)
    net.advance(181.0)  # past UAConfig.ring_timeout
    refused = net.sent("a", "500/INVITE")
    assert len(refused) == 1
    assert state_of(caller) is CallState.CONFIRMED  # s14.1: the session stays as it was


def test_cannot_answer_an_outgoing_call_without_an_incoming_invite(net: Net) -> None:
    caller, _ = establish(net)
    with pytest.raises(UAError):
        net.a.accept(caller, ANSWER, net.now)
    with pytest.raises(UAError):
        net.a.reject(caller, 488, net.now)
    # Nor while our own re-INVITE is out (its client key is no INVITE to answer).
    net.a.reinvite(caller, OFFER2, net.now)
    with pytest.raises(UAError):
        net.a.accept(caller, ANSWER, net.now)


@pytest.mark.parametrize(
    "contact",
    [
        FOCUS_CONTACT,
        NameAddr(parse_uri("sip:conf1@127.0.0.1:5060"), params=Params([("isfocus", None)])),
    ],
)
def test_accept_with_a_focus_contact(net: Net, contact: str | NameAddr) -> None:
    caller = net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    net.b.accept(callee, ANSWER, net.now, contact=contact)
    net.pump()
    ok = net.sent("b", "200/INVITE")[0]
    assert ok.headers.get("Contact") == FOCUS_CONTACT
    assert str(dialog_of(callee).local_contact) == FOCUS_CONTACT
    # The caller's dialog targets the conference URI (s12.1.2): its BYE goes there.
    assert dialog_of(caller).remote_target == parse_uri("sip:conf1@127.0.0.1:5060")
    net.a.bye(caller, net.now)
    net.pump()
    bye = net.sent("a", "BYE")[0]
    assert isinstance(bye, Request) and bye.uri == parse_uri("sip:conf1@127.0.0.1:5060")
    assert len(net.take("b", CallEnded)) == 1


def test_accept_of_a_reinvite_with_a_contact_refreshes_our_target(net: Net) -> None:
    caller, callee = establish(net)
    net.a.reinvite(caller, OFFER2, net.now)
    net.pump()
    net.b.accept(callee, ANSWER2, net.now, contact=FOCUS_CONTACT)
    net.pump()
    assert net.sent("b", "200/INVITE")[-1].headers.get("Contact") == FOCUS_CONTACT
    assert dialog_of(caller).remote_target == parse_uri("sip:conf1@127.0.0.1:5060")


def test_invite_with_a_focus_contact_and_from_user(net: Net) -> None:
    caller = net.a.invite(
        b_uri(), OFFER, net.now, contact=FOCUS_CONTACT.replace("5060", "5070"), from_user="conf1"
    )
    net.pump()
    invite = net.sent("a", "INVITE")[0]
    assert isinstance(invite, Request)
    assert invite.headers.get("Contact") == "<sip:conf1@127.0.0.1:5070>;isfocus"
    assert invite.from_.uri == parse_uri("sip:conf1@127.0.0.1:5070")
    assert invite.from_.tag == caller.local_tag
    callee = incoming(net)
    net.b.accept(callee, ANSWER, net.now)
    net.pump()
    assert str(dialog_of(caller).local_contact) == "<sip:conf1@127.0.0.1:5070>;isfocus"
    # The callee's requests in the dialog go to the focus URI; the From user stays.
    net.b.bye(callee, net.now)
    net.pump()
    bye = net.sent("b", "BYE")[0]
    assert isinstance(bye, Request) and bye.uri == parse_uri("sip:conf1@127.0.0.1:5070")
    assert bye.to.uri == parse_uri("sip:conf1@127.0.0.1:5070")
    assert len(net.take("a", CallEnded)) == 1
    # The next call is ours again (the override is per call).
    net.a.invite(b_uri(), OFFER, net.now)
    second = net.a.outgoing()[0].message
    assert isinstance(second, Request)
    assert second.from_.uri == parse_uri("sip:alice@127.0.0.1:5070")


@pytest.mark.parametrize("bad", ["<sip:conf1@127.0.0.1", "not a uri at all <"])
def test_unusable_contact_is_refused(net: Net, bad: str) -> None:
    with pytest.raises(UAError, match="Contact"):
        net.a.invite(b_uri(), OFFER, net.now, contact=bad)
    assert net.a.outgoing() == []
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    with pytest.raises(UAError, match="Contact"):
        net.b.accept(callee, ANSWER, net.now, contact=bad)
    assert state_of(callee) is CallState.INCOMING  # still answerable
    net.b.accept(callee, ANSWER, net.now)
    net.pump()
    assert state_of(callee) is CallState.CONFIRMED


def test_reject_carries_extra_headers(net: Net) -> None:
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    challenge = 'Digest realm="conf.example.com", nonce="abc123", algorithm=MD5, qop="auth"'
    net.b.reject(
        callee, 401, net.now, headers=[("WWW-Authenticate", challenge), ("Retry-After", "30")]
    )
    net.pump()
    refused = net.sent("b", "401/INVITE")
    assert len(refused) == 1
    assert refused[0].headers.get("WWW-Authenticate") == challenge
    assert refused[0].headers.get("Retry-After") == "30"
    failed = net.take("a", CallFailed)
    assert len(failed) == 1 and isinstance(failed[0], CallFailed) and failed[0].status == 401
    assert net.sent("a", "ACK"), "the non-2xx is ACKed by the transaction layer"
    assert state_of(callee) is CallState.ENDED


def test_provisional_responses_are_reported(net: Net) -> None:
    caller = net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    net.b.progress(callee, net.now, 180)
    net.b.progress(callee, net.now, 183)
    net.pump()
    progress = net.take("a", CallProgress)
    assert [p.response.status for p in progress if isinstance(p, CallProgress)] == [180, 183]
    assert all(
        isinstance(p, CallProgress) and p.call is caller and not p.reinvite for p in progress
    )
    assert net.sent("b", "100/INVITE"), "100 Trying was sent but is not reported"
    assert state_of(caller) is CallState.CALLING
    net.b.accept(callee, ANSWER, net.now)
    net.pump()
    assert len(net.take("a", CallAnswered)) == 1
    # A re-INVITE's provisional responses are reported as such.
    net.a.reinvite(caller, OFFER2, net.now)
    net.pump()
    assert net.take("b", IncomingCall)
    net.b.progress(callee, net.now)
    net.pump()
    again = net.take("a", CallProgress)
    assert len(again) == 1 and isinstance(again[0], CallProgress) and again[0].reinvite


def bob_who_answers_in_5s() -> Net:
    """A Net whose b core answers 500 to a request its user leaves unanswered for 5 s."""
    net = Net()
    net.b = UACore(
        UAConfig(user="bob", methods=METHODS, answer_timeout=5.0), {TransportKind.UDP: B_ADDR}
    )
    return net


def message_to_a_bob_who_answers_in_5s() -> tuple[Net, TransactionKey, Request]:
    """That Net, a MESSAGE sent a -> b (its key at a) and the request as b's user got it."""
    net = bob_who_answers_in_5s()
    key = net.a.request(b_uri(), "MESSAGE", net.now, body=b"hi", content_type="text/plain")
    net.pump()
    got = net.take("b", IncomingRequest)
    assert isinstance(got[0], IncomingRequest)
    return net, key, got[0].request


def test_answer_with_sends_a_prebuilt_response_and_counts_as_the_answer() -> None:
    net, key, request = message_to_a_bob_who_answers_in_5s()
    response = make_response(request, 202, to_tag="built-elsewhere")
    net.b.answer_with(request, response, net.now)
    net.pump()
    done = net.take("a", RequestCompleted)
    assert isinstance(done[0], RequestCompleted) and done[0].key == key
    assert done[0].response.status == 202 and done[0].response.to.tag == "built-elsewhere"
    net.advance(10.0)  # past answer_timeout: the core does not answer again
    assert net.sent("b", "500/MESSAGE") == []


def test_unanswered_request_still_gets_500_after_answer_timeout() -> None:
    """The counterpart of the test above: without an answer, the core answers 500."""
    net = bob_who_answers_in_5s()
    net.a.request(b_uri(), "MESSAGE", net.now, body=b"hi", content_type="text/plain")
    net.pump()
    assert net.take("b", IncomingRequest)
    net.advance(6.0)
    assert len(net.sent("b", "500/MESSAGE")) == 1


def test_answer_with_refuses_a_response_to_another_request(net: Net) -> None:
    net.a.request(b_uri(), "MESSAGE", net.now, body=b"one", content_type="text/plain")
    net.a.request(b_uri(), "MESSAGE", net.now, body=b"two", content_type="text/plain")
    net.pump()
    got = [e.request for e in net.take("b", IncomingRequest) if isinstance(e, IncomingRequest)]
    assert len(got) == 2
    with pytest.raises(UAError):
        net.b.answer_with(got[0], make_response(got[1], 200, to_tag="x"), net.now)


def test_a_provisional_answer_with_does_not_count_as_final() -> None:
    net, _, request = message_to_a_bob_who_answers_in_5s()
    net.b.answer_with(request, make_response(request, 183, to_tag="t"), net.now)
    net.advance(6.0)
    assert len(net.sent("b", "500/MESSAGE")) == 1


def test_contact_for_is_the_contact_the_core_uses(net: Net) -> None:
    assert str(net.b.contact_for(TransportKind.UDP)) == "<sip:bob@127.0.0.1:5060>"
    # No TCP here: any bound transport.
    assert str(net.b.contact_for(TransportKind.TCP)) == "<sip:bob@127.0.0.1:5060>"


def test_a_final_response_sent_with_send_response_is_not_answered_again() -> None:
    """send_response does not note the request; the core still must not try a second
    final response at answer_timeout (the transaction is Completed: no row for that)."""
    net, _, request = message_to_a_bob_who_answers_in_5s()
    net.b.send_response(make_response(request, 200, to_tag="t"), net.now)
    net.advance(10.0)
    assert net.sent("b", "500/MESSAGE") == []
    assert net.sent("b", "200/MESSAGE")  # (again for each retransmitted MESSAGE)


def test_progress_sends_1xx_with_the_tag_and_contact_of_the_coming_2xx(net: Net) -> None:
    caller = net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    net.b.progress(callee, net.now)  # 180 Ringing
    net.b.progress(
        callee,
        net.now,
        183,
        "Session Progress",
        contact=FOCUS_CONTACT,
        headers=[("Warning", '399 focus "announcement"')],
    )
    net.pump()
    progress = [e for e in net.take("a", CallProgress) if isinstance(e, CallProgress)]
    assert [(p.response.status, p.response.reason) for p in progress] == [
        (180, "Ringing"),
        (183, "Session Progress"),
    ]
    assert {p.response.to.tag for p in progress} == {callee.local_tag}
    assert progress[0].response.headers.get("Contact") == "<sip:bob@127.0.0.1:5060>"
    assert progress[1].response.headers.get("Contact") == FOCUS_CONTACT
    assert progress[1].response.headers.get("Warning") == '399 focus "announcement"'
    net.b.accept(callee, ANSWER, net.now)
    net.pump()
    assert net.sent("b", "200/INVITE")[0].to.tag == callee.local_tag
    assert dialog_of(caller).id.remote_tag == callee.local_tag
    with pytest.raises(UAError):  # answered: nothing waits any more
        net.b.progress(callee, net.now)


@pytest.mark.parametrize("status", [100, 200, 486])
def test_progress_is_only_for_1xx_after_100(net: Net, status: int) -> None:
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    callee = incoming(net)
    with pytest.raises(UAError):
        net.b.progress(callee, net.now, status)
    assert state_of(callee) is CallState.INCOMING
