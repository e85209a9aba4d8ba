"""Fixtures: a real control server (control-only backend) on loopback TCP and real clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from mediactrl.client import ClientConfig, EventCallback, MediaControlClient, direct_opener
from mediactrl.mixer import model as m
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService

# Short but not racy: the client gives up a transaction after 2x this (RFC 6230 s6.1).
FAST = ClientConfig(
    transaction_timeout=2.0, connect_timeout=2.0, backoff_initial=0.02, backoff_max=0.2
)


@pytest.fixture
def backend() -> ControlOnlyBackend:
    return ControlOnlyBackend(accept_any_connection=True)


@pytest.fixture
async def server(backend: ControlOnlyBackend) -> AsyncIterator[ControlServer]:
    control = ControlServer(MixerService(backend), ControlServerConfig(accept_any_dialog=True))
    await control.start()
    yield control
    await control.close()


class EventLog:
    """Collects mixer events delivered to a client callback."""

    def __init__(self) -> None:
        self.events: list[m.Event] = []

    def __call__(self, event: m.Event) -> None:
        self.events.append(event)

    def notifications(self) -> list[object]:
        return [e.notification for e in self.events]


@contextlib.asynccontextmanager
async def started_client(
    host: str,
    port: int,
    cfw_id: str,
    config: ClientConfig = FAST,
    on_event: EventCallback | None = None,
) -> AsyncIterator[MediaControlClient]:
    """A client with its channel to host:port up (cfw-id ``cfw_id``), closed afterwards."""
    cli = MediaControlClient(direct_opener(host, port, cfw_id), config, on_event=on_event)
    try:
        await cli.start()
        yield cli
    finally:
        await cli.close()


@pytest.fixture
async def client(server: ControlServer) -> AsyncIterator[MediaControlClient]:
    host, port = server.address
    async with started_client(host, port, "as1cfwid0001", on_event=EventLog()) as cli:
        yield cli
