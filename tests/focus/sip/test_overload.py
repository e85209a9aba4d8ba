"""The overload gate (focus.sip.overload) alone, over time sequences, and inside a UA core:
a refused INVITE is answered 503 at once (Retry-After only for one source's excess, RFC 7339
s5.10.2), and its retransmissions are absorbed by the transaction layer without asking the
gate again; a trusted proxy is limited by its requests' origins."""

from __future__ import annotations

import random
from ipaddress import ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.flow import TransportKind
from focus.sip.headers import Via, parse_via
from focus.sip.message import Response
from focus.sip.overload import LoadGate, OverloadConfig, RefusalCause, TokenBuckets, origin
from focus.sip.uacore import IncomingCall, IncomingRequest, UAConfig, UACore
from tests.focus.sip.test_uacore import B_ADDR, METHODS, OFFER, Net, b_uri

# Increasing time sequences: gaps between requests, in seconds.
gaps = st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(
    gaps,
    st.floats(min_value=0.5, max_value=50),
    st.integers(min_value=1, max_value=20),
    st.booleans(),
)
def test_bucket_grants_at_most_its_bound_and_all_of_a_slow_enough_source(
    steps: list[float], rate: float, burst: int, slow: bool
) -> None:
    buckets = TokenBuckets(rate, burst, max_keys=8)
    now = 0.0
    granted = 0
    for gap in steps:
        now += max(gap, 1.0 / rate) if slow else gap
        taken = buckets.take("198.51.100.7", now)
        granted += taken
        # The token bucket's bound, at every instant (a small slack for float sums) ...
        assert granted <= burst + rate * now + 1e-6
        # ... and a source never faster than the rate is never refused.
        assert taken or not slow


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=300))
def test_source_table_stays_bounded(sources: list[int]) -> None:
    buckets = TokenBuckets(1.0, 1, max_keys=16)
    for n, source in enumerate(sources):
        buckets.take(f"10.0.0.{source}", float(n))
        assert len(buckets) <= 16


def test_a_source_over_its_rate_is_refused_and_others_are_not() -> None:
    gate = LoadGate(OverloadConfig(source_rate=2, source_burst=3), rng=random.Random(1))
    verdicts = [gate.check("INVITE", "192.0.2.1", 1, 0.0) for _ in range(5)]
    assert [v is None for v in verdicts] == [True, True, True, False, False]
    refusal = verdicts[-1]
    assert refusal is not None and refusal.cause is RefusalCause.RATE
    assert refusal.status == 503 and refusal.retry_after is not None
    assert 5 <= refusal.retry_after <= 15
    assert gate.check("INVITE", "192.0.2.2", 1, 0.0) is None  # another source
    assert gate.check("OPTIONS", "192.0.2.1", 1, 0.0) is None  # not rated
    assert gate.check("INVITE", "192.0.2.1", 1, 0.5) is None  # one token back


def test_pending_transactions_per_source_bound_every_new_request() -> None:
    gate = LoadGate(OverloadConfig(max_pending_per_source=4))
    assert gate.check("OPTIONS", "192.0.2.1", 4, 0.0) is None
    refusal = gate.check("OPTIONS", "192.0.2.1", 5, 0.0)
    assert refusal is not None and refusal.cause is RefusalCause.PENDING
    assert gate.check("CANCEL", "192.0.2.1", 500, 0.0) is None


def test_busy_and_lag_refuse_new_invites_only() -> None:
    reason: list[str | None] = ["3 joins in progress"]
    gate = LoadGate(OverloadConfig(max_loop_lag=0.2, lag_memory=1.0), busy=lambda: reason[0])
    refusal = gate.check("INVITE", "192.0.2.1", 1, 0.0)
    assert refusal is not None and refusal.cause is RefusalCause.BUSY
    assert "3 joins in progress" in refusal.reason
    assert refusal.retry_after is not None  # a phone calling us directly: RFC 3261 s21.5.4
    proxied = gate.check("INVITE", "192.0.2.1", 1, 0.0, via=vias("192.0.2.1", "198.51.100.7"))
    assert proxied is not None and proxied.headers == ()  # to a proxy: RFC 7339 s5.10.2
    assert gate.check("SUBSCRIBE", "192.0.2.1", 1, 0.0) is None
    reason[0] = None
    gate.note_lag(0.5, 10.0)  # one pause (a garbage collection) is not overload ...
    assert gate.check("INVITE", "192.0.2.1", 1, 10.0) is None
    for n in range(5):  # ... a loop that keeps running late is
        gate.note_lag(0.5, 10.1 + n / 10)
    lagging = gate.check("INVITE", "192.0.2.1", 1, 10.5)
    assert lagging is not None and lagging.cause is RefusalCause.LAG
    # The lag is remembered for lag_memory seconds after the last measurement, then gone.
    assert gate.check("INVITE", "192.0.2.1", 1, 11.6) is None


