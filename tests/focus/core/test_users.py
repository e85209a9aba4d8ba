"""Users of a conference: userRequest create/retrieve/update/delete and usersRequest."""

from __future__ import annotations

import pytest

from focus.core import commands as cmd
from focus.core.changes import ConferenceUpdated, UserAdded, UserRemoved, UserUpdated
from focus.core.errors import CoreError, ErrorKind
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceState,
    DenyUsersList,
    Endpoint,
    JoinHandling,
    Media,
    MediaStatus,
    Role,
    State,
    Target,
    User,
    Users,
)
from tests.focus.core.conftest import ADMIN, ALICE, BOB, CAROL, EVE, NOBODY, kind, refused


def new_conf(store: ConferenceStore, **kwargs: object) -> str:
    return store.apply(cmd.CreateConference(actor=ALICE, **kwargs))[0].uri  # type: ignore[arg-type]


def test_join_self(store: ConferenceStore) -> None:
    uri = new_conf(store)
    changes = store.apply(cmd.AddUser(actor=BOB, uri=uri))
    assert [type(c) for c in changes] == [UserAdded]
    added = changes[0]
    assert isinstance(added, UserAdded) and added.user == BOB.user_id and added.version == 2
    assert store.get_user(BOB, uri).entity == BOB.user_id
    obj = store.get(uri)
    assert obj is not None and obj.info.conference_state is not None
    assert obj.info.conference_state.user_count == 1
    assert refused(store, cmd.AddUser(actor=BOB, uri=uri)) is ErrorKind.USER_EXISTS


def test_anonymous_without_id_needs_user_info(store: ConferenceStore) -> None:
    uri = new_conf(store)
    assert refused(store, cmd.AddUser(actor=NOBODY, uri=uri)) is ErrorKind.BAD_REQUEST


def test_third_party_needs_moderator(store: ConferenceStore) -> None:
    uri = new_conf(store)
    assert (
        refused(store, cmd.AddUser(actor=BOB, uri=uri, user=User(entity=CAROL.user_id)))
        is ErrorKind.FORBIDDEN
    )
    store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=CAROL.user_id)))
    assert store.get_user(ALICE, uri, CAROL.user_id).entity == CAROL.user_id


def test_third_party_unknown_user_is_420(store: ConferenceStore) -> None:
    uri = new_conf(store)
    assert (
        refused(
            store,
            cmd.AddUser(actor=ALICE, uri=uri, user=User(entity="xcon-userid:ghost@example.com")),
        )
        is ErrorKind.USER_NOT_FOUND
    )


def test_auto_generated_user_and_recovery_by_endpoint(store: ConferenceStore) -> None:
    uri = new_conf(store)
    user = User(
        entity="xcon-userid:AUTO_GENERATE_1@example.com",
        endpoints=(Endpoint(entity="sip:dave@example.com"),),
    )
    changes = store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=user))
    added = changes[0]
    assert isinstance(added, UserAdded)
    assert "AUTO_GENERATE" not in added.user and added.user.endswith("@example.com")
    # the same signalling URI in another conference gets the same XCON-USERID back
    other = new_conf(store)
    again = store.apply(cmd.AddUser(actor=ALICE, uri=other, user=user))[0]
    assert isinstance(again, UserAdded) and again.user == added.user
    assert (
        refused(
            store,
            cmd.AddUser(
                actor=ALICE, uri=other, user=User(entity="xcon-userid:AUTO_GENERATE_1@other.org")
            ),
        )
        is ErrorKind.INVALID_DOMAIN
    )


def test_user_without_xcon_userid_enters_and_gets_one(store: ConferenceStore) -> None:
    from focus.core.policy import Actor
    from focus.xcon.model import Role

    anon = Actor(None, Role.PARTICIPANT)
    uri = new_conf(store)
    user = User(
        entity="xcon-userid:AUTO_GENERATE_1@example.com",
        endpoints=(Endpoint(entity="sip:GHIL345@example.com"),),
    )
    added = store.apply(cmd.AddUser(actor=anon, uri=uri, user=user))[0]
    assert isinstance(added, UserAdded) and added.user.startswith("xcon-userid:")
    # from now on the new XCON-USERID is a known confUserID (no 421)
    me = Actor(added.user, Role.PARTICIPANT)
    assert store.get_user(me, uri).entity == added.user
    stranger = Actor("xcon-userid:stranger@example.com", Role.PARTICIPANT)
    with pytest.raises(CoreError) as exc:
        store.get_user(stranger, uri)
    assert kind(exc) is ErrorKind.INVALID_CONF_USER_ID
    assert refused(store, cmd.AddUser(actor=stranger, uri=uri)) is ErrorKind.INVALID_CONF_USER_ID


