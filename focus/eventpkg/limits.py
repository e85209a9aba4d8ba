"""How many conference-package subscriptions one conference and one source may hold (pure).

A subscriber costs the focus a dialog, a planner entry and a NOTIFY for every change, so an
open network must not be able to add them without bound (issue 10). The SIP glue
(:class:`focus.calls.events.ConferenceEvents`) asks :meth:`SubscriptionLimits.refusal`
before accepting a new SUBSCRIBE and tells :meth:`added`/:meth:`removed` as subscriptions
come and go; a refusal is answered 503 with Retry-After (RFC 6665 s4.2.1.2 lets a notifier
refuse for its own reasons; 503 says "not now" and why, where 403 would say "never").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SubscriptionLimits", "SubscriptionQuota"]


@dataclass(frozen=True, slots=True)
class SubscriptionQuota:
    """per_conference: subscriptions one conference may have; per_source: subscriptions
    one source address (the subscriber's IP) may hold over all conferences."""

    per_conference: int = 500
    per_source: int = 50

    def __post_init__(self) -> None:
        if self.per_conference < 1 or self.per_source < 1:
            raise ValueError("subscription limits must be >= 1")


class SubscriptionLimits:
    """Counts of live subscriptions by conference and by source, checked against a quota."""

    def __init__(self, quota: SubscriptionQuota) -> None:
        self.quota = quota
        self._of: dict[str, tuple[str, str]] = {}  # subscription id -> (conference, source)
        self._conference: dict[str, int] = {}
        self._source: dict[str, int] = {}

    def refusal(self, conference: str, source: str) -> str | None:
        """Why a new subscription to ``conference`` from ``source`` is refused, or None."""
        if self._conference.get(conference, 0) >= self.quota.per_conference:
            return f"conference has {self.quota.per_conference} subscriptions, its limit"
        if self._source.get(source, 0) >= self.quota.per_source:
            return f"source holds {self.quota.per_source} subscriptions, its limit"
        return None

    def added(self, sub_id: str, conference: str, source: str) -> None:
        if sub_id in self._of:
            return
        self._of[sub_id] = (conference, source)
        self._conference[conference] = self._conference.get(conference, 0) + 1
        self._source[source] = self._source.get(source, 0) + 1

    def removed(self, sub_id: str) -> None:
        entry = self._of.pop(sub_id, None)
        if entry is None:
            return
        for table, key in ((self._conference, entry[0]), (self._source, entry[1])):
            left = table[key] - 1
            if left:
                table[key] = left
            else:
                del table[key]

    def __len__(self) -> int:
        return len(self._of)
