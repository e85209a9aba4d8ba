"""The media plane as the focus drives it (RFC 6230, RFC 6505, the seed's s5.1).

Every participant's audio goes through a media leg: a SIP dialog the focus opens to the
media server with the participant's SDP offer (third-party call control, RFC 3725 flow I
with the offer known), whose answer the focus returns to the participant. The leg's
dialog tags name the connection in CFW (RFC 6230 A.1, :func:`mediactrl.driver.connection_id`),
and :class:`mediactrl.driver.MediaDriver` joins it to the conference's mixer.

The CFW channel itself is negotiated by a SIP INVITE with a COMEDIA offer
(RFC 6230 s4, :class:`mediactrl.sip_opener.SipChannelOpener`). The media server is only
ever reached by SIP and CFW, so any RFC 6230/6505 media server can stand in for the bundled one.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from focus.sip.ua import Call, CallFailedError, CallState, UAError, UserAgent
from mediactrl.sip_opener import MediaLeg as SipMediaLeg
from mediactrl.sip_opener import open_media_leg

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

    async def open(self, offer: bytes) -> MediaLeg:
        """A leg carrying ``offer`` (empty: the media server offers, see
        :meth:`MediaLeg.complete`); raises :class:`MediaLegError` when refused."""
        try:
            opened = await open_media_leg(self.ua, self.server_uri, offer, timeout=self.timeout)
        except TimeoutError:
            raise MediaLegError("the media server did not answer in time") from None
        except CallFailedError as exc:
            # 488 stays 488 (the participant's SDP is the problem); anything else is ours.
            status = 488 if exc.status == 488 else 503
            raise MediaLegError(f"media server answered {exc.status} {exc.reason}",
                                status) from None
        except UAError as exc:
            raise MediaLegError(f"cannot reach the media server: {exc}") from None
        call = opened.call
        if not opened.server_sdp:
            await self._bye(call)
            raise MediaLegError("media server answered without SDP")
        leg = MediaLeg(call, opened.connection_id, opened.server_sdp, opened)
        self.open_legs[id(call)] = leg
        return leg

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
