"""The asyncio UDP/TCP/TLS adapter on real loopback sockets (RFC 3261 s18, RFC 3581).

The core under the transport here is a small answering core written for these tests (it
answers every request 200 and lets the test queue requests and deadlines); the transport,
parser and messages are the shipped ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from focus.sip.aio.transport import SipTransport, TransportConfig
from focus.sip.events import Transmit
from focus.sip.flow import Flow, TransportFailure, TransportKind
from focus.sip.message import Request, Response, make_response
from focus.sip.parser import ParserConfig, parse_message
from tests.focus.sip.conftest import TlsFiles

# --- a small answering core ---------------------------------------------------------------


class AnsweringCore:
    """Answers every request but ACK with 200; lets tests queue sends and deadlines."""

    def __init__(self) -> None:
        self.received: list[tuple[Request | Response, Flow]] = []
        self.failures: list[TransportFailure] = []
        self.deadlines: list[float] = []
        self.fired: list[float] = []
        self.answer = True
        self.out: list[Transmit] = []
        self.arrived = asyncio.Event()

    def receive_message(self, message: Request | Response, source: Flow, now: float) -> None:
        self.received.append((message, source))
        self.arrived.set()
        if self.answer and isinstance(message, Request) and message.method != "ACK":
            self.out.append(Transmit(make_response(message, 200, to_tag="t1"), source))

    def transport_failed(self, failure: TransportFailure, now: float) -> None:
        self.failures.append(failure)
        self.arrived.set()

    def handle_timer(self, now: float) -> None:
        due = [d for d in self.deadlines if d <= now]
        self.deadlines = [d for d in self.deadlines if d > now]
        self.fired.extend(due)
        self.arrived.set()

    def get_timer(self) -> float | None:
        return min(self.deadlines, default=None)

    def outgoing(self) -> list[Transmit]:
        out, self.out = self.out, []
        return out

    async def wait(self, count: int = 1, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) + len(self.failures) < count:
                self.arrived.clear()
                await self.arrived.wait()


def options(via_value: str, branch: str = "z9hG4bKt1", *, body: bytes = b"") -> bytes:
    return (
        f"OPTIONS sip:uas@127.0.0.1 SIP/2.0\r\n"
        f"Via: {via_value};branch={branch}\r\n"
        f"From: <sip:test@127.0.0.1>;tag=f1\r\n"
        f"To: <sip:uas@127.0.0.1>\r\n"
        f"Call-ID: {branch}@test\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def started(core: AnsweringCore, **overrides: object) -> SipTransport:
    base = TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    config = dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
    return await SipTransport.start(core, config)


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)


async def udp_client() -> tuple[asyncio.DatagramTransport, UdpClient, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
    port = int(transport.get_extra_info("sockname")[1])
    return transport, proto, port


# --- UDP ------------------------------------------------------------------------------------


async def test_udp_request_is_stamped_and_answered_at_its_source_port() -> None:
    core = AnsweringCore()
    sip = await started(core)
    client, proto, port = await udp_client()
    try:
        assert sip.local_udp is not None
        # sent-by names a port nobody listens on: the answer must go to the source (rport).
        client.sendto(options("SIP/2.0/UDP 127.0.0.1:9;rport"), sip.local_udp)
        reply = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        assert isinstance(reply, Response) and reply.status == 200
        top = reply.via[0]
        assert top.received == "127.0.0.1" and top.rport == port
        request, source = core.received[0]
        assert source == Flow(TransportKind.UDP, "127.0.0.1", port)
        assert isinstance(request, Request) and request.via[0].rport == port
    finally:
        client.close()
        await sip.close()


async def test_garbage_and_keepalives_are_dropped_and_the_transport_keeps_serving() -> None:
    core = AnsweringCore()
    sip = await started(core)
    client, proto, port = await udp_client()
    try:
        assert sip.local_udp is not None
        client.sendto(b"\r\n\r\n", sip.local_udp)
        client.sendto(b"NOT SIP AT ALL\x00\xff", sip.local_udp)
        client.sendto(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", sip.local_udp)
        client.sendto(options(f"SIP/2.0/UDP 127.0.0.1:{port}"), sip.local_udp)
        reply = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        assert isinstance(reply, Response) and reply.status == 200
        assert sip.stats.parse_errors >= 2
        assert len(core.received) == 1
    finally:
        client.close()
        await sip.close()


async def test_a_readable_bad_request_gets_the_parsers_status_statelessly() -> None:
    core = AnsweringCore()
    sip = await started(core)
    client, proto, port = await udp_client()
    try:
        assert sip.local_udp is not None
        truncated = options(f"SIP/2.0/UDP 127.0.0.1:{port}", body=b"0123456789")[:-4]
        for _ in range(2):  # a retransmission gets the same answer
            client.sendto(truncated, sip.local_udp)
        replies = [parse_message(await asyncio.wait_for(proto.queue.get(), 5)) for _ in "ab"]
        for reply in replies:
            assert isinstance(reply, Response) and reply.status == 400
            assert "Content-Length" in reply.reason
        assert replies[0].to.tag is not None and replies[0].to.tag == replies[1].to.tag
        assert core.received == []
    finally:
        client.close()
        await sip.close()


@pytest.mark.parametrize(
    ("header", "fault"),
    [
        ("To: <sip:uas@127.0.0.1", "To"),
        ("From: not a name-addr <", "From"),
        ("CSeq: one OPTIONS", "CSeq"),
    ],
)
async def test_unreadable_headers_get_a_400_naming_them(header: str, fault: str) -> None:
    core = AnsweringCore()
    sip = await started(core)
    client, proto, port = await udp_client()
    try:
        assert sip.local_udp is not None
        name = header.split(":", 1)[0]
        lines = [
            line if not line.startswith(f"{name}:") else header
            for line in options(f"SIP/2.0/UDP 127.0.0.1:{port}").decode().split("\r\n")
        ]
        client.sendto("\r\n".join(lines).encode(), sip.local_udp)
        # The reply echoes the broken header as it came, so it is checked as bytes.
        data = await asyncio.wait_for(proto.queue.get(), 5)
        status_line = data.split(b"\r\n", 1)[0].decode()
        assert status_line.startswith("SIP/2.0 400 ") and fault in status_line, status_line
        assert b"branch=z9hG4bKt1" in data
        assert core.received == []
    finally:
        client.close()
        await sip.close()


async def test_never_sends_to_broadcast_or_multicast() -> None:
    core = AnsweringCore()
    sip = await started(core)
    try:
        request = parse_message(options("SIP/2.0/UDP 127.0.0.1:5060"))
        for host in ("255.255.255.255", "224.0.0.1", "0.0.0.0"):
            core.out.append(Transmit(request, Flow(TransportKind.UDP, host, 5060)))
        sip.flush()
        assert [f.destination.host for f in core.failures if f.destination] == [
            "255.255.255.255",
            "224.0.0.1",
            "0.0.0.0",
        ]
        assert all("refusing" in f.reason for f in core.failures)
        assert sip.stats.sent == 0 and sip.stats.refused_destinations == 3
    finally:
        await sip.close()


async def test_response_with_multicast_maddr_is_refused_not_sent() -> None:
    core = AnsweringCore()
    sip = await started(core)
    client, proto, port = await udp_client()
    try:
        assert sip.local_udp is not None
        client.sendto(options(f"SIP/2.0/UDP 127.0.0.1:{port};maddr=224.0.1.75"), sip.local_udp)
        await core.wait(2)
        assert core.failures and "multicast" in core.failures[0].reason
        assert proto.queue.empty()
    finally:
        client.close()
        await sip.close()


# --- TCP ------------------------------------------------------------------------------------


async def read_message(reader: asyncio.StreamReader) -> Request | Response:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value)
    body = await reader.readexactly(length)
    return parse_message(head + body)


async def test_tcp_response_goes_back_over_the_same_connection() -> None:
    core = AnsweringCore()
    sip = await started(core)
    assert sip.local_tcp is not None
    reader, writer = await asyncio.open_connection(*sip.local_tcp)
    try:
        # Two requests in one segment, then one split across three writes.
        writer.write(
            options("SIP/2.0/TCP 127.0.0.1:9", "z9hG4bKa")
            + options("SIP/2.0/TCP 127.0.0.1:9", "z9hG4bKb")
        )
        third = options("SIP/2.0/TCP 127.0.0.1:9", "z9hG4bKc", body=b"hello")
        for chunk in (third[:10], third[10:-2], third[-2:]):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        branches = []
        for _ in range(3):
            reply = await read_message(reader)
            assert isinstance(reply, Response) and reply.status == 200
            branches.append(reply.via[0].branch)
        assert branches == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
        assert core.received[2][0].body == b"hello"
        assert sip.connection_count == 1
    finally:
        writer.close()
        await sip.close()


async def test_tcp_falls_back_to_a_new_connection_when_the_old_one_closed() -> None:
    core = AnsweringCore()
    core.answer = False
    sip = await started(core)
    assert sip.local_tcp is not None
    accepted: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    listener = await asyncio.start_server(on_client, "127.0.0.1", 0)
    back_port = listener.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection(*sip.local_tcp)
    try:
        writer.write(options(f"SIP/2.0/TCP 127.0.0.1:{back_port}"))
        await writer.drain()
        await core.wait(1)
        writer.close()
        await writer.wait_closed()
        request, source = core.received[0]
        assert isinstance(request, Request)
        for _ in range(100):  # let the transport see the close
            if sip.connection_count == 0:
                break
            await asyncio.sleep(0.01)
        core.out.append(Transmit(make_response(request, 200, to_tag="x"), source))
        sip.flush()
        head = await asyncio.wait_for(accepted.get(), 5)
        assert head.startswith(b"SIP/2.0 200 OK")
    finally:
        listener.close()
        await sip.close()


async def test_tcp_connections_are_reused_by_remote_address_and_closed_when_idle() -> None:
    core = AnsweringCore()
    core.answer = False
    sip = await started(core, tcp_idle_timeout=0.4)
    connections = 0
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                got.put_nowait(await reader.readuntil(b"\r\n\r\n"))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    listener = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        dest = Flow(TransportKind.TCP, "127.0.0.1", port)
        for branch in ("z9hG4bK1", "z9hG4bK2"):
            request = parse_message(options("SIP/2.0/TCP 127.0.0.1:5060", branch))
            core.out.append(Transmit(request, dest))
            sip.flush()
        for _ in range(2):
            await asyncio.wait_for(got.get(), 5)
        assert connections == 1 and sip.connection_count == 1
        # The one timer now covers the idle sweep; the connection goes after ~0.4 s idle.
        assert sip.timer_deadline is not None
        async with asyncio.timeout(5):
            while sip.connection_count:
                await asyncio.sleep(0.05)
        assert sip.stats.connections_closed_idle == 1
    finally:
        listener.close()
        await sip.close()


async def test_refused_tcp_connect_is_reported_to_the_core() -> None:
    core = AnsweringCore()
    sip = await started(core)
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead_port = probe.getsockname()[1]
        request = parse_message(options("SIP/2.0/TCP 127.0.0.1:5060"))
        core.out.append(Transmit(request, Flow(TransportKind.TCP, "127.0.0.1", dead_port)))
        sip.flush()
        await core.wait(1)
        assert core.failures[0].message is request
        assert sip.connection_count == 0
    finally:
        await sip.close()


# --- the one timer and shutdown -----------------------------------------------------------


async def test_one_timer_follows_the_core_deadline() -> None:
    core = AnsweringCore()
    sip = await started(core)
    loop = asyncio.get_running_loop()
    try:
        idle = sip.timer_deadline
        assert idle is None
        first = loop.time() + 0.05
        core.deadlines = [loop.time() + 30, first]
        sip.flush()
        assert sip.timer_deadline == first
        async with asyncio.timeout(5):
            while not core.fired:
                await asyncio.sleep(0.01)
        assert core.fired == [first]
        # Re-armed to the remaining deadline after firing.
        assert sip.timer_deadline == core.deadlines[0]
    finally:
        await sip.close()
    assert sip.timer_deadline is None


async def test_close_releases_ports_and_cancels_the_timer() -> None:
    core = AnsweringCore()
    sip = await started(core)
    assert sip.local_udp is not None and sip.local_tcp is not None
    udp_addr, tcp_addr = sip.local_udp, sip.local_tcp
    core.deadlines = [asyncio.get_running_loop().time() + 60]
    sip.flush()
    armed = sip.timer_deadline
    assert armed is not None
    await sip.close()
    assert sip.timer_deadline is None
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*tcp_addr)
    # The same ports can be bound again at once.
    again = await SipTransport.start(
        AnsweringCore(),
        TransportConfig(host="127.0.0.1", udp_port=udp_addr[1], tcp_port=tcp_addr[1]),
    )
    await again.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_udp_request_is_answered() -> None:
    core = AnsweringCore()
    sip = await SipTransport.start(core, TransportConfig(host="::1", udp_port=0, tcp_port=0))
    loop = asyncio.get_running_loop()
    client, proto = await loop.create_datagram_endpoint(UdpClient, local_addr=("::1", 0))
    port = int(client.get_extra_info("sockname")[1])
    try:
        assert sip.local_udp is not None and sip.local_udp[0] == "::1"
        client.sendto(options(f"SIP/2.0/UDP [::1]:{port};rport"), sip.local_udp)
        reply = parse_message(await asyncio.wait_for(proto.queue.get(), 5))
        assert isinstance(reply, Response) and reply.status == 200
        assert reply.via[0].rport == port
    finally:
        client.close()
        await sip.close()


async def test_inbound_connections_beyond_the_limit_are_closed() -> None:
    core = AnsweringCore()
    sip = await started(core, max_connections=1)
    assert sip.local_tcp is not None
    _, first = await asyncio.open_connection(*sip.local_tcp)
    second_reader, second = await asyncio.open_connection(*sip.local_tcp)
    try:
        assert await asyncio.wait_for(second_reader.read(), 5) == b""  # closed on us
        assert sip.stats.connections_refused == 1 and sip.connection_count == 1
    finally:
        first.close()
        second.close()
        await sip.close()


async def test_a_tcp_message_over_the_parser_limit_drops_the_connection() -> None:
    core = AnsweringCore()
    sip = await started(core, parser=ParserConfig(max_message_size=2000, max_body_size=1000))
    assert sip.local_tcp is not None
    reader, writer = await asyncio.open_connection(*sip.local_tcp)
    try:
        writer.write(options("SIP/2.0/TCP 127.0.0.1:9", body=b"x" * 5000))
        await writer.drain()
        # read() returns at EOF: the head was readable, so the request is answered 413 over
        # the connection, which is then closed (the body cannot be skipped safely).
        data = await asyncio.wait_for(reader.read(), 5)
        assert data.startswith(b"SIP/2.0 413 Request Entity Too Large\r\n")
        assert core.received == []
    finally:
        writer.close()
        await sip.close()


async def test_tls_request_is_answered_over_the_same_tls_connection(tls_files: TlsFiles) -> None:
    core = AnsweringCore()
    sip = await started(core, tls_port=0, tls_server=tls_files.server())
    assert sip.local_tls is not None
    reader, writer = await asyncio.open_connection(
        *sip.local_tls, ssl=tls_files.client(), server_hostname="127.0.0.1"
    )
    try:
        writer.write(options("SIP/2.0/TLS 127.0.0.1:9"))
        await writer.drain()
        reply = await read_message(reader)
        assert isinstance(reply, Response) and reply.status == 200
        assert core.received[0][1].transport is TransportKind.TLS
    finally:
        writer.close()
        await sip.close()


async def test_tls_connect_to_an_untrusted_server_is_a_transport_error(tls_files: TlsFiles) -> None:
    server_core = AnsweringCore()
    server = await started(server_core, tls_port=0, tls_server=tls_files.server())
    core = AnsweringCore()
    # Default client context: the system trust store does not know our self-signed cert.
    client = await started(core)
    try:
        assert server.local_tls is not None
        request = parse_message(options("SIP/2.0/TLS 127.0.0.1:5061"))
        core.out.append(Transmit(request, Flow(TransportKind.TLS, *server.local_tls)))
        client.flush()
        await core.wait(1)
        assert core.failures and "CERTIFICATE" in core.failures[0].reason.upper()
        assert server_core.received == []
    finally:
        await client.close()
        await server.close()
