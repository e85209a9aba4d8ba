"""`python -m focus serve` as a whole: a phone dials the factory over real SIP and the real
CCMP client sees the caller in the new conference at once; SIGTERM ends the call cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.uacore import CallEnded, UAConfig, UAEvent
from focus.sip.uri import SipURI
from tests.serve import Serve

OFFER = (
    b"v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 33000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


async def test_factory_call_is_visible_over_ccmp(server: Serve) -> None:
    focus = f"sip:conference@{server.sip_host}:{server.sip_port}"
    ended = asyncio.Event()

    def on_event(_ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallEnded) and event.by_peer:
            ended.set()

    async with await UserAgent.start(
        UAConfig(user="alice"),
        TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
        on_event=on_event,
    ) as phone:
        call = await phone.invite(focus, OFFER)
        assert call.dialog is not None
        target = call.dialog.remote_target
        assert isinstance(target, SipURI) and target.user
        conf = f"xcon:{target.user}@example.org"
        shown = await asyncio.to_thread(server.client, "--xml", "users", conf)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "alice@127.0.0.1" in shown.stdout
        assert re.search(r"<(\w+:)?status>connected</", shown.stdout), shown.stdout
        assert re.search(r"<(\w+:)?joining-method>dialed-in</", shown.stdout), shown.stdout
        # A clean stop says goodbye to the phone.
        assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
        await asyncio.wait_for(ended.wait(), 5)


async def test_restart_after_a_crash_leaves_no_ghost_calls(server: Serve, state_dir: Path) -> None:
    """SIGKILL with calls up: the restarted focus deletes the ad hoc conference and marks
    the dialed-in user of a CCMP conference disconnected (failed): no call survives."""
    host, port = server.sip_host, server.sip_port
    created = await asyncio.to_thread(server.client, "create")
    assert created.returncode == 0, created.stdout + created.stderr
    kept = re.search(r"xcon:([^\s@]+)@example\.org", created.stdout)
    assert kept
    async with await UserAgent.start(
        UAConfig(user="alice"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    ) as phone:
        adhoc_call = await phone.invite(f"sip:conference@{host}:{port}", OFFER)
        assert adhoc_call.dialog is not None
        adhoc = getattr(adhoc_call.dialog.remote_target, "user", "")
        await phone.invite(f"sip:{kept.group(1)}@{host}:{port}", OFFER)
        server.stop(signal.SIGKILL)
    again = Serve(state_dir)
    try:
        listed = await asyncio.to_thread(again.client, "confs")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert kept.group(0) in listed.stdout and f"xcon:{adhoc}@" not in listed.stdout
        users = await asyncio.to_thread(again.client, "--xml", "users", kept.group(0))
        assert re.search(r"<(\w+:)?status>disconnected</", users.stdout), users.stdout
        assert re.search(r"<(\w+:)?disconnection-method>failed</", users.stdout), users.stdout
    finally:
        again.stop(signal.SIGTERM)


async def test_cli_mute_keeps_one_endpoint(server: Serve) -> None:
    """`ccmp_server.client mute` names the caller's existing endpoint (retrieved first), so
    the merge updates it: exactly one endpoint, its audio recvonly (RFC 6504 s6.2)."""
    async with await UserAgent.start(
        UAConfig(user="bob"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    ) as phone:
        call = await phone.invite(f"sip:conference@{server.sip_host}:{server.sip_port}", OFFER)
        assert call.dialog is not None and isinstance(call.dialog.remote_target, SipURI)
        conf = f"xcon:{call.dialog.remote_target.user}@example.org"
        shown = await asyncio.to_thread(server.client, "users", conf)
        user = re.search(r"user (xcon-userid:\S+)", shown.stdout)
        assert user, shown.stdout
        for command, status in (("mute", "recvonly"), ("unmute", "sendrecv")):
            done = await asyncio.to_thread(server.client, command, conf, user.group(1))
            assert done.returncode == 0, done.stdout + done.stderr
            xml = (
                await asyncio.to_thread(server.client, "--xml", "user", conf, user.group(1))
            ).stdout
            response = xml[xml.rindex("<?xml") if "<?xml" in xml[1:] else 0 :]
            assert len(re.findall(r"<(?:\w+:)?endpoint[\s>]", response)) == 1, response
            assert re.search(rf"<(\w+:)?status>{status}</", response), response
        server.stop(signal.SIGTERM)
