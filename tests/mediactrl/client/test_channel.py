"""The CFW client against the media server's control side, over real loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from focus.sip.sdp import SdpError
from mediactrl.cfw.connection import CfwConfig, CfwConnection, Side
from mediactrl.cfw.events import ControlReceived, SyncReceived
from mediactrl.cfw.message import ReportStatus
from mediactrl.client import (
    ChannelDown,
    ChannelTarget,
    ClientConfig,
    ControlError,
    ControlTimeout,
    MediaControlClient,
    channel_offer,
    direct_opener,
)
from mediactrl.mixer import model as m
from mediactrl.mixer.codec import CONTENT_TYPE, PACKAGE, decode, encode
from mediactrl.server.control import ChannelRefused, ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService
from tests.mediactrl.client.conftest import FAST, EventLog, started_client


async def until(predicate: object, timeout: float = 3.0) -> None:
    """Waits for a condition driven by the other end of a socket (bounded)."""
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_sync_then_create_and_join(client: MediaControlClient, server: ControlServer) -> None:
    assert client.is_up
    answer = await client.mixer(m.CreateConference(conferenceid="conf1"))
    assert answer == m.Response(200, "Conference created", conferenceid="conf1")
    joined = await client.mixer(m.Join("a1b2:c3d4", "conf1"))
    assert isinstance(joined, m.Response)
    assert joined.status == 200
    assert server.service.participants("conf1") == ("a1b2:c3d4",)
    assert server.service.conferences_of("as1cfwid0001") == ("conf1",)


async def test_server_picks_conference_id(client: MediaControlClient) -> None:
    answer = await client.mixer(m.CreateConference())
    assert isinstance(answer, m.Response)
    assert answer.status == 200
    assert answer.conferenceid


async def test_unknown_dialog_id_is_refused_481(backend: ControlOnlyBackend) -> None:
    strict = ControlServer(MixerService(backend))
    host, port = await strict.start()
    try:
        strict.expect_channel("knowncfwid01")
        stranger = MediaControlClient(
            direct_opener(host, port, "strangerid01"), replace(FAST, max_attempts=2)
        )
        with pytest.raises(ChannelDown):
            await stranger.start()
        await stranger.close()
        known = MediaControlClient(direct_opener(host, port, "knowncfwid01"), FAST)
        await known.start()
        assert known.is_up
        await known.close()
    finally:
        await strict.close()


async def test_raw_control_answers_and_framework_errors(client: MediaControlClient) -> None:
    body = b'<mscmixer version="1.0" xmlns="urn:ietf:params:xml:ns:msc-mixer"><audit/></mscmixer>'
    answer = await client.control(PACKAGE, body)
    assert answer.code == 200
    assert answer.content_type == CONTENT_TYPE
    with pytest.raises(ControlError) as refused:
        await client.control(PACKAGE, b"not xml", content_type="text/plain")
    assert refused.value.code == 400


async def test_bad_mixer_body_gets_mixer_400(client: MediaControlClient) -> None:
    answer = await client.control(PACKAGE, b"<mscmixer version='1.0'/>")
    assert answer.code == 200
    assert b'status="400"' in answer.body


async def test_unjoin_notify_event_reaches_callback(server: ControlServer) -> None:
    host, port = server.address
    events = EventLog()
    async with started_client(host, port, "eventscfw001", on_event=events) as cli:
        await cli.mixer(m.CreateConference(conferenceid="ev1"))
        await cli.mixer(m.Join("x111:y222", "ev1"))
        server.connection_closed("x111:y222")  # the caller hung up (SIP side)
        await until(lambda: len(events.events) == 1)
        assert events.notifications() == [
            m.UnjoinNotify(2, "x111:y222", "ev1", "connection terminated")
        ]
        await cli.mixer(m.DestroyConference("ev1"))
        await until(lambda: len(events.events) == 2)
        assert events.notifications()[1] == m.ConferenceExit("ev1", 0, "conference destroyed")


async def test_active_talkers_notify_when_subscribed(server: ControlServer) -> None:
    host, port = server.address
    events = EventLog()
    async with started_client(host, port, "talkercfw001", on_event=events) as cli:
        sub = m.Subscribe(m.ActiveTalkersSub(interval=60))
        await cli.mixer(m.CreateConference(conferenceid="talk1", subscribe=sub))
        await cli.mixer(m.CreateConference(conferenceid="quiet1"))
        server.active_talkers("quiet1", ["a:b"])  # not subscribed: nothing
        server.active_talkers("talk1", ["a1:b1", "side1"])
        server.active_talkers("talk1", ["a1:b1"])  # within the interval: suppressed
        await until(lambda: len(events.events) >= 1)
        await asyncio.sleep(0.05)
        assert events.notifications() == [
            m.ActiveTalkersNotify(
                "talk1",
                (m.ActiveTalker(connectionid="a1:b1"), m.ActiveTalker(conferenceid="side1")),
            )
        ]


async def test_keep_alive_keeps_the_channel_open(server: ControlServer) -> None:
    host, port = server.address
    async with started_client(host, port, "kalivecfw001", replace(FAST, keep_alive=1)) as cli:
        # The server closes a channel whose K-ALIVEs stop for 1 s (RFC 6230 s6.3.3.2).
        await asyncio.sleep(2.5)
        assert cli.is_up
        assert cli.connections_made == 1
        assert (await cli.mixer(m.Audit(capabilities=False))) == m.AuditResponse(
            200, mixers=m.Mixers()
        )


async def test_control_when_down_and_timeout(server: ControlServer) -> None:
    host, port = server.address
    cli = MediaControlClient(direct_opener(host, port, "downcfwid001"), FAST)
    with pytest.raises(ChannelDown):
        await cli.control(PACKAGE, b"")
    await cli.start()
    try:
        server.drop_channels()
        with pytest.raises(ChannelDown):
            await cli.mixer(m.Audit())
    finally:
        await cli.close()


async def scripted_peer(
    on_control: Callable[[CfwConnection, ControlReceived, float], None],
) -> asyncio.Server:
    """A media server written directly on the server-side CfwConnection (no mixer service)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        conn = CfwConnection(Side.SERVER, CfwConfig(), now=loop.time())
        while data := await reader.read(65536):
            conn.receive_data(data, loop.time())
            while (event := conn.next_event()) is not None:
                if isinstance(event, SyncReceived):
                    conn.accept_sync(loop.time())
                elif isinstance(event, ControlReceived):
                    on_control(conn, event, loop.time())
            writer.write(conn.data_to_send())
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@contextlib.asynccontextmanager
async def scripted_client(
    on_control: Callable[[CfwConnection, ControlReceived, float], None],
    cfw_id: str,
    config: ClientConfig = FAST,
) -> AsyncIterator[MediaControlClient]:
    """A started client on a channel to ``scripted_peer(on_control)``; both closed after."""
    listener = await scripted_peer(on_control)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with started_client("127.0.0.1", port, cfw_id, config) as cli:
            yield cli
    finally:
        listener.close()
        await listener.wait_closed()


