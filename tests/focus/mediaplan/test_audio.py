"""The sidebar flows with real audio: the REAL media engine, control server (CFW over TCP),
client and MediaDriver on loopback; RTP phones send distinct tones and the FFT of what each
phone receives says whom it hears (tests.mediactrl.media.phones).

Each test writes the conference documents as a CCMP client would (tests.focus.mediaplan.docs),
plans them with focus.mediaplan.plan_media and applies the plan with MediaReconciler.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.mediaplan import MediaPlan, plan_media
from focus.mediaplan.reconcile import MediaReconciler
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import ConferenceInfo
from mediactrl.client import MediaControlClient, direct_opener
from mediactrl.driver import MediaDriver
from mediactrl.media.engine import MediaConfig, MediaEngine
from mediactrl.plan import plan
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.engine_backend import EngineBackend
from mediactrl.server.mixer_service import MixerService
from tests.focus.core.conftest import ALICE, BOB, CAROL, add_accounts, open_store
from tests.focus.mediaplan.docs import audio_label, conference, user, vector
from tests.focus.mediaplan.hearing import AMPLITUDE, deaf_to, hears
from tests.mediactrl.client.conftest import FAST
from tests.mediactrl.media.phones import Phone, tone_levels

TONES = {
    "alice": 440.0,
    "bob": 700.0,
    "carol": 1000.0,
    "david": 1300.0,
    "ethel": 1600.0,
    "fred": 1900.0,
    "a1": 2200.0,
    "a2": 2500.0,
    "a3": 2800.0,
}
MAIN, SIDE = "xcon:main@example.com", "xcon:side@example.com"
CFW = "sidebarcfw01"


def uid(name: str) -> str:
    return f"xcon-userid:{name}@example.com"


@dataclass
class Room:
    engine: MediaEngine
    driver: MediaDriver
    media: MediaReconciler
    phones: dict[str, Phone] = field(default_factory=dict)
    connections: dict[str, str] = field(default_factory=dict)  # the focus's map

    async def dial(self, *names: str) -> None:
        """Each name gets a phone sending its tone and a media leg on the engine."""
        for name in names:
            phone = Phone(TONES[name], amplitude=AMPLITUDE)
            await phone.open()
            endpoint = await self.engine.create_endpoint(f"ms{name}:as{name}", remote=phone.address)
            self.phones[name] = phone
            # The focus names the dialog local:remote from its side (RFC 6230 A.1).
            self.connections[uid(name)] = f"as{name}:ms{name}"
            phone.start_tone(endpoint.local_port)

    async def apply(self, parent: ConferenceInfo, *sidebars: ConferenceInfo) -> MediaPlan:
        planned = plan_media(parent, sidebars, self.connections)
        await self.media.update(MAIN, planned)
        assert self.driver.in_sync
        return planned

    async def listen(self) -> dict[str, dict[str, float]]:
        """What each phone hears, by name of the phone whose tone it is."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.4)  # jitter buffers and the old mix drain
        start = loop.time()
        await asyncio.sleep(0.6)
        end = loop.time()
        freqs = list(TONES.values())
        heard = {}
        for name, phone in self.phones.items():
            levels = tone_levels(phone.audio(start, end), freqs)
            heard[name] = {other: levels[hz] for other, hz in TONES.items()}
        return heard


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    base = random.randrange(20000, 60000, 2)  # loopback ports shared with other test runs
    engine = MediaEngine(MediaConfig(port_range=(base, base + 400)))
    server = ControlServer(MixerService(EngineBackend(engine)), ControlServerConfig())
    server.expect_channel(CFW)
    host, port = await server.start()
    client = MediaControlClient(direct_opener(host, port, CFW), FAST)
    driver = MediaDriver(client)
    await client.start()
    result = Room(engine, driver, MediaReconciler(driver))
    try:
        yield result
    finally:
        for phone in result.phones.values():
            await phone.stop_tone()
        await client.close()
        await server.close()
        await engine.close()
        for phone in result.phones.values():
            phone.close()


