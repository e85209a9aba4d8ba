"""SUBSCRIBE to a conference URI (RFC 4575): a full document first, then each change made
over SIP or CCMP, and the final NOTIFY when the conference goes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from focus.core.commands import DeleteConference
from focus.core.policy import Actor
from focus.settings import SipProfile
from focus.sip.aio.ua import UserAgent
from focus.sip.uacore import IncomingRequest, UAEvent
from tests.focus.calls.conftest import PhoneFactory, headers_of, sdp_offer, start_focus
from tests.focus.calls.test_in_call import conf_of
from tests.waiting import eventually


class Watcher:
    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        self.notifies: list[tuple[str, str, bytes]] = []  # (state, content type, body)
        ua.on_event = self.on_event

    def on_event(self, ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingRequest) and event.request.method == "NOTIFY":
            request = event.request
            self.notifies.append(
                (
                    request.headers.get("Subscription-State") or "",
                    request.headers.get("Content-Type") or "",
                    request.body,
                )
            )
            ua.respond(request, 200)


def users_in(body: bytes) -> int:
    return len(re.findall(rb"<(?:\w+:)?user\s", body))


async def test_subscribers_see_joins_and_the_end(tmp_path: Path, phones: PhoneFactory) -> None:
    async with start_focus(tmp_path, SipProfile(notify_interval=0.0)) as focus:
        alice, bob = await phones("alice"), await phones("bob")
        watcher = Watcher(alice)
        call = await alice.invite(focus.factory, sdp_offer(38000))
        conf = conf_of(call)
        response, dialog = await alice.subscribe(
            focus.uri(conf), "conference", accept="application/conference-info+xml"
        )
        assert response.status == 200 and dialog is not None
        await eventually(lambda: len(watcher.notifies) >= 1)
        state, ctype, body = watcher.notifies[0]
        assert state.startswith("active") and ctype.startswith("application/conference-info+xml")
        assert b'state="full"' in body and users_in(body) == 1
        # Bob dials in: a partial NOTIFY adds him.
        other = await bob.invite(focus.uri(conf), sdp_offer(38002))
        await eventually(lambda: any(b"bob@127.0.0.1" in n[2] for n in watcher.notifies))
        assert b'state="partial"' in watcher.notifies[-1][2]
        # CCMP deletes the conference: the subscription ends (noresource).
        focus.running.store.apply(
            DeleteConference(actor=Actor.system(), uri=f"xcon:{conf}@example.org")
        )
        await eventually(lambda: watcher.notifies[-1][0].startswith("terminated"))
        assert "noresource" in watcher.notifies[-1][0]
        await focus.settled((0, 0, 0))
        assert not focus.focus.events.subs
        del other


async def test_subscribe_to_an_unknown_conference_is_404(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    async with start_focus(tmp_path) as focus:
        alice = await phones("alice")
        response, _ = await alice.subscribe(focus.uri("conf404"), "conference")
        assert response.status == 404
        response, _ = await alice.subscribe(focus.uri("conf404"), "presence")
        assert response.status in (404, 489)
        await asyncio.sleep(0)


async def test_the_notifier_contact_is_the_conference_uri_with_isfocus(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    """RFC 4579 s5.3, RFC 6665 s4.2.1: the 200 to SUBSCRIBE and every NOTIFY carry the
    conference URI with ``;isfocus`` as Contact, so in-dialog requests go to the conference."""
    async with start_focus(tmp_path, SipProfile(notify_interval=0.0)) as focus:
        alice = await phones("alice")
        contacts = headers_of(alice, "NOTIFY", "Contact", 200)
        call = await alice.invite(focus.factory, sdp_offer(38010))
        conf = conf_of(call)
        response, dialog = await alice.subscribe(focus.uri(conf), "conference")
        assert response.status == 200 and dialog is not None
        contact = response.headers.get("Contact") or ""
        assert f"sip:{conf}@" in contact and ";isfocus" in contact, contact
        assert getattr(dialog.remote_target, "user", None) == conf
        await eventually(lambda: len(contacts) >= 1)
        assert all(f"sip:{conf}@" in c and ";isfocus" in c for c in contacts), contacts
        assert "focus@" not in "".join(contacts)
