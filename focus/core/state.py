"""The core's view of one conference object: the XCON document plus what the system keeps
about it (kind, version, place in the cloning tree, owner, lifecycle).

Frozen: a snapshot handed to a reader can never change under it.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime

from focus.xcon.model import ConferenceInfo, ConferenceState


class ObjectKind(enum.StrEnum):
    """What a conference object is (RFC 6503 s4.1 targets; RFC 5239 s7.1 cloning tree)."""

    BLUEPRINT = "blueprint"
    """A template, root of cloning trees (RFC 5239 s7.1): a static file, or created over
    CCMP by an administrator (RFC 6503 s5.3.3)."""
    CONFERENCE = "conference"
    """An active or registered (reserved) conference (RFC 6503 s5.3.4)."""
    SIDEBAR_BY_VAL = "sidebar-by-val"
    """A sidebar embedded in its parent's <sidebars-by-val> (RFC 6503 s5.3.8)."""
    SIDEBAR_BY_REF = "sidebar-by-ref"
    """A sidebar referenced from its parent's <sidebars-by-ref> (RFC 6503 s5.3.10)."""

    @property
    def is_sidebar(self) -> bool:
        """Whether this kind is one of the two sidebar kinds."""
        return self in (ObjectKind.SIDEBAR_BY_VAL, ObjectKind.SIDEBAR_BY_REF)


class Lifecycle(enum.StrEnum):
    """Stage of a conference (RFC 5239 s7.3): reserved, then active, finally ended."""

    RESERVED = "reserved"
    """Registered, waiting for its (next) scheduled start; no media resources."""
    ACTIVE = "active"
    """Running: the focus admits users and the mixer mixes."""
    ENDED = "ended"
    """Its schedule is over; kept (until deleted) so it can be read and cloned."""


class Enforceable(enum.StrEnum):
    """Elements a parent can mark "parent enforceable" for its linked children
    (RFC 5239 s7.1; RFC 6503 s5.4 code 426)."""

    MAXIMUM_USER_COUNT = "maximum-user-count"
    AVAILABLE_MEDIA = "available-media"
    CONF_URIS = "conf-uris"
    """Includes the conference passwords."""
    CONFERENCE_TIME = "conference-time"
    ALLOW_SIDEBARS = "allow-sidebars"
    JOIN_HANDLING = "join-handling"
    USER_ADMISSION_POLICY = "user-admission-policy"
    ALLOWED_USERS_LIST = "allowed-users-list"
    DENY_USERS_LIST = "deny-users-list"
    FLOOR_INFORMATION = "floor-information"


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRange:
    """The sub-range [start, end) of a recurring parent that a linked child reservation
    replaces (RFC 5239 s7.4)."""

    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in the range."""
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceObject:
    """One node of the cloning tree, as committed.

    ``info.entity`` is always ``uri``; ``info.version`` mirrors ``version`` and
    ``info.conference_state.active`` mirrors ``lifecycle`` so the document alone tells
    a reader everything.
    """

    uri: str
    kind: ObjectKind
    version: int
    info: ConferenceInfo
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    parent: str | None = None
    """The object this one was cloned from (cloning-parent / sidebar-parent)."""
    linked: bool = False
    """True when the link to the parent is kept: the parent's enforced elements apply,
    and the parent cannot be deleted while this object exists (RFC 5239 s7.1)."""
    enforce: frozenset[Enforceable] = frozenset()
    """The elements this object enforces on its own linked children."""
    owner: str | None = None
    """XCON-USERID of the creator, the conference's moderator."""
    series_range: SeriesRange | None = None
    name: str | None = None
    """For blueprints: the short name (AudioRoom)."""
    editable: bool = False
    """For blueprints: created over CCMP by an administrator, so it is persisted and may be
    updated and deleted over CCMP; blueprint files are static (RFC 5239 s7.1)."""
    ad_hoc: bool = False
    """For conferences: created by the SIP conference factory (RFC 4579 s5.4), so it ends
    when its participants leave (the focus's profile says: the last one, or its creator).
    Persisted, so a restarted focus keeps the policy; clones do not inherit it."""

    def with_info(self, info: ConferenceInfo) -> ConferenceObject:
        """A copy with a new document (entity, version and active kept consistent)."""
        return dataclasses.replace(self, info=_stamp(info, self.uri, self.version, self.lifecycle))

    def is_password_protected(self) -> bool:
        """Whether any conf-uris entry carries a conference-password (RFC 6501 s4.2.6)."""
        return bool(passwords(self.info))


def passwords(info: ConferenceInfo) -> tuple[str, ...]:
    """Every conference-password in the conf-uris of ``info``."""
    desc = info.conference_description
    if desc is None or desc.conf_uris is None:
        return ()
    return tuple(p for e in desc.conf_uris.entries for p in e.conference_passwords)


def _stamp(info: ConferenceInfo, uri: str, version: int, lifecycle: Lifecycle) -> ConferenceInfo:
    state = info.conference_state or ConferenceState()
    user_count = len(info.users.users) if info.users is not None else 0
    state = dataclasses.replace(state, active=lifecycle is Lifecycle.ACTIVE, user_count=user_count)
    return dataclasses.replace(info, entity=uri, version=version, conference_state=state)
