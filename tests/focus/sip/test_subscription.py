"""RFC 6665 subscriptions: a Subscriber (alice) and a Notifier (bob) over real transactions."""

from __future__ import annotations

import itertools

import pytest

from focus.sip.errors import LocalProtocolError
from focus.sip.events import RequestReceived, ResponseReceived
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, Response
from focus.sip.subscription import (
    SUBSCRIPTION_TABLE,
    Notifier,
    NotifierConfig,
    Reason,
    SubInput,
    Subscriber,
    Subscription,
    SubState,
)
from tests.focus.sip.test_transaction_wire import ALICE_PORT, BOB_PORT, Sent, Wire

ALICE = parse_name_addr("<sip:alice@127.0.0.1>")
CONF = parse_name_addr("<sip:conf@127.0.0.1>")
ALICE_CONTACT = parse_name_addr(f"<sip:alice@127.0.0.1:{ALICE_PORT}>")
BOB_CONTACT = parse_name_addr(f"<sip:conf@127.0.0.1:{BOB_PORT}>")
BODY = ("application/conference-info+xml", b"<conference-info/>")


class World:
    def __init__(self, *, pending: bool = False, drop: object = None) -> None:
        self.wire = Wire() if drop is None else Wire(drop=drop)  # type: ignore[arg-type]
        self.notifier = Notifier(
            NotifierConfig(
                packages=frozenset({"conference"}),
                sent_by=f"127.0.0.1:{BOB_PORT}",
                contact=BOB_CONTACT,
                min_expires=60,
                max_expires=3600,
                default_expires=3600,
            )
        )
        self.sub = Subscriber(
            package="conference",
            local_uri=ALICE,
            remote_uri=CONF,
            request_uri=f"sip:conf@127.0.0.1:{BOB_PORT}",
            contact=ALICE_CONTACT,
            sent_by=f"127.0.0.1:{ALICE_PORT}",
        )
        self.pending = pending
        self.a_seen = 0
        self.b_seen = 0
        self.requests: dict[str, Request] = {}
        self.responses: list[Response] = []
        self.notifies: list[Request] = []
        self.subscription: Subscription | None = None

    def send_subscribe(self, request: Request) -> None:
        key = self.wire.a.send_request(request, self.wire.b_flow, self.wire.now)
        self.requests[key.branch] = request
        self.settle()

    def bob_sends(self, notify: Request) -> None:
        self.notifies.append(notify)
        self.wire.b.send_request(notify, self.wire.a_flow, self.wire.now)

    def settle(self) -> None:
        """Let both TUs react to every event until nothing moves."""
        while True:
            self.wire.pump()
            moved = False
            for e in self.wire.b_events[self.b_seen :]:
                self.b_seen += 1
                moved = True
                if isinstance(e, RequestReceived) and e.request.method == "SUBSCRIBE":
                    result = self.notifier.receive_subscribe(
                        e.request, self.wire.now, body_for=lambda s: BODY, pending=self.pending
                    )
                    self.wire.b.send_response(result.response, self.wire.now)
                    if result.subscription is not None:
                        self.subscription = result.subscription
                    if result.notify is not None:
                        self.bob_sends(result.notify)
                elif isinstance(e, ResponseReceived) and self.subscription is not None:
                    self.notifier.notify_response(self.subscription, e.response)
            for e in self.wire.a_events[self.a_seen :]:
                self.a_seen += 1
                moved = True
                if isinstance(e, RequestReceived) and e.request.method == "NOTIFY":
                    self.wire.a.send_response(self.sub.receive_notify(e.request), self.wire.now)
                elif isinstance(e, ResponseReceived):
                    self.responses.append(e.response)
                    self.retry = self.sub.receive_response(e.request, e.response)
            if not moved:
                return


def test_subscribe_200_then_immediate_notify() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    assert [r.status for r in w.responses] == [200]
    assert w.responses[0].headers.get("Expires") == "600"
    assert w.sub.state is SubState.ACTIVE
    [update] = w.sub.updates
    assert (update.state, update.expires) == (SubState.ACTIVE, 600)
    assert (update.content_type, update.body) == BODY
    notify = w.notifies[0]
    assert notify.headers.get("Event") == "conference"
    assert notify.headers.get("Subscription-State") == "active;expires=600"
    assert notify.contact != "*" and notify.contact[0].uri == BOB_CONTACT.uri
    assert w.sub.dialog is not None and w.subscription is not None
    assert w.sub.dialog.id.remote_tag == w.subscription.dialog.id.local_tag


