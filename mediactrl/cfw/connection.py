"""One side of a Control Framework channel (RFC 6230 s6), sans-IO.

Bytes and ``now`` go in (:meth:`CfwConnection.receive_data`, :meth:`CfwConnection.handle_timer`);
bytes (:meth:`CfwConnection.data_to_send`), events (:meth:`CfwConnection.next_event`) and the
next deadline (:meth:`CfwConnection.get_timer`) come out.  No sockets, no clock.

The channel's life is a transition table (:data:`TRANSITIONS`) keyed by (side, state, trigger);
a missing entry is a protocol error: ours (:class:`LocalProtocolError`) when the trigger is a
call of the user, the peer's when it comes off the wire.

Sides follow the usual MEDIACTRL deployment (RFC 7058 s5): the CLIENT is the application
server, COMEDIA-active: it opens the TCP connection, sends SYNC and K-ALIVE.  The SERVER is the
media server, passive: it answers SYNC and watches for K-ALIVE.  Either side may send CONTROL
once the channel is open (the media server sends mixer events that way).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from mediactrl.cfw.errors import LocalProtocolError
from mediactrl.cfw.events import (
    BadMessageReceived,
    ChannelClosed,
    ControlReceived,
    Event,
    KeepAliveMissed,
    ReportReceived,
    ResponseReceived,
    StrayResponse,
    SyncCompleted,
    SyncReceived,
    SyncRefused,
    TransactionTimedOut,
)
from mediactrl.cfw.message import (
    Message,
    Method,
    ReportStatus,
    Request,
    Response,
    is_alpha_num_token,
    serialize,
)
from mediactrl.cfw.parser import CfwParser, NeedData, ParseError, ParserLimits

__all__ = [
    "TRANSITIONS",
    "CfwConfig",
    "CfwConnection",
    "Side",
    "State",
    "Trigger",
    "package_matches",
]

MAX_KEEP_ALIVE = 600  # s6.3.4.1: the Keep-Alive value MUST NOT exceed 600 seconds


class Side(Enum):
    """Which end of the channel we are: RFC 6230 s4's Control Client or Control Server (the
    COMEDIA active and passive ends of RFC 4145, as deployed in RFC 7058 s5).  Not a "role":
    in this project that word means only an RFC 6501 user role."""

    CLIENT = "client"  # application server, active: sends SYNC and K-ALIVE
    SERVER = "server"  # media server, passive


class State(Enum):
    """Channel states (RFC 6230 s6: SYNC before anything else)."""

    IDLE = "idle"  # TCP up, no SYNC yet
    SYNC_SENT = "sync-sent"  # client: SYNC sent, awaiting its answer
    SYNC_RECEIVED = "sync-received"  # server: SYNC handed to the user, awaiting a decision
    OPEN = "open"  # SYNC done: CONTROL/REPORT/K-ALIVE flow
    CLOSED = "closed"  # over: the adapter closes TCP, the SIP dialog is torn down


class Trigger(Enum):
    """What moves the channel from one state to another."""

    SEND_SYNC = "send-sync"
    SYNC_ACCEPTED = "sync-accepted"  # 200 to our SYNC
    SYNC_RETRY = "sync-retry"  # 422 to a SYNC: another SYNC may follow (s6.3.4.2)
    SYNC_REFUSED = "sync-refused"  # any other error to a SYNC ends the channel (s6)
    RECV_SYNC = "recv-sync"
    ACCEPT_SYNC = "accept-sync"
    FORBIDDEN_FIRST = "forbidden-first"  # a request before SYNC completed: 403 (RFC 7058 s5.4)
    TIMEOUT = "timeout"  # the SYNC got no answer, or the keep-alive timer fired
    FATAL = "fatal"  # framing lost or an invalid initial SYNC
    CLOSE = "close"  # the user or the transport ended the channel


_ACTIVE_STATES = (State.IDLE, State.SYNC_SENT, State.SYNC_RECEIVED, State.OPEN)

TRANSITIONS: dict[tuple[Side, State, Trigger], State] = {
    (Side.CLIENT, State.IDLE, Trigger.SEND_SYNC): State.SYNC_SENT,
    (Side.CLIENT, State.SYNC_SENT, Trigger.SYNC_ACCEPTED): State.OPEN,
    (Side.CLIENT, State.SYNC_SENT, Trigger.SYNC_RETRY): State.IDLE,
    (Side.CLIENT, State.SYNC_SENT, Trigger.SYNC_REFUSED): State.CLOSED,
    (Side.CLIENT, State.SYNC_SENT, Trigger.TIMEOUT): State.CLOSED,
    (Side.CLIENT, State.IDLE, Trigger.FORBIDDEN_FIRST): State.CLOSED,
    (Side.CLIENT, State.SYNC_SENT, Trigger.FORBIDDEN_FIRST): State.CLOSED,
    (Side.SERVER, State.IDLE, Trigger.RECV_SYNC): State.SYNC_RECEIVED,
    (Side.SERVER, State.SYNC_RECEIVED, Trigger.ACCEPT_SYNC): State.OPEN,
    (Side.SERVER, State.SYNC_RECEIVED, Trigger.SYNC_RETRY): State.IDLE,
    (Side.SERVER, State.SYNC_RECEIVED, Trigger.SYNC_REFUSED): State.CLOSED,
    (Side.SERVER, State.IDLE, Trigger.FORBIDDEN_FIRST): State.CLOSED,
    (Side.SERVER, State.SYNC_RECEIVED, Trigger.FORBIDDEN_FIRST): State.CLOSED,
    **{(side, State.OPEN, Trigger.TIMEOUT): State.CLOSED for side in Side},
    **{(side, s, Trigger.FATAL): State.CLOSED for side in Side for s in _ACTIVE_STATES},
    **{(side, s, Trigger.CLOSE): State.CLOSED for side in Side for s in _ACTIVE_STATES},
}


@dataclass(frozen=True)
class CfwConfig:
    """Settings of one channel end.

    packages: control packages we support (client: offered in SYNC; server: matched against
        the SYNC, the rest advertised in Supported).
    dialog_id: client only: our local ``cfw-id`` from the SDP (s6), sent as Dialog-ID.
    keep_alive: client only: seconds proposed in the SYNC's Keep-Alive (s6.3.4.1; 95-120
        recommended, at most 600); None leaves keep-alive off, as co-located deployments may.
    transaction_timeout: RFC 6230's 'Transaction-Timeout' in seconds (s6.1: 10 s); a request
        we send waits 2x this long for its response before TransactionTimedOut.
    report_timeout: Timeout header (seconds) we put on 202s and REPORTs (s6.3.2.1: 10-15).
    keep_alive_ratio: fraction of the keep-alive period after which the active side sends
        K-ALIVE (s6.3.3.1 recommends 80 %).
    message_timeout: seconds a message may stay half-received; a peer that starts one and
        does not finish it (a slow-loris holding the channel's buffer) is closed.
    limits: parser size limits.
    """

    packages: tuple[str, ...] = ("msc-mixer/1.0",)
    dialog_id: str | None = None
    keep_alive: int | None = 100
    transaction_timeout: float = 10.0
    report_timeout: int = 10
    keep_alive_ratio: float = 0.8
    message_timeout: float = 10.0
    limits: ParserLimits = field(default_factory=ParserLimits)

    def __post_init__(self) -> None:
        for package in self.packages:
            if not is_alpha_num_token(package):
                raise LocalProtocolError(f"package name {package!r} is not an alpha-num-token")
        if self.keep_alive is not None and not 1 <= self.keep_alive <= MAX_KEEP_ALIVE:
            raise LocalProtocolError(f"keep_alive must be 1..{MAX_KEEP_ALIVE} seconds")
        if min(self.transaction_timeout, self.report_timeout, self.message_timeout) <= 0:
            raise LocalProtocolError("timeouts must be positive")
        if not 0 < self.keep_alive_ratio < 1:
            raise LocalProtocolError("keep_alive_ratio must be between 0 and 1")


def package_matches(requested: str, negotiated: Iterable[str]) -> bool:
    """True if a Control-Package value names one of the negotiated packages.

    A name without version ("msc-mixer") is accepted for its versioned form ("msc-mixer/1.0"):
    RFC 7058 itself sends such CONTROLs (s6.2.2), so peers following it do too.
    """
    for package in negotiated:
        if requested == package or ("/" not in requested and package.split("/")[0] == requested):
            return True
    return False


@dataclass
class _Outgoing:
    """A request we sent and whose answer we await."""

    method: str
    deadline: float
    extended: bool = False  # a 202 came: REPORTs follow
    next_seq: int = 1


@dataclass
class _Incoming:
    """A CONTROL we received and must answer (then report on, if extended)."""

    extended: bool = False
    next_seq: int = 1
    refresh_at: float | None = None  # when to send an empty REPORT update (s6.3.2.1)


class CfwConnection:
    """One end of a CFW channel: the transaction and keep-alive logic of RFC 6230 s6."""

    def __init__(self, side: Side, config: CfwConfig, *, now: float) -> None:
        if side is Side.CLIENT and config.dialog_id is None:
            raise LocalProtocolError("a client needs its cfw-id as config.dialog_id")
        self.side = side
        self.config = config
        self.state = State.IDLE
        self.packages: tuple[str, ...] = ()  # negotiated common set
        self.keep_alive: int | None = None  # negotiated seconds, None when off
        self._parser = CfwParser(config.limits)
        self._events: deque[Event] = deque()
        self._out_buffer = bytearray()
        self._outgoing: dict[str, _Outgoing] = {}
        self._report_acks: dict[tuple[str, int], float] = {}  # our REPORTs awaiting 200
        self._incoming: dict[str, _Incoming] = {}
        self._pending_sync: Request | None = None  # server: SYNC awaiting the user's decision
        self._sync_trans_id: str | None = None  # client: our initial SYNC
        self._ka_reset: float = now
        self._ka_pending: str | None = None  # trans-id of our outstanding K-ALIVE
        self._partial_since: float | None = None  # when the half-received bytes began

    # ----------------------------------------------------------------- state machine
    def _fire(self, trigger: Trigger) -> None:
        key = (self.side, self.state, trigger)
        if key not in TRANSITIONS:
            raise LocalProtocolError(
                f"{trigger.value} is not allowed for a {self.side.value} in state "
                f"{self.state.value}"
            )
        self.state = TRANSITIONS[key]
        if self.state is State.CLOSED:
            self._outgoing.clear()
            self._incoming.clear()
            self._report_acks.clear()
            self._ka_pending = None

    def _close(self, trigger: Trigger, reason: str, status: int | None) -> None:
        self._fire(trigger)
        self._events.append(ChannelClosed(reason, status))

    @property
    def closed(self) -> bool:
        """True once the channel is over."""
        return self.state is State.CLOSED

    # ----------------------------------------------------------------- I/O surface
    def data_to_send(self) -> bytes:
        """Bytes to write to the stream now (and forget)."""
        data = bytes(self._out_buffer)
        self._out_buffer.clear()
        return data

    def next_event(self) -> Event | None:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None

    def receive_data(self, data: bytes, now: float) -> None:
        """Feeds bytes read from the stream; answers the framework itself where it can."""
        if self.closed:
            return
        self._parser.receive_data(data)
        while not self.closed:
            item = self._parser.next_event()
            if isinstance(item, NeedData):
                break
            if isinstance(item, ParseError):
                self._on_parse_error(item)
            elif isinstance(item, Request):
                self._on_request(item, now)
            else:
                self._on_response(item, now)
        # Keep-alive traffic would otherwise let a peer hold a half message forever.
        if not self._parser.buffered:
            self._partial_since = None
        elif self._partial_since is None:
            self._partial_since = now

    def connection_lost(self) -> None:
        """The transport is gone (EOF or error)."""
        if self.state is not State.CLOSED:
            self._close(Trigger.CLOSE, "transport closed", None)

    def close(self) -> None:
        """Ends the channel locally (e.g. the SIP dialog ended)."""
        if self.state is not State.CLOSED:
            self._fire(Trigger.CLOSE)

    def get_timer(self) -> float | None:
        """The next instant :meth:`handle_timer` must be called, or None."""
        if self.state is State.CLOSED:
            return None
        deadlines = [txn.deadline for txn in self._outgoing.values()]
        deadlines.extend(self._report_acks.values())
        deadlines.extend(t.refresh_at for t in self._incoming.values() if t.refresh_at is not None)
        if self._partial_since is not None:
            deadlines.append(self._partial_since + self.config.message_timeout)
        if self.state is State.OPEN and self.keep_alive is not None:
            deadlines.append(self._ka_reset + self.keep_alive)
            if self.side is Side.CLIENT and self._ka_pending is None:
                deadlines.append(self._ka_reset + self.keep_alive * self.config.keep_alive_ratio)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Runs what is due at ``now``: K-ALIVE sending, keep-alive expiry, timeouts."""
        if self.state is State.CLOSED:
            return
        if (
            self._partial_since is not None
            and now >= self._partial_since + self.config.message_timeout
        ):
            self._close(Trigger.FATAL, "a message was left unfinished", None)
            return
        for trans_id, txn in list(self._outgoing.items()):
            if txn.deadline <= now:
                del self._outgoing[trans_id]
                self._events.append(TransactionTimedOut(trans_id, txn.method))
                if trans_id == self._sync_trans_id and self.state is State.SYNC_SENT:
                    self._close(Trigger.TIMEOUT, "no answer to SYNC", None)
                    return
        for key, deadline in list(self._report_acks.items()):
            if deadline <= now:
                del self._report_acks[key]
                self._events.append(TransactionTimedOut(key[0], Method.REPORT))
        for trans_id, incoming in list(self._incoming.items()):
            if incoming.refresh_at is not None and incoming.refresh_at <= now:
                # s6.3.2.1: an empty 'update' REPORT keeps the requester from timing out.
                self.report(trans_id, ReportStatus.UPDATE, now)
        if self.state is State.OPEN and self.keep_alive is not None:
            if now >= self._ka_reset + self.keep_alive:
                self._events.append(KeepAliveMissed())
                self._close(Trigger.TIMEOUT, "keep-alive missed", None)
                return
            due = self._ka_reset + self.keep_alive * self.config.keep_alive_ratio
            if self.side is Side.CLIENT and self._ka_pending is None and now >= due:
                self._ka_pending = self._new_trans_id()
                self._send(Request(self._ka_pending, method=Method.K_ALIVE))

    # ----------------------------------------------------------------- user actions
    def sync(
        self, now: float, *, trans_id: str | None = None, packages: tuple[str, ...] | None = None
    ) -> str:
        """Client: sends the initial SYNC (s6); returns its transaction id.

        ``packages`` narrows the offer (e.g. when retrying after a 422); default: all of ours.
        """
        offered = self.config.packages if packages is None else packages
        if not offered or any(p not in self.config.packages for p in offered):
            raise LocalProtocolError("SYNC must offer at least one of our configured packages")
        tid = self._claim(trans_id)
        self._fire(Trigger.SEND_SYNC)
        headers = [("Dialog-ID", self.config.dialog_id or "")]
        if self.config.keep_alive is not None:
            headers.append(("Keep-Alive", str(self.config.keep_alive)))
        headers.append(("Packages", ",".join(offered)))
        self._sync_trans_id = tid
        self._outgoing[tid] = _Outgoing(Method.SYNC, now + 2 * self.config.transaction_timeout)
        self._send(Request(tid, tuple(headers), method=Method.SYNC))
        return tid

    def accept_sync(self, now: float) -> bool:
        """Server: answers the pending SYNC (the Dialog-ID was recognised).

        Answers 200 with the common packages, or 422 with our Supported list when there is
        none in common (s6.3.4.2), after which the client may SYNC again.  Returns True when
        the channel opened; False too when the peer closed it before the answer.
        """
        request = self._pending_sync
        if request is not None and self.state is State.CLOSED:
            # The peer broke the channel (e.g. pipelined K-ALIVE before our answer: 403) after
            # the SYNC was handed over: nothing to answer, and not the application's fault.
            self._pending_sync = None
            return False
        if request is None or self.state is not State.SYNC_RECEIVED:
            raise LocalProtocolError("no SYNC is waiting for an answer")
        self._pending_sync = None
        common = tuple(p for p in request.packages if p in self.config.packages)
        if not common:
            self._fire(Trigger.SYNC_RETRY)
            supported = ",".join(self.config.packages)
            self._send(Response(request.trans_id, (("Supported", supported),), code=422))
            return False
        self._fire(Trigger.ACCEPT_SYNC)
        self.packages = common
        self.keep_alive = request.keep_alive
        headers: list[tuple[str, str]] = []
        if request.keep_alive is not None:
            headers.append(("Keep-Alive", str(request.keep_alive)))
        headers.append(("Packages", ",".join(common)))
        others = tuple(p for p in self.config.packages if p not in common)
        if others:
            headers.append(("Supported", ",".join(others)))
        self._send(Response(request.trans_id, tuple(headers), code=200))
        self._ka_reset = now
        self._events.append(SyncCompleted(common, others, self.keep_alive))
        return True

    def reject_sync(self, status: int = 481) -> None:
        """Server: refuses the pending SYNC (481: no such SIP dialog) and ends the channel."""
        request = self._pending_sync
        if request is not None and self.state is State.CLOSED:
            self._pending_sync = None  # the peer already broke the channel: nothing to answer
            return
        if request is None or self.state is not State.SYNC_RECEIVED:
            raise LocalProtocolError("no SYNC is waiting for an answer")
        if status < 400:
            raise LocalProtocolError("reject_sync needs an error status")
        self._pending_sync = None
        self._send(Response(request.trans_id, code=status))
        self._close(Trigger.SYNC_REFUSED, f"SYNC refused with {status}", status)

    def control(
        self,
        package: str,
        content_type: str,
        body: bytes,
        now: float,
        *,
        trans_id: str | None = None,
    ) -> str:
        """Sends a CONTROL for a negotiated package; returns its transaction id."""
        self._require_open()
        if not package_matches(package, self.packages):
            raise LocalProtocolError(f"package {package!r} was not negotiated (s6.3.4.2)")
        tid = self._claim(trans_id)
        headers = (("Control-Package", package), ("Content-Type", content_type))
        self._outgoing[tid] = _Outgoing(Method.CONTROL, now + 2 * self.config.transaction_timeout)
        self._send(Request(tid, headers if body else headers[:1], body, method=Method.CONTROL))
        return tid

    def respond(
        self,
        trans_id: str,
        code: int,
        *,
        content_type: str | None = None,
        body: bytes = b"",
        timeout: int | None = None,
        now: float | None = None,
    ) -> None:
        """Answers a received CONTROL: 200 (done), 202 (REPORTs follow) or an error (s6.2).

        A 202 needs ``now``: from then on the connection itself sends an empty REPORT update
        whenever 80 % of the announced Timeout passes without a REPORT (s6.3.2.1).
        """
        txn = self._incoming.get(trans_id)
        if txn is None or txn.extended:
            raise LocalProtocolError(f"no CONTROL {trans_id} awaits a response")
        headers: list[tuple[str, str]] = []
        if code == 202:
            if body:
                raise LocalProtocolError("a 202 carries no body; send it in a REPORT")
            if now is None:
                raise LocalProtocolError("a 202 needs now: its Timeout starts running")
            seconds = timeout or self.config.report_timeout
            headers.append(("Timeout", str(seconds)))
            txn.extended = True
            txn.refresh_at = now + seconds * self.config.keep_alive_ratio
        else:
            del self._incoming[trans_id]
        if body:
            if content_type is None:
                raise LocalProtocolError("a body needs a content type")
            headers.append(("Content-Type", content_type))
        self._send(Response(trans_id, tuple(headers), body, code=code))

    def report(
        self,
        trans_id: str,
        status: ReportStatus,
        now: float,
        *,
        content_type: str | None = None,
        body: bytes = b"",
        timeout: int | None = None,
    ) -> int:
        """Sends a REPORT on an extended transaction (s6.3.2.1); returns its Seq."""
        self._require_open()
        txn = self._incoming.get(trans_id)
        if txn is None or not txn.extended:
            raise LocalProtocolError(f"transaction {trans_id} is not extended by a 202")
        seq = txn.next_seq
        txn.next_seq += 1
        headers = [
            ("Seq", str(seq)),
            ("Status", status.value),
            ("Timeout", str(timeout or self.config.report_timeout)),
        ]
        if body:
            if content_type is None:
                raise LocalProtocolError("a body needs a content type")
            headers.append(("Content-Type", content_type))
        if status is ReportStatus.TERMINATE:
            del self._incoming[trans_id]
        else:
            seconds = timeout or self.config.report_timeout
            txn.refresh_at = now + seconds * self.config.keep_alive_ratio
        self._report_acks[(trans_id, seq)] = now + 2 * self.config.transaction_timeout
        self._send(Request(trans_id, tuple(headers), body, method=Method.REPORT))
        return seq

    # ----------------------------------------------------------------- incoming
    def _on_parse_error(self, error: ParseError) -> None:
        if error.trans_id is not None:
            self._send(Response(error.trans_id, code=error.status))
        self._events.append(BadMessageReceived(error.status, error.reason, error.trans_id))
        if error.fatal:
            self._close(Trigger.FATAL, f"framing lost: {error.reason}", error.status)

    def _refuse(self, request: Request, status: int, reason: str) -> None:
        self._send(Response(request.trans_id, code=status))
        self._events.append(BadMessageReceived(status, reason, request.trans_id))

    def _on_request(self, request: Request, now: float) -> None:
        method = request.method
        if method not in tuple(Method):
            self._refuse(request, 405, f"method {method} is not supported")
            return
        if self.state is not State.OPEN:
            if method == Method.SYNC and self.side is Side.SERVER and self.state is State.IDLE:
                self._on_initial_sync(request)
                return
            self._send(Response(request.trans_id, code=403))
            self._close(Trigger.FORBIDDEN_FIRST, f"{method} before the SYNC completed", 403)
            return
        if method == Method.K_ALIVE:
            # s6.3.3.2: the passive side answers 200 and restarts its timer; an active side
            # receiving one answers likewise, since the framework allows it both ways.
            self._ka_reset = now
            self._send(Response(request.trans_id, code=200))
        elif method == Method.SYNC:
            # s6.3.4.2: we do not re-negotiate packages on an open channel.
            self._refuse(request, 421, "package re-negotiation is not supported")
        elif method == Method.CONTROL:
            self._on_control(request)
        else:
            self._on_report(request, now)

    def _on_initial_sync(self, request: Request) -> None:
        dialog_id = request.dialog_id
        keep_alive = request.keep_alive
        if dialog_id is None:
            self._send(Response(request.trans_id, code=400))
            self._close(Trigger.FATAL, "initial SYNC without Dialog-ID", 400)
            return
        if keep_alive is not None and not 1 <= keep_alive <= MAX_KEEP_ALIVE:
            self._send(Response(request.trans_id, code=400))
            self._close(Trigger.FATAL, f"Keep-Alive {keep_alive} outside 1..600", 400)
            return
        self._fire(Trigger.RECV_SYNC)
        self._pending_sync = request
        self._events.append(SyncReceived(request.trans_id, dialog_id, request.packages, keep_alive))

    def _on_control(self, request: Request) -> None:
        package = request.control_package or ""
        if request.trans_id in self._incoming:
            self._refuse(request, 423, f"transaction {request.trans_id} already exists")
        elif not package_matches(package, self.packages):
            self._refuse(request, 420, f"package {package} was not negotiated")
        else:
            self._incoming[request.trans_id] = _Incoming()
            self._events.append(
                ControlReceived(request.trans_id, package, request.content_type, request.body)
            )

    def _on_report(self, request: Request, now: float) -> None:
        txn = self._outgoing.get(request.trans_id)
        seq = request.seq or 0
        if txn is None or not txn.extended:
            self._refuse(request, 481, f"no extended transaction {request.trans_id}")
            return
        if seq != txn.next_seq:
            # s6.3.2.1: a REPORT out of sequence gets 406 and ends the extended transaction.
            del self._outgoing[request.trans_id]
            self._send(Response(request.trans_id, (("Seq", str(seq)),), code=406))
            self._events.append(
                BadMessageReceived(
                    406, f"REPORT Seq {seq}, expected {txn.next_seq}", request.trans_id
                )
            )
            return
        status = request.status or ReportStatus.UPDATE
        timeout = request.timeout or 0
        txn.next_seq += 1
        if status is ReportStatus.TERMINATE:
            del self._outgoing[request.trans_id]
        else:
            txn.deadline = now + (timeout or self.config.transaction_timeout)
        self._send(Response(request.trans_id, (("Seq", str(seq)),), code=200))
        self._events.append(
            ReportReceived(
                request.trans_id, seq, status, timeout, request.content_type, request.body
            )
        )

    def _on_response(self, response: Response, now: float) -> None:
        tid = response.trans_id
        if tid == self._ka_pending:
            self._ka_pending = None
            if response.code != 200:
                # s6.3.3.2: no other response is valid to a K-ALIVE.
                self._close(Trigger.FATAL, f"K-ALIVE answered {response.code}", response.code)
                return
            self._ka_reset = now
            return
        if tid == self._sync_trans_id and self.state is State.SYNC_SENT:
            self._on_sync_response(response, now)
            return
        seq = response.seq
        if seq is not None and (tid, seq) in self._report_acks:
            del self._report_acks[(tid, seq)]
            self._events.append(
                ResponseReceived(
                    tid,
                    response.code,
                    response.content_type,
                    response.body,
                    method=Method.REPORT,
                    seq=seq,
                )
            )
            if response.code != 200:
                self._incoming.pop(tid, None)  # s6.3.2.1: a 406 ends the extended transaction
            return
        txn = self._outgoing.get(tid)
        if txn is None or txn.extended or txn.method != Method.CONTROL:
            self._events.append(StrayResponse(tid, response.code))
            return
        extended = response.code == 202
        if extended:
            txn.extended = True
            txn.deadline = now + (response.timeout or self.config.transaction_timeout)
        else:
            del self._outgoing[tid]
        self._events.append(
            ResponseReceived(tid, response.code, response.content_type, response.body, extended)
        )

    def _on_sync_response(self, response: Response, now: float) -> None:
        assert self._sync_trans_id is not None
        self._outgoing.pop(self._sync_trans_id, None)
        if response.code == 200:
            common = tuple(p for p in response.packages if p in self.config.packages)
            if not common:
                self._close(Trigger.SYNC_REFUSED, "SYNC 200 names no package we offered", None)
                return
            self._fire(Trigger.SYNC_ACCEPTED)
            self.packages = common
            # s6.3.4.1: the active side sets the period; the passive one copies it.
            self.keep_alive = self.config.keep_alive
            self._ka_reset = now
            self._events.append(SyncCompleted(common, response.supported, self.keep_alive))
        elif response.code == 422:
            self._fire(Trigger.SYNC_RETRY)
            self._sync_trans_id = None
            self._events.append(SyncRefused(422, response.supported))
        else:
            self._events.append(SyncRefused(response.code, response.supported))
            self._close(Trigger.SYNC_REFUSED, f"SYNC refused with {response.code}", response.code)

    # ----------------------------------------------------------------- helpers
    def _require_open(self) -> None:
        if self.state is not State.OPEN:
            raise LocalProtocolError(f"the channel is {self.state.value}, not open")

    def _claim(self, trans_id: str | None) -> str:
        if trans_id is None:
            return self._new_trans_id()
        if not is_alpha_num_token(trans_id):
            raise LocalProtocolError(f"transaction id {trans_id!r} is not an alpha-num-token")
        if trans_id in self._outgoing:
            raise LocalProtocolError(f"transaction {trans_id} is in use")
        return trans_id

    def _new_trans_id(self) -> str:
        while True:
            candidate = secrets.token_hex(6)  # 12 hex digits, like RFC 7058's examples
            if candidate not in self._outgoing and candidate != self._ka_pending:
                return candidate

    def _send(self, message: Message) -> None:
        self._out_buffer += serialize(message)
