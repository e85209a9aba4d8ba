"""Media legs: the application server's SIP dialogs with the media server, one per participant.

Every participant's audio goes through a media leg: a SIP dialog the focus opens to the media
server (third-party call control, RFC 3725 flow I).  With the participant's offer in the INVITE
the media server's 200 carries the answer the focus returns to the participant; offerless (the
focus dials a participant out) the media server offers in its 200 and :meth:`MediaLeg.complete`
sends the participant's answer in the ACK.

The leg's dialog tags name the connection in CFW (RFC 6230 A.1,
:func:`mediactrl.plan.connection_id`) from OUR point of view (our tag ':' the media server's),
the id :class:`mediactrl.driver.MediaDriver` joins to conference mixers.  The media server
names the same dialog the other way round and accepts either.  The CFW channel itself is
negotiated by :class:`mediactrl.sip_opener.SipChannelOpener`.  The media server is reached only
by SIP and CFW, so any RFC 6230/6505 media server can stand in for the bundled one.

An asyncio adapter over :class:`focus.sip.aio.ua.UserAgent`: :class:`MediaLegs` is the one place
that opens legs; an INVITE given up on is CANCELled, and ACKed and BYEd should its 200 still
come, so no leg is left behind on the media server.

With a ``session_timer`` policy every leg INVITE asks for an RFC 4028 session timer
(Supported: timer, Session-Expires, Min-SE; a 422 is retried once with its Min-SE, s7.4), so a
media server ends the legs of a focus that vanished; :attr:`MediaLeg.timer` is what the leg's
INVITE asked, for the focus's session timers to read the 2xx (``call.response``) with.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass, field

from focus.sip.aio.ua import UserAgent
from focus.sip.sdp import SdpError, parse_sdp
from focus.sip.session_timer import (
    SessionTimerConfig,
    TimerRequest,
    initial_request,
)
from focus.sip.uacore import Call, CallFailedError, CallState, UAError
from mediactrl.plan import connection_id

__all__ = ["MediaLeg", "MediaLegError", "MediaLegs"]

# How long a CANCELled INVITE may still be answered: past Timer B (64*T1 = 32 s, RFC 3261
# s17.1.1.2) the client transaction has given up.
_CROSSING_200_WAIT = 40.0


class MediaLegError(Exception):
    """The media server did not give us a leg; ``status`` is what to tell the participant
    (488 when its SDP is the problem, else 503: the media server's fault, not the caller's)."""

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(eq=False, slots=True)
class MediaLeg:
    """One 3PCC leg: our dialog with the media server for one participant.

    ``answer`` is the media server's SDP: its answer to the participant's offer, or its own
    offer for an offerless leg, which then ``needs_answer`` until :meth:`complete`.
    """

    call: Call
    connection: str  # the RFC 6230 A.1 connection id (our tag ':' the media server's)
    answer: bytes
    needs_answer: bool
    ua: UserAgent = field(repr=False)
    timer: TimerRequest | None = None  # the session timer the leg's INVITE asked (RFC 4028)

    def complete(self, answer: bytes) -> None:
        """Sends the participant's answer to the media server's offer (in the ACK)."""
        if not self.needs_answer:
            raise ValueError("this leg was set up with an offer; there is nothing to answer")
        self.ua.ack(self.call, answer)
        self.needs_answer = False


class MediaLegs:
    """Opens and closes media legs to the media server at ``server_uri``; ``timeout`` is the
    default bound on one leg's INVITE; ``session_timer`` the RFC 4028 policy of the legs
    (None: no timer asked).  ``open_legs`` holds the legs open now, by call."""

    def __init__(
        self,
        ua: UserAgent,
        server_uri: str,
        *,
        timeout: float = 10.0,
        session_timer: SessionTimerConfig | None = None,
    ) -> None:
        self.ua = ua
        self.server_uri = server_uri
        self.timeout = timeout
        self.session_timer = session_timer
        self.open_legs: dict[Call, MediaLeg] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    async def open(self, offer: bytes, *, timeout: float | None = None) -> MediaLeg:
        """A leg carrying ``offer`` (empty: the media server offers, see
        :meth:`MediaLeg.complete`); raises :class:`MediaLegError` when refused or not
        answered within ``timeout`` (default: the instance's)."""
        timer = initial_request(self.session_timer) if self.session_timer is not None else None
        call = await self._invite(offer, timer, timeout)
        response = call.response
        if timer is not None and response is not None and response.status == 422:
            # s7.4: once more with the media server's larger Min-SE.
            timer = timer.retry_after_422(response.headers)
            if timer is None:
                raise MediaLegError("media server answered 422 without a larger Min-SE")
            call = await self._invite(offer, timer, timeout)
            if call.dialog is None:
                raise MediaLegError("media server answered 422 to its own Min-SE")
        dialog = call.dialog
        if dialog is None or not call.remote_sdp:
            await self._bye(call)
            raise MediaLegError("media server answered without SDP")
        leg = MediaLeg(
            call,
            connection_id(dialog.id.local_tag, dialog.id.remote_tag),
            call.remote_sdp,
            needs_answer=not offer,
            ua=self.ua,
            timer=timer,
        )
        self.open_legs[call] = leg
        return leg

    async def _invite(
        self, offer: bytes, timer: TimerRequest | None, timeout: float | None
    ) -> Call:
        """The leg's INVITE, answered 2xx, or 422 when ``timer`` asked too little."""
        headers = timer.headers() if timer is not None else ()
        try:
            call = self.ua.dial(self.server_uri, offer, headers=headers)
        except UAError as exc:
            raise MediaLegError(f"cannot reach the media server: {exc}") from None
        waiter = asyncio.ensure_future(self.ua.answered(call))
        try:
            await asyncio.wait_for(
                asyncio.shield(waiter), timeout if timeout is not None else self.timeout
            )
        except TimeoutError:
            self._give_up(call, waiter)
            raise MediaLegError("the media server did not answer in time") from None
        except CallFailedError as exc:
            if exc.status == 422 and timer is not None:
                return call
            # 488 stays 488 (the participant's SDP is the problem); anything else is ours.
            status = 488 if exc.status == 488 else 503
            raise MediaLegError(
                f"media server answered {exc.status} {exc.reason}", status
            ) from None
        return call

    def _give_up(self, call: Call, waiter: asyncio.Future[Call]) -> None:
        """CANCEL an unanswered leg INVITE; if its 200 crosses the CANCEL, ACK and BYE it."""

        async def cleanup() -> None:
            with contextlib.suppress(Exception):
                await self.ua.bye(call)  # CANCEL while it is calling
            with contextlib.suppress(Exception):
                await asyncio.wait_for(waiter, _CROSSING_200_WAIT)
            if call.state is not CallState.ENDED:
                if call.state is CallState.ANSWERED and not call.offer:
                    with contextlib.suppress(Exception):
                        self.ua.ack(call, _rejecting(call.remote_sdp))
                await self._bye(call)

        task = asyncio.get_running_loop().create_task(cleanup())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def owns(self, call: Call) -> MediaLeg | None:
        """The open leg of ``call``, if it is one."""
        return self.open_legs.get(call)

    def forget(self, call: Call) -> MediaLeg | None:
        """The media server ended the leg itself (its BYE)."""
        return self.open_legs.pop(call, None)

    async def close(self, leg: MediaLeg) -> None:
        """BYE the leg (idempotent); the media server unjoins it from its conferences."""
        self.open_legs.pop(leg.call, None)
        await self._bye(leg.call)

    async def abandon(self, leg: MediaLeg) -> None:
        """Close a leg that will carry nothing: an offerless one still waiting for the
        participant's answer is first ACKed refusing every stream (RFC 3264 s6: port 0)."""
        if leg.needs_answer:
            with contextlib.suppress(Exception):  # the leg's call may have ended already
                leg.complete(_rejecting(leg.answer))
        await self.close(leg)

    async def _bye(self, call: Call) -> None:
        if call.state is CallState.ENDED:
            return
        with contextlib.suppress(UAError):
            await self.ua.bye(call)

    async def close_all(self) -> None:
        for leg in list(self.open_legs.values()):
            await self.close(leg)
        for task in list(self._cleanups):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _rejecting(offer: bytes) -> bytes:
    """An answer refusing every stream of ``offer`` (RFC 3264 s6: port 0)."""
    try:
        sdp = parse_sdp(offer)
    except SdpError:
        return b""
    return dataclasses.replace(
        sdp, media=tuple(dataclasses.replace(m, port=0) for m in sdp.media)
    ).to_bytes()