def test_maximum_user_count(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(maximum_user_count=1),
    )
    uri = new_conf(store, info=info)
    store.apply(cmd.AddUser(actor=BOB, uri=uri))
    assert refused(store, cmd.AddUser(actor=CAROL, uri=uri)) is ErrorKind.RESOURCES_EXHAUSTED


def test_blocked_locked_and_denied(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(
            join_handling=JoinHandling.BLOCK,
            deny_users_list=DenyUsersList(
                targets=(Target(uri=CAROL.user_id or ""), Target(uri="sip:troll@example.com"))
            ),
        ),
    )
    uri = new_conf(store, info=info)
    assert refused(store, cmd.AddUser(actor=BOB, uri=uri)) is ErrorKind.FORBIDDEN
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=CAROL.user_id)))
    assert kind(exc) is ErrorKind.FORBIDDEN  # deny list binds moderators too
    troll = User(
        entity="xcon-userid:AUTO_GENERATE_1@example.com",
        endpoints=(Endpoint(entity="sip:Troll@example.com"),),
    )
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=troll))
    assert kind(exc) is ErrorKind.FORBIDDEN  # denied by its signalling URI
    store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id)))
    locked = new_conf(
        store,
        info=ConferenceInfo(
            entity="xcon:AUTO_GENERATE_1@example.com",
            conference_state=ConferenceState(locked=True),
        ),
    )
    assert refused(store, cmd.AddUser(actor=BOB, uri=locked)) is ErrorKind.FORBIDDEN


def test_mute_via_media_status(store: ConferenceStore) -> None:
    uri = new_conf(store)
    bob = User(
        entity=BOB.user_id,
        endpoints=(
            Endpoint(
                entity="sip:bob@example.com",
                media=(Media(id="1", type="audio", status=MediaStatus.SENDRECV),),
            ),
        ),
    )
    store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=bob))
    mute = User(
        entity=BOB.user_id,
        endpoints=(
            Endpoint(
                entity="sip:bob@example.com", media=(Media(id="1", status=MediaStatus.RECVONLY),)
            ),
        ),
    )
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.UpdateUser(actor=CAROL, uri=uri, user=mute))
    assert kind(exc) is ErrorKind.FORBIDDEN  # another user's media is the moderator's
    changes = store.apply(cmd.UpdateUser(actor=ALICE, uri=uri, user=mute, expected_version=2))
    assert [type(c) for c in changes] == [UserUpdated]
    user = store.get_user(ALICE, uri, BOB.user_id)
    (media,) = user.endpoints[0].media
    assert media.status == MediaStatus.RECVONLY and media.type == "audio"
    assert (
        refused(store, cmd.UpdateUser(actor=ALICE, uri=uri, user=mute, expected_version=2))
        is ErrorKind.CONFLICT_VERSION
    )


def test_an_endpoint_without_entity_means_the_users_only_endpoint(
    store: ConferenceStore,
) -> None:
    uri = new_conf(store)
    phone = Endpoint(
        entity="sip:bob@example.com",
        media=(Media(id="1", type="audio", status=MediaStatus.SENDRECV),),
    )
    store.apply(
        cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id, endpoints=(phone,)))
    )
    keyless = User(
        entity=BOB.user_id,
        endpoints=(Endpoint(media=(Media(id="1", status=MediaStatus.RECVONLY),)),),
    )
    store.apply(cmd.UpdateUser(actor=ALICE, uri=uri, user=keyless))
    (endpoint,) = store.get_user(ALICE, uri, BOB.user_id).endpoints
    assert endpoint.entity == "sip:bob@example.com"
    assert [m.status for m in endpoint.media] == [MediaStatus.RECVONLY]

    # With two endpoints nobody can tell which one is meant: refused, nothing changes.
    desk = Endpoint(entity="sip:bob-desk@example.com")
    store.apply(
        cmd.UpdateUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id, endpoints=(desk,)))
    )
    before = store.get(uri)
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.UpdateUser(actor=ALICE, uri=uri, user=keyless))
    assert kind(exc) is ErrorKind.INVALID_CONF_INFO
    assert "2 endpoints" in str(exc.value)
    assert store.get(uri) == before