async def test_silent_server_times_out() -> None:
    """A peer that completes SYNC but never answers CONTROL: the caller's bound applies."""
    # Transaction-Timeout 0.2 s: the connection's own timer gives up after 2x (RFC 6230 s6.1).
    quick = replace(FAST, transaction_timeout=0.2)
    async with scripted_client(lambda conn, event, now: None, "silentcfw001", quick) as cli:
        with pytest.raises(ControlTimeout):
            await cli.mixer(m.Audit(), timeout=0.1)  # the caller's own bound
        with pytest.raises(ControlTimeout):
            await cli.mixer(m.Audit())  # the framework's bound, from the one timer
        assert cli.is_up  # a lost answer does not end the channel


def test_accept_any_dialog_is_off_by_default() -> None:
    assert ControlServerConfig().accept_any_dialog is False


async def test_extended_transaction_answer_is_the_final_report() -> None:
    """RFC 6230 s6.3.2: 202, then REPORTs; the final (terminate) one carries the answer."""

    def extended(conn: CfwConnection, event: ControlReceived, now: float) -> None:
        conn.respond(event.trans_id, 202, now=now, timeout=5)
        conn.report(event.trans_id, ReportStatus.UPDATE, now)
        body = encode(m.Response(200, "done later", conferenceid="late1"))
        conn.report(
            event.trans_id, ReportStatus.TERMINATE, now, content_type=CONTENT_TYPE, body=body
        )

    async with scripted_client(extended, "extendcfw001") as cli:
        answer = await cli.control(PACKAGE, encode(m.CreateConference()))
        assert answer.extended
        assert decode(answer.body) == m.Response(200, "done later", conferenceid="late1")


