"""The media driver over a real channel to the media server's control side; reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from mediactrl.client import MediaControlClient, direct_opener
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.mixer import model as m
from mediactrl.mixer.model import Direction, Volume, VolumeControlType
from mediactrl.plan import ConferenceSpec, DesiredState, participant_streams
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import (
    BackendCapabilities,
    ControlOnlyBackend,
    MixerService,
    MixerServiceConfig,
)
from tests.mediactrl.client.conftest import FAST
from tests.mediactrl.client.test_channel import until

CFW_ID = "focuscfw0001"
ALICE, BOB, COACH = "fa1:ma1", "fb2:mb2", "fc3:mc3"


class Focus:
    """The focus's side: a client, a driver and what the driver reported."""

    def __init__(self, host: str, port: int) -> None:
        self.unjoined: list[tuple[str, str, int]] = []
        self.exits: list[tuple[str, int]] = []
        self.talkers: list[tuple[str, tuple[str, ...]]] = []
        self.refused: list[MediaDriverError] = []
        self.client = MediaControlClient(direct_opener(host, port, CFW_ID), FAST)
        self.driver = MediaDriver(
            self.client,
            on_unjoined=lambda a, b, s: self.unjoined.append((a, b, s)),
            on_conference_exit=lambda c, s: self.exits.append((c, s)),
            on_active_talkers=lambda c, t: self.talkers.append((c, t)),
            on_refused=self.refused.append,
        )

    async def audit(self) -> m.Mixers:
        answer = await self.client.mixer(m.Audit(capabilities=False))
        assert isinstance(answer, m.AuditResponse)
        assert answer.mixers is not None
        return answer.mixers


async def start_server(service: MixerService, port: int = 0) -> ControlServer:
    server = ControlServer(service, ControlServerConfig(port=port))
    server.expect_channel(CFW_ID)
    await server.start()
    return server


@pytest.fixture
def media() -> ControlOnlyBackend:
    # Like the bundled engine: audio mixing by the N loudest only (controller mixing is 421),
    # no conference-to-conference joins (427; the focus never asks for one).
    backend = ControlOnlyBackend(caps=BackendCapabilities(conference_joins=False))
    for connection in (ALICE, BOB, COACH):
        backend.add_connection(connection)
    return backend


@pytest.fixture
async def setup(media: ControlOnlyBackend) -> AsyncIterator[tuple[ControlServer, Focus]]:
    server = await start_server(MixerService(media))
    focus = Focus(*server.address)
    await focus.client.start()
    await until(lambda: focus.driver.resyncs == 1)
    yield server, focus
    await focus.client.close()
    await server.close()


def joins_of(mixers: m.Mixers) -> set[frozenset[str]]:
    return {frozenset((j.id1, j.id2)) for j in mixers.joins}


async def build_coaching(driver: MediaDriver) -> None:
    """RFC 7058 s6.3.4: customer and agent talk; the coach hears both, only the agent hears
    the coach.  As the focus realises a sidebar: the coaching mixer is a conference of its own
    and its members' connections are joined to it and to the main conference."""
    await driver.ensure_conference(ConferenceSpec("main", active_talkers_interval=1))
    await driver.ensure_conference(ConferenceSpec("coaching"))
    await driver.set_join(ALICE, "main", participant_streams())  # customer
    agent = participant_streams(speak_gain_db=-3, listen_gain_db=2)
    await driver.set_join(BOB, "main", agent)
    await driver.set_join(COACH, "main", participant_streams(muted=True))  # hears, not heard
    await driver.set_join(COACH, "coaching", participant_streams())
    await driver.set_join(BOB, "coaching", participant_streams(muted=True))  # hears the coach


