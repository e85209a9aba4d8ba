"""The media server's msc-ivr/1.0 executor, DTMF part (RFC 6231); sans-IO.

What it executes: a <dialogstart> on an existing connection whose inline <dialog> has no
operations, carrying a <subscribe><dtmfsub/> (s4.2.2, s4.2.2.1).  Such a dialog stays STARTED
until a <dialogterminate> (dialogexit status 0), the end of its connection (status 2) or the
loss of the CFW channel that started it (nobody is left to notify, s4.2.5.1 is moot).  While it
runs, every RFC 4733 digit of its connection becomes a <dtmfnotify> (matchmode "all") on that
channel.  An empty dialog without a subscription completes at once (dialogexit status 1).

What it refuses, with the RFC's status: operations it cannot run (prompt 429, record 430,
collect/control 439), external documents (src, 420), prepared dialogs (none exist: 406),
conference dialogs (439), <stream> selections (428), <dialogprepare>/<audit> (439).

Dialog ids are scoped to the owner, the channel identifier (cfw-id / Dialog-ID) of the
channel that started them, as mixers are (RFC 6505 s7): two channels never collide, and a
channel can neither see nor terminate another's dialogs (for it they do not exist: 406).
Input: bodies and engine digits; output: a :class:`IvrOutcome` (the <response>) and
:class:`IvrNotice` events addressed to channels.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mediactrl.ivr.codec import IvrDecodeError, decode, encode
from mediactrl.ivr.model import (
    DialogExit,
    DialogExitStatus,
    DialogStart,
    DialogTerminate,
    DtmfMatchMode,
    DtmfNotify,
    Event,
    IvrMessage,
    IvrStatus,
    Response,
    UnsupportedRequest,
)
from mediactrl.server.mixer_service import swapped_connection_id

__all__ = ["IvrNotice", "IvrOutcome", "IvrService"]

log = logging.getLogger(__name__)

_UNSUPPORTED_OPERATION = {
    "prompt": (IvrStatus.UNSUPPORTED_PLAYBACK, "prompts are not played by this media server"),
    "record": (IvrStatus.UNSUPPORTED_RECORD, "recording is not supported by this media server"),
    "collect": (IvrStatus.OTHER_UNSUPPORTED, "<collect> is not supported; subscribe to DTMF"),
    "control": (IvrStatus.OTHER_UNSUPPORTED, "runtime controls are not supported"),
}


@dataclass(frozen=True)
class IvrNotice:
    """An <event> to send as a CONTROL on the channel ``channel`` (the starter's)."""

    channel: str
    event: Event


@dataclass(frozen=True)
class IvrOutcome:
    """The <response> to a request, and events to send after it."""

    response: Response
    notices: tuple[IvrNotice, ...] = ()

    def body(self) -> bytes:
        return encode(self.response)


@dataclass
class _Dialog:
    owner: str
    dialogid: str
    channel: str
    connectionid: str  # as the request named it (either orientation, RFC 6230 A.1)
    dtmf: DtmfMatchMode | None

    def on(self, endpoint_id: str) -> bool:
        return endpoint_id in (self.connectionid, swapped_connection_id(self.connectionid))


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def xsd_datetime(when: datetime) -> str:
    """An xsd:dateTime in UTC with milliseconds (s4.6.12)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class IvrService:
    """Runs DTMF-subscription dialogs; ``connection_exists(id)`` says whether a connection id
    (either orientation) is a live media leg of this media server."""

    def __init__(self, connection_exists: Callable[[str], bool]) -> None:
        self.connection_exists = connection_exists
        self._dialogs: dict[tuple[str, str], _Dialog] = {}
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- requests
    def handle_body(self, owner: str, channel: str, body: bytes) -> IvrOutcome:
        """Executes one ``application/msc-ivr+xml`` request body from ``channel`` of ``owner``."""
        try:
            request = decode(body)
        except IvrDecodeError as exc:
            return IvrOutcome(Response(exc.status, exc.dialogid, exc.reason))
        return self.execute(owner, channel, request)

    def execute(self, owner: str, channel: str, request: IvrMessage) -> IvrOutcome:
        if isinstance(request, DialogStart):
            return self._start(owner, channel, request)
        if isinstance(request, DialogTerminate):
            return self._terminate(owner, request)
        if isinstance(request, UnsupportedRequest):
            reason = f"<{request.name}> is not supported by this media server"
            return IvrOutcome(Response(IvrStatus.OTHER_UNSUPPORTED, request.dialogid, reason))
        reason = f"<{type(request).__name__.lower()}> is sent by a media server, not to it"
        return IvrOutcome(Response(IvrStatus.SYNTAX_ERROR, "", reason))

    def _start(self, owner: str, channel: str, request: DialogStart) -> IvrOutcome:
        dialogid = request.dialogid or request.prepareddialogid or ""
        try:
            self._check_start(owner, request)
        except _Refusal as refusal:
            return IvrOutcome(
                Response(
                    refusal.status,
                    dialogid,
                    refusal.reason,
                    connectionid=request.connectionid,
                    conferenceid=request.conferenceid,
                )
            )
        assert request.connectionid is not None
        if not dialogid:
            dialogid = self._new_dialogid(owner)
        ok = Response(IvrStatus.OK, dialogid, connectionid=request.connectionid)
        dtmfsub = request.subscribe.dtmfsub if request.subscribe is not None else None
        if dtmfsub is None:
            # Nothing to run and nothing to watch: the dialog is complete as soon as started.
            done = Event(dialogid, DialogExit(DialogExitStatus.COMPLETED, "nothing to execute"))
            return IvrOutcome(ok, (IvrNotice(channel, done),))
        self._dialogs[(owner, dialogid)] = _Dialog(
            owner, dialogid, channel, request.connectionid, dtmfsub.matchmode
        )
        log.info("dialog %s of %s watches DTMF on %s", dialogid, owner, request.connectionid)
        return IvrOutcome(ok)

    def _check_start(self, owner: str, request: DialogStart) -> None:
        if request.src is not None:
            raise _Refusal(IvrStatus.UNSUPPORTED_URI_SCHEME, "external dialogs are not fetched")
        if request.prepareddialogid is not None:
            raise _Refusal(IvrStatus.DIALOGID_UNKNOWN, "no dialog was prepared with that id")
        if request.dialogid is not None and (owner, request.dialogid) in self._dialogs:
            raise _Refusal(IvrStatus.DIALOGID_EXISTS, "dialogid already exists")
        assert request.dialog is not None  # the codec requires one of src/prepared/dialog
        for operation in request.dialog.operations:
            raise _Refusal(*_UNSUPPORTED_OPERATION[operation])
        if request.streams:
            raise _Refusal(IvrStatus.UNSUPPORTED_STREAMS, "<stream> selection is not supported")
        if request.connectionid is None:
            raise _Refusal(IvrStatus.OTHER_UNSUPPORTED, "dialogs on conferences are not supported")
        if not self.connection_exists(request.connectionid):
            raise _Refusal(IvrStatus.CONNECTIONID_UNKNOWN, "connectionid does not exist")

    def _new_dialogid(self, owner: str) -> str:
        while (dialogid := f"ivr-{next(self._ids)}") and (owner, dialogid) in self._dialogs:
            pass
        return dialogid

    def _terminate(self, owner: str, request: DialogTerminate) -> IvrOutcome:
        dialog = self._dialogs.pop((owner, request.dialogid), None)
        if dialog is None:
            # s4.2.3's prose says 405, but Table 1 (s4.5) defines 406 as "dialogid does not
            # exist" and 405 as "already exists": the table's meaning is used.
            reason = "dialogid does not exist"
            return IvrOutcome(Response(IvrStatus.DIALOGID_UNKNOWN, request.dialogid, reason))
        exit_event = Event(dialog.dialogid, DialogExit(DialogExitStatus.TERMINATED, "terminated"))
        ok = Response(IvrStatus.OK, dialog.dialogid, connectionid=dialog.connectionid)
        return IvrOutcome(ok, (IvrNotice(dialog.channel, exit_event),))

    # ----------------------------------------------------------------- media and channels
    def dtmf(self, endpoint_id: str, digit: str, when: datetime) -> tuple[IvrNotice, ...]:
        """A digit (RFC 4733) arrived on a connection: one <dtmfnotify> per "all" dialog."""
        stamp = xsd_datetime(when)
        return tuple(
            IvrNotice(d.channel, Event(d.dialogid, DtmfNotify(digit, stamp, DtmfMatchMode.ALL)))
            for d in self._dialogs.values()
            # "collect"/"control" report what those operations match; none run here.
            if d.dtmf is DtmfMatchMode.ALL and d.on(endpoint_id)
        )

    def connection_closed(self, endpoint_id: str) -> tuple[IvrNotice, ...]:
        """A connection ended: its dialogs exit with status 2 (s4.2.5.1)."""
        notices: list[IvrNotice] = []
        for key, dialog in list(self._dialogs.items()):
            if dialog.on(endpoint_id):
                del self._dialogs[key]
                note = DialogExit(DialogExitStatus.CONNECTION_GONE, "connection terminated")
                notices.append(IvrNotice(dialog.channel, Event(dialog.dialogid, note)))
        return tuple(notices)

    def channel_lost(self, channel: str) -> int:
        """The CFW channel ``channel`` is gone: its dialogs end silently; returns how many."""
        doomed = [key for key, d in self._dialogs.items() if d.channel == channel]
        for key in doomed:
            del self._dialogs[key]
        return len(doomed)

    def dialogs_of(self, owner: str) -> tuple[str, ...]:
        """The ids of ``owner``'s running dialogs (diagnostics, tests)."""
        return tuple(d.dialogid for d in self._dialogs.values() if d.owner == owner)
