"""The media server's control side: a TCP listener for CFW channels (RFC 6230 s4-s6).

A thin asyncio adapter over :class:`~mediactrl.cfw.connection.CfwConnection` as the server
side: bytes read are fed to the connection, bytes it produces are written, and ONE
``loop.call_at`` timer per channel is armed from ``get_timer()``.  CONTROL bodies of
msc-mixer/1.0 go to the :class:`~mediactrl.server.mixer_service.MixerService`; the events it
produces go out as CONTROLs on the channel they are addressed to.  Bodies of msc-ivr/1.0
(RFC 6231, the DTMF part) go to the :class:`~mediactrl.server.ivr_service.IvrService`; its
events (<dtmfnotify>, <dialogexit>) go to the very connection that started the dialog, and a
connection's dialogs end with it.

Who owns what (RFC 6505 s7, RFC 6230 s12.3): a channel is named by its channel identifier,
the client's cfw-id of the SDP that is also the Dialog-ID of its SYNC, and "channels are the
same if they have the same identifier".  Mixers, joins and IVR dialogs belong to that
identifier, never to the SIP identity behind it: several channels of one application server
are as separate as channels of two.  A SYNC whose Dialog-ID is already open on another TCP
connection is the same channel coming back (the application server lost its connection):
the new connection takes over and the old one is closed; channels with other identifiers are
never touched.

A channel is accepted only for a cfw-id the SIP side negotiated in the COMEDIA set-up
(:meth:`ControlServer.answer_offer`, :meth:`ControlServer.expect_channel`); an unknown
Dialog-ID gets 481 (RFC 7058 s5.4).  The first negotiation *claims* the cfw-id for the SIP
identity that made it (From URI and source address, as the SIP side gives it) and the hosts
it may connect from; the claim outlives the SIP dialog while the identifier still owns
mixers, so that application server (and only it) can hand its channel over to a new dialog
with the same cfw-id.  The same cfw-id offered by another identity is refused with 403
(:class:`ChannelRefused`), and a SYNC from a host outside the claim gets 403.  With
``ControlServerConfig.accept_any_dialog`` (test mode) any Dialog-ID is accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
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

__all__ = ["ChannelRefused", "ControlServer", "ControlServerConfig"]

log = logging.getLogger(__name__)

_UNSPECIFIED = frozenset({"0.0.0.0", "::"})  # noqa: S104 -- a c= that names no host


@dataclass(frozen=True)
class ControlServerConfig:
    """Settings of the CFW listener.

    host, port: where to listen (port 0: any free port, see :attr:`ControlServer.port`).
    packages: control packages answered in SYNC (msc-mixer/1.0 and msc-ivr/1.0 are executed;
        leave msc-ivr/1.0 out to offer a mixer-only server).
    accept_any_dialog: test mode: accept a SYNC with any Dialog-ID, owned by that id.
    sync_timeout: seconds a new TCP connection has to complete its SYNC before it is closed
        (the framework itself waits forever; a listener must not).
    orphan_timeout: seconds a channel identifier may stay without a connection before its
        mixers are released (long enough for a reconnect and handover; an application server
        that restarted comes back under a new cfw-id and would leave them forever); None:
        keep them.
    transaction_timeout, report_timeout: as in :class:`~mediactrl.cfw.connection.CfwConfig`.
    limits: CFW parser limits.
    """

    host: str = "127.0.0.1"
    port: int = 0
    packages: tuple[str, ...] = (PACKAGE, ivr_codec.PACKAGE)
    accept_any_dialog: bool = False
    sync_timeout: float = 10.0
    orphan_timeout: float | None = 120.0
    transaction_timeout: float = 10.0
    report_timeout: int = 10
    limits: ParserLimits = field(default_factory=ParserLimits)


def _is_ip(host: str) -> bool:
    """Only an address can be compared with a TCP peer (a c= may name a host, RFC 4566)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ChannelRefused(Exception):
    """The SIP side must refuse this control-channel INVITE with ``status`` (the offerer's
    fault: e.g. 403, a cfw-id claimed by another SIP identity, RFC 6230 s12.3)."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class _Claim:
    """Who negotiated a cfw-id: the only identity that may negotiate it again."""

    identity: str | None  # None: announced locally (expect_channel without an identity)
    hosts: frozenset[str]  # where its TCP connections may come from; empty: anywhere
    dialogs: int = 0  # SIP dialogs currently negotiating the channel; SYNCs need one


class _Channel(asyncio.Protocol):
    """One accepted TCP connection carrying a CFW channel."""

    def __init__(self, server: ControlServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._conn = CfwConnection(Side.SERVER, server.cfw_config, now=self._loop.time())
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sync_deadline: float | None = self._loop.time() + server.config.sync_timeout
        self.dialog_id: str | None = None  # the channel identifier, once the SYNC is accepted
        self.key = f"ch{next(server.channel_numbers)}"  # names this connection to the IvrService

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
        if self.dialog_id is not None and self._server.open_channels.get(self.dialog_id) is self:
            del self._server.open_channels[self.dialog_id]
            self._server.orphaned(self.dialog_id)
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
            status = self._server.sync_verdict(event.dialog_id, self._peer_host())
            if status != 200:
                log.info("SYNC with Dialog-ID %s refused (%d)", event.dialog_id, status)
                self._conn.reject_sync(status)
                return
            if self._conn.accept_sync(now):
                self.dialog_id = event.dialog_id
        elif isinstance(event, SyncCompleted):
            assert self.dialog_id is not None
            self._sync_deadline = None
            previous = self._server.open_channels.get(self.dialog_id)
            self._server.open_channels[self.dialog_id] = self
            self._server.adopted(self.dialog_id)
            if previous is not None and previous is not self:
                # Same identifier, same channel (RFC 6505 s7): its old connection is stale.
                log.info("channel %s moved to a new connection", self.dialog_id)
                previous.abort()
        elif isinstance(event, ControlReceived):
            self._on_control(event, now)
        elif isinstance(event, TransactionTimedOut):
            log.warning("channel %s: %s %s timed out", self.dialog_id, event.method, event.trans_id)
        elif isinstance(event, BadMessageReceived):
            log.info("channel %s: refused a message: %s", self.dialog_id, event.reason)
            if self.dialog_id is None:
                # Not even a SYNC yet: this is no MEDIACTRL peer (RFC 7058 s5.4 closes too).
                self._conn.close()
        elif isinstance(event, ChannelClosed):
            log.info("channel %s closed: %s", self.dialog_id, event.reason)
        elif isinstance(event, ResponseReceived) and event.code != 200:
            log.info("channel %s: event %s answered %s", self.dialog_id, event.trans_id, event.code)

    def _peer_host(self) -> str | None:
        peer = self._transport.get_extra_info("peername") if self._transport else None
        return str(peer[0]) if peer else None

    def _on_control(self, event: ControlReceived, now: float) -> None:
        assert self.dialog_id is not None
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
        outcome = self._server.service.handle_body(self.dialog_id, event.body)
        if outcome.answer is None:
            self._conn.respond(event.trans_id, outcome.cfw_status)
        else:
            self._conn.respond(event.trans_id, 200, content_type=CONTENT_TYPE, body=outcome.body())
        self._server.deliver(outcome.notices)

    def _on_ivr_control(self, event: ControlReceived) -> None:
        assert self.dialog_id is not None
        content_type = (event.content_type or "").split(";")[0].strip()
        if content_type != ivr_codec.CONTENT_TYPE:
            self._conn.respond(event.trans_id, 400)
            return
        outcome = self._server.ivr.handle_body(self.dialog_id, self.key, event.body)
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
            log.info("event for %s not sent: %s", self.dialog_id, exc)
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
        self.open_channels: dict[str, _Channel] = {}  # channel identifier -> its connection
        self._claims: dict[str, _Claim] = {}  # cfw-id -> who negotiated it
        self._server: asyncio.Server | None = None
        self._orphans: dict[str, float] = {}  # channel identifier -> when its mixers go
        self._orphan_timer: asyncio.TimerHandle | None = None

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

    # ----------------------------------------------------------------- orphaned mixers
    def orphaned(self, dialog_id: str) -> None:
        """``dialog_id`` lost its last connection: its mixers wait ``orphan_timeout`` for it."""
        timeout = self.config.orphan_timeout
        if timeout is not None and self.service.holds(dialog_id):
            self._orphans[dialog_id] = asyncio.get_running_loop().time() + timeout
            self._rearm_orphans()

    def adopted(self, dialog_id: str) -> None:
        """``dialog_id`` has a connection again (handover): its mixers stay."""
        if self._orphans.pop(dialog_id, None) is not None:
            self._rearm_orphans()

    def _rearm_orphans(self) -> None:
        if self._orphan_timer is not None:
            self._orphan_timer.cancel()
            self._orphan_timer = None
        if self._orphans:
            due = min(self._orphans.values())
            self._orphan_timer = asyncio.get_running_loop().call_at(due, self._release_orphans)

    def _release_orphans(self) -> None:
        self._orphan_timer = None
        now = asyncio.get_running_loop().time()
        for dialog_id, due in list(self._orphans.items()):
            if due <= now:
                del self._orphans[dialog_id]
                log.info("channel %s did not come back: its mixers are released", dialog_id)
                self.deliver(self.service.release(dialog_id))
                claim = self._claims.get(dialog_id)
                if claim is not None and not claim.dialogs:
                    del self._claims[dialog_id]
        self._rearm_orphans()

    async def close(self) -> None:
        """Stops listening and drops every channel (the registry survives in the service)."""
        if self._server is not None:
            self._server.close()
            self.drop_channels()
            await self._server.wait_closed()
            self._server = None
        self.drop_channels()
        self._orphans.clear()
        self._rearm_orphans()

    def drop_channels(self) -> None:
        """Resets every TCP connection at once (operator action; also how tests kill channels)."""
        for channel in list(self.channels):
            channel.abort()

    # ----------------------------------------------------------------- SIP side hooks
    def expect_channel(
        self, cfw_id: str, identity: str | None = None, hosts: Iterable[str] = ()
    ) -> None:
        """A SIP dialog negotiated ``cfw_id`` (RFC 6230 s4, COMEDIA): accept its SYNC.

        ``identity`` is the SIP identity that negotiated it and ``hosts`` where its TCP
        connection may come from (empty: anywhere).  The first negotiation claims the cfw-id;
        raises :class:`ChannelRefused` (403) when another identity claimed it, so its mixers
        cannot be taken over by whoever saw the cfw-id in an SDP.  Each call counts one SIP
        dialog, ended by :meth:`forget_channel`.
        """
        claim = self._claims.get(cfw_id)
        if claim is not None and not claim.dialogs and not self.service.holds(cfw_id):
            del self._claims[cfw_id]  # its mixers went after its last dialog: free again
            claim = None
        if claim is not None and claim.identity != identity:
            raise ChannelRefused(f"cfw-id {cfw_id} belongs to another application server")
        if claim is None:
            claim = self._claims[cfw_id] = _Claim(identity, frozenset(hosts))
        claim.dialogs += 1

    def answer_offer(
        self,
        offer_sdp: str | bytes | SessionDescription,
        *,
        identity: str | None = None,
        source_host: str | None = None,
    ) -> str:
        """The SIP side got an INVITE for a control channel: expects its SYNC and returns the
        SDP answer (setup:passive, our listening address, a cfw-id of our own, s4.2).

        ``identity`` names the offerer (the SIP side passes its From URI and source address)
        and ``source_host`` where the INVITE came from; the channel's TCP connection must come
        from there or from the offer's c= address.  Raises :class:`~focus.sip.sdp.SdpError`
        (with the SIP status to answer) for an offer this listener cannot take: no cfw stream,
        TLS, or a passive offerer; :class:`ChannelRefused` (403) for a cfw-id another identity
        claimed.
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
        hosts = {h for h in (offer.address, source_host) if h is not None and _is_ip(h)}
        self.expect_channel(offer.cfw_id, identity, hosts - _UNSPECIFIED)
        return answer

    def forget_channel(self, cfw_id: str) -> None:
        """A SIP dialog of ``cfw_id`` ended; when it was the last one, refuse new SYNCs for it
        and close its channel.  The claim stays while the identifier owns mixers (handover)."""
        claim = self._claims.get(cfw_id)
        if claim is None:
            return
        claim.dialogs = max(claim.dialogs - 1, 0)
        if claim.dialogs:
            return  # the channel was handed over to a newer dialog
        if not self.service.holds(cfw_id):
            del self._claims[cfw_id]
        for channel in list(self.channels):
            if channel.dialog_id == cfw_id:
                channel.abort(graceful=True)

    def expects(self, dialog_id: str) -> bool:
        """True while a SIP dialog holds ``dialog_id`` (its SYNC would be accepted)."""
        claim = self._claims.get(dialog_id)
        return claim is not None and claim.dialogs > 0

    def sync_verdict(self, dialog_id: str, peer_host: str | None) -> int:
        """The answer to a SYNC for ``dialog_id`` from ``peer_host``: 200 to accept, 481 for
        an identifier no SIP dialog negotiated (RFC 7058 s5.4), 403 from a host outside its
        claim (RFC 6230 s12.3)."""
        claim = self._claims.get(dialog_id)
        if claim is None or not claim.dialogs:
            return 200 if self.config.accept_any_dialog else 481
        if claim.hosts and peer_host not in claim.hosts:
            return 403
        return 200

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
        """Sends events on the channels that own their mixers; a channel that is down (until
        it is handed over) misses them."""
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
