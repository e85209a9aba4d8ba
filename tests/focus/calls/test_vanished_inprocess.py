"""Calls that vanish end and leave nothing behind (issue 10), in-process: the focus, its UA
and the bundled media server run in the test's event loop, so what each holds is read
through their public counts (``UserAgent.counts``, ``len(CallRegistry)``, the media
server's ``MixerService.counts`` and ``MediaEngine.stats``). A real sipp phone dials the
factory, sends RTP, and is SIGKILLed (no BYE, no more RTP or RTCP); within the profile's
``media_timeout`` (2 s, a test value) the focus ends the call, and then every count is back
to its value before the call, the leg's RTP ports can be bound again, and a few such cycles
leave no more call objects in memory than there were before."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from focus.calls.participant import Participant
from focus.settings import SipProfile
from focus.sip.aio.ua import UserAgent
from focus.sip.dialog import Dialog
from focus.sip.uacore import Call
from mediactrl.legs import MediaLeg
from mediactrl.media.silence import SilenceWatch
from tests import sipp as peer
from tests.focus.calls.conftest import Focus, start_focus
from tests.security.test_vanished_calls import media_server_port, vanishing_caller
from tests.waiting import eventually

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

TIMEOUT = 2  # the profile's media_timeout, a test value
ROOM_TYPES = (Participant, Call, Dialog, MediaLeg, SilenceWatch)


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Focus]:
    async with start_focus(tmp_path / "state", SipProfile(media_timeout=TIMEOUT)) as started:
        yield started


def held(focus: Focus) -> dict[str, object]:
    """Everything the focus and the media server hold for calls, by who holds it."""
    engine = focus.server.engine.stats()
    return {
        "focus UA": focus.focus.ua.counts(),
        "participants": len(focus.focus.calls),
        "focus legs": len(focus.media.legs.open_legs),
        "media server UA": focus.server.ua.counts(),
        "mixers": focus.server.control.service.counts(),
        "endpoints": (engine.endpoints, engine.conferences, engine.ports_in_use),
    }


def past_timer_j(*uas: UserAgent) -> None:
    """Runs each UA's core past Timer F/J/K (64*T1 + T4, RFC 3261 s17) on its own clock, so
    that transactions which linger after their final response are gone without waiting
    the real 32 s (a BYE to the dead phone times out with 408 then)."""
    for ua in uas:
        timers = ua.core.config.timers
        ua.core.handle_timer(ua.now + 64 * timers.t1 + timers.t4 + 1)
        ua.flush()


def room_objects() -> dict[str, int]:
    gc.collect()
    found = dict.fromkeys((t.__name__ for t in ROOM_TYPES), 0)
    for obj in gc.get_objects():
        if isinstance(obj, ROOM_TYPES):
            found[type(obj).__name__] += 1
    return found


async def vanish_once(focus: Focus, cwd: Path) -> tuple[int, dict[str, object]]:
    """A sipp caller joins, talks, is killed; the media server's RTP port it had and what
    was held during the call."""
    sipp = await peer.start_async(*vanishing_caller(f"{focus.host}:{focus.port}", cwd), cwd=cwd)
    try:
        await eventually(lambda: focus.audit() == (1, 1, 1), "sipp in", timeout=15)
        # The media server's port, from the 200 in sipp's log (written a little later).
        await eventually(lambda: media_server_port(cwd) is not None, "sipp's 200 logged")
        port = media_server_port(cwd)
        assert port is not None
        during = held(focus)
        assert not bindable(port), "the call's RTP ports are not the ones bound"
        await asyncio.sleep(TIMEOUT + 1)  # it sends RTP: alive, it stays
        assert len(focus.focus.calls) == 1, "a talking caller was ended"
    finally:
        if sipp.returncode is None:
            sipp.send_signal(signal.SIGKILL)
        await sipp.communicate()
    # Within the timeout (plus a tick, the event and the BYE) it is gone.
    await eventually(lambda: not focus.focus.calls, "the call ended", timeout=TIMEOUT + 8)
    await focus.settled((0, 0, 0))
    return port, during


def bindable(port: int) -> bool:
    try:
        for p in (port, port + 1):  # RTP and RTCP
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", p))
    except OSError:
        return False
    return True


async def test_a_killed_phone_leaves_every_count_as_before_the_call(
    quick: Focus, tmp_path: Path
) -> None:
    uas = (quick.focus.ua, quick.server.ua)

    def as_before() -> bool:
        # A BYE may be answered after its leg is gone (the media server closes the RTP
        # endpoint first): its transaction starts Timer J then, so the clocks run on again.
        past_timer_j(*uas)
        return held(quick) == before

    past_timer_j(*uas)
    await asyncio.sleep(0.05)
    before = held(quick)
    objects_before = room_objects()
    for cycle in range(3):
        port, during = await vanish_once(quick, tmp_path / f"sipp{cycle}")
        assert during["participants"] == 1 and during["mixers"] != before["mixers"]
        with contextlib.suppress(AssertionError):
            await eventually(as_before, "the counts as before")
        assert held(quick) == before, f"cycle {cycle}"
        assert bindable(port), f"the leg's RTP ports {port}/{port + 1} are still bound"
        # Memory: no call-room object outlives its call (none more per cycle).
        # (the departure's last steps, e.g. ending the ad hoc conference, may still run)
        with contextlib.suppress(AssertionError):
            await eventually(lambda: room_objects() == objects_before, "the objects freed")
        assert room_objects() == objects_before, f"cycle {cycle}"
