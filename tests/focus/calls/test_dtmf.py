"""The keypad mute toggle (``dtmf_mute_toggle``, ConfBridge's default user menu): a phone
sends real RFC 4733 telephone-events on its call with the focus; the bundled media server
reports the digits over msc-ivr (RFC 6231); the focus flips the caller's audio media status in
the core, and the mixer join follows."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from focus.calls.digits import DigitCollector, toggled_mute
from focus.calls.participant import Participant
from focus.settings import SettingsError, SipProfile
from focus.sip.sdp import parse_sdp
from focus.sip.uacore import Call
from focus.xcon.model import MediaStatus
from mediactrl.mixer.model import Direction as MixDirection
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer, start_focus
from tests.focus.calls.test_e2e_media import listen
from tests.focus.calls.test_in_call import conf_of, join_direction
from tests.mediactrl.media.phones import HEARD, Phone, press_key
from tests.waiting import eventually

ALICE_TONE = 600.0

# ---------------------------------------------------------------------- pure parts


def test_the_sequence_completes_once_and_starts_over() -> None:
    keys = DigitCollector("*6", timeout=2.0)
    assert not keys.receive("*", 0.0)
    assert keys.get_timer() == 2.0
    assert keys.receive("6", 0.5)
    assert keys.get_timer() is None and keys.pressed == ""
    assert not keys.receive("6", 0.6)  # a lone 6 is not the sequence


def test_stray_digits_before_the_sequence_cost_nothing() -> None:
    keys = DigitCollector("*6", timeout=2.0)
    assert [keys.receive(d, 0.1 * i) for i, d in enumerate("1**6")] == [False, False, False, True]
    keys = DigitCollector("#1#2", timeout=2.0)
    assert [keys.receive(d, 0.1 * i) for i, d in enumerate("#1#1#2")] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]


def test_a_slow_press_starts_over() -> None:
    keys = DigitCollector("*6", timeout=2.0)
    keys.receive("*", 0.0)
    assert not keys.receive("6", 2.5)
    keys.receive("*", 3.0)
    keys.handle_timer(4.0)  # not yet stale
    assert keys.pressed == "*"
    keys.handle_timer(5.0)
    assert keys.pressed == "" and keys.get_timer() is None
    assert not keys.receive("6", 5.1)


def test_an_empty_sequence_never_matches() -> None:
    keys = DigitCollector("", timeout=2.0)
    assert not any(keys.receive(d, 0.0) for d in "*6*6")


def test_the_toggle_flips_only_the_send_half() -> None:
    assert toggled_mute("sendrecv") is MediaStatus.RECVONLY
    assert toggled_mute("recvonly") is MediaStatus.SENDRECV
    assert toggled_mute("sendonly") is MediaStatus.INACTIVE
    assert toggled_mute("inactive") is MediaStatus.SENDONLY
    assert toggled_mute("bogus") is MediaStatus.RECVONLY


def test_profile_setting() -> None:
    assert SipProfile().dtmf_mute_toggle == "*6"
    assert SipProfile.load("default").dtmf_mute_toggle == "*6"
    off = SipProfile.from_toml("x", 'dtmf_mute_toggle = ""\ndtmf_digit_timeout = 1')
    assert off.dtmf_mute_toggle == "" and off.dtmf_digit_timeout == 1.0
    for bad in (
        'dtmf_mute_toggle = "*6x"',
        'dtmf_mute_toggle = "123456789"',
        "dtmf_mute_toggle = 6",
        "dtmf_digit_timeout = 0",
    ):
        with pytest.raises(SettingsError):
            SipProfile.from_toml("x", bad)


# ---------------------------------------------------------------------- end to end


@dataclass
class Keypad:
    """Presses keys as RFC 4733 s2.5 packets on the phone's RTP toward the media server."""

    phone: Phone
    port: int
    timestamp: int = field(default_factory=lambda: secrets.randbits(16))

    async def press(self, keys: str) -> None:
        for key in keys:
            self.timestamp = press_key(self.phone, self.port, self.timestamp, key)
            await asyncio.sleep(0.05)


def participant(focus: Focus, call: Call) -> Participant:
    (p,) = [q for q in focus.focus.calls if q.call.call_id == call.call_id]
    return p


def audio_status(focus: Focus, conf: str, caller: str) -> str | None:
    obj = focus.running.store.get(f"xcon:{conf}@example.org")
    assert obj is not None and obj.info.users is not None
    for user in obj.info.users.users:
        for e in user.endpoints:
            if e.entity is not None and caller in e.entity:
                return next((str(m.status) for m in e.media if m.status is not None), None)
    raise AssertionError(f"{caller} not in {conf}")


