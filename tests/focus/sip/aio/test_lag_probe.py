"""The transport's one timer doubles as the event-loop lag probe of the overload gate: a
loop kept busy is measured as lag, and a UA without a gate arms no probe."""

from __future__ import annotations

import asyncio
import time

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.overload import OverloadConfig
from focus.sip.uacore import UAConfig

LISTEN = TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=None)


async def test_a_blocked_loop_is_measured_as_lag() -> None:
    async with await UserAgent.start(UAConfig(overload=OverloadConfig()), LISTEN) as ua:
        gate = ua.core.gate
        assert gate is not None
        assert ua.transport.timer_deadline is not None  # the probe is armed
        for _ in range(5):
            time.sleep(0.15)  # the point: a loop that runs late
            await asyncio.sleep(0.12)
        assert gate.lag(ua.now) > 0.02


async def test_without_a_gate_no_probe_runs() -> None:
    async with await UserAgent.start(UAConfig(), LISTEN) as ua:
        assert ua.core.gate is None
        assert ua.transport.timer_deadline is None