async def test_internal_sidebar_main_at_reduced_volume_then_ended(room: Room) -> None:
    """s6.5: alice and bob talk in a sidebar and hear the main room 12 dB down; carol, in
    the main room only, hears neither.  Ending the sidebar brings everyone back."""
    await room.dial("alice", "bob", "carol")
    everyone = [user(uid(n)) for n in ("alice", "bob", "carol")]
    main = conference(MAIN, everyone)
    sidebar = conference(SIDE, [user(uid("alice")), user(uid("bob"))], link_gain=-12)
    await room.apply(main, sidebar)
    assert set(room.engine.members("side")) == {"msalice:asalice", "msbob:asbob"}
    heard = await room.listen()
    hears(heard, "alice", "bob")
    hears(heard, "bob", "alice")
    deaf_to(heard, "carol", "alice", "bob")
    for name in ("alice", "bob"):
        ratio = heard[name]["carol"] / heard[name]["bob" if name == "alice" else "alice"]
        assert 0.15 < ratio < 0.4, (name, ratio)  # -12 dB is 0.25 in amplitude

    await room.apply(main)  # the sidebar is deleted: its mixer goes, main joins come back
    assert "side" not in room.driver.desired.conferences
    heard = await room.listen()
    for name in ("alice", "bob", "carol"):
        hears(heard, name, *[o for o in ("alice", "bob", "carol") if o != name])
    assert 0.7 < heard["alice"]["carol"] / heard["alice"]["bob"] < 1.4  # full volume again


async def test_internal_sidebar_with_only_its_own_audio(room: Room) -> None:
    """s6.5, the other choice: "the audio restricted to the participants in the sidebar"."""
    await room.dial("alice", "bob", "carol")
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "bob", "carol")])
    sidebar = conference(SIDE, [user(uid("alice")), user(uid("bob"))], link="inactive")
    await room.apply(main, sidebar)
    heard = await room.listen()
    hears(heard, "alice", "bob")
    deaf_to(heard, "alice", "carol")
    deaf_to(heard, "carol", "alice", "bob")


async def test_external_sidebar_with_a_party_dialled_in(room: Room) -> None:
    """s6.6: alice, bob and ethel are on hold in the main room and talk with fred in the
    sidebar; carol and david go on in the main room; fred only hears the sidebar."""
    await room.dial("alice", "bob", "carol", "david", "ethel", "fred")
    side_members = ("alice", "bob", "ethel", "fred")
    main = conference(MAIN, [user(uid(n)) for n in TONES if n in room.phones])
    sidebar = conference(SIDE, [user(uid(n)) for n in side_members], link="inactive")
    await room.apply(main, sidebar)
    heard = await room.listen()
    for name in side_members:
        hears(heard, name, *[o for o in side_members if o != name])
        deaf_to(heard, name, "carol", "david")
    hears(heard, "carol", "david")
    hears(heard, "david", "carol")
    deaf_to(heard, "carol", *side_members)
    deaf_to(heard, "david", *side_members)


async def test_whisper_to_one_participant(room: Room) -> None:
    """s6.8: carol (the moderator) whispers to alice only; alice keeps hearing and being
    heard in the main room; bob never hears the whisper."""
    await room.dial("alice", "bob", "carol")
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "bob", "carol")])
    whisper = conference(
        SIDE,
        [user(uid("alice"), "recvonly"), user(uid("carol"), parent_audio="recvonly")],
        link="sendrecv",
    )
    await room.apply(main, whisper)
    heard = await room.listen()
    hears(heard, "alice", "carol", "bob")
    hears(heard, "bob", "alice")
    deaf_to(heard, "bob", "carol")  # the whisper stays in the sidebar
    hears(heard, "carol", "alice", "bob")  # the whisperer still follows the main room
    await room.apply(main)  # the announcement is over: sidebar deleted
    heard = await room.listen()
    hears(heard, "bob", "carol")


@pytest.mark.parametrize("in_the_call", [True, False], ids=["in-main", "rfc6504-s7.4-outside"])
async def test_observe_and_coach(room: Room, in_the_call: bool) -> None:
    """s6.9: supervisor alice hears agent bob and customer carol; only bob hears alice;
    carol never hears alice; alice hears bob once (not also through the sidebar).  The same
    when alice is in no roster of the call (RFC 6504 s7.4: she opens the sidebar for herself)."""
    await room.dial("alice", "bob", "carol")
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "bob", "carol")[not in_the_call :]])
    coaching = conference(SIDE, [user(uid("alice")), user(uid("bob"), parent_audio="sendrecv")])
    await room.apply(main, coaching)
    heard = await room.listen()
    hears(heard, "alice", "bob", "carol")
    hears(heard, "bob", "alice", "carol")
    hears(heard, "carol", "bob")
    deaf_to(heard, "carol", "alice")
    assert heard["alice"]["bob"] < AMPLITUDE * 1.4  # once, not doubled by the sidebar


async def test_rfc6504_s7_2_fred_only_in_the_external_sidebar(room: Room) -> None:
    """Fred is in no roster of the main conference, only in the external sidebar: he talks
    with alice and bob and hears nothing of carol, who never hears him."""
    await room.dial("alice", "bob", "carol", "fred")
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "bob", "carol")])
    sidebar = conference(SIDE, [user(uid(n)) for n in ("alice", "bob", "fred")], link="inactive")
    await room.apply(main, sidebar)
    assert "msfred:asfred" not in room.engine.members("main")
    heard = await room.listen()
    hears(heard, "fred", "alice", "bob")
    hears(heard, "alice", "fred")
    deaf_to(heard, "fred", "carol")
    deaf_to(heard, "carol", "fred", "alice", "bob")


