"""RFC 4028 session timers on the media server's media legs, as UAS (asyncio adapter over the
pure :mod:`focus.sip.session_timer`): one ``loop.call_at`` for every leg's timer.

Every leg INVITE and re-INVITE gets the s9 verdict (:meth:`LegTimers.verdict`): 422 with our
Min-SE for a too short interval, 400 for malformed timer headers, else the headers our 2xx
carries; the leg's :class:`~focus.sip.session_timer.SessionTimer` (re)starts when the 2xx goes
out (:meth:`LegTimers.answered`).  The default policy leaves refreshing to the application
server (``refresh_ourselves=False``: it opened the leg, it knows whether the call lives); a
leg not refreshed before its session expires goes to ``expire(call)``, which sends BYE, so the
legs of an application server that vanished are released.  Should a UAC ask us to refresh
(``refresher=uas``) we re-INVITE with our last session description at half the interval.

Time is the UA's clock; :meth:`LegTimers.handle_timer` takes ``now`` (tests run a fake clock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from focus.sip.aio.alarm import Alarm
from focus.sip.aio.ua import UserAgent
from focus.sip.headers import Headers
from focus.sip.session_timer import (
    RefreshDue,
    SessionExpired,
    SessionTimer,
    SessionTimerConfig,
    SessionTimerHeaderError,
    TimerAnswer,
    TimerRefusal,
    TimerTable,
    uas_verdict,
)
from focus.sip.uacore import Call, UAError

__all__ = ["LEG_TIMER_POLICY", "LegTimers"]

log = logging.getLogger(__name__)

#: The media server's default: grant up to 30 min, never below 90 s, the UAC refreshes.
LEG_TIMER_POLICY = SessionTimerConfig(refresh_ourselves=False)

Expire = Callable[[Call], None]


class LegTimers:
    """The session timers of the legs; ``config`` None turns them off. ``ua`` is the media
    server's UA (set by the SIP side when it starts routing the UA's events)."""

    def __init__(self, config: SessionTimerConfig | None, expire: Expire) -> None:
        self.ua: UserAgent | None = None
        self.config = config
        self._expire = expire
        self._timers: TimerTable[Call] = TimerTable()
        self._tasks: set[asyncio.Task[None]] = set()
        self._alarm = Alarm(lambda: self.handle_timer(self._now()))

    def verdict(self, headers: Headers) -> TimerRefusal | TimerAnswer | None:
        """The s9 answer to a leg's (re-)INVITE; None when timers are off."""
        return None if self.config is None else uas_verdict(headers, self.config)

    def answered(self, call: Call, answer: TimerAnswer | None) -> None:
        """Our 2xx carrying ``answer`` went out: the leg's interval starts (again)."""
        negotiated = answer.negotiated if answer is not None else None
        timer = self._timers.start(call, negotiated, self._now())
        if timer is not None and answer is not None and answer.min_se_seen:
            timer.saw_min_se(answer.min_se_seen)
        self._arm()

    def forget(self, call: Call) -> None:
        if self._timers.forget(call) is not None:
            self._arm()

    @property
    def next_deadline(self) -> float | None:
        return self._timers.get_timer()

    def handle_timer(self, now: float) -> None:
        """Runs what is due at ``now``: refreshes we owe, BYE for expired legs."""
        for call, timer, event in self._timers.handle_timer(now):
            if isinstance(event, SessionExpired):
                log.info("leg %s not refreshed for %d s: BYE", call.call_id, event.interval)
                self._expire(call)
            elif isinstance(event, RefreshDue):
                task = asyncio.get_running_loop().create_task(self._refresh(call, timer))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._arm()

    async def close(self) -> None:
        self._alarm.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _arm(self) -> None:
        self._alarm.arm(self._timers.get_timer())

    def _now(self) -> float:
        assert self.ua is not None, "LegTimers.ua is set before any leg is answered"
        return self.ua.now

    async def _refresh(self, call: Call, timer: SessionTimer) -> None:
        assert self.config is not None
        request = timer.refresh_request(self.config)
        try:
            assert self.ua is not None
            response = await self.ua.reinvite(call, call.local_sdp, headers=request.headers())
        except UAError as exc:
            log.info("refresh of leg %s not sent: %s", call.call_id, exc)
            return
        if self._timers.get(call) is not timer:
            return
        if 200 <= response.status < 300:
            try:
                negotiated = request.read_2xx(response.headers)
            except SessionTimerHeaderError:
                return  # the expiry stands
            self._timers.start(call, negotiated, self._now())
            self._arm()
        elif response.status in (408, 481):
            self.forget(call)
            self._expire(call)
