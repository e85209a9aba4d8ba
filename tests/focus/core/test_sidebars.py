"""Sidebars by value and by reference (RFC 6503 s5.3.7-5.3.10, RFC 5239 s9.4-9.5)."""

from __future__ import annotations

import pytest

from focus.core import commands as cmd
from focus.core.changes import (
    ConferenceCreated,
    ConferenceDeleted,
    ConferenceUpdated,
    UserAdded,
    UserRemoved,
)
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.state import ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    AllowedUsersList,
    ConferenceDescription,
    ConferenceInfo,
    Endpoint,
    Role,
    State,
    Target,
    User,
    Users,
)
from tests.focus.core.conftest import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    EVE,
    kind,
    refused,
    three_party_conference,
)


@pytest.fixture
def conf(store: ConferenceStore) -> str:
    return three_party_conference(store)


@pytest.mark.parametrize("by_ref", [False, True])
def test_sidebar_lifecycle(store: ConferenceStore, conf: str, by_ref: bool) -> None:
    parent_version = store.get(conf).version  # type: ignore[union-attr]
    changes = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=by_ref))
    assert [type(c) for c in changes] == [ConferenceCreated, ConferenceUpdated]
    sidebar = changes[0].uri
    assert changes[1].uri == conf and changes[1].version == parent_version + 1
    obj = store.get_sidebar(BOB, sidebar, by_ref=by_ref)
    assert obj.kind is (ObjectKind.SIDEBAR_BY_REF if by_ref else ObjectKind.SIDEBAR_BY_VAL)
    assert obj.parent == conf and obj.linked
    assert obj.info.conference_description is not None
    assert obj.info.conference_description.sidebar_parent == conf
    # cloned from the parent: same users
    assert {u.entity for u in obj.info.users.users} == {  # type: ignore[union-attr]
        ALICE.user_id,
        BOB.user_id,
        CAROL.user_id,
    }
    parent = store.get_sidebars(BOB, conf)
    if by_ref:
        assert parent.info.sidebars_by_ref is not None
        assert [e.uri for e in parent.info.sidebars_by_ref.entries] == [sidebar]
        assert parent.info.sidebars_by_val is None
    else:
        assert parent.info.sidebars_by_val is not None
        assert [e.entity for e in parent.info.sidebars_by_val.entries] == [sidebar]
    # the other kind's operations do not see it (RFC 6503: 404)
    with pytest.raises(CoreError) as exc:
        store.get_sidebar(BOB, sidebar, by_ref=not by_ref)
    assert kind(exc) is ErrorKind.NOT_FOUND
    with pytest.raises(CoreError) as exc:
        store.get_conference(ALICE, sidebar)
    assert kind(exc) is ErrorKind.NOT_FOUND
    # update: drop Carol from the sidebar (whisper to Bob)
    patch = ConferenceInfo(
        entity=sidebar,
        conference_description=ConferenceDescription(display_text="whisper"),
        users=Users(users=(User(entity=CAROL.user_id, state=State.DELETED),)),
    )
    changes = store.apply(
        cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref, patch=patch, expected_version=1)
    )
    assert UserRemoved in [type(c) for c in changes]
    assert conf in {c.uri for c in changes}  # the parent's list shows the new text/state
    parent = store.get_sidebars(ALICE, conf)
    if by_ref:
        assert parent.info.sidebars_by_ref is not None
        assert parent.info.sidebars_by_ref.entries[0].display_text == "whisper"
    else:
        assert parent.info.sidebars_by_val is not None
        embedded = parent.info.sidebars_by_val.entries[0]
        assert embedded.user(CAROL.user_id or "") is None
    # nobody adds herself to a sidebar that does not invite her (its parent's users
    # included: Carol was dropped); its moderator may put anyone in it (RFC 6504 s7.2)
    for uninvited in (EVE, CAROL):
        assert refused(store, cmd.AddUser(actor=uninvited, uri=sidebar)) is ErrorKind.FORBIDDEN
    outsider = ConferenceInfo(entity=sidebar, users=Users(users=(User(entity=EVE.user_id),)))
    store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref, patch=outsider))
    assert store.get_user(ALICE, sidebar, EVE.user_id).entity == EVE.user_id
    assert store.get_users(ALICE, conf).info.user(EVE.user_id or "") is None
    # the parent cannot go while the sidebar depends on it
    assert (
        refused(store, cmd.DeleteConference(actor=ALICE, uri=conf))
        is ErrorKind.DELETE_PARENT_FAILED
    )
    assert (
        refused(store, cmd.DeleteSidebar(actor=BOB, uri=sidebar, by_ref=by_ref))
        is ErrorKind.FORBIDDEN
    )
    changes = store.apply(cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref))
    assert [type(c) for c in changes] == [ConferenceDeleted, ConferenceUpdated]
    parent = store.get_sidebars(ALICE, conf)
    assert parent.info.sidebars_by_ref is None and parent.info.sidebars_by_val is None
    store.apply(cmd.DeleteConference(actor=ALICE, uri=conf))


