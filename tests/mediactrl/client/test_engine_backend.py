"""The control side over the REAL media engine: mixer requests on a CFW channel move RTP.

Phones are real UDP peers (tests.mediactrl.media.phones); the focus side is the real client
and driver.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mediactrl.client import MediaControlClient, direct_opener
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.media.engine import MediaConfig, MediaEngine
from mediactrl.mixer import model as m
from mediactrl.plan import ConferenceSpec, participant_streams
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.engine_backend import EngineBackend
from mediactrl.server.mixer_service import MixerService
from tests.mediactrl.client.conftest import FAST
from tests.mediactrl.client.test_channel import until
from tests.mediactrl.media.phones import Phone, tone_levels

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


def engine_config(**changes: Any) -> MediaConfig:
    base = random.randrange(20000, 60000, 2)  # loopback ports shared with other test runs
    return MediaConfig(port_range=(base, base + 400), **changes)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    server: ControlServer | None = None

    def route(event: object) -> None:
        assert server is not None
        server.on_media_event(event)

    engine = MediaEngine(engine_config(talker_hangover=5), on_event=route)
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
    await driver.set_join(TALKER_AS, "room1", participant_streams())
    await driver.set_join(LISTENER_AS, "room1", participant_streams())
    assert set(rig.engine.members("room1")) == {TALKER_MS, LISTENER_MS}
    rig.talker.start_tone(rig.talker_port)
    await asyncio.sleep(0.6)
    t0 = loop.time()
    await asyncio.sleep(0.4)
    loud = rms_heard(rig.listener, t0, loop.time())
    # The engine reports the talker; the focus hears it under ITS name for the dialog.
    await until(lambda: bool(rig.talkers_seen))
    assert rig.talkers_seen[0] == ("room1", (TALKER_AS,))
    await driver.set_join(
        TALKER_AS, "room1", participant_streams(muted=True)
    )  # modifyjoin recvonly
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
    # Conference-to-conference joins (which the focus never asks for): refused, reported.
    await rig.driver.ensure_conference(ConferenceSpec("ec3"))
    await rig.driver.ensure_conference(ConferenceSpec("ed4"))
    with pytest.raises(MediaDriverError) as refused:
        await rig.driver.set_join("ec3", "ed4", participant_streams(muted=True))
    assert list(refused.value.failures) == [("ec3", "ed4")]
    assert rig.driver.in_sync


async def test_coaching_rules_with_a_connection_in_two_conferences() -> None:
    """Whisper/coaching on the real engine (RFC 7058 s6.3.4's goal, without conference-to-
    conference joins, which the engine lacks): the agent is in the main room and in a
    coaching sidebar; the coach is in the sidebar and listens to the main room."""
    customer, agent, coach = Phone(440.0), Phone(1000.0), Phone(1800.0)
    freqs = [440.0, 1000.0, 1800.0]
    engine = MediaEngine(engine_config())
    server = ControlServer(MixerService(EngineBackend(engine)))
    server.expect_channel("coachcfw0001")
    host, port = await server.start()
    client = MediaControlClient(direct_opener(host, port, "coachcfw0001"), FAST)
    driver = MediaDriver(client)
    ids: dict[str, str] = {}
    try:
        for name, phone in (("cu", customer), ("ag", agent), ("co", coach)):
            await phone.open()
            endpoint = await engine.create_endpoint(f"ms{name}1:as{name}1", remote=phone.address)
            ids[name] = f"as{name}1:ms{name}1"
            phone.start_tone(endpoint.local_port)
        await client.start()
        await driver.ensure_conference(ConferenceSpec("main"))
        await driver.ensure_conference(ConferenceSpec("coaching"))
        await driver.set_join(ids["cu"], "main", participant_streams())
        await driver.set_join(ids["ag"], "main", participant_streams())
        await driver.set_join(ids["ag"], "coaching", participant_streams())
        await driver.set_join(ids["co"], "coaching", participant_streams())
        await driver.set_join(ids["co"], "main", participant_streams(muted=True))  # listens only
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.5)
        start = loop.time()
        await asyncio.sleep(0.6)
        end = loop.time()
    finally:
        for phone in (customer, agent, coach):
            await phone.stop_tone()
        await client.close()
        await server.close()
        await engine.close()
        for phone in (customer, agent, coach):
            phone.close()
    heard = {
        name: tone_levels(p.audio(start, end), freqs)
        for name, p in (("customer", customer), ("agent", agent), ("coach", coach))
    }
    loud, silent = 2000.0, 200.0
    assert heard["customer"][1000.0] > loud  # the agent
    assert heard["customer"][1800.0] < silent  # never the coach
    assert heard["agent"][440.0] > loud
    assert heard["agent"][1800.0] > loud  # the coach whispers to the agent
    assert heard["coach"][440.0] > loud
    assert heard["coach"][1000.0] > loud
    assert heard["coach"][1800.0] < silent  # nobody hears themselves


async def test_a_leg_closed_in_the_engine_first_still_notifies(rig: Rig) -> None:
    events: list[m.Event] = []
    rig.client.on_event = events.append
    await rig.client.mixer(m.CreateConference("bye1"))
    await rig.client.mixer(m.Join(LISTENER_AS, "bye1"))
    await rig.engine.close_endpoint(LISTENER_MS)  # the SIP BYE reached the media first
    rig.server.connection_closed(LISTENER_MS)
    await until(lambda: bool(events))
    assert events == [m.Event(m.UnjoinNotify(2, LISTENER_AS, "bye1", "connection terminated"))]
    assert rig.server.service.participants("bye1") == ()
