"""RFC 4028 session timers on the focus's dial-in calls (asyncio adapter over the pure
:mod:`focus.sip.session_timer`): one ``loop.call_at`` for every call's timer.

Every INVITE and re-INVITE a phone sends gets the s9 verdict: 422 with our Min-SE when it
asks a shorter interval than the profile's ``min_se``; otherwise our 2xx carries
Session-Expires (at most the profile's ``session_expires``, refresher per s9 Table 2) and the
call's :class:`~focus.sip.session_timer.SessionTimer` (re)starts when the 2xx goes out. When we
are the refresher the focus re-INVITEs with the same session description at half the
interval (s10); a refresh the phone refuses with 408 or 481, or no refresh at all before the
session expires, ends the call with BYE (s10): a phone that vanished without BYE leaves the
conference as if it had hung up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

from focus.calls.admission import Refusal
from focus.calls.participant import Participant
from focus.sip.aio.ua import UserAgent
from focus.sip.errors import LocalProtocolError
from focus.sip.message import Request
from focus.sip.session_timer import (
    IntervalTooSmall,
    RefreshDue,
    SessionExpired,
    SessionTimer,
    SessionTimerConfig,
    SessionTimerHeaderError,
    TimerAnswer,
    uas_answer,
)
from focus.sip.uacore import UAError

__all__ = ["SessionTimers"]

log = logging.getLogger(__name__)

Expire = Callable[[Participant], Awaitable[None]]
Spawn = Callable[[Awaitable[None], str], None]


class SessionTimers:
    """The session timers of the focus's calls; ``config`` None turns them off."""

    def __init__(self, ua: UserAgent, config: SessionTimerConfig | None, spawn: Spawn) -> None:
        self.ua = ua
        self.config = config
        self.on_expired: Expire | None = None  # set by the focus: ends the call (BYE)
        self._spawn = spawn  # background work, its failures logged (CallContext.spawn)
        self._timers: dict[Participant, SessionTimer] = {}
        # Deadlines in a heap, so a join or a departure costs O(log N), not a scan of every
        # call; an entry whose timer moved or went is stale and dropped when it comes up.
        self._heap: list[tuple[float, int, Participant]] = []
        self._order = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed: float | None = None

    def verdict(self, request: Request) -> Refusal | TimerAnswer | None:
        """The s9 answer to an incoming (re-)INVITE: the refusal to send (422 with our Min-SE
        for a too short interval, 400 for malformed timer headers), or what our 2xx says;
        None when timers are off."""
        if self.config is None:
            return None
        try:
            answer = uas_answer(request.headers, self.config)
        except SessionTimerHeaderError as exc:
            return Refusal(exc.status, exc.reason)
        if isinstance(answer, IntervalTooSmall):
            return Refusal(422, "Session Interval Too Small", headers=answer.headers())
        return answer

    def answered(self, p: Participant, answer: TimerAnswer | None) -> None:
        """Our 2xx with ``answer``'s headers went out: the call's interval starts (again)."""
        negotiated = answer.negotiated if answer is not None else None
        now = self.ua.now
        timer = self._timers.get(p)
        if timer is not None:
            timer.refreshed(negotiated, now)
        elif negotiated is not None:
            timer = self._timers[p] = SessionTimer(negotiated, now)
        if timer is not None and answer is not None and answer.min_se_seen:
            timer.saw_min_se(answer.min_se_seen)
        if timer is not None:
            self._schedule(p, timer)

    def forget(self, p: Participant) -> None:
        if self._timers.pop(p, None) is not None:
            self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed = None
        self._timers.clear()
        self._heap.clear()

    def _schedule(self, p: Participant, timer: SessionTimer) -> None:
        deadline = timer.get_timer()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._order), p))
        self._arm()

    def _current(self, deadline: float, p: Participant) -> SessionTimer | None:
        """``p``'s timer if ``deadline`` is still its next one, else None (a stale entry)."""
        timer = self._timers.get(p)
        return timer if timer is not None and timer.get_timer() == deadline else None

    def _arm(self) -> None:
        """The one loop timer at the earliest live deadline."""
        while self._heap and self._current(self._heap[0][0], self._heap[0][2]) is None:
            heapq.heappop(self._heap)
        earliest = self._heap[0][0] if self._heap else None
        if earliest == self._armed:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed = earliest
        if earliest is not None:
            self._handle = asyncio.get_running_loop().call_at(earliest, self._due)

    def _due(self) -> None:
        self._handle = self._armed = None
        now = self.ua.now
        while self._heap and self._heap[0][0] <= now:
            deadline, _, p = heapq.heappop(self._heap)
            timer = self._current(deadline, p)
            if timer is None:
                continue
            event = timer.handle_timer(now)
            if isinstance(event, SessionExpired):
                log.info(
                    "session of %s expired (%d s without refresh): BYE", p.caller, event.interval
                )
                self._timers.pop(p, None)
                if self.on_expired is not None:
                    self._spawn(self.on_expired(p), f"expired {p.caller}")
                continue
            if isinstance(event, RefreshDue):
                self._spawn(self._refresh(p, timer), f"refresh {p.caller}")
            # Its next deadline (after a refresh is due: the expiry, until the refresh works).
            following = timer.get_timer()
            if following is not None:
                heapq.heappush(self._heap, (following, next(self._order), p))
        self._arm()

    async def _refresh(self, p: Participant, timer: SessionTimer) -> None:
        """A refresh by re-INVITE with our last session description (RFC 4028 s10)."""
        assert self.config is not None
        if p.answer is None or not p.in_conference():
            return
        request = timer.refresh_request(self.config)
        try:
            response = await self.ua.reinvite(
                p.call, p.answer.to_bytes(), headers=request.headers()
            )
        except (UAError, LocalProtocolError) as exc:
            log.info("session refresh of %s not sent: %s", p.caller, exc)
            return  # another INVITE is under way; the expiry still stands
        if response.status == 422:
            retry = request.after_422(response.headers)
            if retry is not None:
                timer.saw_min_se(retry.min_se)
            return  # the next refresh asks at least that; the expiry still stands
        if 200 <= response.status < 300:
            timer.refreshed(request.read_2xx(response.headers), self.ua.now)
            self._schedule(p, timer)
        elif response.status in (408, 481) and self.on_expired is not None:
            # s10: the session is gone on the other side.
            self._timers.pop(p, None)
            await self.on_expired(p)
