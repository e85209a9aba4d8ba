"""The mixer's steady tick schedule (pure: the caller passes the monotonic time in).

Tick k is due at ``start + k * period``: deadlines are computed from the start, never by adding
periods to the last wake-up, so timer lateness never accumulates into drift.  A tick run more
than ``late_after`` past its deadline is counted late; when the runner falls more than
``max_catch_up`` ticks behind, the oldest due ticks are skipped (and counted) rather than
replayed in a burst that would only delay the present further.
"""

from __future__ import annotations

import math

__all__ = ["TickClock"]


class TickClock:
    def __init__(
        self,
        start: float,
        period: float = 0.02,
        late_after: float | None = None,
        max_catch_up: int = 5,
    ) -> None:
        if period <= 0 or max_catch_up < 1:
            raise ValueError("period > 0 and max_catch_up >= 1 are required")
        self.start = start
        self.period = period
        self.late_after = period / 2 if late_after is None else late_after
        self.max_catch_up = max_catch_up
        self.next_tick = 0
        self.ticks_run = 0
        self.late_ticks = 0
        self.skipped_ticks = 0

    def deadline(self, tick: int) -> float:
        return self.start + tick * self.period

    @property
    def next_deadline(self) -> float:
        return self.deadline(self.next_tick)

    def due(self, now: float) -> range:
        """The ticks to run now, in order (possibly none); advances the schedule past them."""
        last_due = math.floor((now - self.start) / self.period)
        if last_due < self.next_tick:
            return range(0)
        first = self.next_tick
        if last_due - first + 1 > self.max_catch_up:
            skipped = last_due - first + 1 - self.max_catch_up
            self.skipped_ticks += skipped
            self.late_ticks += skipped
            first += skipped
        ticks = range(first, last_due + 1)
        self.late_ticks += sum(1 for k in ticks if now - self.deadline(k) > self.late_after)
        self.ticks_run += len(ticks)
        self.next_tick = last_due + 1
        return ticks
