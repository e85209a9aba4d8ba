"""The focus's media driver: the DESIRED mixing state, reconciled over a CFW channel.

The focus says what it wants (conferences with their mixing settings, joins of connections and
conferences with per-stream direction and volume) and :class:`MediaDriver` makes the media
server match it with msc-mixer/1.0 requests (RFC 6505).  The part that decides *which* requests
is pure and synchronous: :func:`plan` compares the desired state with what is known of the
server and returns the steps; :func:`apply_answer` folds each answer into the known state.
The async part only sends the steps, one at a time, and learns the server's state by <audit>
whenever a channel (re)opens, so a media server restart or a dropped channel heals itself:
conferences and joins are re-created, SIP calls are never touched.

Ids follow RFC 6230 A.1: a connection is ``local-tag:remote-tag`` of the focus's SIP dialog
with the media server (:func:`connection_id`); a conference id is chosen by the focus (so it
can be re-created under the same name after a media server restart).

Media rules of a participant (:func:`participant_streams`): muted means the connection only
receives from the mix (recvonly from id1 = the connection), deaf means it only sends, a gain is
a <volume controltype="setgain"> on the direction it applies to (s4.2.2.5.1).  Sidebars (whisper,
coaching, RFC 7058 s6.3.4) are a conference joined to its parent conference
(:func:`sidebar_streams`) plus participants joined to both with different rules.

DTMF (RFC 4733) from a participant reaches the focus through msc-ivr/1.0 (RFC 6231): for every
connection the focus wants digits of (:meth:`MediaDriver.watch_dtmf`), the driver keeps one
dialog without operations that subscribes to all DTMF (<dtmfsub matchmode="all"/>) and
re-starts it on every new channel (dialogs end with the channel that started them); each digit
of a <dtmfnotify> goes to ``on_dtmf(connection_id, digit)``.  Digits pressed while no channel is
open are lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from mediactrl.client import ChannelDown, ControlError, ControlTimeout, MediaControlClient
from mediactrl.ivr import model as ivr
from mediactrl.ivr.codec import PACKAGE as IVR_PACKAGE
from mediactrl.mixer import model as m
from mediactrl.mixer.model import Direction, MixerStatus

__all__ = [
    "ConferenceSpec",
    "DesiredState",
    "JoinSpec",
    "MediaDriver",
    "MediaDriverError",
    "ServerState",
    "Step",
    "apply_answer",
    "connection_id",
    "participant_streams",
    "plan",
    "sidebar_streams",
    "state_from_audit",
    "streams_for_status",
]

log = logging.getLogger(__name__)

AUDIO = "audio"


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


def sidebar_streams(
    *, hears_parent: bool = True, heard_in_parent: bool = False, gain_db: int | None = None
) -> tuple[m.Stream, ...]:
    """Audio streams of a sidebar conference (id1) joined to its parent conference (id2).

    Coaching: the sidebar hears the main conference, the main conference does not hear the
    sidebar (the default).  Whisper into the main room: ``heard_in_parent`` with a gain.
    """
    if hears_parent and heard_in_parent:
        direction = Direction.SENDRECV
    elif hears_parent:
        direction = Direction.RECVONLY
    elif heard_in_parent:
        direction = Direction.SENDONLY
    else:
        direction = Direction.INACTIVE
    return (m.Stream(AUDIO, direction=direction, volume=_gain(gain_db)),)


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


@dataclass(frozen=True)
class DesiredState:
    """What the focus wants the media server to have."""

    conferences: Mapping[str, ConferenceSpec] = field(default_factory=dict)
    joins: Mapping[frozenset[str], JoinSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerState:
    """What is known of the media server (None settings: exists, settings unknown)."""

    conferences: Mapping[str, ConferenceSpec | None] = field(default_factory=dict)
    joins: Mapping[frozenset[str], JoinSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One mixer request of a plan and the desired item it serves."""

    request: m.MixerMessage
    target: ConferenceSpec | JoinSpec | None = None


