"""Fixtures: the bundled media server started in-process on loopback (UA and legs: one level up)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from focus.sip.aio.ua import UserAgent
from mediactrl.client import ClientConfig, MediaControlClient
from mediactrl.server.app import MediaServer, MediaServerConfig, start_media_server
from mediactrl.sip_opener import SipChannelOpener

# Short but not racy: a transaction fails after 2x transaction_timeout (RFC 6230 s6.1).
FAST = ClientConfig(
    transaction_timeout=2.0, connect_timeout=2.0, backoff_initial=0.05, backoff_max=0.3
)


def server_config() -> MediaServerConfig:
    base = random.randrange(20000, 60000, 2)  # loopback ports shared with other test runs
    return MediaServerConfig(sip_port=0, rtp_ports=(base, base + 200))


@contextlib.asynccontextmanager
async def sip_channel(
    ua: UserAgent, uri: str, up_within: float
) -> AsyncIterator[tuple[SipChannelOpener, MediaControlClient]]:
    """A client whose control channel ``ua`` negotiates with the media server at ``uri``
    (RFC 6230 s4), up within ``up_within`` s; the client and the opener closed after."""
    opener = SipChannelOpener(ua, uri, address="127.0.0.1")
    client = MediaControlClient(opener, FAST)
    await client.start()
    try:
        await client.wait_up(up_within)
        yield opener, client
    finally:
        await client.close()
        await opener.close()


class DtmfLog:
    def __init__(self) -> None:
        self.digits: list[tuple[str, str]] = []

    def __call__(self, connection_id: str, digit: str) -> None:
        self.digits.append((connection_id, digit))


@pytest.fixture
def dtmf() -> DtmfLog:
    return DtmfLog()


@pytest.fixture
async def media_server(dtmf: DtmfLog) -> AsyncIterator[MediaServer]:
    server = await start_media_server(server_config(), on_dtmf=dtmf)
    yield server
    await server.close()