def test_unknown_package_is_489_with_allow_events() -> None:
    w = World()
    w.sub.package = "presence"
    w.send_subscribe(w.sub.subscribe(600))
    assert [r.status for r in w.responses] == [489]
    assert w.responses[0].headers.get("Allow-Events") == "conference"
    assert w.notifies == [] and w.sub.state is SubState.TERMINATED


def test_missing_event_header_is_489() -> None:
    w = World()
    req = w.sub.subscribe(600)
    req.headers.remove("Event")
    w.send_subscribe(req)
    assert [r.status for r in w.responses] == [489]


def test_too_brief_is_423_and_retry_with_min_expires_works() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(10))
    assert [r.status for r in w.responses] == [423]
    assert w.responses[0].headers.get("Min-Expires") == "60"
    assert w.retry == 60
    w.send_subscribe(w.sub.subscribe(w.retry))
    assert w.responses[-1].status == 200
    assert w.sub.updates[-1].expires == 60


def test_expires_is_capped_and_defaulted() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(999999))
    assert w.responses[0].headers.get("Expires") == "3600"
    w2 = World()
    w2.send_subscribe(w2.sub.subscribe())
    assert w2.responses[0].headers.get("Expires") == "3600"


def test_refresh_extends_and_notifies() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    w.wire.run_until(500.0)
    w.settle()
    w.send_subscribe(w.sub.subscribe(1200))
    assert w.responses[-1].status == 200
    assert w.responses[-1].headers.get("Expires") == "1200"
    assert w.notifies[-1].headers.get("Subscription-State") == "active;expires=1200"
    assert w.notifier.get_timer() == pytest.approx(500.0 + 1200)


def test_unsubscribe_terminates_with_timeout_reason() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    w.send_subscribe(w.sub.unsubscribe())
    assert w.responses[-1].status == 200
    assert w.notifies[-1].headers.get("Subscription-State") == "terminated;reason=timeout"
    assert w.sub.state is SubState.TERMINATED
    assert w.sub.updates[-1].reason == "timeout"
    assert w.notifier.subscriptions == {}
    assert w.notifier.get_timer() is None


def test_expiry_sends_terminated_notify() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    assert w.notifier.get_timer() == pytest.approx(600.0)
    assert w.notifier.handle_timer(599.0) == []
    w.wire.run_until(600.0)
    [(sub, notify)] = w.notifier.handle_timer(600.0)
    assert sub is w.subscription
    w.bob_sends(notify)
    w.settle()
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert w.sub.state is SubState.TERMINATED
    assert w.notifier.subscriptions == {}


def test_notifier_terminates_with_reason_and_retry_after() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    assert w.subscription is not None
    notify = w.notifier.terminate(w.subscription, 10.0, Reason.PROBATION, retry_after=30)
    w.bob_sends(notify)
    w.settle()
    assert notify.headers.get("Subscription-State") == "terminated;reason=probation;retry-after=30"
    update = w.sub.updates[-1]
    assert (update.state, update.reason, update.retry_after) == (
        SubState.TERMINATED,
        "probation",
        30,
    )
    # the subscription's NOTIFYs count up in CSeq within the dialog
    assert w.notifies[1].cseq.number == w.notifies[0].cseq.number + 1


def test_pending_then_authorized() -> None:
    w = World(pending=True)
    w.send_subscribe(w.sub.subscribe(600))
    assert w.sub.updates[-1].state is SubState.PENDING
    assert w.subscription is not None
    w.bob_sends(w.subscription.authorize(1.0, body=BODY[1], content_type=BODY[0]))
    w.settle()
    assert w.sub.state is SubState.ACTIVE


def test_fetch_with_expires_zero() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(0))
    assert w.responses[0].status == 200
    assert w.notifies[0].headers.get("Subscription-State") == "terminated;reason=timeout"
    assert w.sub.updates[0].body == BODY[1]
    assert w.notifier.subscriptions == {}


def test_notify_may_arrive_before_the_200() -> None:
    first_200 = itertools.count()

    def drop(s: Sent) -> bool:
        return s.first_line.startswith("SIP/2.0 200") and s.sender == "b" and next(first_200) == 0

    w = World(drop=drop)
    w.send_subscribe(w.sub.subscribe(600))
    # the NOTIFY created the dialog (s4.1.2.4)
    assert w.sub.dialog is not None and w.sub.state is SubState.ACTIVE
    assert w.responses == []
    w.wire.run_until(0.5)  # SUBSCRIBE retransmitted, the 200 resent
    w.settle()
    assert [r.status for r in w.responses] == [200]
    assert w.sub.state is SubState.ACTIVE


