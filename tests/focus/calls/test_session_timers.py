"""RFC 4028 session timers on every call: dial-in (422 below Min-SE, Session-Expires in the
2xx and in the answer to a refresh, a phone that never refreshes is sent BYE), dial-out (our
INVITE asks, a 422 is retried, the focus refreshes, a refresh answered 408/481 ends the call)
and the focus's legs to the media server. Most run the focus's SessionTimers on a fake clock
(``handle_timer(now)``) through real sockets; one slow test waits the real 60 s."""

from __future__ import annotations

import asyncio
import socket

import pytest

from focus.calls.timers import SessionTimers
from focus.sip.aio.ua import UserAgent
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.session_timer import Refresher, parse_session_expires
from focus.sip.uacore import CallAnswered, CallEnded, IncomingCall, UAEvent
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer
from tests.focus.calls.test_dial_out import add_dial_out, new_conference
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


# --- the focus as UAC (dial-out) and as refresher, on the SessionTimers' fake clock -------


class TimedCallee:
    """A phone the focus dials: answers the INVITE with ``invite_answers`` in turn (422 with
    Min-SE, then 200 with ``granted`` Session-Expires), and each refresh re-INVITE with
    ``refresh_answers`` in turn; records every INVITE it got."""

    def __init__(
        self,
        ua: UserAgent,
        granted: str,
        invite_answers: list[int] | None = None,
        refresh_answers: list[int] | None = None,
        min_se: str = "1900",
    ) -> None:
        self.ua = ua
        self.granted = granted
        self.min_se = min_se
        self.invite_answers = invite_answers or [200]
        self.refresh_answers = refresh_answers or []
        self.invites: list[Request] = []
        self.refreshes: list[Request] = []
        self.ended: list[CallEnded] = []
        ua.on_event = self.on_event

    def on_event(self, ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall):
            (self.refreshes if event.reinvite else self.invites).append(event.request)
            answers = self.refresh_answers if event.reinvite else self.invite_answers
            status = answers.pop(0) if answers else 200
            if status == 200:
                ua.accept(event.call, sdp_offer(35700), headers=[("Session-Expires", self.granted)])
            elif status == 422:
                ua.reject(event.call, 422, headers=[("Min-SE", self.min_se)])
            else:
                ua.reject(event.call, status)
        elif isinstance(event, CallEnded):
            self.ended.append(event)


async def dial(focus: Focus, callee: TimedCallee) -> str:
    """The focus dials ``callee`` (CCMP-style dial-out) until she is in; the conference."""
    conf = new_conference(focus)
    add_dial_out(focus, conf, callee.ua.local_uri())
    await focus.settled((1, 1, 1))
    return conf


def timers_of(focus: Focus) -> SessionTimers:
    return focus.focus.ctx.timers


async def test_rfc4028_s7_1_the_dial_out_invite_asks_for_a_session_timer(
    focus: Focus, phones: PhoneFactory
) -> None:
    callee = TimedCallee(await phones("bob"), "1800;refresher=uas")
    await dial(focus, callee)
    (invite,) = callee.invites
    assert "timer" in (invite.headers.get("Supported") or "")
    assert invite.headers.get("Session-Expires") == "1800"
    assert invite.headers.get("Min-SE") == "90"


async def test_rfc4028_s7_3_a_422_to_the_dial_out_is_retried_with_its_min_se(
    focus: Focus, phones: PhoneFactory
) -> None:
    callee = TimedCallee(await phones("bob"), "1900;refresher=uas", invite_answers=[422, 200])
    await dial(focus, callee)
    first, retry = callee.invites
    assert first.headers.get("Session-Expires") == "1800"
    assert retry.headers.get("Session-Expires") == "1900"
    assert retry.headers.get("Min-SE") == "1900"
    assert len(focus.focus.calls) == 1


