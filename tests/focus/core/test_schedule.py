"""iCalendar bases of conference-time (RFC 6501 s4.2.5) parsed by a real parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from focus.core.schedule import Occurrence, ScheduleError, parse_schedule

VECTORS = Path(__file__).parent / "vectors"


def ical(*lines: str) -> str:
    return (
        "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//t//EN",
                "BEGIN:VEVENT",
                "UID:x",
                "DTSTAMP:20300101T000000Z",
                *lines,
                "END:VEVENT",
                "END:VCALENDAR",
            ]
        )
        + "\r\n"
    )


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_rfc6504_example_base_as_indented_in_xml() -> None:
    schedule = parse_schedule((VECTORS / "rfc6504-weekly-base.txt").read_text())
    assert schedule.start == at(2010, 1, 27, 14, 30)
    assert schedule.duration == timedelta(hours=2)
    assert schedule.recurring
    assert schedule.last_end() is None  # weekly forever
    nxt = schedule.current_or_next(at(2010, 2, 1))
    assert nxt == Occurrence(at(2010, 2, 3, 14, 30), at(2010, 2, 3, 16, 30))
    now = at(2010, 2, 3, 15, 0)
    cur = schedule.current_or_next(now)
    assert cur is not None and cur.contains(now)


def test_single_occurrence() -> None:
    schedule = parse_schedule(ical("DTSTART:20300101T100000Z", "DURATION:PT1H"))
    assert not schedule.recurring
    assert schedule.last_end() == at(2030, 1, 1, 11)
    assert schedule.current_or_next(at(2029, 1, 1)) == Occurrence(
        at(2030, 1, 1, 10), at(2030, 1, 1, 11)
    )
    assert schedule.current_or_next(at(2030, 1, 1, 11)) is None


def test_count_exdate_and_range() -> None:
    schedule = parse_schedule(
        ical(
            "DTSTART:20300107T090000Z",
            "DTEND:20300107T100000Z",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "EXDATE:20300114T090000Z",
        )
    )
    starts = [o.start for o in schedule.occurrences(at(2030, 1, 1), at(2031, 1, 1))]
    assert starts == [at(2030, 1, 7, 9), at(2030, 1, 21, 9), at(2030, 1, 28, 9)]
    assert schedule.last_end() == at(2030, 1, 28, 10)


def test_floating_time_is_utc() -> None:
    schedule = parse_schedule(ical("DTSTART:20300101T100000", "DURATION:PT30M"))
    assert schedule.start == at(2030, 1, 1, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not a calendar", "not iCalendar"),
        ("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "one VEVENT, it has 0"),
        (ical("DURATION:PT1H"), "no DTSTART"),
        (ical("DTSTART:20300101T100000Z"), "neither DTEND nor DURATION"),
        (ical("DTSTART:2030XX", "DURATION:PT1H"), "DTSTART is invalid"),
        (ical("DTSTART:20300101T100000Z", "DTEND:20300101T090000Z"), "ends before it starts"),
        (
            ical("DTSTART:20300101T100000Z", "DTEND:20300101T110000Z", "DURATION:PT1H"),
            "both DTEND and DURATION",
        ),
        (ical("DTSTART:20300101T100000Z", "DURATION:PT1H", "RRULE:FREQ=SOMETIMES"), "RRULE"),
        ("BEGIN:VCALENDAR\r\n" + "X:" + "a" * 70000 + "\r\nEND:VCALENDAR\r\n", "exceeds"),
    ],
)
def test_invalid_bases(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(text)


def test_zoned_series_keeps_local_time_across_dst() -> None:
    schedule = parse_schedule(
        ical(
            "DTSTART;TZID=Europe/Berlin:20300318T090000",
            "DURATION:PT1H",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        )
    )
    starts = [o.start for o in schedule.occurrences(at(2030, 1, 1), at(2031, 1, 1))]
    # CET (UTC+1) before 31 March 2030, CEST (UTC+2) after
    assert starts == [at(2030, 3, 18, 8), at(2030, 3, 25, 8), at(2030, 4, 1, 7)]
    assert all(s.tzinfo is UTC for s in starts)
    assert schedule.last_end() == at(2030, 4, 1, 8)
