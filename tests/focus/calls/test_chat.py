"""Chat over SIP MESSAGE (RFC 3428) in a ChatRoom conference made over CCMP (the seed's s8):
members joined with `add-user --dial-in`, relaying with the sender named, 403 for others,
a private two-party sidebar, and the creator's delete telling everyone."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccmp_server.client import main as ccmp_main
from focus.core import conference_id
from focus.core.accounts import add_account
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.message import Request
from focus.sip.uacore import IncomingRequest, UAConfig, UAEvent
from tests import sipp
from tests.ccmp_server.conftest import cli
from tests.focus.calls.conftest import Focus, sdp_offer, start_focus
from tests.paths import SIPP_SCENARIOS
from tests.waiting import eventually

SCENARIOS = SIPP_SCENARIOS
METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "NOTIFY"})


class Member:
    """A plain SIP UA that keeps every MESSAGE it gets (and answers 200)."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        self.inbox: list[Request] = []
        self.states: list[str] = []  # Subscription-State of each conference NOTIFY
        ua.on_event = self.on_event

    def on_event(self, ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingRequest) and event.request.method == "MESSAGE":
            self.inbox.append(event.request)
            ua.respond(event.request, 200)
        elif isinstance(event, IncomingRequest) and event.request.method == "NOTIFY":
            self.states.append(event.request.headers.get("Subscription-State") or "")
            ua.respond(event.request, 200)

    @property
    def uri(self) -> str:
        return self.ua.local_uri()

    def texts(self) -> list[bytes]:
        return [r.body for r in self.inbox]


class Room:
    def __init__(self, focus: Focus) -> None:
        self.focus = focus

    async def ccmp(self, *args: str, user: str = "alice") -> str:
        code, out, err = await cli(self.focus.running.ccmp.url, *args, user=user)
        assert code == 0, out + err
        return out

    def sip(self, xcon_uri: str) -> str:
        return self.focus.uri(conference_id(xcon_uri))


@pytest.fixture
async def room(tmp_path: Path) -> AsyncIterator[Room]:
    for name in ("alice", "bob"):
        add_account(tmp_path, name, "user", f"pw-{name}", domain="example.org", scrypt_n=2**4)
    async with start_focus(tmp_path) as focus:
        yield Room(focus)


@pytest.fixture
async def members() -> AsyncIterator[dict[str, Member]]:
    started: dict[str, Member] = {}
    for name in ("alice", "bob", "carol", "eve"):
        ua = await UserAgent.start(
            UAConfig(user=name, methods=METHODS),
            TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
        )
        started[name] = Member(ua)
    yield started
    for member in started.values():
        await member.ua.close()


async def _chat_room(room: Room, people: dict[str, Member]) -> tuple[str, dict[str, str]]:
    """Alice creates a room from the ChatRoom blueprint and adds alice, bob, carol."""
    blueprints = await room.ccmp("blueprints")
    chat = re.search(r"(xcon:ChatRoom@\S+)", blueprints)
    assert chat, blueprints
    created = await room.ccmp("create", "--blueprint", chat.group(1))
    conf = re.search(r"object: (\S+)", created)
    assert conf, created
    ids: dict[str, str] = {}
    for name in ("alice", "bob", "carol"):
        added = await room.ccmp(
            "add-user", conf.group(1), "--dial-in", people[name].uri, "--name", name.title()
        )
        entity = re.search(r"user (xcon-userid:\S+)", added)
        assert entity, added
        ids[name] = entity.group(1)
    return conf.group(1), ids


async def test_a_message_reaches_every_other_member_with_the_sender_named(
    room: Room, members: dict[str, Member]
) -> None:
    conf, _ = await _chat_room(room, members)
    alice, bob, carol, eve = (members[n] for n in ("alice", "bob", "carol", "eve"))
    response = await alice.ua.message(room.sip(conf), "hello, room")
    assert response.status == 202
    await eventually(lambda: bob.inbox and carol.inbox)
    for got in (bob.inbox[0], carol.inbox[0]):
        assert got.body == b"hello, room"
        assert (got.headers.get("Content-Type") or "").startswith("text/plain")
        sender = got.headers.get("From") or ""
        assert f"sip:{conference_id(conf)}@" in sender and '"Alice"' in sender, sender
        asserted = got.headers.get("P-Asserted-Identity") or ""
        assert "alice@127.0.0.1" in asserted, asserted
    await asyncio.sleep(0.2)
    assert not alice.inbox  # not echoed to the sender
    # Not a member: 403, nothing relayed.
    refused = await eve.ua.message(room.sip(conf), "let me in")
    assert refused.status == 403
    await asyncio.sleep(0.2)
    assert b"let me in" not in b"".join(bob.texts() + carol.texts())
    # No such room: 404.
    assert (await alice.ua.message(room.focus.uri("conf999999"), "x")).status == 404