async def refresh_due(focus: Focus, callee: TimedCallee, count: int) -> None:
    """Runs the focus's session timers to the next deadline (half of 90 s, not 45 s of
    waiting) and waits for the ``count``-th refresh to arrive."""
    timers = timers_of(focus)
    # The call's timer starts when the focus has read the 2xx, which may come just after
    # the legs settled (a loaded machine).
    await eventually(
        lambda: (timers.next_deadline or float("inf")) - focus.focus.ua.now < 46,
        "the call's session timer",
    )
    deadline = timers.next_deadline
    assert deadline is not None
    assert 44 < deadline - focus.focus.ua.now <= 45  # s10: at half the interval
    timers.handle_timer(deadline)
    await eventually(lambda: len(callee.refreshes) >= count, "the refresh re-INVITE")


async def test_rfc4028_s10_the_focus_refreshes_a_dial_out_at_half_the_interval(
    focus: Focus, phones: PhoneFactory
) -> None:
    # refresher=uac: the focus placed the call, so the focus refreshes.
    callee = TimedCallee(await phones("bob"), "90;refresher=uac")
    await dial(focus, callee)
    await refresh_due(focus, callee, 1)
    (refresh,) = callee.refreshes
    assert refresh.headers.get("Session-Expires") == "90;refresher=uac"
    assert refresh.body  # the same session description (s10)
    # The 2xx restarted the interval: the next refresh is again 45 s away.
    await eventually(
        lambda: (timers_of(focus).next_deadline or 0) - focus.focus.ua.now > 44,
        "the interval restarted",
    )
    await refresh_due(focus, callee, 2)
    assert not callee.ended and len(focus.focus.calls) == 1


async def test_rfc4028_s10_a_refresh_answered_422_is_retried_with_the_larger_interval(
    focus: Focus, phones: PhoneFactory
) -> None:
    callee = TimedCallee(
        await phones("bob"), "90;refresher=uac", refresh_answers=[422, 200], min_se="120"
    )
    await dial(focus, callee)
    await refresh_due(focus, callee, 2)
    first, retry = callee.refreshes
    assert first.headers.get("Session-Expires") == "90;refresher=uac"
    assert retry.headers.get("Session-Expires") == "120;refresher=uac"
    assert retry.headers.get("Min-SE") == "120"
    assert not callee.ended


@pytest.mark.parametrize("status", [408, 481])
async def test_rfc4028_s10_a_refresh_answered_408_or_481_ends_the_call(
    focus: Focus, phones: PhoneFactory, status: int
) -> None:
    callee = TimedCallee(await phones("bob"), "90;refresher=uac", refresh_answers=[status])
    conf = await dial(focus, callee)
    await refresh_due(focus, callee, 1)
    # s10: the session ends WITH a BYE, though the 408/481 ended the dialog for the focus
    # (RFC 3261 s12.2.1.2); this callee still has it, so it answers 200 and hangs up.
    await eventually(lambda: bool(callee.ended), "the focus's BYE")
    assert callee.ended[0].by_peer
    # The call ends, nothing is kept.
    await focus.settled((0, 0, 0))
    assert not focus.focus.calls
    call_id = callee.invites[0].call_id
    assert all(d.call_id != call_id for d in focus.focus.ua.core.dialogs.dialogs)
    # An ordinary departure: the user is gone from the roster.
    obj = focus.running.store.get(conf)
    assert obj is not None and not (obj.info.users and obj.info.users.users)


async def test_rfc4028_s10_a_phone_that_never_refreshes_is_sent_bye_on_a_fake_clock(
    focus: Focus, phones: PhoneFactory
) -> None:
    """As the slow test below, but the expiry comes from the fake clock at once."""
    alice = await phones("alice")
    ended: list[CallEnded] = []
    alice.on_event = lambda _ua, event: (
        ended.append(event) if isinstance(event, CallEnded) else None
    )
    headers = [("Supported", "timer"), ("Session-Expires", "90;refresher=uac")]
    await alice.invite(focus.factory, sdp_offer(35620), headers=headers)
    await focus.settled((1, 1, 1))
    timers = timers_of(focus)
    deadline = timers.next_deadline
    assert deadline is not None
    assert 59 < deadline - focus.focus.ua.now <= 60  # 90 - min(32, 90/3)
    timers.handle_timer(deadline - 1)
    await asyncio.sleep(0.2)
    assert not ended, "not before the expiry"
    timers.handle_timer(deadline)
    await eventually(lambda: bool(ended), "the focus's BYE")
    await focus.settled((0, 0, 0))