def test_sidebar_from_info_has_its_own_users(store: ConferenceStore, conf: str) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(display_text="coaching"),
        users=Users(users=(User(entity=ALICE.user_id), User(entity=BOB.user_id))),
    )
    changes = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True, info=info))
    obj = store.get(changes[0].uri)
    assert obj is not None and obj.info.users is not None
    assert [u.entity for u in obj.info.users.users] == [ALICE.user_id, BOB.user_id]
    # the parent's enforced maximum-user-count is imposed on a sidebar built from info
    parent = store.get(conf)
    assert parent is not None and parent.info.conference_description is not None
    assert obj.info.conference_description is not None
    assert (
        obj.info.conference_description.maximum_user_count
        == parent.info.conference_description.maximum_user_count
    )
    # someone who is not in the parent (RFC 5239 s9.4.2's Fred) is the sidebar's only
    outsider = "xcon-userid:outsider@example.com"
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(users=(User(entity=outsider),)),
    )
    side = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True, info=info))[0]
    assert side.after is not None and side.after.info.user(outsider) is not None
    assert store.get_users(ALICE, conf).info.user(outsider) is None


def test_user_removed_from_parent_leaves_sidebars(store: ConferenceStore, conf: str) -> None:
    by_val = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=False))[0].uri
    by_ref = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    changes = store.apply(cmd.RemoveUser(actor=BOB, uri=conf))
    removed = {(c.uri, c.user) for c in changes if isinstance(c, UserRemoved)}
    assert removed == {(conf, BOB.user_id), (by_val, BOB.user_id), (by_ref, BOB.user_id)}
    for uri in (by_val, by_ref):
        obj = store.get(uri)
        assert obj is not None and obj.info.user(BOB.user_id or "") is None


def test_sidebar_permissions_and_limits(store: ConferenceStore, conf: str) -> None:
    assert (
        refused(store, cmd.CreateSidebar(actor=BOB, parent=conf, by_ref=True))
        is ErrorKind.FORBIDDEN
    )
    assert (
        refused(store, cmd.CreateSidebar(actor=ALICE, parent="xcon:none@example.com", by_ref=True))
        is ErrorKind.NOT_FOUND
    )
    no_sidebars = ConferenceInfo(
        entity=conf, conference_description=ConferenceDescription(allow_sidebars=False)
    )
    store.apply(cmd.UpdateConference(actor=ALICE, uri=conf, patch=no_sidebars))
    assert (
        refused(store, cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))
        is ErrorKind.OPERATION_NOT_ALLOWED
    )


def test_sidebar_enforced_elements(store: ConferenceStore, conf: str) -> None:
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    patch = ConferenceInfo(
        entity=sidebar, conference_description=ConferenceDescription(maximum_user_count=3)
    )
    assert (
        refused(store, cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=True, patch=patch))
        is ErrorKind.PARENT_ENFORCED
    )


def test_parent_moderator_moderates_sidebar(store: ConferenceStore, conf: str) -> None:
    # Alice owns conf; an admin-made sidebar is still Alice's to manage
    sidebar = store.apply(cmd.CreateSidebar(actor=ADMIN, parent=conf, by_ref=False))[0].uri
    store.apply(cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=False))


def test_user_operations_inside_a_sidebar(store: ConferenceStore, conf: str) -> None:
    invite = AllowedUsersList(targets=(Target(uri=BOB.user_id or "", method="dial-in"),))
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(users=(User(entity=ALICE.user_id),), allowed_users_list=invite),
    )
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True, info=info))[
        0
    ].uri
    store.apply(cmd.AddUser(actor=BOB, uri=sidebar))  # the sidebar invites Bob: admitted
    store.apply(cmd.UpdateUser(actor=BOB, uri=sidebar, user=User(display_text="B")))
    assert store.get_user(BOB, sidebar).display_text == "B"
    users = store.get_users(CAROL, sidebar).info.users
    assert users is not None and [u.entity for u in users.users] == [ALICE.user_id, BOB.user_id]
    store.apply(cmd.RemoveUser(actor=BOB, uri=sidebar))
    assert store.get(conf) is not None
    parent = store.get(conf)
    assert parent is not None and parent.info.user(BOB.user_id or "") is not None


