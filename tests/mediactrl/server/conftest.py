"""Fixtures: the bundled media server started in-process on loopback (UA and legs: one level up)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from mediactrl.client import ClientConfig
from mediactrl.server.app import MediaServer, MediaServerConfig, start_media_server

# Short but not racy: a transaction fails after 2x transaction_timeout (RFC 6230 s6.1).
FAST = ClientConfig(
    transaction_timeout=2.0, connect_timeout=2.0, backoff_initial=0.05, backoff_max=0.3
)


def server_config() -> MediaServerConfig:
    base = random.randrange(20000, 60000, 2)  # loopback ports shared with other test runs
    return MediaServerConfig(sip_port=0, rtp_ports=(base, base + 200))


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
