"""Three phones dial the focus (factory, then the conference URI) with real RTP: each hears
the other two tones and not its own (by spectrum); a CCMP mute silences one of them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from focus.core.commands import DeleteConference, UpdateUser
from focus.core.policy import Actor
from focus.sip.aio.ua import UserAgent
from focus.sip.sdp import parse_sdp
from focus.sip.uacore import Call, IncomingCall, UAEvent
from focus.xcon.model import Endpoint, Media, User
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer
from tests.focus.calls.test_in_call import conf_of, the_user
from tests.mediactrl.media.phones import Phone, assert_hears, tone_levels
from tests.waiting import eventually

TONES = (600.0, 1000.0, 1400.0)


async def listen(phones: list[Phone], seconds: float = 0.6) -> list[dict[float, float]]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.4)  # let the mix settle after a change
    start = loop.time()
    await asyncio.sleep(seconds)
    end = loop.time()
    return [tone_levels(p.audio(start, end), list(TONES)) for p in phones]


async def test_three_parties_hear_each_other_and_a_ccmp_mute(
    focus: Focus, phones: PhoneFactory
) -> None:
    rtp = [Phone(t) for t in TONES]
    calls: list[Call] = []
    try:
        target = focus.factory
        for n, phone in enumerate(rtp):
            await phone.open()
            ua = await phones(f"party{n}")
            call = await ua.invite(target, sdp_offer(phone.address[1]))
            calls.append(call)
            target = focus.uri(conf_of(call))  # the others dial the conference URI
            phone.start_tone(parse_sdp(call.answer).media[0].port)
        conf = conf_of(calls[0])
        levels = await listen(rtp)
        for i, tone in enumerate(TONES):
            assert_hears(levels[i], set(TONES) - {tone}, i)

        # CCMP mute of party 0 (RFC 6504 s6.2: media status recvonly).
        user = the_user(focus, conf, 0)
        assert user.entity is not None
        focus.running.store.apply(
            UpdateUser(
                actor=Actor.system(),
                uri=f"xcon:{conf}@example.org",
                user=User(
                    entity=user.entity,
                    endpoints=(Endpoint(media=(Media(id="1", status="recvonly"),)),),
                ),
            )
        )
        levels = await listen(rtp)
        assert_hears(levels[0], {TONES[1], TONES[2]}, 0)  # muted, still hears
        assert_hears(levels[1], {TONES[2]}, 1)
        assert_hears(levels[2], {TONES[1]}, 2)
    finally:
        for phone in rtp:
            await phone.stop_tone()
            phone.close()


async def test_media_server_restart_keeps_the_calls_and_the_mix(
    focus: Focus, phones: PhoneFactory
) -> None:
    """The media server dies and comes back (same SIP address, every leg and mixer lost):
    the SIP calls stay up; the focus re-creates the mixer over a new CFW channel, opens new
    legs and re-INVITEs the phones; they hear each other again. Two phones are
    dialed out to (CCMP), the third dials in: the focus re-INVITEs calls it answered as well
    as calls it placed."""
    from focus.core.changes import UserAdded
    from focus.core.commands import AddUser, CreateConference
    from focus.xcon.model import JoiningMethod

    rtp = [Phone(t) for t in TONES]
    calls: list[Call] = []
    reinvites: dict[str, int] = {}  # call label -> re-INVITEs answered
    store = focus.running.store
    conf = store.apply(CreateConference(actor=Actor.system()))[0].uri
    try:
        for n, phone in enumerate(rtp[:2]):
            await phone.open()
            ua = await phones(f"party{n}")
            answered: list[Call] = []
            ua.on_event = _answer_everything(phone, answered, reinvites)
            user = User(
                entity="xcon-userid:AUTO_GENERATE_1@example.org",
                endpoints=(
                    Endpoint(entity=ua.local_uri(), joining_method=JoiningMethod.DIALED_OUT),
                ),
            )
            (added,) = store.apply(AddUser(actor=Actor.system(), uri=conf, user=user))
            assert isinstance(added, UserAdded)
            await eventually(functools.partial(_confirmed, answered))
            calls.append(answered[0])
            phone.start_tone(parse_sdp(answered[0].remote_sdp).media[0].port)
        dialer = rtp[2]
        await dialer.open()
        ua = await phones("party2")
        ua.on_event = _answer_everything(dialer, [], reinvites)
        conf_user = conf.removeprefix("xcon:").partition("@")[0]
        calls.append(await ua.invite(focus.uri(conf_user), sdp_offer(dialer.address[1])))
        dialer.start_tone(parse_sdp(calls[2].remote_sdp).media[0].port)
        levels = await listen(rtp)
        for i, tone in enumerate(TONES):
            assert_hears(levels[i], set(TONES) - {tone}, i)

        await focus.restart_media_server()
        # Each phone is re-INVITEd with the new leg's offer (more than once if a first new
        # leg is lost in the resync); once the legs are back, send each tone where the last
        # offer says. (A new leg's SDP may equal the old one's, so count re-INVITEs.)
        await eventually(
            lambda: all(reinvites.get(c.label, 0) >= 1 for c in calls),
            timeout=15,
            what=f"re-INVITEs {reinvites}",
        )
        await focus.settled((3, 3, 3), timeout=15)
        await asyncio.sleep(0.3)
        for phone, call in zip(rtp, calls, strict=True):
            await phone.stop_tone()
            phone.start_tone(parse_sdp(call.remote_sdp).media[0].port)
        assert all(c.state.value == "confirmed" for c in calls)
        levels = await listen(rtp)
        for i, tone in enumerate(TONES):
            assert_hears(levels[i], set(TONES) - {tone}, i)
    finally:
        for phone in rtp:
            await phone.stop_tone()
            phone.close()
    focus.running.store.apply(DeleteConference(actor=Actor.system(), uri=conf))
    await focus.settled((0, 0, 0))


def _confirmed(answered: list[Call]) -> bool:
    return bool(answered) and answered[0].state.value == "confirmed"


def _answer_everything(
    phone: Phone, answered: list[Call], reinvites: dict[str, int]
) -> Callable[[UserAgent, UAEvent], None]:
    """An auto-answering phone that also takes whatever new media is offered (RFC 3264 s8),
    in calls it answered and in calls it placed."""

    def on_event(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall):
            if event.reinvite:
                reinvites[event.call.label] = reinvites.get(event.call.label, 0) + 1
            else:
                answered.append(event.call)
            ua.accept(event.call, sdp_offer(phone.address[1]))

    return on_event
