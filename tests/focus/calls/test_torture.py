"""The RFC 4475 torture messages sent to the running focus leave it answering calls."""

from __future__ import annotations

import asyncio
import socket

from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "rfc4475"


async def test_rfc4475_messages_then_a_call(focus: Focus, phones: PhoneFactory) -> None:
    messages = sorted(VECTORS.glob("*.dat"))
    assert len(messages) > 40
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for path in messages:
            sock.sendto(path.read_bytes()[:65000], (focus.host, focus.port))
        # And once more over TCP, all on one connection (framing errors must stay local).
        reader, writer = await asyncio.open_connection(focus.host, focus.port)
        for path in messages:
            writer.write(path.read_bytes())
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()
        del reader
    await asyncio.sleep(0.3)
    alice = await phones("alice")
    call = await alice.invite(focus.factory, sdp_offer(36000))
    await focus.settled((1, 1, 1))
    await alice.bye(call)
    await focus.settled((0, 0, 0))
    assert not focus.focus.calls
