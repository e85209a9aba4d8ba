"""Process wiring of the bundled media server: SIP UA + CFW listener + mixer + media engine.

``start_media_server(config)`` starts, in this order, the media engine (RTP), the CFW control
server with the msc-mixer/1.0 executor over the engine (:class:`EngineBackend`) and the
msc-ivr/1.0 DTMF executor (:class:`~mediactrl.server.ivr_service.IvrService`), and the SIP
user agent (UDP and TCP on one port) whose events go to :class:`SipSide`.  ``close()`` stops
them in the reverse order: no new SIP work, then channels, then the RTP endpoints (each sends
an RTCP BYE).  ``python -m mediactrl.server`` and ``python -m focus serve`` both use it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.timers import TimerConfig
from focus.sip.uacore import UAConfig
from mediactrl.media.engine import MediaConfig, MediaEngine
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.engine_backend import EngineBackend
from mediactrl.server.mixer_service import MixerService
from mediactrl.server.sip_side import DtmfCallback, SipSide

__all__ = ["MediaServer", "MediaServerConfig", "start_media_server"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaServerConfig:
    """Settings of one media server process.

    sip_host, sip_port: where the SIP UA listens (UDP and TCP); port 0 picks a free one (see
        :attr:`MediaServer.sip_port`).  The host must be a concrete IP: it goes into Via and
        Contact, and (with ``media_host`` unset) into the SDP c= lines.
    cfw_host, cfw_port: the CFW listener (RFC 6230); None host: the SIP host; port 0: any free.
    rtp_ports: inclusive range of RTP ports; each media leg takes an even port and the next.
    media_host: address the RTP sockets bind and the SDP announces (None: the SIP host).
    sip_user: user part of the UA's URI (``sip:<user>@host:port``).
    media_timeout: seconds without RTP before a leg is reported silent (logged only).
    orphan_timeout: seconds the mixers of a control channel that lost its connection wait for
        it to come back with the same cfw-id (RFC 6505 s7 handover) before they are released;
        None keeps them (see :class:`~mediactrl.server.control.ControlServerConfig`).
    timers: RFC 3261 T1/T2/T4 of the SIP UA; they set how long a finished leg's INVITE
        transaction (Timer L = 64*T1) and its call are kept. The bundled media server takes
        the focus profile's.
    """

    sip_host: str = "127.0.0.1"
    sip_port: int = 5070
    cfw_host: str | None = None
    cfw_port: int = 0
    rtp_ports: tuple[int, int] = (16384, 32767)  # below the ephemeral ports
    media_host: str | None = None
    sip_user: str = "mediaserver"
    media_timeout: float | None = 30.0
    orphan_timeout: float | None = 120.0
    timers: TimerConfig = field(default_factory=TimerConfig)


class MediaServer:
    """A running media server; build it with :func:`start_media_server`."""

    def __init__(
        self,
        config: MediaServerConfig,
        engine: MediaEngine,
        control: ControlServer,
        sip: SipSide,
        ua: UserAgent,
    ) -> None:
        self.config = config
        self.engine = engine
        self.control = control
        self.sip = sip
        self.ua = ua
        self._closed = False

    @property
    def sip_port(self) -> int:
        """The SIP port (UDP; TCP listens on the same one)."""
        return self.ua.core.local[TransportKind.UDP][1]

    @property
    def sip_uri(self) -> str:
        """The URI application servers INVITE (control channel and media legs)."""
        return self.ua.local_uri(TransportKind.UDP)

    @property
    def cfw_address(self) -> tuple[str, int]:
        return self.control.address

    async def close(self, *, bye_timeout: float = 2.0) -> None:
        """Ends every dialog with BYE (so application servers learn at once that the channel
        and the legs are gone; bounded by ``bye_timeout``), then stops SIP, the control
        channels and the media (idempotent)."""
        if self._closed:
            return
        self._closed = True
        calls = [*self.sip.legs, *self.sip.channels]
        if calls:
            byes = [asyncio.ensure_future(self.ua.bye(call)) for call in calls]
            done, pending = await asyncio.wait(byes, timeout=bye_timeout)
            for bye in pending:
                bye.cancel()
            for bye in done:
                if bye.exception() is not None:
                    log.info("BYE on close failed: %s", bye.exception())
            await asyncio.gather(*pending, return_exceptions=True)
        await self.ua.close()
        await self.sip.close()
        await self.control.close()
        await self.engine.close()


async def start_media_server(
    config: MediaServerConfig | None = None, *, on_dtmf: DtmfCallback | None = None
) -> MediaServer:
    """Starts the media server's engine, CFW listener and SIP UA; see the module docstring.

    ``on_dtmf(connection_id, digit)`` receives RFC 4733 digits from media legs locally (logs,
    tests); application servers get them over their control channel as msc-ivr/1.0
    <dtmfnotify> events of the dialogs they start (RFC 6231, :class:`IvrService`).
    """
    config = config or MediaServerConfig()
    media_host = config.media_host or config.sip_host
    holder: list[tuple[ControlServer, SipSide]] = []

    def route(event: object) -> None:
        if holder:
            control, side = holder[0]
            control.on_media_event(event)
            side.on_media_event(event)

    engine = MediaEngine(
        MediaConfig(
            host=media_host,
            port_range=config.rtp_ports,
            media_timeout=config.media_timeout,
            # Remote addresses come from SDP; latching would undo a hold (no remote).
            latch_remote=False,
        ),
        on_event=route,
    )
    control = ControlServer(
        MixerService(EngineBackend(engine)),
        ControlServerConfig(
            host=config.cfw_host or config.sip_host,
            port=config.cfw_port,
            orphan_timeout=config.orphan_timeout,
        ),
    )
    side = SipSide(control, engine, on_dtmf=on_dtmf)
    holder.append((control, side))
    await control.start()
    try:
        ua = await UserAgent.start(
            UAConfig(
                user=config.sip_user,
                user_agent="xcon-mediaserver",
                methods=frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"}),
                supported=("timer",),  # RFC 4028 on media legs (sip_side)
                timers=config.timers,
            ),
            TransportConfig(
                host=config.sip_host, udp_port=config.sip_port, tcp_port=config.sip_port
            ),
            on_event=side,
        )
    except BaseException:
        await control.close()
        await engine.close()
        raise
    server = MediaServer(config, engine, control, side, ua)
    log.info("media server SIP %s, CFW %s:%d", server.sip_uri, *server.cfw_address)
    return server


async def run_until(stop: asyncio.Event, config: MediaServerConfig) -> None:
    """Runs a media server until ``stop`` is set (the CLI's body)."""
    server = await start_media_server(config)
    host, port = server.cfw_address
    print(
        f"media server listening: SIP {server.sip_uri} (UDP and TCP), CFW {host}:{port}, "
        f"RTP {config.rtp_ports[0]}-{config.rtp_ports[1]}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.close()
        print("media server stopped", flush=True)
