"""The planner fed by a real conference store (SQLite file on disk)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core.changes import Change
from focus.core.core import CoreConfig
from focus.core.policy import Actor
from focus.core.policy import Role as CoreRole
from focus.core.store import ConferenceStore
from focus.eventpkg.bodies import Outcome, apply_rfc4575, rfc4575_view
from focus.eventpkg.core_bridge import feed_changes
from focus.eventpkg.notifier import (
    Notifier,
    NotifierConfig,
    SendNotify,
    TerminationReason,
)
from focus.eventpkg.policy import view_for
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import Role, User

ALICE = Actor("xcon-userid:alice@example.com", CoreRole.USER)
BOB = Actor("xcon-userid:bob@example.com", CoreRole.PARTICIPANT)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConferenceStore]:
    s = ConferenceStore.open(tmp_path / "state", CoreConfig(domain="example.com"), scrypt_n=2**4)
    for actor in (ALICE, BOB):
        assert actor.user_id is not None
        name = actor.user_id.split(":")[1].split("@")[0]
        s.accounts.add(name, actor.role, f"pw-{name}")
    yield s
    s.close()


def drain(planner: Notifier) -> list[SendNotify]:
    events = []
    while (event := planner.next_event()) is not None:
        events.append(event)
    return events


def test_store_changes_reach_the_subscriber(store: ConferenceStore) -> None:
    planner = Notifier(NotifierConfig(min_interval=5.0))
    clock = [0.0]
    batches: list[Sequence[Change]] = []

    def on_changes(changes: Sequence[Change]) -> None:
        batches.append(changes)
        feed_changes(planner, changes, clock[0])

    store.subscribe(on_changes)
    uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    conference = store.get(uri)
    assert conference is not None
    first = planner.add_subscriber("bob", uri, conference.info, 0.0, user_id=BOB.user_id)
    planner.notify_completed("bob", True, 0.1)
    local = apply_rfc4575(None, None, parse_conference_info(first.body))
    assert local.outcome is Outcome.REPLACED

    clock[0] = 10.0
    store.apply(cmd.AddUser(actor=ALICE, uri=uri, user=User(entity=BOB.user_id)))
    (event,) = drain(planner)
    assert event.version == 2
    local = apply_rfc4575(local.info, local.version, parse_conference_info(event.body))
    assert local.outcome is Outcome.UPDATED
    now = store.get(uri)
    assert now is not None
    assert local.info == rfc4575_view(view_for(Role.PARTICIPANT, BOB.user_id, now.info))
    assert local.info is not None and local.info.user(str(BOB.user_id)) is not None

    clock[0] = 20.0
    store.apply(cmd.DeleteConference(actor=ALICE, uri=uri))
    (final,) = drain(planner)
    assert final.reason is TerminationReason.NORESOURCE
    assert planner.subscribers() == []
    assert batches  # the store really published
