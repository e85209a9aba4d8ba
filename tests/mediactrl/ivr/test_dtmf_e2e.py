"""DTMF reported upward (issue 4) over real loopback: SIP legs, CFW channel, RTP digits.

A phone sends RFC 4733 telephone-events on a SIP media leg of the bundled media server; the
focus side (MediaControlClient over a SIP-negotiated channel + MediaDriver) watches the leg
with an msc-ivr/1.0 DTMF dialog (RFC 6231) and must see each digit exactly once, also after
its control channel is dropped and re-opened.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from focus.sip.aio.ua import UserAgent
from mediactrl.client import MediaControlClient, direct_opener
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.ivr.codec import PACKAGE as IVR_PACKAGE
from mediactrl.legs import MediaLeg, MediaLegs
from mediactrl.mixer.codec import PACKAGE as MIXER_PACKAGE
from mediactrl.plan import ConferenceSpec
from mediactrl.server.app import MediaServer
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService
from mediactrl.sip_opener import SipChannelOpener
from tests.mediactrl.client.test_channel import until
from tests.mediactrl.media.phones import Phone, press_key
from tests.mediactrl.server.conftest import FAST
from tests.mediactrl.server.test_sip_side import audio_of, phone_sdp


@dataclass
class Keypad:
    """A phone on a SIP media leg that presses keys (RFC 4733 s2.5 packet pattern)."""

    phone: Phone
    leg: MediaLeg
    legs: MediaLegs
    port: int
    timestamp: int = field(default_factory=lambda: secrets.randbits(16))

    def press(self, key: str) -> None:
        self.timestamp = press_key(self.phone, self.port, self.timestamp, key)


@dataclass
class Focus:
    client: MediaControlClient
    driver: MediaDriver
    digits: list[tuple[str, str]]


@pytest.fixture
async def focus(media_server: MediaServer, ua: UserAgent) -> AsyncIterator[Focus]:
    opener = SipChannelOpener(ua, media_server.sip_uri, address="127.0.0.1")
    client = MediaControlClient(opener, FAST)
    digits: list[tuple[str, str]] = []
    driver = MediaDriver(client, on_dtmf=lambda c, d: digits.append((c, d)))
    await client.start()
    try:
        yield Focus(client, driver, digits)
    finally:
        await client.close()
        await opener.close()


@pytest.fixture
async def keypad(legs: MediaLegs) -> AsyncIterator[Keypad]:
    phone = Phone(None)
    await phone.open()
    try:
        leg = await legs.open(phone_sdp(phone.address[1]))
        yield Keypad(phone, leg, legs, audio_of(leg.answer)[1])
    finally:
        phone.close()


async def settle() -> None:
    """Time for a duplicate to show up, were one sent (a test of absence has to wait)."""
    await asyncio.sleep(0.2)


async def test_each_digit_reaches_on_dtmf_exactly_once(
    media_server: MediaServer, focus: Focus, keypad: Keypad
) -> None:
    assert focus.client.has_package(IVR_PACKAGE) and focus.client.has_package(MIXER_PACKAGE)
    cid = keypad.leg.connection
    await focus.driver.watch_dtmf(cid)
    await focus.driver.watch_dtmf(cid)  # idempotent: still one dialog
    assert (
        len(media_server.control.ivr.dialogs_of(next(iter(media_server.control.open_channels))))
        == 1
    )
    for count, key in enumerate("12#", 1):
        keypad.press(key)
        await until(lambda n=count: len(focus.digits) == n)
    await settle()
    assert focus.digits == [(cid, "1"), (cid, "2"), (cid, "#")]


async def test_unwatched_connection_reports_nothing(focus: Focus, keypad: Keypad) -> None:
    cid = keypad.leg.connection
    await focus.driver.watch_dtmf(cid)
    keypad.press("4")
    await until(lambda: len(focus.digits) == 1)
    await focus.driver.unwatch_dtmf(cid)
    keypad.press("5")
    await settle()
    assert focus.digits == [(cid, "4")]
    assert focus.driver.watched_dtmf == frozenset()


async def test_digits_still_arrive_after_the_channel_is_dropped(
    media_server: MediaServer, focus: Focus, keypad: Keypad
) -> None:
    cid = keypad.leg.connection
    await focus.driver.watch_dtmf(cid)
    keypad.press("7")
    await until(lambda: len(focus.digits) == 1)
    media_server.control.drop_channels()
    await until(lambda: focus.client.connections_made == 2 and cid in focus.driver.dtmf_active)
    keypad.press("8")
    await until(lambda: len(focus.digits) == 2)
    await settle()
    assert focus.digits == [(cid, "7"), (cid, "8")]
    owners = list(media_server.control.open_channels)
    assert [len(media_server.control.ivr.dialogs_of(o)) for o in owners] == [1]


async def test_a_dialog_on_an_unknown_connection_is_refused(focus: Focus) -> None:
    with pytest.raises(MediaDriverError) as caught:
        await focus.driver.watch_dtmf("no-such:connection")
    assert caught.value.failures["no-such:connection"].startswith("407")
    assert focus.driver.watched_dtmf == frozenset()


async def test_bye_ends_the_dialog_and_the_wish(
    media_server: MediaServer, focus: Focus, keypad: Keypad
) -> None:
    cid = keypad.leg.connection
    await focus.driver.watch_dtmf(cid)
    await keypad.legs.close(keypad.leg)
    await until(lambda: not focus.driver.watched_dtmf)
    assert focus.driver.dtmf_active == frozenset()
    assert all(
        not media_server.control.ivr.dialogs_of(o) for o in media_server.control.open_channels
    )


async def test_a_mixer_only_server_still_works() -> None:
    backend = ControlOnlyBackend(accept_any_connection=True)
    server = ControlServer(
        MixerService(backend),
        ControlServerConfig(packages=(MIXER_PACKAGE,), accept_any_dialog=True),
    )
    host, port = await server.start()
    client = MediaControlClient(direct_opener(host, port, "mixer-only"), FAST)
    driver = MediaDriver(client)
    try:
        await client.start()
        assert client.has_package(MIXER_PACKAGE) and not client.has_package(IVR_PACKAGE)
        await driver.watch_dtmf("a:b")  # kept for a server that has the package
        assert driver.watched_dtmf == {"a:b"} and driver.dtmf_active == frozenset()
        await driver.ensure_conference(ConferenceSpec("room"))
        assert driver.in_sync
    finally:
        await client.close()
        await server.close()
