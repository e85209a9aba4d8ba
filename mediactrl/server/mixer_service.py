"""The msc-mixer/1.0 package executor of the bundled media server (RFC 6505), without I/O.

:class:`MixerService` takes a decoded mixer request and the *owner* of the control channel it
came on, checks it against the server-side registry of conferences and joins (existence,
ownership, duplicates, stream co-occurrence rules, capabilities) and answers with the status
codes of RFC 6505 s4.6.  Only a request that passed every check reaches the media plane, through
the small :class:`MixerBackend` protocol, and only a backend call that succeeded changes the
registry: a failing request changes nothing (s4.2.1.1, s4.2.2.2: "MUST NOT create/join").

Events the mixer generates (<unjoin-notify>, <conferenceexit>, <active-talkers-notify>,
s4.2.4) come back as :class:`Notice` values addressed to the owner of the affected resource.

Ownership follows RFC 6505 s7 (and RFC 7058 s8): a conference or join belongs to the channel
that created it, named by its channel identifier (the cfw-id / Dialog-ID, never the SIP
identity behind it); another channel's audit does not see it and any attempt to audit, modify,
join to, unjoin or destroy it is a framework-level 403.  A channel that comes back with the
same identifier (the control server checks who may) is the same owner and keeps its mixers.

Conference ids are scoped to their channel, like the audit: an id another channel chose is
invisible here, so two application servers that both call their first conference "conf1"
each get one (naming it from a third channel is still a 403, s7's Rejection).  The registry
keys a conference by the name the backend knows it by: its id, unless another channel already
has a conference of that id, then a unique variant of it (``backend_id``).

:class:`ControlOnlyBackend` is a legitimate product mode, not a test double: a media server that
tracks the mixing graph with no media at all, for signalling tests and for deployments where
the focus must run without RTP.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from mediactrl.mixer import model as m
from mediactrl.mixer.codec import MixerDecodeError, decode, encode
from mediactrl.mixer.model import MixerStatus

__all__ = [
    "CONTROL_ONLY_CAPABILITIES",
    "FORBIDDEN",
    "BackendCapabilities",
    "BackendError",
    "ConferenceSettings",
    "ControlOnlyBackend",
    "MixerBackend",
    "MixerCounts",
    "MixerService",
    "MixerServiceConfig",
    "Notice",
    "Outcome",
    "is_connection_id",
    "streams_key",
    "swapped_connection_id",
]

FORBIDDEN = 403  # RFC 6230 s7 / RFC 7058 s8: the framework code for another owner's resource


@dataclass(frozen=True)
class BackendCapabilities:
    """What a backend can mix; requests needing more get the 42x codes of RFC 6505 s4.6.

    codecs: advertised in <capabilities> (s4.3.2.1); a <codecs> request naming another one is 425.
    media: stream media types the backend carries (others are 422, s4.2.2.5).
    video_layouts, video_switch: whether those elements are honoured (else 423, 424).
    controller_mixing: whether <audio-mixing type="controller"> is supported (else 421).
    connection_joins / conference_joins: connection-connection and conference-conference
        joins (else 426, 427).
    max_participants: entities per conference (410 when full; 420 when the reservation asks
        for more); None for no limit.
    """

    codecs: tuple[m.Codec, ...] = (m.Codec("audio", "PCMU"), m.Codec("audio", "PCMA"))
    media: frozenset[str] = frozenset({"audio"})
    video_layouts: bool = False
    video_switch: bool = False
    controller_mixing: bool = False
    connection_joins: bool = True
    conference_joins: bool = True
    max_participants: int | None = None


@dataclass(frozen=True)
class ConferenceSettings:
    """The configuration of a conference mixer as the backend sees it (s4.2.1.4)."""

    reserved_talkers: int = 0
    reserved_listeners: int = 0
    codecs: tuple[m.Codec, ...] | None = None
    audio_mixing: m.AudioMixing | None = None
    video_layouts: tuple[m.VideoLayout, ...] | None = None
    video_switch: m.VideoSwitch | None = None
    active_talkers_interval: int | None = None  # s4.2.1.4.4.1 subscription, seconds


class BackendError(Exception):
    """The media plane could not carry out an operation that passed validation.

    ``status`` is the RFC 6505 s4.6 code to answer (411 join failed, 419 other error...).
    """

    def __init__(self, reason: str, status: int = MixerStatus.OTHER_EXECUTION_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class MixerBackend(Protocol):
    """The media plane driven by :class:`MixerService`.

    Every method is called only after the request was validated; it raises
    :class:`BackendError` when the media plane fails, and must then leave things unchanged.
    Streams are always given oriented from ``id1`` (s4.2.2.5).
    """

    @property
    def capabilities(self) -> BackendCapabilities: ...

    def connection_exists(self, connection_id: str) -> bool: ...

    def create_conference(self, conference_id: str, settings: ConferenceSettings) -> None: ...

    def modify_conference(self, conference_id: str, settings: ConferenceSettings) -> None: ...

    def destroy_conference(self, conference_id: str) -> None: ...

    def join(self, id1: str, id2: str, streams: tuple[m.Stream, ...]) -> None: ...

    def modify_join(self, id1: str, id2: str, streams: tuple[m.Stream, ...]) -> None: ...

    def unjoin(self, id1: str, id2: str) -> None: ...

    def watch_media(self, connection_id: str, timeout: float | None) -> None:
        """Report the connection's silence after ``timeout`` s (None: the plane's default);
        the media-timeout extension (mediactrl/README.md)."""


CONTROL_ONLY_CAPABILITIES = BackendCapabilities(
    media=frozenset({"audio", "video"}),
    video_layouts=True,
    video_switch=True,
    controller_mixing=True,
)
"""A signalling-only server has nothing to refuse: every RFC 6505 feature is tracked."""


@dataclass
class ControlOnlyBackend:
    """The control-only media server: keeps the mixing graph, moves no media.

    Connections are the media legs the SIP side set up (RFC 6230 A.1 ids, local:remote tag);
    the SIP side announces them with :meth:`add_connection` / :meth:`remove_connection`.
    ``accept_any_connection`` makes every well-formed connection id exist, for signalling tests
    that run without SIP media legs.
    """

    caps: BackendCapabilities = field(default_factory=lambda: CONTROL_ONLY_CAPABILITIES)
    accept_any_connection: bool = False
    connections: set[str] = field(default_factory=set)
    conferences: dict[str, ConferenceSettings] = field(default_factory=dict)
    joins: dict[tuple[str, str], tuple[m.Stream, ...]] = field(default_factory=dict)

    @property
    def capabilities(self) -> BackendCapabilities:
        return self.caps

    def add_connection(self, connection_id: str) -> None:
        self.connections.add(connection_id)

    def remove_connection(self, connection_id: str) -> None:
        self.connections.discard(connection_id)

    def connection_exists(self, connection_id: str) -> bool:
        if self.accept_any_connection:
            return is_connection_id(connection_id)
        # RFC 6230 A.1: the AS writes its local tag first, which is our remote tag.
        return bool({connection_id, swapped_connection_id(connection_id)} & self.connections)

    def create_conference(self, conference_id: str, settings: ConferenceSettings) -> None:
        self.conferences[conference_id] = settings

    def modify_conference(self, conference_id: str, settings: ConferenceSettings) -> None:
        self.conferences[conference_id] = settings

    def destroy_conference(self, conference_id: str) -> None:
        self.conferences.pop(conference_id, None)
        for pair in [pair for pair in self.joins if conference_id in pair]:
            del self.joins[pair]

    def join(self, id1: str, id2: str, streams: tuple[m.Stream, ...]) -> None:
        self.joins[(id1, id2)] = streams

    def modify_join(self, id1: str, id2: str, streams: tuple[m.Stream, ...]) -> None:
        self.joins[(id1, id2)] = streams

    def unjoin(self, id1: str, id2: str) -> None:
        self.joins.pop((id1, id2), None)

    def watch_media(self, connection_id: str, timeout: float | None) -> None:
        """No media, no silence to watch."""


@dataclass(frozen=True)
class MixerServiceConfig:
    """Settings of the executor.

    allow_cross_owner: lift the RFC 6505 s7 / RFC 7058 s8 isolation (an administrative
        channel, one trusted application server using several cfw-ids): another channel's
        conference is reachable by its id when no other channel has one of that id; off by
        default.
    conference_id_bytes: random bytes in a conferenceid the MS picks (s4.2.1.1).
    """

    allow_cross_owner: bool = False
    conference_id_bytes: int = 4


@dataclass(frozen=True)
class Notice:
    """A mixer <event> (s4.2.4) to send on the channel of ``owner``."""

    owner: str
    event: m.Event


@dataclass(frozen=True)
class Outcome:
    """What to answer a CONTROL with.

    ``cfw_status`` is the framework code (200, or 403 for another owner's resource, RFC 7058
    s8); with 200, ``answer`` is the mixer <response>/<auditresponse> to put in the body.
    ``notices`` are events the request caused, to send after the answer.
    """

    cfw_status: int
    answer: m.Response | m.AuditResponse | None = None
    notices: tuple[Notice, ...] = ()

    def body(self) -> bytes:
        """The msc-mixer body of the answer (empty for a framework error)."""
        return encode(self.answer) if self.answer is not None else b""


@dataclass(frozen=True, slots=True)
class MixerCounts:
    """What the service holds now (:meth:`MixerService.counts`): mixers (RFC 6505 s4.2.1
    <createconference>, summed over the owners' names for them) and joins (s4.2.2)."""

    conferences: int
    names: int  # (conferenceid, owner) pairs
    joins: int


@dataclass
class _Conference:
    owner: str
    name: str  # the conferenceid as its owner knows it
    settings: ConferenceSettings
    talkers_sent_at: float | None = None


@dataclass
class _Join:
    owner: str
    id1: str  # as the owner named them
    id2: str
    streams: tuple[m.Stream, ...]  # oriented from id1; never empty
    keys: tuple[str, str]  # id1, id2 as the registry and the backend know them
    media_timeout: int | None = None  # asked with the join (the media-timeout extension)


class _Refusal(Exception):
    """Internal: ends request processing with a status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def is_connection_id(value: str) -> bool:
    """True for an RFC 6230 A.1 connection id: ``local-tag:remote-tag`` (an optional
    ``~label`` suffix aside); a conference id is any other string."""
    local, sep, remote = value.partition(":")
    return bool(sep and local and remote)


def swapped_connection_id(connection_id: str) -> str:
    """The same SIP dialog named from the other end: ``remote:local`` (RFC 6230 A.1)."""
    local, _, remote = connection_id.partition(":")
    return f"{remote}:{local}"


def streams_key(stream: m.Stream) -> tuple[str, str | None]:
    """Streams are told apart by media type and SDP label (s4.2.2.5)."""
    return (stream.media, stream.label)


_FLIP = {
    m.Direction.SENDONLY: m.Direction.RECVONLY,
    m.Direction.RECVONLY: m.Direction.SENDONLY,
    m.Direction.SENDRECV: m.Direction.SENDRECV,
    m.Direction.INACTIVE: m.Direction.INACTIVE,
}


def _flipped(streams: Iterable[m.Stream]) -> tuple[m.Stream, ...]:
    """The same streams seen from the other entity (direction is relative to id1)."""
    return tuple(replace(s, direction=_FLIP[s.direction]) for s in streams)


class MixerService:
    """The msc-mixer/1.0 executor: registry, validation, events; media through a backend."""

    def __init__(self, backend: MixerBackend, config: MixerServiceConfig | None = None) -> None:
        self.backend = backend
        self.config = config or MixerServiceConfig()
        self._conferences: dict[str, _Conference] = {}  # by backend id
        self._by_name: dict[str, dict[str, str]] = {}  # conferenceid -> owner -> backend id
        self._joins: dict[frozenset[str], _Join] = {}  # by the backend ids of the pair

    def counts(self) -> MixerCounts:
        """What the service holds now (read-only)."""
        return MixerCounts(
            conferences=len(self._conferences),
            names=sum(map(len, self._by_name.values())),
            joins=len(self._joins),
        )

    # ----------------------------------------------------------------- entry points
    def handle_body(self, owner: str, body: bytes) -> Outcome:
        """Executes an ``application/msc-mixer+xml`` CONTROL body from ``owner``'s channel."""
        try:
            request = decode(body)
        except MixerDecodeError as exc:
            return Outcome(200, m.Response(exc.status, _reason(exc.reason)))
        return self.execute(owner, request)

    def execute(self, owner: str, request: m.MixerMessage) -> Outcome:
        """Executes one decoded mixer request."""
        notices: list[Notice] = []
        try:
            answer = self._dispatch(owner, request, notices)
        except _Refusal as refusal:
            if refusal.status == FORBIDDEN:
                return Outcome(FORBIDDEN)
            return Outcome(200, self._error_answer(request, refusal))
        except BackendError as exc:
            return Outcome(200, self._error_answer(request, _Refusal(exc.status, exc.reason)))
        return Outcome(200, answer, tuple(notices))

    def connection_closed(self, connection_id: str) -> tuple[Notice, ...]:
        """The SIP side ended a connection: its joins end, unjoin-notify status 2 (s4.2.4.2).

        Call it before or after the media plane closed the leg: a backend that no longer knows
        the connection is not an error here.
        """
        notices: list[Notice] = []
        names = {connection_id, swapped_connection_id(connection_id)}
        for key, join in list(self._joins.items()):
            if names & key:
                # The media plane may already have dropped the join with the leg.
                with contextlib.suppress(BackendError):
                    self.backend.unjoin(*join.keys)
                self._drop_join(key, join, 2, "connection terminated", notices, backend=False)
        return tuple(notices)

    def active_talkers(
        self, conference_id: str, talkers: Iterable[str], now: float | None
    ) -> tuple[Notice, ...]:
        """The media plane reports who talks in a conference; notifies its owner if it
        subscribed (s4.2.1.4.4.1).  With ``now`` the service itself keeps to one notification
        per interval; None means the media plane already paces them.  Talkers are named as
        the owner named them in its joins (either orientation of a connection id).
        ``conference_id`` and conference talkers are backend ids (:meth:`backend_id`)."""
        conference = self._conferences.get(conference_id)
        if conference is None or conference.settings.active_talkers_interval is None:
            return ()
        if now is not None:
            last = conference.talkers_sent_at
            if last is not None and now - last < conference.settings.active_talkers_interval:
                return ()
            conference.talkers_sent_at = now
        members = set(self.participants(conference_id))
        entries: list[m.ActiveTalker] = []
        for talker in talkers:
            if is_connection_id(talker):
                named = talker
                if talker not in members and swapped_connection_id(talker) in members:
                    named = swapped_connection_id(talker)
                entries.append(m.ActiveTalker(connectionid=named))
            else:
                other = self._conferences.get(talker)
                entries.append(m.ActiveTalker(conferenceid=other.name if other else talker))
        notify = m.ActiveTalkersNotify(conference.name, tuple(entries))
        return (Notice(conference.owner, m.Event(notify)),)

    def release(self, owner: str) -> tuple[Notice, ...]:
        """Destroys everything ``owner`` owns (its channel is gone for good), as its own
        <destroyconference>s and <unjoin>s would; returns their events."""
        notices: list[Notice] = []
        for name in self.conferences_of(owner):
            notices.extend(self.execute(owner, m.DestroyConference(name)).notices)
        for join in [j for j in self._joins.values() if j.owner == owner]:
            notices.extend(self.execute(owner, m.Unjoin(join.id1, join.id2)).notices)
        return tuple(notices)

    def holds(self, owner: str) -> bool:
        """True while ``owner`` owns any conference or join (its channel may come back)."""
        return any(c.owner == owner for c in self._conferences.values()) or any(
            j.owner == owner for j in self._joins.values()
        )

    def conferences_of(self, owner: str) -> tuple[str, ...]:
        """Conference ids owned by ``owner``, as it named them (diagnostics and tests)."""
        return tuple(c.name for c in self._conferences.values() if c.owner == owner)

    def backend_id(self, owner: str, conference_id: str) -> str | None:
        """The backend's name of ``owner``'s conference ``conference_id`` (None: no such)."""
        return self._by_name.get(conference_id, {}).get(owner)

    def participants(self, conference_id: str) -> tuple[str, ...]:
        """Entities joined to a conference (by backend id), in join order, as named in the
        joins."""
        out: list[str] = []
        for join in self._joins.values():
            if conference_id in join.keys:
                out.append(join.id2 if join.keys[0] == conference_id else join.id1)
        return tuple(out)

    def join_streams(self, id1: str, id2: str) -> tuple[m.Stream, ...] | None:
        """The streams of the join between two entities (backend ids), oriented from ``id1``."""
        join = self._joins.get(frozenset((id1, id2)))
        if join is None:
            return None
        return join.streams if join.keys[0] == id1 else _flipped(join.streams)

    # ----------------------------------------------------------------- dispatch
    def _dispatch(
        self, owner: str, request: m.MixerMessage, notices: list[Notice]
    ) -> m.Response | m.AuditResponse:
        if isinstance(request, m.CreateConference):
            return self._create(owner, request)
        if isinstance(request, m.ModifyConference):
            return self._modify_conference(owner, request)
        if isinstance(request, m.DestroyConference):
            return self._destroy(owner, request, notices)
        if isinstance(request, m.Join):
            return self._join(owner, request)
        if isinstance(request, m.ModifyJoin):
            return self._modify_join(owner, request)
        if isinstance(request, m.Unjoin):
            return self._unjoin(owner, request, notices)
        if isinstance(request, m.Audit):
            return self._audit(owner, request)
        # <response>, <event>, <auditresponse> travel MS -> AS only.
        raise _Refusal(MixerStatus.SYNTAX_ERROR, f"{type(request).__name__} is not a request")

    def _error_answer(
        self, request: m.MixerMessage, refusal: _Refusal
    ) -> m.Response | m.AuditResponse:
        if isinstance(request, m.Audit):
            return m.AuditResponse(refusal.status, _reason(refusal.reason))
        conferenceid = getattr(request, "conferenceid", None)
        return m.Response(refusal.status, _reason(refusal.reason), conferenceid=conferenceid)

    # ----------------------------------------------------------------- conferences
    def _resolve(self, owner: str, conference_id: str) -> str | None:
        """The backend id of the conference ``owner`` means by ``conference_id``; None when no
        channel has one of that name.  Another channel's conference is a 403 (RFC 6505 s7),
        unless ``allow_cross_owner`` and the name is unambiguous."""
        holders = self._by_name.get(conference_id)
        if not holders:
            return None
        key = holders.get(owner)
        if key is not None:
            return key
        if self.config.allow_cross_owner and len(holders) == 1:
            return next(iter(holders.values()))
        raise _Refusal(FORBIDDEN, "resource of another channel")

    def _owned_conference(self, owner: str, conference_id: str) -> tuple[str, _Conference]:
        key = self._resolve(owner, conference_id)
        if key is None:
            raise _Refusal(MixerStatus.CONFERENCE_DOES_NOT_EXIST, f"no conference {conference_id}")
        return key, self._conferences[key]

    def _check_owner(self, owner: str, resource_owner: str) -> None:
        if owner != resource_owner and not self.config.allow_cross_owner:
            raise _Refusal(FORBIDDEN, "resource of another application server")

    def _check_config(self, request: m.CreateConference | m.ModifyConference) -> None:
        caps = self.backend.capabilities
        if request.audio_mixing is not None and (
            request.audio_mixing.type is m.AudioMixType.CONTROLLER and not caps.controller_mixing
        ):
            raise _Refusal(MixerStatus.AUDIO_MIX_UNSUPPORTED, "controller mixing not supported")
        if request.video_layouts is not None and not caps.video_layouts:
            raise _Refusal(MixerStatus.VIDEO_LAYOUTS_UNSUPPORTED, "video layouts not supported")
        if request.video_switch is not None and not caps.video_switch:
            raise _Refusal(MixerStatus.VIDEO_SWITCH_UNSUPPORTED, "video switching not supported")
        for codec in request.codecs or ():
            if not any(_same_codec(codec, known) for known in caps.codecs):
                raise _Refusal(
                    MixerStatus.CODECS_UNSUPPORTED,
                    f"{codec.name}/{codec.subtype} codec not supported",
                )

    def _create(self, owner: str, request: m.CreateConference) -> m.Response:
        conference_id = request.conferenceid
        taken = self._by_name.get(conference_id or "", {})
        if owner in taken or (taken and self.config.allow_cross_owner):
            raise _Refusal(
                MixerStatus.CONFERENCE_ALREADY_EXISTS, f"conference {conference_id} exists"
            )
        if conference_id is not None and is_connection_id(conference_id):
            # A ':' would make the id indistinguishable from a connection id (RFC 6505 s4.2.2.2).
            raise _Refusal(MixerStatus.SYNTAX_ERROR, "a conferenceid must not contain ':'")
        caps = self.backend.capabilities
        reserved = request.reserved_talkers + request.reserved_listeners
        if caps.max_participants is not None and reserved > caps.max_participants:
            raise _Refusal(
                MixerStatus.RESERVATION_FAILED,
                f"cannot reserve {reserved} slots (at most {caps.max_participants})",
            )
        self._check_config(request)
        if conference_id is None:
            conference_id = self._new_conference_id()
        settings = ConferenceSettings(
            request.reserved_talkers,
            request.reserved_listeners,
            request.codecs,
            request.audio_mixing,
            request.video_layouts,
            request.video_switch,
            _talkers_interval(request.subscribe),
        )
        key = conference_id
        for n in itertools.count(2):
            if key not in self._conferences:
                break
            key = f"{conference_id}~{n}"  # the same id on another channel (RFC 6505 s7)
        self.backend.create_conference(key, settings)
        self._conferences[key] = _Conference(owner, conference_id, settings)
        self._by_name.setdefault(conference_id, {})[owner] = key
        return m.Response(200, "Conference created", conferenceid=conference_id)

    def _modify_conference(self, owner: str, request: m.ModifyConference) -> m.Response:
        key, conference = self._owned_conference(owner, request.conferenceid)
        self._check_config(request)
        old = conference.settings
        settings = replace(
            old,
            codecs=request.codecs if request.codecs is not None else old.codecs,
            audio_mixing=request.audio_mixing or old.audio_mixing,
            video_layouts=request.video_layouts or old.video_layouts,
            video_switch=request.video_switch or old.video_switch,
            active_talkers_interval=_talkers_interval(request.subscribe)
            if request.subscribe is not None
            else old.active_talkers_interval,
        )
        self.backend.modify_conference(key, settings)
        conference.settings = settings
        return m.Response(200, "Conference modified", conferenceid=request.conferenceid)

    def _destroy(
        self, owner: str, request: m.DestroyConference, notices: list[Notice]
    ) -> m.Response:
        conference_id = request.conferenceid
        key, conference = self._owned_conference(owner, conference_id)
        self.backend.destroy_conference(key)
        # s4.2.1.3: every participant is unjoined (unjoin-notify), then conferenceexit.
        for pair, join in list(self._joins.items()):
            if key in pair:
                self._drop_join(pair, join, 2, "conference terminated", notices, backend=False)
        del self._conferences[key]
        holders = self._by_name[conference.name]
        del holders[conference.owner]
        if not holders:
            del self._by_name[conference.name]
        exit_event = m.ConferenceExit(conference_id, 0, "conference destroyed")
        notices.append(Notice(conference.owner, m.Event(exit_event)))
        return m.Response(200, "Conference destroyed", conferenceid=conference_id)

    def _new_conference_id(self) -> str:
        while True:
            candidate = secrets.token_hex(self.config.conference_id_bytes)[:7]
            if candidate not in self._conferences and candidate not in self._by_name:
                return candidate

    # ----------------------------------------------------------------- joins
    def _entity(self, owner: str, entity: str) -> tuple[str, bool]:
        """Checks an id1/id2 exists and may be used: (its backend id, whether a conference)."""
        key = self._resolve(owner, entity)
        if key is not None:
            return key, True
        if is_connection_id(entity):
            if not self.backend.connection_exists(entity):
                raise _Refusal(MixerStatus.CONNECTION_DOES_NOT_EXIST, f"no connection {entity}")
            return entity, False
        raise _Refusal(MixerStatus.CONFERENCE_DOES_NOT_EXIST, f"no conference {entity}")

    def _check_streams(self, streams: tuple[m.Stream, ...]) -> None:
        media = self.backend.capabilities.media
        groups: dict[tuple[str, str | None], list[m.Direction]] = {}
        for stream in streams:
            if stream.media not in media:
                raise _Refusal(
                    MixerStatus.STREAM_CONFIGURATION_UNSUPPORTED,
                    f"{stream.media} streams are not supported",
                )
            groups.setdefault(streams_key(stream), []).append(stream.direction)
        for (medium, _label), directions in groups.items():
            # s4.2.2.2: one <stream> per medium, or one per direction (sendonly + recvonly).
            one_way = {m.Direction.SENDONLY, m.Direction.RECVONLY}
            if len(directions) > 1 and (len(directions) > 2 or set(directions) != one_way):
                raise _Refusal(
                    MixerStatus.INCOMPATIBLE_STREAM_CONFIGURATION,
                    f"conflicting {medium} streams",
                )

    def _default_streams(self) -> tuple[m.Stream, ...]:
        return tuple(m.Stream(medium) for medium in sorted(self.backend.capabilities.media))

    def _join(self, owner: str, request: m.Join) -> m.Response:
        id1, id2 = request.id1, request.id2
        key1, first_is_conf = self._entity(owner, id1)
        key2, second_is_conf = self._entity(owner, id2)
        if id1 == id2 and first_is_conf:
            raise _Refusal(MixerStatus.JOIN_OPERATION_FAILED, "a conference cannot join itself")
        # A connection joined to itself is an echo (RFC 7058 s6.1.1): a connection-connection
        # join like any other.
        caps = self.backend.capabilities
        if not first_is_conf and not second_is_conf and not caps.connection_joins:
            raise _Refusal(
                MixerStatus.MIXING_CONNECTIONS_UNSUPPORTED, "joining connections not supported"
            )
        if first_is_conf and second_is_conf and not caps.conference_joins:
            raise _Refusal(
                MixerStatus.MIXING_CONFERENCES_UNSUPPORTED, "joining conferences not supported"
            )
        key = frozenset((key1, key2))
        if key in self._joins:
            raise _Refusal(MixerStatus.ALREADY_JOINED, f"{id1} and {id2} are already joined")
        self._check_streams(request.streams)
        if caps.max_participants is not None:
            conferences = [c for c, c_is in ((key1, first_is_conf), (key2, second_is_conf)) if c_is]
            for conference_id in conferences:
                if len(self.participants(conference_id)) >= caps.max_participants:
                    raise _Refusal(
                        MixerStatus.CONFERENCE_FULL, f"conference {conference_id} is full"
                    )
        streams = request.streams or self._default_streams()
        self.backend.join(key1, key2, streams)
        self._joins[key] = _Join(owner, id1, id2, streams, (key1, key2), request.media_timeout)
        if request.media_timeout is not None:
            self._watch({key1, key2})
        return m.Response(200, "Join successful")

    def _watch(self, entities: set[str]) -> None:
        """The media plane watches each connection for the shortest timeout its joins ask."""
        for connection in filter(is_connection_id, entities):
            names = {connection, swapped_connection_id(connection)}
            asked = [j.media_timeout for k, j in self._joins.items() if names & k]
            timeouts = [t for t in asked if t is not None]
            with contextlib.suppress(BackendError):  # the connection went meanwhile
                self.backend.watch_media(connection, min(timeouts, default=None))

    def media_timed_out(self, connection_id: str, silent_for: float) -> tuple[Notice, ...]:
        """The media plane saw no RTP and no RTCP from a connection: each owner that asked
        (media-timeout on a join of it) gets a <media-timeout> event naming the connection
        as it did."""
        names = {connection_id, swapped_connection_id(connection_id)}
        told: dict[str, Notice] = {}
        for key, join in self._joins.items():
            if join.media_timeout is None or join.owner in told or not names & key:
                continue
            named = join.id1 if join.id1 in names else join.id2
            event = m.Event(m.MediaTimeout(named, int(silent_for)))
            told[join.owner] = Notice(join.owner, event)
        return tuple(told.values())

    def _existing_join(self, owner: str, id1: str, id2: str) -> tuple[frozenset[str], _Join, bool]:
        """The join of id1 and id2, its key, and whether they are named in its order."""
        key1, _ = self._entity(owner, id1)
        key2, _ = self._entity(owner, id2)
        key = frozenset((key1, key2))
        join = self._joins.get(key)
        if join is None:
            raise _Refusal(MixerStatus.NOT_JOINED, f"{id1} and {id2} are not joined")
        self._check_owner(owner, join.owner)
        return key, join, join.keys[0] == key1

    def _modify_join(self, owner: str, request: m.ModifyJoin) -> m.Response:
        _, join, same_order = self._existing_join(owner, request.id1, request.id2)
        self._check_streams(request.streams)
        wanted = request.streams if same_order else _flipped(request.streams)
        changed = {streams_key(s) for s in wanted}
        # s4.2.2.3: the streams named are configured as given "from this point forward";
        # the other media keep theirs.
        streams = tuple(s for s in join.streams if streams_key(s) not in changed) + wanted
        self.backend.modify_join(*join.keys, streams)
        join.streams = streams
        return m.Response(200, "Join modified")

    def _unjoin(self, owner: str, request: m.Unjoin, notices: list[Notice]) -> m.Response:
        key, join, _ = self._existing_join(owner, request.id1, request.id2)
        if request.streams:
            self._check_streams(request.streams)
            removed = {streams_key(s) for s in request.streams}
            if not removed <= {streams_key(s) for s in join.streams}:
                raise _Refusal(
                    MixerStatus.INCOMPATIBLE_STREAM_CONFIGURATION, "no such stream in the join"
                )
            remaining = tuple(s for s in join.streams if streams_key(s) not in removed)
            if remaining:
                self.backend.modify_join(*join.keys, remaining)
                join.streams = remaining
                return m.Response(200, "Streams unjoined")
        self._drop_join(key, join, 0, None, notices)
        return m.Response(200, "Unjoin successful")

    def _drop_join(
        self,
        key: frozenset[str],
        join: _Join,
        status: int,
        reason: str | None,
        notices: list[Notice],
        *,
        backend: bool = True,
    ) -> None:
        if backend:
            self.backend.unjoin(*join.keys)
        del self._joins[key]
        if join.media_timeout is not None and backend:
            self._watch(set(join.keys))
        event = m.Event(m.UnjoinNotify(status, join.id1, join.id2, reason))
        notices.append(Notice(join.owner, event))

    # ----------------------------------------------------------------- audit
    def _audit(self, owner: str, request: m.Audit) -> m.AuditResponse:
        if request.conferenceid is not None:
            self._owned_conference(owner, request.conferenceid)
        capabilities = None
        if request.capabilities:
            capabilities = m.Capabilities(self.backend.capabilities.codecs)
        mixers = None
        if request.mixers:
            mixers = self._mixers(owner, request.conferenceid)
        return m.AuditResponse(200, capabilities=capabilities, mixers=mixers)

    def _mixers(self, owner: str, only: str | None) -> m.Mixers:
        # RFC 7058 s8: an audit shows only what this owner is involved in.
        visible = self.config.allow_cross_owner
        conferences = tuple(
            self._conference_audit(key, conference)
            for key, conference in self._conferences.items()
            if (visible or conference.owner == owner) and only in (None, conference.name)
        )
        joins = tuple(
            m.JoinAudit(join.id1, join.id2)
            for join in self._joins.values()
            if (visible or join.owner == owner) and only in (None, join.id1, join.id2)
        )
        return m.Mixers(conferences, joins)

    def _conference_audit(self, key: str, conference: _Conference) -> m.ConferenceAudit:
        participants = self.participants(key)
        layout = None
        for candidate in conference.settings.video_layouts or ():
            if candidate.min_participants <= max(len(participants), 1):
                layout = candidate
        return m.ConferenceAudit(
            conference.name, conference.settings.codecs, participants or None, layout
        )


def _talkers_interval(subscribe: m.Subscribe | None) -> int | None:
    if subscribe is None or subscribe.active_talkers is None:
        return None
    return subscribe.active_talkers.interval


def _same_codec(a: m.Codec, b: m.Codec) -> bool:
    return a.name.lower() == b.name.lower() and a.subtype.lower() == b.subtype.lower()


def _reason(text: str) -> str:
    # A reason is an XML attribute: keep it one bounded line.
    return " ".join(text.split())[:200]
