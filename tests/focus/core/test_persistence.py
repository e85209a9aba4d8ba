"""Durability: restart equality, IDs never reused, write-ahead on a failing write,
subscribers, and the JSON mapping of the model."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from focus.core import commands as cmd
from focus.core.changes import Change, ConferenceCreated, UserAdded
from focus.core.database import database_path
from focus.core.errors import CoreError, ErrorKind
from focus.core.serial import SerialError, from_jsonable, to_jsonable
from focus.core.state import ConferenceObject, Lifecycle
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceTime,
    ConferenceTimeEntry,
    Endpoint,
    UriEntry,
    Uris,
    User,
)
from tests.focus.core.conftest import ALICE, BOB, CAROL, open_store
from tests.focus.xcon.strategies import conference_infos

WEEKLY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:u\r\n"
    "DTSTAMP:20300101T000000Z\r\nDTSTART:20300107T090000Z\r\nDURATION:PT1H\r\n"
    "RRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def populate(store: ConferenceStore) -> set[str]:
    """A bit of everything; returns every ID generated."""
    ids: set[str] = set()

    def run(command: cmd.Command) -> list[Change]:
        changes = store.apply(command)
        for change in changes:
            ids.add(change.uri)
            if isinstance(change, UserAdded):
                ids.add(change.user)
        return changes

    run(cmd.Tick(now=datetime(2030, 1, 1, tzinfo=UTC)))
    protected = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            display_text="secret",
            conf_uris=Uris(
                entries=(UriEntry(uri="sip:s@example.com", conference_passwords=("42",)),)
            ),
        ),
    )
    a = run(cmd.CreateConference(actor=ALICE, info=protected))[0].uri
    run(cmd.AddUser(actor=BOB, uri=a, password="42"))
    run(
        cmd.AddUser(
            actor=ALICE,
            uri=a,
            user=User(
                entity="xcon-userid:AUTO_GENERATE_1@example.com",
                endpoints=(Endpoint(entity="sip:dave@example.com"),),
            ),
            password="42",
        )
    )
    run(cmd.CreateSidebar(actor=ALICE, parent=a, by_ref=False, password="42"))
    run(cmd.CreateSidebar(actor=ALICE, parent=a, by_ref=True, password="42"))
    b = run(cmd.CreateConference(actor=ALICE, clone_from="xcon:VideoRoom@example.com"))[0].uri
    run(cmd.CreateConference(actor=ALICE, clone_from=b, linked=True))
    gone = run(cmd.CreateConference(actor=ALICE))[0].uri
    run(cmd.DeleteConference(actor=ALICE, uri=gone))
    series = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=WEEKLY),))
        ),
    )
    s = run(cmd.CreateConference(actor=ALICE, info=series))[0].uri
    run(
        cmd.AlterSeries(
            actor=ALICE,
            uri=s,
            start=datetime(2030, 1, 14, tzinfo=UTC),
            end=datetime(2030, 1, 20, tzinfo=UTC),
            patch=ConferenceInfo(entity=s),
        )
    )
    run(cmd.Tick(now=datetime(2030, 1, 7, 9, 30, tzinfo=UTC)))
    return ids


def test_restart_brings_everything_back(state_dir: Path, store: ConferenceStore) -> None:
    populate(store)
    before = store.objects()
    now = store.now
    store.close()
    again = open_store(state_dir)
    try:
        assert again.objects() == before
        assert again.now == now
        assert any(
            o.lifecycle is Lifecycle.ACTIVE
            and o.info.conference_description
            and o.info.conference_description.conference_time
            for o in before
        )
        assert again.accounts.authenticate("alice", "pw-alice").user_id == ALICE.user_id
        protected = next(o for o in before if o.is_password_protected())
        with pytest.raises(CoreError) as exc:
            again.get_conference(CAROL, protected.uri, password="nope")
        assert exc.value.kind is ErrorKind.WRONG_PASSWORD
    finally:
        again.close()


def test_ids_never_repeat_across_restarts(state_dir: Path, store: ConferenceStore) -> None:
    generated: list[str] = []

    def run(s: ConferenceStore) -> None:
        populate(s)
        for change in s.objects():
            if change.uri.startswith("xcon:conf") and change.uri not in generated:
                generated.append(change.uri)
        uri = s.apply(cmd.CreateConference(actor=ALICE))[0].uri
        s.apply(cmd.DeleteConference(actor=ALICE, uri=uri))
        generated.append(uri)
        fresh = User(entity="xcon-userid:AUTO_GENERATE_1@example.com")
        added = s.apply(cmd.AddUser(actor=ALICE, uri=s.list_conferences(ALICE)[-1].uri, user=fresh))
        assert isinstance(added[0], UserAdded)
        generated.append(added[0].user)

    run(store)
    store.close()
    for _ in range(2):
        s = open_store(state_dir)
        try:
            run(s)
        finally:
            s.close()
    assert len(generated) == len(set(generated)) > 10


def test_generated_ids_are_unique_including_deleted(
    state_dir: Path, store: ConferenceStore
) -> None:
    uris = []
    for _ in range(3):
        uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
        store.apply(cmd.DeleteConference(actor=ALICE, uri=uri))
        uris.append(uri)
    store.close()
    s = open_store(state_dir)
    try:
        for _ in range(3):
            uris.append(s.apply(cmd.CreateConference(actor=ALICE))[0].uri)
    finally:
        s.close()
    assert len(set(uris)) == len(uris)


def test_write_ahead_failure_changes_nothing(state_dir: Path, store: ConferenceStore) -> None:
    uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    seen: list[Sequence[Change]] = []
    store.subscribe(seen.append)
    before = store.objects()
    store.set_busy_timeout(50)
    blocker = sqlite3.connect(database_path(state_dir), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the file
    try:
        with pytest.raises(CoreError) as exc:
            store.apply(cmd.AddUser(actor=BOB, uri=uri))
        assert exc.value.kind is ErrorKind.STORAGE_FAILED
        assert store.objects() == before
        assert seen == []
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    changes = store.apply(cmd.AddUser(actor=BOB, uri=uri))
    assert changes[0].version == 2  # the failed attempt consumed no version
    assert seen == [tuple(changes)]


def test_subscribers_see_every_change(
    store: ConferenceStore, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Change] = []
    second: list[Change] = []
    store.subscribe(got.extend)

    def broken(changes: Sequence[Change]) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    unsubscribe = store.subscribe(second.extend)
    returned: list[Change] = []
    with caplog.at_level(logging.ERROR, logger="focus.core"):
        returned += store.apply(cmd.CreateConference(actor=ALICE))
        uri = returned[0].uri
        returned += store.apply(cmd.AddUser(actor=BOB, uri=uri))
        returned += store.apply(cmd.CreateSidebar(actor=ALICE, parent=uri, by_ref=True))
        unsubscribe()
        returned += store.apply(cmd.RemoveUser(actor=BOB, uri=uri))
    assert got == returned
    assert len(second) == 4  # created; user added; sidebar created + parent updated
    assert "listener bug" in caplog.text
    assert isinstance(got[0], ConferenceCreated)


def test_corrupt_row_is_reported(state_dir: Path, store: ConferenceStore) -> None:
    store.apply(cmd.CreateConference(actor=ALICE))
    store.close()
    with sqlite3.connect(database_path(state_dir)) as conn:
        conn.execute("UPDATE conference_objects SET document='{\"uri\": 5}'")
    with pytest.raises(CoreError) as exc:
        open_store(state_dir)
    assert exc.value.kind is ErrorKind.STORAGE_FAILED
    assert "corrupt" in exc.value.message


def test_serial_rejects_mismatched_data() -> None:
    with pytest.raises(SerialError):
        from_jsonable(ConferenceInfo, {"entity": 3})
    with pytest.raises(SerialError):
        from_jsonable(ConferenceInfo, {"entity": "x", "bogus": 1})
    with pytest.raises(SerialError):
        from_jsonable(ConferenceInfo, {"entity": "x", "version": "1"})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conference_infos())
def test_model_survives_json(info: ConferenceInfo) -> None:
    obj = ConferenceObject(uri=info.entity, kind="conference", version=3, info=info)  # type: ignore[arg-type]
    data = json.loads(json.dumps(to_jsonable(obj)))
    back = from_jsonable(ConferenceObject, data)
    assert back.info == info
    assert back.version == 3


def test_reentrant_subscriber_keeps_commit_order(store: ConferenceStore) -> None:
    """A subscriber may apply commands itself; everyone still sees batches in order."""
    uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    first: list[str] = []
    second: list[str] = []

    def reacting(changes: Sequence[Change]) -> None:
        first.extend(c.user for c in changes if isinstance(c, UserAdded))
        if any(isinstance(c, UserAdded) and c.user == BOB.user_id for c in changes):
            store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=CAROL.user_id)))

    store.subscribe(reacting)
    store.subscribe(
        lambda changes: second.extend(c.user for c in changes if isinstance(c, UserAdded))
    )
    store.apply(cmd.AddUser(actor=BOB, uri=uri))
    assert first == second == [BOB.user_id, CAROL.user_id]
    obj = store.get(uri)
    assert obj is not None and obj.version == 3


def test_one_store_per_file(state_dir: Path, store: ConferenceStore) -> None:
    with pytest.raises(CoreError) as exc:
        open_store(state_dir)
    assert exc.value.kind is ErrorKind.STORAGE_FAILED
    assert "already in use" in exc.value.message
    store.close()
    store.close()  # idempotent
    with open_store(state_dir) as again:
        assert again.accounts.get("alice") is not None
    with open_store(state_dir):
        pass  # released by the context manager
