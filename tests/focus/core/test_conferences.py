"""Conference objects: create (every way of RFC 6503 s5.3.4), retrieve, update, delete."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core.changes import ConferenceCreated, ConferenceDeleted, ConferenceUpdated
from focus.core.core import CoreConfig
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.state import Lifecycle, ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    AvailableMedia,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    UriEntry,
    Uris,
    User,
    Users,
)
from tests.focus.core.conftest import (
    ADMIN,
    ALICE,
    BOB,
    EVE,
    NOBODY,
    add_accounts,
    kind,
    open_store,
    refused,
)


def create(store: ConferenceStore, **kwargs: object) -> str:
    changes = store.apply(cmd.CreateConference(actor=kwargs.pop("actor", ALICE), **kwargs))  # type: ignore[arg-type]
    assert isinstance(changes[0], ConferenceCreated)
    return changes[0].uri


def test_default_blueprint_clone(store: ConferenceStore) -> None:
    changes = store.apply(cmd.CreateConference(actor=ALICE))
    assert len(changes) == 1
    created = changes[0]
    assert isinstance(created, ConferenceCreated)
    assert created.version == 1 and created.before is None
    obj = store.get_conference(ALICE, created.uri)
    assert obj == created.after
    assert obj.kind is ObjectKind.CONFERENCE
    assert obj.owner == ALICE.user_id
    assert obj.lifecycle is Lifecycle.ACTIVE
    assert obj.info.entity == obj.uri and obj.info.version == 1
    assert obj.info.conference_description is not None
    assert obj.info.conference_description.display_text == "AudioRoom"
    assert obj.info.conference_state is not None and obj.info.conference_state.active
    assert obj.uri.startswith("xcon:") and obj.uri.endswith("@example.com")


def test_clone_named_blueprint_is_independent(store: ConferenceStore) -> None:
    uri = create(store, clone_from="xcon:VideoRoom@example.com")
    obj = store.get_conference(ALICE, uri)
    assert obj.info.conference_description is not None
    media = obj.info.conference_description.available_media
    assert media is not None
    assert [m.type for m in media.entries] == ["audio", "video"]
    assert not obj.linked
    assert obj.info.conference_description.cloning_parent is None


def test_clone_unknown_is_not_found(store: ConferenceStore) -> None:
    with pytest.raises(CoreError) as exc:
        create(store, clone_from="xcon:Nope@example.com")
    assert kind(exc) is ErrorKind.NOT_FOUND


def test_clone_and_info_together_is_bad_request(store: ConferenceStore) -> None:
    with pytest.raises(CoreError) as exc:
        create(
            store,
            clone_from="xcon:AudioRoom@example.com",
            info=ConferenceInfo(entity="xcon:AUTO_GENERATE_1@example.com"),
        )
    assert kind(exc) is ErrorKind.BAD_REQUEST


def test_direct_creation_with_auto_generate(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            display_text="Dial-out conference initiated by Alice",
            maximum_user_count=10,
            conf_uris=Uris(entries=(UriEntry(uri="xcon:AUTO_GENERATE_1@example.com"),)),
            available_media=AvailableMedia(
                entries=(ConferenceMedium(label="AUTO_GENERATE_2", type="audio"),)
            ),
        ),
        users=Users(users=(User(entity="xcon-userid:AUTO_GENERATE_3@example.com"),)),
    )
    uri = create(store, info=info)
    obj = store.get_conference(ALICE, uri)
    desc = obj.info.conference_description
    assert desc is not None and desc.available_media is not None and desc.conf_uris is not None
    label = desc.available_media.entries[0].label
    assert "AUTO_GENERATE" not in repr(obj.info)
    assert label and label != "AUTO_GENERATE_2"
    # the same placeholder became the same value
    assert desc.conf_uris.entries[0].uri.split(":")[1].split("@")[0] != label
    assert obj.info.users is not None
    (user,) = obj.info.users.users
    assert user.entity is not None and user.entity.startswith("xcon-userid:")
    assert user.entity.endswith("@example.com")


def test_same_placeholder_same_value(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            subject="AUTO_GENERATE_7",
            free_text="AUTO_GENERATE_7",
            display_text="AUTO_GENERATE_8",
        ),
    )
    obj = store.get_conference(ALICE, create(store, info=info))
    desc = obj.info.conference_description
    assert desc is not None
    assert desc.subject == desc.free_text != desc.display_text


def test_auto_generate_foreign_domain_is_427(store: ConferenceStore) -> None:
    info = ConferenceInfo(entity="xcon:AUTO_GENERATE_1@elsewhere.org")
    with pytest.raises(CoreError) as exc:
        create(store, info=info)
    assert kind(exc) is ErrorKind.INVALID_DOMAIN
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(users=(User(entity="xcon-userid:AUTO_GENERATE_2@evil.net"),)),
    )
    with pytest.raises(CoreError) as exc:
        create(store, info=info)
    assert kind(exc) is ErrorKind.INVALID_DOMAIN


def test_invalid_conf_info(store: ConferenceStore) -> None:
    bad = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(maximum_user_count=0),
    )
    with pytest.raises(CoreError) as exc:
        create(store, info=bad)
    assert kind(exc) is ErrorKind.INVALID_CONF_INFO
    dup = ConferenceInfo(
        entity="xcon:x@example.com",
        users=Users(users=(User(entity="xcon-userid:a@example.com"),) * 2),
    )
    with pytest.raises(CoreError) as exc:
        create(store, info=dup)
    assert kind(exc) is ErrorKind.INVALID_CONF_INFO


def test_clone_active_conference_inherits_users(store: ConferenceStore) -> None:
    uri = create(store)
    store.apply(cmd.AddUser(actor=ALICE, uri=uri))
    clone = create(store, clone_from=uri)
    obj = store.get_conference(ALICE, clone)
    assert obj.parent == uri and not obj.linked
    assert obj.info.user(ALICE.user_id or "") is not None  # RFC 6503 s3.2
    assert clone != uri


def test_only_creators_create(store: ConferenceStore) -> None:
    for actor in (BOB, EVE, NOBODY):
        with pytest.raises(CoreError) as exc:
            create(store, actor=actor)
        assert kind(exc) is ErrorKind.FORBIDDEN


def test_retrieve_kinds(store: ConferenceStore) -> None:
    with pytest.raises(CoreError) as exc:
        store.get_conference(ALICE, "xcon:AudioRoom@example.com")
    assert kind(exc) is ErrorKind.NOT_FOUND  # a blueprint is not a conference
    with pytest.raises(CoreError) as exc:
        store.get_blueprint(ALICE, create(store))
    assert kind(exc) is ErrorKind.NOT_FOUND  # a conference is not a blueprint
    assert store.get_blueprint(BOB, "xcon:AudioRoom@example.com").name == "AudioRoom"
    with pytest.raises(CoreError) as exc:
        store.list_blueprints(NOBODY)
    assert kind(exc) is ErrorKind.FORBIDDEN


def test_list_conferences(store: ConferenceStore) -> None:
    a, b = create(store), create(store)
    listed = [o.uri for o in store.list_conferences(BOB)]
    assert listed == sorted([a, b])
    with pytest.raises(CoreError):
        store.list_conferences(NOBODY)


def test_update_merges_and_bumps_version(store: ConferenceStore) -> None:
    uri = create(store)
    patch = ConferenceInfo(
        entity=uri, conference_description=ConferenceDescription(subject="Quarterly review")
    )
    changes = store.apply(
        cmd.UpdateConference(actor=ALICE, uri=uri, patch=patch, expected_version=1)
    )
    assert [type(c) for c in changes] == [ConferenceUpdated]
    assert changes[0].version == 2
    obj = store.get_conference(ALICE, uri)
    assert obj.version == 2
    desc = obj.info.conference_description
    assert desc is not None and desc.subject == "Quarterly review"
    assert desc.display_text == "AudioRoom"  # untouched parts kept


def test_stale_version_is_conflict_and_changes_nothing(store: ConferenceStore) -> None:
    uri = create(store)
    patch = ConferenceInfo(entity=uri, conference_description=ConferenceDescription(subject="x"))
    store.apply(cmd.UpdateConference(actor=ALICE, uri=uri, patch=patch))
    before = store.get(uri)
    assert (
        refused(store, cmd.UpdateConference(actor=ALICE, uri=uri, patch=patch, expected_version=1))
        is ErrorKind.CONFLICT_VERSION
    )
    assert store.get(uri) == before


def test_update_needs_moderator(store: ConferenceStore) -> None:
    uri = create(store)
    patch = ConferenceInfo(entity=uri, conference_description=ConferenceDescription(subject="x"))
    assert (
        refused(store, cmd.UpdateConference(actor=BOB, uri=uri, patch=patch)) is ErrorKind.FORBIDDEN
    )
    store.apply(cmd.UpdateConference(actor=ADMIN, uri=uri, patch=patch))


def test_update_cannot_touch_sidebars(store: ConferenceStore) -> None:
    uri = create(store)
    patch = ConferenceInfo(entity=uri, sidebars_by_ref=Uris(entries=(UriEntry(uri="xcon:s@x"),)))
    assert (
        refused(store, cmd.UpdateConference(actor=ALICE, uri=uri, patch=patch))
        is ErrorKind.BAD_REQUEST
    )


def test_update_unknown_is_not_found(store: ConferenceStore) -> None:
    patch = ConferenceInfo(entity="xcon:none@example.com")
    assert (
        refused(store, cmd.UpdateConference(actor=ALICE, uri="xcon:none@example.com", patch=patch))
        is ErrorKind.NOT_FOUND
    )


def test_delete(store: ConferenceStore) -> None:
    uri = create(store)
    assert refused(store, cmd.DeleteConference(actor=BOB, uri=uri)) is ErrorKind.FORBIDDEN
    changes = store.apply(cmd.DeleteConference(actor=ALICE, uri=uri))
    assert [type(c) for c in changes] == [ConferenceDeleted]
    assert changes[0].after is None and changes[0].version == 2
    assert store.get(uri) is None
    assert refused(store, cmd.DeleteConference(actor=ALICE, uri=uri)) is ErrorKind.NOT_FOUND


def test_delete_blueprint_is_403(store: ConferenceStore) -> None:
    assert (
        refused(store, cmd.DeleteConference(actor=ADMIN, uri="xcon:AudioRoom@example.com"))
        is ErrorKind.OPERATION_NOT_ALLOWED
    )


def test_linked_child_blocks_parent_delete_and_enforces(store: ConferenceStore) -> None:
    parent = create(store)
    child = create(store, clone_from=parent, linked=True)
    obj = store.get_conference(ALICE, child)
    assert obj.linked and obj.parent == parent
    assert obj.info.conference_description is not None
    assert obj.info.conference_description.cloning_parent == parent
    assert (
        refused(store, cmd.DeleteConference(actor=ALICE, uri=parent))
        is ErrorKind.DELETE_PARENT_FAILED
    )
    # maximum-user-count is parent-enforceable by default: 426 in the child
    patch = ConferenceInfo(
        entity=child, conference_description=ConferenceDescription(maximum_user_count=5)
    )
    assert (
        refused(store, cmd.UpdateConference(actor=ALICE, uri=child, patch=patch))
        is ErrorKind.PARENT_ENFORCED
    )
    # ... but other elements are the child's own
    own = ConferenceInfo(entity=child, conference_description=ConferenceDescription(subject="mine"))
    store.apply(cmd.UpdateConference(actor=ALICE, uri=child, patch=own))
    # a change of the enforced element at the parent reaches the child
    patch = dataclasses.replace(patch, entity=parent)
    changes = store.apply(cmd.UpdateConference(actor=ALICE, uri=parent, patch=patch))
    assert {c.uri for c in changes} == {parent, child}
    child_desc = store.get_conference(ALICE, child).info.conference_description
    assert child_desc is not None and child_desc.maximum_user_count == 5
    store.apply(cmd.DeleteConference(actor=ALICE, uri=child))
    store.apply(cmd.DeleteConference(actor=ALICE, uri=parent))


def test_independent_child_does_not_block(store: ConferenceStore) -> None:
    parent = create(store)
    create(store, clone_from=parent)
    store.apply(cmd.DeleteConference(actor=ALICE, uri=parent))


def test_custom_enforce_set(store: ConferenceStore) -> None:
    parent = create(store, enforce=frozenset())
    child = create(store, clone_from=parent, linked=True)
    patch = ConferenceInfo(
        entity=child, conference_description=ConferenceDescription(maximum_user_count=5)
    )
    store.apply(cmd.UpdateConference(actor=ALICE, uri=child, patch=patch))


def test_blueprint_cannot_be_linked_parent(store: ConferenceStore) -> None:
    with pytest.raises(CoreError) as exc:
        create(store, clone_from="xcon:AudioRoom@example.com", linked=True)
    assert kind(exc) is ErrorKind.BAD_REQUEST


def test_password_protected_conference(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            conf_uris=Uris(
                entries=(UriEntry(uri="sip:room@example.com", conference_passwords=("8601",)),)
            )
        ),
    )
    uri = create(store, info=info)
    assert store.get_conference(ALICE, uri, password="8601").uri == uri
    with pytest.raises(CoreError) as exc:
        store.get_conference(BOB, uri)
    assert kind(exc) is ErrorKind.PASSWORD_REQUIRED
    with pytest.raises(CoreError) as exc:
        store.get_conference(BOB, uri, password="1234")
    assert kind(exc) is ErrorKind.WRONG_PASSWORD
    assert store.get_conference(BOB, uri, password="8601").uri == uri
    assert refused(store, cmd.AddUser(actor=BOB, uri=uri)) is ErrorKind.PASSWORD_REQUIRED
    assert (
        refused(store, cmd.AddUser(actor=BOB, uri=uri, password="0000")) is ErrorKind.WRONG_PASSWORD
    )
    store.apply(cmd.AddUser(actor=BOB, uri=uri, password="8601"))
    # cloning a protected conference needs its password too
    with pytest.raises(CoreError) as exc:
        create(
            store,
            actor=dataclasses.replace(ALICE, user_id="xcon-userid:zed@example.com"),
            clone_from=uri,
        )
    assert kind(exc) is ErrorKind.INVALID_CONF_USER_ID  # zed has no account: 421
    store.accounts.add("zed", ALICE.role, "pw")
    with pytest.raises(CoreError) as exc:
        create(
            store,
            actor=dataclasses.replace(ALICE, user_id="xcon-userid:zed@example.com"),
            clone_from=uri,
        )
    assert kind(exc) is ErrorKind.PASSWORD_REQUIRED


PROTECTED = ConferenceInfo(
    entity="xcon:AUTO_GENERATE_1@example.com",
    conference_description=ConferenceDescription(
        conf_uris=Uris(
            entries=(UriEntry(uri="sip:room@example.com", conference_passwords=("8601",)),)
        )
    ),
)


def every_request(uri: str, sidebar: str, password: str | None) -> list[cmd.Command]:
    """A command of every kind aimed at the protected conference ``uri`` or its sidebar."""
    patch = ConferenceInfo(entity=uri, conference_description=ConferenceDescription(free_text="x"))
    side = dataclasses.replace(patch, entity=sidebar)
    return [
        cmd.UpdateConference(actor=ALICE, uri=uri, patch=patch, password=password),
        cmd.UpdateUsers(actor=ALICE, uri=uri, patch=Users(), password=password),
        cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id), password=password),
        cmd.UpdateUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id), password=password),
        cmd.RemoveUser(actor=ALICE, uri=uri, entity=BOB.user_id, password=password),
        cmd.CreateSidebar(actor=ALICE, parent=uri, by_ref=True, password=password),
        cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=True, patch=side, password=password),
        cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=True, password=password),
        cmd.CreateConference(actor=ALICE, clone_from=uri, password=password),
        cmd.DeleteConference(actor=ALICE, uri=uri, password=password),
    ]


def test_rfc6503_s5_1_every_request_needs_the_password_even_the_creators(
    store: ConferenceStore,
) -> None:
    # "MUST be inserted in all requests whose target conference object is password-
    # protected": the creator (a moderator) and administrators get 423 too.
    uri = create(store, info=PROTECTED)
    store.apply(cmd.AddUser(actor=BOB, uri=uri, password="8601"))
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=uri, by_ref=True, password="8601"))
    side = sidebar[0].uri
    for command in every_request(uri, side, None):
        with pytest.raises(CoreError) as exc:
            store.apply(command)
        assert kind(exc) is ErrorKind.PASSWORD_REQUIRED, command
        with pytest.raises(CoreError) as exc:
            store.apply(dataclasses.replace(command, password="0000"))  # type: ignore[arg-type]
        assert kind(exc) is ErrorKind.WRONG_PASSWORD, command
    for read in (store.get_conference, store.get_users, store.get_sidebars):
        for actor in (ALICE, ADMIN):
            with pytest.raises(CoreError) as exc:
                read(actor, uri)
            assert kind(exc) is ErrorKind.PASSWORD_REQUIRED
    with pytest.raises(CoreError) as exc:
        store.get_sidebar(ALICE, side, by_ref=True)  # the sidebar is protected as its parent
    assert kind(exc) is ErrorKind.PASSWORD_REQUIRED
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.RemoveUser(actor=BOB, uri=uri))  # leaving too
    assert kind(exc) is ErrorKind.PASSWORD_REQUIRED
    # the system's own work (the SIP focus admitting a caller) is not a CCMP request
    store.apply(cmd.AddUser(actor=Actor.system(), uri=uri, user=User(entity=EVE.user_id)))
    # with the password every one of them is served
    for command in every_request(uri, side, "8601"):
        if isinstance(command, cmd.AddUser | cmd.CreateSidebar):
            continue  # Bob and the sidebar are there already
        store.apply(command)
    assert store.get(uri) is None


def test_rfc6503_s5_1_administrators_are_exempt_only_by_the_option(state_dir: Path) -> None:
    config = CoreConfig(domain="example.com", exempt_administrators_from_passwords=True)
    store = add_accounts(open_store(state_dir, config=config))
    try:
        uri = create(store, info=PROTECTED)
        assert store.get_conference(ADMIN, uri).uri == uri
        with pytest.raises(CoreError) as exc:
            store.get_conference(ALICE, uri)  # the creator is no administrator
        assert kind(exc) is ErrorKind.PASSWORD_REQUIRED
        store.apply(cmd.DeleteConference(actor=ADMIN, uri=uri))
    finally:
        store.close()
    assert CoreConfig().exempt_administrators_from_passwords is False


def test_find_by_xcon_uri_or_conf_uri(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            conf_uris=Uris(entries=(UriEntry(uri="sip:Room42@focus.example.com"),))
        ),
    )
    uri = create(store, info=info)
    found = store.find("sip:room42@focus.example.com")
    assert found is not None and found.uri == uri
    assert store.find(uri) == found
    assert store.find("sip:other@focus.example.com") is None
    assert store.find("xcon:AudioRoom@example.com") is None  # blueprints are not dialled


def _media(obj_info: ConferenceInfo) -> list[tuple[str, str | None]]:
    desc = obj_info.conference_description
    assert desc is not None and desc.available_media is not None
    return [(m.label, m.type) for m in desc.available_media.entries]


def test_direct_creation_starts_from_the_default_blueprint(store: ConferenceStore) -> None:
    # RFC 5239 s7.1 / RFC 6503 s5.3.4: direct creation is implicit cloning of the default
    # blueprint, so a confInfo naming only a title still gets the blueprint's media.
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(display_text="Only a title"),
    )
    obj = store.get_conference(ALICE, create(store, info=info))
    blueprint = store.get("xcon:AudioRoom@example.com")
    assert blueprint is not None
    assert _media(obj.info) == _media(blueprint.info) == [("1", "audio")]
    desc = obj.info.conference_description
    assert desc is not None and desc.display_text == "Only a title"
    assert desc.maximum_user_count == 100  # from the blueprint
    assert obj.info.users is not None and obj.info.users.join_handling == "allow"
    assert obj.info.floor_information == blueprint.info.floor_information


def test_direct_creation_media_replace_the_blueprints(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            available_media=AvailableMedia(entries=(ConferenceMedium(label="v", type="video"),)),
        ),
    )
    obj = store.get_conference(ALICE, create(store, info=info))
    assert _media(obj.info) == [("v", "video")]
    # the blueprint's audio floor would name a medium this conference does not have
    floors = obj.info.floor_information
    assert floors is None or floors.conference_floor_policy is None


def test_direct_creation_rfc6504_audio_under_a_generated_label(store: ConferenceStore) -> None:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            available_media=AvailableMedia(
                entries=(ConferenceMedium(label="AUTO_GENERATE_2", type="audio"),)
            ),
        ),
    )
    obj = store.get_conference(ALICE, create(store, info=info))
    ((label, kind),) = _media(obj.info)
    assert kind == "audio" and label != "audio" and "AUTO_GENERATE" not in label
