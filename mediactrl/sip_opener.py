"""The application server's SIP dialog for a CFW channel with a media server (RFC 6230 s4).

:class:`SipChannelOpener` is a :data:`~mediactrl.client.ChannelOpener` for
:class:`~mediactrl.client.MediaControlClient`: each call sends an INVITE with the COMEDIA offer
of RFC 6230 s4.1 (:func:`~mediactrl.client.channel_offer`: ``m=application 9 TCP cfw``,
``a=setup:active``, ``a=connection:new``, ``a=cfw-id``) through a
:class:`focus.sip.aio.ua.UserAgent` and returns the :class:`~mediactrl.client.ChannelTarget` of the
answer.  The dialog of an earlier channel is ended with BYE when a new one is opened (the
client only asks again when the old channel dropped), and :meth:`SipChannelOpener.close` ends
the current one.  Media legs are opened by :class:`mediactrl.legs.MediaLegs`.

The cfw-id is chosen once per opener and offered again on every reconnect: the channel
identifier names the channel and owns its mixers on the media server (RFC 6505 s7), so a
channel re-established after a drop takes its conferences back (mediactrl/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from focus.sip.aio.ua import UserAgent
from focus.sip.sdp import SdpError
from focus.sip.uacore import Call, CallState
from mediactrl.client import ChannelTarget, channel_offer

__all__ = ["SipChannelOpener"]

log = logging.getLogger(__name__)


class SipChannelOpener:
    """Opens CFW channels by SIP INVITE to ``target`` (the media server's SIP URI).

    ``address`` is the IP put in the offer's c= line (where the client connects from);
    ``timeout`` bounds one INVITE; ``call`` is the dialog of the current channel; ``cfw_id``
    is the channel identifier offered every time (default: a random one).
    """

    def __init__(
        self,
        ua: UserAgent,
        target: str,
        *,
        address: str,
        timeout: float = 10.0,
        cfw_id: str | None = None,
    ) -> None:
        self.ua = ua
        self.cfw_id = cfw_id or secrets.token_hex(6)
        self.target = target
        self.address = address
        self.timeout = timeout
        self.call: Call | None = None
        self._byes: set[asyncio.Task[None]] = set()

    async def __call__(self) -> ChannelTarget:
        """Negotiates a new channel; raises what the INVITE raised (the client retries)."""
        previous, self.call = self.call, None
        if previous is not None:
            self._bye_later(previous)
        offer = channel_offer(self.address, cfw_id=self.cfw_id)
        call = await asyncio.wait_for(self.ua.invite(self.target, offer.sdp.encode()), self.timeout)
        try:
            target = offer.target(call.remote_sdp.decode("utf-8", "replace"))
        except SdpError:
            self._bye_later(call)  # the dialog exists, the channel cannot: end it
            raise
        self.call = call
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
