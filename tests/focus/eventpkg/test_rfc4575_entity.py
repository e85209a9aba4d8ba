"""RFC 4575 s5.1: <conference-info entity> is the conference URI a subscriber subscribed to
(the SIP URI), while RFC 6501/6502 documents name the conference by its XCON-URI."""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from focus.eventpkg.bodies import (
    CONFERENCE_INFO,
    XCON_CONFERENCE_INFO,
    XCON_CONFERENCE_INFO_DIFF,
    Outcome,
    apply_rfc4575,
    participation_uri,
    rfc4575_full,
    rfc4575_partial,
    rfc4575_view,
    xcon_full,
)
from focus.eventpkg.planner import NotifyPlanner, PlannerConfig, SendNotify, TerminationReason
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    SidebarsByVal,
    State,
    UriEntry,
    Uris,
)
from tests.focus.eventpkg.helpers import CONF, RFC4575_XSD, standard, user, valid, with_users

SIP = "sip:conf42@example.com"  # the participation URI of helpers.conference()
XCON_ACCEPT = [f"{XCON_CONFERENCE_INFO}, {XCON_CONFERENCE_INFO_DIFF}"]


def entity_of(body: bytes) -> str | None:
    return etree.fromstring(body).get("entity")


def drain(planner: NotifyPlanner) -> list[SendNotify]:
    events = []
    while (event := planner.next_event()) is not None:
        events.append(event)
    return events


def sidebar(name: str, *, sip: str | None) -> ConferenceInfo:
    uris = Uris(entries=(UriEntry(uri=sip, purpose="participation"),)) if sip else None
    return ConferenceInfo(
        entity=f"xcon:{name}@example.com",
        conference_description=ConferenceDescription(display_text=name, conf_uris=uris),
    )


def test_rfc4575_s5_1_entity_is_the_conference_sip_uri() -> None:
    # bodies: the RFC 4575 view names the conference as it was subscribed to
    assert participation_uri(standard()) == SIP
    view = rfc4575_view(standard(), entity=SIP)
    body = rfc4575_full(view, 1)
    ok, log = valid(RFC4575_XSD, body)
    assert ok, log
    assert entity_of(body) == SIP
    zoe = user("xcon-userid:zoe@example.com", "Zoe")
    new = rfc4575_view(with_users(standard(), *standard().users.users, zoe), entity=SIP)  # type: ignore[union-attr]
    partial = rfc4575_partial(view, new, 2)
    assert partial is not None and entity_of(partial) == SIP
    # the subscriber's s4.6 procedure takes the partial onto the full document
    held = parse_conference_info(body)
    applied = apply_rfc4575(held, 1, parse_conference_info(partial))
    assert applied.outcome is Outcome.UPDATED
    assert applied.info is not None and applied.info.entity == SIP
    # the XCON format keeps the XCON-URI (RFC 6501 s3.3)
    assert entity_of(xcon_full(standard())) == CONF
    # and without an entity the view keeps the object's names
    assert rfc4575_view(standard()).entity == CONF


def test_rfc4575_s5_1_the_planner_writes_the_subscribed_uri_in_every_rfc4575_body() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    first = planner.add_subscriber("legacy", CONF, standard(), 0.0, entity=SIP)
    xcon = planner.add_subscriber("xcon", CONF, standard(), 0.0, accept=XCON_ACCEPT, entity=SIP)
    assert first.content_type == CONFERENCE_INFO and entity_of(first.body) == SIP
    assert xcon.content_type == XCON_CONFERENCE_INFO and entity_of(xcon.body) == CONF
    planner.notify_completed("legacy", True, 0.0)
    planner.notify_completed("xcon", True, 0.0)
    changed = with_users(standard(), *standard().users.users[:1])  # type: ignore[union-attr]
    planner.conference_changed(CONF, standard(), changed, 1.0)
    events = {e.sub_id: e for e in drain(planner)}
    assert etree.fromstring(events["legacy"].body).get("state") == "partial"
    assert entity_of(events["legacy"].body) == SIP
    assert events["xcon"].content_type == XCON_CONFERENCE_INFO_DIFF
    assert entity_of(events["xcon"].body) == CONF  # RFC 6502 s5.3: the XCON-URI
    # the final NOTIFY of a deleted conference names it the same way (RFC 4575 s4.6)
    planner.conference_changed(CONF, changed, None, 2.0)
    final = {e.sub_id: e for e in drain(planner)}["legacy"]
    assert final.reason is TerminationReason.NORESOURCE
    deleted = parse_conference_info(final.body)
    assert (deleted.entity, deleted.state) == (SIP, State.DELETED)


def test_rfc4575_s5_1_a_sidebar_is_named_by_its_own_sip_uri() -> None:
    # A subscription to a sidebar names the sidebar; in its parent's document the
    # sidebars-by-val entries are named by their SIP URIs too (RFC 4575 s5.9.2), an entry
    # that lists none keeps its name.
    side = replace(sidebar("side1", sip="sip:side1@example.com"), users=standard().users)
    plain = sidebar("side2", sip=None)
    parent = replace(standard(), sidebars_by_val=SidebarsByVal(entries=(side, plain)))
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    own = planner.add_subscriber("side", side.entity, side, 0.0, entity="sip:side1@example.com")
    assert entity_of(own.body) == "sip:side1@example.com"
    first = planner.add_subscriber("parent", CONF, parent, 0.0, entity=SIP)
    info = parse_conference_info(first.body)
    assert info.entity == SIP and info.sidebars_by_val is not None
    assert [e.entity for e in info.sidebars_by_val.entries] == [
        "sip:side1@example.com",
        "xcon:side2@example.com",
    ]
    ok, log = valid(RFC4575_XSD, first.body)
    assert ok, log


def test_participation_uri_prefers_the_dialled_user_part() -> None:
    listed = Uris(
        entries=(
            UriEntry(uri="tel:+15551234", purpose="participation"),
            UriEntry(uri="sip:lobby@example.com", purpose="streaming"),
            UriEntry(uri="sip:room-7@example.com", purpose="participation"),
            UriEntry(uri="SIPS:conf7@example.com", purpose="Participation"),
        )
    )
    info = ConferenceInfo(
        entity="xcon:conf7@example.com",
        conference_description=ConferenceDescription(conf_uris=listed),
    )
    assert participation_uri(info) == "sip:room-7@example.com"
    assert participation_uri(info, "conf7") == "SIPS:conf7@example.com"
    assert participation_uri(info, "nobody") == "sip:room-7@example.com"
    assert participation_uri(ConferenceInfo(entity="xcon:bare@example.com")) is None
