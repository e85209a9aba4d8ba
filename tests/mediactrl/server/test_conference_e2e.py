"""Issue 4's end-to-end test over SIP + CFW + RTP on loopback.

Three RTP phones (real UDP, PCMU, distinct tones) each get a SIP media leg to the bundled media
server (placed with the project's UA, offer in the INVITE, as the focus places 3PCC legs); the
control channel is negotiated by SIP (SipChannelOpener) and driven through the MediaDriver.
What each phone hears is checked by spectrum.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from focus.sip.aio.ua import UserAgent
from focus.sip.sdp import parse_sdp
from mediactrl.client import MediaControlClient
from mediactrl.driver import MediaDriver
from mediactrl.legs import MediaLeg, MediaLegs
from mediactrl.plan import ConferenceSpec, participant_streams
from mediactrl.server.app import MediaServer
from mediactrl.sip_opener import SipChannelOpener
from tests.mediactrl.media.phones import Phone, assert_hears, tone_levels
from tests.mediactrl.server.conftest import FAST
from tests.mediactrl.server.test_sip_side import phone_sdp

TONES = (600.0, 1000.0, 1400.0)


@dataclass
class Party:
    phone: Phone
    leg: MediaLeg

    @property
    def tone(self) -> float:
        assert self.phone.tone_hz is not None
        return self.phone.tone_hz


@dataclass
class Conference:
    server: MediaServer
    ua: UserAgent
    opener: SipChannelOpener
    client: MediaControlClient
    driver: MediaDriver
    legs: MediaLegs
    parties: list[Party]
    unjoined: list[tuple[str, str, int]] = field(default_factory=list)


@pytest.fixture
async def conf(
    media_server: MediaServer, ua: UserAgent, legs: MediaLegs
) -> AsyncIterator[Conference]:
    opener = SipChannelOpener(ua, media_server.sip_uri, address="127.0.0.1")
    client = MediaControlClient(opener, FAST)
    unjoined: list[tuple[str, str, int]] = []
    driver = MediaDriver(client, on_unjoined=lambda a, b, s: unjoined.append((a, b, s)))
    await client.start()
    parties: list[Party] = []
    try:
        await client.wait_up(5)
        for tone in TONES:
            phone = Phone(tone)
            await phone.open()
            leg = await legs.open(phone_sdp(phone.address[1]))
            parties.append(Party(phone, leg))
            phone.start_tone(parse_sdp(leg.answer).media[0].port)
        await driver.ensure_conference(ConferenceSpec("e2e-room"))
        for party in parties:
            await driver.set_join(party.leg.connection, "e2e-room", participant_streams())
        yield Conference(media_server, ua, opener, client, driver, legs, parties, unjoined)
    finally:
        for party in parties:
            await party.phone.stop_tone()
            party.phone.close()
        await client.close()
        await opener.close()


async def listen(conf: Conference, seconds: float = 0.6) -> dict[int, dict[float, float]]:
    """Lets the mix settle, then records; returns, per party, the level of every tone."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.4)
    start = loop.time()
    await asyncio.sleep(seconds)
    end = loop.time()
    return {
        i: tone_levels(p.phone.audio(start, end), list(TONES)) for i, p in enumerate(conf.parties)
    }


async def test_each_hears_the_others_then_mute_then_unjoin(conf: Conference) -> None:
    a, b, c = conf.parties
    levels = await listen(conf)
    for i, party in enumerate(conf.parties):
        assert_hears(levels[i], set(TONES) - {party.tone}, i)

    # modifyjoin: A only receives from the mix; B and C stop hearing it, A still hears them.
    await conf.driver.set_join(a.leg.connection, "e2e-room", participant_streams(muted=True))
    levels = await listen(conf)
    assert_hears(levels[0], {b.tone, c.tone}, 0)
    assert_hears(levels[1], {c.tone}, 1)
    assert_hears(levels[2], {b.tone}, 2)

    # unjoin A: the rest continue.
    await conf.driver.unjoin(a.leg.connection, "e2e-room")
    levels = await listen(conf)
    assert_hears(levels[1], {c.tone}, 1)
    assert_hears(levels[2], {b.tone}, 2)
    assert not a.phone.audio(asyncio.get_running_loop().time() - 0.4, 1e12).size


async def test_bye_of_a_leg_unjoins_it_and_tells_the_focus(conf: Conference) -> None:
    a, b, c = conf.parties
    await conf.legs.close(c.leg)
    await asyncio.sleep(0.2)
    # unjoin-notify status 2 ("connection terminated", RFC 6505 s4.2.4.2) in the focus's names.
    assert conf.unjoined == [(c.leg.connection, "e2e-room", 2)]
    levels = await listen(conf)
    assert_hears(levels[0], {b.tone}, 0)
    assert_hears(levels[1], {a.tone}, 1)


async def test_dropped_channel_is_renegotiated_by_sip_audited_and_mixing_goes_on(
    conf: Conference,
) -> None:
    a, b, c = conf.parties
    resyncs = conf.driver.resyncs
    call = conf.opener.call
    conf.server.control.drop_channels()  # the channel dies mid-conference
    async with asyncio.timeout(10):
        # Audited (resyncs counts audits), then reconciled (in_sync: nothing left to send).
        while not (conf.opener.call not in (None, call) and conf.driver.resyncs > resyncs):
            await asyncio.sleep(0.02)
        while not conf.driver.in_sync:
            await asyncio.sleep(0.02)
    assert conf.opener.call is not call  # a new INVITE, a new cfw-id
    # The media legs were never touched and the conference kept mixing.
    levels = await listen(conf)
    for i, party in enumerate(conf.parties):
        assert_hears(levels[i], set(TONES) - {party.tone}, i)
    # And the new channel carries control: mute B over it.
    await conf.driver.set_join(b.leg.connection, "e2e-room", participant_streams(muted=True))
    levels = await listen(conf)
    assert_hears(levels[0], {c.tone}, 0)
    assert_hears(levels[2], {a.tone}, 2)
