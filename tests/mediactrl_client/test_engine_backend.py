"""The control side over the REAL media engine: mixer requests on a CFW channel move RTP.

Phones are real UDP peers (tests.media.phones); the focus side is the real client and driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest

from mediactrl.client import MediaControlClient, direct_opener
from mediactrl.driver import ConferenceSpec, MediaDriver, MediaDriverError
from mediactrl.media.engine import MediaConfig, MediaEngine
from mediactrl.mixer import model as m
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.engine_backend import EngineBackend
from mediactrl.server.mixer_service import MixerService
from tests.media.phones import Phone
from tests.mediactrl_client.conftest import FAST
from tests.mediactrl_client.test_channel import until

# The media server names each leg local:remote; the focus names the same dialog remote:local.
TALKER_MS, TALKER_AS = "mst1:ast1", "ast1:mst1"
LISTENER_MS, LISTENER_AS = "msl2:asl2", "asl2:msl2"


@dataclass
class Rig:
    engine: MediaEngine
    server: ControlServer
    driver: MediaDriver
    client: MediaControlClient
    talker: Phone
    listener: Phone
    talker_port: int
    talkers_seen: list[tuple[str, tuple[str, ...]]]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    server: ControlServer | None = None

    def route(event: object) -> None:
        assert server is not None
        server.on_media_event(event)

    engine = MediaEngine(MediaConfig(port_range=(47000, 47999), talker_hangover=5), on_event=route)
    server = ControlServer(MixerService(EngineBackend(engine)), ControlServerConfig())
    server.expect_channel("enginecfw001")
    host, port = await server.start()
    talker, listener = Phone(1000.0), Phone(None)
    await talker.open()
    await listener.open()
    talker_ep = await engine.create_endpoint(TALKER_MS, remote=talker.address)
    await engine.create_endpoint(LISTENER_MS, remote=listener.address)
    seen: list[tuple[str, tuple[str, ...]]] = []
    client = MediaControlClient(direct_opener(host, port, "enginecfw001"), FAST)
    driver = MediaDriver(client, on_active_talkers=lambda c, t: seen.append((c, t)))
    await client.start()
    try:
        yield Rig(engine, server, driver, client, talker, listener, talker_ep.local_port, seen)
    finally:
        await talker.stop_tone()
        await client.close()
        await server.close()
        await engine.close()
        talker.close()
        listener.close()


def rms_heard(phone: Phone, since: float, until_: float) -> float:
    audio = phone.audio(since, until_)
    return float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0


async def test_join_mixes_and_mute_silences(rig: Rig) -> None:
    loop = asyncio.get_running_loop()
    driver = rig.driver
    await driver.ensure_conference(ConferenceSpec("room1", active_talkers_interval=1))
    await driver.join_participant(TALKER_AS, "room1")
    await driver.join_participant(LISTENER_AS, "room1")
    assert set(rig.engine.members("room1")) == {TALKER_MS, LISTENER_MS}
    rig.talker.start_tone(rig.talker_port)
    await asyncio.sleep(0.6)
    t0 = loop.time()
    await asyncio.sleep(0.4)
    loud = rms_heard(rig.listener, t0, loop.time())
    # The engine reports the talker; the focus hears it under ITS name for the dialog.
    await until(lambda: bool(rig.talkers_seen))
    assert rig.talkers_seen[0] == ("room1", (TALKER_AS,))
    await driver.join_participant(TALKER_AS, "room1", muted=True)  # modifyjoin recvonly
    settings = rig.engine.members("room1")[TALKER_MS]
    assert not settings.upstream.enabled
    assert settings.downstream.enabled
    await asyncio.sleep(0.3)
    t1 = loop.time()
    await asyncio.sleep(0.4)
    quiet = rms_heard(rig.listener, t1, loop.time())
    assert loud > 1000.0
    assert quiet < loud / 20


async def test_engine_limits_are_mixer_status_codes(rig: Rig) -> None:
    client = rig.client
    for conference in ("ea1", "eb2"):
        assert await client.mixer(m.CreateConference(conference)) == m.Response(
            200, "Conference created", conferenceid=conference
        )

    async def status(request: m.MixerMessage) -> int:
        answer = await client.mixer(request)
        assert isinstance(answer, m.Response)
        return answer.status

    assert await status(m.Join("ea1", "eb2")) == m.MixerStatus.MIXING_CONFERENCES_UNSUPPORTED
    assert await status(m.Join(TALKER_AS, LISTENER_AS)) == 426
    assert await status(m.Join(TALKER_AS, "ea1", (m.Stream("video"),))) == 422
    assert await status(m.Join("zz:zz", "ea1")) == 412
    automatic = m.Volume(m.VolumeControlType.AUTOMATIC)
    assert await status(m.Join(TALKER_AS, "ea1", (m.Stream("audio", volume=automatic),))) == 422
    assert rig.engine.members("ea1") == {}  # refused joins left nothing behind
    # The conference id is the focus's, also after the engine ran a join from either side.
    assert await status(m.Join("ea1", TALKER_AS)) == 200
    assert set(rig.engine.members("ea1")) == {TALKER_MS}
    # A sidebar joined to its parent needs conference-conference joins: refused, reported.
    await rig.driver.ensure_conference(ConferenceSpec("ec3"))
    await rig.driver.ensure_conference(ConferenceSpec("ed4"))
    with pytest.raises(MediaDriverError) as refused:
        await rig.driver.join_sidebar("ec3", "ed4")
    assert list(refused.value.failures) == [("ec3", "ed4")]
    assert rig.driver.in_sync
