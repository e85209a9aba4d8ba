"""The focus's media driver: the asyncio half that keeps the media server's mixers as the
focus wants them, over a CFW channel (RFC 6230) with msc-mixer/1.0 (RFC 6505) and msc-ivr/1.0
(RFC 6231).

The focus states its wishes (conferences with their mixing settings, joins with per-stream
direction and volume) and :class:`MediaDriver` records them in a
:class:`~mediactrl.plan.DesiredState`, then sends what :func:`~mediactrl.plan.plan` says, one
request at a time, folding each answer in with :func:`~mediactrl.plan.apply_answer`.  Whenever
a channel (re)opens it learns the server's state by <audit>, so a media server restart or a
dropped channel heals itself: conferences and joins are re-created, SIP calls are never
touched.  How sidebars are realised (separate mixers, members joined to both) is in
:mod:`mediactrl.plan`.

DTMF (RFC 4733) from a participant reaches the focus through msc-ivr/1.0: for every
connection the focus wants digits of (:meth:`MediaDriver.watch_dtmf`), the driver keeps one
dialog without operations that subscribes to all DTMF (<dtmfsub matchmode="all"/>) and
re-starts it on every new channel (dialogs end with the channel that started them); each digit
of a <dtmfnotify> goes to ``on_dtmf(connection_id, digit)``.  Digits pressed while no channel is
open are lost.

Media timeout (our msc-mixer extension, mediactrl/README.md): with ``media_timeout`` every join
of a connection asks for it (an attribute a media server without the extension ignores), and
a <media-timeout> event goes to ``on_media_timeout(connection_id)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from mediactrl.client import ChannelDown, ControlError, ControlTimeout, MediaControlClient
from mediactrl.ivr import model as ivr
from mediactrl.ivr.codec import PACKAGE as IVR_PACKAGE
from mediactrl.mixer import model as m
from mediactrl.plan import (
    AUDIO,
    ConferenceSpec,
    DesiredState,
    Item,
    JoinSpec,
    ServerState,
    apply_answer,
    plan,
    state_from_audit,
)

__all__ = ["MediaDriver", "MediaDriverError"]

log = logging.getLogger(__name__)


class MediaDriverError(Exception):
    """The media server refused part of the desired state; it was dropped from it.

    ``failures`` maps each refused item (conference id, or (id1, id2)) to the reason.
    """

    def __init__(self, failures: Mapping[Item, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in failures.items()))
        self.failures = dict(failures)


ActiveTalkersCallback = Callable[[str, tuple[str, ...]], None]
UnjoinedCallback = Callable[[str, str, int], None]
ConferenceExitCallback = Callable[[str, int], None]
RefusedCallback = Callable[[MediaDriverError], None]
DtmfCallback = Callable[[str, str], None]
MediaTimeoutCallback = Callable[[str], None]


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
    ``on_dtmf(connection_id, digit)`` for each digit of a watched connection (watch_dtmf),
    ``on_media_timeout(connection_id)`` when a connection went silent for ``media_timeout``
    seconds (None: not asked).
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
        on_media_timeout: MediaTimeoutCallback | None = None,
        media_timeout: int | None = None,
    ) -> None:
        self.client = client
        self.on_dtmf = on_dtmf
        self.on_media_timeout = on_media_timeout
        self.media_timeout = media_timeout
        self._dtmf_wanted: set[str] = set()  # connections whose digits the focus wants
        self._dtmf_dialogs: dict[str, str] = {}  # dialogid -> connection, on this channel
        self._dialog_numbers = itertools.count(1)
        self.on_refused = on_refused
        self.on_active_talkers = on_active_talkers
        self.on_unjoined = on_unjoined
        self.on_conference_exit = on_conference_exit
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
        self._desired = self._desired.with_conference(spec)
        await self.reconcile()

    async def destroy_conference(self, conference_id: str) -> None:
        """No longer wants a conference (its joins go with it)."""
        self._desired = self._desired.without_conference(conference_id)
        await self.reconcile()

    async def set_join(self, id1: str, id2: str, streams: Iterable[m.Stream]) -> None:
        """Wants ``id1`` and ``id2`` joined with these streams (join or modifyjoin; for a
        participant, :func:`~mediactrl.plan.participant_streams`).  Raises ValueError for a
        conference not wanted (ensure_conference first) or a join of an entity with itself."""
        join = JoinSpec(id1, id2, tuple(streams) or (m.Stream(AUDIO),))
        self._desired = self._desired.with_join(join)
        await self.reconcile()

    async def unjoin(self, id1: str, id2: str) -> None:
        """No longer wants ``id1`` and ``id2`` joined."""
        self._desired = self._desired.without_join(id1, id2)
        await self.reconcile()

    async def forget_connection(self, connection: str) -> None:
        """A connection ended (SIP BYE): every join of it, and its digits, are no longer
        wanted."""
        self._dtmf_wanted.discard(connection)
        for dialogid in [d for d, c in self._dtmf_dialogs.items() if c == connection]:
            del self._dtmf_dialogs[dialogid]  # the media server ends it with the connection
        self._desired = self._desired.without_connection(connection)
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
                    await self.client.ivr(ivr.DialogTerminate(dialogid, immediate=True))
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
            answer = await self.client.ivr(request)
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

    async def _restart_dtmf(self) -> dict[Item, str]:
        # A new channel: the dialogs of the previous one ended with it on the server.
        self._dtmf_dialogs.clear()
        failures: dict[Item, str] = {}
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
                answer = await self.client.mixer(m.Audit(capabilities=False))
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
        failures: dict[Item, str] = {}
        for _ in range(self.MAX_ROUNDS):
            steps = plan(self._desired, self._known)
            if not steps:
                break
            for step in steps:
                request = step.request
                if isinstance(request, m.Join) and self.media_timeout is not None:
                    request = dataclasses.replace(request, media_timeout=self.media_timeout)
                try:
                    answer = await self.client.mixer(request)
                except (ChannelDown, ControlTimeout) as exc:
                    # The channel will reopen and resync; the desired state is kept.
                    log.info("media server unreachable (%s): reconciling later", exc)
                    return
                except ControlError as exc:
                    answer = m.Response(exc.code, f"framework status {exc.code}")
                self._known, failure = apply_answer(self._known, step, answer)
                if failure is not None:
                    failures[step.item] = failure
                    self._desired = self._desired.without_target(step.target)
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
            self._known = self._known.without_join(note.id1, note.id2)
            if note.status != 0 and frozenset((note.id1, note.id2)) in self._desired.joins:
                # The server ended it (an entity is gone or failed): the focus decides again.
                self._desired = self._desired.without_join(note.id1, note.id2)
                if self.on_unjoined is not None:
                    self.on_unjoined(note.id1, note.id2, note.status)
        elif isinstance(note, m.MediaTimeout):
            log.info("no media from %s for %d s", note.connectionid, note.silent_for)
            if self.on_media_timeout is not None:
                self.on_media_timeout(note.connectionid)
        elif isinstance(note, m.ConferenceExit):
            self._known = self._known.without_conference(note.conferenceid)
            if note.conferenceid in self._desired.conferences:
                self._desired = self._desired.without_conference(note.conferenceid)
                if self.on_conference_exit is not None:
                    self.on_conference_exit(note.conferenceid, note.status)
