"""Every msc-mixer exchange of RFC 7058's flows, replayed against our media server's control side.

The vectors (tests/vectors/rfc7058/, extracted from the RFC by another test module) are sent as
printed by the real client over real loopback TCP to a real :class:`ControlServer` in
control-only mode; the answers must carry the RFC's codes: the framework code (200, or 403 for
another application server's mixer, s8), the mixer status of <response>/<auditresponse>, the
mixers an audit reports, and the events the media server sends (<unjoin-notify>, s6.4.3).

Each scenario of the RFC starts from its own media server state.  Where the RFC's text says a
scenario starts with mixers that earlier, unprinted requests made (the main conference of the
sidebar scenario, s6.3.4, ...), those requests run first (PRECONDITIONS).  Conference ids the
RFC's media server picked are mapped onto the ones ours picked.  IVR (msc-ivr) exchanges are not
ours to answer and are skipped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mediactrl.cfw.message import Request, Response, serialize
from mediactrl.cfw.parser import parse_message
from mediactrl.client import ControlError, MediaControlClient, direct_opener
from mediactrl.mixer import model as m
from mediactrl.mixer.codec import CONTENT_TYPE, decode
from mediactrl.server.control import ControlServer
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService
from tests.mediactrl.client.conftest import FAST, EventLog
from tests.mediactrl.client.test_channel import until
from tests.paths import VECTORS

HERE = VECTORS / "rfc7058"
MANIFEST: list[dict[str, Any]] = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
# cfw-ids of the application servers: RFC 7058 s5.1's for the single AS, made-up ones for s8.
DIALOG_IDS = {"AS": "5feb6486792a", "AS1": "as1cfwid0001", "AS2": "as2cfwid0002"}

# Scenario -> sections whose messages it replays, in order (s6.3 sets up s6.3.1 and s6.3.2).
SCENARIOS: dict[str, tuple[str, ...]] = {
    "6.1.1": ("6.1.1",),
    "6.2.1": ("6.2.1",),
    "6.2.2": ("6.2.2",),
    "6.2.3": ("6.2.3",),
    "6.3.1": ("6.3", "6.3.1"),
    "6.3.2": ("6.3", "6.3.2"),
    "6.3.3": ("6.3.3",),
    "6.3.4": ("6.3.4",),
    "6.3.5": ("6.3.5",),
    "6.4.3": ("6.4.3",),
    "8": ("8",),
}
QUAD = (m.VideoLayout(m.VideoLayoutKind.QUAD_VIEW),)
PRECONDITIONS: dict[str, list[tuple[str, m.MixerMessage]]] = {
    # s6.3.4: A, B, C, D are in the main conference before B and D start a sidebar.
    "6.3.4": [
        ("AS", m.CreateConference("2f5ad43")),
        ("AS", m.Join("1000000001:aaaa0001", "2f5ad43")),
        ("AS", m.Join("2133178233:18294826", "2f5ad43")),
        ("AS", m.Join("1000000003:cccc0003", "2f5ad43")),
        ("AS", m.Join("1264755310:2beeae5b", "2f5ad43")),
    ],
    # s6.3.5: the floor-controlled participant is in the conference, muted (recvonly).
    "6.3.5": [
        ("AS", m.CreateConference("cf45ee2")),
        (
            "AS",
            m.Join(
                "e1e1427c:1c998d22", "cf45ee2", (m.Stream("audio", direction=m.Direction.RECVONLY),)
            ),
        ),
    ],
    # s6.4.3: the participant pressing DTMF codes is in the conference.
    "6.4.3": [
        ("AS", m.CreateConference("54b4ab3")),
        ("AS", m.Join("873975758:a5105056", "54b4ab3")),
    ],
    # s8: AS1 runs conference 74b6d62 (quad view) with two participants; AS2 bridged two UAs.
    "8": [
        ("AS1", m.CreateConference("74b6d62", video_layouts=QUAD)),
        ("AS1", m.Join("1864574426:e2192766", "74b6d62")),
        ("AS1", m.Join("1:5a97fd79", "74b6d62")),
        ("AS2", m.Join("1:75d4dd0d", "1:b9e6a659")),
    ],
}


def load(entry: dict[str, Any]) -> Request | Response:
    return parse_message((HERE / str(entry["file"])).read_bytes())


def is_mixer(message: Request | Response) -> bool:
    if isinstance(message, Request):
        return (message.control_package or "").startswith("msc-mixer")
    return message.content_type == CONTENT_TYPE


class Replay:
    """One scenario: a fresh control-only media server and one client per application server."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.server = ControlServer(MixerService(ControlOnlyBackend(accept_any_connection=True)))
        self.clients: dict[str, MediaControlClient] = {}
        self.events: dict[str, EventLog] = {}
        self.ids: dict[str, str] = {}  # conference ids: RFC's -> ours
        self.checked = 0

    async def start(self) -> None:
        host, port = await self.server.start()
        for name, dialog_id in DIALOG_IDS.items():
            self.server.expect_channel(dialog_id)
            self.events[name] = EventLog()
            self.clients[name] = MediaControlClient(
                direct_opener(host, port, dialog_id), FAST, on_event=self.events[name]
            )
            await self.clients[name].start()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        await self.server.close()

    def mapped(self, data: bytes) -> bytes:
        for theirs, ours in self.ids.items():
            data = data.replace(f'"{theirs}"'.encode(), f'"{ours}"'.encode())
        return data

    async def send(self, sender: str, package: str, body: bytes) -> tuple[int, bytes]:
        try:
            answer = await self.clients[sender].control(package, self.mapped(body), timeout=5.0)
        except ControlError as refused:
            return refused.code, b""
        return answer.code, answer.body


