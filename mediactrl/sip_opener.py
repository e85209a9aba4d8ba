"""The application server's SIP dialogs with a media server: the CFW channel and media legs.

:class:`SipChannelOpener` is a :data:`~mediactrl.client.ChannelOpener` for
:class:`~mediactrl.client.MediaControlClient`: each call sends an INVITE with the COMEDIA offer
of RFC 6230 s4.1 (:func:`~mediactrl.client.channel_offer`: ``m=application 9 TCP cfw``,
``a=setup:active``, ``a=connection:new``, a fresh ``a=cfw-id``) through a
:class:`focus.sip.ua.UserAgent` and returns the :class:`~mediactrl.client.ChannelTarget` of the
answer.  The dialog of an earlier channel is ended with BYE when a new one is opened (the
client only asks again when the old channel dropped), and :meth:`SipChannelOpener.close` ends
the current one.

:func:`open_media_leg` places a media leg (3PCC, RFC 3725) to the media server for one
participant: with the participant's offer in the INVITE, or offerless (the media server offers
in its 200 and :meth:`MediaLeg.complete` sends the participant's answer in the ACK).  The leg's
``connection_id`` is the RFC 6230 A.1 id from OUR point of view (our tag ':' the media
server's tag): the id to use in CFW joins.  The media server names the same dialog the other
way round and accepts either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from focus.sip.sdp import SdpError
from focus.sip.transport import TransportKind
from focus.sip.ua import Call, CallState, UserAgent
from mediactrl.client import ChannelTarget, channel_offer
from mediactrl.plan import connection_id

__all__ = ["MediaLeg", "SipChannelOpener", "open_media_leg"]

log = logging.getLogger(__name__)


class SipChannelOpener:
    """Opens CFW channels by SIP INVITE to ``target`` (the media server's SIP URI).

    ``address`` is the IP put in the offer's c= line (default: the UA's own address);
    ``timeout`` bounds one INVITE.  ``opened`` counts channels negotiated so far.
    """

    def __init__(
        self, ua: UserAgent, target: str, *, address: str | None = None, timeout: float = 10.0
    ) -> None:
        self.ua = ua
        self.target = target
        self.address = address or ua.core.local[TransportKind.UDP][0]
        self.timeout = timeout
        self.call: Call | None = None
        self.opened = 0
        self._byes: set[asyncio.Task[None]] = set()

    async def __call__(self) -> ChannelTarget:
        """Negotiates a new channel; raises what the INVITE raised (the client retries)."""
        previous, self.call = self.call, None
        if previous is not None:
            self._bye_later(previous)
        offer = channel_offer(self.address)
        call = await asyncio.wait_for(self.ua.invite(self.target, offer.sdp.encode()), self.timeout)
        try:
            target = offer.target(call.remote_sdp.decode("utf-8", "replace"))
        except SdpError:
            self._bye_later(call)  # the dialog exists, the channel cannot: end it
            raise
        self.call = call
        self.opened += 1
        log.info("CFW channel %s negotiated with %s", target.dialog_id, self.target)
        return target

    def _bye_later(self, call: Call) -> None:
        if call.state is CallState.ENDED:
            return
        # A dead media server answers nothing: do not hold the reconnect up for 32 s.
        task = asyncio.get_running_loop().create_task(self._bye(call))
        self._byes.add(task)
        task.add_done_callback(self._byes.discard)

    async def _bye(self, call: Call) -> None:
        with contextlib.suppress(Exception):
            await self.ua.bye(call)

    async def close(self) -> None:
        """Ends the current channel's dialog (BYE) and waits for earlier BYEs."""
        call, self.call = self.call, None
        if call is not None and call.state is not CallState.ENDED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ua.bye(call), self.timeout)
        for task in list(self._byes):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class MediaLeg:
    """A media leg to the media server.

    ``server_sdp`` is the media server's answer (offer in the INVITE) or its offer (offerless
    INVITE: then ``needs_answer`` until :meth:`complete`).  ``connection_id`` is ours (A.1).
    """

    ua: UserAgent
    call: Call
    connection_id: str
    server_sdp: bytes
    needs_answer: bool

    def complete(self, answer: bytes) -> None:
        """Sends the participant's answer to the media server's offer in the ACK."""
        if not self.needs_answer:
            raise ValueError("this leg was set up with an offer; there is nothing to answer")
        self.ua.ack(self.call, answer)
        self.needs_answer = False

    async def close(self) -> None:
        """Ends the leg (BYE); the media server unjoins it from its conferences."""
        await self.ua.bye(self.call)


async def open_media_leg(
    ua: UserAgent, target: str, offer: bytes = b"", *, timeout: float = 10.0
) -> MediaLeg:
    """INVITEs the media server for one participant's media (see the module docstring).

    Raises :class:`focus.sip.ua.CallFailedError` when the media server refuses (488 for an
    unusable offer), :class:`TimeoutError` after ``timeout``.
    """
    call = await asyncio.wait_for(ua.invite(target, offer), timeout)
    assert call.dialog is not None  # a 2xx made the dialog
    leg_id = connection_id(call.dialog.id.local_tag, call.dialog.id.remote_tag)
    return MediaLeg(ua, call, leg_id, call.remote_sdp, needs_answer=not offer)
