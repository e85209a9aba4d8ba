"""Reservations activate at their start and end at their end (RFC 5239 s7.3-7.4); time
comes in through Tick(now), never from a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from focus.core import commands as cmd
from focus.core.changes import (
    ConferenceActivated,
    ConferenceDeactivated,
    ConferenceDeleted,
    ConferenceEnded,
)
from focus.core.errors import CoreError, ErrorKind
from focus.core.state import Lifecycle
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceTime,
    ConferenceTimeEntry,
)
from tests.focus.core.conftest import ALICE, BOB, vcalendar


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


def ical(*lines: str) -> str:
    return vcalendar("DTSTAMP:20300101T000000Z", *lines)


def scheduled(*lines: str) -> ConferenceInfo:
    return ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            display_text="weekly",
            conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=ical(*lines)),)),
        ),
    )


ONCE = ("DTSTART:20300107T090000Z", "DURATION:PT1H")
# Mondays 09:00-10:00 from 7 Jan 2030, four times
WEEKLY = ("DTSTART:20300107T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4")


def lifecycle(store: ConferenceStore, uri: str) -> Lifecycle:
    obj = store.get(uri)
    assert obj is not None
    return obj.lifecycle


def test_reservation_activates_and_ends(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(1)))
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*ONCE)))[0].uri
    obj = store.get(uri)
    assert obj is not None and obj.lifecycle is Lifecycle.RESERVED
    assert obj.info.conference_state is not None and obj.info.conference_state.active is False
    assert store.next_deadline(at(1)) == at(7, 9)
    assert store.apply(cmd.Tick(now=at(7, 8, 59))) == []
    changes = store.apply(cmd.Tick(now=at(7, 9)))
    assert [type(c) for c in changes] == [ConferenceActivated]
    assert changes[0].after is not None and changes[0].after.info.conference_state is not None
    assert changes[0].after.info.conference_state.active is True
    assert store.next_deadline(at(7, 9, 30)) == at(7, 10)
    changes = store.apply(cmd.Tick(now=at(7, 10)))
    assert [type(c) for c in changes] == [ConferenceEnded]
    assert lifecycle(store, uri) is Lifecycle.ENDED
    assert store.next_deadline(at(8)) is None
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AddUser(actor=BOB, uri=uri))
    assert exc.value.kind is ErrorKind.CONFLICT


def test_without_tick_a_reservation_waits(store: ConferenceStore) -> None:
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*ONCE)))[0].uri
    assert lifecycle(store, uri) is Lifecycle.RESERVED
    # the app asks when to tick: a mismatch is due at once
    assert store.next_deadline(at(7, 9, 30)) == at(7, 9, 30)


def test_recurring_series_and_sidebars_end_with_occurrence(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(1)))
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*WEEKLY)))[0].uri
    store.apply(cmd.Tick(now=at(7, 9, 5)))
    assert lifecycle(store, uri) is Lifecycle.ACTIVE
    store.apply(cmd.AddUser(actor=ALICE, uri=uri))
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=uri, by_ref=True))[0].uri
    changes = store.apply(cmd.Tick(now=at(7, 10)))
    assert {type(c) for c in changes} == {ConferenceDeactivated, ConferenceDeleted}
    assert store.get(sidebar) is None  # a sidebar never outlives its parent's occurrence
    assert lifecycle(store, uri) is Lifecycle.RESERVED
    assert store.next_deadline(at(7, 10)) == at(14, 9)
    store.apply(cmd.Tick(now=at(14, 9)))
    assert lifecycle(store, uri) is Lifecycle.ACTIVE
    store.apply(cmd.Tick(now=at(28, 10)))
    assert lifecycle(store, uri) is Lifecycle.ENDED


def test_time_never_runs_backwards(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(10)))
    store.apply(cmd.Tick(now=at(5)))
    assert store.now == at(10)
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.Tick(now=datetime(2030, 1, 1)))
    assert exc.value.kind is ErrorKind.BAD_REQUEST


def test_invalid_ical_is_invalid_conf_info(store: ConferenceStore) -> None:
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.CreateConference(actor=ALICE, info=scheduled("DTSTART:20300107T090000Z")))
    assert exc.value.kind is ErrorKind.INVALID_CONF_INFO
    assert "DTEND" in exc.value.message


def test_alter_sub_range_of_series(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(1)))
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*WEEKLY)))[0].uri
    # the second and third Mondays move to 10:00 (RFC 5239 s7.4's example)
    moved = ConferenceInfo(
        entity=uri,
        conference_description=ConferenceDescription(
            conference_time=ConferenceTime(
                entries=(
                    ConferenceTimeEntry(
                        base=ical(
                            "DTSTART:20300107T100000Z",
                            "DURATION:PT1H",
                            "RRULE:FREQ=WEEKLY;COUNT=4",
                        )
                    ),
                )
            )
        ),
    )
    changes = store.apply(
        cmd.AlterSeries(actor=ALICE, uri=uri, start=at(14), end=at(22), patch=moved)
    )
    child = changes[0].uri
    child_obj = store.get(child)
    assert child_obj is not None and child_obj.linked and child_obj.parent == uri
    assert child_obj.series_range is not None
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.DeleteConference(actor=ALICE, uri=uri))
    assert exc.value.kind is ErrorKind.DELETE_PARENT_FAILED
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AlterSeries(actor=ALICE, uri=uri, start=at(20), end=at(25), patch=moved))
    assert exc.value.kind is ErrorKind.CONFLICT

    def states(now: datetime) -> tuple[Lifecycle, Lifecycle]:
        store.apply(cmd.Tick(now=now))
        return lifecycle(store, uri), lifecycle(store, child)

    assert states(at(7, 9, 30)) == (Lifecycle.ACTIVE, Lifecycle.RESERVED)
    assert states(at(14, 9, 30)) == (Lifecycle.RESERVED, Lifecycle.RESERVED)  # given away
    assert states(at(14, 10, 30)) == (Lifecycle.RESERVED, Lifecycle.ACTIVE)
    assert states(at(21, 10, 30)) == (Lifecycle.RESERVED, Lifecycle.ACTIVE)
    assert states(at(28, 9, 30)) == (Lifecycle.ACTIVE, Lifecycle.ENDED)


def test_alter_needs_recurring_and_valid_range(store: ConferenceStore) -> None:
    once = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*ONCE)))[0].uri
    patch = ConferenceInfo(entity=once)
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AlterSeries(actor=ALICE, uri=once, start=at(1), end=at(2), patch=patch))
    assert exc.value.kind is ErrorKind.CONFLICT
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AlterSeries(actor=ALICE, uri=once, start=at(2), end=at(1), patch=patch))
    assert exc.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(CoreError) as exc:
        store.apply(
            cmd.AlterSeries(
                actor=BOB, uri=once, start=at(1), end=at(1) + timedelta(days=1), patch=patch
            )
        )
    assert exc.value.kind is ErrorKind.FORBIDDEN


def test_rfc6504_weekly_example_becomes_active(store: ConferenceStore) -> None:
    from pathlib import Path

    base = (Path(__file__).parent / "vectors" / "rfc6504-weekly-base.txt").read_text()
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=base),))
        ),
    )
    store.apply(cmd.Tick(now=datetime(2010, 1, 27, 14, 0, tzinfo=UTC)))
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=info))[0].uri
    assert lifecycle(store, uri) is Lifecycle.RESERVED
    store.apply(cmd.Tick(now=datetime(2010, 2, 3, 15, 0, tzinfo=UTC)))
    assert lifecycle(store, uri) is Lifecycle.ACTIVE


def test_rescheduling_moves_the_lifecycle(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(1)))
    uri = store.apply(cmd.CreateConference(actor=ALICE))[0].uri  # ad hoc: active
    store.apply(cmd.AddUser(actor=ALICE, uri=uri))
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=uri, by_ref=False))[0].uri
    later = ConferenceInfo(
        entity=uri,
        conference_description=ConferenceDescription(
            conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=ical(*ONCE)),))
        ),
    )
    changes = store.apply(cmd.UpdateConference(actor=ALICE, uri=uri, patch=later))
    assert ConferenceDeactivated in [type(c) for c in changes]
    assert lifecycle(store, uri) is Lifecycle.RESERVED
    assert store.get(sidebar) is None
    unscheduled = ConferenceInfo(
        entity=uri,
        conference_description=ConferenceDescription(cleared=frozenset({"conference_time"})),
    )
    changes = store.apply(cmd.UpdateConference(actor=ALICE, uri=uri, patch=unscheduled))
    assert ConferenceActivated in [type(c) for c in changes]
    assert lifecycle(store, uri) is Lifecycle.ACTIVE


def test_an_ended_conference_can_be_rescheduled(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(1)))
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*ONCE)))[0].uri
    store.apply(cmd.Tick(now=at(8)))
    assert lifecycle(store, uri) is Lifecycle.ENDED
    again = ConferenceInfo(
        entity=uri,
        conference_description=ConferenceDescription(
            conference_time=ConferenceTime(
                entries=(
                    ConferenceTimeEntry(base=ical("DTSTART:20300110T090000Z", "DURATION:PT1H")),
                )
            )
        ),
    )
    changes = store.apply(cmd.UpdateConference(actor=ALICE, uri=uri, patch=again))
    assert ConferenceDeactivated in [type(c) for c in changes]
    assert lifecycle(store, uri) is Lifecycle.RESERVED
    store.apply(cmd.Tick(now=at(10, 9, 15)))
    assert lifecycle(store, uri) is Lifecycle.ACTIVE


def test_alter_cannot_change_enforced_elements(store: ConferenceStore) -> None:
    uri = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*WEEKLY)))[0].uri
    patch = ConferenceInfo(
        entity=uri, conference_description=ConferenceDescription(maximum_user_count=3)
    )
    with pytest.raises(CoreError) as exc:
        store.apply(cmd.AlterSeries(actor=ALICE, uri=uri, start=at(14), end=at(22), patch=patch))
    assert exc.value.kind is ErrorKind.PARENT_ENFORCED
    assert [o.uri for o in store.list_conferences(ALICE)] == [uri]


def test_clock_stepping_back_does_not_spin(store: ConferenceStore) -> None:
    store.apply(cmd.Tick(now=at(1)))
    store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*ONCE)))
    store.apply(cmd.Tick(now=at(7, 9, 30)))  # active
    # the wall clock steps back an hour: the deadline is the occurrence's end, not "now"
    assert store.next_deadline(at(7, 8, 30)) == at(7, 10)


def test_explicit_cloning_from_a_reservation(store: ConferenceStore) -> None:
    # RFC 5239 s7.1: any conference object, a registered (reserved) one too, can be cloned.
    store.apply(cmd.Tick(now=at(1)))
    reservation = store.apply(cmd.CreateConference(actor=ALICE, info=scheduled(*WEEKLY)))[0].uri
    assert lifecycle(store, reservation) is Lifecycle.RESERVED
    independent = store.apply(cmd.CreateConference(actor=ALICE, clone_from=reservation))[0]
    linked = store.apply(cmd.CreateConference(actor=ALICE, clone_from=reservation, linked=True))[0]
    for change in (independent, linked):
        assert change.after is not None
        desc = change.after.info.conference_description
        assert desc is not None and desc.display_text == "weekly"
        assert desc.conference_time is not None  # the schedule is cloned too
        assert change.after.lifecycle is Lifecycle.RESERVED
    assert independent.after is not None and not independent.after.linked
    assert linked.after is not None and linked.after.linked
    # both follow their own schedule from the next Tick on
    store.apply(cmd.Tick(now=at(7, 9, 30)))
    assert {lifecycle(store, u) for u in (reservation, independent.uri, linked.uri)} == {
        Lifecycle.ACTIVE
    }
    with pytest.raises(CoreError) as exc:  # the linked child keeps the parent alive
        store.apply(cmd.DeleteConference(actor=ALICE, uri=reservation))
    assert exc.value.kind is ErrorKind.DELETE_PARENT_FAILED
