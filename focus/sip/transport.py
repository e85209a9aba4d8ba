"""asyncio UDP/TCP adapter for the sans-IO SIP stack (RFC 3261 s18, RFC 3581).

This is the only SIP module that touches sockets and the event loop. It

* receives datagrams (UDP) and byte streams (TCP, and TLS over TCP when configured, framed
  by Content-Length through the parser's ``StreamParser``), parses them, stamps
  ``received``/``rport`` into the top Via of requests (RFC 3261 s18.2.1, RFC 3581 s4) and
  hands each message to a sans-IO *core*
  (:class:`SipCore`, normally :class:`focus.sip.ua.UACore`);
* drains the core's outbox after every input and sends each message: requests to the
  destination the core names, responses routed by their top Via (:func:`response_destination`,
  RFC 3261 s18.2.2: over the same TCP connection if it is still open, else to
  ``received``/``rport`` for UDP, falling back to ``sent-by``);
* keeps TCP/TLS connections keyed by transport and remote address for reuse, and closes
  idle ones (through the same timer);
* arms exactly ONE ``loop.call_at`` timer, re-armed after every input to the earliest of the
  core's ``get_timer()`` and the next idle-connection sweep;
* never sends to broadcast, multicast or unspecified addresses (:func:`forbidden_destination`
  is checked before every ``sendto``/``connect``); such a send is reported to the core as a
  transport error (RFC 3261 s18.4) instead.

The core sees time only as the ``now`` argument (``loop.time()``), so it can be driven by a
fake clock in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import hashlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from focus.sip.errors import SipParseError
from focus.sip.events import Transmit
from focus.sip.headers import Via
from focus.sip.message import BrokenRequest, Request, Response, make_response
from focus.sip.parser import DEFAULT_CONFIG, ParserConfig, StreamParser, parse_message

__all__ = [
    "Flow",
    "Outgoing",
    "SipCore",
    "SipTransport",
    "TransportConfig",
    "TransportFailure",
    "TransportKind",
    "forbidden_destination",
    "response_destination",
    "stamp_via",
]

log = logging.getLogger(__name__)

Message = Request | Response


class TransportKind(enum.StrEnum):
    """Transport protocols of a Via sent-protocol (RFC 3261 s18, s20.42)."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"  # TLS over TCP (RFC 3261 s26.2)

    @property
    def reliable(self) -> bool:
        """RFC 3261 s17.1.1.2: reliable transports switch off retransmission timers."""
        return self is not TransportKind.UDP

    @property
    def default_port(self) -> int:
        """RFC 3261 s19.1.2: 5060 for UDP/TCP, 5061 for TLS."""
        return 5061 if self is TransportKind.TLS else 5060


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from (or must go to).

    ``connection`` identifies the TCP connection a request arrived on, so that its responses
    go back over it (RFC 3261 s18.2.2); it is ``None`` for UDP and for destinations that are
    not bound to a connection yet.
    """

    transport: TransportKind
    host: str
    port: int
    connection: int | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


#: One message the core wants on the wire (the transaction layer's ``Transmit``):
#: ``destination`` is mandatory for requests (the next hop the core resolved); for responses it
#: is the flow the request came in on, which only contributes its TCP connection -- the
#: address is taken from the top Via (:func:`response_destination`).
Outgoing = Transmit


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """A message could not be sent (RFC 3261 s18.4); ``reason`` says why, for logs."""

    message: Message
    destination: Flow | None
    reason: str


class SipCore(Protocol):
    """What the transport drives: a sans-IO SIP core (transactions, dialogs, the UA).

    All methods are synchronous and take ``now`` (the event loop's monotonic clock). After
    each call the transport drains :meth:`outgoing` and re-arms its timer to
    :meth:`get_timer`.
    """

    def receive_message(self, message: Message, source: Flow, now: float) -> None:
        """A parsed message arrived; for requests the top Via is already stamped."""

    def transport_failed(self, failure: TransportFailure, now: float) -> None:
        """A send failed (unreachable, forbidden destination, connection refused...)."""

    def handle_timer(self, now: float) -> None:
        """The deadline returned by :meth:`get_timer` has passed."""

    def get_timer(self) -> float | None:
        """The next deadline (loop clock), or ``None`` if nothing is pending."""

    def outgoing(self) -> list[Outgoing]:
        """Messages to send now; the list is handed over (the core forgets them)."""


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Listening addresses and limits of a :class:`SipTransport`.

    host: the address to bind (and to put in Via sent-by / Contact); a literal IP.
    udp_port / tcp_port: ports to bind; 0 picks a free one; ``None`` disables that transport.
        RFC 3261 s18.2.1 wants TCP wherever UDP listens, so both default on.
    tcp_idle_timeout: seconds without traffic after which a TCP connection is closed. It must
        outlive a transaction (64*T1 = 32 s by default) so responses can reuse the connection.
    tcp_connect_timeout: bound on opening an outgoing connection.
    parser: limits for incoming messages (size, header count...), see
        :class:`focus.sip.parser.ParserConfig`; on TCP a message beyond them breaks the framing
        and the connection is dropped (a peer sending an endless body must not eat memory).
    max_connections: cap on simultaneous TCP/TLS connections; inbound ones beyond it are
        closed at once, outbound sends beyond it fail as transport errors.
    tls_port: port for TLS over TCP (0 picks a free one); ``None`` (default) disables TLS.
    tls_server: the certificate context for accepting TLS (required with ``tls_port``).
    tls_client: the context for opening TLS connections (verifying the peer); default: the
        system's trust store with host name checking (IP literals are checked against the
        certificate's IP subjectAltName).
    """

    host: str = "127.0.0.1"
    udp_port: int | None = 5060
    tcp_port: int | None = 5060
    tcp_idle_timeout: float = 64.0
    tcp_connect_timeout: float = 5.0
    parser: ParserConfig = DEFAULT_CONFIG
    max_connections: int = 1024
    tls_port: int | None = None
    tls_server: ssl.SSLContext | None = None
    tls_client: ssl.SSLContext | None = None


# --- pure helpers (no I/O) ----------------------------------------------------------------


def forbidden_destination(host: str) -> str | None:
    """Why we refuse to send to ``host``, or ``None`` if it is an acceptable unicast address.

    The stack never sends to broadcast, multicast or unspecified addresses: a hostile Via or
    maddr could otherwise turn us into an amplifier. ``host`` must be a literal IP (name
    resolution happens before this check).
    """
    addr = _ip(host)
    if addr is None:
        return f"not an IP literal: {host!r}"
    if addr.is_multicast:
        return f"multicast address {addr}"
    if addr.is_unspecified:
        return f"unspecified address {addr}"
    if isinstance(addr, ipaddress.IPv4Address) and (
        addr == ipaddress.IPv4Address("255.255.255.255") or int(addr) & 0xFF == 0xFF
    ):
        # Without interface netmasks we cannot know every subnet's broadcast address; refusing
        # every x.x.x.255 is the conservative choice (no SIP peer of ours lives there).
        return f"broadcast address {addr}"
    return None


@functools.lru_cache(maxsize=4096)
def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: every message parses one or two addresses, and peers are few (bounded anyway).
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def stamp_via(via: Via, source_host: str, source_port: int) -> Via:
    """The top Via of a received request with ``received``/``rport`` filled in.

    RFC 3261 s18.2.1: add ``received`` when sent-by is a name or differs from the packet's
    source. RFC 3581 s4: if ``rport`` is present without a value, set it to the source port
    and then always add ``received``.
    """
    params = via.params
    wants_rport = "rport" in params and not params["rport"]
    if wants_rport:
        params = params.set("rport", str(source_port))
    sent_by = _ip(via.host)
    if wants_rport or sent_by is None or sent_by != _ip(source_host):
        params = params.set("received", source_host)
    if params is via.params:
        return via
    return dataclasses.replace(via, params=params)


def _transport_of(via: Via) -> TransportKind:
    try:
        return TransportKind(via.transport.upper())
    except ValueError:
        # TLS/SCTP/WS are not served; answering over UDP is the least surprising fallback.
        return TransportKind.UDP


def _port(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < 65536 else None


def response_destination(via: Via, arrived_on: Flow | None) -> Flow:
    """Where a response goes, from its top Via (RFC 3261 s18.2.2, RFC 3581 s4).

    For TCP the connection the request came in on is kept in the returned flow (the sender
    uses it while it is still open); the address is the fallback for a new connection:
    ``received`` (if any) with the sent-by port. For UDP: ``maddr`` if present (port from
    sent-by, else 5060), else ``received`` with ``rport`` (RFC 3581) or the sent-by port,
    else sent-by itself. Names are returned as they are: the sender resolves or refuses them.
    """
    # The transport the request really came over wins over what its Via claims: the peer
    # demonstrably uses it, and a UDP request claiming TCP must not make us open connections.
    kind = arrived_on.transport if arrived_on is not None else _transport_of(via)
    params = via.params
    sent_port = via.port if via.port is not None else _transport_of(via).default_port
    received = params.get("received") or None
    if kind.reliable:
        host = received or via.host
        connection = arrived_on.connection if arrived_on is not None else None
        return Flow(kind, host.strip("[]"), sent_port, connection)
    maddr = params.get("maddr") or None
    if maddr:
        return Flow(kind, maddr.strip("[]"), sent_port)
    if received:
        port = _port(params.get("rport")) or sent_port
        return Flow(kind, received.strip("[]"), port)
    return Flow(kind, via.host.strip("[]"), sent_port)


# --- asyncio plumbing ---------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._owner._datagram(data, str(addr[0]), int(addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) surface here without saying which send caused
        # them; RFC 3261 s18.4 lets us treat them as a transport error we cannot attribute.
        log.debug("UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    """One TCP connection (inbound or outbound), framed by the parser's StreamParser."""

    def __init__(
        self,
        owner: SipTransport,
        ident: int,
        key: tuple[str, int],
        kind: TransportKind = TransportKind.TCP,
    ) -> None:
        self._owner = owner
        self.ident = ident
        self.key = key
        self.kind = kind
        self.transport: asyncio.Transport | None = None
        self.parser = StreamParser(owner.config.parser)
        self.refused = False  # accepted over the connection limit: closed at once
        self.pending: list[tuple[Message, Flow]] = []  # queued while connecting
        self.last_activity = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.refused:
            transport.close()
            return
        self.last_activity = self._owner._loop.time()
        with contextlib.suppress(OSError):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending, self.pending = self.pending, []
        for message, dest in pending:
            self.write(message, dest)

    def data_received(self, data: bytes) -> None:
        self._owner._stream_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._owner._connection_closed(self, exc)

    def write(self, message: Message, dest: Flow) -> None:
        if self.transport is None:
            self.pending.append((message, dest))
            return
        self.transport.write(message.to_bytes())
        self.last_activity = self._owner._loop.time()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


@dataclass(slots=True)
class _Stats:
    received: int = 0
    sent: int = 0
    parse_errors: int = 0
    send_failures: int = 0
    refused_destinations: int = 0
    connections_opened: int = 0
    connections_closed_idle: int = 0
    connections_refused: int = 0


class SipTransport:
    """The asyncio adapter: sockets + one timer around a sans-IO :class:`SipCore`.

    Use ``await SipTransport.start(core, config)``; then :meth:`flush` after driving the core
    from outside (e.g. a UA API call that queued a request), and ``await close()``.
    """

    def __init__(
        self, core: SipCore, config: TransportConfig, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.core = core
        self.config = config
        self._loop = loop
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_sock: socket.socket | None = None
        self._tcp_server: asyncio.Server | None = None
        self._connections: dict[int, _TcpConnection] = {}
        # Reusable connections by (transport, remote host, remote port).
        self._by_address: dict[tuple[TransportKind, str, int], _TcpConnection] = {}
        self._next_ident = 1
        self._connect_tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._next_sweep: float | None = None
        self._closing = False
        self._in_pump = False
        self.stats = _Stats()
        self.local_udp: tuple[str, int] | None = None
        self.local_tcp: tuple[str, int] | None = None
        self.local_tls: tuple[str, int] | None = None
        self._tls_server: asyncio.Server | None = None
        self.on_error: Callable[[BaseException], None] | None = None

    @classmethod
    async def start(cls, core: SipCore, config: TransportConfig) -> SipTransport:
        """Bind the configured sockets and start serving."""
        loop = asyncio.get_running_loop()
        self = cls(core, config, loop)
        try:
            if config.udp_port is not None:
                # Our own socket object: sendto on it reports errors (unreachable network,
                # EACCES...) synchronously, so they can be tied to the message (s18.4);
                # asyncio's transport.sendto would only hand them to error_received.
                family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.setblocking(False)
                    sock.bind((config.host, config.udp_port))
                except OSError:
                    sock.close()
                    raise
                udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
                self._udp = udp
                self._udp_sock = sock
                sockname = udp.get_extra_info("sockname")
                self.local_udp = (str(sockname[0]), int(sockname[1]))
            if config.tcp_port is not None:
                tcp_port = config.tcp_port
                if tcp_port == 0 and self.local_udp is not None:
                    # Same port for both where possible (RFC 3261 s18.2.1); fall back to any.
                    tcp_port = self.local_udp[1]
                try:
                    server = await loop.create_server(
                        self._accept, config.host, tcp_port, reuse_address=True
                    )
                except OSError:
                    if config.tcp_port != 0:
                        raise
                    server = await loop.create_server(
                        self._accept, config.host, 0, reuse_address=True
                    )
                self._tcp_server = server
                sockname = server.sockets[0].getsockname()
                self.local_tcp = (str(sockname[0]), int(sockname[1]))
            if config.tls_port is not None:
                if config.tls_server is None:
                    raise ValueError("tls_port needs tls_server (a certificate context)")
                tls = await loop.create_server(
                    lambda: self._accept(TransportKind.TLS),
                    config.host,
                    config.tls_port,
                    reuse_address=True,
                    ssl=config.tls_server,
                )
                self._tls_server = tls
                sockname = tls.sockets[0].getsockname()
                self.local_tls = (str(sockname[0]), int(sockname[1]))
        except BaseException:
            await self.close()
            raise
        self._rearm()
        return self

    # -- inputs ------------------------------------------------------------------------

    def _accept(self, kind: TransportKind = TransportKind.TCP) -> _TcpConnection:
        ident = self._next_ident
        self._next_ident += 1
        conn = _TcpConnection(self, ident, ("", 0), kind)
        if len(self._connections) >= self.config.max_connections:
            conn.refused = True
            self.stats.connections_refused += 1
            return conn
        self._connections[ident] = conn
        self.stats.connections_opened += 1
        return conn

    def _datagram(self, data: bytes, host: str, port: int) -> None:
        if data.strip(b"\r\n") == b"":
            return  # RFC 5626 keep-alive ping; nothing to do
        source = Flow(TransportKind.UDP, host, port)
        try:
            message = parse_message(data, self.config.parser)
        except SipParseError as exc:
            self._rejected(exc, source)
            return
        self._deliver(message, source)

    def _stream_data(self, conn: _TcpConnection, data: bytes) -> None:
        assert conn.transport is not None
        conn.last_activity = self._loop.time()
        if conn.key == ("", 0):
            peer = conn.transport.get_extra_info("peername")
            conn.key = (str(peer[0]), int(peer[1]))
            self._by_address.setdefault((conn.kind, *conn.key), conn)
        source = Flow(conn.kind, conn.key[0], conn.key[1], conn.ident)
        conn.parser.receive_data(data)
        while not conn.closed:
            try:
                message = conn.parser.next_message()
            except SipParseError as exc:
                self._rejected(exc, source)
                if conn.parser.broken:
                    # A stream that lost its framing cannot be resynchronised (RFC 4475
                    # s3.1.2.3): drop the connection.
                    log.info("closing TCP connection from %s:%d: %s", *conn.key, exc)
                    conn.close()
                    return
                continue
            if message is None:
                return
            self._deliver(message, source)

    def _rejected(self, exc: SipParseError, source: Flow) -> None:
        """Answer an unparseable request statelessly when it can be answered at all.

        RFC 3261 s18.3/s8.2: a bad request gets the error the parser names (400, 413, 416,
        505, 513...) if Via, From, To, Call-ID and CSeq could be read; bad responses and
        unreadable requests are dropped (s18.1.2).
        """
        self.stats.parse_errors += 1
        bad = exc.message
        log.info("bad message from %s:%d: %s", source.host, source.port, exc)
        # A request whose Request-Line is broken (BrokenRequest) is answered too, as RFC 4475
        # s3.1.2.11/12 ask; a response, or an ACK, never is.
        if not isinstance(bad, Request | BrokenRequest) or bad.method.upper() == "ACK":
            return
        try:
            top = bad.headers.via[0]
            bad.headers.replace_top_via(stamp_via(top, source.host, source.port))
        except (SipParseError, IndexError):
            return  # no usable Via: nowhere to answer
        try:
            response = make_response(bad, exc.status, exc.reason, to_tag=_stateless_tag(bad))
        except SipParseError:
            # The To itself is broken, so it cannot take a tag: echo it as it came, which
            # still ends the peer's transaction (better than silence and retransmissions).
            response = make_response(bad, exc.status, exc.reason)
        self._send(Outgoing(response, source))

    def _deliver(self, message: Message, source: Flow) -> None:
        self.stats.received += 1
        if isinstance(message, Request):
            try:
                top = message.headers.via[0]
            except (SipParseError, IndexError):
                self.stats.parse_errors += 1
                return  # no usable Via: nowhere to answer (RFC 3261 s8.1.1.7, s18.2.2)
            stamped = stamp_via(top, source.host, source.port)
            if stamped is not top:
                message.headers.replace_top_via(stamped)
        self._guard(self.core.receive_message, message, source, self._loop.time())
        self._pump()

    def _connection_closed(self, conn: _TcpConnection, exc: Exception | None) -> None:
        self._connections.pop(conn.ident, None)
        if self._by_address.get((conn.kind, *conn.key)) is conn:
            del self._by_address[(conn.kind, *conn.key)]
        for message, dest in conn.pending:
            self._fail(message, dest, f"connection to {conn.key} lost: {exc}")
        conn.pending.clear()
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = None
        now = self._loop.time()
        if self._next_sweep is not None and now >= self._next_sweep:
            self._sweep_idle(now)
        deadline = self.core.get_timer()
        if deadline is not None and deadline <= now:
            self._guard(self.core.handle_timer, now)
        self._pump()

    # -- outputs -----------------------------------------------------------------------

    def flush(self) -> None:
        """Send whatever the core queued and re-arm the timer (call after driving the core)."""
        self._pump()

    def _pump(self) -> None:
        if self._in_pump or self._closing:
            return
        self._in_pump = True
        try:
            while True:
                batch = self.core.outgoing()
                if not batch:
                    break
                for out in batch:
                    self._send(out)
        finally:
            self._in_pump = False
        self._rearm()

    def _send(self, out: Outgoing) -> None:
        message = out.message
        dest = out.destination
        if isinstance(message, Response):
            # Responses are routed by their top Via (s18.2.2); the flow the request came in
            # on only contributes its TCP connection.
            vias = _vias(message)
            if not vias:
                self._fail(message, dest, "response without a usable Via")
                return
            dest = response_destination(vias[0], dest)
        elif dest is None:
            self._fail(message, None, "request without destination")
            return
        reason = forbidden_destination(dest.host)
        if reason is not None:
            self.stats.refused_destinations += 1
            self._fail(message, dest, f"refusing to send: {reason}")
            return
        if dest.transport is TransportKind.UDP:
            self._send_udp(message, dest)
        else:
            self._send_stream(message, dest)

    def _send_udp(self, message: Message, dest: Flow) -> None:
        if self._udp is None:
            self._fail(message, dest, "UDP is not enabled")
            return
        data = message.to_bytes()
        try:
            # Bypass asyncio only while it has nothing queued, so datagrams keep their order
            # (the selector transport has get_write_buffer_size; typeshed does not say so).
            queued = getattr(self._udp, "get_write_buffer_size", lambda: 0)()
            if self._udp_sock is not None and queued == 0:
                self._udp_sock.sendto(data, dest.address)
            else:
                self._udp.sendto(data, dest.address)
        except BlockingIOError:
            self._udp.sendto(data, dest.address)  # kernel buffer full: let asyncio queue it
        except OSError as exc:
            self._fail(message, dest, str(exc))
            return
        self.stats.sent += 1

    def _send_stream(self, message: Message, dest: Flow) -> None:
        conn: _TcpConnection | None = None
        if dest.connection is not None:
            conn = self._connections.get(dest.connection)
            if conn is not None and conn.kind is not dest.transport:
                conn = None
        if conn is None or conn.closed:
            conn = self._by_address.get((dest.transport, *dest.address))
        if conn is None or conn.closed:
            if len(self._connections) >= self.config.max_connections:
                self._fail(message, dest, f"too many {dest.transport} connections")
                return
            conn = self._open(dest)
        conn.write(message, dest)
        self.stats.sent += 1

    def _open(self, dest: Flow) -> _TcpConnection:
        ident = self._next_ident
        self._next_ident += 1
        conn = _TcpConnection(self, ident, dest.address, dest.transport)
        conn.last_activity = self._loop.time()
        self._connections[ident] = conn
        self._by_address[(dest.transport, *dest.address)] = conn
        self.stats.connections_opened += 1
        context: ssl.SSLContext | None = None
        if dest.transport is TransportKind.TLS:
            context = self.config.tls_client or ssl.create_default_context()

        async def connect() -> None:
            try:
                await asyncio.wait_for(
                    self._loop.create_connection(
                        lambda: conn,
                        dest.host,
                        dest.port,
                        ssl=context,
                        server_hostname=dest.host if context is not None else None,
                    ),
                    self.config.tcp_connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                conn.closed = True
                self._connection_closed(conn, exc)

        task = self._loop.create_task(connect())
        self._connect_tasks.add(task)
        task.add_done_callback(self._connect_tasks.discard)
        return conn

    def _fail(self, message: Message, dest: Flow | None, reason: str) -> None:
        self.stats.send_failures += 1
        log.info("send of %s to %s failed: %s", _describe(message), dest, reason)
        self._guard(
            self.core.transport_failed, TransportFailure(message, dest, reason), self._loop.time()
        )

    # -- the one timer -----------------------------------------------------------------

    def _rearm(self) -> None:
        if self._closing:
            return
        deadline = self.core.get_timer()
        if self._connections:
            if self._next_sweep is None:
                self._next_sweep = self._loop.time() + self.config.tcp_idle_timeout / 4
            deadline = self._next_sweep if deadline is None else min(deadline, self._next_sweep)
        else:
            self._next_sweep = None
        if deadline == self._timer_when:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _sweep_idle(self, now: float) -> None:
        self._next_sweep = None
        limit = now - self.config.tcp_idle_timeout
        for conn in list(self._connections.values()):
            if conn.last_activity <= limit and not conn.pending:
                self.stats.connections_closed_idle += 1
                conn.close()

    @property
    def timer_deadline(self) -> float | None:
        """When the one timer fires (loop clock), for tests and diagnostics."""
        return self._timer_when

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def _guard(self, fn: Callable[..., None], *args: object) -> None:
        # A bug in the core must not kill the socket callbacks; it is logged and reported.
        try:
            fn(*args)
        except Exception as exc:
            log.exception("SIP core failed")
            if self.on_error is not None:
                self.on_error(exc)

    # -- shutdown ----------------------------------------------------------------------

    async def close(self) -> None:
        """Close every socket, cancel the timer and pending connects."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_when = None
        for task in list(self._connect_tasks):
            task.cancel()
        if self._connect_tasks:
            await asyncio.gather(*self._connect_tasks, return_exceptions=True)
        for conn in list(self._connections.values()):
            conn.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
            self._udp_sock = None
        for server in (self._tcp_server, self._tls_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        self._tcp_server = self._tls_server = None
        # Let connection_lost callbacks run before the loop goes away.
        await asyncio.sleep(0)


def _stateless_tag(request: Request | BrokenRequest) -> str:
    # A retransmitted bad request must get the same To-tag (RFC 3261 s8.2.6.2).
    seed = f"{request.headers.get('Call-ID')}|{request.headers.get('From')}"
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


def _vias(message: Message) -> list[Via]:
    try:
        return message.headers.via
    except SipParseError:
        return []


def _describe(message: Message) -> str:
    if isinstance(message, Request):
        return f"{message.method} request"
    return f"{message.status} response"
