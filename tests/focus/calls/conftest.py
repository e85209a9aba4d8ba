"""Fixtures: the whole focus process in-process (store, SIP, bundled media server, CCMP) on
loopback, and phones (real SIP user agents) that call it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import MEDIA_TYPE, CcmpRequest, CcmpResponse, Subject
from focus.app import Running, serving
from focus.authority import OPEN
from focus.settings import FocusSettings, HostPort, SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.message import Response
from focus.sip.uacore import Call, CallAnswered, CallEnded, IncomingRequest, UAConfig, UAEvent
from mediactrl.server.app import start_media_server


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

    async def restart_media_server(self) -> None:
        """A new bundled media server on the old one's SIP port, as after a crash and a
        restart: the focus must resync its legs (the fixture closes the new one)."""
        old = self.server
        config = dataclasses.replace(old.config, sip_port=old.sip_port)
        await old.close()
        self.server = self.media.server = await start_media_server(config)

    async def settled(self, expected: tuple[int, int, int], timeout: float = 5.0) -> None:
        """Waits until the leg audit shows ``expected`` (BYEs take a round trip)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.audit() != expected:
            if loop.time() > deadline:
                raise AssertionError(f"legs {self.audit()} != {expected}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def start_focus(
    state_dir: Path, profile: SipProfile | None = None, *, gated: bool = False
) -> AsyncIterator[Focus]:
    """The focus with ``profile`` (default: the default one); every SIP action open to
    anyone unless ``gated`` (the profile's own ``authorization`` rules then apply): the
    call-flow tests are about what a call does, not who may make it, so their phones dial
    the factory and REFER anonymously. tests/security/ tests the gates."""
    profile = profile or SipProfile()
    if not gated:
        profile = dataclasses.replace(profile, authorization=OPEN)
    base = random.randrange(20000, 60000, 2)
    settings = FocusSettings(
        state_dir=state_dir,
        domain="example.org",
        ccmp_listen=HostPort("127.0.0.1", 0),
        sip_listen=HostPort("127.0.0.1", 0),
        rtp_ports=(base, base + 300),
        profile=profile,
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


def answers_of(ua: UserAgent) -> list[Response]:
    """The 2xx answers to the INVITEs ``ua`` sends from now on (its CallAnswered events)."""
    answers: list[Response] = []

    def on_event(_ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallAnswered):
            answers.append(event.response)

    ua.on_event = on_event
    return answers


def ended_by_peer(ua: UserAgent) -> list[Call]:
    """The calls of ``ua`` its peer (the focus) ends from now on, in order."""
    ended: list[Call] = []

    def on_event(_ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallEnded) and event.by_peer:
            ended.append(event.call)

    ua.on_event = on_event
    return ended


def headers_of(ua: UserAgent, method: str, header: str, status: int) -> list[str]:
    """Answers every ``method`` request ``ua`` gets from now on with ``status`` and keeps
    its ``header`` ("" where absent), in order."""
    seen: list[str] = []

    def on_event(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingRequest) and event.request.method == method:
            seen.append(event.request.headers.get(header) or "")
            ua.respond(event.request, status)

    ua.on_event = on_event
    return seen


async def ccmp_as(
    user: str, session: aiohttp.ClientSession, focus: Focus, req: CcmpRequest
) -> CcmpResponse:
    """Sends ``req`` over HTTP to the focus's CCMP server as account ``user`` (password
    "pw-" + user) and decodes the answer."""
    signed = CcmpRequest(
        req.message_type,
        subject=Subject(user, f"pw-{user}"),
        conf_user_id=f"xcon-userid:{user}@example.org",
        conf_obj_id=req.conf_obj_id,
        operation=req.operation,
        info=req.info,
    )
    async with session.post(
        focus.running.ccmp.url,
        data=encode_request(signed),
        headers={"Content-Type": f"{MEDIA_TYPE}; charset=utf-8", "Accept": MEDIA_TYPE},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return decode_response(await resp.read())