async def test_driver_builds_and_rules_a_conference(setup: tuple[ControlServer, Focus]) -> None:
    server, focus = setup
    service = server.service
    await build_coaching(focus.driver)
    assert focus.driver.in_sync
    assert set(service.participants("main")) == {ALICE, BOB, COACH}
    assert service.join_streams(BOB, "main") == (
        m.Stream(
            "audio", direction=Direction.SENDONLY, volume=Volume(VolumeControlType.SETGAIN, "-3")
        ),
        m.Stream(
            "audio", direction=Direction.RECVONLY, volume=Volume(VolumeControlType.SETGAIN, "2")
        ),
    )
    assert service.join_streams("main", COACH) == (m.Stream("audio", direction=Direction.SENDONLY),)
    await focus.driver.set_join(ALICE, "main", participant_streams(muted=True))  # modifyjoin
    assert service.join_streams(ALICE, "main") == participant_streams(muted=True)
    await focus.driver.unjoin(COACH, "coaching")
    await focus.driver.destroy_conference("coaching")
    mixers = await focus.audit()
    assert [c.conferenceid for c in mixers.conferences] == ["main"]
    assert joins_of(mixers) == {
        frozenset((ALICE, "main")),
        frozenset((BOB, "main")),
        frozenset((COACH, "main")),
    }
    assert focus.unjoined == []  # our own unjoins are not reported as server decisions
    assert focus.exits == []


async def test_refused_items_are_dropped_and_reported(setup: tuple[ControlServer, Focus]) -> None:
    _server, focus = setup
    await focus.driver.ensure_conference(ConferenceSpec("c1"))
    with pytest.raises(MediaDriverError) as refused:
        await focus.driver.set_join("zz9:zz9", "c1", participant_streams())
    assert ("zz9:zz9", "c1") in refused.value.failures
    assert frozenset(("zz9:zz9", "c1")) not in focus.driver.desired.joins
    controller = m.AudioMixing(m.AudioMixType.CONTROLLER)
    with pytest.raises(MediaDriverError):
        await focus.driver.ensure_conference(ConferenceSpec("c2", audio_mixing=controller))
    assert "c2" not in focus.driver.desired.conferences
    assert focus.driver.in_sync
    with pytest.raises(ValueError, match="ensure_conference"):
        await focus.driver.set_join(ALICE, "nosuch", participant_streams())


async def test_server_decisions_reach_the_focus(
    setup: tuple[ControlServer, Focus], media: ControlOnlyBackend
) -> None:
    server, focus = setup
    await build_coaching(focus.driver)
    media.remove_connection(ALICE)
    server.connection_closed(ALICE)  # the customer's media leg ended (SIP side)
    await until(lambda: bool(focus.unjoined))
    assert focus.unjoined == [(ALICE, "main", 2)]
    assert frozenset((ALICE, "main")) not in focus.driver.desired.joins
    server.active_talkers("main", [BOB])
    await until(lambda: bool(focus.talkers))
    assert focus.talkers == [("main", (BOB,))]
    assert focus.driver.in_sync


def converged(focus: Focus, resyncs: int) -> Callable[[], bool]:
    return lambda: focus.driver.resyncs >= resyncs and focus.driver.in_sync


async def test_channel_killed_mid_conference_reconnects_and_resyncs(
    setup: tuple[ControlServer, Focus],
) -> None:
    """The media server keeps its mixers; the client reconnects, audits, restates streams."""
    server, focus = setup
    await build_coaching(focus.driver)
    before = await focus.audit()
    server.drop_channels()
    await until(converged(focus, 2))
    assert focus.client.connections_made == 2
    after = await focus.audit()
    assert {c.conferenceid for c in after.conferences} == {"main", "coaching"}
    assert joins_of(after) == joins_of(before)
    assert server.service.join_streams(BOB, "coaching") == participant_streams(muted=True)


