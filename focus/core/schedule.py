"""Scheduled conferences (RFC 5239 s7.3-7.4): the iCalendar base of a conference-time entry.

A conference-time <entry> carries in <base> an iCalendar object (RFC 6501 s4.2.5, RFC 5545)
with one VEVENT: DTSTART, DTEND or DURATION, optionally RRULE/RDATE/EXDATE for a recurring
series.  It is parsed by the ``icalendar`` package (never by hand) and expanded with
``dateutil.rrule``.  Floating times are taken as UTC; zoned times (TZID) are expanded in
their zone; occurrences are reported in UTC.

Pure: callers pass ``now``; nothing here reads a clock.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import icalendar
from dateutil import rrule  # type: ignore[import-untyped]

#: A series is expanded at most this far; an unbounded RRULE is fine, a runaway loop is not.
MAX_OCCURRENCES_SCANNED = 10_000
_MAX_BASE_CHARS = 64 * 1024
_CONTENT_LINE = re.compile(r"^([A-Za-z0-9-]+(?:;[^:]*)?):\s*(.*)$")


class ScheduleError(ValueError):
    """The conference-time base is not a usable iCalendar object (the client's fault)."""


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a scheduled conference: [start, end)."""

    start: datetime
    end: datetime

    def contains(self, now: datetime) -> bool:
        """Whether ``now`` falls inside this occurrence."""
        return self.start <= now < self.end


@dataclass(frozen=True, slots=True)
class Schedule:
    """The occurrences described by one iCalendar VEVENT."""

    start: datetime
    duration: timedelta
    rrule_text: str | None
    rdates: tuple[datetime, ...]
    exdates: frozenset[datetime]

    @property
    def recurring(self) -> bool:
        """Whether more than one occurrence may exist."""
        return self.rrule_text is not None or bool(self.rdates)

    def _starts(self) -> Any:
        """Occurrence start times in order (a lazy iterable)."""
        rules = rrule.rruleset()
        if self.rrule_text is not None:
            rules.rrule(rrule.rrulestr(self.rrule_text, dtstart=self.start))
        else:
            rules.rdate(self.start)
        for extra in self.rdates:
            rules.rdate(extra)
        for skipped in self.exdates:
            rules.exdate(skipped)
        return rules

    def occurrences(self, after: datetime, until: datetime | None = None) -> list[Occurrence]:
        """Occurrences ending after ``after`` and starting before ``until`` (bounded scan)."""
        found: list[Occurrence] = []
        for index, local_start in enumerate(self._starts()):
            if index >= MAX_OCCURRENCES_SCANNED:
                break
            if until is not None and local_start >= until:
                break
            start = local_start.astimezone(UTC)
            occurrence = Occurrence(start, start + self.duration)
            if occurrence.end > after:
                found.append(occurrence)
                if until is None:
                    break
        return found

    def current_or_next(self, now: datetime) -> Occurrence | None:
        """The occurrence running at ``now``, else the next one, else None (series over)."""
        found = self.occurrences(_utc(now))
        return found[0] if found else None

    def last_end(self) -> datetime | None:
        """When the last occurrence ends; None for an unbounded series."""
        last: datetime | None = None
        for index, start in enumerate(self._starts()):
            if index >= MAX_OCCURRENCES_SCANNED:
                return None
            last = start
        return None if last is None else last.astimezone(UTC) + self.duration


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _as_datetime(value: object, what: str) -> datetime:
    # A zoned time keeps its zone: a weekly 09:00 Europe/Berlin stays 09:00 local across
    # daylight saving changes when the rule is expanded; occurrences come out in UTC.
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=UTC)
    raise ScheduleError(f"{what} is not a date or date-time")


def _normalise(text: str) -> str:
    """Undo XML indentation of the base (RFC 6504 s5.1 style): a line indented deeper than
    the first is a folded continuation; whitespace after a property's colon is dropped."""
    lines = [line.rstrip() for line in textwrap.dedent(text.strip("\n")).splitlines()]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ScheduleError("the conference-time base is empty")
    body_indent = len(lines[0]) - len(lines[0].lstrip())
    unfolded: list[str] = []
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if unfolded and indent > body_indent:
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line.strip())
    fixed = []
    for line in unfolded:
        match = _CONTENT_LINE.match(line)
        fixed.append(f"{match.group(1)}:{match.group(2)}" if match else line)
    return "\r\n".join(fixed) + "\r\n"


def parse_schedule(base: str) -> Schedule:
    """Parse and validate a conference-time base; ScheduleError says what is wrong."""
    if len(base) > _MAX_BASE_CHARS:
        raise ScheduleError(f"the conference-time base exceeds {_MAX_BASE_CHARS} characters")
    try:
        calendar = icalendar.Calendar.from_ical(_normalise(base))
    except ValueError as exc:
        raise ScheduleError(f"the conference-time base is not iCalendar: {exc}") from exc
    if calendar.name != "VCALENDAR":
        raise ScheduleError(f"the conference-time base is a {calendar.name}, not a VCALENDAR")
    events: list[Any] = calendar.walk("VEVENT")
    if len(events) != 1:
        raise ScheduleError(f"the conference-time base needs one VEVENT, it has {len(events)}")
    event: Any = events[0]  # property values are a wide union; checked one by one below
    broken = list(calendar.errors) + list(event.errors)
    if broken:
        name, problem = broken[0]
        raise ScheduleError(f"the VEVENT property {name} is invalid: {problem}")
    if "DTSTART" not in event:
        raise ScheduleError("the VEVENT has no DTSTART")
    start = _as_datetime(event["DTSTART"].dt, "DTSTART")
    if "DTEND" in event and "DURATION" in event:
        raise ScheduleError("the VEVENT has both DTEND and DURATION (RFC 5545 s3.6.1)")
    if "DTEND" in event:
        duration = _as_datetime(event["DTEND"].dt, "DTEND") - start
    elif "DURATION" in event:
        value = event["DURATION"].dt
        if not isinstance(value, timedelta):
            raise ScheduleError("DURATION is not a duration")
        duration = value
    else:
        raise ScheduleError("the VEVENT has neither DTEND nor DURATION: the end is unknown")
    if duration <= timedelta(0):
        raise ScheduleError("the VEVENT ends before it starts")
    rrule_text: str | None = None
    if "RRULE" in event:
        rules = event["RRULE"]
        if isinstance(rules, list):
            raise ScheduleError("the VEVENT has more than one RRULE")
        rrule_text = rules.to_ical().decode("ascii")
        try:
            rrule.rrulestr(rrule_text, dtstart=start)
        except (ValueError, TypeError) as exc:
            raise ScheduleError(f"the RRULE is invalid: {exc}") from exc
    rdates = _date_list(event.get("RDATE"), "RDATE")
    exdates = frozenset(_date_list(event.get("EXDATE"), "EXDATE"))
    return Schedule(start, duration, rrule_text, tuple(sorted(rdates)), exdates)


def _date_list(prop: object, what: str) -> list[datetime]:
    if prop is None:
        return []
    props = prop if isinstance(prop, list) else [prop]
    found: list[datetime] = []
    for item in props:
        dts = getattr(item, "dts", None)
        if dts is None:
            raise ScheduleError(f"{what} is not a list of dates")
        found.extend(_as_datetime(d.dt, what) for d in dts)
    return found
