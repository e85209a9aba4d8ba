"""The msc-mixer/1.0 control package (RFC 6505 s4) as frozen dataclasses.

One class per element of s4; attribute defaults are those of the schema (s5), so a decoded
message compares equal to one built by hand with the same meaning.  Elements that may be absent
are None when absent; repeated children are tuples.  Video elements are modelled in full even
though the bundled media server mixes audio only: an application server may still send them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "DEFAULT_TONES",
    "ActiveTalker",
    "ActiveTalkersNotify",
    "ActiveTalkersSub",
    "AudioMixType",
    "AudioMixing",
    "Audit",
    "AuditResponse",
    "Capabilities",
    "Clamp",
    "Codec",
    "ConferenceAudit",
    "ConferenceExit",
    "CreateConference",
    "DestroyConference",
    "Direction",
    "Event",
    "Join",
    "JoinAudit",
    "MediaTimeout",
    "MixerMessage",
    "MixerStatus",
    "Mixers",
    "ModifyConference",
    "ModifyJoin",
    "Param",
    "Response",
    "Stream",
    "Subscribe",
    "Unjoin",
    "UnjoinNotify",
    "VideoLayout",
    "VideoLayoutKind",
    "VideoSwitch",
    "VideoSwitchPolicy",
    "Volume",
    "VolumeControlType",
]

# RFC 6505 s4.2.2.5.2: the <clamp> default removes every DTMF tone.
DEFAULT_TONES = "1 2 3 4 5 6 7 8 9 0 * # A B C D"


class MixerStatus(IntEnum):
    """Status codes of <response> and <auditresponse> (RFC 6505 s4.6, Table 1).

    An unknown code is treated as the x00 code of its class (s4.6): see :meth:`classify`.
    """

    OK = 200  # request has succeeded
    SYNTAX_ERROR = 400  # invalid per the schema (s5) or a co-occurrence rule of s4
    CONFERENCE_ALREADY_EXISTS = 405  # createconference with a conferenceid in use
    CONFERENCE_DOES_NOT_EXIST = 406  # a conferenceid unknown to the MS
    INCOMPATIBLE_STREAM_CONFIGURATION = 407  # streams conflict with themselves or the entities
    ALREADY_JOINED = 408  # join of entities already joined
    NOT_JOINED = 409  # modifyjoin/unjoin of entities not joined
    CONFERENCE_FULL = 410  # join to a full conference
    JOIN_OPERATION_FAILED = 411  # creating, modifying or deleting a join failed
    CONNECTION_DOES_NOT_EXIST = 412  # a connectionid unknown to the MS
    OTHER_EXECUTION_ERROR = 419  # the operation could not be executed
    RESERVATION_FAILED = 420  # reserved talkers/listeners not supported
    AUDIO_MIX_UNSUPPORTED = 421  # <audio-mixing> not supported
    STREAM_CONFIGURATION_UNSUPPORTED = 422  # a <stream> configuration not supported
    VIDEO_LAYOUTS_UNSUPPORTED = 423  # <video-layouts> not supported
    VIDEO_SWITCH_UNSUPPORTED = 424  # <video-switch> not supported
    CODECS_UNSUPPORTED = 425  # <codecs> not supported
    MIXING_CONNECTIONS_UNSUPPORTED = 426  # joining two connections not supported
    MIXING_CONFERENCES_UNSUPPORTED = 427  # joining two conferences not supported
    FOREIGN_NAMESPACE_UNSUPPORTED = 428  # foreign attributes or elements not supported
    OTHER_UNSUPPORTED_CAPABILITY = 435  # another capability not supported

    @classmethod
    def classify(cls, code: int) -> MixerStatus:
        """The status an application server acts on: unknown codes become their x00 (s4.6)."""
        try:
            return cls(code)
        except ValueError:
            return cls(code - code % 100) if code - code % 100 in (200, 400) else cls.SYNTAX_ERROR


class Direction(StrEnum):
    """Media direction of a <stream>, seen from the first entity id1 (s4.2.2.5)."""

    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    SENDRECV = "sendrecv"
    INACTIVE = "inactive"


class VolumeControlType(StrEnum):
    """How <volume> is controlled (s4.2.2.5.1)."""

    AUTOMATIC = "automatic"  # automatic gain control
    SETGAIN = "setgain"  # 'value' is a gain in dB
    SETSTATE = "setstate"  # 'value' is "mute" or "unmute"


class AudioMixType(StrEnum):
    """Audio mixing policy (s4.2.1.4.1)."""

    NBEST = "nbest"  # the N loudest participants are mixed (n=0: all)
    CONTROLLER = "controller"  # the application server picks the mix


class VideoLayoutKind(StrEnum):
    """The predefined video layouts (s4.2.1.4.2.1)."""

    SINGLE_VIEW = "single-view"
    DUAL_VIEW = "dual-view"
    DUAL_VIEW_CROP = "dual-view-crop"
    DUAL_VIEW_2X1 = "dual-view-2x1"
    DUAL_VIEW_2X1_CROP = "dual-view-2x1-crop"
    QUAD_VIEW = "quad-view"
    MULTIPLE_3X3 = "multiple-3x3"
    MULTIPLE_4X4 = "multiple-4x4"
    MULTIPLE_5X1 = "multiple-5x1"


class VideoSwitchPolicy(StrEnum):
    """Video switching policy (s4.2.1.4.3)."""

    VAS = "vas"  # voice-activated switching
    CONTROLLER = "controller"  # the application server chooses


# ----------------------------------------------------------------- building blocks
@dataclass(frozen=True)
class Param:
    """<param> of <params> (s4.5.1): a named value, text content of MIME ``type``."""

    name: str
    value: str = ""
    type: str = "text/plain"
    encoding: str | None = None


@dataclass(frozen=True)
class Codec:
    """<codec> (s4.4.1): ``name`` is the media type ("audio"), ``subtype`` e.g. "PCMU"."""

    name: str
    subtype: str
    params: tuple[Param, ...] | None = None


@dataclass(frozen=True)
class Volume:
    """<volume> (s4.2.2.5.1)."""

    controltype: VolumeControlType
    value: str | None = None


@dataclass(frozen=True)
class Clamp:
    """<clamp> (s4.2.2.5.2): DTMF tones removed from the media stream."""

    tones: str = DEFAULT_TONES


@dataclass(frozen=True)
class Stream:
    """<stream> (s4.2.2.5): how one medium flows between the two joined entities."""

    media: str
    label: str | None = None
    direction: Direction = Direction.SENDRECV
    volume: Volume | None = None
    clamp: Clamp | None = None
    region: str | None = None  # a region of the video layout (NMTOKEN)
    priority: int | None = None  # positive; lower is more important (s4.2.2.5.4)


@dataclass(frozen=True)
class AudioMixing:
    """<audio-mixing> (s4.2.1.4.1)."""

    type: AudioMixType = AudioMixType.NBEST
    n: int = 0


@dataclass(frozen=True)
class VideoLayout:
    """<video-layout> (s4.2.1.4.2.1): ``layout`` used from ``min_participants`` on."""

    layout: VideoLayoutKind
    min_participants: int = 1


@dataclass(frozen=True)
class VideoSwitch:
    """<video-switch> (s4.2.1.4.3)."""

    policy: VideoSwitchPolicy
    interval: int = 3
    activespeakermix: bool = False


@dataclass(frozen=True)
class ActiveTalkersSub:
    """<active-talkers-sub> (s4.2.1.4.4.1): notify active talkers every ``interval`` s."""

    interval: int = 3


@dataclass(frozen=True)
class Subscribe:
    """<subscribe> (s4.2.1.4.4)."""

    active_talkers: ActiveTalkersSub | None = None


# ----------------------------------------------------------------- requests
@dataclass(frozen=True)
class CreateConference:
    """<createconference> (s4.2.1.1): the MS picks a conferenceid when None."""

    conferenceid: str | None = None
    reserved_talkers: int = 0
    reserved_listeners: int = 0
    codecs: tuple[Codec, ...] | None = None
    audio_mixing: AudioMixing | None = None
    video_layouts: tuple[VideoLayout, ...] | None = None
    video_switch: VideoSwitch | None = None
    subscribe: Subscribe | None = None


@dataclass(frozen=True)
class ModifyConference:
    """<modifyconference> (s4.2.1.2)."""

    conferenceid: str
    codecs: tuple[Codec, ...] | None = None
    audio_mixing: AudioMixing | None = None
    video_layouts: tuple[VideoLayout, ...] | None = None
    video_switch: VideoSwitch | None = None
    subscribe: Subscribe | None = None


@dataclass(frozen=True)
class DestroyConference:
    """<destroyconference> (s4.2.1.3)."""

    conferenceid: str


@dataclass(frozen=True)
class Join:
    """<join> (s4.2.2.2): joins id1 and id2 (connectionids or conferenceids).

    ``media_timeout`` (seconds; an extension attribute, mediactrl/README.md "Media timeout")
    asks for a :class:`MediaTimeout` event when the connection goes silent; a media server
    without the extension ignores it (s4: foreign attributes are lax)."""

    id1: str
    id2: str
    streams: tuple[Stream, ...] = ()
    media_timeout: int | None = None


@dataclass(frozen=True)
class ModifyJoin:
    """<modifyjoin> (s4.2.2.3)."""

    id1: str
    id2: str
    streams: tuple[Stream, ...] = ()


@dataclass(frozen=True)
class Unjoin:
    """<unjoin> (s4.2.2.4)."""

    id1: str
    id2: str
    streams: tuple[Stream, ...] = ()


@dataclass(frozen=True)
class Audit:
    """<audit> (s4.3.1)."""

    capabilities: bool = True
    mixers: bool = True
    conferenceid: str | None = None


# ----------------------------------------------------------------- answers and events
@dataclass(frozen=True)
class Response:
    """<response> (s4.2.3)."""

    status: int
    reason: str | None = None
    desclang: str | None = None
    connectionid: str | None = None
    conferenceid: str | None = None


@dataclass(frozen=True)
class ActiveTalker:
    """<active-talker> (s4.2.4.1.1)."""

    connectionid: str | None = None
    conferenceid: str | None = None


@dataclass(frozen=True)
class ActiveTalkersNotify:
    """<active-talkers-notify> (s4.2.4.1)."""

    conferenceid: str
    talkers: tuple[ActiveTalker, ...] = ()


@dataclass(frozen=True)
class UnjoinNotify:
    """<unjoin-notify> (s4.2.4.2): 0 unjoined by request, 1 by error, 2 by connection end,
    3 by conference end."""

    status: int
    id1: str
    id2: str
    reason: str | None = None
    desclang: str | None = None


@dataclass(frozen=True)
class ConferenceExit:
    """<conferenceexit> (s4.2.4.3): 0 destroyed by request, 1 by error, 2 by capacity,
    3 by an execution error."""

    conferenceid: str
    status: int
    reason: str | None = None
    desclang: str | None = None


@dataclass(frozen=True)
class MediaTimeout:
    """Extension notification (mediactrl/README.md "Media timeout"): the connection, as the
    application server named it in its join, received no RTP and no RTCP for ``silent_for``
    seconds, not being on hold: the peer behind it is probably gone."""

    connectionid: str
    silent_for: int


@dataclass(frozen=True)
class Event:
    """<event> (s4.2.4): one notification, or None for an <event/> carrying only foreign
    content we do not know."""

    notification: ActiveTalkersNotify | UnjoinNotify | ConferenceExit | MediaTimeout | None = None


@dataclass(frozen=True)
class Capabilities:
    """<capabilities> (s4.3.2.1)."""

    codecs: tuple[Codec, ...] = ()


@dataclass(frozen=True)
class ConferenceAudit:
    """<conferenceaudit> (s4.3.2.2.1); ``participants`` are ids of <participant> (s4.3.2.2.1.1)."""

    conferenceid: str
    codecs: tuple[Codec, ...] | None = None
    participants: tuple[str, ...] | None = None
    video_layout: VideoLayout | None = None


@dataclass(frozen=True)
class JoinAudit:
    """<joinaudit> (s4.3.2.2.2)."""

    id1: str
    id2: str


@dataclass(frozen=True)
class Mixers:
    """<mixers> (s4.3.2.2)."""

    conferences: tuple[ConferenceAudit, ...] = ()
    joins: tuple[JoinAudit, ...] = ()


@dataclass(frozen=True)
class AuditResponse:
    """<auditresponse> (s4.3.2)."""

    status: int
    reason: str | None = None
    desclang: str | None = None
    capabilities: Capabilities | None = None
    mixers: Mixers | None = None


MixerMessage = (
    CreateConference
    | ModifyConference
    | DestroyConference
    | Join
    | ModifyJoin
    | Unjoin
    | Audit
    | Response
    | Event
    | AuditResponse
)