async def test_framework_error_codes_reach_the_caller() -> None:
    def refuse(conn: CfwConnection, event: ControlReceived, now: float) -> None:
        conn.respond(event.trans_id, 481)

    async with scripted_client(refuse, "refusecfw001") as cli:
        with pytest.raises(ControlError) as refused:
            await cli.mixer(m.Audit())
        assert refused.value.code == 481
        assert cli.is_up


async def test_garbage_to_the_server_ends_only_that_channel(
    server: ControlServer, client: MediaControlClient
) -> None:
    host, port = server.address
    for garbage in (
        b"\x00\xff" * 100 + b"\r\n\r\n",
        b"CFW 1234abcd CONTROL\r\nControl-Package: msc-mixer/1.0\r\n\r\n",  # before SYNC: 403
        b"CFW 1234abcd SYNC\r\nPackages: msc-mixer/1.0\r\n\r\n",  # no Dialog-ID: 400
    ):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(garbage)
        async with asyncio.timeout(3.0):
            answer = await reader.read()  # the server answers if it can, then closes
        writer.close()
        assert answer == b"" or answer.startswith(b"CFW ")
    assert (await client.mixer(m.Audit(capabilities=False))) == m.AuditResponse(
        200, mixers=m.Mixers()
    )


async def test_garbage_from_the_server_makes_the_client_reconnect(server: ControlServer) -> None:
    host, port = server.address
    hits = 0

    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        await reader.read(100)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" if hits == 1 else b"")
        writer.close()

    listener = await asyncio.start_server(babble, "127.0.0.1", 0)
    bad_port = listener.sockets[0].getsockname()[1]
    targets = iter([("127.0.0.1", bad_port), ("127.0.0.1", bad_port), (host, port)])

    async def opener() -> ChannelTarget:
        h, p = next(targets)
        return ChannelTarget(h, p, "babblecfw001")

    cli = MediaControlClient(opener, FAST)
    try:
        await cli.start()  # two failed set-ups, then the real server
        assert hits == 2
        assert cli.connections_made == 1
        assert (await cli.mixer(m.Audit(capabilities=False))).status == 200  # type: ignore[union-attr]
    finally:
        await cli.close()
        listener.close()
        await listener.wait_closed()


async def test_client_waits_for_a_late_server(backend: ControlOnlyBackend) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    cli = MediaControlClient(direct_opener("127.0.0.1", port, "patientcfw01"), FAST)
    starting = asyncio.create_task(cli.start())
    try:
        await asyncio.sleep(0.3)  # refused connections meanwhile, with growing delays
        assert not starting.done()
        late_config = ControlServerConfig(port=port, accept_any_dialog=True)
        late = ControlServer(MixerService(backend), late_config)
        await late.start()
        async with asyncio.timeout(3.0):
            await starting
        assert cli.is_up
    finally:
        await cli.close()
    await late.close()


async def test_a_connection_that_never_syncs_is_closed(backend: ControlOnlyBackend) -> None:
    config = ControlServerConfig(accept_any_dialog=True, sync_timeout=0.3)
    strict = ControlServer(MixerService(backend), config)
    host, port = await strict.start()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        async with asyncio.timeout(3.0):
            assert await reader.read() == b""
        writer.close()
        assert strict.channels == set()
    finally:
        await strict.close()


