"""The media plane as the focus drives it (RFC 6230, RFC 6505, the seed's s5.1).

Every participant's audio goes through a media leg: a SIP dialog the focus opens to the
media server with the participant's SDP offer (third-party call control, RFC 3725 flow I
with the offer known), whose answer the focus returns to the participant. The leg's
dialog tags name the connection in CFW (RFC 6230 A.1, :func:`mediactrl.plan.connection_id`),
and :class:`mediactrl.driver.MediaDriver` joins it to the conference's mixer.

The CFW channel itself is negotiated by a SIP INVITE with a COMEDIA offer
(RFC 6230 s4, :class:`mediactrl.sip_opener.SipChannelOpener`). The media server is only
ever reached by SIP and CFW, so any RFC 6230/6505 media server can stand in for the bundled one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass

from focus.sip.sdp import SdpError, parse_sdp
from focus.sip.ua import Call, CallFailedError, CallState, UAError, UserAgent
from mediactrl.plan import connection_id
from mediactrl.sip_opener import MediaLeg as SipMediaLeg

__all__ = ["MediaLeg", "MediaLegError", "MediaLegs"]

log = logging.getLogger(__name__)


class MediaLegError(Exception):
    """The media server did not give us a leg; ``status`` is what to tell the caller."""

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(eq=False, slots=True)
class MediaLeg:
    """One 3PCC leg: our dialog with the media server for one participant."""

    call: Call
    connection: str  # the RFC 6230 A.1 connection id (our tag ':' the media server's)
    answer: bytes  # the media server's SDP (answer, or offer for an offerless leg)
    sip: SipMediaLeg  # completes an offerless leg with the participant's answer

    def complete(self, answer: bytes) -> None:
        """Sends the participant's answer to the media server's offer (in the ACK)."""
        self.sip.complete(answer)


class MediaLegs:
    """Opens and closes media legs to the media server at ``server_uri``."""

    def __init__(self, ua: UserAgent, server_uri: str, *, timeout: float = 10.0) -> None:
        self.ua = ua
        self.server_uri = server_uri
        self.timeout = timeout
        self.open_legs: dict[int, MediaLeg] = {}  # by id(call): the focus's audit of legs
        self._cleanups: set[asyncio.Task[None]] = set()

    async def open(self, offer: bytes, *, timeout: float | None = None) -> MediaLeg:
        """A leg carrying ``offer`` (empty: the media server offers, see
        :meth:`MediaLeg.complete`); raises :class:`MediaLegError` when refused or not
        answered within ``timeout`` (default: the instance's). An INVITE given up on is
        CANCELled, and BYEd should its 200 still come: no leg is left behind."""
        try:
            call = self.ua.dial(self.server_uri, offer)
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
            # 488 stays 488 (the participant's SDP is the problem); anything else is ours.
            status = 488 if exc.status == 488 else 503
            raise MediaLegError(
                f"media server answered {exc.status} {exc.reason}", status
            ) from None
        dialog = call.dialog
        if dialog is None or not call.remote_sdp:
            await self._bye(call)
            raise MediaLegError("media server answered without SDP")
        opened = SipMediaLeg(
            self.ua,
            call,
            connection_id(dialog.id.local_tag, dialog.id.remote_tag),
            call.remote_sdp,
            needs_answer=not offer,
        )
        leg = MediaLeg(call, opened.connection_id, opened.server_sdp, opened)
        self.open_legs[id(call)] = leg
        return leg

    def _give_up(self, call: Call, waiter: asyncio.Future[Call]) -> None:
        """CANCEL an unanswered leg INVITE; if its 200 crosses the CANCEL, ACK and BYE it."""

        async def cleanup() -> None:
            with contextlib.suppress(Exception):
                await self.ua.bye(call)  # CANCEL while it is calling
            with contextlib.suppress(Exception):
                await asyncio.wait_for(waiter, 40)
            if call.state is not CallState.ENDED:
                if call.state is CallState.ANSWERED and not call.offer:
                    with contextlib.suppress(Exception):
                        self.ua.ack(call, _rejecting(call.remote_sdp))
                await self._bye(call)

        task = asyncio.get_running_loop().create_task(cleanup())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def owns(self, call: Call) -> MediaLeg | None:
        return self.open_legs.get(id(call))

    def forget(self, call: Call) -> MediaLeg | None:
        """The media server ended the leg itself (its BYE)."""
        return self.open_legs.pop(id(call), None)

    async def close(self, leg: MediaLeg) -> None:
        """BYE the leg (idempotent)."""
        self.open_legs.pop(id(leg.call), None)
        await self._bye(leg.call)

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
