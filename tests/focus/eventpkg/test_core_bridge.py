"""The planner fed by a real conference store (SQLite file on disk)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core.changes import Change
from focus.core.core import CoreConfig
from focus.core.policy import Actor
from focus.core.store import ConferenceStore
from focus.eventpkg.bodies import Outcome, apply_rfc4575, rfc4575_view
from focus.eventpkg.core_bridge import feed_changes
from focus.eventpkg.planner import (
    NotifyPlanner,
    PlannerConfig,
    SendNotify,
    TerminationReason,
)
from focus.eventpkg.policy import view_for
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceTime,
    ConferenceTimeEntry,
    Role,
    User,
)
from tests.focus.core.conftest import vcalendar

ALICE = Actor("xcon-userid:alice@example.com", Role.USER)
BOB = Actor("xcon-userid:bob@example.com", Role.PARTICIPANT)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConferenceStore]:
    s = ConferenceStore.open(tmp_path / "state", CoreConfig(domain="example.com"), scrypt_n=2**4)
    for actor in (ALICE, BOB):
        assert actor.user_id is not None
        name = actor.user_id.split(":")[1].split("@")[0]
        s.accounts.add(name, actor.role, f"pw-{name}")
    yield s
    s.close()


def drain(planner: NotifyPlanner) -> list[SendNotify]:
    events = []
    while (event := planner.next_event()) is not None:
        events.append(event)
    return events


def test_store_changes_reach_the_subscriber(store: ConferenceStore) -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=5.0))
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


def _weekly() -> ConferenceInfo:
    ical = vcalendar(
        "DTSTAMP:20300101T000000Z",
        "DTSTART:20300107T090000Z",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;COUNT=4",
    )
    return ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            display_text="weekly",
            conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=ical),)),
        ),
    )


def test_a_conference_deactivated_by_its_schedule_ends_subscriptions_deactivated(
    store: ConferenceStore,
) -> None:
    """RFC 6665 s4.2.2: a recurring conference between two occurrences is a reservation
    again; its subscribers get ``deactivated`` (subscribe again), its sidebars'
    subscribers ``noresource`` (the sidebar is gone)."""
    planner = NotifyPlanner(PlannerConfig(min_interval=0.0))
    store.subscribe(lambda changes: feed_changes(planner, changes, 0.0))
    store.apply(cmd.Tick(now=datetime(2030, 1, 1, tzinfo=UTC)))
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=_weekly()))[0].uri
    store.apply(cmd.Tick(now=datetime(2030, 1, 7, 9, 5, tzinfo=UTC)))
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=uri, by_ref=True))[0].uri
    for sub_id, target in (("main", uri), ("side", sidebar)):
        obj = store.get(target)
        assert obj is not None
        planner.add_subscriber(sub_id, target, obj.info, 0.0)
        planner.notify_completed(sub_id, True, 0.0)
    drain(planner)
    store.apply(cmd.Tick(now=datetime(2030, 1, 7, 10, 0, tzinfo=UTC)))
    reasons = {e.sub_id: e.reason for e in drain(planner)}
    assert reasons == {"main": TerminationReason.DEACTIVATED, "side": TerminationReason.NORESOURCE}
    assert planner.subscribers() == []
    # the next occurrence is an activation, not a termination: a new subscriber stays
    obj = store.get(uri)
    assert obj is not None
    planner.add_subscriber("again", uri, obj.info, 0.0)
    planner.notify_completed("again", True, 0.0)
    store.apply(cmd.Tick(now=datetime(2030, 1, 14, 9, 0, tzinfo=UTC)))
    (event,) = drain(planner)
    assert event.sub_id == "again" and event.reason is None
    assert planner.subscribers() == ["again"]
