"""Notifier expiry timers: a heap of deadlines, not a scan of every subscription.

Many subscribers talk to one Notifier here without transactions: each SUBSCRIBE
and its response go through the wire format (to_bytes / parse_message), which is
all the notifier sees of them in the real server too.  Time is a plain number.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import focus.sip.subscription as subscription_module
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.subscription import (
    Notifier,
    NotifierConfig,
    Subscriber,
    Subscription,
    SubState,
)

BOB_PORT = 5070
CONF = parse_name_addr("<sip:conf@127.0.0.1>")
BOB_CONTACT = parse_name_addr(f"<sip:conf@127.0.0.1:{BOB_PORT}>")


def wire(message: Request | Response) -> Request | Response:
    return parse_message(message.to_bytes())


class CountingDict(dict[Any, Subscription]):
    """The notifier's subscription table, counting whole-table walks and lookups."""

    walks = 0
    lookups = 0

    def values(self) -> Any:
        CountingDict.walks += 1
        return super().values()

    def items(self) -> Any:
        CountingDict.walks += 1
        return super().items()

    def keys(self) -> Any:
        CountingDict.walks += 1
        return super().keys()

    def __iter__(self) -> Iterator[Any]:
        CountingDict.walks += 1
        return super().__iter__()

    def get(self, key: Any, default: Any = None) -> Any:
        CountingDict.lookups += 1
        return super().get(key, default)


class CountingHeapq:
    """Stands in for the heapq module inside focus.sip.subscription, counting calls."""

    def __init__(self) -> None:
        import heapq

        self.real = heapq
        self.pushes = 0
        self.pops = 0

    def heappush(self, heap: list[Any], item: Any) -> None:
        self.pushes += 1
        self.real.heappush(heap, item)

    def heappop(self, heap: list[Any]) -> Any:
        self.pops += 1
        return self.real.heappop(heap)

    def heapify(self, heap: list[Any]) -> None:
        self.real.heapify(heap)


class Hub:
    """One notifier (the focus) and any number of subscribers of one conference."""

    def __init__(self, subscriptions: dict[Any, Subscription] | None = None) -> None:
        config = NotifierConfig(
            packages=frozenset({"conference"}),
            sent_by=f"127.0.0.1:{BOB_PORT}",
            contact=BOB_CONTACT,
            min_expires=60,
            max_expires=7200,
            default_expires=3600,
        )
        table = {} if subscriptions is None else subscriptions  # an empty one is falsy
        self.notifier = Notifier(config, subscriptions=table)

    def subscriber(self, n: int) -> Subscriber:
        return Subscriber(
            package="conference",
            local_uri=parse_name_addr(f"<sip:user{n}@127.0.0.1>"),
            remote_uri=CONF,
            request_uri=f"sip:conf@127.0.0.1:{BOB_PORT}",
            contact=parse_name_addr(f"<sip:user{n}@127.0.0.1:{6000 + n}>"),
            sent_by=f"127.0.0.1:{6000 + n}",
        )

    def subscribe(self, who: Subscriber, expires: int, now: float) -> Subscription | None:
        request = wire(who.subscribe(expires))
        assert isinstance(request, Request)
        result = self.notifier.receive_subscribe(request, now)
        response = wire(result.response)
        assert isinstance(response, Response)
        who.receive_response(request, response, now)
        assert response.status == 200, response.status
        return result.subscription


def test_timers_fire_in_deadline_order() -> None:
    hub = Hub()
    expiries = [900, 300, 600, 300, 1200, 60]
    subs = []
    for n, expires in enumerate(expiries):
        sub = hub.subscribe(hub.subscriber(n), expires, 0.0)
        assert sub is not None
        subs.append(sub)
    fired: list[Subscription] = []
    while (deadline := hub.notifier.get_timer()) is not None:
        assert hub.notifier.handle_timer(deadline - 0.001) == []
        batch = hub.notifier.handle_timer(deadline)
        assert batch and all(s.expires_at == deadline for s, _ in batch)
        for sub, notify in batch:
            assert sub.state is SubState.TERMINATED
            assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
        fired += [s for s, _ in batch]
    # earliest first; the two 300 s ones in the order they were created
    assert fired == [subs[5], subs[1], subs[3], subs[2], subs[0], subs[4]]
    assert hub.notifier.subscriptions == {}


