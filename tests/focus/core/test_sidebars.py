"""Sidebars by value and by reference (RFC 6503 s5.3.7-5.3.10, RFC 5239 s9.4-9.5)."""

from __future__ import annotations

import pytest

from focus.core import commands as cmd
from focus.core.changes import ConferenceCreated, ConferenceDeleted, ConferenceUpdated, UserRemoved
from focus.core.errors import CoreError, ErrorKind
from focus.core.state import ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.model import ConferenceDescription, ConferenceInfo, State, User, Users
from tests.focus.core.conftest import ALICE, BOB, CAROL, EVE


def kind(exc: pytest.ExceptionInfo[CoreError]) -> ErrorKind:
    return exc.value.kind


@pytest.fixture
def conf(store: ConferenceStore) -> str:
    uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    for actor in (ALICE, BOB, CAROL):
        store.apply(cmd.AddUser(actor=actor, uri=uri))
    return uri


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
    # a stranger cannot be put into a sidebar
    stranger = ConferenceInfo(
        entity=sidebar, users=Users(users=(User(entity="xcon-userid:eve@example.com"),))
    )
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref, patch=stranger))
    assert kind(exc) is ErrorKind.USER_NOT_FOUND
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AddUser(actor=EVE, uri=sidebar))
    assert kind(exc) is ErrorKind.USER_NOT_FOUND
    # the parent cannot go while the sidebar depends on it
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.DeleteConference(actor=ALICE, uri=conf))
    assert kind(exc) is ErrorKind.DELETE_PARENT_FAILED
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.DeleteSidebar(actor=BOB, uri=sidebar, by_ref=by_ref))
    assert kind(exc) is ErrorKind.FORBIDDEN
    changes = store.apply(cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref))
    assert [type(c) for c in changes] == [ConferenceDeleted, ConferenceUpdated]
    parent = store.get_sidebars(ALICE, conf)
    assert parent.info.sidebars_by_ref is None and parent.info.sidebars_by_val is None
    store.apply(cmd.DeleteConference(actor=ALICE, uri=conf))


def test_sidebar_from_info_only_parent_users(store: ConferenceStore, conf: str) -> None:
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
    bad = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(users=(User(entity="xcon-userid:outsider@example.com"),)),
    )
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True, info=bad))
    assert kind(exc) is ErrorKind.USER_NOT_FOUND


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
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.CreateSidebar(actor=BOB, parent=conf, by_ref=True))
    assert kind(exc) is ErrorKind.FORBIDDEN
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.CreateSidebar(actor=ALICE, parent="xcon:none@example.com", by_ref=True))
    assert kind(exc) is ErrorKind.NOT_FOUND
    no_sidebars = ConferenceInfo(
        entity=conf, conference_description=ConferenceDescription(allow_sidebars=False)
    )
    store.apply(cmd.UpdateConference(actor=ALICE, uri=conf, patch=no_sidebars))
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))
    assert kind(exc) is ErrorKind.OPERATION_NOT_ALLOWED


def test_sidebar_enforced_elements(store: ConferenceStore, conf: str) -> None:
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    patch = ConferenceInfo(
        entity=sidebar, conference_description=ConferenceDescription(maximum_user_count=3)
    )
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=True, patch=patch))
    assert kind(exc) is ErrorKind.PARENT_ENFORCED


def test_parent_moderator_moderates_sidebar(store: ConferenceStore, conf: str) -> None:
    # Bob created... no: Alice owns conf; an admin-made sidebar is still Alice's to manage
    from tests.focus.core.conftest import ADMIN

    sidebar = store.apply(cmd.CreateSidebar(actor=ADMIN, parent=conf, by_ref=False))[0].uri
    store.apply(cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=False))


def test_user_operations_inside_a_sidebar(store: ConferenceStore, conf: str) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(users=(User(entity=ALICE.user_id),)),
    )
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True, info=info))[
        0
    ].uri
    store.apply(cmd.AddUser(actor=BOB, uri=sidebar))  # Bob is in the parent: admitted
    store.apply(cmd.UpdateUser(actor=BOB, uri=sidebar, user=User(display_text="B")))
    assert store.get_user(BOB, sidebar).display_text == "B"
    users = store.get_users(CAROL, sidebar).info.users
    assert users is not None and [u.entity for u in users.users] == [ALICE.user_id, BOB.user_id]
    store.apply(cmd.RemoveUser(actor=BOB, uri=sidebar))
    assert store.get(conf) is not None
    parent = store.get(conf)
    assert parent is not None and parent.info.user(BOB.user_id or "") is not None
