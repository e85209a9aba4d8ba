"""A bare asyncio UDP answering machine: the floor the SIP stack is measured against.

It does only what ``sipp -sn uac`` needs (INVITE -> 200 with SDP, ACK absorbed, BYE -> 200,
anything else -> 200/501) by copying header lines, with no parser, transactions or dialogs.
It answers a retransmitted INVITE with the same To-tag (derived from the Call-ID), so it is
correct enough for the benchmark, and nothing more: it is a baseline, not a SIP stack.

Run: ``python -m bench.sip.bare_responder --listen 127.0.0.1:5070``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
from typing import cast

_COPIED = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")
_SDP = (
    b"v=0\r\no=bare 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def answer(datagram: bytes, local: bytes) -> bytes | None:
    """The response to one request datagram, or ``None`` (ACK, responses, garbage)."""
    head, _, _ = datagram.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or lines[0].startswith(b"SIP/2.0"):
        return None
    method = lines[0].split(b" ", 1)[0]
    if method == b"ACK":
        return None
    out = [
        b"SIP/2.0 200 OK"
        if method in (b"INVITE", b"BYE", b"OPTIONS")
        else b"SIP/2.0 501 Not Implemented"
    ]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key in _COPIED:
            tagged = line
            if key in (b"to", b"t") and b"tag=" not in value:
                # Same tag for every retransmission: derive it from the To value itself.
                tag = hashlib.blake2s(value, digest_size=6).hexdigest().encode()
                tagged = line + b";tag=" + tag
            out.append(tagged)
    body = b""
    if method == b"INVITE":
        out.append(b"Contact: <sip:bare@" + local + b">")
        out.append(b"Content-Type: application/sdp")
        body = _SDP
    out.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(out) + b"\r\n\r\n" + body


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, local: bytes) -> None:
        self.local = local
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = answer(data, self.local)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, (str(addr[0]), int(addr[1])))


async def serve(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    local = f"{host}:{port}".encode()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Responder(local), local_addr=(host, port)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"bare responder on {host}:{port}", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5070", help="HOST:PORT (UDP)")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve(host, int(port)))


if __name__ == "__main__":
    main()
