"""One media server, several control channels (issue 10; RFC 6505 s7, RFC 6230 s12), over real
sockets: the bundled media server on loopback, control channels negotiated by SIP INVITE, raw
TCP where a peer misbehaves, and two ``python -m focus serve`` processes sharing one server.

A mixer belongs to the channel identifier (cfw-id / Dialog-ID) that created it: another
channel, even from the same SIP identity, neither sees it in <audit/> nor touches it (CFW
403), and never aborts its owner; the owner comes back with the same cfw-id and takes its
mixers back; nobody else can claim that cfw-id.  Framing abuse gets 400 or a close within 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.uacore import CallFailedError, UAConfig
from mediactrl.client import (
    ChannelDown,
    ChannelTarget,
    ControlError,
    MediaControlClient,
    channel_offer,
    direct_opener,
)
from mediactrl.ivr import model as ivr
from mediactrl.legs import MediaLegs
from mediactrl.mixer import model as m
from mediactrl.server.app import MediaServer, start_media_server
from mediactrl.sip_opener import SipChannelOpener
from tests.mediactrl.client.test_channel import until
from tests.mediactrl.server.conftest import FAST, server_config
from tests.mediactrl.server.test_sip_side import phone_sdp
from tests.process.test_serve import user_add
from tests.serve import Serve

SYNC = b"CFW 6e5e86f95609 SYNC\r\nDialog-ID: %s\r\nPackages: msc-mixer/1.0\r\n\r\n"


@pytest.fixture
async def media_server() -> AsyncIterator[MediaServer]:
    server = await start_media_server(server_config())
    yield server
    await server.close()


@contextlib.asynccontextmanager
async def agent(user: str) -> AsyncIterator[UserAgent]:
    """An application server's SIP user agent (its own port: its own SIP identity)."""
    ua = await UserAgent.start(
        UAConfig(user=user), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    )
    try:
        yield ua
    finally:
        await ua.close()


@contextlib.asynccontextmanager
async def channel(
    ua: UserAgent, server: MediaServer, cfw_id: str | None = None
) -> AsyncIterator[tuple[SipChannelOpener, MediaControlClient]]:
    """A control channel negotiated by ``ua`` (RFC 6230 s4), up; closed after."""
    opener = SipChannelOpener(ua, server.sip_uri, address="127.0.0.1", cfw_id=cfw_id)
    client = MediaControlClient(opener, FAST)
    await client.start()
    try:
        await client.wait_up(5)
        yield opener, client
    finally:
        await client.close()
        await opener.close()


async def audit(client: MediaControlClient) -> tuple[list[str], list[tuple[str, str]]]:
    """What <audit mixers="true"/> on this channel shows: conference ids and joins."""
    answer = await client.mixer(m.Audit())
    assert isinstance(answer, m.AuditResponse) and answer.mixers is not None
    return (
        [c.conferenceid for c in answer.mixers.conferences],
        [(j.id1, j.id2) for j in answer.mixers.joins],
    )


async def forbidden(client: MediaControlClient, request: m.MixerMessage) -> int:
    with pytest.raises(ControlError) as refused:
        await client.mixer(request)
    return refused.value.code


async def test_a_second_channel_of_the_same_identity_neither_aborts_nor_sees_the_first(
    media_server: MediaServer,
) -> None:
    async with (
        agent("focus") as ua,
        channel(ua, media_server) as (opener_a, a),
        channel(ua, media_server) as (opener_b, b),
    ):
        assert opener_a.cfw_id != opener_b.cfw_id
        leg = await MediaLegs(ua, media_server.sip_uri).open(phone_sdp(31100))
        await a.mixer(m.CreateConference("ownedbya"))
        await a.mixer(m.Join(leg.connection, "ownedbya"))
        assert await audit(b) == ([], [])
        for request in (
            m.Audit(conferenceid="ownedbya"),
            m.ModifyConference("ownedbya", codecs=(m.Codec("audio", "PCMA"),)),
            m.Join("ownedbya", "ownedbya"),
            m.ModifyJoin(leg.connection, "ownedbya", (m.Stream("audio"),)),
            m.Unjoin(leg.connection, "ownedbya"),
            m.DestroyConference("ownedbya"),
        ):
            assert await forbidden(b, request) == 403, request
        # The owner never noticed: same connection, everything in place.
        assert a.is_up and a.connections_made == 1 and b.is_up
        assert await audit(a) == (["ownedbya"], [(leg.connection, "ownedbya")])
        assert media_server.control.service.conferences_of(opener_a.cfw_id) == ("ownedbya",)


async def test_ivr_dialogs_belong_to_their_channel(media_server: MediaServer) -> None:
    async with (
        agent("focus") as ua,
        channel(ua, media_server) as (opener_a, a),
        channel(ua, media_server) as (_, b),
    ):
        leg = await MediaLegs(ua, media_server.sip_uri).open(phone_sdp(31110))
        watch = ivr.DialogStart(
            connectionid=leg.connection,
            dialogid="watch1",
            dialog=ivr.Dialog(),
            subscribe=ivr.Subscribe(ivr.DtmfSub()),
        )
        assert (await a.ivr(watch)).status == 200
        assert (await b.ivr(ivr.DialogTerminate("watch1"))).status == 406  # not b's to name
        assert media_server.control.ivr.dialogs_of(opener_a.cfw_id) == ("watch1",)