def test_one_late_call_fires_every_due_timer_in_order() -> None:
    hub = Hub()
    subs = [hub.subscribe(hub.subscriber(n), e, 0.0) for n, e in enumerate([500, 100, 300, 2000])]
    fired = hub.notifier.handle_timer(1000.0)
    assert [s for s, _ in fired] == [subs[1], subs[2], subs[0]]
    assert hub.notifier.get_timer() == pytest.approx(2000.0)
    assert list(hub.notifier.subscriptions.values()) == [subs[3]]


def test_refreshed_subscription_old_deadline_does_not_fire() -> None:
    hub = Hub()
    alice, bob = hub.subscriber(1), hub.subscriber(2)
    a = hub.subscribe(alice, 600, 0.0)
    b = hub.subscribe(bob, 900, 0.0)
    assert a is not None and b is not None
    assert hub.notifier.get_timer() == pytest.approx(600.0)
    assert hub.subscribe(alice, 1200, 500.0) is a  # refresh: now expires at 1700
    assert a.expires_at == pytest.approx(1700.0)
    assert hub.notifier.get_timer() == pytest.approx(900.0)
    assert hub.notifier.handle_timer(600.0) == []  # a's old deadline is gone
    assert [s for s, _ in hub.notifier.handle_timer(900.0)] == [b]
    assert hub.notifier.get_timer() == pytest.approx(1700.0)
    assert hub.notifier.handle_timer(1699.0) == []
    assert [s for s, _ in hub.notifier.handle_timer(1700.0)] == [a]
    assert hub.notifier.get_timer() is None


def test_refresh_to_an_earlier_deadline_fires_then() -> None:
    hub = Hub()
    alice = hub.subscriber(1)
    a = hub.subscribe(alice, 3600, 0.0)
    assert hub.subscribe(alice, 60, 10.0) is a
    assert hub.notifier.get_timer() == pytest.approx(70.0)
    assert [s for s, _ in hub.notifier.handle_timer(70.0)] == [a]
    assert hub.notifier.handle_timer(3600.0) == []  # the superseded entry is not a timer


def test_expiry_set_from_outside_moves_the_timer() -> None:
    hub = Hub()
    a = hub.subscribe(hub.subscriber(1), 600, 0.0)
    assert a is not None
    a.expires_at = 100.0
    assert hub.notifier.get_timer() == pytest.approx(100.0)
    a.expires_at = 800.0
    assert hub.notifier.get_timer() == pytest.approx(800.0)
    assert hub.notifier.handle_timer(600.0) == []
    assert [s for s, _ in hub.notifier.handle_timer(800.0)] == [a]


@pytest.mark.parametrize("how", ["terminate", "unsubscribe", "failed notify"])
def test_terminated_subscription_leaves_no_timer(how: str) -> None:
    hub = Hub()
    alice, bob = hub.subscriber(1), hub.subscriber(2)
    a = hub.subscribe(alice, 300, 0.0)
    b = hub.subscribe(bob, 900, 0.0)
    assert a is not None and b is not None
    if how == "terminate":
        hub.notifier.terminate(a, 10.0, subscription_module.Reason.DEACTIVATED)
    elif how == "unsubscribe":
        request = wire(alice.unsubscribe())
        assert isinstance(request, Request)
        assert hub.notifier.receive_subscribe(request, 10.0).response.status == 200
    else:
        hub.notifier.notify_response(a, None)
    assert a.state is SubState.TERMINATED
    assert hub.notifier.get_timer() == pytest.approx(900.0)
    assert hub.notifier.handle_timer(300.0) == []
    assert [s for s, _ in hub.notifier.handle_timer(900.0)] == [b]
    assert hub.notifier.get_timer() is None
    assert hub.notifier.dialogs.dialogs == {}


