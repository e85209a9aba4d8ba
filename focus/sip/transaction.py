"""SIP transactions (RFC 3261 s17, updated by RFC 6026), sans-IO.

The four state machines are transcribed row by row from RFC 3261 Figures 5-8 (with
the Accepted state of RFC 6026 Figures 5 and 7) into :data:`TABLES`: a dict
``(State, Input) -> (State, actions)``.  A pair that is not in a table is a protocol
error (:class:`UnexpectedInput` when the network sent it, :class:`InvalidTransactionUse`
when our own TU did).  Timers are cancelled implicitly: a state only keeps the timers
listed for it in :data:`LIVE_TIMERS` (e.g. leaving Calling stops A and B).

How to drive it (what the asyncio transport / UA core does)::

    layer = TransactionLayer(TimerConfig())
    # network input, after parsing (and Via stamping for requests):
    layer.receive_message(message, source_flow, now)
    # TU output:
    key = layer.send_request(request, destination_flow, now)   # top Via needs a branch
    layer.send_response(response, now)       # matched to its server transaction by Via
    layer.send_ack(ack, destination_flow)    # ACK of a 2xx: end-to-end, no transaction
    layer.stop_2xx(call_id, cseq, to_tag)    # UAS core: stop a 2xx's retransmission
    layer.transport_failed(message, now)     # a send reported by the transport as failed
    # after every call:
    for t in layer.outgoing(): transport.send(t.message, t.destination)
    while (event := layer.next_event()) is not None: tu.handle(event)
    deadline = layer.get_timer()             # arm one loop.call_at(deadline, ...)
    layer.handle_timer(now)                  # when it fires

Choices made where RFC 3261 leaves room:

* 100 Trying for INVITE is sent at once when the server transaction is created
  (s17.2.1 allows it; it stops the client's Timer A early), unless
  ``TimerConfig.trying_delay`` is set: then only if the TU has not responded by then (or the
  INVITE is retransmitted first), which spares one message per promptly answered call.
  Either way a response the TU sends while the 100 is still in the outgoing queue (the TU
  answered the INVITE in the same step, as a refusal at the overload gate does) replaces
  it: the 100 is not sent.
* CANCEL is answered by the layer itself (s9.2): 481 if no INVITE server transaction
  matches; else 200, and when the INVITE is still Proceeding, 487 for it plus a
  :class:`~focus.sip.events.RequestCancelled` event for the TU.
* A 2xx to INVITE is retransmitted by the layer on behalf of the UAS core (s13.3.1.4):
  T1, 2T1 ... capped at T2, until an ACK with the same Call-ID, CSeq number and To tag
  arrives; after 64*T1 it emits :class:`~focus.sip.events.AckNotReceived` (send BYE).
* Responses go to the flow the request came from (RFC 3581 symmetric response); the
  transport may route by Via instead.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import itertools
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from focus.sip.errors import LocalProtocolError, RemoteProtocolError, SipParseError
from focus.sip.events import (
    AckNotReceived,
    Event,
    MessageDiscarded,
    RequestCancelled,
    RequestReceived,
    ResponseReceived,
    TransactionKey,
    TransactionTerminated,
    TransactionTimedOut,
    TransactionTransportError,
    Transmit,
)
from focus.sip.message import Request, Response, Via, make_response
from focus.sip.timers import TimerConfig, TimerName

if TYPE_CHECKING:
    from collections.abc import Iterable

    from focus.sip.flow import Flow
    from focus.sip.uri import URI

__all__ = [
    "LIVE_TIMERS",
    "MAGIC_COOKIE",
    "TABLES",
    "Action",
    "Input",
    "InvalidTransactionUse",
    "Kind",
    "State",
    "TransactionGone",
    "TransactionLayer",
    "UnexpectedInput",
    "make_ack",
    "make_cancel",
    "new_branch",
    "new_request",
    "new_tag",
    "step",
]

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 s8.1.1.7


def new_branch() -> str:
    """A fresh branch with the RFC 3261 s8.1.1.7 magic cookie."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    """A fresh From/To tag (RFC 3261 s19.3: at least 32 bits of randomness)."""
    return secrets.token_hex(6)


class Kind(enum.Enum):
    """The four transaction machines (RFC 3261 s17.1.1, s17.1.2, s17.2.1, s17.2.2)."""

    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class State(enum.Enum):
    """Transaction states (RFC 3261 Figures 5-8; Accepted from RFC 6026 s7).

    ``INIT`` is the point before the creating input (the unlabelled arrow into each
    figure), so that creation is a table row like every other transition.
    """

    INIT = "Init"
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    """What can happen to a transaction (the labels above the line in RFC 3261 Figs 5-8)."""

    TU_REQUEST = "request from TU"  # creates a client transaction
    REQUEST = "request from network"  # creates / retransmission to a server transaction
    ACK = "ACK from network"
    RESPONSE_1XX = "1xx from network"
    RESPONSE_2XX = "2xx from network"
    RESPONSE_3XX_6XX = "300-699 from network"
    TU_1XX = "1xx from TU"
    TU_2XX = "2xx from TU"
    TU_3XX_6XX = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "Timer A fires"
    TIMER_B = "Timer B fires"
    TIMER_D = "Timer D fires"
    TIMER_E = "Timer E fires"
    TIMER_F = "Timer F fires"
    TIMER_G = "Timer G fires"
    TIMER_H = "Timer H fires"
    TIMER_I = "Timer I fires"
    TIMER_J = "Timer J fires"
    TIMER_K = "Timer K fires"
    TIMER_L = "Timer L fires"
    TIMER_M = "Timer M fires"


NETWORK_INPUTS = frozenset(
    {Input.REQUEST, Input.ACK, Input.RESPONSE_1XX, Input.RESPONSE_2XX, Input.RESPONSE_3XX_6XX}
)
TIMER_INPUT = {name: Input[f"TIMER_{name.value}"] for name in TimerName}


class Action(enum.Enum):
    """What a transition does (the labels below the line in RFC 3261 Figs 5-8)."""

    SEND_REQUEST = "send request"  # (re)transmit the request
    SEND_ACK = "send ACK"  # s17.1.1.3, built for the latest final response
    SEND_100 = "send 100 Trying"  # s17.2.1
    SEND_RESPONSE = "send response"  # (re)transmit the latest response
    PASS_TO_TU = "pass to TU"  # noqa: S105 -- not a password
    TIMEOUT_TO_TU = "inform TU of timeout"
    TRANSPORT_ERROR_TO_TU = "inform TU of transport error"
    START_A = "start Timer A"
    START_B = "start Timer B"
    START_D = "start Timer D"
    START_E = "start Timer E"
    START_F = "start Timer F"
    START_G = "start Timer G"
    START_H = "start Timer H"
    START_I = "start Timer I"
    START_J = "start Timer J"
    START_K = "start Timer K"
    START_L = "start Timer L"
    START_M = "start Timer M"
    BACKOFF_A = "restart Timer A at 2*A"
    BACKOFF_E = "restart Timer E at min(2*E, T2)"
    BACKOFF_G = "restart Timer G at min(2*G, T2)"
    E_AT_T2 = "restart Timer E at T2"


S, I, A = State, Input, Action  # noqa: E741 -- short names keep the tables readable
Row = tuple[State, tuple[Action, ...]]
Table = dict[tuple[State, Input], Row]

#: RFC 3261 Figure 5 (INVITE client) with RFC 6026 Figure 5 (Accepted, Timer M).
INVITE_CLIENT: Table = {
    (S.INIT, I.TU_REQUEST): (S.CALLING, (A.SEND_REQUEST, A.START_A, A.START_B)),
    (S.CALLING, I.TIMER_A): (S.CALLING, (A.SEND_REQUEST, A.BACKOFF_A)),
    (S.CALLING, I.TIMER_B): (S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.CALLING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.CALLING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.CALLING, I.RESPONSE_2XX): (S.ACCEPTED, (A.PASS_TO_TU, A.START_M)),
    (S.CALLING, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.SEND_ACK, A.PASS_TO_TU, A.START_D)),
    (S.PROCEEDING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.PROCEEDING, I.RESPONSE_2XX): (S.ACCEPTED, (A.PASS_TO_TU, A.START_M)),
    (S.PROCEEDING, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.SEND_ACK, A.PASS_TO_TU, A.START_D)),
    (S.COMPLETED, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.SEND_ACK,)),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.TIMER_D): (S.TERMINATED, ()),
    (S.ACCEPTED, I.RESPONSE_2XX): (S.ACCEPTED, (A.PASS_TO_TU,)),
    (S.ACCEPTED, I.TIMER_M): (S.TERMINATED, ()),
}

#: RFC 3261 Figure 6 (non-INVITE client).
NON_INVITE_CLIENT: Table = {
    (S.INIT, I.TU_REQUEST): (S.TRYING, (A.SEND_REQUEST, A.START_E, A.START_F)),
    (S.TRYING, I.TIMER_E): (S.TRYING, (A.SEND_REQUEST, A.BACKOFF_E)),
    (S.TRYING, I.TIMER_F): (S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.TRYING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.TRYING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.TRYING, I.RESPONSE_2XX): (S.COMPLETED, (A.PASS_TO_TU, A.START_K)),
    (S.TRYING, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.PASS_TO_TU, A.START_K)),
    (S.PROCEEDING, I.TIMER_E): (S.PROCEEDING, (A.SEND_REQUEST, A.E_AT_T2)),
    (S.PROCEEDING, I.TIMER_F): (S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.PROCEEDING, I.RESPONSE_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.PROCEEDING, I.RESPONSE_2XX): (S.COMPLETED, (A.PASS_TO_TU, A.START_K)),
    (S.PROCEEDING, I.RESPONSE_3XX_6XX): (S.COMPLETED, (A.PASS_TO_TU, A.START_K)),
    (S.COMPLETED, I.RESPONSE_2XX): (S.COMPLETED, ()),
    (S.COMPLETED, I.RESPONSE_3XX_6XX): (S.COMPLETED, ()),
    (S.COMPLETED, I.TIMER_K): (S.TERMINATED, ()),
}

#: RFC 3261 Figure 7 (INVITE server) with RFC 6026 Figure 7 (Accepted, Timer L).
INVITE_SERVER: Table = {
    (S.INIT, I.REQUEST): (S.PROCEEDING, (A.PASS_TO_TU, A.SEND_100)),
    (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE, A.START_L)),
    (S.PROCEEDING, I.TU_3XX_6XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_G, A.START_H)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.REQUEST): (S.COMPLETED, (A.SEND_RESPONSE,)),
    (S.COMPLETED, I.TIMER_G): (S.COMPLETED, (A.SEND_RESPONSE, A.BACKOFF_G)),
    (S.COMPLETED, I.TIMER_H): (S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.COMPLETED, I.ACK): (S.CONFIRMED, (A.START_I,)),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.CONFIRMED, I.ACK): (S.CONFIRMED, ()),
    (S.CONFIRMED, I.TIMER_I): (S.TERMINATED, ()),
    (S.ACCEPTED, I.REQUEST): (S.ACCEPTED, ()),
    (S.ACCEPTED, I.ACK): (S.ACCEPTED, (A.PASS_TO_TU,)),
    (S.ACCEPTED, I.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE,)),
    (S.ACCEPTED, I.TRANSPORT_ERROR): (S.ACCEPTED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.ACCEPTED, I.TIMER_L): (S.TERMINATED, ()),
}

#: RFC 3261 Figure 8 (non-INVITE server).
NON_INVITE_SERVER: Table = {
    (S.INIT, I.REQUEST): (S.TRYING, (A.PASS_TO_TU,)),
    (S.TRYING, I.REQUEST): (S.TRYING, ()),
    (S.TRYING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.TRYING, I.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.TRYING, I.TU_3XX_6XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_2XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.TU_3XX_6XX): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.REQUEST): (S.COMPLETED, (A.SEND_RESPONSE,)),
    (S.COMPLETED, I.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.TIMER_J): (S.TERMINATED, ()),
}

TABLES: dict[Kind, Table] = {
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}

#: Timers that may run in each state; entering a state stops all others.
LIVE_TIMERS: dict[tuple[Kind, State], frozenset[TimerName]] = {
    (Kind.INVITE_CLIENT, S.CALLING): frozenset({TimerName.A, TimerName.B}),
    (Kind.INVITE_CLIENT, S.COMPLETED): frozenset({TimerName.D}),
    (Kind.INVITE_CLIENT, S.ACCEPTED): frozenset({TimerName.M}),
    (Kind.NON_INVITE_CLIENT, S.TRYING): frozenset({TimerName.E, TimerName.F}),
    (Kind.NON_INVITE_CLIENT, S.PROCEEDING): frozenset({TimerName.E, TimerName.F}),
    (Kind.NON_INVITE_CLIENT, S.COMPLETED): frozenset({TimerName.K}),
    (Kind.INVITE_SERVER, S.COMPLETED): frozenset({TimerName.G, TimerName.H}),
    (Kind.INVITE_SERVER, S.CONFIRMED): frozenset({TimerName.I}),
    (Kind.INVITE_SERVER, S.ACCEPTED): frozenset({TimerName.L}),
    (Kind.NON_INVITE_SERVER, S.COMPLETED): frozenset({TimerName.J}),
}

_START = {
    A.START_A: TimerName.A,
    A.START_B: TimerName.B,
    A.START_D: TimerName.D,
    A.START_E: TimerName.E,
    A.START_F: TimerName.F,
    A.START_G: TimerName.G,
    A.START_H: TimerName.H,
    A.START_I: TimerName.I,
    A.START_J: TimerName.J,
    A.START_K: TimerName.K,
    A.START_L: TimerName.L,
    A.START_M: TimerName.M,
}
_BACKOFF = {A.BACKOFF_A: TimerName.A, A.BACKOFF_E: TimerName.E, A.BACKOFF_G: TimerName.G}


class UnexpectedInput(RemoteProtocolError):
    """The peer sent a message the transaction's state has no row for (e.g. a 1xx
    after the final response).  Whose fault: the peer's (or the network's
    reordering).  What to do: drop the message (RFC 3261 s17.1.3/s18.1.2)."""

    def __init__(self, kind: Kind, state: State, event: Input) -> None:
        super().__init__(f"{kind.value} transaction in {state.value}: unexpected {event.value}")
        self.kind, self.state, self.input = kind, state, event


class InvalidTransactionUse(LocalProtocolError):
    """Our TU asked for something the transaction's state has no row for (e.g. a
    second final response).  Whose fault: ours.  Nothing goes on the wire."""

    def __init__(self, kind: Kind, state: State, event: Input) -> None:
        super().__init__(f"{kind.value} transaction in {state.value}: cannot take {event.value}")
        self.kind, self.state, self.input = kind, state, event


class TransactionGone(LocalProtocolError):
    """The TU answered a request whose server transaction no longer exists (it timed
    out, failed, or was cancelled).  Nothing was sent."""


def step(kind: Kind, state: State, event: Input) -> Row:
    """One transition: the table row for ``(state, event)``, or the table's error."""
    try:
        return TABLES[kind][(state, event)]
    except KeyError:
        if event in NETWORK_INPUTS:
            raise UnexpectedInput(kind, state, event) from None
        raise InvalidTransactionUse(kind, state, event) from None


