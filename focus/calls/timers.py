"""RFC 4028 session timers on the focus's calls and on their media legs (asyncio adapter over
the pure :mod:`focus.sip.session_timer`): one ``loop.call_at`` for every dialog's timer.

As UAS (dial-in): every INVITE and re-INVITE a phone sends gets the s9 verdict: 422 with our
Min-SE when it asks a shorter interval than the profile's ``min_se``; otherwise our 2xx carries
Session-Expires (at most the profile's ``session_expires``, refresher per s9 Table 2) and the
call's :class:`~focus.sip.session_timer.SessionTimer` (re)starts when the 2xx goes out.

As UAC (dial-out, from CCMP or REFER, and every media leg): our INVITE carries
:meth:`SessionTimers.offer` (Supported: timer, Session-Expires, Min-SE), a 422 is retried once
with its larger Min-SE (s7.4), and the 2xx decides who refreshes (:meth:`SessionTimers.started`).

When we are the refresher the focus re-INVITEs with the same session description at half the
interval (s10); a 422 to a refresh is retried with the larger interval; a refresh refused with
408 or 481, or no refresh at all before the session expires, ends the call with BYE (s10): a
phone that vanished without BYE leaves the conference as if it had hung up. A media leg whose
refresh fails goes to ``on_leg_lost`` (the focus opens a new leg, as after a media server
restart).

Time is the UA's clock; :meth:`SessionTimers.handle_timer` takes ``now``, so a test can run the
timers on a fake clock through real sockets.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable

from focus.calls.admission import Refusal
from focus.calls.participant import Participant
from focus.sip.aio.alarm import Alarm
from focus.sip.aio.ua import UserAgent
from focus.sip.dialog import DialogState
from focus.sip.errors import LocalProtocolError
from focus.sip.message import Request, Response
from focus.sip.session_timer import (
    Negotiated,
    RefreshDue,
    SessionExpired,
    SessionTimer,
    SessionTimerConfig,
    SessionTimerHeaderError,
    TimerAnswer,
    TimerRefusal,
    TimerRequest,
    TimerTable,
    initial_request,
    uas_verdict,
)
from focus.sip.uacore import Call, UAError
from focus.sip.uri import format_hostport

__all__ = ["SessionTimers", "TimedDialog"]

log = logging.getLogger(__name__)

Expire = Callable[[Participant], Awaitable[None]]
LegLost = Callable[[Participant], None]
Spawn = Callable[[Awaitable[None], str], None]


class TimedDialog(enum.Enum):
    """Which of a participant's dialogs a session timer runs on."""

    PHONE = "phone"  # the call with the participant
    MEDIA_LEG = "media leg"  # the focus's 3PCC leg to the media server (RFC 3725)


_Key = tuple[Participant, TimedDialog]