async def test_handover_with_the_same_cfw_id_and_only_with_it(media_server: MediaServer) -> None:
    async with agent("focus") as ua, channel(ua, media_server, "handover0001") as (opener, a):
        await a.mixer(m.CreateConference("keepme"))
        first_call = opener.call
        # The TCP connection dies: the client negotiates again (new INVITE, same cfw-id) and
        # the media server hands the channel's mixers over.
        media_server.control.drop_channels()
        await until(lambda: a.connections_made == 2 and a.is_up, timeout=5)
        assert opener.call is not first_call
        assert await audit(a) == (["keepme"], [])
        # BYE of the channel's dialog (s4.2): the same once more.
        assert opener.call is not None
        await ua.bye(opener.call)
        await until(lambda: a.connections_made == 3 and a.is_up, timeout=5)
        assert await audit(a) == (["keepme"], [])
        # A channel with another identifier, from the same user agent, cannot take them.
        async with channel(ua, media_server, "otherchan001") as (_, other):
            assert await audit(other) == ([], [])
            assert await forbidden(other, m.DestroyConference("keepme")) == 403
        assert await audit(a) == (["keepme"], [])


async def test_a_cfw_id_cannot_be_claimed_by_another_sip_identity(
    media_server: MediaServer,
) -> None:
    async with (
        agent("focus") as ua,
        agent("mallory") as thief,
        channel(ua, media_server, "victimchan01") as (opener, victim),
    ):
        await victim.mixer(m.CreateConference("victims"))
        offer = channel_offer("127.0.0.1", cfw_id="victimchan01")
        with pytest.raises(CallFailedError) as refused:
            await thief.invite(media_server.sip_uri, offer.sdp.encode())
        assert refused.value.status == 403
        # Even after the owner's dialog is gone, its claim protects the mixers.
        await victim.close()
        await opener.close()
        await until(lambda: not media_server.control.expects("victimchan01"))
        with pytest.raises(CallFailedError) as again:
            await thief.invite(media_server.sip_uri, offer.sdp.encode())
        assert again.value.status == 403
        assert media_server.control.service.conferences_of("victimchan01") == ("victims",)


async def test_a_sync_for_a_live_cfw_id_from_another_host_is_refused(
    media_server: MediaServer,
) -> None:
    """The cfw-id travels in clear SDP (RFC 6230 s12.1): knowing it is not enough to connect
    from elsewhere and take the channel over (127.0.0.2 is another loopback host)."""
    async with agent("focus") as ua, channel(ua, media_server, "livechan0001") as (_, owner):
        host, port = media_server.cfw_address
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
        try:
            writer.write(SYNC % b"livechan0001")
            async with asyncio.timeout(1):
                answer = await reader.read(200)
                assert answer.startswith(b"CFW 6e5e86f95609 403\r\n")
                assert await reader.read(200) == b""  # and closed
        finally:
            writer.close()
        assert owner.is_up and owner.connections_made == 1


async def negotiated(ua: UserAgent, server: MediaServer) -> ChannelTarget:
    """A channel negotiated by SIP but connected by hand (a raw peer)."""
    offer = channel_offer("127.0.0.1")
    call = await ua.invite(server.sip_uri, offer.sdp.encode())
    return offer.target(call.remote_sdp.decode())


async def exchange(target: ChannelTarget, raw: bytes, *, synced: bool) -> bytes:
    """Sends ``raw`` on a fresh TCP connection (after an accepted SYNC when ``synced``);
    returns everything answered to it until the media server closes, which must be within 1 s.
    """
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        if synced:
            writer.write(SYNC % target.dialog_id.encode())
            async with asyncio.timeout(1):
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"CFW 6e5e86f95609 200")
        writer.write(raw)
        async with asyncio.timeout(1):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (b"GARBAGE\r\n", b""),
        (b"CFW !! SYNC\r\n", b""),  # no transaction id to answer
        (b"CFW abcd1234 SYNC\r\n" + b"X-Flood: 1\r\n" * 100, b"CFW abcd1234 400\r\n\r\n"),
        (b"CFW abcd1234 CONTROL\r\nContent-Length: many\r\n\r\n", b"CFW abcd1234 400\r\n\r\n"),
        (b"CFW abcd1234 SYNC\r\nContent-Length: 99999999\r\n\r\n", b"CFW abcd1234 400\r\n\r\n"),
    ],
    ids=["not cfw", "unreadable trans-id", "header flood", "bad length", "huge length"],
)
async def test_framing_abuse_gets_400_or_close_within_1s(
    media_server: MediaServer, raw: bytes, answer: bytes
) -> None:
    async with agent("focus") as ua:
        target = await negotiated(ua, media_server)
        assert await exchange(target, raw, synced=False) == answer
        assert await exchange(target, raw, synced=True) == answer


