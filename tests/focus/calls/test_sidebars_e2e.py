"""Sidebars, whisper, coaching and floor control through the WHOLE focus (issue 6; the seed's
s6.5-6.9; RFC 6504 s7): phones (the project's UA) call the focus, their RTP test endpoints
send distinct tones, a CCMP client (a real HTTP client on the CCMP server) or the core's
commands shape the sidebars, and the FFT of what each phone receives says whom it hears.
The focus alone turns the core's documents into joins on the bundled media server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import pytest
from lxml import etree

from ccmp_server.messages import (
    CcmpRequest,
    MessageType,
    Operation,
    ResponseCode,
)
from focus.calls.admission import same_aor
from focus.core import conference_id
from focus.core.commands import (
    CreateConference,
    CreateSidebar,
    DeleteSidebar,
    UpdateSidebar,
    UpdateUser,
)
from focus.core.policy import Actor
from focus.core.store import ConferenceStore
from focus.mediaplan import PARENT_AUDIO, PARENT_GAIN, SM_NS
from focus.sip.aio.ua import UserAgent
from focus.sip.sdp import parse_sdp
from focus.sip.uacore import Call
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import Endpoint, Media, Role, User
from tests.focus.calls.conftest import Focus, PhoneFactory, ccmp_as, sdp_offer
from tests.focus.mediaplan.docs import audio_label
from tests.focus.mediaplan.hearing import AMPLITUDE, deaf_to, hears
from tests.mediactrl.media.phones import Phone, tone_levels
from tests.waiting import eventually

SYSTEM = Actor.system()
CI = "urn:ietf:params:xml:ns:conference-info"
TONES = {"alice": 500.0, "bob": 900.0, "carol": 1300.0, "dave": 1700.0, "ethel": 2100.0}


#: sidebar members: name -> (audio status in the sidebar, sm:parent-audio override)
Members = Mapping[str, tuple[str | None, str | None]]


@dataclass
class Room:
    """A conference of the running focus and the phones in it."""

    focus: Focus
    make_phone: PhoneFactory
    conf: str = ""
    rtp: dict[str, Phone] = field(default_factory=dict)
    uas: dict[str, UserAgent] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)

    @property
    def store(self) -> ConferenceStore:
        return self.focus.running.store

    def local(self, uri: str) -> str:
        return conference_id(uri)

    async def dial(self, name: str, target: str | None = None) -> None:
        """``name`` calls the conference (or ``target``, e.g. a sidebar's URI) and sends
        its tone."""
        phone = Phone(TONES[name], amplitude=AMPLITUDE)
        await phone.open()
        self.rtp[name] = phone
        ua = await self.make_phone(name)
        self.uas[name] = ua
        call = await ua.invite(
            self.focus.uri(self.local(target or self.conf)), sdp_offer(phone.address[1])
        )
        self.calls[name] = call
        phone.start_tone(parse_sdp(call.answer).media[0].port)

    def entity(self, name: str, conference: str | None = None) -> str:
        obj = self.store.get(conference or self.conf)
        assert obj is not None and obj.info.users is not None
        aor = self.uas[name].local_uri()
        for user in obj.info.users.users:
            if user.entity and any(e.entity and same_aor(e.entity, aor) for e in user.endpoints):
                return str(user.entity)
        raise AssertionError(f"{name} is not a user of {conference or self.conf}")

    async def listen(self) -> dict[str, dict[str, float]]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.5)  # the refresh lands, jitter buffers and the old mix drain
        start = loop.time()
        await asyncio.sleep(0.6)
        end = loop.time()
        heard = {}
        for name, phone in self.rtp.items():
            levels = tone_levels(phone.audio(start, end), list(TONES.values()))
            heard[name] = {other: levels[hz] for other, hz in TONES.items()}
        return heard

    def mute(self, name: str, status: str) -> None:
        """A CCMP userRequest-style change of one user's audio in the main conference."""
        self.store.apply(
            UpdateUser(
                actor=SYSTEM,
                uri=self.conf,
                user=User(
                    entity=self.entity(name),
                    endpoints=(Endpoint(media=(Media(id="1", type="audio", status=status),)),),
                ),
            )
        )

    def sidebar(
        self,
        members: Members,
        *,
        link: str | None = None,
        gain: int | None = None,
        by_ref: bool = True,
    ) -> str:
        """A sidebar of the main conference (a clone, then patched as a CCMP client would):
        ``members`` name -> (audio status, sm:parent-audio override); everyone else of the
        main conference is deleted from it."""
        uri = self.store.apply(CreateSidebar(actor=SYSTEM, parent=self.conf, by_ref=by_ref))[0].uri
        self.patch_sidebar(uri, members, link=link, gain=gain, by_ref=by_ref)
        return uri

    def patch_sidebar(
        self,
        uri: str,
        members: Members,
        *,
        link: str | None = None,
        gain: int | None = None,
        by_ref: bool = True,
    ) -> None:
        body = sidebar_body(self, uri, members, link=link, gain=gain)
        info = parse_conference_info(
            f'<ci:conference-info xmlns:ci="{CI}" xmlns:sm="{SM_NS}" entity="{uri}">'
            f"{body}</ci:conference-info>".encode()
        )
        self.store.apply(UpdateSidebar(actor=SYSTEM, uri=uri, by_ref=by_ref, patch=info))

    async def close(self) -> None:
        for phone in self.rtp.values():
            await phone.stop_tone()
            phone.close()


def sidebar_body(
    room: Room, uri: str, members: Members, *, link: str | None, gain: int | None
) -> str:
    """The confInfo children of a sidebar update (RFC 6501), prefix ``ci``."""
    attrs = ""
    if link is not None:
        attrs += f' sm:{PARENT_AUDIO.rpartition("}")[2]}="{link}"'
    if gain is not None:
        attrs += f' sm:{PARENT_GAIN.rpartition("}")[2]}="{gain}"'
    users = ""
    for name in room.rtp:
        if name not in members:
            if name in room.calls and _in(room, name, uri):
                users += f'<ci:user entity="{room.entity(name, uri)}" state="deleted"/>'
            continue
        status, override = members[name]
        media_attr = f' sm:{PARENT_AUDIO.rpartition("}")[2]}="{override}"' if override else ""
        status_el = f"<ci:status>{status}</ci:status>" if status else ""
        users += (
            f'<ci:user entity="{room.entity(name, uri)}"><ci:endpoint>'
            f'<ci:media id="1"{media_attr}><ci:type>audio</ci:type>{status_el}'
            f"</ci:media></ci:endpoint></ci:user>"
        )
    return (
        f"<ci:conference-description><ci:available-media>"
        f'<ci:entry label="{audio_label(room.store, uri)}"{attrs}>'
        f"<ci:type>audio</ci:type><ci:status>sendrecv</ci:status></ci:entry>"
        f"</ci:available-media></ci:conference-description><ci:users>{users}</ci:users>"
    )


def _in(room: Room, name: str, uri: str) -> bool:
    try:
        room.entity(name, uri)
    except AssertionError:
        return False
    return True


@pytest.fixture
async def room(focus: Focus, phones: PhoneFactory) -> AsyncIterator[Room]:
    made = Room(focus, phones)
    made.conf = made.store.apply(CreateConference(actor=SYSTEM))[0].uri
    try:
        yield made
    finally:
        await made.close()


# ---------------------------------------------------------------------- CCMP over HTTP


def conf_info(body: str, entity: str) -> etree._Element:
    return etree.fromstring(
        f'<confInfo xmlns:ci="{CI}" xmlns:sm="{SM_NS}" entity="{entity}">{body}</confInfo>'.encode()
    )


async def update_sidebar(
    session: aiohttp.ClientSession, focus: Focus, message_type: MessageType, sidebar: str, body: str
) -> None:
    """RFC 6503 sidebarBy{Val,Ref}Request update of ``sidebar`` with a <confInfo> ``body``."""
    done = await ccmp_as(
        "chair",
        session,
        focus,
        CcmpRequest(
            message_type,
            operation=Operation.UPDATE,
            conf_obj_id=sidebar,
            info=conf_info(body, sidebar),
        ),
    )
    assert done.code is ResponseCode.SUCCESS, done.response_string


async def test_internal_sidebar_over_ccmp_hears_main_at_reduced_volume(room: Room) -> None:
    """s6.5 with RFC 6503 sidebarByValRequest create + update: alice and bob talk in the
    sidebar and hear the main room 12 dB down; carol hears neither; deleting the sidebar
    brings everyone back at full volume."""
    for name in ("alice", "bob", "carol"):
        await room.dial(name)
    room.store.accounts.add("chair", Role.ADMINISTRATOR, "pw-chair")
    async with aiohttp.ClientSession() as session:
        made = await ccmp_as(
            "chair",
            session,
            room.focus,
            CcmpRequest(
                MessageType.SIDEBAR_BY_VAL, operation=Operation.CREATE, conf_obj_id=room.conf
            ),
        )
        assert made.code is ResponseCode.SUCCESS, made.response_string
        sidebar = made.conf_obj_id
        assert sidebar
        body = sidebar_body(
            room, sidebar, {"alice": (None, None), "bob": (None, None)}, link="recvonly", gain=-12
        )
        await update_sidebar(session, room.focus, MessageType.SIDEBAR_BY_VAL, sidebar, body)
        heard = await room.listen()
        hears(heard, "alice", "bob")
        hears(heard, "bob", "alice")
        deaf_to(heard, "carol", "alice", "bob")
        for name, other in (("alice", "bob"), ("bob", "alice")):
            ratio = heard[name]["carol"] / heard[name][other]
            assert 0.15 < ratio < 0.4, (name, heard[name])  # -12 dB is 0.25 in amplitude
        assert conference_id(sidebar) in room.focus.media.driver.known.conferences

        gone = await ccmp_as(
            "chair",
            session,
            room.focus,
            CcmpRequest(
                MessageType.SIDEBAR_BY_VAL, operation=Operation.DELETE, conf_obj_id=sidebar
            ),
        )
        assert gone.code is ResponseCode.SUCCESS, gone.response_string
    heard = await room.listen()
    for name in ("alice", "bob", "carol"):
        hears(heard, name, *[o for o in ("alice", "bob", "carol") if o != name])
    assert 0.7 < heard["alice"]["carol"] / heard["alice"]["bob"] < 1.4
    assert conference_id(sidebar) not in room.focus.media.driver.known.conferences


async def test_external_sidebar_with_a_party_dialled_into_it(room: Room) -> None:
    """s6.6: alice and bob are on hold in the main room and talk with dave, who dialled the
    sidebar's own URI; carol and ethel go on in the main room; dave only hears the
    sidebar."""
    for name in ("alice", "bob", "carol", "ethel"):
        await room.dial(name)
    sidebar = room.sidebar({"alice": (None, None), "bob": (None, None)}, link="inactive")
    await room.dial("dave", sidebar)
    assert room.entity("dave", sidebar)
    heard = await room.listen()
    for name in ("alice", "bob", "dave"):
        hears(heard, name, *[o for o in ("alice", "bob", "dave") if o != name])
        deaf_to(heard, name, "carol", "ethel")
    hears(heard, "carol", "ethel")
    hears(heard, "ethel", "carol")
    deaf_to(heard, "carol", "alice", "bob", "dave")


async def test_whisper_reaches_one_participant_only(room: Room) -> None:
    """s6.8: carol (the moderator) whispers to alice; alice keeps hearing and being heard in
    the main room; bob never hears the whisper."""
    for name in ("alice", "bob", "carol"):
        await room.dial(name)
    room.sidebar({"alice": ("recvonly", None), "carol": (None, "recvonly")}, link="sendrecv")
    heard = await room.listen()
    hears(heard, "alice", "carol", "bob")
    hears(heard, "bob", "alice")
    deaf_to(heard, "bob", "carol")
    hears(heard, "carol", "alice", "bob")


async def test_observe_and_coach(room: Room) -> None:
    """s6.9: supervisor alice hears agent bob and customer carol; only bob hears alice."""
    for name in ("alice", "bob", "carol"):
        await room.dial(name)
    room.sidebar({"alice": (None, None), "bob": (None, "sendrecv")}, link="recvonly")
    heard = await room.listen()
    hears(heard, "alice", "bob", "carol")
    hears(heard, "bob", "alice", "carol")
    hears(heard, "carol", "bob")
    deaf_to(heard, "carol", "alice")


async def test_floor_control_one_analyst_at_a_time(room: Room) -> None:
    """s6.7: analysts bob and carol are muted in the main room and queued in the floor
    sidebar (recvonly); the chair alice grants bob over CCMP (sidebarByRefRequest update
    setting his audio sendrecv), then revokes him and grants carol; dave (an ordinary
    participant) hears only the floor holder."""
    for name in ("alice", "bob", "carol", "dave"):
        await room.dial(name)
    room.mute("bob", "recvonly")
    room.mute("carol", "recvonly")
    queued = {"alice": (None, None), "bob": ("recvonly", None), "carol": ("recvonly", None)}
    floor = room.sidebar(queued, link="sendrecv")
    heard = await room.listen()
    deaf_to(heard, "dave", "bob", "carol")
    hears(heard, "dave", "alice")
    room.store.accounts.add("chair", Role.ADMINISTRATOR, "pw-chair")

    async def grant(session: aiohttp.ClientSession, members: Members) -> None:
        body = sidebar_body(room, floor, members, link=None, gain=None)
        await update_sidebar(session, room.focus, MessageType.SIDEBAR_BY_REF, floor, body)

    async with aiohttp.ClientSession() as session:
        await grant(session, {**queued, "bob": ("sendrecv", None)})  # the floor to bob
        heard = await room.listen()
        for name in ("alice", "carol", "dave"):
            hears(heard, name, "bob")
        deaf_to(heard, "dave", "carol")

        await grant(session, {**queued, "carol": ("sendrecv", None)})  # bob out, carol in
        heard = await room.listen()
        for name in ("alice", "bob", "dave"):
            hears(heard, name, "carol")
        deaf_to(heard, "dave", "bob")
        deaf_to(heard, "alice", "bob")


async def test_sidebars_end_with_their_parent(focus: Focus, phones: PhoneFactory) -> None:
    """An ad hoc conference with a sidebar: when the last caller hangs up the focus deletes
    the sidebar, then the conference; no mixer is left on the media server."""
    made = Room(focus, phones)
    try:
        phone = Phone(TONES["alice"], amplitude=AMPLITUDE)
        await phone.open()
        made.rtp["alice"] = phone
        ua = await phones("alice")
        made.uas["alice"] = ua
        call = await ua.invite(focus.factory, sdp_offer(phone.address[1]))
        (made.conf,) = list(focus.focus.ad_hoc)
        sidebar = made.sidebar({"alice": (None, None)}, link="recvonly")
        await eventually(
            lambda: conference_id(sidebar) in focus.media.driver.known.conferences,
            "the sidebar's mixer",
        )
        await ua.bye(call)
        await eventually(lambda: made.store.get(made.conf) is None, "the conference deleted")
        assert made.store.get(sidebar) is None
        await eventually(lambda: not focus.media.driver.known.conferences, "no mixer left")
        await focus.settled((0, 0, 0))
    finally:
        await made.close()


async def test_a_deleted_sidebar_puts_its_members_back(room: Room) -> None:
    """DeleteSidebar (by reference) over the core: the members are heard in main again."""
    for name in ("alice", "bob", "carol"):
        await room.dial(name)
    sidebar = room.sidebar({"alice": (None, None), "bob": (None, None)}, link="inactive")
    heard = await room.listen()
    deaf_to(heard, "carol", "alice", "bob")
    room.store.apply(DeleteSidebar(actor=SYSTEM, uri=sidebar, by_ref=True))
    heard = await room.listen()
    hears(heard, "carol", "alice", "bob")
    await eventually(
        lambda: conference_id(sidebar) not in room.focus.media.driver.known.conferences,
        "the sidebar's mixer destroyed",
    )
