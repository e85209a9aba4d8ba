"""Blueprints written by administrators (RFC 6503 s5.3.3) and anonymous joins (s5.3.6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core.changes import (
    BlueprintCreated,
    BlueprintDeleted,
    BlueprintUpdated,
    Change,
    UserAdded,
)
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.state import ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    AvailableMedia,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    Endpoint,
    UriEntry,
    Uris,
    User,
    UserAdmissionPolicy,
    Users,
)
from tests.focus.core.conftest import ADMIN, ALICE, add_accounts, kind, open_store, refused

ANON = Actor.unauthenticated()


def _new_blueprint(store: ConferenceStore, title: str = "Town hall") -> str:
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            display_text=title,
            free_text="Large audience, one speaker",
            available_media=AvailableMedia(entries=(ConferenceMedium(label="main", type="audio"),)),
        ),
    )
    changes = store.apply(cmd.CreateBlueprint(actor=ADMIN, info=info))
    assert [type(c) for c in changes] == [BlueprintCreated]
    return changes[0].uri


def test_administrator_creates_updates_and_deletes_a_blueprint(store: ConferenceStore) -> None:
    seen: list[Sequence[Change]] = []
    store.subscribe(seen.append)
    uri = _new_blueprint(store)
    found = store.get_blueprint(ALICE, uri)  # everyone may read it
    assert found.kind is ObjectKind.BLUEPRINT and found.version == 1 and found.editable
    assert uri in [b.uri for b in store.list_blueprints(ALICE)]
    # a conference cloned from it gets its content
    conf = store.apply(cmd.CreateConference(actor=ALICE, clone_from=uri))[0].uri
    desc = store.get_conference(ALICE, conf).info.conference_description
    assert desc is not None and desc.display_text == "Town hall"

    patch = ConferenceInfo(
        entity=uri, conference_description=ConferenceDescription(display_text="Town hall 2")
    )
    (changed,) = store.apply(cmd.UpdateBlueprint(actor=ADMIN, uri=uri, patch=patch))
    assert isinstance(changed, BlueprintUpdated) and changed.version == 2
    with pytest.raises(CoreError) as exc:  # made on version 1: stale
        store.apply(cmd.UpdateBlueprint(actor=ADMIN, uri=uri, patch=patch, expected_version=1))
    assert kind(exc) is ErrorKind.CONFLICT_VERSION
    # the clone is independent of later blueprint changes (RFC 5239 s7.1)
    desc = store.get_conference(ALICE, conf).info.conference_description
    assert desc is not None and desc.display_text == "Town hall"

    (gone,) = store.apply(cmd.DeleteBlueprint(actor=ADMIN, uri=uri))
    assert isinstance(gone, BlueprintDeleted)
    with pytest.raises(CoreError) as exc:
        store.get_blueprint(ALICE, uri)
    assert kind(exc) is ErrorKind.NOT_FOUND
    assert store.get(conf) is not None
    kinds = [type(c) for batch in seen for c in batch]
    assert kinds[0] is BlueprintCreated and BlueprintUpdated in kinds
    assert kinds[-1] is BlueprintDeleted


def test_blueprint_files_are_static(store: ConferenceStore) -> None:
    audio = "xcon:AudioRoom@example.com"
    patch = ConferenceInfo(entity=audio, conference_description=ConferenceDescription(subject="x"))
    for command in (
        cmd.UpdateBlueprint(actor=ADMIN, uri=audio, patch=patch),
        cmd.DeleteBlueprint(actor=ADMIN, uri=audio),
    ):
        with pytest.raises(CoreError) as exc:
            store.apply(command)
        assert kind(exc) is ErrorKind.OPERATION_NOT_ALLOWED  # 403, s5.4's own example


def test_blueprint_writes_need_an_administrator(store: ConferenceStore) -> None:
    uri = _new_blueprint(store)
    for command in (
        cmd.CreateBlueprint(actor=ALICE, clone_from=uri),
        cmd.DeleteBlueprint(actor=ALICE, uri=uri),
    ):
        assert refused(store, command) is ErrorKind.FORBIDDEN


def test_blueprints_carry_nothing_sensitive(store: ConferenceStore) -> None:
    with_password = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            conf_uris=Uris(
                entries=(UriEntry(uri="sip:x@example.com", conference_passwords=("s",)),)
            )
        ),
    )
    with_users = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        users=Users(users=(User(entity="xcon-userid:alice@example.com"),)),
    )
    for info in (with_password, with_users):
        assert (
            refused(store, cmd.CreateBlueprint(actor=ADMIN, info=info))
            is ErrorKind.INVALID_CONF_INFO
        )
    assert refused(store, cmd.CreateBlueprint(actor=ADMIN)) is ErrorKind.BAD_REQUEST
    assert (
        refused(
            store,
            cmd.CreateBlueprint(
                actor=ADMIN, info=ConferenceInfo(entity="xcon:AUTO_GENERATE_1@elsewhere.net")
            ),
        )
        is ErrorKind.INVALID_DOMAIN
    )


def test_created_blueprints_survive_a_restart(state_dir: Path, store: ConferenceStore) -> None:
    uri = _new_blueprint(store, "Persisted")
    deleted = _new_blueprint(store, "Deleted")
    store.apply(cmd.DeleteBlueprint(actor=ADMIN, uri=deleted))
    store.close()
    again = add_accounts(open_store(state_dir))
    try:
        found = again.get_blueprint(ALICE, uri)
        assert found.editable and found.info.conference_description is not None
        assert found.info.conference_description.display_text == "Persisted"
        assert again.get(deleted) is None
        assert again.get("xcon:AudioRoom@example.com") is not None
    finally:
        again.close()


# ---- RFC 6503 s5.3.6, third case: a client without XCON-USERID joins ----------------


def _open_conference(store: ConferenceStore, policy: UserAdmissionPolicy) -> str:
    conf = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    store.apply(cmd.UpdateUsers(actor=ALICE, uri=conf, patch=Users(user_admission_policy=policy)))
    return conf


def _joiner(contact: str | None = "sip:guest@192.0.2.7") -> User:
    endpoints = (Endpoint(entity=contact),) if contact else ()
    return User(entity="xcon-userid:AUTO_GENERATE_1@example.com", endpoints=endpoints)


def test_anonymous_join_gets_a_fresh_xcon_userid(store: ConferenceStore) -> None:
    conf = _open_conference(store, UserAdmissionPolicy.ANONYMOUS)
    # someone already known by that contact URI: the guest must not get their identity
    store.apply(
        cmd.AddUser(
            actor=ALICE,
            uri=conf,
            user=User(entity=ALICE.user_id, endpoints=(Endpoint(entity="sip:guest@192.0.2.7"),)),
        )
    )
    (added,) = store.apply(cmd.AddUser(actor=ANON, uri=conf, user=_joiner()))
    assert isinstance(added, UserAdded)
    assert added.user.startswith("xcon-userid:user") and added.user.endswith("@example.com")
    assert added.user != ALICE.user_id


@pytest.mark.parametrize(
    "policy", [UserAdmissionPolicy.OPEN_AUTHENTICATED, UserAdmissionPolicy.CLOSED_AUTHENTICATED]
)
def test_anonymous_join_needs_an_anonymous_conference(
    store: ConferenceStore, policy: UserAdmissionPolicy
) -> None:
    conf = _open_conference(store, policy)
    assert (
        refused(store, cmd.AddUser(actor=ANON, uri=conf, user=_joiner()))
        is ErrorKind.AUTHENTICATION_REQUIRED
    )


def test_anonymous_join_needs_placeholder_and_contact(store: ConferenceStore) -> None:
    conf = _open_conference(store, UserAdmissionPolicy.ANONYMOUS)
    for user in (
        None,
        _joiner(contact=None),
        User(entity="xcon-userid:alice@example.com", endpoints=(Endpoint(entity="sip:g@x"),)),
    ):
        assert refused(store, cmd.AddUser(actor=ANON, uri=conf, user=user)) is ErrorKind.BAD_REQUEST


def test_anonymous_actor_may_do_nothing_else(store: ConferenceStore) -> None:
    conf = _open_conference(store, UserAdmissionPolicy.ANONYMOUS)
    for action in (
        lambda: store.apply(cmd.CreateConference(actor=ANON)),
        lambda: store.get_conference(ANON, conf),
        lambda: store.list_conferences(ANON),
    ):
        with pytest.raises(CoreError) as exc:
            action()
        assert kind(exc) is ErrorKind.FORBIDDEN