async def test_channel_negotiated_by_sdp_offer_answer(backend: ControlOnlyBackend) -> None:
    """The COMEDIA exchange of RFC 6230 s4 as the SIP INVITE would carry it: our offer, the
    media server's answer, then TCP to the answered address with the offer's cfw-id.  The
    client offers the same cfw-id again after a drop and gets its mixers back (RFC 6505 s7)."""
    strict = ControlServer(MixerService(backend))  # no test mode: only negotiated cfw-ids
    await strict.start()
    offers: list[str] = []

    async def sip_like_opener() -> ChannelTarget:
        offer = channel_offer("127.0.0.1", cfw_id="focusas00001")
        offers.append(offer.cfw_id)
        answer = strict.answer_offer(offer.sdp, identity="sip:focus@as1", source_host="127.0.0.1")
        assert "a=setup:passive" in answer
        return offer.target(answer)

    cli = MediaControlClient(sip_like_opener, FAST)
    try:
        await cli.start()
        await cli.mixer(m.CreateConference("sdp1"))
        assert strict.service.conferences_of("focusas00001") == ("sdp1",)
        strict.drop_channels()
        await until(lambda: cli.connections_made == 2 and cli.is_up)
        assert offers == ["focusas00001"] * 2
        audit = await cli.mixer(m.Audit(capabilities=False))
        assert isinstance(audit, m.AuditResponse)
        assert audit.mixers is not None
        assert [c.conferenceid for c in audit.mixers.conferences] == ["sdp1"]
        # Another SIP identity offering the same cfw-id is refused: no hijack by SDP sniffing.
        with pytest.raises(ChannelRefused) as refused:
            strict.answer_offer(
                channel_offer("127.0.0.1", cfw_id="focusas00001").sdp, identity="sip:mallory@x"
            )
        assert refused.value.status == 403
    finally:
        await cli.close()
        await strict.close()


async def test_a_lost_channels_mixers_wait_for_its_handover_then_go(
    backend: ControlOnlyBackend,
) -> None:
    """RFC 6505 s7 handover: the same cfw-id back within ``orphan_timeout`` keeps the mixers;
    a channel that never comes back (its application server restarted under a new cfw-id)
    does not leave them on the media server forever."""
    server = ControlServer(
        MixerService(backend), ControlServerConfig(accept_any_dialog=True, orphan_timeout=0.5)
    )
    host, port = await server.start()
    client = MediaControlClient(direct_opener(host, port, "orphan000001"), FAST)
    try:
        await client.start()
        await client.mixer(m.CreateConference("waits"))
        server.drop_channels()
        await until(lambda: client.connections_made == 2 and client.is_up)
        await asyncio.sleep(0.7)  # past the timeout: the handover cancelled the release
        assert server.service.conferences_of("orphan000001") == ("waits",)
        await client.close()
        await until(lambda: not server.service.conferences_of("orphan000001"))
        assert backend.conferences == {}
    finally:
        await client.close()
        await server.close()


async def test_sdp_offers_the_listener_cannot_take(server: ControlServer) -> None:
    offer = channel_offer("127.0.0.1", cfw_id="tlsoffer0001")
    with pytest.raises(SdpError) as tls:
        server.answer_offer(offer.sdp.replace(" TCP cfw", " TCP/TLS cfw"))
    assert tls.value.status == 488
    with pytest.raises(SdpError) as garbled:
        server.answer_offer("v=0\r\nm=audio 4000 RTP/AVP 0\r\n")
    assert garbled.value.status == 400  # not even SDP (no o=, s=, t=)
    other = channel_offer("127.0.0.1")
    answer = server.answer_offer(other.sdp)
    with pytest.raises(SdpError, match="cfw-id"):
        # An answer that reuses the offer's cfw-id does not complete it (s4.2).
        offer.target(answer.replace(answer.split("a=cfw-id:")[1].split()[0], "tlsoffer0001"))
    assert other.target(answer).dialog_id == other.cfw_id


async def test_an_opener_failure_is_retried(server: ControlServer) -> None:
    host, port = server.address
    calls = 0

    async def flaky_opener() -> ChannelTarget:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("INVITE answered 503")
        return ChannelTarget(host, port, "flakycfw0001")

    cli = MediaControlClient(flaky_opener, FAST)
    try:
        await cli.start()
        assert calls == 2
    finally:
        await cli.close()


async def test_an_undecodable_answer_is_a_control_error() -> None:
    def nonsense(conn: CfwConnection, event: ControlReceived, now: float) -> None:
        conn.respond(event.trans_id, 200, content_type=CONTENT_TYPE, body=b"<not-mixer/>")

    async with scripted_client(nonsense, "nonsense0001") as cli:
        with pytest.raises(ControlError) as bad:
            await cli.mixer(m.Audit())
        assert bad.value.reason is not None
        assert "msc-mixer" in bad.value.reason