def test_the_call_rate_bounds_new_invites_over_all_sources() -> None:
    gate = LoadGate(OverloadConfig(source_rate=0, call_rate=3))
    verdicts = [gate.check("INVITE", f"192.0.2.{n}", 1, 0.0) for n in range(5)]
    assert [v is None for v in verdicts] == [True, True, True, False, False]
    refusal = verdicts[-1]
    assert refusal is not None and refusal.cause is RefusalCause.CALL_RATE
    assert refusal.cause.overload
    assert gate.check("MESSAGE", "192.0.2.9", 1, 0.0) is None  # calls only
    assert gate.check("INVITE", "192.0.2.9", 1, 1.0) is None  # a second later: room again


def test_loss_is_the_share_of_invites_refused_for_our_own_load() -> None:
    busy: list[str | None] = [None]
    gate = LoadGate(OverloadConfig(source_rate=0, loss_window=1.0), busy=lambda: busy[0])
    for _ in range(3):
        gate.check("INVITE", "192.0.2.1", 1, 0.0)
    busy[0] = "busy"
    gate.check("INVITE", "192.0.2.1", 1, 0.1)
    assert gate.loss(0.2) == 25
    assert gate.loss(5.0) == 0  # two windows later: nothing measured


def test_retry_after_is_randomised_within_the_range() -> None:
    config = OverloadConfig(retry_after=(2, 9), source_rate=1, source_burst=1)
    gate = LoadGate(config, rng=random.Random(7))
    assert gate.check("INVITE", "192.0.2.1", 1, 0.0) is None
    values = set()
    for _ in range(200):
        refusal = gate.check("INVITE", "192.0.2.1", 1, 0.0)
        assert refusal is not None and refusal.cause is RefusalCause.RATE
        values.add(refusal.retry_after)
        assert refusal.headers == (("Retry-After", str(refusal.retry_after)),)
    assert values <= set(range(2, 10)) and len(values) > 3


PROXY = ip_network("192.0.2.0/29")


def vias(*hops: str) -> list[Via]:
    """A request's Via list, top first, from ``hops`` ("host" or "host;received=ip")."""
    return [parse_via(f"SIP/2.0/UDP {hop};branch=z9hG4bK{n}")[0] for n, hop in enumerate(hops)]


def test_a_trusted_proxy_is_limited_by_each_origin_not_as_one_source() -> None:
    config = OverloadConfig(source_rate=1, source_burst=2, trusted_proxies=(PROXY,))
    gate = LoadGate(config, rng=random.Random(3))
    # Twenty phones behind the proxy, two calls each: none is over its own rate ...
    for n in range(20):
        phone = vias("192.0.2.1:5060", f"phone{n}.invalid;received=198.51.100.{n}")
        assert gate.check("INVITE", "192.0.2.1", 1, 0.0, phone) is None
        assert gate.check("INVITE", "192.0.2.1", 1, 0.0, phone) is None
    # ... a third from one of them is (its bucket, not the proxy's), and others still pass.
    phone = vias("192.0.2.1", "10.0.0.7;received=198.51.100.3")
    refusal = gate.check("INVITE", "192.0.2.1", 1, 0.0, phone)
    assert refusal is not None and refusal.cause is RefusalCause.RATE
    assert gate.check("INVITE", "192.0.2.1", 1, 0.0, vias("192.0.2.1", "198.51.100.99")) is None
    # The proxy's own pending count is the sum over its phones: not a per-source limit.
    assert gate.check("OPTIONS", "192.0.2.1", 10_000, 0.0, phone) is None
    # An untrusted source is one source, whatever its Via claims.
    spoof = vias("203.0.113.5", "198.51.100.50")
    assert gate.check("INVITE", "203.0.113.5", 1, 0.0, spoof) is None
    assert gate.check("INVITE", "203.0.113.5", 1, 0.0, vias("203.0.113.5", "198.51.100.51")) is None
    assert gate.check("INVITE", "203.0.113.5", 1, 0.0, spoof) is not None


