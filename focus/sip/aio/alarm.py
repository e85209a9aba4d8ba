"""One ``loop.call_at`` at a moving deadline, for an adapter over a sans-IO part that says
its next deadline (``get_timer()``) after every input: :meth:`Alarm.arm` re-arms only when
the deadline moved, so a busy adapter does not churn timer handles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Alarm"]


class Alarm:
    """Calls ``fire()`` once the loop's clock reaches the armed deadline."""

    __slots__ = ("_fire", "_handle", "when")

    def __init__(self, fire: Callable[[], None]) -> None:
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None
        self.when: float | None = None  # the armed deadline (loop clock), None: disarmed

    def arm(self, when: float | None) -> None:
        """Fire at ``when`` (None: never); needs a running loop to arm."""
        if when == self.when:
            return
        self.cancel()
        self.when = when
        if when is not None:
            self._handle = asyncio.get_running_loop().call_at(when, self._due)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.when = None

    def _due(self) -> None:
        self._handle = self.when = None
        self._fire()