def plan(desired: DesiredState, known: ServerState) -> list[Step]:
    """The mixer requests that turn ``known`` into ``desired``, in a safe order.

    Unwanted joins go first (a destroyed conference takes its joins with it, s4.2.1.3), then
    unwanted conferences, then missing or differing conferences, then joins (both ends exist
    by then, conference-to-conference joins included), then joins whose streams differ.
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
    conferences = dict(known.conferences)
    joins = dict(known.joins)
    request = step.request
    failure: str | None = None
    if isinstance(request, m.CreateConference):
        assert isinstance(step.target, ConferenceSpec)
        if status == MixerStatus.OK:
            conferences[step.target.conference_id] = step.target
        elif status == MixerStatus.CONFERENCE_ALREADY_EXISTS:
            conferences[step.target.conference_id] = None
        else:
            failure = reason
    elif isinstance(request, m.ModifyConference):
        if status == MixerStatus.OK:
            assert isinstance(step.target, ConferenceSpec)
            conferences[request.conferenceid] = step.target
        elif status == MixerStatus.CONFERENCE_DOES_NOT_EXIST:
            _forget_conference(conferences, joins, request.conferenceid)
        else:
            failure = reason
    elif isinstance(request, m.DestroyConference):
        if status in (MixerStatus.OK, MixerStatus.CONFERENCE_DOES_NOT_EXIST):
            _forget_conference(conferences, joins, request.conferenceid)
        else:
            failure = reason
    elif isinstance(request, m.Join):
        key = frozenset((request.id1, request.id2))
        if status == MixerStatus.OK:
            joins[key] = JoinSpec(request.id1, request.id2, request.streams)
        elif status == MixerStatus.ALREADY_JOINED:
            joins[key] = JoinSpec(request.id1, request.id2, None)
        else:
            failure = reason
    elif isinstance(request, m.ModifyJoin):
        key = frozenset((request.id1, request.id2))
        if status == MixerStatus.OK:
            joins[key] = JoinSpec(request.id1, request.id2, request.streams)
        elif status == MixerStatus.NOT_JOINED:
            joins.pop(key, None)
        else:
            failure = reason
    elif isinstance(request, m.Unjoin):
        key = frozenset((request.id1, request.id2))
        if status in (MixerStatus.OK, MixerStatus.NOT_JOINED):
            joins.pop(key, None)
        else:
            failure = reason
    return ServerState(conferences, joins), failure


def _forget_conference(
    conferences: dict[str, ConferenceSpec | None],
    joins: dict[frozenset[str], JoinSpec],
    conference_id: str,
) -> None:
    conferences.pop(conference_id, None)
    for key in [k for k in joins if conference_id in k]:
        del joins[key]


def state_from_audit(answer: m.AuditResponse) -> ServerState:
    """The known state an <auditresponse> tells (settings and streams unknown)."""
    mixers = answer.mixers or m.Mixers()
    conferences: dict[str, ConferenceSpec | None] = {
        c.conferenceid: None for c in mixers.conferences
    }
    joins = {frozenset((j.id1, j.id2)): JoinSpec(j.id1, j.id2, None) for j in mixers.joins}
    return ServerState(conferences, joins)


def _drop_desired(desired: DesiredState, target: ConferenceSpec | JoinSpec | None) -> DesiredState:
    conferences = dict(desired.conferences)
    joins = dict(desired.joins)
    if isinstance(target, ConferenceSpec):
        conferences.pop(target.conference_id, None)
        for key in [k for k in joins if target.conference_id in k]:
            del joins[key]
    elif isinstance(target, JoinSpec):
        joins.pop(target.key, None)
    return DesiredState(conferences, joins)


class MediaDriverError(Exception):
    """The media server refused part of the desired state; it was dropped from it.

    ``failures`` maps each refused item (conference id, or (id1, id2)) to the reason.
    """

    def __init__(self, failures: Mapping[str | tuple[str, str], str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in failures.items()))
        self.failures = dict(failures)


ActiveTalkersCallback = Callable[[str, tuple[str, ...]], None]
UnjoinedCallback = Callable[[str, str, int], None]
ConferenceExitCallback = Callable[[str, int], None]
RefusedCallback = Callable[[MediaDriverError], None]
DtmfCallback = Callable[[str, str], None]


class MediaDriver:
    """Keeps the desired mixing state and reconciles the media server with it.

    Every mutating call updates the desired state, then reconciles.  When the channel is down
    the call returns once the desired state is recorded: the driver re-audits and reconciles
    as soon as the client reopens a channel.  A request the media server refuses drops the
    item from the desired state and raises :class:`MediaDriverError`.

    Callbacks report what the media server did on its own: ``on_active_talkers(conference_id,
    talkers)``, ``on_unjoined(id1, id2, status)`` (s4.2.4.2 status 1 or 2, the join is
    dropped), ``on_conference_exit(conference_id, status)`` (s4.2.4.3, not for our destroys),
    ``on_refused(error)`` when the reconciliation after a reconnect had items refused (a
    media server restart loses its SIP media legs: their joins come back 412),
    ``on_dtmf(connection_id, digit)`` for each digit of a watched connection (watch_dtmf).
    """

    MAX_ROUNDS = 4  # plans re-run after answers that changed the known state

    def __init__(
        self,
        client: MediaControlClient,
        *,
        on_active_talkers: ActiveTalkersCallback | None = None,
        on_unjoined: UnjoinedCallback | None = None,
        on_conference_exit: ConferenceExitCallback | None = None,
        on_refused: RefusedCallback | None = None,
        on_dtmf: DtmfCallback | None = None,
        request_timeout: float | None = None,
    ) -> None:
        self.client = client
        self.on_dtmf = on_dtmf
        self._dtmf_wanted: set[str] = set()  # connections whose digits the focus wants
        self._dtmf_dialogs: dict[str, str] = {}  # dialogid -> connection, on this channel
        self._dialog_numbers = itertools.count(1)
        self.on_refused = on_refused
        self.on_active_talkers = on_active_talkers
        self.on_unjoined = on_unjoined
        self.on_conference_exit = on_conference_exit
        self.request_timeout = request_timeout
        self._desired = DesiredState()
        self._known = ServerState()
        self._lock = asyncio.Lock()
        self.resyncs = 0  # completed audits after a channel opened (diagnostics)
        client.on_event = self._on_event
        client.on_ivr_event = self._on_ivr_event
        client.on_channel_up = self.resync

    @property
    def desired(self) -> DesiredState:
        """A read-only view of what the focus wants."""
        return DesiredState(
            MappingProxyType(dict(self._desired.conferences)),
            MappingProxyType(dict(self._desired.joins)),
        )

    @property
    def known(self) -> ServerState:
        """A read-only view of what is known of the media server."""
        return ServerState(
            MappingProxyType(dict(self._known.conferences)),
            MappingProxyType(dict(self._known.joins)),
        )

    @property
    def in_sync(self) -> bool:
        """True when nothing remains to be done (the channel is up and the plan is empty)."""
        return self.client.is_up and not plan(self._desired, self._known)

    # ----------------------------------------------------------------- the focus's API
    async def ensure_conference(self, spec: ConferenceSpec) -> None:
        """Wants a conference mixer with these settings (created or modified)."""
        conferences = dict(self._desired.conferences)
        conferences[spec.conference_id] = spec
        self._desired = replace(self._desired, conferences=conferences)
        await self.reconcile()

    async def destroy_conference(self, conference_id: str) -> None:
        """No longer wants a conference (its joins go with it)."""
        self._desired = _drop_desired(self._desired, ConferenceSpec(conference_id))
        await self.reconcile()

    async def set_join(self, id1: str, id2: str, streams: Iterable[m.Stream]) -> None:
        """Wants ``id1`` and ``id2`` joined with these streams (join or modifyjoin)."""
        if id1 == id2:
            raise ValueError("an entity cannot be joined to itself")
        streams = tuple(streams) or (m.Stream(AUDIO),)
        for entity in (id1, id2):
            if ":" not in entity and entity not in self._desired.conferences:
                raise ValueError(f"conference {entity} is not wanted; ensure_conference first")
        joins = dict(self._desired.joins)
        spec = JoinSpec(id1, id2, streams)
        joins[spec.key] = spec
        self._desired = replace(self._desired, joins=joins)
        await self.reconcile()

    async def join_participant(
        self,
        connection: str,
        conference_id: str,
        *,
        muted: bool = False,
        deaf: bool = False,
        speak_gain_db: int | None = None,
        listen_gain_db: int | None = None,
    ) -> None:
        """Joins (or re-rules) a connection to a conference: mute, deaf and gains."""
        streams = participant_streams(
            muted=muted, deaf=deaf, speak_gain_db=speak_gain_db, listen_gain_db=listen_gain_db
        )
        await self.set_join(connection, conference_id, streams)

    async def join_sidebar(
        self,
        sidebar_id: str,
        parent_id: str,
        *,
        hears_parent: bool = True,
        heard_in_parent: bool = False,
        gain_db: int | None = None,
    ) -> None:
        """Joins a sidebar conference to its parent (coaching/whisper media rules)."""
        streams = sidebar_streams(
            hears_parent=hears_parent, heard_in_parent=heard_in_parent, gain_db=gain_db
        )
        await self.set_join(sidebar_id, parent_id, streams)

    async def unjoin(self, id1: str, id2: str) -> None:
        """No longer wants ``id1`` and ``id2`` joined."""
        joins = dict(self._desired.joins)
        joins.pop(frozenset((id1, id2)), None)
        self._desired = replace(self._desired, joins=joins)
        await self.reconcile()

    async def forget_connection(self, connection: str) -> None:
        """A connection ended (SIP BYE): every join of it, and its digits, are no longer
        wanted."""
        self._dtmf_wanted.discard(connection)
        for dialogid in [d for d, c in self._dtmf_dialogs.items() if c == connection]:
            del self._dtmf_dialogs[dialogid]  # the media server ends it with the connection
        joins = {k: v for k, v in self._desired.joins.items() if connection not in k}
        self._desired = replace(self._desired, joins=joins)
        await self.reconcile()

    # ----------------------------------------------------------------- DTMF (RFC 6231)
    @property
    def watched_dtmf(self) -> frozenset[str]:
        """Connections whose digits are wanted."""
        return frozenset(self._dtmf_wanted)

    @property
    def dtmf_active(self) -> frozenset[str]:
        """Connections with a DTMF dialog running on the current channel."""
        return frozenset(self._dtmf_dialogs.values())

    async def watch_dtmf(self, connection: str) -> None:
        """Wants every digit of ``connection`` reported to ``on_dtmf`` (idempotent).

        With the channel down, or on a media server without msc-ivr/1.0, the wish is kept and
        served when a channel that has the package opens.  Raises :class:`MediaDriverError`
        (and forgets the wish) when the media server refuses, e.g. 407 for a connection it
        does not have.
        """
        self._dtmf_wanted.add(connection)
        async with self._lock:
            failure = await self._start_dtmf(connection)
        if failure is not None:
            raise MediaDriverError({connection: failure})

    async def unwatch_dtmf(self, connection: str) -> None:
        """No longer wants the digits of ``connection``: its dialog is terminated."""
        self._dtmf_wanted.discard(connection)
        async with self._lock:
            for dialogid in [d for d, c in self._dtmf_dialogs.items() if c == connection]:
                del self._dtmf_dialogs[dialogid]
                try:
                    await self.client.ivr(
                        ivr.DialogTerminate(dialogid, immediate=True),
                        timeout=self.request_timeout,
                    )
                except (ChannelDown, ControlTimeout, ControlError) as exc:
                    # A lost channel takes the dialog with it; a refusal means it is gone.
                    log.info("dialogterminate %s: %s", dialogid, exc)

    async def _start_dtmf(self, connection: str) -> str | None:
        """Starts the DTMF dialog of ``connection`` unless running; the refusal reason, if any."""
        if connection in self._dtmf_dialogs.values() or connection not in self._dtmf_wanted:
            return None
        if not self.client.has_package(IVR_PACKAGE):
            if self.client.is_up:
                log.warning("the media server has no %s: no DTMF from %s", IVR_PACKAGE, connection)
            return None
        dialogid = f"dtmf-{next(self._dialog_numbers)}"
        # Known before the request goes out: a digit may follow the 200 at once.
        self._dtmf_dialogs[dialogid] = connection
        request = ivr.DialogStart(
            connectionid=connection,
            dialogid=dialogid,
            dialog=ivr.Dialog(),
            subscribe=ivr.Subscribe(ivr.DtmfSub(ivr.DtmfMatchMode.ALL)),
        )
        try:
            answer = await self.client.ivr(request, timeout=self.request_timeout)
        except (ChannelDown, ControlTimeout) as exc:
            self._dtmf_dialogs.pop(dialogid, None)
            log.info(
                "DTMF dialog for %s not started (%s): retried on the next channel", connection, exc
            )
            return None
        except ControlError as exc:
            answer = ivr.Response(exc.code, dialogid, exc.reason)
        if answer.status == ivr.IvrStatus.OK:
            return None
        self._dtmf_dialogs.pop(dialogid, None)
        self._dtmf_wanted.discard(connection)
        return f"{answer.status} {answer.reason or ''}".strip()

    async def _restart_dtmf(self) -> dict[str | tuple[str, str], str]:
        # A new channel: the dialogs of the previous one ended with it on the server.
        self._dtmf_dialogs.clear()
        failures: dict[str | tuple[str, str], str] = {}
        for connection in sorted(self._dtmf_wanted):
            failure = await self._start_dtmf(connection)
            if failure is not None:
                failures[connection] = failure
        return failures

    def _on_ivr_event(self, event: ivr.Event) -> None:
        connection = self._dtmf_dialogs.get(event.dialogid)
        if connection is None:
            log.info("IVR event of unknown dialog %s ignored", event.dialogid)
            return
        note = event.notification
        if isinstance(note, ivr.DtmfNotify):
            if self.on_dtmf is not None:
                for digit in note.dtmf:
                    self.on_dtmf(connection, digit)
        else:
            del self._dtmf_dialogs[event.dialogid]
            if note.status != ivr.DialogExitStatus.TERMINATED:
                # The connection ended (2) or the dialog failed: the focus decides again.
                self._dtmf_wanted.discard(connection)
                log.info("DTMF dialog of %s exited with %s", connection, note.status)

    # ----------------------------------------------------------------- reconciliation
    async def resync(self) -> None:
        """Audits the media server and reconciles (run whenever a channel opens); DTMF
        dialogs are started again on the new channel."""
        async with self._lock:
            refused_dtmf = await self._restart_dtmf()
            if refused_dtmf:
                log.warning("after resync, DTMF refused: %s", refused_dtmf)
                if self.on_refused is not None:
                    self.on_refused(MediaDriverError(refused_dtmf))
            try:
                answer = await self.client.mixer(
                    m.Audit(capabilities=False), timeout=self.request_timeout
                )
            except (ChannelDown, ControlTimeout, ControlError) as exc:
                log.info("audit failed: %s", exc)
                return
            if not isinstance(answer, m.AuditResponse) or answer.status != 200:
                log.warning("media server audit refused: %s", answer)
                return
            self._known = state_from_audit(answer)
            self.resyncs += 1
            try:
                await self._run_plan()
            except MediaDriverError as refused:
                # Nobody awaits a resync: report through the callback instead.
                log.warning("after resync, refused: %s", refused)
                if self.on_refused is not None:
                    self.on_refused(refused)

    async def reconcile(self) -> None:
        """Sends what the plan says until the known state matches the desired one."""
        async with self._lock:
            await self._run_plan()

    async def _run_plan(self) -> None:
        failures: dict[str | tuple[str, str], str] = {}
        for _ in range(self.MAX_ROUNDS):
            steps = plan(self._desired, self._known)
            if not steps:
                break
            for step in steps:
                try:
                    answer = await self.client.mixer(step.request, timeout=self.request_timeout)
                except (ChannelDown, ControlTimeout) as exc:
                    # The channel will reopen and resync; the desired state is kept.
                    log.info("media server unreachable (%s): reconciling later", exc)
                    return
                except ControlError as exc:
                    answer = m.Response(exc.code, f"framework status {exc.code}")
                self._known, failure = apply_answer(self._known, step, answer)
                if failure is not None:
                    failures[_name(step)] = failure
                    self._desired = _drop_desired(self._desired, step.target)
        if failures:
            raise MediaDriverError(failures)

    # ----------------------------------------------------------------- events
    def _on_event(self, event: m.Event) -> None:
        note = event.notification
        if isinstance(note, m.ActiveTalkersNotify):
            talkers = tuple(t.connectionid or t.conferenceid or "" for t in note.talkers)
            if self.on_active_talkers is not None:
                self.on_active_talkers(note.conferenceid, talkers)
        elif isinstance(note, m.UnjoinNotify):
            key = frozenset((note.id1, note.id2))
            joins = dict(self._known.joins)
            joins.pop(key, None)
            self._known = replace(self._known, joins=joins)
            if note.status != 0 and key in self._desired.joins:
                # The server ended it (an entity is gone or failed): the focus decides again.
                self._desired = _drop_desired(self._desired, self._desired.joins[key])
                if self.on_unjoined is not None:
                    self.on_unjoined(note.id1, note.id2, note.status)
        elif isinstance(note, m.ConferenceExit):
            conferences = dict(self._known.conferences)
            joins = dict(self._known.joins)
            _forget_conference(conferences, joins, note.conferenceid)
            self._known = ServerState(conferences, joins)
            if note.conferenceid in self._desired.conferences:
                spec = self._desired.conferences[note.conferenceid]
                self._desired = _drop_desired(self._desired, spec)
                if self.on_conference_exit is not None:
                    self.on_conference_exit(note.conferenceid, note.status)


def _name(step: Step) -> str | tuple[str, str]:
    target = step.target
    if isinstance(target, ConferenceSpec):
        return target.conference_id
    if isinstance(target, JoinSpec):
        return (target.id1, target.id2)
    return type(step.request).__name__
