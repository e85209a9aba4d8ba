"""Many conference-package subscribers speaking raw SIP over a few UDP sockets (each
also listening for TCP on the same port: RFC 3261 s18.1.1 sends a NOTIFY over 1300 bytes
over TCP to the UDP Contact's port; it is answered on that connection).

Each subscription is its own dialog (Call-ID, From-tag) on one of the sockets, so a
thousand of them cost a thousand small records, not a thousand user agents. NOTIFYs are
answered 200 at once, except by subscribers marked dead (they have stopped answering, as a
hung phone does); every NOTIFY's arrival time, CSeq, ``version`` and ``state`` attributes
and Subscription-State are kept. Used by the fan-out test and bench/notify/run.py.
Loopback only.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

_VERSION = re.compile(rb"<(?:[\w-]+:)?conference-info\b[^>]*?\sversion=\"(\d+)\"")
_STATE = re.compile(rb"<(?:[\w-]+:)?conference-info\b[^>]*?\sstate=\"(\w+)\"")

CONFERENCE_INFO = "application/conference-info+xml"


@dataclass(frozen=True, slots=True)
class Received:
    """One NOTIFY as a subscriber saw it (retransmissions are not counted twice)."""

    at: float  # loop time
    cseq: int
    version: int | None
    state: str | None  # the document's state attribute (full, partial, deleted)
    subscription_state: str
    size: int


@dataclass
class Sub:
    """One subscription dialog."""

    call_id: str
    from_tag: str
    socket: int
    status: int | None = None  # final response to the SUBSCRIBE
    expires: int | None = None
    notifies: list[Received] = field(default_factory=list)
    dead: bool = False  # stopped answering NOTIFYs
    unanswered: int = 0  # NOTIFY datagrams (retransmissions too) it left unanswered

    def version(self) -> int | None:
        return self.notifies[-1].version if self.notifies else None


def _headers(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    fields: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.strip().lower(), value.strip()))
    return lines[0], fields


def _first(fields: list[tuple[bytes, bytes]], *names: bytes) -> bytes:
    for name, value in fields:
        if name in names:
            return value
    return b""


def _answered(group: list[Sub]) -> bool:
    return all(s.status is not None and bool(s.notifies) for s in group)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, swarm: Swarm, index: int) -> None:
        self.swarm = swarm
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None
        self.server: asyncio.Server | None = None  # TCP on the same port
        self.streams: set[_Stream] = set()  # its accepted connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.swarm._received(data, functools.partial(transport.sendto, addr=addr))
        else:
            self.swarm._received(data, None)

    def error_received(self, exc: Exception) -> None:  # ICMP from loopback: nothing to do
        pass


def _same(endpoint: _Endpoint) -> _Endpoint:
    return endpoint


class _Stream(asyncio.Protocol):
    """One TCP connection from the focus: SIP messages framed by Content-Length."""

    def __init__(self, swarm: Swarm, endpoint: _Endpoint) -> None:
        self.swarm = swarm
        self.endpoint = endpoint
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.endpoint.streams.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.streams.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            self.buffer = self.buffer.lstrip(b"\r\n")  # keep-alives
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            _, fields = _headers(self.buffer[:end])
            length = _first(fields, b"content-length", b"l")
            size = end + 4 + (int(length) if length.isdigit() else 0)
            if len(self.buffer) < size:
                return
            message, self.buffer = self.buffer[:size], self.buffer[size:]
            transport = self.transport
            self.swarm._received(message, transport.write if transport is not None else None)


class Swarm:
    """Subscribers on ``sockets`` UDP sockets bound to 127.0.0.1 (use :meth:`open`)."""

    def __init__(self) -> None:
        self.endpoints: list[_Endpoint] = []
        self.subs: dict[str, Sub] = {}
        self.notify_count = 0  # distinct NOTIFYs
        self.notify_datagrams = 0  # retransmissions included
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, sockets: int = 4, rcvbuf: int | None = None) -> Swarm:
        """``rcvbuf``: ask for receive buffers this large (bytes), so a burst of NOTIFYs
        is not dropped by the kernel (capped by net.core.rmem_max)."""
        swarm = cls()
        for i in range(sockets):
            for _attempt in range(20):  # a free UDP port whose TCP twin is free too
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                if rcvbuf is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
                endpoint = _Endpoint(swarm, i)
                try:
                    server = await swarm._loop.create_server(
                        functools.partial(_Stream, swarm, endpoint), "127.0.0.1", port
                    )
                except OSError:
                    sock.close()
                    continue
                await swarm._loop.create_datagram_endpoint(
                    functools.partial(_same, endpoint), sock=sock
                )
                endpoint.server = server
                swarm.endpoints.append(endpoint)
                break
            else:
                raise OSError("no UDP port with a free TCP twin")
        return swarm

    def address(self, index: int) -> tuple[str, int]:
        transport = self.endpoints[index].transport
        assert transport is not None
        host, port = transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        for endpoint in self.endpoints:
            if endpoint.transport is not None:
                endpoint.transport.close()
            if endpoint.server is not None:
                endpoint.server.close()

    def close_socket(self, index: int) -> None:
        """That socket's subscribers vanish (their port now answers ICMP unreachable, a
        TCP connection is refused)."""
        endpoint = self.endpoints[index]
        if endpoint.transport is not None:
            endpoint.transport.close()
        if endpoint.server is not None:
            endpoint.server.close()
        for stream in list(endpoint.streams):
            if stream.transport is not None:
                stream.transport.abort()

    # ------------------------------------------------------------------ out

    def _subscribe_bytes(
        self,
        sub: Sub,
        target: str,
        host: str,
        port: int,
        cseq: int,
        accept: str,
        expires: int,
        to_tag: str | None,
    ) -> bytes:
        local_host, local_port = self.address(sub.socket)
        to = f"<{target}>" + (f";tag={to_tag}" if to_tag else "")
        return (
            f"SUBSCRIBE {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local_host}:{local_port};branch=z9hG4bK{secrets.token_hex(8)}"
            ";rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{sub.call_id[:12]}@{local_host}:{local_port}>;tag={sub.from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {sub.call_id}\r\n"
            f"CSeq: {cseq} SUBSCRIBE\r\n"
            f"Contact: <sip:s@{local_host}:{local_port}>\r\n"
            f"Event: conference\r\n"
            f"Accept: {accept}\r\n"
            f"Expires: {expires}\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()

    async def subscribe(
        self,
        host: str,
        port: int,
        user: str,
        count: int,
        *,
        accept: str = CONFERENCE_INFO,
        expires: int = 600,
        batch: int = 50,
        timeout: float = 20.0,
        socket: int | None = None,
    ) -> list[Sub]:
        """``count`` new subscriptions to sip:user@host:port, spread over the sockets, sent
        ``batch`` at a time (the same request retransmitted every 0.5 s, RFC 3261 Timer E
        style, until a final response; all on ``socket`` if given); returns them when each
        has its final response and its first NOTIFY."""
        target = f"sip:{user}@{host}:{port}"
        made: list[Sub] = []
        deadline = self._loop.time() + timeout
        for start in range(0, count, batch):
            group = []
            for i in range(start, min(count, start + batch)):
                sub = Sub(
                    call_id=secrets.token_hex(10),
                    from_tag=secrets.token_hex(4),
                    socket=i % len(self.endpoints) if socket is None else socket,
                )
                self.subs[sub.call_id] = sub
                group.append(sub)
            # Built once: a retransmission is the same request, Via branch included, so the
            # focus matches it to the first one's transaction (RFC 3261 s17.1.2, s17.2.3)
            # instead of making a second subscription of it.
            requests = {
                sub.call_id: self._subscribe_bytes(
                    sub, target, host, port, 1, accept, expires, None
                )
                for sub in group
            }
            while True:
                waiting = [s for s in group if s.status is None or not s.notifies]
                if not waiting:
                    break
                if self._loop.time() > deadline:
                    raise TimeoutError(f"{len(waiting)} SUBSCRIBEs unanswered")
                for sub in waiting:
                    if sub.status is None:
                        self._send(sub, requests[sub.call_id], (host, port))
                await self._wait(functools.partial(_answered, group), 0.5)
            made.extend(group)
        return made

    def _send(self, sub: Sub, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.endpoints[sub.socket].transport
        if transport is not None and not transport.is_closing():
            transport.sendto(data, addr)

    # ------------------------------------------------------------------ in

    def _received(self, data: bytes, reply: Callable[[bytes], object] | None) -> None:
        now = self._loop.time()
        head, _, body = data.partition(b"\r\n\r\n")
        start, fields = _headers(head)
        sub = self.subs.get(_first(fields, b"call-id", b"i").decode(errors="replace"))
        if sub is None:
            return
        if start.startswith(b"SIP/2.0 "):
            status = int(start.split()[1])
            if status >= 200 and sub.status is None:
                sub.status = status
                expires = _first(fields, b"expires")
                sub.expires = int(expires) if expires.isdigit() else None
                self._changed.set()
            return
        if not start.startswith(b"NOTIFY "):
            return
        self.notify_datagrams += 1
        if sub.dead:
            sub.unanswered += 1
            return
        cseq = int(_first(fields, b"cseq").split()[0] or b"0")
        if not sub.notifies or all(r.cseq != cseq for r in sub.notifies[-3:]):
            version = _VERSION.search(body)
            state = _STATE.search(body)
            sub.notifies.append(
                Received(
                    at=now,
                    cseq=cseq,
                    version=int(version.group(1)) if version else None,
                    state=state.group(1).decode() if state else None,
                    subscription_state=_first(fields, b"subscription-state").decode(),
                    size=len(data),
                )
            )
            self.notify_count += 1
            self._changed.set()
        answer = [b"SIP/2.0 200 OK"]
        answer += [b"Via: " + v for n, v in fields if n in (b"via", b"v")]
        for name, short in ((b"From", b"f"), (b"To", b"t"), (b"Call-ID", b"i"), (b"CSeq", b"")):
            answer.append(name + b": " + _first(fields, name.lower(), short))
        answer.append(b"Content-Length: 0\r\n\r\n")
        if reply is not None:
            reply(b"\r\n".join(answer))

    async def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = self._loop.time() + timeout
        while not done():
            left = deadline - self._loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return bool(done())
        return True

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Until ``done()`` (checked after each received message) or ``timeout`` s."""
        return await self._wait(done, timeout)