async def test_floor_control_grants_one_analyst_at_a_time(room: Room) -> None:
    """s6.7: panelists alice and bob talk in the main room; analysts a1 and a2 are muted
    there; both queue in the floor sidebar chaired by carol; the chair grants a2 the floor
    (a2's media status in the floor sidebar to sendrecv, a CCMP userRequest update), then
    moves the floor to a1."""
    await room.dial("alice", "bob", "carol", "a1", "a2")
    main = conference(
        MAIN,
        [
            user(uid("alice")),
            user(uid("bob")),
            user(uid("carol")),
            user(uid("a1"), "recvonly"),
            user(uid("a2"), "recvonly"),
        ],
    )

    def floor(granted: str | None) -> ConferenceInfo:
        analysts = [user(uid(a), "sendrecv" if a == granted else "recvonly") for a in ("a1", "a2")]
        return conference(SIDE, [user(uid("carol")), *analysts], link="sendrecv")

    await room.apply(main, floor(None))
    heard = await room.listen()
    hears(heard, "alice", "bob", "carol")
    for name in ("alice", "bob", "carol"):
        deaf_to(heard, name, "a1", "a2")
    hears(heard, "a1", "alice", "bob", "carol")

    await room.apply(main, floor("a2"))
    heard = await room.listen()
    for name in ("alice", "bob", "carol", "a1"):
        hears(heard, name, "a2")
        deaf_to(heard, name, "a1")
    hears(heard, "a2", "alice", "bob", "carol")
    assert heard["carol"]["a2"] < AMPLITUDE * 1.4  # once, not also via the sidebar

    await room.apply(main, floor("a1"))
    heard = await room.listen()
    for name in ("alice", "bob", "a2"):
        hears(heard, name, "a1")
        deaf_to(heard, name, "a2")


async def test_reconcile_is_idempotent_and_mute_applies(room: Room) -> None:
    await room.dial("alice", "bob", "carol")
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "bob", "carol")])
    sidebar = conference(SIDE, [user(uid("alice")), user(uid("bob"))])
    planned = await room.apply(main, sidebar)
    known = room.driver.known
    assert plan(room.driver.desired, known) == []
    await room.media.update(MAIN, planned)  # again: nothing to send, nothing changes
    assert room.driver.known == known
    assert room.media.applied(MAIN) == planned
    # mute bob in the sidebar (RFC 4575 media status recvonly): alice no longer hears him
    muted = conference(SIDE, [user(uid("alice")), user(uid("bob"), "recvonly")])
    await room.apply(main, muted)
    heard = await room.listen()
    deaf_to(heard, "alice", "bob")
    hears(heard, "bob", "alice")
    await room.media.drop(MAIN)
    assert room.driver.desired.conferences == {}
    assert room.driver.desired.joins == {}


async def test_coaching_from_the_real_core_with_refresh(room: Room, tmp_path: Path) -> None:
    """The whole chain: CCMP-style commands on the real core (SQLite file), the coaching
    vector parsed by the xcon codec, MediaReconciler.refresh(uri, store.get, connections) after
    each change, real audio; deleting the sidebar puts the supervisor back in the room."""
    store = add_accounts(open_store(tmp_path / "state"))
    try:
        await room.dial("alice", "bob", "carol")
        conf = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
        for actor in (ALICE, BOB, CAROL):
            store.apply(cmd.AddUser(actor=actor, uri=conf))
        await room.media.refresh(conf, store.get, lambda: room.connections)
        heard = await room.listen()
        hears(heard, "carol", "alice", "bob")

        sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
        patch = parse_conference_info(
            vector("coaching-sidebar.xml", sidebar, audio_label(store, sidebar))
        )
        store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=True, patch=patch))
        planned = await room.media.refresh(sidebar, store.get, lambda: room.connections)
        assert len(planned.conferences) == 2
        heard = await room.listen()
        hears(heard, "alice", "bob", "carol")
        hears(heard, "bob", "alice", "carol")
        hears(heard, "carol", "bob")
        deaf_to(heard, "carol", "alice")

        store.apply(cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=True))
        planned = await room.media.refresh(conf, store.get, lambda: room.connections)
        assert len(planned.conferences) == 1
        heard = await room.listen()
        hears(heard, "carol", "alice", "bob")
    finally:
        store.close()