async def test_private_sidebar_and_deletion_by_the_creator(
    room: Room, members: dict[str, Member], tmp_path: Path
) -> None:
    conf, ids = await _chat_room(room, members)
    alice, bob, carol = (members[n] for n in ("alice", "bob", "carol"))
    # A private chat: a two-party sidebar of alice and bob (RFC 6503 s5.3.8).
    info = tmp_path / "private.xml"
    info.write_text(
        '<sidebarByValInfo xmlns="urn:ietf:params:xml:ns:conference-info" '
        f'entity="{conf}"><conference-description><display-text>alice and bob'
        "</display-text></conference-description><users>"
        f'<user entity="{ids["alice"]}"/><user entity="{ids["bob"]}"/></users>'
        "</sidebarByValInfo>"
    )
    created = await room.ccmp("sidebar-create", conf, "--info", str(info))
    sidebar = re.search(r"object: (\S+)", created)
    assert sidebar, created
    response = await bob.ua.message(room.sip(sidebar.group(1)), "just you and me")
    assert response.status == 202
    await eventually(lambda: alice.inbox)
    assert alice.inbox[-1].body == b"just you and me"
    assert '"Bob"' in (alice.inbox[-1].headers.get("From") or "")
    # Carol is in the room but not in the sidebar: she gets nothing and may not post there.
    assert (await carol.ua.message(room.sip(sidebar.group(1)), "hi?")).status == 403
    await asyncio.sleep(0.2)
    assert not carol.inbox and not bob.inbox

    # Carol also watches the room with the conference event package.
    response, _ = await carol.ua.subscribe(room.sip(conf), "conference")
    assert response.status == 200
    await eventually(lambda: carol.states)

    # Bob (not the creator) may not delete the room; alice may: everyone is told.
    argv = [
        "--url",
        room.focus.running.ccmp.url,
        "--user",
        "bob",
        "--password",
        "pw-bob",
        "--timeout",
        "10",
        "delete",
        conf,
    ]
    assert await asyncio.to_thread(ccmp_main, argv, io.StringIO(), io.StringIO()) == 1
    # The core refuses to delete a parent with sidebars (425, RFC 6503 s5.4): the private
    # chat goes first.
    await room.ccmp("sidebar-delete", sidebar.group(1))
    # The private chat's two members are told it ended; carol was never in it.
    await eventually(lambda: all(b"This sidebar was deleted." in m.texts() for m in (alice, bob)))
    from_sidebar = [r for r in bob.inbox if r.body == b"This sidebar was deleted."]
    assert f"sip:{conference_id(sidebar.group(1))}@" in (from_sidebar[0].headers.get("From") or "")
    assert b"This sidebar was deleted." not in carol.texts()
    await room.ccmp("delete", conf)
    await eventually(
        lambda: all(any(b"deleted" in t for t in m.texts()) for m in (alice, bob, carol))
    )
    await eventually(lambda: carol.states[-1].startswith("terminated"))
    assert "noresource" in carol.states[-1]
    assert (await bob.ua.message(room.sip(conf), "anyone?")).status == 404


async def test_a_message_in_a_calls_dialog_is_relayed(
    room: Room, members: dict[str, Member]
) -> None:
    """Bob dialled into the room (INVITE): a MESSAGE he sends inside that dialog (to the
    focus's isfocus Contact) is relayed like one to the room's URI, not refused."""
    conf, _ = await _chat_room(room, members)
    alice, bob, carol = (members[n] for n in ("alice", "bob", "carol"))
    call = await bob.ua.invite(room.sip(conf), sdp_offer(30310))
    assert call.dialog is not None
    response = await bob.ua.message(call.dialog, "from inside the call")
    assert response.status == 202
    await eventually(lambda: alice.inbox and carol.inbox)
    for got in (alice.inbox[-1], carol.inbox[-1]):
        assert got.body == b"from inside the call"
        assert '"Bob"' in (got.headers.get("From") or "")
    await bob.ua.bye(call)


async def _sipp(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await sipp.start_async(*args, "-m", "1", "-trace_err", cwd=cwd)


async def _finished(proc: asyncio.subprocess.Process, cwd: Path) -> None:
    code, out = await sipp.finish_async(proc, 20)
    assert code == 0, out + sipp.error_logs(cwd)


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
async def test_sipp_chats_with_a_member(
    room: Room, members: dict[str, Member], tmp_path: Path
) -> None:
    """Two sipp members (sip_profiles/sipp/chat_message.xml sends, chat_receive.xml
    receives) and bob: sipp's MESSAGE reaches bob, bob's reaches the receiving sipp with the
    room as From and bob's AOR asserted (the scenario checks both)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        receiver_port = probe.getsockname()[1]
    blueprints = await room.ccmp("blueprints")
    chat = re.search(r"(xcon:ChatRoom@\S+)", blueprints)
    assert chat
    conf = re.search(r"object: (\S+)", await room.ccmp("create", "--blueprint", chat.group(1)))
    assert conf
    bob = members["bob"]
    await room.ccmp("add-user", conf.group(1), "--dial-in", bob.uri, "--name", "Bob")
    await room.ccmp("add-user", conf.group(1), "--dial-in", "sip:sipp@127.0.0.1", "--name", "Sipp")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    sender = await _sipp(
        f"127.0.0.1:{room.focus.port}",
        "-sf",
        str(SCENARIOS / "chat_message.xml"),
        "-s",
        conference_id(conf.group(1)),
        "-p",
        "0",
        cwd=tmp_path / "out",
    )
    await _finished(sender, tmp_path / "out")
    await eventually(lambda: bob.inbox, timeout=10)
    assert bob.inbox[0].body.strip() == b"hello from sipp"
    assert '"Sipp"' in (bob.inbox[0].headers.get("From") or "")
    # A third member (a sipp UAS) joins; bob writes; the scenario checks what it gets.
    await room.ccmp("add-user", conf.group(1), "--dial-in", f"sip:reader@127.0.0.1:{receiver_port}")
    receiver = await _sipp(
        "-sf", str(SCENARIOS / "chat_receive.xml"), "-p", str(receiver_port), cwd=tmp_path / "in"
    )
    try:
        # Sent before sipp binds, the MESSAGE is retransmitted (Timer E); a pause spares that.
        await asyncio.sleep(0.3)
        response = await bob.ua.message(room.sip(conf.group(1)), "hello from bob")
        assert response.status == 202
    finally:
        await _finished(receiver, tmp_path / "in")