def test_rfc6504_s7_2_an_external_sidebar_admits_a_party_not_in_the_parent(
    store: ConferenceStore, conf: str
) -> None:
    # Alice takes Bob into a sidebar with the customer Fred, who is in no roster of the
    # main conference (RFC 5239 s9.4.2, RFC 6504 s7.2).
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    fred = "sip:fred@example.com"
    patch = ConferenceInfo(
        entity=sidebar,
        users=Users(
            users=(
                User(entity=CAROL.user_id, state=State.DELETED),
                User(
                    entity="xcon-userid:AUTO_GENERATE_1@example.com",
                    endpoints=(Endpoint(entity=fred),),
                ),
            ),
            allowed_users_list=AllowedUsersList(targets=(Target(uri=fred, method="dial-out"),)),
        ),
    )
    store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=True, patch=patch))
    side = store.get_sidebar(ALICE, sidebar, by_ref=True)
    assert side.info.users is not None
    fred_user = next(
        u for u in side.info.users.users if u.endpoints and u.endpoints[0].entity == fred
    )
    assert fred_user.entity is not None and "AUTO_GENERATE" not in fred_user.entity
    parent = store.get_users(ALICE, conf).info
    assert parent.users is not None and parent.users.allowed_users_list is None
    assert {u.entity for u in parent.users.users} == {ALICE.user_id, BOB.user_id, CAROL.user_id}
    # the sidebar still never outlives its parent
    assert (
        refused(store, cmd.DeleteConference(actor=ALICE, uri=conf))
        is ErrorKind.DELETE_PARENT_FAILED
    )
    # a user removed from the parent leaves its sidebars; Fred, only in the sidebar, stays
    store.apply(cmd.RemoveUser(actor=ALICE, uri=conf, entity=BOB.user_id))
    side = store.get_sidebar(ALICE, sidebar, by_ref=True)
    assert side.info.user(BOB.user_id or "") is None
    assert side.info.user(fred_user.entity) is not None


def test_rfc6504_s7_4_a_supervisor_not_in_the_call_creates_a_coaching_sidebar(
    store: ConferenceStore,
) -> None:
    # Creating a sidebar is a moderator's operation on the parent (focus.core.policy);
    # Alice the supervisor is a moderator by her account, not by being in the call.
    supervisor = Actor("xcon-userid:supervisor@example.com", Role.MODERATOR)
    store.accounts.add("supervisor", Role.MODERATOR, "pw-supervisor")
    uri = store.apply(cmd.CreateConference(actor=ADMIN))[0].uri
    for agent_or_customer in (BOB, CAROL):
        store.apply(cmd.AddUser(actor=agent_or_customer, uri=uri))
    # the customer and outsiders without a moderator's standing may not
    for outsider in (CAROL, EVE, ALICE):
        assert (
            refused(store, cmd.CreateSidebar(actor=outsider, parent=uri, by_ref=True))
            is ErrorKind.FORBIDDEN
        )
    sidebar = store.apply(cmd.CreateSidebar(actor=supervisor, parent=uri, by_ref=True))[0].uri
    coaching = ConferenceInfo(
        entity=sidebar,
        users=Users(
            users=(
                User(entity=supervisor.user_id),
                User(entity=CAROL.user_id, state=State.DELETED),
            ),
            allowed_users_list=AllowedUsersList(
                targets=(
                    Target(uri=supervisor.user_id or "", method="dial-in"),
                    Target(uri=BOB.user_id or "", method="dial-out"),
                )
            ),
        ),
    )
    store.apply(cmd.UpdateSidebar(actor=supervisor, uri=sidebar, by_ref=True, patch=coaching))
    users = store.get_users(supervisor, sidebar).info.users
    assert users is not None
    assert {u.entity for u in users.users} == {supervisor.user_id, BOB.user_id}
    parent = store.get_users(supervisor, uri).info
    assert parent.user(supervisor.user_id or "") is None  # Carol does not see her
    # the sidebar is hers to run; the customer cannot walk into it
    assert refused(store, cmd.AddUser(actor=CAROL, uri=sidebar)) is ErrorKind.FORBIDDEN
    store.apply(cmd.DeleteSidebar(actor=supervisor, uri=sidebar, by_ref=True))


def test_rfc6503_s5_3_6_no_anonymous_entry_into_a_sidebar(
    store: ConferenceStore, conf: str
) -> None:
    # The default blueprint admits anonymous users and a cloned sidebar copies that
    # policy; a sidebar still admits by itself only whom it invites.
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    contact = "sip:walk-in@example.net"
    joiner = User(
        entity="xcon-userid:AUTO_GENERATE_1@example.com",
        endpoints=(Endpoint(entity=contact),),
    )
    assert (
        refused(store, cmd.AddUser(actor=Actor.unauthenticated(), uri=sidebar, user=joiner))
        is ErrorKind.FORBIDDEN
    )
    invite = ConferenceInfo(
        entity=sidebar,
        users=Users(
            allowed_users_list=AllowedUsersList(targets=(Target(uri=contact, method="dial-in"),))
        ),
    )
    store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=True, patch=invite))
    side = store.get(sidebar)
    assert side is not None and side.info.users is not None
    assert side.info.users.user_admission_policy == "anonymous"
    added = store.apply(cmd.AddUser(actor=Actor.unauthenticated(), uri=sidebar, user=joiner))
    assert isinstance(added[0], UserAdded) and added[0].uri == sidebar
