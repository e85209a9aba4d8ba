"""Events a :class:`~mediactrl.cfw.connection.CfwConnection` hands to its user.

Each is a small frozen dataclass named for what happened on the channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediactrl.cfw.message import ReportStatus

__all__ = [
    "BadMessageReceived",
    "ChannelClosed",
    "ControlReceived",
    "Event",
    "KeepAliveMissed",
    "ReportReceived",
    "ResponseReceived",
    "StrayResponse",
    "SyncCompleted",
    "SyncReceived",
    "SyncRefused",
    "TransactionTimedOut",
]


@dataclass(frozen=True)
class SyncReceived:
    """Server side: the initial SYNC arrived (s6).  Answer with accept_sync or reject_sync."""

    trans_id: str
    dialog_id: str
    packages: tuple[str, ...]
    keep_alive: int | None


@dataclass(frozen=True)
class SyncCompleted:
    """The initial SYNC succeeded: the channel is open with these packages (s6.3.4)."""

    packages: tuple[str, ...]
    supported: tuple[str, ...]
    keep_alive: int | None


@dataclass(frozen=True)
class SyncRefused:
    """Client side: our SYNC got an error.  After 422 (no common package, s6.3.4.2) the channel
    stays up and another SYNC may be sent; any other code also closes it (ChannelClosed)."""

    code: int
    supported: tuple[str, ...]


@dataclass(frozen=True)
class ControlReceived:
    """The peer sent a CONTROL (s6.3.1); answer it with ``respond`` within Transaction-Timeout."""

    trans_id: str
    package: str
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class ReportReceived:
    """A REPORT of an extended transaction we started (s6.3.2); it was answered 200."""

    trans_id: str
    seq: int
    status: ReportStatus
    timeout: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class ResponseReceived:
    """The response to a CONTROL we sent (s6.2), or to a REPORT we sent (``method`` REPORT).

    ``extended`` is True for a 202: REPORTs follow, the transaction stays open.
    """

    trans_id: str
    code: int
    content_type: str | None
    body: bytes
    extended: bool = False
    method: str = "CONTROL"
    seq: int | None = None


@dataclass(frozen=True)
class TransactionTimedOut:
    """A transaction we started got no (further) answer in time (s6.1, s6.3.2.1)."""

    trans_id: str
    method: str


@dataclass(frozen=True)
class KeepAliveMissed:
    """The keep-alive timer fired (s6.3.3): the channel is dead and the SIP dialog must end.

    A ChannelClosed follows, as for every way the channel ends other than a local close().
    """


@dataclass(frozen=True)
class BadMessageReceived:
    """The peer sent a message we refused; ``status`` was answered when ``trans_id`` is known."""

    status: int
    reason: str
    trans_id: str | None


@dataclass(frozen=True)
class StrayResponse:
    """A response matching no transaction of ours; nothing to do but note it."""

    trans_id: str
    code: int


@dataclass(frozen=True)
class ChannelClosed:
    """The channel is over (SYNC refused, framing lost, forbidden first message...).

    The adapter closes the TCP connection and the SIP dialog is torn down (s6).
    ``status`` is the framework code that caused it, when there was one.
    """

    reason: str
    status: int | None = None


Event = (
    SyncReceived
    | SyncCompleted
    | SyncRefused
    | ControlReceived
    | ReportReceived
    | ResponseReceived
    | TransactionTimedOut
    | KeepAliveMissed
    | BadMessageReceived
    | StrayResponse
    | ChannelClosed
)
