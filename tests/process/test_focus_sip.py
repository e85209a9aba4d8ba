"""`python -m focus serve` as a whole: a phone dials the factory over real SIP and the real
CCMP client sees the caller in the new conference at once; SIGTERM ends the call cleanly."""

from __future__ import annotations

import asyncio
import re
import signal

from focus.sip.transport import TransportConfig
from focus.sip.ua import CallEnded, UAConfig, UAEvent, UserAgent
from focus.sip.uri import SipURI
from tests.process.test_serve import Server

SIP_UDP = re.compile(r"SIP focus listening on UDP ([\d.]+):(\d+)")

OFFER = (
    b"v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 33000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


async def test_factory_call_is_visible_over_ccmp(server: Server) -> None:
    match = SIP_UDP.search(server.log.decode())
    assert match, server.log.decode()
    focus = f"sip:conference@{match.group(1)}:{match.group(2)}"
    ended = asyncio.Event()

    def on_event(_ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallEnded) and event.by_peer:
            ended.set()

    async with await UserAgent.start(
            UAConfig(user="alice"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
            on_event=on_event) as phone:
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
