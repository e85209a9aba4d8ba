"""RFC 4575 s5.1 against the running focus: a stock RFC 4575 client matches NOTIFYs to its
conference by <conference-info entity>, so that is the conference URI it subscribed to, as
the focus advertises it (the profile's domain, even when dialled by IP address); the RFC
6501 format keeps the XCON-URI (RFC 6501 s3.3). A sidebar is named by its own SIP URI."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ccmp_server.messages import CcmpRequest, MessageType, Operation
from focus.core import conference_id
from focus.settings import SipProfile
from tests.focus.eventpkg.e2e.harness import (
    DOMAIN,
    RFC4575,
    XCON,
    Ccmp,
    Running,
    Subscriber,
    el,
    running_focus,
)
from tests.focus.eventpkg.e2e.test_subscriber import new_conference
from tests.waiting import eventually

PROFILE = SipProfile(notify_interval=0.0, domain="sip.example.net", conference_user="room-{id}")


def dialled(running: Running, xcon_uri: str) -> str:
    """The Request-URI a phone uses: the conference's user part at the focus's address."""
    user = PROFILE.conference_user_part(conference_id(xcon_uri))
    return f"sip:{user}@{running.host}:{running.port}"


async def moderator(ccmp: Ccmp, conf: str, aor: str) -> None:
    await ccmp.add_user(
        conf,
        el(
            "userInfo",
            el("ci:roles", el("ci:entry", text="moderator")),
            el("ci:endpoint", el("ci:joining-method", text="dialed-in"), entity=aor),
            entity=f"xcon-userid:AUTO_GENERATE_1@{DOMAIN}",
        ),
    )


def sidebars_of(sub: Subscriber) -> list[str | None]:
    """The entities of the sidebars-by-val entries in the subscriber's RFC 4575 copy."""
    by_val = sub.info.sidebars_by_val if sub.info is not None else None
    return [e.entity for e in by_val.entries] if by_val is not None else []


def entity_of(sub: Subscriber) -> str | None:
    return etree.fromstring(sub.notifies[0].body).get("entity")


async def first_notify(sub: Subscriber, uri: str) -> None:
    assert (await sub.subscribe(uri)).status == 200
    await eventually(lambda: len(sub.notifies) >= 1, what="the first NOTIFY")
    assert not sub.problems and not sub.invalid, (sub.problems, sub.invalid)


async def test_rfc4575_s5_1_entity_is_the_subscribed_conference_uri(tmp_path: Path) -> None:
    async with running_focus(tmp_path, PROFILE) as running:
        legacy = await Subscriber.start("mod", RFC4575)
        xcon = await Subscriber.start("mod2", XCON)
        side = await Subscriber.start("side", RFC4575)
        try:
            conf = await new_conference(running.ccmp, legacy.aor)
            await moderator(running.ccmp, conf, xcon.aor)
            await moderator(running.ccmp, conf, side.aor)
            sip = PROFILE.conference_uri(conference_id(conf))
            assert sip.startswith("sip:room-") and sip.endswith("@sip.example.net")
            await first_notify(legacy, dialled(running, conf))
            assert legacy.notifies[0].content_type == RFC4575
            assert b'state="full"' in legacy.notifies[0].body
            assert entity_of(legacy) == sip
            await first_notify(xcon, dialled(running, conf))
            assert xcon.notifies[0].content_type == XCON
            assert entity_of(xcon) == conf and conf.startswith("xcon:")
            # A sidebar (a copy of the parent, users included) is named by its own SIP
            # URI: in its own subscription, and in the parent's partial that lists it.
            made = await running.ccmp.ask(
                CcmpRequest(
                    MessageType.SIDEBAR_BY_VAL, operation=Operation.CREATE, conf_obj_id=conf
                )
            )
            sidebar = made.conf_obj_id
            assert sidebar is not None and sidebar != conf
            side_sip = PROFILE.conference_uri(conference_id(sidebar))
            await first_notify(side, dialled(running, sidebar))
            assert entity_of(side) == side_sip
            await eventually(lambda: sidebars_of(legacy) == [side_sip], what="the sidebar")
            assert b'state="partial"' in legacy.notifies[-1].body
            assert legacy.info is not None and legacy.info.entity == sip
            assert not legacy.problems and not legacy.invalid, (legacy.problems, legacy.invalid)
        finally:
            for sub in (legacy, xcon, side):
                await sub.close()
