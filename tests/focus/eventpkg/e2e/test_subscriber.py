"""A subscriber written with the project's SIP stack against the running focus: for each
format it may Accept, every NOTIFY body validates against its schema, the copy rebuilt from
partials (RFC 4575 s4.6) or diffs (RFC 6502, RFC 5261) equals what CCMP shows after each
change made over CCMP or SIP (join, mute, role, subject, lock, leave); re-SUBSCRIBE gives
full state; deleting the conference over CCMP ends the subscription with noresource."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from focus.settings import SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.uacore import UAConfig
from focus.xcon.model import ConferenceInfo
from tests.focus.calls.conftest import sdp_offer
from tests.focus.eventpkg.e2e.harness import (
    DOMAIN,
    RFC4575,
    XCON,
    XCON_AND_DIFF,
    XCON_DIFF,
    Ccmp,
    Running,
    Subscriber,
    el,
    running_focus,
)
from tests.waiting import eventually


def facts(info: ConferenceInfo | None) -> dict[str, Any]:
    """What both views must agree on (the RFC 4575 subset: subject, lock, users, their
    roles, endpoints and media)."""
    assert info is not None
    desc, state = info.conference_description, info.conference_state
    users = info.users.users if info.users is not None else ()
    return {
        "display-text": desc.display_text if desc else None,
        "subject": desc.subject if desc else None,
        "locked": bool(state and state.locked),
        "users": {
            u.entity: (
                tuple(sorted(str(r) for r in u.roles or ())),
                sorted(
                    (
                        (e.entity, str(e.status), tuple((m.id, str(m.status)) for m in e.media))
                        for e in u.endpoints
                    ),
                    key=repr,
                ),
            )
            for u in users
        },
    }


async def agree(
    running: Running, conf: str, sub: Subscriber, what: str, timeout: float = 20.0
) -> None:
    """The subscriber's copy and the CCMP view converge (NOTIFYs take a round trip), and
    the focus is idle: every NOTIFY it sent has its 200, so nothing sent before this
    point can arrive after it (a NOTIFY in flight, retransmitted under load, would
    otherwise be taken for the answer to the test's next step)."""
    latest: dict[str, Any] = {}
    events = running.focus.focus.events

    async def fetch() -> None:
        latest["ccmp"] = facts(await running.ccmp.retrieve(conf))

    await fetch()
    loop_ok = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert not sub.problems, sub.problems
        state = sub.state()
        if state is not None and facts(state) == latest["ccmp"] and events.idle:
            loop_ok = True
            break
        await asyncio.sleep(0.02)
        await fetch()
    mine = facts(sub.state()) if sub.state() is not None else None
    assert loop_ok, f"after {what}: subscriber {mine} != CCMP {latest['ccmp']}"


def mute(user: str, endpoint: str | None, media_id: str) -> etree._Element:
    attrs = {"entity": endpoint} if endpoint is not None else {}
    return el(
        "userInfo",
        el("ci:endpoint", el("ci:media", el("ci:status", text="recvonly"), id=media_id), **attrs),
        entity=user,
    )


async def new_conference(ccmp: Ccmp, moderator_aor: str) -> str:
    conf = await ccmp.create(
        el(
            "confInfo",
            el(
                "ci:conference-description",
                el("ci:display-text", text="Weekly"),
                el("ci:subject", text="Before"),
            ),
            entity=f"xcon:AUTO_GENERATE_1@{DOMAIN}",
        )
    )
    await ccmp.add_user(
        conf,
        el(
            "userInfo",
            el("ci:display-text", text="Mod"),
            el("ci:roles", el("ci:entry", text="moderator")),
            el("ci:endpoint", el("ci:joining-method", text="dialed-in"), entity=moderator_aor),
            entity=f"xcon-userid:AUTO_GENERATE_1@{DOMAIN}",
        ),
    )
    return conf


@pytest.mark.parametrize("accept", [RFC4575, XCON, XCON_AND_DIFF])
async def test_every_change_reaches_the_subscriber(tmp_path: Path, accept: str) -> None:
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", accept)
        bob = await UserAgent.start(
            UAConfig(user="bob"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
        )
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            response = await sub.subscribe(running.sip_uri(conf))
            assert response.status == 200
            await eventually(lambda: len(sub.notifies) >= 1, what="the first NOTIFY")
            first = sub.notifies[0]
            assert first.state.startswith("active")
            assert first.content_type == (RFC4575 if accept == RFC4575 else XCON)
            if accept == RFC4575:
                assert sub.version == 1
                assert b'state="full"' in first.body
            await agree(running, conf, sub, "subscribing")

            await running.ccmp.set_subject(conf, "After")
            await agree(running, conf, sub, "the subject")

            call = await bob.invite(running.sip_uri(conf), sdp_offer(38010))
            assert call.dialog is not None
            await agree(running, conf, sub, "bob joining")
            ccmp_view = await running.ccmp.retrieve(conf)
            assert ccmp_view.users is not None
            (bob_user,) = [
                u
                for u in ccmp_view.users.users
                if any("bob@" in (e.entity or "") for e in u.endpoints)
            ]
            assert bob_user.entity is not None
            (bob_endpoint,) = bob_user.endpoints
            assert bob_endpoint.entity is not None and bob_endpoint.media[0].id is not None

            # RFC 6504 s6.2: muting sets the participant's media to recvonly
            await running.ccmp.update_user(
                conf, mute(bob_user.entity, bob_endpoint.entity, bob_endpoint.media[0].id)
            )
            await agree(running, conf, sub, "muting bob")
            muted = facts(sub.state())["users"][bob_user.entity][1]
            assert muted == [(bob_endpoint.entity, "connected", (("1", "recvonly"),))], muted

            await running.ccmp.update_user(
                conf,
                el(
                    "userInfo",
                    el("ci:roles", el("ci:entry", text="observer")),
                    entity=bob_user.entity,
                ),
            )
            await agree(running, conf, sub, "bob's role")

            await bob.bye(call)
            await agree(running, conf, sub, "bob leaving")

            await running.ccmp.update(
                conf,
                el(
                    "confInfo", el("ci:conference-state", el("ci:locked", text="true")), entity=conf
                ),
            )
            await agree(running, conf, sub, "locking")
            assert facts(sub.state())["locked"]

            kinds = [n.content_type for n in sub.notifies]
            if accept == RFC4575:
                assert all(b'state="partial"' in n.body for n in sub.notifies[1:])
            elif accept == XCON:
                assert set(kinds) == {XCON}
            else:
                assert XCON_DIFF in kinds[1:], kinds

            # re-SUBSCRIBE: the full state again (RFC 4575 s4.6: a new version, "full")
            count, version = len(sub.notifies), sub.version
            assert (await sub.resubscribe()).status == 200
            await eventually(lambda: len(sub.notifies) > count, what="refresh NOTIFY")
            # agree() left the focus idle, so the next NOTIFY is the refresh's
            again = sub.notifies[count]
            assert again.state.startswith("active")
            assert again.content_type == (RFC4575 if accept == RFC4575 else XCON)
            if accept == RFC4575:
                assert b'state="full"' in again.body and sub.version == (version or 0) + 1
            await agree(running, conf, sub, "re-subscribing")

            # The conference is deleted over CCMP: the final NOTIFY, reason noresource.
            count = len(sub.notifies)
            await running.ccmp.delete(conf)
            await eventually(
                lambda: any(n.state.startswith("terminated") for n in sub.notifies[count:]),
                what="final NOTIFY",
            )
            final = sub.notifies[-1]
            assert "reason=noresource" in final.state.replace(" ", "")
            if accept == RFC4575:
                assert b'state="deleted"' in final.body and sub.info is None
            assert not sub.problems, sub.problems
            assert not sub.invalid, sub.invalid
            await eventually(
                lambda: not running.focus.focus.events.subs,
                what="the focus forgets the subscription",
            )
        finally:
            await sub.close()
            await bob.close()


async def test_diffs_alone_are_not_acceptable(tmp_path: Path) -> None:
    """RFC 6502 s5.1: diffs only make sense after a full XCON document, so a subscriber
    who accepts only the -diff+xml type gets 406 naming what the focus can send."""
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", XCON_DIFF)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            response = await sub.subscribe(running.sip_uri(conf))
            assert response.status == 406
            offered = response.headers.get("Accept") or ""
            assert RFC4575 in offered and XCON in offered
            assert not sub.notifies
        finally:
            await sub.close()


async def test_mute_as_the_cli_sends_it_mutes_the_phones_endpoint(tmp_path: Path) -> None:
    async with running_focus(tmp_path) as running:
        bob = await UserAgent.start(
            UAConfig(user="bob"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
        )
        try:
            conf = await running.ccmp.create(
                el("confInfo", entity=f"xcon:AUTO_GENERATE_1@{DOMAIN}")
            )
            call = await bob.invite(running.sip_uri(conf), sdp_offer(38020))
            assert call.dialog is not None
            view = await running.ccmp.retrieve(conf)
            assert view.users is not None
            (user,) = view.users.users
            assert user.entity is not None
            await running.ccmp.update_user(conf, mute(user.entity, None, "1"))
            view = await running.ccmp.retrieve(conf)
            assert view.users is not None
            (user,) = view.users.users
            assert [[str(m.status) for m in e.media] for e in user.endpoints] == [["recvonly"]]
        finally:
            await bob.close()


async def test_xcon_documents_validate_against_rfc6501(tmp_path: Path) -> None:
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", XCON)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            assert (await sub.subscribe(running.sip_uri(conf))).status == 200
            await eventually(lambda: len(sub.notifies) >= 1, what="the first NOTIFY")
            assert not sub.problems and not sub.invalid, sub.invalid
        finally:
            await sub.close()


async def test_role_filtering_hides_the_password_from_participants(tmp_path: Path) -> None:
    """RFC 5239 s8.2 / RFC 6501: a participant's view has no conference password; a
    moderator's has it, in the full document and after a change."""
    async with running_focus(tmp_path) as running:
        mod = await Subscriber.start("mod", XCON_AND_DIFF)
        part = await Subscriber.start("part", XCON_AND_DIFF)
        try:
            conf = await running.ccmp.create(
                el(
                    "confInfo",
                    el(
                        "ci:conference-description",
                        el("ci:subject", text="Board"),
                        el(
                            "ci:conf-uris",
                            el(
                                "ci:entry",
                                el("ci:uri", text="sip:board@example.org"),
                                el("xcon:conference-password", text="pw-4711"),
                            ),
                        ),
                    ),
                    entity=f"xcon:AUTO_GENERATE_1@{DOMAIN}",
                )
            )
            running.ccmp.password = "pw-4711"  # RFC 6503 s5.1
            for who, role in ((mod, "moderator"), (part, "participant")):
                await running.ccmp.add_user(
                    conf,
                    el(
                        "userInfo",
                        el("ci:roles", el("ci:entry", text=role)),
                        el("ci:endpoint", entity=who.aor),
                        entity=f"xcon-userid:AUTO_GENERATE_1@{DOMAIN}",
                    ),
                )
            for who in (mod, part):
                assert (await who.subscribe(running.sip_uri(conf))).status == 200
            await eventually(lambda: bool(mod.notifies and part.notifies), what="first NOTIFYs")
            await running.ccmp.set_subject(conf, "Board 2")
            for who in (mod, part):
                await agree(running, conf, who, "the subject")
            assert b"pw-4711" in mod.notifies[0].body
            assert all(b"pw-4711" not in n.body for n in part.notifies)
            assert all(b"conference-password" not in n.body for n in part.notifies)
            for who, passwords in ((mod, ("pw-4711",)), (part, ())):
                state = who.state()
                assert state is not None and state.conference_description is not None
                uris = state.conference_description.conf_uris
                assert uris is not None
                # the focus adds its own conf-uris entry (participation), without one
                assert [
                    e.conference_passwords for e in uris.entries if e.uri == "sip:board@example.org"
                ] == [passwords]
            assert not mod.problems and not part.problems
        finally:
            await mod.close()
            await part.close()


async def test_too_short_expiry_is_423(tmp_path: Path) -> None:
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", RFC4575)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            response = await sub.subscribe(running.sip_uri(conf), expires=5)
            assert response.status == 423
            assert int(response.headers.get("Min-Expires") or 0) >= 5
        finally:
            await sub.close()


async def test_subscription_expires_without_refresh(tmp_path: Path) -> None:
    """RFC 6665 s4.2.2: unrefreshed, the subscription ends with reason timeout (a profile
    with min_expires = 2 keeps the wait short; production's minimum is 60 s)."""
    profile = SipProfile(notify_interval=0.0, min_expires=2, default_expires=3)
    async with running_focus(tmp_path, profile) as running:
        sub = await Subscriber.start("mod", RFC4575)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            assert (await sub.subscribe(running.sip_uri(conf), expires=1)).status == 423
            response = await sub.subscribe(running.sip_uri(conf), expires=2)
            assert response.status == 200
            granted = int(response.headers.get("Expires") or 0)
            assert 0 < granted <= 2
            await eventually(lambda: len(sub.notifies) == 1, what="first NOTIFY")
            assert running.focus.focus.events.subs  # still there before its time is up
            await eventually(lambda: len(sub.notifies) == 2, timeout=10, what="the end")
            assert sub.notifies[1].state.replace(" ", "").startswith("terminated;reason=timeout")
            assert not running.focus.focus.events.subs
        finally:
            await sub.close()


async def test_a_large_notify_goes_over_tcp(tmp_path: Path) -> None:
    """RFC 3261 s18.1.1: a NOTIFY over 1300 bytes is sent over TCP, a small one over UDP
    (the subscriber's Contact names a UDP port; it listens for TCP on the same port)."""
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", RFC4575)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            assert (await sub.subscribe(running.sip_uri(conf))).status == 200
            await eventually(lambda: len(sub.notifies) == 1, what="the first NOTIFY")
            # Locking: a partial of <conference-state> alone (RFC 4575 s4.4), well under
            # 1300 bytes with its headers (a description partial carries the whole
            # description, whose URIs alone can take it over).
            await running.ccmp.update(
                conf,
                el(
                    "confInfo", el("ci:conference-state", el("ci:locked", text="true")), entity=conf
                ),
            )
            await eventually(lambda: len(sub.notifies) == 2, what="a small partial")
            # One change that adds a dozen users: a partial over 1300 bytes.
            await running.ccmp.update(
                conf,
                el(
                    "confInfo",
                    el(
                        "ci:users",
                        *[
                            el(
                                "ci:user",
                                el("ci:display-text", text=f"Participant number {i}"),
                                el("ci:endpoint", entity=f"sip:user{i}@example.org"),
                                entity=f"xcon-userid:user{i}x@{DOMAIN}",
                            )
                            for i in range(12)
                        ],
                    ),
                    entity=conf,
                ),
            )
            await agree(running, conf, sub, "twelve users")
            small, large = sub.notifies[1], sub.notifies[-1]
            assert len(small.body) < 700 and small.transport == "UDP", small
            assert len(large.body) > 1300 and large.transport == "TCP"
            assert not sub.problems and not sub.invalid
        finally:
            await sub.close()


async def test_changes_in_quick_succession_are_paced_and_coalesced(tmp_path: Path) -> None:
    """RFC 4575 s3.9: NOTIFYs to one subscriber are at least notify_interval apart; the
    changes made meanwhile arrive together in one partial (version + 1)."""
    interval = 1.0
    async with running_focus(tmp_path, SipProfile(notify_interval=interval)) as running:
        sub = await Subscriber.start("mod", RFC4575)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            assert (await sub.subscribe(running.sip_uri(conf))).status == 200
            await eventually(lambda: len(sub.notifies) == 1, what="the first NOTIFY")
            first_at = asyncio.get_running_loop().time()
            for subject in ("one", "two", "three"):
                await running.ccmp.set_subject(conf, subject)
            await asyncio.sleep(0.3)
            assert len(sub.notifies) == 1  # held back: the interval has not passed
            await eventually(
                lambda: len(sub.notifies) == 2, timeout=interval + 2, what="the paced NOTIFY"
            )
            assert asyncio.get_running_loop().time() - first_at >= interval * 0.9
            assert sub.version == 2 and b'state="partial"' in sub.notifies[1].body
            assert facts(sub.state())["subject"] == "three"
            await asyncio.sleep(interval + 0.3)
            assert len(sub.notifies) == 2  # nothing left to send
            assert not sub.problems and not sub.invalid
        finally:
            await sub.close()


async def test_subscriptions_refused_when_the_conference_says_so(tmp_path: Path) -> None:
    """RFC 6501 s4.4.1: with <allow-conference-event-subscription> false a SUBSCRIBE is
    rejected (403), even a moderator's; set back to true over CCMP, it is accepted."""
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", RFC4575)
        try:
            conf = await new_conference(running.ccmp, sub.aor)
            for allowed, status in (("false", 403), ("true", 200)):
                await running.ccmp.update(
                    conf,
                    el(
                        "confInfo",
                        el(
                            "ci:conference-state",
                            el("xcon:allow-conference-event-subscription", text=allowed),
                        ),
                        entity=conf,
                    ),
                )
                assert (await sub.subscribe(running.sip_uri(conf))).status == status
            # Under a loaded machine the first NOTIFY may take a while; what matters is that
            # the accepted subscription is served, starting with an active full state.
            await eventually(
                lambda: len(sub.notifies) >= 1, timeout=10.0, what="the NOTIFY once allowed"
            )
            first = sub.notifies[0]
            assert first.state.startswith("active"), first.state
            assert b'state="full"' in first.body
        finally:
            await sub.close()


async def test_the_end_of_an_occurrence_terminates_with_deactivated(tmp_path: Path) -> None:
    """A weekly conference whose occurrence ends in a few seconds: the focus's own
    schedule clock makes it a reservation again and the subscription ends with
    ``terminated;reason=deactivated`` (RFC 6665 s4.2.2: subscribe again at once)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    ical = (
        "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//t//EN",
                "BEGIN:VEVENT",
                "UID:u",
                f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}",
                f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
                "DURATION:PT13S",
                "RRULE:FREQ=WEEKLY;COUNT=2",
                "END:VEVENT",
                "END:VCALENDAR",
            ]
        )
        + "\r\n"
    )
    async with running_focus(tmp_path) as running:
        sub = await Subscriber.start("mod", RFC4575)
        try:
            conf = await running.ccmp.create(
                el(
                    "confInfo",
                    el(
                        "ci:conference-description",
                        el("ci:display-text", text="Weekly"),
                        el("xcon:conference-time", el("xcon:entry", el("xcon:base", text=ical))),
                    ),
                    entity=f"xcon:AUTO_GENERATE_1@{DOMAIN}",
                )
            )
            assert (await sub.subscribe(running.sip_uri(conf))).status == 200
            await eventually(lambda: len(sub.notifies) >= 1, what="the first NOTIFY")
            assert sub.info is not None and sub.info.conference_state is not None
            assert sub.info.conference_state.active is True
            await eventually(
                lambda: sub.notifies[-1].state.startswith("terminated"),
                timeout=15,
                what="the end of the occurrence",
            )
            assert sub.notifies[-1].state.replace(" ", "") == "terminated;reason=deactivated"
            assert not running.focus.focus.events.subs
            assert not sub.problems and not sub.invalid
        finally:
            await sub.close()
