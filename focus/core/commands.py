"""Commands: the only way to ask the core for a change (``ConferenceStore.apply``).

Each is a small frozen dataclass naming what the actor wants; the RFC 6503 operation it
serves is in its docstring.  Every command carries the :class:`Actor`; every command aimed at
a conference or sidebar carries the conference ``password`` the requester gave (RFC 6501
s4.2.6; RFC 6503 s5.1 wants it in every request whose target is protected), and updates
may carry the ``expected_version`` the client worked on (RFC 6503 s4.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from focus.core.policy import Actor
from focus.core.state import Enforceable
from focus.xcon.model import ConferenceInfo, User, Users


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateConference:
    """confRequest/create (RFC 6503 s5.3.4).

    * neither ``clone_from`` nor ``info``: a clone of the system's default blueprint;
    * ``clone_from`` (a blueprint, a reservation or an active conference): explicit cloning;
      ``linked`` keeps the link to the parent (a dependent child, RFC 5239 s7.1);
    * ``info``: direct creation, i.e. implicit cloning of the default blueprint (RFC 5239
      s7.1): the blueprint's document with ``info`` applied as an update would apply it
      (AUTO_GENERATE_X placeholders replaced, RFC 6503 s4.3; users without an entity get an
      XCON-USERID).  What the document leaves out comes from the blueprint; an
      <available-media> it gives replaces the blueprint's (so a video-only request gets no
      blueprint audio), taking the blueprint's floors for dropped media with it.
    Whatever entity the document names, the conference gets a fresh XCON-URI.
    ``enforce`` lists the elements the new object will enforce on its own linked children
    (None: the configured default).
    ``ad_hoc`` marks a conference made by the SIP conference factory (RFC 4579 s5.4): the
    focus ends it when its participants leave; kept on the object (``ConferenceObject.ad_hoc``)
    so the policy survives a restart.
    """

    actor: Actor
    info: ConferenceInfo | None = None
    clone_from: str | None = None
    linked: bool = False
    enforce: frozenset[Enforceable] | None = None
    password: str | None = None
    ad_hoc: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateConference:
    """confRequest/update (RFC 6503 s5.3.4): merge the partial ``patch`` into the object."""

    actor: Actor
    uri: str
    patch: ConferenceInfo
    expected_version: int | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteConference:
    """confRequest/delete (RFC 6503 s5.3.4); refused while linked children depend on it."""

    actor: Actor
    uri: str
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterSeries:
    """Alter a recurring reservation for the sub-range [start, end) only (RFC 5239 s7.4):
    a linked child reservation is cloned with ``patch`` merged in; the parent's
    occurrences starting in the range give way to the child's."""

    actor: Actor
    uri: str
    start: datetime
    end: datetime
    patch: ConferenceInfo
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateUsers:
    """usersRequest/update (RFC 6503 s5.3.5): merge a partial <users> into the object."""

    actor: Actor
    uri: str
    patch: Users
    expected_version: int | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddUser:
    """userRequest/create (RFC 6503 s5.3.6).

    ``user`` None or with the actor's own entity: the actor joins; an entity of another
    user: a third-party add; an entity ``xcon-userid:AUTO_GENERATE_n@domain``: a user new
    to the system (or known by its endpoint URI) gets an XCON-USERID.
    """

    actor: Actor
    uri: str
    user: User | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateUser:
    """userRequest/update (RFC 6503 s5.3.6): merge a partial <user> (e.g. a media status
    change to mute); ``user.entity`` None means the actor's own user."""

    actor: Actor
    uri: str
    user: User
    expected_version: int | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveUser:
    """userRequest/delete (RFC 6503 s5.3.6); ``entity`` None means the actor leaves.
    The user also leaves every sidebar of the conference."""

    actor: Actor
    uri: str
    entity: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSidebar:
    """sidebarByValRequest/create or sidebarByRefRequest/create (RFC 6503 s5.3.8,
    s5.3.10): a linked child of ``parent``, a clone of it unless ``info`` is given."""

    actor: Actor
    parent: str
    by_ref: bool
    info: ConferenceInfo | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSidebar:
    """sidebarByVal/ByRef update (RFC 6503 s5.3.8, s5.3.10)."""

    actor: Actor
    uri: str
    by_ref: bool
    patch: ConferenceInfo
    expected_version: int | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSidebar:
    """sidebarByVal/ByRef delete (RFC 6503 s5.3.8, s5.3.10)."""

    actor: Actor
    uri: str
    by_ref: bool
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateBlueprint:
    """blueprintRequest/create by an administrator (RFC 6503 s5.3.3): a new blueprint from
    ``info`` (AUTO_GENERATE_X replaced) or a copy of blueprint ``clone_from``.  It gets a
    fresh XCON-URI and is persisted like a conference; it may carry no users and no
    conference password (s5.3.1)."""

    actor: Actor
    info: ConferenceInfo | None = None
    clone_from: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateBlueprint:
    """blueprintRequest/update by an administrator: merge ``patch`` into a blueprint
    created over CCMP (blueprint files are the operator's, changed on disk)."""

    actor: Actor
    uri: str
    patch: ConferenceInfo
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteBlueprint:
    """blueprintRequest/delete by an administrator, of a blueprint created over CCMP."""

    actor: Actor
    uri: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Time passed: reservations whose start came become active, those whose end came
    end (RFC 5239 s7.3-7.4).  Issued by the application's timer; ``now`` is UTC-aware."""

    now: datetime


Command = (
    CreateConference
    | UpdateConference
    | DeleteConference
    | AlterSeries
    | UpdateUsers
    | AddUser
    | UpdateUser
    | RemoveUser
    | CreateSidebar
    | UpdateSidebar
    | DeleteSidebar
    | CreateBlueprint
    | UpdateBlueprint
    | DeleteBlueprint
    | Tick
)
