"""REFER and the focus (RFC 4579 s5.5, s5.6, s5.11; RFC 3515)."""

from __future__ import annotations

import asyncio

from focus.core.commands import UpdateUsers
from focus.core.policy import Actor
from focus.sip.aio.ua import UserAgent
from focus.sip.refer import parse_sipfrag
from focus.sip.uacore import CallEnded, CallState, IncomingRequest, UAEvent
from focus.xcon.model import AllowedUsersList, Target, Users
from tests.focus.calls.conftest import Focus, PhoneFactory, headers_of, sdp_offer
from tests.focus.calls.test_dial_out import Callee
from tests.focus.calls.test_in_call import conf_of
from tests.waiting import eventually


class Referrer:
    """Collects the NOTIFYs of REFERs it sent (and answers them 200)."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        self.progress: list[tuple[int, str]] = []  # (sipfrag status, Subscription-State)
        self.ended = asyncio.Event()
        ua.on_event = self.on_event

    def on_event(self, ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingRequest) and event.request.method == "NOTIFY":
            status, _ = parse_sipfrag(event.request.body)
            state = event.request.headers.get("Subscription-State") or ""
            self.progress.append((status, state.split(";")[0]))
            ua.respond(event.request, 200)
        elif isinstance(event, CallEnded):
            self.ended.set()


async def test_refer_dials_out_and_refer_bye_removes(focus: Focus, phones: PhoneFactory) -> None:
    alice = Referrer(await phones("alice"))
    callee = Callee(await phones("bob"))
    call = await alice.ua.invite(focus.factory, sdp_offer(35000))
    conf = conf_of(call)

    # s5.5: Refer-To bob -> the focus calls bob into the conference; NOTIFY 100 then 200.
    response = await alice.ua.refer(call, callee.uri)
    assert response.status == 202
    await eventually(lambda: (200, "terminated") in alice.progress)
    assert alice.progress == [(100, "active"), (200, "terminated")]
    await focus.settled((2, 2, 2))
    obj = focus.running.store.get(f"xcon:{conf}@example.org")
    assert obj is not None and obj.info.users is not None
    assert len(obj.info.users.users) == 2

    # s5.11: Refer-To bob;method=BYE -> the focus hangs bob up.
    alice.progress.clear()
    response = await alice.ua.refer(call, callee.uri + ";method=BYE")
    assert response.status == 202
    await asyncio.wait_for(callee.ended.wait(), 5)
    await eventually(lambda: (200, "terminated") in alice.progress)
    await focus.settled((1, 1, 1))
    obj = focus.running.store.get(f"xcon:{conf}@example.org")
    assert obj is not None and obj.info.users is not None
    assert len(obj.info.users.users) == 1

    # Refer-To someone not in the conference with method=BYE: 404 in the sipfrag.
    alice.progress.clear()
    assert (await alice.ua.refer(call, "sip:nobody@127.0.0.1:9;method=BYE")).status == 202
    await eventually(lambda: alice.progress[-1:] == [(404, "terminated")])
    await alice.ua.bye(call)
    await focus.settled((0, 0, 0))


async def test_refer_to_a_busy_user_reports_486(focus: Focus, phones: PhoneFactory) -> None:
    alice = Referrer(await phones("alice"))
    callee = Callee(await phones("bob"), status=486)
    call = await alice.ua.invite(focus.factory, sdp_offer(35010))
    assert (await alice.ua.refer(call, callee.uri)).status == 202
    await eventually(lambda: alice.progress[-1:] == [(486, "terminated")])
    await alice.ua.bye(call)
    await focus.settled((0, 0, 0))


async def test_ccmp_refer_target_makes_the_focus_refer(focus: Focus, phones: PhoneFactory) -> None:
    """RFC 4579 s5.6 / RFC 6501 s4.6.3: a target with method refer added over CCMP gets a
    REFER whose Refer-To is the conference URI; when it dials in, it joins."""
    carol = await phones("carol")
    refers = headers_of(carol, "REFER", "Refer-To", 202)
    alice = await phones("alice")
    call = await alice.invite(focus.factory, sdp_offer(35020))
    conf = conf_of(call)
    focus.running.store.apply(
        UpdateUsers(
            actor=Actor.system(),
            uri=f"xcon:{conf}@example.org",
            patch=Users(
                allowed_users_list=AllowedUsersList(
                    targets=(Target(uri=carol.local_uri(), method="refer"),)
                )
            ),
        )
    )
    await eventually(lambda: len(refers) == 1)
    refer_to = refers[0].strip("<>")
    assert f"sip:{conf}@" in refer_to
    joined = await carol.invite(refer_to, sdp_offer(35022))
    assert joined.state is CallState.CONFIRMED
    await focus.settled((2, 2, 2))
    await carol.bye(joined)
    await alice.bye(call)
    await focus.settled((0, 0, 0))