def expected_answer(flow: list[dict[str, Any]], index: int, trans_id: str) -> Response:
    for entry in flow[index + 1 :]:
        message = load(entry)
        if isinstance(message, Response) and message.trans_id == trans_id:
            return message
    raise AssertionError(f"no answer to {trans_id} in the RFC flow")


def comparable(mixers: m.Mixers | None, ids: dict[str, str]) -> object:
    back = {ours: theirs for theirs, ours in ids.items()}
    if mixers is None:
        return None
    conferences = {
        back.get(c.conferenceid, c.conferenceid): (set(c.participants or ()), c.video_layout)
        for c in mixers.conferences
    }
    joins = {frozenset((back.get(j.id1, j.id1), back.get(j.id2, j.id2))) for j in mixers.joins}
    return conferences, joins


@pytest.fixture
async def replay(request: pytest.FixtureRequest) -> AsyncIterator[Replay]:
    session = Replay(request.param)
    await session.start()
    yield session
    await session.close()


@pytest.mark.parametrize("replay", sorted(SCENARIOS), indirect=True)
async def test_scenario_replays_with_the_rfc_codes(replay: Replay) -> None:
    for sender, request in PRECONDITIONS.get(replay.scenario, []):
        answer = await replay.clients[sender].mixer(request)
        assert isinstance(answer, m.Response)
        assert answer.status == 200, (request, answer)
    flow = [e for e in MANIFEST if e["section"] in SCENARIOS[replay.scenario]]
    for index, entry in enumerate(flow):
        message = load(entry)
        if not is_mixer(message) or not isinstance(message, Request):
            continue
        where = f"{entry['file']} ({entry['title']})"
        if entry["from"] == "MS":
            # An event the media server sends: our server must have sent the same one.
            receiver = entry["to"]
            expected = decode(message.body)
            log = replay.events[receiver]
            await until(lambda log=log: bool(log.events))
            got = log.events.pop(0)
            assert decode(replay.mapped(message.body)) == got or expected == got, where
            replay.checked += 1
            continue
        package = message.control_package or ""
        code, body = await replay.send(entry["from"], package, message.body)
        rfc = expected_answer(flow, index, message.trans_id)
        assert code == rfc.code, where
        replay.checked += 1
        if not rfc.body:
            continue
        ours, theirs = decode(body), decode(rfc.body)
        if isinstance(theirs, m.Response):
            assert isinstance(ours, m.Response), where
            assert ours.status == theirs.status, f"{where}: {ours.reason}"
            if theirs.conferenceid is not None:
                assert ours.conferenceid is not None, where
                replay.ids[theirs.conferenceid] = ours.conferenceid
        else:
            assert isinstance(theirs, m.AuditResponse)
            assert isinstance(ours, m.AuditResponse), where
            assert ours.status == theirs.status, where
            assert comparable(ours.mixers, replay.ids) == comparable(theirs.mixers, {}), where
    assert replay.checked == EXPECTED_EXCHANGES[replay.scenario]
    for name, log in replay.events.items():
        assert log.events == [], f"{name} got events the RFC does not show"


# Mixer exchanges (requests and events) of each scenario, so none is silently skipped.
EXPECTED_EXCHANGES = {
    scenario: sum(
        1
        for entry in MANIFEST
        if entry["section"] in sections
        and isinstance(load(entry), Request)
        and is_mixer(load(entry))
    )
    for scenario, sections in SCENARIOS.items()
}


def test_every_mixer_exchange_of_the_rfc_is_in_a_scenario() -> None:
    mixer = {e["file"] for e in MANIFEST if isinstance(load(e), Request) and is_mixer(load(e))}
    covered = {
        e["file"]
        for e in MANIFEST
        if any(e["section"] in sections for sections in SCENARIOS.values())
    }
    assert len(mixer) == 32  # 31 requests and the unjoin-notify of s6.4.3
    assert mixer <= covered


def raw(number: str) -> bytes:
    (path,) = HERE.glob(f"{number}-*.cfw")
    return path.read_bytes()


async def exchange(port: int, *messages: bytes) -> list[Response]:
    """Sends RFC messages as printed on one TCP connection; returns the answers, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers: list[Response] = []
    try:
        for message in messages:
            writer.write(message)
            async with asyncio.timeout(3.0):
                head = await reader.readuntil(b"\r\n\r\n")
            answer = parse_message(head)
            assert isinstance(answer, Response)
            answers.append(answer)
    finally:
        writer.close()
    return answers


async def test_section5_channel_set_up_as_printed() -> None:
    """RFC 7058 s5.2-s5.4 on our listener: SYNC and K-ALIVE answered 200, a SYNC with an
    unknown Dialog-ID 481, a CONTROL instead of SYNC 403 (the last two then close)."""
    server = ControlServer(MixerService(ControlOnlyBackend()))
    server.expect_channel("5feb6486792a")
    _, port = await server.start()
    try:
        sync, kalive = await exchange(port, raw("001"), raw("003"))
        assert (sync.trans_id, sync.code, sync.keep_alive) == ("6e5e86f95609", 200, 100)
        assert "msc-mixer/1.0" in sync.packages
        assert serialize(kalive) == raw("004")
        (refused,) = await exchange(port, raw("005"))
        assert serialize(refused) == raw("006")
        (forbidden,) = await exchange(port, raw("007"))
        assert serialize(forbidden) == raw("008")
    finally:
        await server.close()
