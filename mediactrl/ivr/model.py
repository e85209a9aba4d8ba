"""The msc-ivr/1.0 elements this media server speaks (RFC 6231), as frozen dataclasses.

Only the DTMF part of the package is modelled: dialog management (s4.2.2 <dialogstart>,
s4.2.3 <dialogterminate>, s4.2.4 <response>), the DTMF subscription (s4.2.2.1) and the two
notifications (s4.2.5.1 <dialogexit>, s4.2.5.2 <dtmfnotify>).  Of an inline <dialog> (s4.3)
only which operations it names is kept: this server runs dialogs without operations, whose
only effect is their event subscription.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Dialog",
    "DialogExit",
    "DialogExitStatus",
    "DialogStart",
    "DialogTerminate",
    "DtmfMatchMode",
    "DtmfNotify",
    "DtmfSub",
    "Event",
    "IvrMessage",
    "IvrStatus",
    "Response",
    "Subscribe",
    "UnsupportedRequest",
]


class DtmfMatchMode(enum.StrEnum):
    """Which DTMF a subscription reports (RFC 6231 s4.2.2.1.1, s4.2.5.2)."""

    ALL = "all"
    COLLECT = "collect"
    CONTROL = "control"


class IvrStatus(enum.IntEnum):
    """<response> status codes used here (RFC 6231 s4.5, Table 1)."""

    OK = 200
    SYNTAX_ERROR = 400
    DIALOGID_EXISTS = 405
    DIALOGID_UNKNOWN = 406
    CONNECTIONID_UNKNOWN = 407
    CONFERENCEID_UNKNOWN = 408
    OTHER_EXECUTION_ERROR = 419
    UNSUPPORTED_URI_SCHEME = 420
    UNSUPPORTED_STREAMS = 428
    UNSUPPORTED_PLAYBACK = 429
    UNSUPPORTED_RECORD = 430
    UNSUPPORTED_FOREIGN_NAMESPACE = 431
    UNSUPPORTED_MULTIPLE_DIALOGS = 432
    OTHER_UNSUPPORTED = 439


class DialogExitStatus(enum.IntEnum):
    """Why a dialog exited (RFC 6231 s4.2.5.1)."""

    TERMINATED = 0  # by a <dialogterminate>
    COMPLETED = 1
    CONNECTION_GONE = 2  # its connection or conference terminated
    MAX_DURATION = 3
    EXECUTION_ERROR = 4


@dataclass(frozen=True)
class DtmfSub:
    """<dtmfsub> (s4.2.2.1.1)."""

    matchmode: DtmfMatchMode = DtmfMatchMode.ALL


@dataclass(frozen=True)
class Subscribe:
    """<subscribe> (s4.2.2.1); an empty one is as if absent."""

    dtmfsub: DtmfSub | None = None


@dataclass(frozen=True)
class Dialog:
    """An inline <dialog> (s4.3.1): the names of the operations it holds, in order
    (prompt, control, collect, record); empty for a dialog that only subscribes."""

    operations: tuple[str, ...] = ()


@dataclass(frozen=True)
class DialogStart:
    """<dialogstart> (s4.2.2): exactly one of connectionid/conferenceid; exactly one of
    ``dialog``, ``src`` and ``prepareddialogid`` (the codec enforces both, 400)."""

    connectionid: str | None = None
    conferenceid: str | None = None
    dialogid: str | None = None
    dialog: Dialog | None = None
    subscribe: Subscribe | None = None
    src: str | None = None
    prepareddialogid: str | None = None
    streams: int = 0  # how many <stream> children (not executed here)


@dataclass(frozen=True)
class DialogTerminate:
    """<dialogterminate> (s4.2.3)."""

    dialogid: str
    immediate: bool = False


@dataclass(frozen=True)
class UnsupportedRequest:
    """A valid package request this server does not execute (<dialogprepare>, <audit>)."""

    name: str
    dialogid: str = ""


@dataclass(frozen=True)
class Response:
    """<response> (s4.2.4); ``dialogid`` is mandatory ("" when the request had none)."""

    status: int
    dialogid: str
    reason: str | None = None
    connectionid: str | None = None
    conferenceid: str | None = None


@dataclass(frozen=True)
class DtmfNotify:
    """<dtmfnotify> (s4.2.5.2): ``timestamp`` is an xsd:dateTime of the last key press."""

    dtmf: str
    timestamp: str
    matchmode: DtmfMatchMode = DtmfMatchMode.ALL


@dataclass(frozen=True)
class DialogExit:
    """<dialogexit> (s4.2.5.1), without the report children of executed operations."""

    status: int
    reason: str | None = None


@dataclass(frozen=True)
class Event:
    """<event> (s4.2.5): one notification of one dialog."""

    dialogid: str
    notification: DtmfNotify | DialogExit


IvrMessage = DialogStart | DialogTerminate | UnsupportedRequest | Response | Event