class SessionTimers:
    """The session timers of the focus's calls; ``config`` None turns them off."""

    def __init__(self, ua: UserAgent, config: SessionTimerConfig | None, spawn: Spawn) -> None:
        self.ua = ua
        self.config = config
        self.on_expired: Expire | None = None  # set by the focus: ends the call (BYE)
        self.on_leg_lost: LegLost | None = None  # set by the focus: a new media leg
        self._spawn = spawn  # background work, its failures logged (CallContext.spawn)
        self._timers: TimerTable[_Key] = TimerTable()
        self._leg_calls: dict[Participant, Call] = {}  # the leg each MEDIA_LEG timer is for
        self._alarm = Alarm(lambda: self.handle_timer(self.ua.now))

    # ---- UAS (s9)

    def verdict(self, request: Request) -> Refusal | TimerAnswer | None:
        """The s9 answer to an incoming (re-)INVITE: the refusal to send (422 with our Min-SE
        for a too short interval, 400 for malformed timer headers), or what our 2xx says;
        None when timers are off."""
        if self.config is None:
            return None
        verdict = uas_verdict(request.headers, self.config)
        if isinstance(verdict, TimerRefusal):
            return Refusal(verdict.status, verdict.reason, headers=verdict.headers)
        return verdict

    def answered(self, p: Participant, answer: TimerAnswer | None) -> None:
        """Our 2xx with ``answer``'s headers went out: the call's interval starts (again)."""
        negotiated = answer.negotiated if answer is not None else None
        timer = self._start((p, TimedDialog.PHONE), negotiated)
        if timer is not None and answer is not None and answer.min_se_seen:
            timer.saw_min_se(answer.min_se_seen)
        self.leg_opened(p)

    # ---- UAC (s7)

    def offer(self) -> TimerRequest | None:
        """What our INVITE says about the timer (s7.1); None when timers are off."""
        return None if self.config is None else initial_request(self.config)

    @staticmethod
    def retry(offer: TimerRequest | None, call: Call) -> TimerRequest | None:
        """The retry after our INVITE got 422 (s7.3): None when there is none to make."""
        response = call.response
        if offer is None or response is None or response.status != 422:
            return None
        return offer.retry_after_422(response.headers)

    def started(self, p: Participant, offer: TimerRequest | None) -> None:
        """The 2xx to our INVITE (``offer`` in it) confirmed the phone's call (s7.2)."""
        self._start((p, TimedDialog.PHONE), _read_2xx(offer, p.call.response))
        self.leg_opened(p)

    def leg_opened(self, p: Participant) -> None:
        """``p``'s media leg is up: its timer, as the leg's 2xx agreed, starts (once per leg:
        again after a new leg replaced a lost one)."""
        leg = p.leg
        if leg is None or self._leg_calls.get(p) is leg.call:
            return
        self._leg_calls[p] = leg.call
        key = (p, TimedDialog.MEDIA_LEG)
        self._timers.forget(key)
        self._start(key, _read_2xx(leg.timer, leg.call.response))

    def forget(self, p: Participant) -> None:
        """Her call ended: both her timers go."""
        self._leg_calls.pop(p, None)
        gone = [self._timers.forget((p, side)) for side in TimedDialog]
        if any(t is not None for t in gone):
            self._arm()

    def close(self) -> None:
        self._alarm.cancel()
        self._timers.clear()
        self._leg_calls.clear()

    # ---- the one timer

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline (on the UA's clock), or None."""
        return self._timers.get_timer()

    def handle_timer(self, now: float) -> None:
        """Runs every timer due at ``now`` (the loop timer calls it with the UA's clock)."""
        for key, timer, event in self._timers.handle_timer(now):
            if isinstance(event, SessionExpired):
                p, side = key
                log.info(
                    "session of %s's %s expired (%d s without refresh)",
                    p.caller,
                    side.value,
                    event.interval,
                )
                self._lost(key)
            elif isinstance(event, RefreshDue):
                self._spawn(self._refresh(key, timer), f"refresh {key[0].caller}")
        self._arm()

    def _start(self, key: _Key, negotiated: Negotiated | None) -> SessionTimer | None:
        timer = self._timers.start(key, negotiated, self.ua.now)
        self._arm()
        return timer

    def _arm(self) -> None:
        """The one loop timer at the earliest deadline."""
        self._alarm.arm(self._timers.get_timer())

    def _lost(self, key: _Key) -> None:
        """The dialog is gone on the other side (s10): BYE the call, or a new media leg."""
        p, side = key
        if side is TimedDialog.MEDIA_LEG:
            if self.on_leg_lost is not None:
                self.on_leg_lost(p)
        elif self.on_expired is not None:
            self._spawn(self.on_expired(p), f"expired {p.caller}")

    async def _refresh(self, key: _Key, timer: SessionTimer) -> None:
        """A refresh by re-INVITE with our last session description (RFC 4028 s10); a 422
        is retried once with its larger Min-SE (s7.4)."""
        assert self.config is not None
        p, side = key
        call, body = _dialog_of(p, side)
        if call is None or not p.in_conference():
            return
        request: TimerRequest | None = timer.refresh_request(self.config)
        response: Response | None = None
        for _ in range(2):
            assert request is not None
            try:
                response = await self.ua.reinvite(call, body, headers=request.headers())
            except (UAError, LocalProtocolError) as exc:
                log.info("session refresh of %s not sent: %s", p.caller, exc)
                return  # another INVITE is under way; the expiry still stands
            if response.status != 422:
                break
            retry = request.retry_after_422(response.headers)
            if retry is None:
                return  # the peer wants no more than we asked: the expiry still stands
            timer.saw_min_se(retry.min_se)
            request = retry
        assert response is not None and request is not None
        if self._timers.get(key) is not timer:
            return  # she left, or a new leg, meanwhile
        if 200 <= response.status < 300:
            self._start(key, _read_2xx(request, response))
        elif response.status in (408, 481):
            # s10: the session is gone on the other side.
            log.info("refresh of %s's %s: %d", p.caller, side.value, response.status)
            _bye_dead_dialog(self.ua, call)
            self._timers.forget(key)
            self._arm()
            self._lost(key)


def _bye_dead_dialog(ua: UserAgent, call: Call) -> None:
    """RFC 4028 s10: a refresh answered 408 or 481 ends the session with a BYE, although the
    dialog layer has already ended the dialog (RFC 3261 s12.2.1.2, so ``hang_up`` only
    releases the call). The BYE is built on a live copy of the dead dialog and not awaited:
    the peer may well answer 481, and the call is over for us either way."""
    dialog = call.dialog
    if dialog is None:
        return
    flow = ua.core.flow_for(dialog)
    host, port = ua.local.get(flow.transport) or next(iter(ua.local.values()))
    live = dataclasses.replace(dialog, state=DialogState.CONFIRMED, client_invite_pending=False)
    try:
        bye = live.create_request(
            "BYE", sent_by=format_hostport(host, port), transport=flow.transport.value
        )
        ua.send_nowait(bye, flow=flow)
    except (UAError, LocalProtocolError) as exc:
        log.info("BYE after the failed refresh of %r not sent: %s", call, exc)


def _dialog_of(p: Participant, side: TimedDialog) -> tuple[Call | None, bytes]:
    """The dialog to refresh and the session description to send again in it."""
    if side is TimedDialog.MEDIA_LEG:
        return (None, b"") if p.leg is None else (p.leg.call, p.leg.call.local_sdp)
    return (None, b"") if p.answer is None else (p.call, p.answer.to_bytes())


def _read_2xx(offer: TimerRequest | None, response: Response | None) -> Negotiated | None:
    """The timer the 2xx agreed; a malformed one keeps ours, refreshed by us (safe side)."""
    if offer is None or response is None:
        return None
    try:
        return offer.read_2xx(response.headers)
    except SessionTimerHeaderError as exc:
        log.info("2xx with %s: we refresh at the interval we asked", exc)
        asked = offer.session_expires
        return None if asked is None else Negotiated(asked.interval, we_refresh=True)
