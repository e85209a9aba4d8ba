"""The media server's control side: a TCP listener for CFW channels (RFC 6230 s4-s6).

A thin asyncio adapter over :class:`~mediactrl.cfw.connection.CfwConnection` as the server
side: bytes read are fed to the connection, bytes it produces are written, and ONE
``loop.call_at`` timer per channel is armed from ``get_timer()``.  CONTROL bodies of
msc-mixer/1.0 go to the :class:`~mediactrl.server.mixer_service.MixerService`; the events it
produces go out as CONTROLs on the channel of the owner they are addressed to.  Bodies of
msc-ivr/1.0 (RFC 6231, the DTMF part) go to the :class:`~mediactrl.server.ivr_service.IvrService`;
its events (<dtmfnotify>, <dialogexit>) go to the very channel that started the dialog, and a
channel's dialogs end with it.

A channel is accepted only for a cfw-id the SIP side negotiated in the COMEDIA set-up
(:meth:`ControlServer.expect_channel`); an unknown Dialog-ID gets 481 (RFC 7058 s5.4).  With
``ControlServerConfig.accept_any_dialog`` (test mode) every Dialog-ID is its own owner.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from focus.sip.sdp import SdpError, SessionDescription
from mediactrl.cfw.connection import CfwConfig, CfwConnection, Side
from mediactrl.cfw.errors import LocalProtocolError
from mediactrl.cfw.events import (
    BadMessageReceived,
    ChannelClosed,
    ControlReceived,
    ResponseReceived,
    SyncCompleted,
    SyncReceived,
    TransactionTimedOut,
)
from mediactrl.cfw.parser import ParserLimits
from mediactrl.cfw.sdp import build_answer, parse_cfw_sdp
from mediactrl.ivr import codec as ivr_codec
from mediactrl.mixer.codec import CONTENT_TYPE, PACKAGE, encode
from mediactrl.server.ivr_service import IvrNotice, IvrService
from mediactrl.server.mixer_service import MixerService, Notice

__all__ = ["ControlServer", "ControlServerConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlServerConfig:
    """Settings of the CFW listener.

    host, port: where to listen (port 0: any free port, see :attr:`ControlServer.port`).
    packages: control packages answered in SYNC (msc-mixer/1.0 and msc-ivr/1.0 are executed;
        leave msc-ivr/1.0 out to offer a mixer-only server).
    accept_any_dialog: test mode: accept a SYNC with any Dialog-ID, owned by that id.
    sync_timeout: seconds a new TCP connection has to complete its SYNC before it is closed
        (the framework itself waits forever; a listener must not).
    transaction_timeout, report_timeout: as in :class:`~mediactrl.cfw.connection.CfwConfig`.
    limits: CFW parser limits.
    """

    host: str = "127.0.0.1"
    port: int = 0
    packages: tuple[str, ...] = (PACKAGE, ivr_codec.PACKAGE)
    accept_any_dialog: bool = False
    sync_timeout: float = 10.0
    transaction_timeout: float = 10.0
    report_timeout: int = 10
    limits: ParserLimits = field(default_factory=ParserLimits)


class _Channel(asyncio.Protocol):
    """One accepted TCP connection carrying a CFW channel."""

    def __init__(self, server: ControlServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._conn = CfwConnection(Side.SERVER, server.cfw_config, now=self._loop.time())
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sync_deadline: float | None = self._loop.time() + server.config.sync_timeout
        self.dialog_id: str | None = None
        self.owner: str | None = None
        self.key = f"ch{next(server.channel_numbers)}"  # names this channel to the IvrService

    # ----------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.channels.add(self)
        self._rearm()

    def data_received(self, data: bytes) -> None:
        self._conn.receive_data(data, self._loop.time())
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn.connection_lost()
        self._transport = None
        self._pump()
        self._detach()

    # ----------------------------------------------------------------- plumbing
    def _detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._server.channels.discard(self)
        if self.owner is not None and self._server.open_channels.get(self.owner) is self:
            del self._server.open_channels[self.owner]
        if self._server.ivr.channel_lost(self.key):
            log.info("channel %s lost: its IVR dialogs ended", self.dialog_id)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self._sync_deadline is not None and now >= self._sync_deadline:
            log.info("no SYNC within %s s: closing", self._server.config.sync_timeout)
            self.abort()
            return
        self._conn.handle_timer(now)
        self._pump()

    def _rearm(self) -> None:
        deadline = self._conn.get_timer()
        if self._sync_deadline is not None:
            deadline = min(deadline or self._sync_deadline, self._sync_deadline)
        if self._timer is not None and (deadline is None or self._timer.when() != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _pump(self) -> None:
        """Handles pending events, flushes output, re-arms the timer, closes when over."""
        while (event := self._conn.next_event()) is not None:
            self._handle(event)
        self._flush()
        if self._conn.closed:
            self.abort(graceful=True)
        else:
            self._rearm()

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def abort(self, *, graceful: bool = False) -> None:
        """Ends the channel; ``graceful`` flushes first (close), else resets (abort)."""
        self._conn.close()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if graceful:
                transport.close()
            else:
                transport.abort()
        self._detach()

    # ----------------------------------------------------------------- events
    def _handle(self, event: object) -> None:
        now = self._loop.time()
        if isinstance(event, SyncReceived):
            owner = self._server.owner_for(event.dialog_id)
            if owner is None:
                log.info("SYNC with unknown Dialog-ID %s refused (481)", event.dialog_id)
                self._conn.reject_sync(481)
                return
            if self._conn.accept_sync(now):
                self.dialog_id, self.owner = event.dialog_id, owner
        elif isinstance(event, SyncCompleted):
            assert self.owner is not None
            self._sync_deadline = None
            previous = self._server.open_channels.get(self.owner)
            self._server.open_channels[self.owner] = self
            if previous is not None and previous is not self:
                # The application server reconnected: the old channel is stale.
                previous.abort()
        elif isinstance(event, ControlReceived):
            self._on_control(event, now)
        elif isinstance(event, TransactionTimedOut):
            log.warning("channel %s: %s %s timed out", self.dialog_id, event.method, event.trans_id)
        elif isinstance(event, BadMessageReceived):
            log.info("channel %s: refused a message: %s", self.dialog_id, event.reason)
            if self.owner is None:
                # Not even a SYNC yet: this is no MEDIACTRL peer (RFC 7058 s5.4 closes too).
                self._conn.close()
        elif isinstance(event, ChannelClosed):
            log.info("channel %s closed: %s", self.dialog_id, event.reason)
        elif isinstance(event, ResponseReceived) and event.code != 200:
            log.info("channel %s: event %s answered %s", self.dialog_id, event.trans_id, event.code)

    def _on_control(self, event: ControlReceived, now: float) -> None:
        assert self.owner is not None
        if event.package.split("/")[0] == ivr_codec.PACKAGE.split("/")[0]:
            self._on_ivr_control(event)
            return
        if event.package.split("/")[0] != PACKAGE.split("/")[0]:
            # Negotiated but not executed here (another package in the config): 420 (s7).
            self._conn.respond(event.trans_id, 420)
            return
        if event.content_type is None or event.content_type.split(";")[0].strip() != CONTENT_TYPE:
            # Not a mixer body at all: a syntax error of the framework message (s7).
            self._conn.respond(event.trans_id, 400)
            return
        outcome = self._server.service.handle_body(self.owner, event.body)
        if outcome.answer is None:
            self._conn.respond(event.trans_id, outcome.cfw_status)
        else:
            self._conn.respond(event.trans_id, 200, content_type=CONTENT_TYPE, body=outcome.body())
        self._server.deliver(outcome.notices)

    def _on_ivr_control(self, event: ControlReceived) -> None:
        assert self.owner is not None
        content_type = (event.content_type or "").split(";")[0].strip()
        if content_type != ivr_codec.CONTENT_TYPE:
            self._conn.respond(event.trans_id, 400)
            return
        outcome = self._server.ivr.handle_body(self.owner, self.key, event.body)
        self._conn.respond(
            event.trans_id, 200, content_type=ivr_codec.CONTENT_TYPE, body=outcome.body()
        )
        self._server.deliver_ivr(outcome.notices)

    def send_event(self, notice: Notice) -> None:
        """Sends one mixer event as a CONTROL (the MS side may send CONTROL too, s6)."""
        self._send(PACKAGE, CONTENT_TYPE, encode(notice.event))

    def send_ivr_event(self, notice: IvrNotice) -> None:
        """Sends one msc-ivr <event> as a CONTROL."""
        self._send(ivr_codec.PACKAGE, ivr_codec.CONTENT_TYPE, ivr_codec.encode(notice.event))

    def _send(self, package: str, content_type: str, body: bytes) -> None:
        try:
            self._conn.control(package, content_type, body, self._loop.time())
        except LocalProtocolError as exc:
            log.info("event for %s not sent: %s", self.owner, exc)
            return
        self._flush()
        self._rearm()


class ControlServer:
    """The CFW listener of the media server; executes msc-mixer/1.0 on a :class:`MixerService`
    and msc-ivr/1.0 on an :class:`IvrService` (by default one over the mixer's backend)."""

    def __init__(
        self,
        service: MixerService,
        config: ControlServerConfig | None = None,
        *,
        ivr: IvrService | None = None,
    ) -> None:
        self.service = service
        self.ivr = ivr or IvrService(service.backend.connection_exists)
        self.channel_numbers = itertools.count(1)
        self.config = config or ControlServerConfig()
        self.cfw_config = CfwConfig(
            packages=self.config.packages,
            keep_alive=None,
            transaction_timeout=self.config.transaction_timeout,
            report_timeout=self.config.report_timeout,
            limits=self.config.limits,
        )
        self.channels: set[_Channel] = set()  # every TCP connection, synced or not
        self.open_channels: dict[str, _Channel] = {}  # owner -> its synced channel
        self._expected: dict[str, str] = {}  # cfw-id -> owner
        self._server: asyncio.Server | None = None

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> tuple[str, int]:
        """Starts listening; returns the (host, port) to put in the SDP answer."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Channel(self), self.config.host, self.config.port
        )
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        """The listening (host, port)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the control server is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def close(self) -> None:
        """Stops listening and drops every channel (the registry survives in the service)."""
        if self._server is not None:
            self._server.close()
            self.drop_channels()
            await self._server.wait_closed()
            self._server = None
        self.drop_channels()

    def drop_channels(self) -> None:
        """Resets every TCP connection at once (operator action; also how tests kill channels)."""
        for channel in list(self.channels):
            channel.abort()

    # ----------------------------------------------------------------- SIP side hooks
    def expect_channel(self, cfw_id: str, owner: str | None = None) -> None:
        """The SIP side negotiated ``cfw_id`` (RFC 6230 s4, COMEDIA): accept its SYNC.

        ``owner`` names the application server the channel acts for (default: the cfw-id);
        channels with the same owner share conferences and joins, so an application server
        re-establishing its channel under a new cfw-id keeps its mixers.
        """
        self._expected[cfw_id] = owner or cfw_id

    def answer_offer(
        self, offer_sdp: str | bytes | SessionDescription, *, owner: str | None = None
    ) -> str:
        """The SIP side got an INVITE for a control channel: expects its SYNC and returns the
        SDP answer (setup:passive, our listening address, a cfw-id of our own, s4.2).

        Raises :class:`~focus.sip.sdp.SdpError` (with the SIP status to answer) for an
        offer this listener cannot take: no cfw stream, TLS, or a passive offerer.
        """
        offer = parse_cfw_sdp(offer_sdp)
        if offer.rejected:
            raise SdpError("the offer rejects the control channel (port 0)", 488)
        if offer.proto != "TCP":
            raise SdpError(f"{offer.proto} control channels are not offered here", 488)
        host, port = self.address
        ours = secrets.token_hex(6)
        while ours == offer.cfw_id:
            ours = secrets.token_hex(6)
        answer = build_answer(
            offer, address=host, port=port, cfw_id=ours, session_id=secrets.randbits(31)
        )
        self.expect_channel(offer.cfw_id, owner)
        return answer

    def forget_channel(self, cfw_id: str) -> None:
        """The SIP dialog of ``cfw_id`` ended: refuse new SYNCs for it, close its channel."""
        self._expected.pop(cfw_id, None)
        for channel in list(self.channels):
            if channel.dialog_id == cfw_id:
                channel.abort(graceful=True)

    def owner_for(self, dialog_id: str) -> str | None:
        """The owner of a Dialog-ID, or None when its SYNC must be refused."""
        owner = self._expected.get(dialog_id)
        if owner is None and self.config.accept_any_dialog:
            return dialog_id
        return owner

    def connection_closed(self, connection_id: str) -> None:
        """The SIP side ended a media connection: its joins and IVR dialogs end and owners
        are notified."""
        self.deliver(self.service.connection_closed(connection_id))
        self.deliver_ivr(self.ivr.connection_closed(connection_id))

    def dtmf(self, connection_id: str, digit: str, when: datetime | None = None) -> None:
        """A participant pressed ``digit`` (RFC 4733): dialogs watching it are notified."""
        self.deliver_ivr(self.ivr.dtmf(connection_id, digit, when or datetime.now(UTC)))

    def active_talkers(
        self, conference_id: str, talkers: Iterable[str], *, paced: bool = False
    ) -> None:
        """The media plane reports active talkers; subscribed owners are notified.

        ``paced``: the media plane already keeps to the subscribed interval (the media engine
        does), so the service does not throttle again.
        """
        now = None if paced else asyncio.get_running_loop().time()
        self.deliver(self.service.active_talkers(conference_id, talkers, now))

    def on_media_event(self, event: object) -> None:
        """Routes a media engine event (``MediaEngine(on_event=...)``) to the package events:
        active talkers become <active-talkers-notify>, digits <dtmfnotify>, a silent leg
        <media-timeout> (for owners that asked); the others are for the SIP side."""
        from mediactrl.media.events import ActiveTalkers, DtmfReceived, EndpointTimedOut

        if isinstance(event, ActiveTalkers):
            self.active_talkers(event.conference_id, event.talkers, paced=True)
        elif isinstance(event, DtmfReceived):
            self.dtmf(event.endpoint_id, event.digit)
        elif isinstance(event, EndpointTimedOut):  # the media-timeout extension
            self.deliver(self.service.media_timed_out(event.endpoint_id, event.silent_for))

    def deliver(self, notices: Iterable[Notice]) -> None:
        """Sends events to the open channels of their owners; an absent owner misses them."""
        for notice in notices:
            channel = self.open_channels.get(notice.owner)
            if channel is None:
                log.info("no open channel for %s: event dropped", notice.owner)
                continue
            channel.send_event(notice)

    def deliver_ivr(self, notices: Iterable[IvrNotice]) -> None:
        """Sends IVR events on the channels that started their dialogs."""
        for notice in notices:
            channel = next((c for c in self.channels if c.key == notice.channel), None)
            if channel is None:
                log.info("channel %s is gone: IVR event dropped", notice.channel)
                continue
            channel.send_ivr_event(notice)
