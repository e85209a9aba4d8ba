"""The brute-force lock-out (pure, time a parameter): N failures in the window lock a
source out for the duration, reported once; others and a success are not affected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from focus.sip.lockout import LockedOut, Lockout, LockoutConfig

CONFIG = LockoutConfig(max_failures=5, window=60.0, duration=300.0)


def test_five_failures_in_a_minute_lock_for_five_minutes() -> None:
    lock = Lockout(CONFIG)
    events = [lock.failed("192.0.2.1", float(t), "alice") for t in range(5)]
    assert events[:4] == [None] * 4
    assert events[4] == LockedOut("192.0.2.1", "alice", 5, 304.0)
    assert lock.locked("192.0.2.1", 10.0) and lock.locked("192.0.2.1", 303.9)
    assert lock.failed("192.0.2.1", 20.0, "alice") is None  # one report per lock-out
    assert not lock.locked("192.0.2.2", 10.0)  # another source is not affected
    assert not lock.locked("192.0.2.1", 304.0)  # served its time
    assert lock.failed("192.0.2.1", 305.0) is None  # and starts from zero


def test_failures_spread_over_more_than_the_window_do_not_lock() -> None:
    lock = Lockout(CONFIG)
    assert all(lock.failed("s", t * 16.0) is None for t in range(20))  # 4 per minute
    assert not lock.locked("s", 400.0)


def test_a_success_forgets_the_failures_but_not_a_lockout() -> None:
    lock = Lockout(CONFIG)
    for t in range(4):
        lock.failed("s", float(t))
    lock.succeeded("s")
    assert lock.failed("s", 5.0) is None  # counting from one again
    for t in range(6, 10):
        lock.failed("s", float(t))
    assert lock.locked("s", 10.0)
    lock.succeeded("s")
    assert lock.locked("s", 11.0)


def test_memory_is_bounded() -> None:
    lock = Lockout(LockoutConfig(max_sources=100))
    for n in range(1000):
        lock.failed(f"10.0.{n // 256}.{n % 256}", float(n) / 1000)
    assert len(lock) == 100


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        LockoutConfig(max_failures=0)
    with pytest.raises(ValueError, match="window"):
        LockoutConfig(window=0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 30, allow_nan=False)),
        max_size=60,
    )
)
def test_locked_exactly_when_max_failures_fell_in_a_window(
    failures: list[tuple[str, float]],
) -> None:
    """Against a brute-force model: a source is locked at time t iff some failure at time f
    made it the max_failures-th within the window since the last lock-out, f <= t < f + 300."""
    lock = Lockout(CONFIG)
    now = 0.0
    model: dict[str, tuple[list[float], float | None]] = {}
    for source, step in failures:
        now += step
        times, until = model.get(source, ([], None))
        if until is not None and now >= until:
            times, until = [], None
        event = lock.failed(source, now)
        if until is None:
            times = [t for t in [*times, now] if now - t <= CONFIG.window]
            if len(times) >= CONFIG.max_failures:
                until, times = now + CONFIG.duration, []
                assert event is not None and event.until == until
            else:
                assert event is None
        else:
            assert event is None
        model[source] = (times, until)
        for other, (_, other_until) in model.items():
            assert lock.locked(other, now) == (other_until is not None and now < other_until)
