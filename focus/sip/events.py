"""What the sans-IO SIP machines tell their user (transaction user, dialog user).

Small frozen dataclasses, each named for what happened.  The transaction layer
(:mod:`focus.sip.transaction`) emits them from ``next_event()``; the dialog,
subscription and REFER helpers return them from their methods.

``Flow`` (where a message came from / goes to) is :class:`focus.sip.flow.Flow`;
it is only referenced for typing here because :mod:`focus.sip.flow` imports
:class:`Transmit` from this module.  Any object with ``.transport.reliable``
works at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from focus.sip.message import Request, Response
from focus.sip.timers import TimerName

if TYPE_CHECKING:
    from focus.sip.flow import Flow

__all__ = [
    "AckNotReceived",
    "Event",
    "MessageDiscarded",
    "RequestCancelled",
    "RequestReceived",
    "ResponseReceived",
    "TransactionKey",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransactionTransportError",
    "Transmit",
]


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """Identifies one transaction (RFC 3261 s17.1.3, s17.2.3).

    ``branch`` is the top Via branch (or, for RFC 2543 peers without the magic
    cookie, a digest of the s17.2.3 fallback fields prefixed ``"2543|"``);
    ``method`` is the CSeq method with ACK counted as INVITE; ``sent_by`` is the
    top Via sent-by ``host:port`` for server transactions and ``""`` for client
    ones; ``server`` says which side we are.
    """

    branch: str
    method: str
    sent_by: str = ""
    server: bool = False


@dataclass(frozen=True, slots=True)
class Transmit:
    """A message to put on the wire.

    For requests, ``destination`` is the next hop the TU chose.  For responses it
    is the flow the request arrived on; the transport may route by the top Via
    instead (RFC 3261 s18.2.2, RFC 3581).
    """

    message: Request | Response
    destination: Flow | None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU (RFC 3261 s17.2.1/s17.2.2 "pass to TU").

    ``transaction`` is ``None`` for an ACK outside any transaction (the ACK of a
    2xx, RFC 3261 s17.2.1/RFC 6026 s8.7); the TU answers other requests with
    ``TransactionLayer.send_response``.
    """

    request: Request
    source: Flow
    transaction: TransactionKey | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response the client transaction passes up (provisional, final, and 2xx
    retransmissions in the Accepted state, RFC 6026 s8.4)."""

    response: Response
    request: Request
    transaction: TransactionKey


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B or F (client: treat as 408, RFC 3261 s8.1.3.1) or H (server: ACK
    never came, s17.2.1) fired."""

    transaction: TransactionKey
    timer: TimerName
    request: Request


@dataclass(frozen=True, slots=True)
class TransactionTransportError:
    """Sending failed for this transaction (RFC 3261 s17.1.4, s17.2.4): a client
    TU treats it as 503; a server TU gives up on the request."""

    transaction: TransactionKey
    request: Request
    reason: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and was forgotten."""

    transaction: TransactionKey


@dataclass(frozen=True, slots=True)
class RequestCancelled:
    """A CANCEL matched a pending INVITE (RFC 3261 s9.2): the layer already sent
    200 to the CANCEL and 487 to the INVITE; the TU stops working on it."""

    transaction: TransactionKey
    invite: Request
    cancel: Request


@dataclass(frozen=True, slots=True)
class AckNotReceived:
    """A 2xx to INVITE was retransmitted for 64*T1 without an ACK (RFC 3261
    s13.3.1.4): the TU must confirm and then end the dialog with BYE."""

    response: Response
    invite: Request


@dataclass(frozen=True, slots=True)
class MessageDiscarded:
    """A message was dropped (stray response s18.1.2, input the state machine has no
    row for...); ``reason`` says why, for logs and tests."""

    message: Request | Response
    reason: str


Event = (
    RequestReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransactionTransportError
    | TransactionTerminated
    | RequestCancelled
    | AckNotReceived
    | MessageDiscarded
)
