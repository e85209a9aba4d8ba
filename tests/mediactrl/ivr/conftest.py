"""Fixtures of the msc-ivr tests: a bundled media server (UA and legs: tests/mediactrl)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mediactrl.server.app import MediaServer, start_media_server
from tests.mediactrl.server.conftest import server_config


@pytest.fixture
async def media_server() -> AsyncIterator[MediaServer]:
    server = await start_media_server(server_config())
    yield server
    await server.close()
