"""A phone that holds is not a phone that vanished: after a re-INVITE saying it will send
nothing (RFC 3264 s6.1, s8.4: ``a=recvonly`` or ``a=inactive``), it sends no RTP and no
RTCP, and the media timeout (2 s here, a test value) must not end its call; once it
offers sendrecv again, silence counts again and does end it. A real sipp phone too
(sip_profiles/sipp/focus_recvonly_silent.xml)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from focus.settings import SipProfile
from tests import sipp as peer
from tests.focus.calls.conftest import Focus, PhoneFactory, ended_by_peer, sdp_offer, start_focus
from tests.paths import SIPP_SCENARIOS
from tests.waiting import eventually

TIMEOUT = 2


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Focus]:
    async with start_focus(tmp_path, SipProfile(media_timeout=TIMEOUT)) as started:
        yield started


@pytest.mark.parametrize("direction", ["recvonly", "inactive"])
async def test_a_phone_that_will_not_send_is_not_timed_out(
    quick: Focus, phones: PhoneFactory, direction: str
) -> None:
    alice = await phones("alice")
    ended = ended_by_peer(alice)
    call = await alice.invite(quick.factory, sdp_offer(35860))  # never sends RTP or RTCP
    response = await alice.reinvite(call, sdp_offer(35860, direction))
    assert response.status == 200
    await asyncio.sleep(TIMEOUT * 2 + 1)
    assert not ended, f"a phone that said {direction} was timed out"
    assert len(quick.focus.calls) == 1 and quick.audit() == (1, 1, 1)
    # Back to sendrecv and still silent: now it has vanished.
    response = await alice.reinvite(call, sdp_offer(35860))
    assert response.status == 200
    await eventually(lambda: bool(ended), "the focus's BYE", timeout=TIMEOUT + 5)
    await quick.settled((0, 0, 0))


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
async def test_a_sipp_phone_that_says_recvonly_and_stays_silent_is_not_ended(
    quick: Focus, tmp_path: Path
) -> None:
    done, out = await peer.run_async(
        f"{quick.host}:{quick.port}",
        "-sf",
        str(SIPP_SCENARIOS / "focus_recvonly_silent.xml"),
        "-s",
        "conference",
        "-d",
        str((2 * TIMEOUT + 1) * 1000),
        "-m",
        "1",
        "-trace_err",
        cwd=tmp_path,
    )
    assert done == 0, out + peer.error_logs(tmp_path)
    await quick.settled((0, 0, 0))