def _response_input(status: int, *, from_tu: bool) -> Input:
    if status < 200:
        return I.TU_1XX if from_tu else I.RESPONSE_1XX
    if status < 300:
        return I.TU_2XX if from_tu else I.RESPONSE_2XX
    return I.TU_3XX_6XX if from_tu else I.RESPONSE_3XX_6XX


# --------------------------------------------------------------------------- builders


def new_request(
    method: str,
    uri: URI | str,
    *,
    transport: str,
    sent_by: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    routes: Iterable[str] = (),
) -> Request:
    """A request with the headers every request carries (RFC 3261 s8.1.1): a Via with a
    new branch (s8.1.1.7) and ``rport`` (RFC 3581), Max-Forwards 70, ``routes``, From, To,
    Call-ID and CSeq; the caller adds the rest."""
    request = Request(method, uri)
    h = request.headers
    h.add("Via", f"SIP/2.0/{transport} {sent_by};branch={new_branch()};rport")
    h.add("Max-Forwards", "70")
    for route in routes:
        h.add("Route", route)
    h.add("From", from_)
    h.add("To", to)
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    return request


def make_ack(request: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 response (RFC 3261 s17.1.1.3).

    Same Request-URI, Call-ID, From, CSeq number and Route as the INVITE; To from the
    response (with its tag); one Via, the INVITE's top one (same branch).
    """
    return _same_transaction(request, "ACK", to=response.headers.get("To") or "")


def make_cancel(request: Request) -> Request:
    """A CANCEL for a pending ``request`` (RFC 3261 s9.1).

    Same Request-URI, Call-ID, To, From, CSeq number and Route; one Via equal to the
    request's top Via (so the CANCEL has the same branch, s9.1 / s17.2.3).
    """
    if request.method == "ACK":
        raise LocalProtocolError("an ACK cannot be cancelled (RFC 3261 s9.1)")
    return _same_transaction(request, "CANCEL", to=request.headers.get("To") or "")


def _same_transaction(request: Request, method: str, *, to: str) -> Request:
    """``method`` in ``request``'s transaction (s9.1, s17.1.1.3): its Request-URI, top Via
    (same branch), Route, From, Call-ID and CSeq number; only To is the caller's."""
    built = Request(method, request.uri)
    h = built.headers
    h.add("Via", str(request.via[0]))
    h.add("Max-Forwards", "70")
    for value in request.headers.get_all("Route"):
        h.add("Route", value)
    h.add("From", request.headers.get("From") or "")
    h.add("To", to)
    h.add("Call-ID", request.call_id)
    h.add("CSeq", f"{request.cseq.number} {method}")
    return built


# --------------------------------------------------------------------------- keys


def _sent_by(top: Via) -> str:
    default = 5061 if top.transport.upper() in ("TLS", "WSS") else 5060
    return f"{top.host.lower()}:{top.port if top.port is not None else default}"


def server_key(request: Request) -> TransactionKey:
    """The server transaction a request belongs to (RFC 3261 s17.2.3).

    With the magic cookie: branch + sent-by + method (ACK counted as INVITE, CANCEL
    its own).  Without it (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq
    number and top Via, hashed; the To tag is compared separately by the layer
    because an ACK carries the response's tag, not the INVITE's.
    """
    top = request.via[0]
    method = "INVITE" if request.method == "ACK" else request.method
    branch = top.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return TransactionKey(branch, method, _sent_by(top), server=True)
    fields = "\x00".join(
        (
            str(request.uri),
            request.from_.tag or "",
            request.call_id,
            str(request.cseq.number),
            str(top),
        )
    )
    digest = hashlib.sha256(fields.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return TransactionKey(f"2543|{digest}", method, _sent_by(top), server=True)


def client_key_for_response(response: Response) -> TransactionKey:
    """The client transaction a response belongs to (RFC 3261 s17.1.3)."""
    branch = response.via[0].branch or ""
    return TransactionKey(branch, response.cseq.method)


# --------------------------------------------------------------------------- transactions


@dataclass(slots=True)
class _Timer:
    deadline: float
    interval: float


@dataclass(slots=True)
class _Transaction:
    kind: Kind
    key: TransactionKey
    request: Request
    flow: Flow | None  # client: next hop; server: where the request came from
    reliable: bool
    state: State = State.INIT
    last_response: Response | None = None
    ack: Request | None = None
    timers: dict[TimerName, _Timer] = field(default_factory=dict)
    to_tag: str | None = None  # the tag we (server) answer with, shared with CANCEL's 200
    trying_at: float | None = None  # when a delayed 100 Trying is due (TimerConfig.trying_delay)
    # interval of the latest arming of each retransmit timer, for the doubling rules
    intervals: dict[TimerName, float] = field(default_factory=dict)


@dataclass(slots=True)
class _TwoXXRetransmit:
    """A UAS core's 2xx retransmission until ACK (RFC 3261 s13.3.1.4)."""

    response: Response
    invite: Request
    destination: Flow | None
    next_at: float
    interval: float
    give_up_at: float


#: Server transaction states before the final response (RFC 3261 Figures 7 and 8).
_UNANSWERED = frozenset({State.TRYING, State.PROCEEDING})

_HeapEntry = tuple[float, int, "_Transaction | _TwoXXRetransmit", TimerName | None, _Timer | None]


class TransactionLayer:
    """All client and server transactions of one SIP endpoint (see module docstring).

    ``config`` gives T1/T2/T4; reliability comes from each flow's
    ``transport.reliable``.  Every public method is synchronous and takes ``now``
    where time matters; nothing here reads a clock.
    """

    def __init__(self, config: TimerConfig | None = None) -> None:
        self.config = config if config is not None else TimerConfig()
        self._client: dict[TransactionKey, _Transaction] = {}
        self._server: dict[TransactionKey, _Transaction] = {}
        self._twoxx: dict[tuple[str, int, str], _TwoXXRetransmit] = {}
        # (deadline, seq, owner, timer name or None for a 2xx retransmission, the armed
        # timer); entries go stale when their timer is cancelled or re-armed and are
        # skipped lazily
        self._heap: list[_HeapEntry] = []
        self._seq = itertools.count()
        self._out: list[Transmit] = []
        self._events: deque[Event] = deque()
        # Server transactions not answered finally yet, by source host (overload limits).
        self._unanswered: dict[str, int] = {}

    # ---------------------------------------------------------------- outputs

    def outgoing(self) -> list[Transmit]:
        """Messages to send now, oldest first; the caller takes ownership."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        """The next event for the TU, or ``None``."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction timer or 2xx retransmission."""
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _live(self, entry: _HeapEntry) -> bool:
        deadline, _, owner, name, token = entry
        if isinstance(owner, _TwoXXRetransmit):
            current = self._twoxx.get(self._twoxx_key(owner.response))
            return current is owner and min(owner.next_at, owner.give_up_at) == deadline
        if name is None:  # a delayed 100 Trying: due unless anything was sent since
            return (
                owner.trying_at == deadline
                and owner.last_response is None
                and (owner.state is S.PROCEEDING)
            )
        return owner.timers.get(name) is token

    def _arm(self, txn: _Transaction, name: TimerName, interval: float, now: float) -> None:
        timer = _Timer(now + interval, interval)
        txn.timers[name] = timer
        txn.intervals[name] = interval
        heapq.heappush(self._heap, (timer.deadline, next(self._seq), txn, name, timer))

    def _arm_twoxx(self, r: _TwoXXRetransmit) -> None:
        when = min(r.next_at, r.give_up_at)
        heapq.heappush(self._heap, (when, next(self._seq), r, None, None))

    def transaction_state(self, key: TransactionKey) -> State | None:
        """The current state of a live transaction (``None`` once forgotten)."""
        txn = (self._server if key.server else self._client).get(key)
        return txn.state if txn is not None else None

    def __len__(self) -> int:
        return len(self._client) + len(self._server)

    def unanswered_from(self, host: str) -> int:
        """Server transactions from ``host`` still Trying or Proceeding (no final response
        yet): the work one source has in progress with us."""
        return self._unanswered.get(host, 0)

    # ---------------------------------------------------------------- TU inputs

    def send_request(self, request: Request, destination: Flow, now: float) -> TransactionKey:
        """Start a client transaction for ``request`` towards ``destination``.

        The request's top Via must carry a branch with the magic cookie
        (:func:`new_branch`).  Raises :class:`~focus.sip.errors.LocalProtocolError`
        for an ACK (use :meth:`send_ack`) or a missing/reused branch.
        """
        if request.method == "ACK":
            raise LocalProtocolError("ACK has no client transaction; use send_ack")
        vias = request.via
        if not vias or not (vias[0].branch or "").startswith(MAGIC_COOKIE):
            raise LocalProtocolError("request's top Via needs a branch starting with z9hG4bK")
        if request.cseq.method != request.method:
            raise LocalProtocolError("CSeq method differs from the request method")
        key = TransactionKey(vias[0].branch or "", request.method)
        if key in self._client:
            raise LocalProtocolError(f"branch {key.branch} already used for {key.method}")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        txn = _Transaction(kind, key, request, destination, destination.transport.reliable)
        self._client[key] = txn
        self._drive(txn, I.TU_REQUEST, now)
        return key

    def send_response(self, response: Response, now: float) -> TransactionKey:
        """Send ``response`` through the server transaction of its request.

        Matched by the response's top Via and CSeq method.  Raises
        :class:`TransactionGone` if that transaction no longer exists and
        :class:`InvalidTransactionUse` if its state forbids the response (e.g. a
        second final response).  A 2xx to INVITE is then retransmitted until ACK
        (s13.3.1.4).
        """
        txn = self._server_for_response(response)
        if txn is None:
            raise TransactionGone(
                f"no server transaction for {response.status} to {response.cseq.method}"
            )
        event = _response_input(response.status, from_tu=True)
        step(txn.kind, txn.state, event)  # raise before touching anything
        if txn.to_tag is None and response.status != 100:
            txn.to_tag = response.to.tag
        if response.status != 100:
            self._drop_queued_trying(txn)
        txn.last_response = response
        self._drive(txn, event, now)
        if txn.kind is Kind.INVITE_SERVER and event is I.TU_2XX:
            self._start_twoxx(txn, response, now)
        return txn.key

    def send_ack(self, ack: Request, destination: Flow) -> None:
        """Send the ACK of a 2xx (RFC 3261 s13.2.2.4): end-to-end, no transaction."""
        if ack.method != "ACK":
            raise LocalProtocolError("send_ack is for ACK requests only")
        self._out.append(Transmit(ack, destination))

    def stop_2xx(self, call_id: str, cseq: int, to_tag: str) -> bool:
        """Stop retransmitting the 2xx of the INVITE ``(call_id, cseq)`` answered with our
        ``to_tag`` (RFC 3261 s13.3.1.4), e.g. when a BYE proves the peer got it although its
        ACK was lost.  No event follows (no :class:`~focus.sip.events.AckNotReceived`).
        Returns whether a retransmission was running."""
        return self._twoxx.pop((call_id, cseq, to_tag), None) is not None

    def retransmitting_2xx(self, call_id: str, cseq: int, to_tag: str) -> bool:
        """Whether the 2xx of that INVITE is still retransmitted (no ACK yet)."""
        return (call_id, cseq, to_tag) in self._twoxx

    def transport_failed(self, message: Request | Response, now: float) -> None:
        """The transport could not send ``message`` (RFC 3261 s17.1.4, s17.2.4)."""
        txn: _Transaction | None
        if isinstance(message, Request):
            method = "INVITE" if message.method == "ACK" else message.method
            txn = self._client.get(TransactionKey(message.via[0].branch or "", method))
        else:
            txn = self._server_for_response(message)
        if txn is None:
            return
        try:
            step(txn.kind, txn.state, I.TRANSPORT_ERROR)
        except InvalidTransactionUse:
            return  # e.g. a late failure report after the transaction moved on
        self._drive(txn, I.TRANSPORT_ERROR, now)

    # ---------------------------------------------------------------- network input

    def receive_message(self, message: Request | Response, source: Flow, now: float) -> None:
        """A parsed message from the network.  Never raises for bad peer input:
        malformed or stray messages become :class:`MessageDiscarded`."""
        try:
            if isinstance(message, Response):
                self._receive_response(message, now)
            else:
                self._receive_request(message, source, now)
        except UnexpectedInput as exc:
            self._events.append(MessageDiscarded(message, str(exc)))
        except SipParseError as exc:
            self._events.append(MessageDiscarded(message, f"unreadable: {exc.reason}"))

    def _receive_response(self, response: Response, now: float) -> None:
        vias = response.via
        _ = (response.from_, response.to, response.call_id, response.cseq)
        if len(vias) != 1:
            # s18.1.2: a UA drops responses whose Via count is not one.
            self._events.append(MessageDiscarded(response, f"{len(vias)} Via values, not 1"))
            return
        txn = self._client.get(client_key_for_response(response))
        if txn is None:
            self._events.append(MessageDiscarded(response, "no matching client transaction"))
            return
        event = _response_input(response.status, from_tu=False)
        if event is not I.RESPONSE_1XX:
            if (
                txn.kind is Kind.INVITE_CLIENT
                and event is I.RESPONSE_3XX_6XX
                and txn.state in (S.CALLING, S.PROCEEDING)
            ):
                txn.ack = make_ack(txn.request, response)
            txn.last_response = response
        self._drive(txn, event, now, message=response)

    def _receive_request(self, request: Request, source: Flow, now: float) -> None:
        if not request.via:
            raise SipParseError.bad("Missing Via")
        # touch every header the matching and the TU rely on, so a bad one is caught here
        _ = (request.from_, request.to, request.call_id)
        if request.cseq.method != request.method:
            raise SipParseError.bad("CSeq method does not match the request method")
        key = server_key(request)
        txn = self._find_server(key, request)
        if request.method == "ACK":
            if txn is not None:
                self._drive(txn, I.ACK, now, message=request, source=source)
            else:
                self._ack_for_2xx(request, source)
            return
        if txn is not None:
            self._drive(txn, I.REQUEST, now, message=request, source=source)
            return
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        txn = _Transaction(kind, key, request, source, source.transport.reliable)
        self._server[key] = txn
        self._drive(txn, I.REQUEST, now, message=request, source=source)

    def _find_server(self, key: TransactionKey, request: Request) -> _Transaction | None:
        txn = self._server.get(key)
        if txn is None or not key.branch.startswith("2543|"):
            return txn
        # RFC 2543 matching also compares the To tag (s17.2.3): the request's own for
        # a retransmission, the tag of our response for an ACK.
        if request.method == "ACK":
            want = txn.last_response.to.tag if txn.last_response is not None else None
        else:
            want = txn.request.to.tag
        return txn if request.to.tag == want else None

    def _server_for_response(self, response: Response) -> _Transaction | None:
        vias = response.via
        if not vias:
            return None
        branch = vias[0].branch
        if branch is not None and branch.startswith(MAGIC_COOKIE):
            method = response.cseq.method
            key = TransactionKey(branch, method, _sent_by(vias[0]), server=True)
            return self._server.get(key)
        # RFC 2543 peer: the Request-URI is not in the response; search by the rest.
        for txn in self._server.values():
            r = txn.request
            if (
                r.call_id == response.call_id
                and r.cseq == response.cseq
                and r.from_.tag == response.from_.tag
                and str(r.via[0]) == str(vias[0])
            ):
                return txn
        return None

    # ---------------------------------------------------------------- timers

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is ``<= now``, earliest first."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            _, _, owner, name, _ = entry
            if isinstance(owner, _TwoXXRetransmit):
                self._fire_twoxx(owner, now)
            elif name is None:
                self._send_trying(owner)
            else:
                del owner.timers[name]
                self._drive(owner, TIMER_INPUT[name], now)

    # ---------------------------------------------------------------- 2xx until ACK

    @staticmethod
    def _twoxx_key(message: Request | Response) -> tuple[str, int, str]:
        return (message.call_id, message.cseq.number, message.to.tag or "")

    def _start_twoxx(self, txn: _Transaction, response: Response, now: float) -> None:
        key = self._twoxx_key(response)
        if key in self._twoxx:
            return  # the TU retransmitting itself; our schedule already runs
        t1 = self.config.t1
        r = _TwoXXRetransmit(
            response, txn.request, txn.flow, now + t1, t1, now + self.config.timeout
        )
        self._twoxx[key] = r
        self._arm_twoxx(r)

    def _fire_twoxx(self, r: _TwoXXRetransmit, now: float) -> None:
        key = self._twoxx_key(r.response)
        if r.give_up_at <= r.next_at:
            del self._twoxx[key]
            self._events.append(AckNotReceived(r.response, r.invite))
            return
        self._out.append(Transmit(r.response, r.destination))
        r.interval = min(2 * r.interval, self.config.t2)
        r.next_at += r.interval
        self._arm_twoxx(r)

    def _ack_for_2xx(self, ack: Request, source: Flow) -> None:
        self._twoxx.pop(self._twoxx_key(ack), None)
        self._events.append(RequestReceived(ack, source, None))

    # ---------------------------------------------------------------- the engine

    def _drive(
        self,
        txn: _Transaction,
        event: Input,
        now: float,
        *,
        message: Request | Response | None = None,
        source: Flow | None = None,
    ) -> None:
        """Apply one input and everything it triggers (zero-length timers fire inline,
        which is how reliable transports skip the linger states)."""
        was_open = txn.key.server and txn.state in _UNANSWERED
        try:
            self._run(txn, event, now, message, source)
        finally:
            if txn.key.server and txn.flow is not None:
                delta = (txn.state in _UNANSWERED) - was_open
                if delta:
                    host = txn.flow.host
                    count = self._unanswered.get(host, 0) + delta
                    if count > 0:
                        self._unanswered[host] = count
                    else:
                        self._unanswered.pop(host, None)

    def _run(
        self,
        txn: _Transaction,
        event: Input,
        now: float,
        message: Request | Response | None,
        source: Flow | None,
    ) -> None:
        pending: list[Input] = [event]
        while pending:
            current = pending.pop(0)
            new_state, actions = step(txn.kind, txn.state, current)
            txn.state = new_state
            live = LIVE_TIMERS.get((txn.kind, new_state), frozenset())
            for name in list(txn.timers):
                if name not in live:
                    del txn.timers[name]
            for action in actions:
                fire_now = self._act(txn, action, now, message, source)
                if fire_now is not None:
                    pending.append(TIMER_INPUT[fire_now])
            message = None  # only the first input carries a message
            if new_state is S.TERMINATED:
                table = self._server if txn.key.server else self._client
                table.pop(txn.key, None)
                self._events.append(TransactionTerminated(txn.key))
                return

    def _act(
        self,
        txn: _Transaction,
        action: Action,
        now: float,
        message: Request | Response | None,
        source: Flow | None,
    ) -> TimerName | None:
        """Carry out one action; returns a timer that must fire at once (0 s)."""
        cfg = self.config
        match action:
            case A.SEND_REQUEST:
                self._out.append(Transmit(txn.request, txn.flow))
            case A.SEND_ACK:
                if txn.ack is not None:
                    self._out.append(Transmit(txn.ack, txn.flow))
            case A.SEND_100:
                if cfg.trying_delay > 0:
                    txn.trying_at = now + cfg.trying_delay
                    heapq.heappush(self._heap, (txn.trying_at, next(self._seq), txn, None, None))
                else:
                    self._send_trying(txn)
            case A.SEND_RESPONSE:
                if txn.last_response is not None:
                    self._out.append(Transmit(txn.last_response, txn.flow))
                elif txn.kind is Kind.INVITE_SERVER:
                    # A retransmitted INVITE while our 100 was held back (trying_delay): the
                    # peer is waiting, so send it now (s17.2.1).
                    self._send_trying(txn)
            case A.PASS_TO_TU:
                self._pass_to_tu(txn, message, source, now)
            case A.TIMEOUT_TO_TU:
                timer = {
                    Kind.INVITE_CLIENT: TimerName.B,
                    Kind.NON_INVITE_CLIENT: TimerName.F,
                }.get(txn.kind, TimerName.H)
                self._events.append(TransactionTimedOut(txn.key, timer, txn.request))
            case A.TRANSPORT_ERROR_TO_TU:
                self._events.append(
                    TransactionTransportError(txn.key, txn.request, "transport reported failure")
                )
            case A.BACKOFF_A | A.BACKOFF_E | A.BACKOFF_G:
                name = _BACKOFF[action]
                self._arm(txn, name, cfg.next_interval(name, txn.intervals.get(name, cfg.t1)), now)
            case A.E_AT_T2:
                self._arm(txn, TimerName.E, cfg.t2, now)
            case _:
                name = _START[action]
                initial = cfg.initial(name, txn.reliable)
                if initial is None:
                    return None
                if initial == 0:
                    return name
                self._arm(txn, name, initial, now)
        return None

    def _drop_queued_trying(self, txn: _Transaction) -> None:
        """The TU answers before our 100 Trying left (it is still in the outgoing queue):
        s17.2.1 asks for the 100 only when the TU will not answer within 200 ms, so the
        answer goes alone -- one message instead of two, e.g. for each 503 of a flood."""
        trying = txn.last_response
        if trying is None or trying.status != 100:
            return
        for i, queued in enumerate(self._out):
            if queued.message is trying:
                del self._out[i]
                return

    def _send_trying(self, txn: _Transaction) -> None:
        trying = make_response(txn.request, 100)
        txn.last_response = trying
        txn.trying_at = None
        self._out.append(Transmit(trying, txn.flow))

    def _pass_to_tu(
        self,
        txn: _Transaction,
        message: Request | Response | None,
        source: Flow | None,
        now: float,
    ) -> None:
        if isinstance(message, Response):
            self._events.append(ResponseReceived(message, txn.request, txn.key))
            return
        request = message if message is not None else txn.request
        flow = source if source is not None else txn.flow
        assert flow is not None
        if request.method == "CANCEL":
            self._cancel(txn, request, now)
            return
        if request.method == "ACK":
            self._ack_for_2xx(request, flow)
            return
        self._events.append(RequestReceived(request, flow, txn.key))

    def _cancel(self, cancel_txn: _Transaction, cancel: Request, now: float) -> None:
        """RFC 3261 s9.2: answer a CANCEL and terminate the INVITE it matches."""
        key = server_key(cancel)
        invite_key = TransactionKey(key.branch, "INVITE", key.sent_by, server=True)
        invite = self._server.get(invite_key)
        if invite is None:
            response = make_response(cancel, 481, to_tag=new_tag())
            cancel_txn.last_response = response
            self._drive(cancel_txn, I.TU_3XX_6XX, now)
            return
        if invite.to_tag is None:
            invite.to_tag = new_tag()
        ok = make_response(cancel, 200, to_tag=invite.to_tag)
        cancel_txn.last_response = ok
        self._drive(cancel_txn, I.TU_2XX, now)
        if invite.state is S.PROCEEDING:
            invite.last_response = make_response(invite.request, 487, to_tag=invite.to_tag)
            self._drive(invite, I.TU_3XX_6XX, now)
            self._events.append(RequestCancelled(invite.key, invite.request, cancel))
