"""Fixtures shared by the media-control tests: the focus's user agent and its media legs.

``legs`` needs a ``media_server`` fixture, which each folder that uses it defines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.uacore import UAConfig
from mediactrl.legs import MediaLegs
from mediactrl.server.app import MediaServer


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    """The application server's (focus's) user agent."""
    agent = await UserAgent.start(
        UAConfig(user="focus"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    )
    yield agent
    await agent.close()


@pytest.fixture
async def legs(ua: UserAgent, media_server: MediaServer) -> AsyncIterator[MediaLegs]:
    """The focus's media legs to ``media_server``; those left open are BYEd at the end."""
    opened = MediaLegs(ua, media_server.sip_uri)
    yield opened
    await opened.close_all()
