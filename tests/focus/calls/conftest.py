"""Fixtures: the whole focus process in-process (store, SIP, bundled media server, CCMP) on
loopback, and phones (real SIP user agents) that call it."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from focus.app import Running, serving
from focus.settings import FocusSettings, HostPort, SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.uacore import UAConfig


def sdp_offer(port: int, direction: str = "sendrecv", host: str = "127.0.0.1") -> bytes:
    return (
        "v=0\r\n"
        f"o=phone 1 1 IN IP4 {host}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n"
    ).encode()


class Focus:
    """The running process and how to reach it."""

    def __init__(self, running: Running) -> None:
        self.running = running
        assert running.ua is not None and running.focus is not None
        assert running.media is not None and running.media.server is not None
        self.focus = running.focus
        self.media = running.media
        self.server = running.media.server
        host, port = running.ua.local[TransportKind.UDP]
        self.host, self.port = host, port

    def uri(self, user: str) -> str:
        return f"sip:{user}@{self.host}:{self.port}"

    @property
    def factory(self) -> str:
        return self.uri("conference")

    def audit(self) -> tuple[int, int, int]:
        """(focus-side legs, media server legs, engine endpoints)."""
        return (
            len(self.media.legs.open_legs),
            len(self.server.sip.legs),
            self.server.engine.stats().endpoints,
        )

    async def settled(self, expected: tuple[int, int, int], timeout: float = 5.0) -> None:
        """Waits until the leg audit shows ``expected`` (BYEs take a round trip)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.audit() != expected:
            if loop.time() > deadline:
                raise AssertionError(f"legs {self.audit()} != {expected}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def start_focus(state_dir: Path, profile: SipProfile | None = None) -> AsyncIterator[Focus]:
    base = random.randrange(20000, 60000, 2)
    settings = FocusSettings(
        state_dir=state_dir,
        domain="example.org",
        ccmp_listen=HostPort("127.0.0.1", 0),
        sip_listen=HostPort("127.0.0.1", 0),
        rtp_ports=(base, base + 300),
        profile=profile or SipProfile(),
    )
    async with serving(settings) as running:
        assert running.media is not None
        await running.media.client.wait_up(10)
        yield Focus(running)


@pytest.fixture
async def focus(tmp_path: Path) -> AsyncIterator[Focus]:
    async with start_focus(tmp_path) as started:
        yield started


PhoneFactory = Callable[[str], Awaitable[UserAgent]]


@pytest.fixture
async def phones() -> AsyncIterator[PhoneFactory]:
    started: list[UserAgent] = []

    async def make(user: str) -> UserAgent:
        methods = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REFER", "NOTIFY"})
        ua = await UserAgent.start(
            UAConfig(user=user, methods=methods),
            TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
        )
        started.append(ua)
        return ua

    yield make
    for ua in started:
        await ua.close()
