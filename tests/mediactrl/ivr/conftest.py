"""Fixtures of the msc-ivr tests: a bundled media server and the focus's user agent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.uacore import UAConfig
from mediactrl.server.app import MediaServer, start_media_server
from tests.mediactrl.server.conftest import server_config


@pytest.fixture
async def media_server() -> AsyncIterator[MediaServer]:
    server = await start_media_server(server_config())
    yield server
    await server.close()


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    agent = await UserAgent.start(
        UAConfig(user="focus"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    )
    yield agent
    await agent.close()
