"""msc-ivr/1.0 over a real CFW channel on loopback: requests, events, framework errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mediactrl.client import ControlError, MediaControlClient, direct_opener
from mediactrl.ivr import CONTENT_TYPE, PACKAGE
from mediactrl.ivr import model as ivr
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService
from tests.mediactrl.client.test_channel import until
from tests.mediactrl.server.conftest import FAST


@pytest.fixture
async def server() -> AsyncIterator[ControlServer]:
    backend = ControlOnlyBackend(connections={"a:b"})
    control = ControlServer(MixerService(backend), ControlServerConfig(accept_any_dialog=True))
    await control.start()
    yield control
    await control.close()


@pytest.fixture
async def client(
    server: ControlServer,
) -> AsyncIterator[tuple[MediaControlClient, list[ivr.Event]]]:
    events: list[ivr.Event] = []
    host, port = server.address
    client = MediaControlClient(
        direct_opener(host, port, "ivrcfw0001"), FAST, on_ivr_event=events.append
    )
    await client.start()
    yield client, events
    await client.close()


WATCH = ivr.DialogStart(
    connectionid="a:b", dialogid="w1", dialog=ivr.Dialog(), subscribe=ivr.Subscribe(ivr.DtmfSub())
)


async def test_dialog_lifecycle_over_the_channel(
    server: ControlServer, client: tuple[MediaControlClient, list[ivr.Event]]
) -> None:
    conn, events = client
    assert (await conn.ivr(WATCH)).status == 200
    server.dtmf("b:a", "9")
    await until(lambda: len(events) == 1)
    note = events[0].notification
    assert isinstance(note, ivr.DtmfNotify) and note.dtmf == "9"
    assert (await conn.ivr(ivr.DialogTerminate("w1"))).status == 200
    await until(lambda: len(events) == 2)
    assert events[1] == ivr.Event("w1", ivr.DialogExit(0, "terminated"))


async def test_channel_loss_ends_the_dialogs(
    server: ControlServer, client: tuple[MediaControlClient, list[ivr.Event]]
) -> None:
    conn, _ = client
    await conn.ivr(WATCH)
    assert server.ivr.dialogs_of("ivrcfw0001") == ("w1",)
    conn.abort_channel()
    await until(lambda: not server.ivr.dialogs_of("ivrcfw0001"))


async def test_a_mixer_body_under_the_ivr_package_is_400(
    client: tuple[MediaControlClient, list[ivr.Event]],
) -> None:
    conn, _ = client
    with pytest.raises(ControlError) as caught:
        await conn.control(PACKAGE, b"<x/>", content_type="application/msc-mixer+xml")
    assert caught.value.code == 400
    answer = await conn.control(PACKAGE, b"<not-ivr/>", content_type=CONTENT_TYPE)
    assert b'status="400"' in answer.body
