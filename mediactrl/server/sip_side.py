"""The media server's SIP side: control-channel set-up (RFC 6230 s4) and media legs (3PCC).

An ``on_event`` handler for a :class:`focus.sip.aio.ua.UserAgent`.  Each INVITE is one of two kinds,
told apart by its SDP:

* **control channel**: an offer with an ``m=application ... TCP cfw`` line (COMEDIA, RFC 4145)
  goes to :meth:`ControlServer.answer_offer`, which expects the SYNC of the offered cfw-id and
  returns ``a=setup:passive``, the CFW listener's port and our own cfw-id.  The channel's owner
  is the application server's From URI, so a channel re-established under a new cfw-id (after
  a drop) keeps its conferences.  BYE of the dialog closes the channel (s4.2).
* **media leg**: any other offer with audio (or an offerless INVITE: we offer in the 200, the
  answer comes in the ACK, RFC 3725 flow I) gets one RTP endpoint in the
  :class:`~mediactrl.media.engine.MediaEngine`, named by the RFC 6230 A.1 connection id as the
  media server sees the dialog: OUR tag ':' THE PEER'S tag.  The application server names the
  same dialog the other way round; the engine backend accepts both.  Codecs (PCMU, PCMA,
  telephone-event) and directions are negotiated with :mod:`focus.sip.offer_answer`; a
  re-INVITE updates the remote address, payload types and direction; BYE closes the endpoint
  and the control side sends unjoin-notify (status 2) for its joins.

Session timers (RFC 4028, :mod:`mediactrl.server.leg_timers`): a leg INVITE or re-INVITE
asking an interval below our Min-SE gets 422; our 2xx carries Session-Expires (the
application server refreshes by default), and a leg not refreshed in time is ended with BYE,
so an application server that vanished does not hold its legs, ports and joins forever.

Offers we cannot use get 488 with a reason: no cfw and no audio stream, no common codec, a
control offer that is passive or over TLS, an SDP that does not parse.

DTMF (RFC 4733) arrives from the engine as :class:`~mediactrl.media.events.DtmfReceived`.
RFC 6505 defines no DTMF event in msc-mixer/1.0; the control server reports digits as
msc-ivr/1.0 <dtmfnotify> events (RFC 6231) to the dialogs watching the connection.  Here the
digit is logged and handed to ``on_dtmf(connection_id, digit)``; the mixer keeps the digit's
in-band tone out of the mix (clamp, s4.2.2.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from focus.sip.aio.ua import UserAgent
from focus.sip.headers import Headers
from focus.sip.offer_answer import (
    LocalSession,
    MediaCapability,
    NegotiatedStream,
    create_answer,
    create_offer,
    negotiate,
)
from focus.sip.sdp import SdpError, SessionDescription, parse_sdp
from focus.sip.session_timer import SessionTimerConfig, TimerAnswer, TimerRefusal
from focus.sip.uacore import (
    Call,
    CallConfirmed,
    CallEnded,
    CallFailed,
    IncomingCall,
    IncomingRequest,
    UAEvent,
)
from focus.sip.uri import URI, SipURI
from mediactrl.cfw.sdp import is_cfw_media, parse_cfw_sdp
from mediactrl.media.engine import MediaEngine, PayloadTypes
from mediactrl.media.errors import MediaUsageError
from mediactrl.media.events import DtmfReceived, EndpointBye, EndpointTimedOut
from mediactrl.media.g711 import Law
from mediactrl.mixer.model import Direction
from mediactrl.server.control import ChannelRefused, ControlServer
from mediactrl.server.leg_timers import LEG_TIMER_POLICY, LegTimers

__all__ = ["AUDIO_CAPABILITY", "MediaLegInfo", "SipSide"]

log = logging.getLogger(__name__)

#: What a media leg accepts: G.711 both laws and RFC 4733 events over RTP/AVP, sendrecv.
AUDIO_CAPABILITY = MediaCapability()

DtmfCallback = Callable[[str, str], None]


@dataclass
class MediaLegInfo:
    """One media leg: its connection id (media server's view) and what was negotiated."""

    connection_id: str
    call: Call
    local_sdp: SessionDescription | None = None
    stream: NegotiatedStream | None = None
    timer: TimerAnswer | None = None  # what our 2xx says of the session timer (RFC 4028)
    closed: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def _identity(uri: URI, call: Call) -> str:
    """Who offers a control channel: the From AoR with its port (two application servers on
    one host differ by port) and the source host (RFC 6230 s12.3 policy, control.py)."""
    if isinstance(uri, SipURI):
        named = f"{uri.aor}:{uri.port}" if uri.port is not None else uri.aor
    else:
        named = str(uri)
    return f"{named} from {call.flow.host}"


class SipSide:
    """Routes the UA's events: control channels to the control server, media legs to the
    engine.  Install with ``UserAgent.start(..., on_event=side)``; call :meth:`close` on stop.
    ``session_timer`` is the legs' RFC 4028 policy (None: no session timers).
    """

    def __init__(
        self,
        control: ControlServer,
        engine: MediaEngine,
        *,
        on_dtmf: DtmfCallback | None = None,
        session_timer: SessionTimerConfig | None = LEG_TIMER_POLICY,
    ) -> None:
        self.control = control
        self.engine = engine
        self.on_dtmf = on_dtmf
        self.timers = LegTimers(session_timer, self._expired)
        host = engine.config.host
        self._session = LocalSession(
            address=host,
            session_id=secrets.randbits(31),
            username="mediaserver",
            addrtype="IP6" if ":" in host else "IP4",
        )
        self.channels: dict[Call, str] = {}  # control dialog -> the client's cfw-id
        self.legs: dict[Call, MediaLegInfo] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- the UA's events
    def __call__(self, ua: UserAgent, event: UAEvent) -> None:
        self.timers.ua = ua
        match event:
            case IncomingCall(call=call, offer=offer, reinvite=reinvite, request=request):
                if reinvite:
                    self._reinvite(ua, call, offer, self.timers.verdict(request.headers))
                else:
                    self._new_call(ua, call, offer, str(request.from_.uri), request.headers)
            case CallConfirmed(call=call, body=body):
                leg = self.legs.get(call)
                if leg is not None and body:
                    self._take_answer(ua, leg, body)
                elif leg is not None and leg.stream is None:
                    # RFC 3264 s5 / RFC 3725: our offer in the 2xx needs the answer in the ACK.
                    log.info("leg %s: ACK without the answer: ending it", leg.connection_id)
                    self._spawn(self._hang_up(ua, call))
            case CallEnded(call=call, reason=reason) | CallFailed(call=call, reason=reason):
                self._ended(call, reason)
            case IncomingRequest(request=request):
                # INFO (e.g. SIP INFO DTMF of some phones) is absorbed; the rest is not ours.
                ua.respond(request, 200 if request.method == "INFO" else 501)
            case _:
                pass

    def _new_call(
        self, ua: UserAgent, call: Call, offer: bytes, from_uri: str, headers: Headers
    ) -> None:
        if not offer:
            self._open_leg(ua, call, None, headers)
            return
        try:
            parsed = parse_sdp(offer)
        except SdpError as exc:
            ua.reject(call, 488, f"Not Acceptable Here - {exc.reason}"[:120])
            return
        if any(is_cfw_media(m) for m in parsed.media):  # a CFW channel (RFC 6230 s4.1)
            self._open_channel(ua, call, parsed, from_uri)
        else:
            self._open_leg(ua, call, parsed, headers)

    # ----------------------------------------------------------------- control channel
    def _open_channel(
        self, ua: UserAgent, call: Call, offer: SessionDescription, identity: str
    ) -> None:
        try:
            answer = self.control.answer_offer(offer, identity=identity, source_host=call.flow.host)
            cfw_id = parse_cfw_sdp(offer).cfw_id
        except SdpError as exc:
            log.info("control channel offer refused: %s", exc.reason)
            ua.reject(call, exc.status, f"Not Acceptable Here - {exc.reason}"[:120])
            return
        except ChannelRefused as exc:
            log.warning("control channel of %s refused: %s", identity, exc.reason)
            ua.reject(call, exc.status, f"Forbidden - {exc.reason}"[:120])
            return
        self.channels[call] = cfw_id
        ua.accept(call, answer.encode())
        log.info("control channel %s set up for %s", cfw_id, identity)

    # ----------------------------------------------------------------- media legs
    def _open_leg(
        self, ua: UserAgent, call: Call, offer: SessionDescription | None, headers: Headers
    ) -> None:
        timer = self.timers.verdict(headers)  # RFC 4028 s9
        if isinstance(timer, TimerRefusal):
            ua.reject(call, timer.status, timer.reason, headers=timer.headers)
            return
        remote_tag = call.invite.from_.tag or ""
        if not remote_tag or ":" in remote_tag + call.local_tag:
            ua.reject(call, 400, "Bad Request - a media leg needs a From tag without ':'")
            return
        if offer is not None and not any(
            m.media == "audio" and m.port != 0 and m.proto in AUDIO_CAPABILITY.protos
            for m in offer.media
        ):
            ua.reject(call, 488, "Not Acceptable Here - no audio stream over RTP/AVP")
            return
        leg = MediaLegInfo(f"{call.local_tag}:{remote_tag}", call, timer=timer)
        self.legs[call] = leg
        self._spawn(self._answer_leg(ua, leg, offer))

    async def _answer_leg(
        self, ua: UserAgent, leg: MediaLegInfo, offer: SessionDescription | None
    ) -> None:
        call = leg.call
        try:
            endpoint = await self.engine.create_endpoint(leg.connection_id)
        except MediaUsageError as exc:
            self.legs.pop(call, None)
            if not leg.closed:
                ua.reject(call, 503, f"Service Unavailable - {exc}"[:120])
            return
        if leg.closed:  # CANCELled while the sockets were opening
            await self._close_endpoint(leg.connection_id)
            return
        try:
            if offer is None:
                local = create_offer(self._session, [(AUDIO_CAPABILITY, endpoint.local_port)])
            else:
                local = self._answer(offer, endpoint.local_port, None)
                self._apply(leg, local, offer)
        except SdpError as exc:
            self.legs.pop(call, None)
            await self._close_endpoint(leg.connection_id)
            ua.reject(call, 488, f"Not Acceptable Here - {exc.reason}"[:120])
            return
        leg.local_sdp = local
        self._accept(ua, leg, local, leg.timer)
        log.info("media leg %s on port %d", leg.connection_id, endpoint.local_port)
        leg.ready.set()

    def _answer(
        self, offer: SessionDescription, port: int, previous: SessionDescription | None
    ) -> SessionDescription:
        """Our answer: the first audio RTP stream on our endpoint, every other one refused."""
        ports, taken = [], False
        for media in offer.media:
            usable = media.media == "audio" and media.port != 0 and not taken
            usable = usable and media.proto in AUDIO_CAPABILITY.protos
            ports.append(port if usable else 0)
            taken = taken or usable
        answer = create_answer(offer, self._session, (AUDIO_CAPABILITY,), ports, previous=previous)
        if not any(not m.rejected and m.media == "audio" for m in answer.media):
            raise SdpError("no common audio codec (PCMU, PCMA)", 488)
        return answer

    def _apply(
        self, leg: MediaLegInfo, local: SessionDescription, remote: SessionDescription
    ) -> None:
        """Points the endpoint at what the exchange agreed (address, codec, direction)."""
        streams = [s for s in negotiate(local, remote) if s.media == "audio" and s.accepted]
        if not streams or streams[0].codec is None:
            raise SdpError("no common audio codec (PCMU, PCMA)", 488)
        stream = streams[0]
        assert stream.codec is not None
        encoding = stream.codec.encoding.upper()
        if encoding not in ("PCMU", "PCMA") or stream.codec.payload_type not in (0, 8):
            # The engine speaks G.711 under its static payload types only (RFC 3551 s6).
            raise SdpError(f"{encoding}/{stream.codec.payload_type} is not usable here", 488)
        law = Law.PCMU if encoding == "PCMU" else Law.PCMA
        types = PayloadTypes(send=law, telephone_event=stream.telephone_event)
        remote_addr = None
        if stream.direction.sends and stream.remote_address and stream.remote_port:
            # Not sending (hold, recvonly): no remote, so the mixer sends nothing there.
            remote_addr = (stream.remote_address, stream.remote_port)
        self.engine.update_endpoint_remote(leg.connection_id, remote_addr, types)
        # Our side's direction: on hold or inactive, no media is expected (media timeout).
        self.engine.set_endpoint_direction(leg.connection_id, Direction(stream.direction.value))
        leg.stream = stream

    def _take_answer(self, ua: UserAgent, leg: MediaLegInfo, body: bytes) -> None:
        """The answer to our offer arrived in the ACK (RFC 3725 flow I)."""
        assert leg.local_sdp is not None
        try:
            self._apply(leg, leg.local_sdp, parse_sdp(body))
        except (SdpError, MediaUsageError) as exc:
            log.info("leg %s: unusable answer in the ACK (%s): ending it", leg.connection_id, exc)
            self._spawn(self._hang_up(ua, leg.call))

    def _accept(
        self,
        ua: UserAgent,
        leg: MediaLegInfo,
        local: SessionDescription,
        timer: TimerAnswer | None,
    ) -> None:
        """Our 2xx with the session timer's headers; the leg's interval starts (again)."""
        ua.accept(leg.call, local.to_bytes(), headers=timer.headers() if timer else ())
        self.timers.answered(leg.call, timer)

    def _expired(self, call: Call) -> None:
        """No refresh came in time (RFC 4028 s10): the leg ends with BYE."""
        assert self.timers.ua is not None
        self._spawn(self._hang_up(self.timers.ua, call))

    def _reinvite(
        self, ua: UserAgent, call: Call, offer: bytes, timer: TimerRefusal | TimerAnswer | None
    ) -> None:
        if call in self.channels:
            # Session refresh of the control dialog: nothing changes (s4: one TCP channel).
            ua.accept(call, call.local_sdp)
            return
        leg = self.legs.get(call)
        if leg is None or leg.local_sdp is None:
            ua.reject(call, 491, "Request Pending")
            return
        if isinstance(timer, TimerRefusal):
            ua.reject(call, timer.status, timer.reason, headers=timer.headers)
            return
        try:
            if offer:
                parsed = parse_sdp(offer)
                local = self._answer(parsed, _port_of(leg.local_sdp), leg.local_sdp)
                self._apply(leg, local, parsed)
            else:
                # An offerless re-INVITE asks for our offer again; the answer is in the ACK.
                local = leg.local_sdp.bump_version()
                leg.stream = None
        except (SdpError, MediaUsageError) as exc:
            reason = exc.reason if isinstance(exc, SdpError) else str(exc)
            # The failed re-offer leaves the session as it was (RFC 3261 s14.2).
            ua.reject(call, 488, f"Not Acceptable Here - {reason}"[:120])
            return
        leg.local_sdp = local
        self._accept(ua, leg, local, timer)

    # ----------------------------------------------------------------- endings
    def _ended(self, call: Call, reason: str) -> None:
        cfw_id = self.channels.pop(call, None)
        if cfw_id is not None:
            log.info("control channel %s ended: %s", cfw_id, reason)
            self.control.forget_channel(cfw_id)
            return
        self.timers.forget(call)
        leg = self.legs.pop(call, None)
        if leg is None or leg.closed:
            return
        leg.closed = True
        log.info("media leg %s ended: %s", leg.connection_id, reason)
        # Joins end first (unjoin-notify status 2), then the endpoint and its sockets.
        self.control.connection_closed(leg.connection_id)
        if leg.ready.is_set():
            self._spawn(self._close_endpoint(leg.connection_id))

    async def _hang_up(self, ua: UserAgent, call: Call) -> None:
        await ua.bye(call)

    async def _close_endpoint(self, connection_id: str) -> None:
        with contextlib.suppress(MediaUsageError):  # already gone (the engine closed first)
            await self.engine.close_endpoint(connection_id)

    def on_media_event(self, event: object) -> None:
        """Engine events that concern legs rather than mixers (DTMF, silence, RTCP BYE)."""
        if isinstance(event, DtmfReceived):
            log.info("DTMF %s from %s (%d ms)", event.digit, event.endpoint_id, event.duration_ms)
            if self.on_dtmf is not None:
                self.on_dtmf(event.endpoint_id, event.digit)
        elif isinstance(event, EndpointTimedOut):
            log.info("no RTP or RTCP from %s for %.0f s", event.endpoint_id, event.silent_for)
        elif isinstance(event, EndpointBye):
            log.info("RTCP BYE from %s: %s", event.endpoint_id, event.reason)

    def _spawn(self, coro: object) -> None:
        assert asyncio.iscoroutine(coro)
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Waits for leg set-ups under way (the engine closes the endpoints themselves)."""
        await self.timers.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _port_of(local: SessionDescription) -> int:
    return next(m.port for m in local.media if m.media == "audio" and m.port != 0)
