"""The privacy policy: what each role sees (RFC 5239 s8.2, RFC 4575 s8.2, RFC 6501 s4.6.5.1)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from focus.eventpkg.bodies import rfc4575_full, xcon_full
from focus.eventpkg.policy import may_subscribe, view_for
from focus.xcon.model import Anonymity, ConferenceInfo, Role, SidebarsByVal, User, effective_role
from tests.focus.eventpkg.helpers import (
    ALICE,
    BOB,
    CAROL,
    RFC4575_XSD,
    RFC6501_RNG,
    standard,
    user,
    valid,
    with_users,
)


def carol_with(level: Anonymity | str) -> User:
    carol = standard().user(CAROL)
    assert carol is not None
    return replace(carol, provide_anonymity=level)


def users_of(view: ConferenceInfo) -> list[User]:
    assert view.users is not None
    return list(view.users.users)


def passwords(view: ConferenceInfo) -> tuple[str, ...]:
    desc = view.conference_description
    assert desc is not None and desc.conf_uris is not None
    return tuple(p for e in desc.conf_uris.entries for p in e.conference_passwords)


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.MODERATOR])
def test_privileged_roles_see_passwords_and_lists(role: Role) -> None:
    view = view_for(role, ALICE, standard())
    assert passwords(view) == ("s3cret",)
    assert view.users is not None
    assert view.users.allowed_users_list is not None
    assert view.users.deny_users_list is not None


@pytest.mark.parametrize("role", [Role.PARTICIPANT, Role.OBSERVER, Role.USER, Role.NONE, "guest"])
def test_others_see_no_passwords_nor_lists(role: Role | str) -> None:
    view = view_for(role, BOB, standard())
    assert passwords(view) == ()
    assert view.users is not None
    assert view.users.allowed_users_list is None and view.users.deny_users_list is None
    # the rest of the conference is intact
    assert view.users.join_handling == standard().users.join_handling  # type: ignore[union-attr]
    assert view.conference_state == standard().conference_state
    for body, schema in ((rfc4575_full(view, 1), RFC4575_XSD), (xcon_full(view), RFC6501_RNG)):
        ok, log = valid(schema, body)
        assert ok, log
        assert b"s3cret" not in body and b"mallory" not in body


def test_private_user_is_anonymous_to_participants_and_moderators() -> None:
    real = standard().user(CAROL)
    assert real is not None
    for role in (Role.PARTICIPANT, Role.MODERATOR):
        alice, bob, carol = users_of(view_for(role, BOB, standard()))
        assert (alice.entity, bob.entity) == (ALICE, BOB)
        assert carol.entity is not None and carol.entity.endswith("@anonymous.invalid")
        assert carol.display_text is None and carol.associated_aors is None
        assert carol.provide_anonymity is None
        (ep,) = carol.endpoints
        assert ep.entity is not None and ep.entity.endswith("@anonymous.invalid")
        assert ep.call_info is None and ep.joining_info is None
        assert ep.status == real.endpoints[0].status
        assert ep.media == tuple(replace(m, display_text=None) for m in real.endpoints[0].media)
        body = xcon_full(view_for(role, BOB, standard()))
        assert b"carol" not in body.lower()


def test_private_user_is_visible_to_administrators_and_itself() -> None:
    assert users_of(view_for(Role.ADMINISTRATOR, ALICE, standard()))[2] == standard().user(CAROL)
    assert users_of(view_for(Role.PARTICIPANT, CAROL, standard()))[2] == standard().user(CAROL)


def test_pseudonyms_are_stable_unique_and_keyed() -> None:
    two = with_users(
        standard(),
        *users_of(standard()),
        user("xcon-userid:dan@example.com", "Dan", n=5, provide_anonymity=Anonymity.PRIVATE),
    )
    first = [u.entity for u in users_of(view_for(Role.PARTICIPANT, BOB, two))]
    again = [u.entity for u in users_of(view_for(Role.PARTICIPANT, BOB, two))]
    assert first == again
    assert len(set(first)) == len(first)
    other_key = [
        u.entity for u in users_of(view_for(Role.PARTICIPANT, BOB, two, pseudonym_key=b"k"))
    ]
    assert other_key[2:] != first[2:] and other_key[:2] == first[:2]


def test_semi_private_is_anonymous_only_to_unprivileged() -> None:
    conf = with_users(
        standard(),
        *users_of(standard())[:2],
        carol_with(Anonymity.SEMI_PRIVATE),
    )
    assert users_of(view_for(Role.MODERATOR, ALICE, conf))[2].entity == CAROL
    assert users_of(view_for(Role.OBSERVER, None, conf))[2].entity != CAROL


def test_hidden_user_is_left_out_for_unprivileged() -> None:
    carol = carol_with(Anonymity.HIDDEN)
    conf = with_users(standard(), *users_of(standard())[:2], carol)
    assert [u.entity for u in users_of(view_for(Role.PARTICIPANT, BOB, conf))] == [ALICE, BOB]
    assert len(users_of(view_for(Role.MODERATOR, ALICE, conf))) == 3
    assert len(users_of(view_for(Role.PARTICIPANT, CAROL, conf))) == 3


def test_unknown_anonymity_fails_closed() -> None:
    carol = carol_with("very-private")
    conf = with_users(standard(), *users_of(standard())[:2], carol)
    assert users_of(view_for(Role.MODERATOR, ALICE, conf))[2].entity != CAROL


def test_sidebars_are_filtered_too() -> None:
    side = replace(standard(), entity="xcon:side@example.com")
    conf = replace(standard(), sidebars_by_val=SidebarsByVal(entries=(side,)))
    view = view_for(Role.PARTICIPANT, BOB, conf)
    assert view.sidebars_by_val is not None
    (seen,) = view.sidebars_by_val.entries
    assert passwords(seen) == ()
    assert users_of(seen)[2].entity != CAROL


def test_view_is_the_same_object_when_nothing_is_hidden() -> None:
    plain = ConferenceInfo(entity="xcon:plain@example.com")
    assert view_for(Role.PARTICIPANT, None, plain) is plain


def test_effective_role_picks_the_most_privileged() -> None:
    # The one effective_role (focus.xcon.model), as the event package uses it.
    assert effective_role([Role.PARTICIPANT, Role.MODERATOR]) is Role.MODERATOR
    assert effective_role(["observer"]) is Role.OBSERVER
    assert effective_role(None) is Role.NONE
    assert effective_role(["janitor"]) is Role.NONE  # an extension role grants nothing
    assert effective_role([Role.OBSERVER, Role.ADMINISTRATOR]) is Role.ADMINISTRATOR


def test_roles_as_strings_are_understood() -> None:
    assert passwords(view_for("moderator", ALICE, standard())) == ("s3cret",)
    assert passwords(view_for(Role.PARTICIPANT, BOB, standard())) == ()


def test_who_may_subscribe() -> None:
    from focus.xcon.model import ConferenceState, UserAdmissionPolicy

    conf = standard()
    assert may_subscribe(Role.PARTICIPANT, BOB, conf)  # a user of the conference
    assert may_subscribe(Role.MODERATOR, None, conf)
    assert may_subscribe(Role.USER, "sip:eve@example.com", conf)  # on the allowed list
    assert not may_subscribe(Role.USER, "xcon-userid:zed@example.com", conf)
    assert not may_subscribe(Role.NONE, None, conf)
    assert conf.users is not None
    open_conf = replace(
        conf, users=replace(conf.users, user_admission_policy=UserAdmissionPolicy.ANONYMOUS)
    )
    assert may_subscribe(Role.NONE, None, open_conf)
    # RFC 6501 s4.4.1: false means nobody, moderators included
    closed = replace(
        conf, conference_state=ConferenceState(allow_conference_event_subscription=False)
    )
    assert not may_subscribe(Role.MODERATOR, ALICE, closed)
    assert not may_subscribe(Role.PARTICIPANT, BOB, closed)
