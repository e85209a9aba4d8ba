"""The CFW client against the media server's control side, over real loopback TCP."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from mediactrl.client import (
    ChannelDown,
    ControlError,
    ControlTimeout,
    MediaControlClient,
    direct_opener,
)
from mediactrl.mixer import model as m
from mediactrl.mixer.codec import CONTENT_TYPE, PACKAGE
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService
from tests.mediactrl_client.conftest import FAST, EventLog


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
    cli = MediaControlClient(direct_opener(host, port, "eventscfw001"), FAST, on_event=events)
    await cli.start()
    try:
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
    finally:
        await cli.close()


async def test_active_talkers_notify_when_subscribed(server: ControlServer) -> None:
    host, port = server.address
    events = EventLog()
    cli = MediaControlClient(direct_opener(host, port, "talkercfw001"), FAST, on_event=events)
    await cli.start()
    try:
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
    finally:
        await cli.close()


async def test_keep_alive_keeps_the_channel_open(server: ControlServer) -> None:
    host, port = server.address
    cli = MediaControlClient(direct_opener(host, port, "kalivecfw001"), replace(FAST, keep_alive=1))
    await cli.start()
    try:
        # The server closes a channel whose K-ALIVEs stop for 1 s (RFC 6230 s6.3.3.2).
        await asyncio.sleep(2.5)
        assert cli.is_up
        assert cli.connections_made == 1
        assert (await cli.mixer(m.Audit(capabilities=False))) == m.AuditResponse(
            200, mixers=m.Mixers()
        )
    finally:
        await cli.close()


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


async def test_silent_server_times_out() -> None:
    """A peer that completes SYNC (real server-role CfwConnection) but never answers CONTROL."""
    from mediactrl.cfw.connection import CfwConfig, CfwConnection, Role
    from mediactrl.cfw.events import SyncReceived

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        conn = CfwConnection(Role.SERVER, CfwConfig(keep_alive=None), now=loop.time())
        while data := await reader.read(65536):
            conn.receive_data(data, loop.time())
            while (event := conn.next_event()) is not None:
                if isinstance(event, SyncReceived):
                    conn.accept_sync(loop.time())
            writer.write(conn.data_to_send())
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    cli = MediaControlClient(direct_opener("127.0.0.1", port, "silentcfw001"), FAST)
    try:
        await cli.start()
        with pytest.raises(ControlTimeout):
            await cli.mixer(m.Audit(), timeout=0.3)
        assert cli.is_up  # a lost answer does not end the channel
    finally:
        await cli.close()
        listener.close()
        await listener.wait_closed()


def test_accept_any_dialog_is_off_by_default() -> None:
    assert ControlServerConfig().accept_any_dialog is False