async def test_media_server_restart_recreates_everything(
    setup: tuple[ControlServer, Focus], media: ControlOnlyBackend
) -> None:
    """The listener restarts with an empty mixer (a media server restart): while it is down the
    focus keeps changing its wishes; after the reconnect every conference and join is back."""
    server, focus = setup
    await build_coaching(focus.driver)
    port = server.address[1]
    await server.close()
    await until(lambda: not focus.client.is_up)
    # Changes while the channel is down are recorded and applied after the reconnect.
    await focus.driver.set_join(ALICE, "main", participant_streams(muted=True))
    await focus.driver.unjoin(COACH, "coaching")
    fresh_backend = replace(media, conferences={}, joins={})
    fresh = await start_server(MixerService(fresh_backend), port)
    try:
        await until(converged(focus, 2), timeout=5.0)
        mixers = await focus.audit()
        assert {c.conferenceid for c in mixers.conferences} == {"main", "coaching"}
        assert joins_of(mixers) == {
            frozenset((ALICE, "main")),
            frozenset((BOB, "main")),
            frozenset((COACH, "main")),
            frozenset((BOB, "coaching")),
        }
        assert fresh.service.join_streams(ALICE, "main") == participant_streams(muted=True)
        assert fresh_backend.joins[(BOB, "main")] == participant_streams(
            speak_gain_db=-3, listen_gain_db=2
        )
    finally:
        await focus.client.close()
        await fresh.close()


async def test_restart_that_lost_a_media_leg_reports_it(
    setup: tuple[ControlServer, Focus],
) -> None:
    server, focus = setup
    await build_coaching(focus.driver)
    port = server.address[1]
    await server.close()
    await until(lambda: not focus.client.is_up)
    survivor = ControlOnlyBackend(caps=BackendCapabilities(conference_joins=False))
    survivor.add_connection(ALICE)
    survivor.add_connection(BOB)  # the coach's media leg did not survive the restart
    fresh = await start_server(MixerService(survivor), port)
    try:
        await until(converged(focus, 2), timeout=5.0)
        assert [set(r.failures) for r in focus.refused] == [{(COACH, "main"), (COACH, "coaching")}]
        assert frozenset((COACH, "coaching")) not in focus.driver.desired.joins
        assert set(fresh.service.participants("coaching")) == {BOB}
    finally:
        await focus.client.close()
        await fresh.close()


async def test_concurrent_calls_converge(setup: tuple[ControlServer, Focus]) -> None:
    server, focus = setup
    driver = focus.driver
    await asyncio.gather(*(driver.ensure_conference(ConferenceSpec(f"k{i}")) for i in range(4)))
    await asyncio.gather(
        driver.set_join(ALICE, "k0", participant_streams()),
        driver.set_join(BOB, "k1", participant_streams(muted=True)),
        driver.set_join(ALICE, "k1", participant_streams(deaf=True)),
        driver.destroy_conference("k3"),
        driver.set_join(COACH, "k2", participant_streams(speak_gain_db=-6)),
        driver.set_join(ALICE, "k0", participant_streams(muted=True)),  # after the first: mute wins
    )
    assert driver.in_sync
    assert set(server.service.conferences_of(CFW_ID)) == {"k0", "k1", "k2"}
    assert server.service.join_streams(ALICE, "k0") == participant_streams(muted=True)
    assert server.service.join_streams(BOB, "k1") == participant_streams(muted=True)


async def test_a_conference_destroyed_by_someone_else_is_reported(
    media: ControlOnlyBackend,
) -> None:
    """With a shared server (allow_cross_owner), another channel destroys our conference: the
    media server's events tell the focus, which stops wanting it."""
    shared = ControlServer(
        MixerService(media, MixerServiceConfig(allow_cross_owner=True)), ControlServerConfig()
    )
    shared.expect_channel(CFW_ID)
    shared.expect_channel("operator0001")
    await shared.start()
    focus = Focus(*shared.address)
    operator = MediaControlClient(direct_opener(*shared.address, "operator0001"), FAST)
    try:
        await focus.client.start()
        await operator.start()
        await focus.driver.ensure_conference(ConferenceSpec("main"))
        await focus.driver.set_join(ALICE, "main", participant_streams())
        await operator.mixer(m.DestroyConference("main"))
        await until(lambda: bool(focus.exits))
        assert focus.exits == [("main", 0)]
        assert focus.unjoined == [(ALICE, "main", 2)]
        assert focus.driver.desired == DesiredState()
        assert focus.driver.in_sync
    finally:
        await operator.close()
        await focus.client.close()
        await shared.close()