async def test_a_bad_start_line_with_a_readable_id_is_answered_400_and_the_channel_goes_on(
    media_server: MediaServer,
) -> None:
    async with agent("focus") as ua:
        target = await negotiated(ua, media_server)
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(SYNC % target.dialog_id.encode())
            async with asyncio.timeout(1):
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"CFW 6e5e86f95609 200")
            writer.write(b"CFW abcd1234 not a method\r\n\r\nCFW kalive0001 K-ALIVE\r\n\r\n")
            seen = b""
            async with asyncio.timeout(1):
                while b"kalive0001" not in seen:
                    chunk = await reader.read(500)
                    assert chunk, seen
                    seen += chunk
            assert b"CFW abcd1234 400\r\n" in seen and b"CFW kalive0001 200\r\n" in seen
        finally:
            writer.close()


@pytest.mark.parametrize(
    "reply",
    [b"HTTP/1.1 200 OK\r\n\r\n", b"CFW 6e5e 200\r\n" + b"X: y\r\n" * 100],
    ids=["not cfw", "header flood"],
)
async def test_the_client_closes_a_media_server_that_breaks_framing_within_1s(
    reply: bytes,
) -> None:
    closed = asyncio.Event()

    async def rogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the SYNC
        writer.write(reply)
        await reader.read()  # until the client hangs up
        closed.set()
        writer.close()

    rogue_server = await asyncio.start_server(rogue, "127.0.0.1", 0)
    host, port = rogue_server.sockets[0].getsockname()[:2]
    client = MediaControlClient(direct_opener(host, port, "roguechan001"), FAST)
    try:
        async with asyncio.timeout(1):
            task = asyncio.ensure_future(client.start())
            await closed.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ChannelDown):
            await task
    finally:
        await client.close()
        rogue_server.close()
        await rogue_server.wait_closed()


# --------------------------------------------------------------------- two focus processes
OFFER = (
    b"v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def serve_with(state_dir: Path, media_server: MediaServer) -> Serve:
    done = user_add(state_dir, "alice", "administrator", "s3cret\n", "--domain", "example.org")
    assert done.returncode == 0, done.stderr
    return Serve(state_dir, "--media-server", media_server.sip_uri)


async def test_two_focus_processes_share_one_media_server_in_isolation(
    media_server: MediaServer, tmp_path: Path
) -> None:
    """Two application servers (two processes, two channels) each run a conference with a
    caller on one media server: each channel owns and audits only its own, a third channel
    gets 403 for either, and when both channels drop they come back with their mixers."""
    control = media_server.control
    focuses = [await asyncio.to_thread(serve_with, tmp_path / name, media_server) for name in "ab"]
    try:
        confs: list[str] = []
        async with agent("phone") as phone:
            for index, focus in enumerate(focuses):
                created = await asyncio.to_thread(focus.ccmp, "create")
                conf = re.search(r"xcon:([^\s@]+)@example\.org", created)
                assert conf, created
                confs.append(conf.group(1))
                uri = f"sip:{conf.group(1)}@{focus.sip_host}:{focus.sip_port}"
                await phone.invite(uri, OFFER % (31200 + 2 * index))
            await until(lambda: len(control.open_channels) == 2, timeout=10)
            owners = list(control.open_channels)
            service = control.service

            def joined(owner: str) -> bool:
                names = service.conferences_of(owner)
                key = service.backend_id(owner, names[0]) if len(names) == 1 else None
                return key is not None and len(service.participants(key)) == 1

            for owner in owners:
                await until(lambda o=owner: joined(o), timeout=10)
            # XCON ids are per focus (both may well be "conf1"): each channel has its own.
            assert sorted(service.conferences_of(o)[0] for o in owners) == sorted(confs)
            for owner in owners:
                (name,) = service.conferences_of(owner)
                seen = service.execute(owner, m.Audit(capabilities=False)).answer
                assert isinstance(seen, m.AuditResponse) and seen.mixers is not None
                assert [c.conferenceid for c in seen.mixers.conferences] == [name]
                assert [j.id2 for j in seen.mixers.joins] == [name]
            async with agent("intruder") as ua, channel(ua, media_server) as (_, third):
                assert await audit(third) == ([], [])
                for name in set(confs):
                    assert await forbidden(third, m.DestroyConference(name)) == 403
            # Both channels drop; each focus reconnects with its cfw-id, audits, and finds
            # its own conference and join (and nothing of the other's to tear down).
            before = {o: service.conferences_of(o) for o in owners}
            control.drop_channels()
            await until(lambda: set(control.open_channels) == set(owners), timeout=15)
            for owner in owners:
                await until(lambda o=owner: joined(o), timeout=10)
            assert {o: service.conferences_of(o) for o in owners} == before
    finally:
        for focus in focuses:
            focus.kill()