def test_failed_notify_removes_subscription() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    assert w.subscription is not None
    # alice forgets everything: her next answer is 481
    w.sub.call_id = "forgotten"
    w.bob_sends(w.subscription.notify(5.0, body=BODY[1], content_type=BODY[0]))
    w.settle()
    assert w.notifier.subscriptions == {}


def test_notify_from_another_dialog_is_481() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    assert w.subscription is not None
    forked = w.subscription.notify(5.0)
    forked.headers.set("From", str(CONF.with_tag("other-fork")))
    assert w.sub.receive_notify(forked).status == 481


def test_unsubscribe_without_dialog_is_local_error() -> None:
    w = World()
    with pytest.raises(LocalProtocolError):
        w.sub.unsubscribe()


def test_refresh_of_unknown_subscription_is_481() -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    request = w.sub.subscribe(600)
    request.headers.set("Event", "conference;id=7")
    result = w.notifier.receive_subscribe(request, 1.0)
    assert result.response.status == 481


@pytest.mark.parametrize("state", list(SubState))
@pytest.mark.parametrize("event", list(SubInput))
def test_subscription_table_total_or_error(state: SubState, event: SubInput) -> None:
    w = World()
    w.send_subscribe(w.sub.subscribe(600))
    sub = w.subscription
    assert sub is not None
    sub.state = state
    if (state, event) in SUBSCRIPTION_TABLE:
        sub.move(event)
        assert sub.state in SubState
    else:
        assert state is SubState.TERMINATED  # only the end state has no way out
        with pytest.raises(LocalProtocolError):
            sub.move(event)


def test_subscriptions_for_a_resource_and_accept_types() -> None:
    w = World()
    request = w.sub.subscribe(600)
    request.headers.add(
        "Accept", "application/xcon-conference-info+xml, application/conference-info+xml;q=0.5"
    )
    w.send_subscribe(request)
    other = World()
    other.notifier = w.notifier
    other.send_subscribe(other.sub.subscribe(600))
    subs = w.notifier.subscriptions_for(f"sip:conf@127.0.0.1:{BOB_PORT}", "conference")
    assert len(subs) == 2
    assert subs[0].accept == (
        "application/xcon-conference-info+xml",
        "application/conference-info+xml",
    )
    assert subs[1].accept == ()
    assert w.notifier.subscriptions_for("sip:other@127.0.0.1", "conference") == []
    assert w.notifier.subscriptions_for(subs[0].resource, "presence") == []


def test_subscriber_knows_when_to_refresh() -> None:
    w = World()
    request = w.sub.subscribe(600)
    key = w.wire.a.send_request(request, w.wire.b_flow, 100.0)
    w.wire.now = 100.0
    w.wire.pump()
    # drive by hand to pass `now`
    sub_req = w.wire.b_events[-1]
    assert isinstance(sub_req, RequestReceived)
    result = w.notifier.receive_subscribe(sub_req.request, 100.0, body_for=lambda s: BODY)
    assert result.notify is not None
    response = result.response
    assert w.sub.receive_response(request, response, now=100.5) is None
    assert w.sub.refresh_at == pytest.approx(400.5)
    assert w.sub.receive_notify(result.notify, now=101.0).status == 200
    assert w.sub.expires_at == pytest.approx(701.0)
    assert w.sub.refresh_at == pytest.approx(401.0)
    assert key.method == "SUBSCRIBE"
    assert result.subscription is not None
    final = w.notifier.terminate(result.subscription, 200.0, Reason.DEACTIVATED)
    assert w.sub.receive_notify(final, now=200.0).status == 200
    assert w.sub.refresh_at is None and w.sub.state is SubState.TERMINATED


def test_rfc6665_s4_1_3_notify_for_another_subscription_id_is_481() -> None:
    # s4.1.3: a NOTIFY matching no subscription gets 481; the "id" is part of the match
    # (s8.2.1), so another id in the right dialog is no subscription of ours.
    w = World()
    w.sub.event_id = "7"
    w.send_subscribe(w.sub.subscribe(600))
    assert w.subscription is not None and w.sub.state is SubState.ACTIVE
    other = w.subscription.notify(5.0)
    other.headers.set("Event", "conference;id=8")
    assert w.sub.receive_notify(other).status == 481
    no_id = w.subscription.notify(6.0)
    no_id.headers.set("Event", "conference")
    assert w.sub.receive_notify(no_id).status == 481
    other_package = w.subscription.notify(7.0)
    other_package.headers.set("Event", "presence;id=7")
    assert w.sub.receive_notify(other_package).status == 489
    assert len(w.sub.updates) == 1
