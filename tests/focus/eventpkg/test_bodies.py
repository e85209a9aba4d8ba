"""RFC 4575 full and partial documents, the s4.6 procedure, full XCON documents."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from lxml import etree

from focus.eventpkg.bodies import (
    Outcome,
    apply_rfc4575,
    rfc4575_full,
    rfc4575_partial,
    rfc4575_partial_info,
    rfc4575_view,
    xcon_full,
)
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import (
    CI_NS,
    XCON_NS,
    ConferenceInfo,
    ConferenceState,
    EndpointStatus,
    Media,
    MediaStatus,
    SidebarsByVal,
    State,
    UriEntry,
    Uris,
)
from tests.focus.eventpkg.helpers import (
    BOB,
    CAROL,
    DAVE,
    RFC4575_XSD,
    RFC6501_RNG,
    VECTORS,
    endpoint,
    standard,
    user,
    valid,
    with_users,
)


def namespaces(data: bytes) -> set[str]:
    return {etree.QName(el).namespace or "" for el in etree.fromstring(data).iter()}


def step(old: ConferenceInfo, new: ConferenceInfo, version: int = 2) -> ConferenceInfo:
    """Send the partial for old -> new and apply it on the subscriber side."""
    body = rfc4575_partial(old, new, version)
    assert body is not None
    ok, log = valid(RFC4575_XSD, body)
    assert ok, log
    result = apply_rfc4575(rfc4575_view(old), version - 1, parse_conference_info(body))
    assert result.outcome in (Outcome.UPDATED, Outcome.REPLACED)
    assert result.version == version
    assert result.info is not None
    return result.info


# --------------------------------------------------------------------------- full state


def test_full_document_is_rfc4575_valid_and_carries_state_and_version() -> None:
    # as the focus sends it: named by its SIP URI (RFC 4575 s5.1), not its XCON-URI
    body = rfc4575_full(rfc4575_view(standard(), entity="sip:conf42@example.com"), 7)
    ok, log = valid(RFC4575_XSD, body)
    assert ok, log
    root = etree.fromstring(body)
    assert root.get("state") == "full"
    assert root.get("version") == "7"
    assert root.get("entity") == "sip:conf42@example.com"


def test_full_document_maps_xcon_only_elements_away() -> None:
    body = rfc4575_full(standard(), 1)
    assert namespaces(body) == {CI_NS}
    # what RFC 4575 defines survives
    info = parse_conference_info(body)
    assert info.users is not None and len(info.users.users) == 3
    assert info.conference_state == ConferenceState(user_count=3, active=True, locked=False)
    assert info.floor_information is None
    assert info.users.allowed_users_list is None
    # and the full XCON document keeps them
    assert XCON_NS in namespaces(xcon_full(standard()))


def test_rfc6501_example_becomes_a_valid_rfc4575_document() -> None:
    # RFC 6501 s7 puts <xcon:floor> straight into <endpoint> (kept as an extension by the
    # codec): the legacy view must still be schema-valid, with no XCON element left.
    example = parse_conference_info(
        (VECTORS.parent / "xcon" / "rfc6501-s7-example.xml").read_bytes()
    )
    body = rfc4575_full(example, 1)
    ok, log = valid(RFC4575_XSD, body)
    assert ok, log
    assert namespaces(body) == {CI_NS}


def test_full_xcon_document_is_rfc6501_valid_without_state_or_version() -> None:
    conf = replace(standard(), state=State.PARTIAL, version=9)
    body = xcon_full(conf)
    ok, log = valid(RFC6501_RNG, body)
    assert ok, log
    root = etree.fromstring(body)
    assert root.get("version") is None and root.get("state") is None
    assert parse_conference_info(body) == standard()


def test_version_must_fit_unsigned_int() -> None:
    with pytest.raises(ValueError, match="unsignedInt"):
        rfc4575_full(standard(), 2**32)
    with pytest.raises(ValueError, match="unsignedInt"):
        rfc4575_partial(standard(), standard(), -1)


# --------------------------------------------------------------------------- partial state


def test_nothing_changed_means_no_document() -> None:
    assert rfc4575_partial(standard(), standard(), 2) is None
    # a change only in XCON elements is invisible to a legacy subscriber
    xcon_only = replace(standard(), floor_information=None)
    assert rfc4575_partial(standard(), xcon_only, 2) is None


def test_user_joining_is_a_full_user_in_a_partial_users() -> None:
    old = standard()
    new = with_users(old, *old.users.users, user(DAVE, "Dave", n=4))  # type: ignore[union-attr]
    info = rfc4575_partial_info(old, new)
    assert info is not None
    assert info.state is State.PARTIAL
    assert info.users is not None and info.users.state is State.PARTIAL
    (joined,) = info.users.users
    assert joined.entity == DAVE and joined.state is State.FULL
    # unchanged top-level elements are not repeated
    assert info.conference_description is None and info.conference_state is None
    assert step(old, new) == rfc4575_view(new)


def test_user_leaving_is_a_deleted_user() -> None:
    old = standard()
    new = with_users(old, *old.users.users[:2])  # type: ignore[union-attr]
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.users is not None
    (left,) = info.users.users
    assert left.entity == CAROL and left.state is State.DELETED
    assert left.endpoints == () and left.display_text is None
    assert step(old, new) == rfc4575_view(new)


def test_mute_is_a_partial_endpoint_with_the_whole_media() -> None:
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    muted = replace(bob, endpoints=(endpoint("sip:bob@pc2.example.com", muted=True, n=2),))
    new = with_users(old, alice, muted, carol)
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.users is not None
    (changed,) = info.users.users
    assert changed.entity == BOB and changed.state is State.PARTIAL
    assert changed.display_text is None  # unchanged atomic elements stay out
    (ep,) = changed.endpoints
    assert ep.state is State.PARTIAL and ep.status is None
    (media,) = ep.media
    assert media.status is MediaStatus.RECVONLY and media.type == "audio"
    assert step(old, new) == rfc4575_view(new)


def test_status_change_sends_only_the_status() -> None:
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    (ep,) = bob.endpoints
    gone = replace(bob, endpoints=(replace(ep, status=EndpointStatus.ON_HOLD),))
    new = with_users(old, alice, gone, carol)
    body = rfc4575_partial(old, new, 2)
    assert body is not None
    assert b"<status>on-hold</status>" in body
    assert b"display-text" not in body and b"media" not in body
    assert step(old, new) == rfc4575_view(new)


def test_atomic_element_change_is_sent_whole() -> None:
    old = standard()
    new = replace(old, conference_state=ConferenceState(user_count=4, active=True, locked=True))
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.state is State.PARTIAL
    assert info.conference_state == ConferenceState(user_count=4, active=True, locked=True)
    assert info.users is None
    assert step(old, new) == rfc4575_view(new)


def test_vanished_atomic_element_needs_full_state() -> None:
    # s4.6 can not delete <conference-state>: the document must be full
    old = standard()
    new = replace(old, conference_state=None)
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.state is State.FULL
    assert step(old, new) == rfc4575_view(new)


def test_vanished_user_field_sends_that_user_full() -> None:
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    new = with_users(old, alice, replace(bob, display_text=None), carol)
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.state is State.PARTIAL
    (sent,) = info.users.users  # type: ignore[union-attr]
    assert sent.state is State.FULL and sent.endpoints == bob.endpoints
    assert step(old, new) == rfc4575_view(new)


def test_dropped_media_sends_the_endpoint_full() -> None:
    # <media> has no 'state', so a stream that goes away needs its endpoint whole
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    (ep,) = bob.endpoints
    video = Media(id="9", type="video", status=MediaStatus.SENDRECV)
    two = with_users(
        old, alice, replace(bob, endpoints=(replace(ep, media=(*ep.media, video)),)), carol
    )
    assert step(old, two) == rfc4575_view(two)
    info = rfc4575_partial_info(two, old)
    assert info is not None
    (sent,) = info.users.users  # type: ignore[union-attr]
    assert sent.state is State.PARTIAL and sent.endpoints[0].state is State.FULL
    assert step(two, old) == rfc4575_view(old)


def test_reordered_users_are_sent_as_full_users() -> None:
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    new = with_users(old, bob, alice, carol)
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.users is not None
    assert info.users.state is State.FULL
    assert step(old, new) == rfc4575_view(new)


def test_users_element_removed_is_deleted_state() -> None:
    old = standard()
    new = replace(old, users=None)
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.users is not None
    assert info.users.state is State.DELETED and info.users.users == ()
    assert step(old, new) == rfc4575_view(new)


def test_sidebars_partial_and_apply() -> None:
    side = ConferenceInfo(entity="xcon:side1@example.com", users=standard().users)
    old = replace(
        standard(),
        sidebars_by_ref=Uris(entries=(UriEntry(uri="xcon:side2@example.com"),)),
        sidebars_by_val=SidebarsByVal(entries=(side,)),
    )
    new = replace(
        old,
        sidebars_by_ref=Uris(entries=(UriEntry(uri="xcon:side2@example.com", display_text="ops"),)),
        sidebars_by_val=SidebarsByVal(
            entries=(
                replace(side, users=None),
                ConferenceInfo(entity="xcon:side3@example.com"),
            )
        ),
    )
    info = rfc4575_partial_info(old, new)
    assert info is not None and info.sidebars_by_val is not None
    assert info.sidebars_by_val.state is State.PARTIAL
    assert [e.state for e in info.sidebars_by_val.entries] == [State.PARTIAL, State.FULL]
    assert step(old, new) == rfc4575_view(new)
    assert step(new, old) == rfc4575_view(old)


def test_other_conference_is_full_state() -> None:
    info = rfc4575_partial_info(standard(), replace(standard(), entity="xcon:other@example.com"))
    assert info is not None and info.state is State.FULL


# --------------------------------------------------------------------------- s4.6 outcomes


def test_stale_and_gap_and_deleted_outcomes() -> None:
    local = rfc4575_view(standard())
    partial = replace(ConferenceInfo(entity=local.entity), state=State.PARTIAL)
    assert apply_rfc4575(local, 5, replace(partial, version=5)).outcome is Outcome.STALE
    assert apply_rfc4575(local, 5, replace(partial, version=4)).outcome is Outcome.STALE
    gap = apply_rfc4575(local, 5, replace(partial, version=7))
    assert gap.outcome is Outcome.REFRESH and gap.info == local and gap.version == 5
    # a partial before any full state can not be used either
    assert apply_rfc4575(None, None, replace(partial, version=1)).outcome is Outcome.REFRESH
    gone = apply_rfc4575(local, 5, replace(partial, state=State.DELETED, version=6))
    assert gone.outcome is Outcome.DELETED and gone.info is None
    full = apply_rfc4575(local, 5, replace(local, state=State.FULL, version=9))
    assert full.outcome is Outcome.REPLACED and full.version == 9 and full.info == local
    with pytest.raises(ValueError, match="version"):
        apply_rfc4575(local, 5, partial)


def test_a_sequence_of_partials_tracks_the_conference() -> None:
    states = [standard()]
    alice, bob, _carol = standard().users.users  # type: ignore[union-attr]
    states.append(with_users(states[-1], alice, bob))
    states.append(with_users(states[-1], alice, bob, user(DAVE, "Dave", n=4)))
    states.append(replace(states[-1], conference_state=ConferenceState(user_count=3)))
    states.append(with_users(states[-1], alice, replace(bob, roles=None)))
    local = apply_rfc4575(None, None, parse_conference_info(rfc4575_full(states[0], 1)))
    assert local.outcome is Outcome.REPLACED
    for version, (old, new) in enumerate(itertools.pairwise(states), start=2):
        body = rfc4575_partial(old, new, version)
        assert body is not None
        local = apply_rfc4575(local.info, local.version, parse_conference_info(body))
        assert local.info == rfc4575_view(new)
    assert local.version == len(states)
