"""The XCON conference object (RFC 6501) as frozen, typed values.

One set of types serves three uses:

* a full conference object (what the core stores and CCMP retrieves),
* a partial document (a CCMP "update" carries only what changes; RFC 6503
  s5.3.4), merged into a full one by :mod:`focus.xcon.merge`,
* a conference event package body (RFC 4575/6502), where the ``state``
  and ``version`` attributes matter.

Conventions, applied to every class:

* An optional XML element that is absent is ``None``; a repeated element
  is a tuple (empty when none is present).
* ``cleared`` names the fields whose element was present but *empty*
  (``<display-text/>``).  RFC 6503 s5.3.4 (Figure 8) uses exactly that to
  remove a value in an update, so a partial document must be able to say
  it; in a full document an empty element simply means "no value".
* ``extensions`` keeps child elements this model does not know (other
  namespaces per RFC 6501 s6, or misplaced ones) as serialized XML
  strings in document order; ``extension_attributes`` keeps unknown
  attributes as ``(clark_name, value)`` pairs.  Both round-trip.
* Enumerations of RFC 6501 are open ("free-text-extension" in the
  schema): a field typed ``SomeEnum | str`` holds the enum member for a
  registered value and the raw string for an extension value.  Since the
  enums are ``StrEnum``, ``status == "connected"`` works either way.

Times are :class:`datetime.datetime` (aware when the document says
``Z`` or an offset).  No validation beyond types happens here; the codec
checks what it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "CI_NS",
    "XCON_NS",
    "AllowedUsersList",
    "Anonymity",
    "AvailableMedia",
    "CallInfo",
    "Codec",
    "CodecDecision",
    "CodecPolicy",
    "Codecs",
    "ConferenceDescription",
    "ConferenceFloorPolicy",
    "ConferenceInfo",
    "ConferenceMedium",
    "ConferenceState",
    "ConferenceTime",
    "ConferenceTimeEntry",
    "Controls",
    "DenyUsersList",
    "DisconnectionMethod",
    "Endpoint",
    "EndpointStatus",
    "Execution",
    "Floor",
    "FloorAlgorithm",
    "FloorInformation",
    "FloorRequestHandling",
    "HostInfo",
    "JoinHandling",
    "JoiningMethod",
    "Media",
    "MediaStatus",
    "Mixer",
    "MixerFloor",
    "MixerName",
    "MixingMode",
    "MixingOffset",
    "PersistentList",
    "PersistentUser",
    "Role",
    "SidebarsByVal",
    "SipDialogId",
    "State",
    "Target",
    "TargetMethod",
    "UriEntry",
    "Uris",
    "User",
    "UserAdmissionPolicy",
    "Users",
    "VideoLayout",
    "XconElement",
    "effective_role",
]

#: Namespace of the RFC 4575 elements (RFC 4575 s4.2).
CI_NS = "urn:ietf:params:xml:ns:conference-info"
#: Namespace of the elements RFC 6501 adds (RFC 6501 s3.2).
XCON_NS = "urn:ietf:params:xml:ns:xcon-conference-info"


# --------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------


class State(StrEnum):
    """'state' of a partial-notification element: RFC 4575 s4.4 (closed set)."""

    FULL = "full"
    PARTIAL = "partial"
    DELETED = "deleted"


class EndpointStatus(StrEnum):
    """<endpoint>/<status>: RFC 4575 s5.7.3, RFC 6501 s5 endpoint-status-type."""

    PENDING = "pending"
    DIALING_OUT = "dialing-out"
    DIALING_IN = "dialing-in"
    ALERTING = "alerting"
    ON_HOLD = "on-hold"
    CONNECTED = "connected"
    MUTED_VIA_FOCUS = "muted-via-focus"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


class JoiningMethod(StrEnum):
    """<joining-method>: RFC 4575 s5.7.4."""

    DIALED_IN = "dialed-in"
    DIALED_OUT = "dialed-out"
    FOCUS_OWNER = "focus-owner"


class DisconnectionMethod(StrEnum):
    """<disconnection-method>: RFC 4575 s5.7.6."""

    DEPARTED = "departed"
    BOOTED = "booted"
    FAILED = "failed"
    BUSY = "busy"


class MediaStatus(StrEnum):
    """<status> of a medium or media stream: RFC 4575 s5.8.5."""

    RECVONLY = "recvonly"
    SENDONLY = "sendonly"
    SENDRECV = "sendrecv"
    INACTIVE = "inactive"


class Role(StrEnum):
    """<roles>/<entry> and 'required-participant': RFC 6501 s4.6.5.2, s4.2.5; also the
    role of an account (RFC 5239 s5.2: a user's role gives the operations she may perform).

    The one role type of the system.  Members are listed most privileged first, in the order
    RFC 6501 s4.6.5.2 names them; ``rank`` says it as a number.  The RFC leaves the roles'
    semantics to policy: :mod:`focus.core.policy` is ours."""

    ADMINISTRATOR = "administrator"
    MODERATOR = "moderator"
    USER = "user"
    PARTICIPANT = "participant"
    OBSERVER = "observer"
    NONE = "none"

    @property
    def rank(self) -> int:
        """Higher is more privileged (ADMINISTRATOR 5 ... NONE 0)."""
        return len(_ROLE_ORDER) - 1 - _ROLE_ORDER.index(self)

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (case-insensitive); ValueError naming the valid ones."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            valid = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {text!r}; expected one of {valid}") from None


_ROLE_ORDER: tuple[Role, ...] = tuple(Role)


def effective_role(roles: Iterable[Role | str] | None) -> Role:
    """The role someone acts with, given every role she holds (her account's, her <roles>
    entries in a conference, moderator for its creator...): the most privileged of them.
    Strings are read as RFC 6501 values; an extension role this system does not know
    (RFC 6501 s4.6.5.2 allows them) grants nothing.  NONE when she holds none."""
    best = Role.NONE
    for given in roles or ():
        try:
            role = given if isinstance(given, Role) else Role(str(given).strip().lower())
        except ValueError:
            continue
        if role.rank > best.rank:
            best = role
    return best


class MixingMode(StrEnum):
    """<xcon:mixing-mode>: RFC 6501 s4.2.7."""

    MODERATOR_CONTROLLED = "moderator-controlled"
    FCFS = "FCFS"
    AUTOMATIC = "automatic"


class CodecDecision(StrEnum):
    """'decision' attribute of <xcon:codecs>: RFC 6501 s4.2.7."""

    AUTOMATIC = "automatic"
    MODERATOR_CONTROLLED = "moderator-controlled"


class CodecPolicy(StrEnum):
    """'policy' attribute of <xcon:codec>: RFC 6501 s4.2.7."""

    ALLOWED = "allowed"
    DISALLOWED = "disallowed"


class VideoLayout(StrEnum):
    """<xcon:video-layout>: RFC 6501 s4.2.7."""

    SINGLE_VIEW = "single-view"
    DUAL_VIEW = "dual-view"
    DUAL_VIEW_CROP = "dual-view-crop"
    DUAL_VIEW_2X1 = "dual-view-2x1"
    DUAL_VIEW_2X1_CROP = "dual-view-2x1-crop"
    QUAD_VIEW = "quad-view"
    MULTIPLE_3X3 = "multiple-3x3"
    MULTIPLE_4X4 = "multiple-4x4"
    MULTIPLE_5X1 = "multiple-5x1"
    AUTOMATIC = "automatic"


class FloorRequestHandling(StrEnum):
    """<xcon:floor-request-handling>: RFC 6501 s4.5.3."""

    BLOCK = "block"
    CONFIRM = "confirm"


class FloorAlgorithm(StrEnum):
    """<xcon:algorithm> of a floor: RFC 6501 s4.5.4."""

    MODERATOR_CONTROLLED = "moderator-controlled"
    FCFS = "FCFS"
    RANDOM = "random"


class JoinHandling(StrEnum):
    """<xcon:join-handling>: RFC 6501 s4.6.1."""

    BLOCK = "block"
    CONFIRM = "confirm"
    ALLOW = "allow"
    AUTHENTICATE = "authenticate"
    DIRECTED_OPERATOR = "directed-operator"


class UserAdmissionPolicy(StrEnum):
    """<xcon:user-admission-policy>: RFC 6501 s4.6.2."""

    CLOSED_AUTHENTICATED = "closedAuthenticated"
    OPEN_AUTHENTICATED = "openAuthenticated"
    ANONYMOUS = "anonymous"


class TargetMethod(StrEnum):
    """'method' of an <xcon:allowed-users-list> target: RFC 6501 s4.6.3."""

    DIAL_IN = "dial-in"
    DIAL_OUT = "dial-out"
    REFER = "refer"


class Anonymity(StrEnum):
    """<xcon:provide-anonymity>: RFC 6501 s4.6.5.1."""

    PRIVATE = "private"
    SEMI_PRIVATE = "semi-private"
    HIDDEN = "hidden"


class MixerName(StrEnum):
    """'name' of <xcon:to-mixer>/<xcon:from-mixer>: RFC 6501 s4.6.5.6."""

    VIDEO_IN = "VideoIn"
    VIDEO_OUT = "VideoOut"
    AUDIO_OUT = "AudioOut"
    AUDIO_IN = "AudioIn"


# --------------------------------------------------------------------------
# Elements
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class XconElement:
    """What every element keeps besides its own data (see the module doc)."""

    extensions: tuple[str, ...] = ()
    extension_attributes: tuple[tuple[str, str], ...] = ()
    cleared: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution(XconElement):
    """execution-type (<referred>, <joining-info>, <modified>, ...): RFC 4575 s5.7.2."""

    when: datetime | None = None
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UriEntry(XconElement):
    """An <entry> of a uris-type list: RFC 4575 s5.3.1, RFC 6501 s4.2.6."""

    uri: str
    display_text: str | None = None
    purpose: str | None = None
    modified: Execution | None = None
    conference_passwords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Uris(XconElement):
    """uris-type: <conf-uris>, <service-uris>, <uris>, <associated-aors>,
    <sidebars-by-ref> (RFC 4575 s5.3.1, s5.9.1); entries keyed by <uri>."""

    entries: tuple[UriEntry, ...] = ()
    state: State | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MixingOffset(XconElement):
    """<xcon:mixing-start-offset>/<xcon:mixing-end-offset>: RFC 6501 s4.2.5."""

    time: datetime
    required_participant: Role | str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceTimeEntry(XconElement):
    """One conference occurrence, <xcon:conference-time>/<xcon:entry>: RFC 6501 s4.2.5."""

    base: str
    mixing_start_offset: MixingOffset | None = None
    mixing_end_offset: MixingOffset | None = None
    can_join_after_offset: datetime | None = None
    must_join_before_offset: datetime | None = None
    request_user: datetime | None = None
    notify_end_of_conference: int | None = None
    allowed_extend_mixing_end_offset: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceTime(XconElement):
    """<xcon:conference-time>: RFC 6501 s4.2.5."""

    entries: tuple[ConferenceTimeEntry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec(XconElement):
    """<xcon:codec>: RFC 6501 s4.2.7."""

    name: str
    policy: CodecPolicy | str
    subtype: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Codecs(XconElement):
    """<xcon:codecs>: RFC 6501 s4.2.7."""

    decision: CodecDecision | str
    codecs: tuple[Codec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Controls(XconElement):
    """<xcon:controls> (global or per stream): RFC 6501 s4.2.7, s4.6.5.6.

    ``gain`` ranges over -127..127 (RFC 6501 s5 gain-type).
    """

    mute: bool | None = None
    pause_video: bool | None = None
    gain: int | None = None
    video_layout: VideoLayout | str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceMedium(XconElement):
    """An <available-media>/<entry>: RFC 4575 s5.3.4, RFC 6501 s4.2.7; keyed by label."""

    label: str
    display_text: str | None = None
    type: str | None = None
    status: MediaStatus | str | None = None
    mixing_mode: MixingMode | str | None = None
    codecs: Codecs | None = None
    controls: Controls | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AvailableMedia(XconElement):
    """<available-media>: RFC 4575 s5.3.4."""

    entries: tuple[ConferenceMedium, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceDescription(XconElement):
    """<conference-description>: RFC 4575 s5.3, RFC 6501 s4.2.

    ``lang`` is the 'xml:lang' attribute; ``language`` is <xcon:language>.
    """

    lang: str | None = None
    display_text: str | None = None
    subject: str | None = None
    free_text: str | None = None
    keywords: tuple[str, ...] | None = None
    conf_uris: Uris | None = None
    service_uris: Uris | None = None
    maximum_user_count: int | None = None
    available_media: AvailableMedia | None = None
    language: str | None = None
    allow_sidebars: bool | None = None
    cloning_parent: str | None = None
    sidebar_parent: str | None = None
    conference_time: ConferenceTime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInfo(XconElement):
    """<host-info>: RFC 4575 s5.4, RFC 6501 s4.3."""

    display_text: str | None = None
    web_page: str | None = None
    uris: Uris | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceState(XconElement):
    """<conference-state>: RFC 4575 s5.5, RFC 6501 s4.4."""

    user_count: int | None = None
    active: bool | None = None
    locked: bool | None = None
    allow_conference_event_subscription: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Floor(XconElement):
    """<xcon:conference-floor-policy>/<xcon:floor>: RFC 6501 s4.5.4; keyed by id.

    ``media_labels`` hold the labels of <available-media> entries (one or more).
    """

    id: str
    media_labels: tuple[str, ...] = ()
    algorithm: FloorAlgorithm | str | None = None
    max_floor_users: int | None = None
    moderator_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceFloorPolicy(XconElement):
    """<xcon:conference-floor-policy>: RFC 6501 s4.5.4."""

    floors: tuple[Floor, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FloorInformation(XconElement):
    """<xcon:floor-information>: RFC 6501 s4.5."""

    conference_id: int | None = None
    allow_floor_events: bool | None = None
    floor_request_handling: FloorRequestHandling | str | None = None
    conference_floor_policy: ConferenceFloorPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target(XconElement):
    """<xcon:target> of the allowed or deny users list: RFC 6501 s4.6.3, s4.6.4.

    ``method`` is mandatory in <xcon:allowed-users-list> and absent in
    <xcon:deny-users-list>.
    """

    uri: str
    method: TargetMethod | str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistentUser(XconElement):
    """<xcon:persistent-list>/<xcon:user>: RFC 6501 s4.6.3."""

    name: str
    nickname: str
    id: str
    emails: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistentList(XconElement):
    """<xcon:persistent-list>: RFC 6501 s4.6.3."""

    users: tuple[PersistentUser, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedUsersList(XconElement):
    """<xcon:allowed-users-list>: RFC 6501 s4.6.3."""

    targets: tuple[Target, ...] = ()
    persistent_list: PersistentList | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyUsersList(XconElement):
    """<xcon:deny-users-list>: RFC 6501 s4.6.4."""

    targets: tuple[Target, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SipDialogId(XconElement):
    """<call-info>/<sip>: RFC 4575 s5.7.9."""

    call_id: str
    from_tag: str
    to_tag: str
    display_text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo(XconElement):
    """<call-info>: RFC 4575 s5.7.9."""

    sip: SipDialogId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MixerFloor(XconElement):
    """<xcon:floor id=..>true|false</xcon:floor> inside a mixer: RFC 6501 s4.6.5.6."""

    id: str
    value: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Mixer(XconElement):
    """<xcon:to-mixer>/<xcon:from-mixer>: RFC 6501 s4.6.5.6."""

    name: MixerName | str
    controls: tuple[Controls, ...] = ()
    floors: tuple[MixerFloor, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Media(XconElement):
    """<endpoint>/<media>: RFC 4575 s5.8, RFC 6501 s4.6.5.6; keyed by id."""

    id: str
    display_text: str | None = None
    type: str | None = None
    label: str | None = None
    src_id: str | None = None
    status: MediaStatus | str | None = None
    to_mixer: Mixer | None = None
    from_mixer: Mixer | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint(XconElement):
    """<endpoint>: RFC 4575 s5.7, RFC 6501 s4.6.5.6; keyed by entity."""

    entity: str | None = None
    state: State | None = None
    display_text: str | None = None
    referred: Execution | None = None
    status: EndpointStatus | str | None = None
    joining_method: JoiningMethod | str | None = None
    joining_info: Execution | None = None
    disconnection_method: DisconnectionMethod | str | None = None
    disconnection_info: Execution | None = None
    media: tuple[Media, ...] = ()
    call_info: CallInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class User(XconElement):
    """<user> (CCMP's userInfo is this type): RFC 4575 s5.6, RFC 6501 s4.6.5.

    Keyed by ``entity`` (an XCON-USERID, RFC 6501 s4.6.5); it may be
    missing in a CCMP user creation, where the server assigns one.
    """

    entity: str | None = None
    state: State | None = None
    display_text: str | None = None
    associated_aors: Uris | None = None
    roles: tuple[Role | str, ...] | None = None
    languages: tuple[str, ...] | None = None
    cascaded_focus: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    provide_anonymity: Anonymity | str | None = None
    allow_refer_users_dynamically: bool | None = None
    allow_invite_users_dynamically: bool | None = None
    allow_remove_users_dynamically: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Users(XconElement):
    """<users>: RFC 4575 s5.6, RFC 6501 s4.6."""

    state: State | None = None
    users: tuple[User, ...] = ()
    join_handling: JoinHandling | str | None = None
    user_admission_policy: UserAdmissionPolicy | str | None = None
    allowed_users_list: AllowedUsersList | None = None
    deny_users_list: DenyUsersList | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SidebarsByVal(XconElement):
    """<sidebars-by-val>: RFC 4575 s5.9.2, RFC 6501 s4.8; entries keyed by entity."""

    state: State | None = None
    entries: tuple[ConferenceInfo, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceInfo(XconElement):
    """<conference-info>, the conference object: RFC 4575 s5.2, RFC 6501 s4.1.

    ``entity`` is the XCON-URI (RFC 6501 s3.3).  ``state`` and ``version``
    only matter in notifications (RFC 6501 s4.1).
    """

    entity: str
    state: State | None = None
    version: int | None = None
    conference_description: ConferenceDescription | None = None
    host_info: HostInfo | None = None
    conference_state: ConferenceState | None = None
    users: Users | None = None
    sidebars_by_ref: Uris | None = None
    sidebars_by_val: SidebarsByVal | None = None
    floor_information: FloorInformation | None = None

    def user(self, entity: str) -> User | None:
        """The user whose 'entity' is ``entity``, or None."""
        if self.users is None:
            return None
        for user in self.users.users:
            if user.entity == entity:
                return user
        return None
