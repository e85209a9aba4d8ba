"""Committed changes: what ``ConferenceStore.apply`` returns and subscribers receive.

One change per conference object touched, in the order they happened.  Each carries the
object's new ``version`` and both snapshots (``before`` None on creation, ``after`` None
on deletion), so a notifier can send full or partial state (RFC 4575 s4.6, RFC 6502) and a
media driver can diff users and media.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from focus.core.state import ConferenceObject


class Origin(enum.Enum):
    """Which front end asked for a change, so a front end can tell its own changes from
    everyone else's (RFC 5239 s4: one conference state, several ways to change it)."""

    CCMP = "ccmp"  # an RFC 6503 request
    SIP = "sip"  # the SIP focus: calls, REFER, keypad, its own repairs
    CLOCK = "clock"  # a reservation's start or end (RFC 5239 s7.3)
    LOCAL = "local"  # an operator's tool in this process (python -m focus user ...), tests


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """Something happened to the conference object ``uri``; it is now at ``version``;
    ``origin`` says which front end's command caused it."""

    uri: str
    version: int
    before: ConferenceObject | None
    after: ConferenceObject | None
    origin: Origin = Origin.LOCAL


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceCreated(Change):
    """A conference, reservation or sidebar object came into being."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceUpdated(Change):
    """The document of an object changed (description, users list policy, sidebars, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceDeleted(Change):
    """The object is gone (``version`` is one past its last)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceActivated(Change):
    """A reservation reached its start: it is active now (RFC 5239 s7.3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceDeactivated(Change):
    """The conference is reserved (inactive) again: an occurrence of a recurring series
    ended and it waits for the next, or it was rescheduled to a later time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceEnded(Change):
    """The last occurrence ended: the conference is over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlueprintCreated(Change):
    """An administrator created a blueprint (RFC 6503 s5.3.3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlueprintUpdated(Change):
    """An administrator changed a blueprint (clones made earlier are not affected)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlueprintDeleted(Change):
    """An administrator deleted a blueprint."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAdded(Change):
    """``user`` was added to the conference."""

    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserUpdated(Change):
    """``user`` changed (roles, endpoints, media status such as mute)."""

    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRemoved(Change):
    """``user`` left or was removed."""

    user: str