def test_origin_skips_every_trusted_hop() -> None:
    proxies = (PROXY,)
    assert origin("203.0.113.5", vias("203.0.113.5", "198.51.100.1"), proxies) == "203.0.113.5"
    two = vias("192.0.2.2", "192.0.2.1;received=192.0.2.1", "[2001:DB8::1]:5060")
    assert origin("192.0.2.2", two, proxies) == "2001:db8::1"
    assert origin("192.0.2.2", vias("192.0.2.2"), proxies) == "192.0.2.2"  # the proxy's own
    assert origin("192.0.2.2", [], proxies) == "192.0.2.2"


@pytest.mark.parametrize(
    "bad",
    [
        {"retry_after": (10, 5)},
        {"source_rate": -1.0},
        {"source_rate": 5.0, "source_burst": 0},
        {"max_sources": 0},
        {"max_loop_lag": -1.0},
    ],
)
def test_bad_config_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        OverloadConfig(**bad)  # type: ignore[arg-type]


# ---- inside the UA core


def gated_net(overload: OverloadConfig | None = None) -> tuple[Net, LoadGate]:
    net = Net()
    config = UAConfig(user="bob", methods=METHODS, overload=overload or OverloadConfig())
    net.b = UACore(config, {TransportKind.UDP: B_ADDR})
    assert net.b.gate is not None
    return net, net.b.gate


def test_refused_invite_gets_503_with_oc_feedback_and_retransmissions_are_absorbed() -> None:
    net, gate = gated_net()
    asked: list[int] = []

    def busy() -> str:
        asked.append(1)
        return "2 joins in progress"

    gate.busy = busy
    net.drop = lambda m: isinstance(m, Response) and m.status == 503 and len(asked) == 1
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    # The first 503 is lost: the INVITE is retransmitted (Timer A) and answered again.
    net.drop = lambda m: False
    net.advance(2.0)
    finals = net.sent("b", "503/INVITE")
    assert len(finals) >= 2
    # Our core offered oc, so the loss is in its Via; a UA calling directly (one Via) is
    # told when to come back as well (RFC 3261 s21.5.4; RFC 7339 s5.10.2 is about proxies).
    assert all(isinstance(f, Response) and f.headers.get("Retry-After") for f in finals)
    assert isinstance(finals[0], Response) and finals[0].via[0].params.get("oc") == "100"
    assert isinstance(finals[0], Response) and "joins in progress" in finals[0].reason
    assert asked == [1]  # decided once, by the gate; the layer answered the rest
    # Answered at once, so without a 100 Trying first (RFC 3261 s17.2.1): one message each.
    assert net.sent("b", "100/INVITE") == []
    assert net.take("b", IncomingCall) == []  # the application never saw it


def test_options_and_in_dialog_requests_pass_a_busy_gate() -> None:
    net, gate = gated_net()
    net.a.invite(b_uri(), OFFER, net.now)
    net.pump()
    (event,) = net.take("b", IncomingCall)
    assert isinstance(event, IncomingCall)
    net.b.accept(event.call, OFFER, net.now)
    net.pump()
    gate.busy = lambda: "busy"
    (call,) = net.a.calls
    assert call.dialog is not None
    net.a.request(call.dialog, "MESSAGE", net.now, body=b"hi", content_type="text/plain")
    net.a.request(b_uri(), "OPTIONS", net.now)
    net.pump()
    methods = [
        e.request.method for e in net.take("b", IncomingRequest) if isinstance(e, IncomingRequest)
    ]
    assert methods == ["MESSAGE"]
    assert net.sent("b", "200/OPTIONS")


def test_a_source_with_too_many_unanswered_requests_gets_503_until_one_is_answered() -> None:
    net, _ = gated_net(OverloadConfig(max_pending_per_source=2))
    for _ in range(3):
        net.a.request(b_uri(), "MESSAGE", net.now, body=b"hi", content_type="text/plain")
    net.pump()
    handed = [e for e in net.take("b", IncomingRequest) if isinstance(e, IncomingRequest)]
    assert len(handed) == 2  # the application holds two, unanswered
    (refused,) = net.sent("b", "503/MESSAGE")
    assert isinstance(refused, Response) and "pending" in refused.reason
    assert refused.headers.get("Retry-After")
    net.b.respond(handed[0].request, 200, net.now)
    net.a.request(b_uri(), "MESSAGE", net.now, body=b"again", content_type="text/plain")
    net.pump()
    assert len(net.take("b", IncomingRequest)) == 1
