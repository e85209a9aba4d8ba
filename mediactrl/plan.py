"""The media driver's pure half: the DESIRED mixing state, what is KNOWN of the media server,
and the msc-mixer/1.0 requests (RFC 6505) that turn one into the other.

No I/O and no clock: :class:`~mediactrl.driver.MediaDriver` sends the :class:`Step` s that
:func:`plan` returns, one at a time, and folds each answer in with :func:`apply_answer`; after a
channel (re)opens it starts again from :func:`state_from_audit`.

Ids follow RFC 6230 A.1: a connection is ``local-tag:remote-tag`` of the focus's SIP dialog
with the media server (:func:`connection_id`); a conference id is chosen by the focus (so it
can be re-created under the same name after a media server restart) and has no ``:``.

Media rules of a participant (:func:`participant_streams`): muted means the connection only
receives from the mix (recvonly from id1 = the connection), deaf means it only sends, a gain is
a <volume controltype="setgain"> on the direction it applies to (s4.2.2.5.1).

A join may link any two entities (s4.2.2 allows conference-to-conference joins), but the focus
never joins a conference to a conference: a sidebar (whisper, coaching, RFC 7058 s6.3.4) is a
mixer of its own, and each member's connection is joined to the sidebar's mixer AND to the
parent's with directions and gains that realise the sidebar's link (focus/sidebar_media.py).
Media servers need not support conference-to-conference joins (427, s4.6); the bundled one
refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from mediactrl.mixer import model as m
from mediactrl.mixer.model import Direction, MixerStatus

__all__ = [
    "AUDIO",
    "ConferenceSpec",
    "DesiredState",
    "Item",
    "JoinSpec",
    "ServerState",
    "Step",
    "apply_answer",
    "connection_id",
    "participant_streams",
    "plan",
    "state_from_audit",
    "streams_for_status",
]

AUDIO = "audio"

Item = str | tuple[str, str]
"""A refused or failed item: a conference id, or the (id1, id2) of a join."""


def connection_id(local_tag: str, remote_tag: str) -> str:
    """The RFC 6230 A.1 connectionid of a SIP dialog: local tag ':' remote tag."""
    if not local_tag or not remote_tag or ":" in local_tag + remote_tag:
        raise ValueError("dialog tags must be non-empty and without ':'")
    return f"{local_tag}:{remote_tag}"


def _gain(db: int | None) -> m.Volume | None:
    return None if db is None else m.Volume(m.VolumeControlType.SETGAIN, str(db))


def participant_streams(
    *,
    muted: bool = False,
    deaf: bool = False,
    speak_gain_db: int | None = None,
    listen_gain_db: int | None = None,
) -> tuple[m.Stream, ...]:
    """Audio streams of a connection (id1) joined to a conference (id2).

    Without gains one <stream> carries the direction; with a gain each direction gets its own
    <stream> so its volume is set independently (s4.2.2.2, s4.2.2.5).
    """
    if muted and deaf:
        return (m.Stream(AUDIO, direction=Direction.INACTIVE),)
    if speak_gain_db is None and listen_gain_db is None:
        if muted:
            return (m.Stream(AUDIO, direction=Direction.RECVONLY),)
        if deaf:
            return (m.Stream(AUDIO, direction=Direction.SENDONLY),)
        return (m.Stream(AUDIO),)
    streams: list[m.Stream] = []
    if not muted:
        streams.append(m.Stream(AUDIO, direction=Direction.SENDONLY, volume=_gain(speak_gain_db)))
    if not deaf:
        streams.append(m.Stream(AUDIO, direction=Direction.RECVONLY, volume=_gain(listen_gain_db)))
    return tuple(streams)


def streams_for_status(
    status: str, *, speak_gain_db: int | None = None, listen_gain_db: int | None = None
) -> tuple[m.Stream, ...]:
    """Streams of a connection joined to a conference for an RFC 4575 s5.8.5 media <status>.

    The conference event package gives the direction "from the participant's point of view"
    (a muted participant is recvonly), which is also RFC 6505's direction with the connection
    as id1, so the focus's user state maps over unchanged.
    """
    direction = Direction(status)
    return participant_streams(
        muted=direction in (Direction.RECVONLY, Direction.INACTIVE),
        deaf=direction in (Direction.SENDONLY, Direction.INACTIVE),
        speak_gain_db=speak_gain_db,
        listen_gain_db=listen_gain_db,
    )


def _is_connection(entity: str) -> bool:
    return ":" in entity  # A.1 connection ids have one; the focus's conference ids none


@dataclass(frozen=True)
class ConferenceSpec:
    """A conference mixer the focus wants (RFC 6505 s4.2.1.1)."""

    conference_id: str
    audio_mixing: m.AudioMixing | None = None
    active_talkers_interval: int | None = None  # seconds; None: no active-talkers events
    codecs: tuple[m.Codec, ...] | None = None
    reserved_talkers: int = 0
    reserved_listeners: int = 0

    def subscribe(self) -> m.Subscribe | None:
        if self.active_talkers_interval is None:
            return None
        return m.Subscribe(m.ActiveTalkersSub(self.active_talkers_interval))

    def create(self) -> m.CreateConference:
        return m.CreateConference(
            self.conference_id,
            self.reserved_talkers,
            self.reserved_listeners,
            self.codecs,
            self.audio_mixing,
            subscribe=self.subscribe(),
        )

    def modify(self) -> m.ModifyConference | None:
        """The <modifyconference> restating these settings, or None when there is none to
        state (the element needs one child, s4.2.1.2)."""
        if self.codecs is None and self.audio_mixing is None and self.subscribe() is None:
            return None
        return m.ModifyConference(
            self.conference_id, self.codecs, self.audio_mixing, subscribe=self.subscribe()
        )


@dataclass(frozen=True)
class JoinSpec:
    """A join between two entities; ``streams`` oriented from id1.

    In the known state ``streams`` is None when the server has the join but its streams are
    not known (an <audit> lists joins without streams, s4.3.2.2.2).
    """

    id1: str
    id2: str
    streams: tuple[m.Stream, ...] | None = (m.Stream(AUDIO),)

    @property
    def key(self) -> frozenset[str]:
        return frozenset((self.id1, self.id2))

    def oriented(self, id1: str) -> tuple[m.Stream, ...] | None:
        """The streams seen from ``id1``."""
        if self.streams is None or id1 == self.id1:
            return self.streams
        return tuple(replace(s, direction=_FLIP[s.direction]) for s in self.streams)


_FLIP = {
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.INACTIVE: Direction.INACTIVE,
}


def _joins_without(
    joins: Mapping[frozenset[str], JoinSpec], entity: str
) -> dict[frozenset[str], JoinSpec]:
    return {k: v for k, v in joins.items() if entity not in k}


@dataclass(frozen=True)
class DesiredState:
    """What the focus wants the media server to have.  The ``with_``/``without_`` methods
    return the changed wish; a conference taken away takes its joins with it."""

    conferences: Mapping[str, ConferenceSpec] = field(default_factory=dict)
    joins: Mapping[frozenset[str], JoinSpec] = field(default_factory=dict)

    def with_conference(self, spec: ConferenceSpec) -> DesiredState:
        return replace(self, conferences={**self.conferences, spec.conference_id: spec})

    def without_conference(self, conference_id: str) -> DesiredState:
        conferences = {k: v for k, v in self.conferences.items() if k != conference_id}
        return DesiredState(conferences, _joins_without(self.joins, conference_id))

    def with_join(self, join: JoinSpec) -> DesiredState:
        """Raises ValueError for a join of an entity with itself or with a conference that is
        not wanted (the caller's fault: ensure the conference first)."""
        if join.id1 == join.id2:
            raise ValueError("an entity cannot be joined to itself")
        for entity in (join.id1, join.id2):
            if not _is_connection(entity) and entity not in self.conferences:
                raise ValueError(f"conference {entity} is not wanted; ensure_conference first")
        return replace(self, joins={**self.joins, join.key: join})

    def without_join(self, id1: str, id2: str) -> DesiredState:
        key = frozenset((id1, id2))
        return replace(self, joins={k: v for k, v in self.joins.items() if k != key})

    def without_connection(self, connection: str) -> DesiredState:
        """Every join of ``connection`` dropped (its SIP leg ended)."""
        return replace(self, joins=_joins_without(self.joins, connection))

    def without_target(self, target: ConferenceSpec | JoinSpec | None) -> DesiredState:
        """The wish without what a refused :class:`Step` served."""
        if isinstance(target, ConferenceSpec):
            return self.without_conference(target.conference_id)
        if isinstance(target, JoinSpec):
            return self.without_join(target.id1, target.id2)
        return self


@dataclass(frozen=True)
class ServerState:
    """What is known of the media server (None settings: exists, settings unknown)."""

    conferences: Mapping[str, ConferenceSpec | None] = field(default_factory=dict)
    joins: Mapping[frozenset[str], JoinSpec] = field(default_factory=dict)

    def without_conference(self, conference_id: str) -> ServerState:
        """The conference gone from the server, and its joins with it (s4.2.1.3)."""
        conferences = {k: v for k, v in self.conferences.items() if k != conference_id}
        return ServerState(conferences, _joins_without(self.joins, conference_id))

    def without_join(self, id1: str, id2: str) -> ServerState:
        key = frozenset((id1, id2))
        return replace(self, joins={k: v for k, v in self.joins.items() if k != key})

    def with_conference(self, conference_id: str, spec: ConferenceSpec | None) -> ServerState:
        return replace(self, conferences={**self.conferences, conference_id: spec})

    def with_join(self, join: JoinSpec) -> ServerState:
        return replace(self, joins={**self.joins, join.key: join})


@dataclass(frozen=True)
class Step:
    """One mixer request of a plan and the desired item it serves."""

    request: m.MixerMessage
    target: ConferenceSpec | JoinSpec | None = None

    @property
    def item(self) -> Item:
        """What to name when this step is refused."""
        if isinstance(self.target, ConferenceSpec):
            return self.target.conference_id
        if isinstance(self.target, JoinSpec):
            return (self.target.id1, self.target.id2)
        return type(self.request).__name__


def plan(desired: DesiredState, known: ServerState) -> list[Step]:
    """The mixer requests that turn ``known`` into ``desired``, in a safe order.

    Unwanted joins go first (a destroyed conference takes its joins with it, s4.2.1.3), then
    unwanted conferences, then missing or differing conferences, then joins (both ends exist
    by then), then joins whose streams differ.
    """
    steps: list[Step] = []
    doomed = {c for c in known.conferences if c not in desired.conferences}
    for key, join in known.joins.items():
        if key not in desired.joins and not (key & doomed):
            steps.append(Step(m.Unjoin(join.id1, join.id2)))
    steps.extend(Step(m.DestroyConference(c)) for c in sorted(doomed))
    for conference_id, spec in desired.conferences.items():
        if conference_id not in known.conferences:
            steps.append(Step(spec.create(), spec))
        elif known.conferences[conference_id] != spec:
            modify = spec.modify()
            if modify is not None:
                steps.append(Step(modify, spec))
    for key, wanted in desired.joins.items():
        have = known.joins.get(key)
        streams = wanted.streams or (m.Stream(AUDIO),)
        if have is None:
            steps.append(Step(m.Join(wanted.id1, wanted.id2, streams), wanted))
        elif have.oriented(wanted.id1) != streams:
            steps.append(Step(m.ModifyJoin(wanted.id1, wanted.id2, streams), wanted))
    return steps


def apply_answer(
    known: ServerState, step: Step, answer: m.MixerMessage
) -> tuple[ServerState, str | None]:
    """The known state after ``answer`` to ``step``; and a failure reason when the server
    refused something that retrying cannot fix (the caller drops it from the desired state).

    Answers that say the server already is as wanted (405 exists, 408 already joined) or
    already lacks what we remove (406, 409) update the known state instead of failing.
    """
    status = answer.status if isinstance(answer, m.Response | m.AuditResponse) else 400
    status = MixerStatus.classify(status)
    reason = getattr(answer, "reason", None) or f"status {int(status)}"
    request = step.request
    if isinstance(request, m.CreateConference):
        assert isinstance(step.target, ConferenceSpec)
        if status == MixerStatus.OK:
            return known.with_conference(step.target.conference_id, step.target), None
        if status == MixerStatus.CONFERENCE_ALREADY_EXISTS:
            return known.with_conference(step.target.conference_id, None), None
    elif isinstance(request, m.ModifyConference):
        if status == MixerStatus.OK:
            assert isinstance(step.target, ConferenceSpec)
            return known.with_conference(request.conferenceid, step.target), None
        if status == MixerStatus.CONFERENCE_DOES_NOT_EXIST:
            return known.without_conference(request.conferenceid), None
    elif isinstance(request, m.DestroyConference):
        if status in (MixerStatus.OK, MixerStatus.CONFERENCE_DOES_NOT_EXIST):
            return known.without_conference(request.conferenceid), None
    elif isinstance(request, m.Join | m.ModifyJoin):
        if status == MixerStatus.OK:
            return known.with_join(JoinSpec(request.id1, request.id2, request.streams)), None
        if status == MixerStatus.ALREADY_JOINED and isinstance(request, m.Join):
            return known.with_join(JoinSpec(request.id1, request.id2, None)), None
        if status == MixerStatus.NOT_JOINED and isinstance(request, m.ModifyJoin):
            return known.without_join(request.id1, request.id2), None
    elif isinstance(request, m.Unjoin):
        if status in (MixerStatus.OK, MixerStatus.NOT_JOINED):
            return known.without_join(request.id1, request.id2), None
    else:
        return known, None
    return known, reason


def state_from_audit(answer: m.AuditResponse) -> ServerState:
    """The known state an <auditresponse> tells (settings and streams unknown)."""
    mixers = answer.mixers or m.Mixers()
    conferences: dict[str, ConferenceSpec | None] = {
        c.conferenceid: None for c in mixers.conferences
    }
    joins = {frozenset((j.id1, j.id2)): JoinSpec(j.id1, j.id2, None) for j in mixers.joins}
    return ServerState(conferences, joins)
