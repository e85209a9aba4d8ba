"""Media timeout: the media server tells the focus (the media-timeout extension event, over
the CFW channel) that a joined call has sent no RTP and no RTCP for the profile's
``media_timeout`` (2 s here, a test value), and the focus ends that call with BYE as an
ordinary departure. A talking phone, and one that put the call on hold, stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from focus.settings import SipProfile
from focus.sip.sdp import parse_sdp
from tests.focus.calls.conftest import Focus, PhoneFactory, ended_by_peer, sdp_offer, start_focus
from tests.focus.calls.test_in_call import conf_of
from tests.mediactrl.media.phones import Phone
from tests.waiting import eventually

TIMEOUT = 2


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Focus]:
    async with start_focus(tmp_path, SipProfile(media_timeout=TIMEOUT)) as started:
        yield started


async def test_a_silent_call_is_ended_and_leaves_everything(
    quick: Focus, phones: PhoneFactory
) -> None:
    alice = await phones("alice")
    ended = ended_by_peer(alice)
    call = await alice.invite(quick.factory, sdp_offer(35800))  # and never sends RTP
    conf = conf_of(call)
    await quick.settled((1, 1, 1))
    await eventually(lambda: bool(ended), "the focus's BYE", timeout=TIMEOUT + 5)
    await quick.settled((0, 0, 0))
    assert not quick.focus.calls
    uri = f"xcon:{conf}@example.org"
    await eventually(lambda: quick.running.store.get(uri) is None, "the ad hoc conference ended")
    # Its mixer went with it (the engine mixes nothing for nobody).
    await eventually(lambda: quick.server.engine.stats().conferences == 0, "no mixer left")


async def test_a_talking_call_and_a_held_one_stay(quick: Focus, phones: PhoneFactory) -> None:
    talker, held = Phone(700.0), Phone(None)
    try:
        await talker.open()
        await held.open()
        ua_t, ua_h = await phones("talker"), await phones("held")
        ended_t, ended_h = ended_by_peer(ua_t), ended_by_peer(ua_h)
        call_t = await ua_t.invite(quick.factory, sdp_offer(talker.address[1]))
        talker.start_tone(parse_sdp(call_t.answer).media[0].port)
        target = quick.uri(conf_of(call_t))
        call_h = await ua_h.invite(target, sdp_offer(held.address[1]))
        # The second phone puts the call on hold (RFC 3264 s8.4) and then sends nothing.
        response = await ua_h.reinvite(call_h, sdp_offer(held.address[1], "sendonly"))
        assert response.status == 200
        await asyncio.sleep(TIMEOUT * 2 + 1)
        assert not ended_t and not ended_h
        assert len(quick.focus.calls) == 2
        assert quick.audit() == (2, 2, 2)
    finally:
        await talker.stop_tone()
        talker.close()
        held.close()
