"""Three phones dial the focus (factory, then the conference URI) with real RTP: each hears
the other two tones and not its own (by spectrum); a CCMP mute silences one of them."""

from __future__ import annotations

import asyncio

from focus.core.commands import UpdateUser
from focus.core.policy import Actor
from focus.sip.sdp import parse_sdp
from focus.sip.ua import Call
from focus.xcon.model import Endpoint, Media, User
from tests.focus.conftest import Focus, PhoneFactory, sdp_offer
from tests.focus.test_in_call import conf_of, the_user
from tests.media.phones import Phone, tone_levels

TONES = (600.0, 1000.0, 1400.0)
HEARD = 800.0  # each tone is sent at amplitude 8000; a mix partner arrives well above this


async def listen(phones: list[Phone], seconds: float = 0.6) -> list[dict[float, float]]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.4)  # let the mix settle after a change
    start = loop.time()
    await asyncio.sleep(seconds)
    end = loop.time()
    return [tone_levels(p.audio(start, end), list(TONES)) for p in phones]


def assert_hears(levels: dict[float, float], heard: set[float], who: int) -> None:
    for tone, level in levels.items():
        if tone in heard:
            assert level > HEARD, f"party {who} should hear {tone} Hz: {levels}"
        else:
            assert level < HEARD / 8, f"party {who} should not hear {tone} Hz: {levels}"


async def test_three_parties_hear_each_other_and_a_ccmp_mute(
        focus: Focus, phones: PhoneFactory) -> None:
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
        focus.running.store.apply(UpdateUser(
            actor=Actor.system(), uri=f"xcon:{conf}@example.org",
            user=User(entity=user.entity,
                      endpoints=(Endpoint(media=(Media(id="1", status="recvonly"),)),))))
        levels = await listen(rtp)
        assert_hears(levels[0], {TONES[1], TONES[2]}, 0)  # muted, still hears
        assert_hears(levels[1], {TONES[2]}, 1)
        assert_hears(levels[2], {TONES[1]}, 2)
    finally:
        for phone in rtp:
            await phone.stop_tone()
            phone.close()
