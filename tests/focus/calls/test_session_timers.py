"""RFC 4028 session timers on dial-in calls: 422 below Min-SE, Session-Expires in the 2xx and
in the answer to a refresh, and a phone that never refreshes (it vanished) is sent BYE and
leaves the conference like one that hung up."""

from __future__ import annotations

import asyncio
import socket

import pytest

from focus.sip.message import Response
from focus.sip.parser import parse_message
from focus.sip.session_timer import Refresher, parse_session_expires
from focus.sip.uacore import CallAnswered, CallEnded, UAEvent
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer
from tests.focus.calls.test_in_call import conf_of
from tests.waiting import eventually


async def raw_invite(focus: Focus, *headers: str) -> Response:
    """An INVITE to the factory from a bare UDP socket; its final response (ACKed)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        head = (
            f"INVITE sip:conference@{focus.host}:{focus.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-st-{port};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:raw@127.0.0.1>;tag=r{port}\r\n"
            f"To: <sip:conference@{focus.host}>\r\n"
            f"Call-ID: st-{port}@127.0.0.1\r\n"
            "CSeq: 1 INVITE\r\n"
            f"Contact: <sip:raw@127.0.0.1:{port}>\r\n"
            + "".join(f"{h}\r\n" for h in headers)
            + "Content-Length: 0\r\n\r\n"
        )
        await loop.sock_sendto(sock, head.encode(), (focus.host, focus.port))
        async with asyncio.timeout(5):
            while True:
                message = parse_message(await loop.sock_recv(sock, 65535))
                assert isinstance(message, Response)
                if message.status >= 200:
                    break
        ack = head.replace("INVITE sip:", "ACK sip:", 1).replace("1 INVITE", "1 ACK")
        await loop.sock_sendto(sock, ack.encode(), (focus.host, focus.port))
        return message


async def test_rfc4028_s9_an_interval_below_min_se_gets_422_with_min_se(focus: Focus) -> None:
    answer = await raw_invite(focus, "Supported: timer", "Session-Expires: 60")
    assert answer.status == 422
    assert answer.headers.get("Min-SE") == "90"
    assert not focus.focus.calls


async def test_rfc4028_s9_a_malformed_session_expires_gets_400(focus: Focus) -> None:
    answer = await raw_invite(focus, "Session-Expires: soon")
    assert answer.status == 400 and not focus.focus.calls


async def test_rfc4028_s9_the_2xx_and_a_refresh_carry_session_expires(
    focus: Focus, phones: PhoneFactory
) -> None:
    alice = await phones("alice")
    events: list[UAEvent] = []
    alice.on_event = lambda _ua, event: events.append(event)
    asked = [("Supported", "timer"), ("Session-Expires", "1800;refresher=uac")]
    call = await alice.invite(focus.factory, sdp_offer(35600), headers=asked)
    (answer,) = [e.response for e in events if isinstance(e, CallAnswered)]
    granted = parse_session_expires(answer.headers.get("Session-Expires") or "")
    assert granted.interval == 1800 and granted.refresher is Refresher.UAC
    assert "timer" in (answer.headers.get("Require") or "")  # the UAC refreshes: MUST (s9)
    # The refresh: a re-INVITE with the same session (s10) is answered with the timer again.
    assert call.local_sdp
    refreshed = await alice.reinvite(call, call.local_sdp, headers=asked)
    assert refreshed.status == 200
    assert parse_session_expires(refreshed.headers.get("Session-Expires") or "").interval == 1800
    await alice.bye(call)
    await focus.settled((0, 0, 0))


@pytest.mark.slow
async def test_rfc4028_s10_a_phone_that_never_refreshes_is_sent_bye(
    focus: Focus, phones: PhoneFactory
) -> None:
    """The phone asks the shortest interval (90 s) and to refresh itself, then never does
    (it vanished): at 90 - min(32, 90/3) = 60 s the focus sends BYE (s10) and the call
    leaves the conference, every resource with it."""
    alice = await phones("alice")
    ended: list[CallEnded] = []
    alice.on_event = lambda _ua, event: (
        ended.append(event) if isinstance(event, CallEnded) else None
    )
    headers = [("Supported", "timer"), ("Session-Expires", "90;refresher=uac")]
    call = await alice.invite(focus.factory, sdp_offer(35610), headers=headers)
    conf = conf_of(call)
    await focus.settled((1, 1, 1))
    await asyncio.sleep(50)
    assert not ended, "the focus must not end the session before its expiry"
    await eventually(lambda: bool(ended), "the focus's BYE", timeout=20)
    assert ended[0].by_peer
    await focus.settled((0, 0, 0))
    assert not focus.focus.calls
    # An ordinary departure: the ad hoc conference ends once its last caller is gone.
    uri = f"xcon:{conf}@example.org"
    await eventually(lambda: focus.running.store.get(uri) is None, "the ad hoc conference ended")
