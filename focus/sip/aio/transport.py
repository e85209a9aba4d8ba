"""asyncio UDP/TCP/TLS adapter for the sans-IO SIP stack (RFC 3261 s18, RFC 3581).

With :mod:`focus.sip.aio.ua`, the only SIP module that touches sockets and the event loop;
the routing rules it applies are the pure :mod:`focus.sip.flow`. It

* receives datagrams (UDP) and byte streams (TCP, and TLS over TCP when configured, framed
  by Content-Length through the parser's ``StreamParser``), parses them, stamps
  ``received``/``rport`` into the top Via of requests (RFC 3261 s18.2.1, RFC 3581 s4) and
  hands each message to a sans-IO *core*
  (:class:`focus.sip.flow.SipCore`, normally :class:`focus.sip.uacore.UACore`);
* drains the core's outbox after every input and sends each message: requests to the
  destination the core names, responses routed by their top Via (:func:`response_destination`,
  RFC 3261 s18.2.2: over the same TCP connection if it is still open, else to
  ``received``/``rport`` for UDP, falling back to ``sent-by``);
* keeps TCP/TLS connections keyed by transport and remote address for reuse, and closes
  idle ones (through the same timer);
* arms exactly ONE ``loop.call_at`` timer, re-armed after every input to the earliest of the
  core's ``get_timer()``, the next idle-connection sweep and, while someone listens
  (:attr:`SipTransport.on_lag`), the next event-loop lag probe: how late that timer fires
  is the loop's lag, the overload gate's measure of how busy the process is;
* never sends to broadcast, multicast or unspecified addresses (:func:`forbidden_destination`
  is checked before every ``sendto``/``connect``); such a send is reported to the core as a
  transport error (RFC 3261 s18.4) instead.

The core sees time only as the ``now`` argument (``loop.time()``), so it can be driven by a
fake clock in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from focus.sip.errors import SipParseError
from focus.sip.events import Transmit
from focus.sip.flow import (
    Flow,
    SipCore,
    TransportFailure,
    TransportKind,
    forbidden_destination,
    response_destination,
    stamp_via,
    stateless_rejection,
)
from focus.sip.headers import Via
from focus.sip.message import Request, Response
from focus.sip.parser import DEFAULT_CONFIG, ParserConfig, StreamParser, parse_message
from focus.sip.uri import redacted

__all__ = ["SipTransport", "TransportConfig"]

log = logging.getLogger(__name__)

#: A SIP URI quoted in a parse error (the parser quotes the offending line).
_QUOTED_URI = re.compile(r"sips?:[^\s'\"<>,]+", re.IGNORECASE)


def _loggable(exc: SipParseError) -> str:
    """A parse error for the log, every SIP URI in it redacted: the raw line it quotes
    may carry a conference password (``;password=``, issue 10)."""
    return _QUOTED_URI.sub(lambda m: redacted(m.group(0)), str(exc))


Message = Request | Response


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
        #: told ``(lag, now)`` each time the timer fires: how many seconds late it ran
        self.on_lag: Callable[[float, float], None] | None = None
        #: seconds between lag probes while ``on_lag`` is set
        self.lag_probe_interval = 0.1
        self._next_probe: float | None = None

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
                    log.info("closing TCP connection from %s:%d: %s", *conn.key, _loggable(exc))
                    conn.close()
                    return
                continue
            if message is None:
                return
            self._deliver(message, source)

    def _rejected(self, exc: SipParseError, source: Flow) -> None:
        """Answer an unparseable request statelessly when it can be answered at all
        (:func:`focus.sip.flow.stateless_rejection`)."""
        self.stats.parse_errors += 1
        log.info("bad message from %s:%d: %s", source.host, source.port, _loggable(exc))
        response = stateless_rejection(exc, source)
        if response is not None:
            self._send(Transmit(response, source))

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
        now = self._loop.time()
        if self.on_lag is not None and self._timer_when is not None:
            self._guard(self.on_lag, max(0.0, now - self._timer_when), now)
        self._timer = None
        self._timer_when = None
        if self._next_probe is not None and now >= self._next_probe:
            self._next_probe = None
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

    def _send(self, out: Transmit) -> None:
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
        if self.on_lag is not None:
            if self._next_probe is None:
                self._next_probe = self._loop.time() + self.lag_probe_interval
            deadline = self._next_probe if deadline is None else min(deadline, self._next_probe)
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


def _vias(message: Message) -> list[Via]:
    try:
        return message.headers.via
    except SipParseError:
        return []


def _describe(message: Message) -> str:
    if isinstance(message, Request):
        return f"{message.method} request"
    return f"{message.status} response"
