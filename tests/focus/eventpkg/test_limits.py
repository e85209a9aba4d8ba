"""Subscription limits per conference and per source (focus.eventpkg.limits)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from focus.eventpkg.limits import SubscriptionLimits, SubscriptionQuota


def test_each_limit_names_itself() -> None:
    limits = SubscriptionLimits(SubscriptionQuota(per_conference=2, per_source=3))
    limits.added("s1", "xcon:a@x", "10.0.0.1")
    limits.added("s2", "xcon:a@x", "10.0.0.2")
    why = limits.refusal("xcon:a@x", "10.0.0.3")
    assert why is not None and "conference" in why
    limits.added("s3", "xcon:b@x", "10.0.0.1")
    limits.added("s4", "xcon:c@x", "10.0.0.1")
    why = limits.refusal("xcon:d@x", "10.0.0.1")
    assert why is not None and "source" in why
    limits.removed("s1")
    assert limits.refusal("xcon:a@x", "10.0.0.3") is None
    assert limits.refusal("xcon:d@x", "10.0.0.1") is None


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.integers(0, 3), st.integers(0, 3))))
def test_counts_match_the_live_subscriptions(ops: list[tuple[bool, int, int, int]]) -> None:
    limits = SubscriptionLimits(SubscriptionQuota(per_conference=1000, per_source=1000))
    live: dict[str, tuple[str, str]] = {}
    for add, n, conf, source in ops:
        sub_id = f"s{n}"
        if add:
            limits.added(sub_id, f"c{conf}", f"h{source}")
            live.setdefault(sub_id, (f"c{conf}", f"h{source}"))
        else:
            limits.removed(sub_id)
            live.pop(sub_id, None)
    assert len(limits) == len(live)
    if not live:
        assert limits.refusal("c0", "h0") is None


def test_a_zero_quota_is_refused() -> None:
    with pytest.raises(ValueError):
        SubscriptionQuota(per_conference=0)