# --- the focus's legs to the media server -----------------------------------------------


async def test_rfc4028_media_legs_carry_a_session_timer_the_focus_refreshes(
    focus: Focus, phones: PhoneFactory
) -> None:
    alice = await phones("alice")
    await alice.invite(focus.factory, sdp_offer(35630))
    await focus.settled((1, 1, 1))
    (ms_leg,) = focus.server.sip.legs.values()
    assert ms_leg.timer is not None and ms_leg.timer.session_expires is not None
    # The media server leaves refreshing to the focus that opened the leg.
    assert str(ms_leg.timer.session_expires) == "1800;refresher=uac"
    ms_timers = focus.server.sip.timers
    expiry = ms_timers.next_deadline
    assert expiry is not None
    # The focus refreshes its leg at 900 s (fake clock): the media server's expiry moves on.
    timers = timers_of(focus)
    due = timers.next_deadline
    assert due is not None and 899 < due - focus.focus.ua.now <= 900
    timers.handle_timer(due)
    await eventually(
        lambda: (ms_timers.next_deadline or 0) > expiry, "the media server saw the refresh"
    )
    assert focus.audit() == (1, 1, 1)


async def test_rfc4028_a_leg_not_refreshed_is_ended_by_the_media_server(
    focus: Focus, phones: PhoneFactory
) -> None:
    """The media server BYEs a leg whose focus stopped refreshing it (s10); this focus is
    alive, so it opens a new leg and the call goes on."""
    alice = await phones("alice")
    await alice.invite(focus.factory, sdp_offer(35640))
    await focus.settled((1, 1, 1))
    (old,) = focus.server.sip.legs
    ms_timers = focus.server.sip.timers
    assert ms_timers.next_deadline is not None
    ms_timers.handle_timer(ms_timers.next_deadline)
    await eventually(lambda: old not in focus.server.sip.legs, "the media server's BYE")
    await eventually(lambda: bool(focus.server.sip.legs), "a new leg")
    await focus.settled((1, 1, 1))
    assert len(focus.focus.calls) == 1


async def test_rfc4028_s9_a_dial_in_leaving_the_choice_is_refreshed_by_the_focus(
    focus: Focus, phones: PhoneFactory
) -> None:
    """Table 2 row 4: the phone supports timer but names no refresher; the focus takes the
    role (refreshing too often is harmless) and re-INVITEs it at half the interval."""
    alice = await phones("alice")
    refreshes: list[Request] = []

    def on_event(ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall) and event.reinvite:
            refreshes.append(event.request)
            ua.accept(event.call, sdp_offer(35650), headers=[("Session-Expires", "90")])

    alice.on_event = on_event
    asked = [("Supported", "timer"), ("Session-Expires", "90")]
    call = await alice.invite(focus.factory, sdp_offer(35650), headers=asked)
    assert call.response is not None
    granted = parse_session_expires(call.response.headers.get("Session-Expires") or "")
    assert granted.refresher is Refresher.UAS
    timers = timers_of(focus)
    deadline = timers.next_deadline
    assert deadline is not None and 44 < deadline - focus.focus.ua.now <= 45
    timers.handle_timer(deadline)
    await eventually(lambda: bool(refreshes), "the focus's refresh")
    assert refreshes[0].headers.get("Session-Expires") == "90;refresher=uac"
    await alice.bye(call)
    await focus.settled((0, 0, 0))