def alice_join(focus: Focus, conf: str, alice: Participant) -> MixDirection | None:
    assert alice.leg is not None
    ((spec),) = [
        s
        for k, s in focus.media.driver.known.joins.items()
        if alice.leg.connection in k and conf in k
    ]
    assert spec.streams is not None
    directions = {s.direction or MixDirection.SENDRECV for s in spec.streams}
    return directions.pop() if len(directions) == 1 else MixDirection.SENDRECV


async def test_star_six_mutes_and_unmutes(focus: Focus, phones: PhoneFactory) -> None:
    alice_rtp, bob_rtp = Phone(ALICE_TONE), Phone(None)
    try:
        await alice_rtp.open()
        await bob_rtp.open()
        alice_call = await (await phones("alice")).invite(
            focus.factory, sdp_offer(alice_rtp.address[1])
        )
        conf = conf_of(alice_call)
        await (await phones("bob")).invite(focus.uri(conf), sdp_offer(bob_rtp.address[1]))
        alice = participant(focus, alice_call)
        assert alice.leg is not None
        await eventually(
            lambda: alice.leg is not None and alice.leg.connection in focus.media.driver.dtmf_active
        )
        port = parse_sdp(alice_call.answer).media[0].port
        keypad = Keypad(alice_rtp, port)
        alice_rtp.start_tone(port)
        assert (await listen([bob_rtp]))[0][ALICE_TONE] > HEARD

        await alice_rtp.stop_tone()  # keys on their own: one RTP timeline at a time
        await keypad.press("*6")
        await eventually(lambda: audio_status(focus, conf, "alice") == "recvonly")
        await eventually(lambda: alice_join(focus, conf, alice) is MixDirection.RECVONLY)
        assert alice.media_status == "recvonly"

        # Other digits (and a lone 6) do nothing.
        await keypad.press("1256#")
        await asyncio.sleep(0.3)
        assert audio_status(focus, conf, "alice") == "recvonly"
        alice_rtp.start_tone(port)
        assert (await listen([bob_rtp]))[0][ALICE_TONE] < HEARD / 8  # bob no longer hears her

        await alice_rtp.stop_tone()
        await keypad.press("*6")
        await eventually(lambda: audio_status(focus, conf, "alice") == "sendrecv")
        await eventually(lambda: alice_join(focus, conf, alice) is MixDirection.SENDRECV)
        alice_rtp.start_tone(port)
        assert (await listen([bob_rtp]))[0][ALICE_TONE] > HEARD
    finally:
        await alice_rtp.stop_tone()
        alice_rtp.close()
        bob_rtp.close()


async def test_a_profile_without_the_toggle_ignores_the_keypad(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    async with start_focus(tmp_path, SipProfile(dtmf_mute_toggle="")) as focus:
        alice_rtp = Phone(None)
        await alice_rtp.open()
        try:
            call = await (await phones("alice")).invite(
                focus.factory, sdp_offer(alice_rtp.address[1])
            )
            conf = conf_of(call)
            keypad = Keypad(alice_rtp, parse_sdp(call.answer).media[0].port)
            await keypad.press("*6")
            await asyncio.sleep(0.3)
            assert focus.media.driver.watched_dtmf == frozenset()
            assert audio_status(focus, conf, "alice") == "sendrecv"
            assert join_direction(focus, conf) in (None, MixDirection.SENDRECV)
        finally:
            alice_rtp.close()


async def test_the_keypad_survives_a_media_server_restart(
    focus: Focus, phones: PhoneFactory
) -> None:
    """The new leg the focus opens after a media server restart is watched again."""
    from tests.focus.calls.test_e2e_media import _answer_everything

    alice_rtp = Phone(None)
    await alice_rtp.open()
    try:
        ua = await phones("alice")
        reinvites: dict[str, int] = {}
        ua.on_event = _answer_everything(alice_rtp, [], reinvites)
        call = await ua.invite(focus.factory, sdp_offer(alice_rtp.address[1]))
        conf = conf_of(call)
        alice = participant(focus, call)
        assert alice.leg is not None
        first = alice.leg.connection
        await focus.restart_media_server()
        await eventually(lambda: reinvites.get(call.label, 0) >= 1, timeout=15)
        await focus.settled((1, 1, 1), timeout=15)
        await eventually(
            lambda: (
                alice.leg is not None
                and alice.leg.connection != first
                and alice.leg.connection in focus.media.driver.dtmf_active
            ),
            timeout=15,
        )
        assert first not in focus.media.driver.watched_dtmf
        await Keypad(alice_rtp, parse_sdp(call.remote_sdp).media[0].port).press("*6")
        await eventually(lambda: audio_status(focus, conf, "alice") == "recvonly")
        await eventually(lambda: alice_join(focus, conf, alice) is MixDirection.RECVONLY)
    finally:
        alice_rtp.close()
