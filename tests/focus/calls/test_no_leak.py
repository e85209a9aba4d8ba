"""Nothing per call stays in the focus once the call is gone (issue 10, bench/flood's
memory goal): cycles of factory calls, conference joins and INVITEs refused 503 by the
overload gate, through the whole process in-process; after each cycle's transactions have
ended (64*T1 on the focus's clock), the live SIP objects are counted by type and must not
grow from one cycle to the next."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import Counter
from pathlib import Path

from focus.settings import SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.dialog import Dialog
from focus.sip.message import Request, Response
from focus.sip.timers import TimerConfig
from focus.sip.uacore import Call, CallFailedError, UAConfig
from focus.sip.uri import SipURI
from tests.focus.calls.conftest import Focus, sdp_offer, start_focus

T1 = 0.05  # short transaction lifetimes (Timer J = 64*T1) so that a cycle ends quickly
CALLS = 4  # factory calls per cycle, each joined by a second caller
BURST = 8  # simultaneous factory INVITEs per cycle, beyond max_joins_in_progress
TRACKED = (Request, Response, Call, Dialog)


def live() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, TRACKED))


async def invite(ua: UserAgent, target: str, port: int) -> Call:
    """A call that the gate may refuse for a moment (the loop lags under the test's load)."""
    for _ in range(50):
        try:
            return await ua.invite(target, sdp_offer(port))
        except CallFailedError as exc:
            if exc.status != 503:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError(f"{target} kept refusing")


async def cycle(focus: Focus, phones: list[UserAgent]) -> Counter[int]:
    calls: list[tuple[UserAgent, Call]] = []
    for i in range(CALLS):
        first, second = phones[(2 * i) % len(phones)], phones[(2 * i + 1) % len(phones)]
        made = await invite(first, focus.factory, 31000 + 4 * i)
        assert made.dialog is not None and isinstance(made.dialog.remote_target, SipURI)
        conf = made.dialog.remote_target.user
        assert conf is not None
        calls += [(first, made), (second, await invite(second, focus.uri(conf), 31002 + 4 * i))]
    for ua, call in calls:
        await ua.bye(call)

    async def flooded(k: int) -> tuple[UserAgent, Call] | int:
        ua = phones[k % len(phones)]
        try:
            return ua, await ua.invite(focus.factory, sdp_offer(32000 + 2 * k))
        except CallFailedError as exc:
            return exc.status

    answers = await asyncio.gather(*(flooded(k) for k in range(BURST)))
    statuses: Counter[int] = Counter()
    for answer in answers:
        if isinstance(answer, int):
            statuses[answer] += 1
        else:
            statuses[200] += 1
            await answer[0].bye(answer[1])
    await focus.settled((0, 0, 0), timeout=20)
    await asyncio.sleep(64 * T1 + 1)  # Timer J/K/I of the cycle's last transactions
    return statuses


async def keep_alive(ua: UserAgent, focus: Focus) -> None:
    """OPTIONS pings, as proxies and phones send them: the focus always has a transaction
    alive, as under real traffic (a table purged only when idle would never be purged)."""
    while True:
        await ua.options(focus.factory)
        await asyncio.sleep(T1 * 10)


async def test_calls_leave_nothing_behind(tmp_path: Path) -> None:
    profile = SipProfile(t1=T1, t2=4 * T1, t4=5 * T1, max_joins_in_progress=2)
    timers = TimerConfig(t1=T1, t2=4 * T1, t4=5 * T1, timer_d_unreliable=0.5)
    async with start_focus(tmp_path, profile) as focus:
        phones = [
            await UserAgent.start(
                UAConfig(user=f"phone{n}", timers=timers),
                TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
            )
            for n in range(5)
        ]
        pinger = asyncio.create_task(keep_alive(phones[-1], focus))
        try:
            refused = 0
            counts: list[Counter[str]] = []
            for _ in range(3):
                refused += (await cycle(focus, phones[:-1]))[503]
                counts.append(live())
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            for ua in phones:
                await ua.close()
    assert refused > 0, "the burst never met the overload gate"
    # Cycle 1 warms up (the control channel, caches); after it, one cycle more must not
    # leave more calls, dialogs or messages alive (before the fix each call's INVITE stayed
    # for ring_timeout, 180 s).
    _, second, third = counts
    for name in ("Request", "Response", "Call", "Dialog"):
        assert third[name] <= second[name] + 2, (name, counts)