def test_self_update_cannot_raise_roles(store: ConferenceStore) -> None:
    uri = new_conf(store)
    store.apply(cmd.AddUser(actor=BOB, uri=uri))
    store.apply(cmd.UpdateUser(actor=BOB, uri=uri, user=User(display_text="Bobby")))
    assert store.get_user(BOB, uri).display_text == "Bobby"
    assert (
        refused(store, cmd.UpdateUser(actor=BOB, uri=uri, user=User(roles=(Role.MODERATOR,))))
        is ErrorKind.FORBIDDEN
    )
    assert (
        refused(
            store,
            cmd.AddUser(
                actor=CAROL, uri=uri, user=User(entity=CAROL.user_id, roles=(Role.ADMINISTRATOR,))
            ),
        )
        is ErrorKind.FORBIDDEN
    )
    # a moderator may promote; the promoted user then moderates this conference
    store.apply(
        cmd.UpdateUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id, roles=(Role.MODERATOR,)))
    )
    store.apply(cmd.AddUser(actor=BOB, uri=uri, user=User(entity=CAROL.user_id)))


def test_observer_cannot_update_self(store: ConferenceStore) -> None:
    uri = new_conf(store)
    store.apply(cmd.AddUser(actor=EVE, uri=uri))
    assert (
        refused(store, cmd.UpdateUser(actor=EVE, uri=uri, user=User(display_text="x")))
        is ErrorKind.FORBIDDEN
    )


def test_retrieve_user(store: ConferenceStore) -> None:
    uri = new_conf(store)
    with pytest.raises(CoreError) as exc:
        store.get_user(BOB, uri)
    assert kind(exc) is ErrorKind.USER_NOT_FOUND
    store.apply(cmd.AddUser(actor=BOB, uri=uri))
    assert store.get_user(CAROL, uri, BOB.user_id).entity == BOB.user_id
    with pytest.raises(CoreError) as exc:
        store.get_user(NOBODY, uri, BOB.user_id)
    assert kind(exc) is ErrorKind.FORBIDDEN


def test_remove(store: ConferenceStore) -> None:
    uri = new_conf(store)
    store.apply(cmd.AddUser(actor=BOB, uri=uri))
    store.apply(cmd.AddUser(actor=CAROL, uri=uri))
    assert (
        refused(store, cmd.RemoveUser(actor=BOB, uri=uri, entity=CAROL.user_id))
        is ErrorKind.FORBIDDEN
    )
    changes = store.apply(cmd.RemoveUser(actor=BOB, uri=uri))
    assert [type(c) for c in changes] == [UserRemoved]
    store.apply(cmd.RemoveUser(actor=ADMIN, uri=uri, entity=CAROL.user_id))
    assert (
        refused(store, cmd.RemoveUser(actor=ALICE, uri=uri, entity=CAROL.user_id))
        is ErrorKind.USER_NOT_FOUND
    )
    obj = store.get(uri)
    assert obj is not None and obj.info.users is not None and obj.info.users.users == ()


def test_users_update_and_retrieve(store: ConferenceStore) -> None:
    uri = new_conf(store)
    patch = Users(
        join_handling=JoinHandling.CONFIRM,
        users=(User(entity=BOB.user_id), User(entity=CAROL.user_id)),
    )
    changes = store.apply(cmd.UpdateUsers(actor=ALICE, uri=uri, patch=patch, expected_version=1))
    kinds = [type(c) for c in changes]
    assert kinds.count(UserAdded) == 2 and ConferenceUpdated in kinds
    assert {c.version for c in changes} == {2}  # one command, one version step
    users = store.get_users(BOB, uri).info.users
    assert users is not None and users.join_handling == JoinHandling.CONFIRM
    assert [u.entity for u in users.users] == [BOB.user_id, CAROL.user_id]
    removal = Users(users=(User(entity=BOB.user_id, state=State.DELETED),))
    changes = store.apply(cmd.UpdateUsers(actor=ALICE, uri=uri, patch=removal))
    assert [type(c) for c in changes] == [UserRemoved]
    assert refused(store, cmd.UpdateUsers(actor=BOB, uri=uri, patch=removal)) is ErrorKind.FORBIDDEN