def test_fetch_leaves_no_timer() -> None:
    hub = Hub()
    request = wire(hub.subscriber(1).subscribe(0))
    assert isinstance(request, Request)
    result = hub.notifier.receive_subscribe(request, 0.0)
    assert result.response.status == 200
    assert hub.notifier.get_timer() is None
    assert hub.notifier.handle_timer(10_000.0) == []


def test_get_timer_never_walks_the_subscriptions() -> None:
    CountingDict.walks = CountingDict.lookups = 0
    hub = Hub(subscriptions=CountingDict())
    assert isinstance(hub.notifier.subscriptions, CountingDict)
    n = 300
    subs = []
    for i in range(n):
        sub = hub.subscribe(hub.subscriber(i), 3600 - i, float(i))  # all due at 3600
        assert sub is not None
        subs.append(sub)
        before = CountingDict.lookups
        assert hub.notifier.get_timer() == pytest.approx(3600.0)
        assert CountingDict.lookups - before == 1  # only the top entry is checked
    assert CountingDict.walks == 0
    fired = hub.notifier.handle_timer(3600.0)
    assert [s for s, _ in fired] == subs
    assert CountingDict.walks == 0


def test_heap_work_is_logarithmic_and_stale_entries_drop_lazily(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = CountingHeapq()
    monkeypatch.setattr(subscription_module, "heapq", counter)
    hub = Hub()
    n = 200
    subs = []
    for i in range(n):
        sub = hub.subscribe(hub.subscriber(i), 60 + i, 0.0)
        assert sub is not None
        subs.append(sub)
        assert hub.notifier.get_timer() == pytest.approx(60.0)
    assert (counter.pushes, counter.pops) == (n, 0)  # one push each, nothing scanned
    assert len(hub.notifier._heap) == n

    # ending a subscription in the middle costs nothing now, and nothing later
    # until its entry reaches the top
    hub.notifier.terminate(subs[100], 1.0, subscription_module.Reason.DEACTIVATED)
    assert hub.notifier.get_timer() == pytest.approx(60.0)
    assert counter.pops == 0 and len(hub.notifier._heap) == n

    # ending the first: the next get_timer() drops exactly its stale entry
    hub.notifier.terminate(subs[0], 1.0, subscription_module.Reason.DEACTIVATED)
    assert counter.pops == 0
    assert hub.notifier.get_timer() == pytest.approx(61.0)
    assert counter.pops == 1 and len(hub.notifier._heap) == n - 1
    assert hub.notifier.get_timer() == pytest.approx(61.0)
    assert counter.pops == 1  # asking again costs nothing

    # firing k due timers pops k entries (plus the stale subs[100] once it is due)
    fired = hub.notifier.handle_timer(60.0 + 150)
    assert [s for s, _ in fired] == subs[1:100] + subs[101:151]
    assert counter.pops == 1 + 149 + 1
    assert hub.notifier.get_timer() == pytest.approx(60.0 + 151)


def test_refreshes_do_not_grow_the_heap_without_bound() -> None:
    hub = Hub()
    people = [hub.subscriber(i) for i in range(10)]
    subs = [hub.subscribe(who, 3600, float(i)) for i, who in enumerate(people)]
    for round_ in range(1, 50):
        for who in people:
            hub.subscribe(who, 3600, 100.0 * round_)
        assert len(hub.notifier._heap) <= 2 * len(people) + 64 + 1
    assert hub.notifier.get_timer() == pytest.approx(4900.0 + 3600)
    assert hub.notifier.handle_timer(4900.0 + 3599) == []  # no superseded deadline fires
    fired = hub.notifier.handle_timer(4900.0 + 3600)
    assert [s for s, _ in fired] == subs  # same deadline: in order of creation
    assert hub.notifier.get_timer() is None and hub.notifier.subscriptions == {}
