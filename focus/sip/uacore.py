"""The sans-IO SIP user agent (:class:`UACore`), its calls, events and configuration.

Pure: no sockets, no event loop. Its asyncio face is :class:`focus.sip.aio.ua.UserAgent`.

:class:`UACore` is the transaction user (RFC 3261 s8, s12, s13, s15) on top of
:class:`focus.sip.transaction.TransactionLayer`. It implements the
:class:`focus.sip.flow.SipCore` protocol, so :class:`focus.sip.aio.transport.SipTransport`
drives it with parsed messages and ``now``; the application drives it with method calls
(``invite``, ``accept``, ``bye``, ``request``, ``respond`` ...) and reads :data:`UAEvent`
values from :meth:`UACore.next_event`. Nothing in it reads a clock or touches a socket.

What the core does on its own, so that every application gets it right:

* 100 Trying, retransmissions, CANCEL/487 and 2xx retransmission until ACK (the layer);
* To-tags, Contact, Via with ``rport`` and a fresh branch, CSeq numbering, Call-IDs;
* the ACK of a 2xx (s13.2.2.4) -- and re-sending it for each retransmitted 2xx -- except
  for an offerless INVITE, where the application supplies the answer with :meth:`ack`
  (3PCC, RFC 3725 flow I);
* dialog matching (s12.2.2): 481 for in-dialog requests without a dialog, 500 for a CSeq
  lower than the last one, BYE answered 200 and the call ended;
* OPTIONS out of dialog answered 200 with Allow (``UAConfig.answer_options``); methods not in
  ``UAConfig.methods`` answered 501 (not implemented) or 405 (known, not allowed here);
* a 2xx never ACKed (s13.3.1.4) ends the call with BYE; a timed-out or unroutable request
  completes with a synthesized 408 / 503 (s8.1.3.1, s17.1.4).

* dialogs are :class:`focus.sip.dialog.Dialog` (one dialog layer for the whole stack);
  every in-dialog request passes the s12.2.2 check before it is handed over (the
  :mod:`focus.sip.subscription` / :mod:`focus.sip.refer` helpers may check it again:
  ``Dialog.receive_request`` is idempotent); dialogs those helpers create are registered with
  :meth:`UACore.adopt`, their messages sent with :meth:`UACore.send`, their responses with
  :meth:`UACore.answer_with` (which notes the request as answered);
* requests over 1300 bytes go over TCP (s18.1.1); requests the application leaves unanswered
  get 500 / 480 after ``UAConfig.answer_timeout`` / ``ring_timeout``;
* re-INVITEs are answered (:meth:`UACore.accept` / :meth:`UACore.reject`) in any confirmed
  call, the ones we placed too; 1xx to our INVITEs arrive as :class:`CallProgress`.

What a conference focus needs besides (RFC 4579): ``contact=`` on :meth:`UACore.invite` and
:meth:`UACore.accept` puts ``<conf-uri>;isfocus`` in Contact and makes it the dialog's local
target, ``from_user=`` on :meth:`UACore.invite` the conference as the caller, ``headers=``
on :meth:`UACore.reject` a 401's WWW-Authenticate (or Retry-After, Warning).

Name resolution is deliberately minimal: targets must be IP literals or ``localhost`` (no
DNS: the focus talks to peers it was given addresses for); ``transport=tcp`` in the URI
selects TCP, ``transport=tls`` or a ``sips:`` URI TLS (RFC 3263 s4.1 without NAPTR/SRV).

The core alone (tests, simulations) is driven like its asyncio face, with ``now`` passed in:
``core.receive_message(msg, flow, now)``, ``core.invite(...)``, ``core.outgoing()``,
``core.next_event()``, ``core.get_timer()`` / ``core.handle_timer(now)``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import heapq
import ipaddress
import itertools
import logging
import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from focus.sip.dialog import Dialog, DialogId, DialogTable
from focus.sip.errors import BadExtensionError, LocalProtocolError, SipParseError
from focus.sip.events import (
    AckNotReceived,
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
from focus.sip.flow import Flow, TransportFailure, TransportKind
from focus.sip.headers import NameAddr, parse_name_addr
from focus.sip.message import Request, Response, check_require, make_response
from focus.sip.oc import OcClient, offer, offers_loss, server_feedback
from focus.sip.overload import LoadGate, OverloadConfig
from focus.sip.subscription import dialog_from_notify
from focus.sip.timers import TimerConfig
from focus.sip.transaction import (
    State,
    TransactionGone,
    TransactionLayer,
    make_cancel,
    new_request,
    new_tag,
    server_key,
)
from focus.sip.uri import URI, SipURI, format_hostport, parse_uri

__all__ = [
    "Call",
    "CallAnswered",
    "CallConfirmed",
    "CallEnded",
    "CallEndedError",
    "CallFailed",
    "CallFailedError",
    "CallProgress",
    "CallState",
    "IncomingCall",
    "IncomingRequest",
    "RequestCompleted",
    "UAConfig",
    "UACore",
    "UACounts",
    "UAError",
    "UAEvent",
    "resolve_target",
]

log = logging.getLogger(__name__)

#: Requests larger than this go over TCP (RFC 3261 s18.1.1: 1300 bytes, path MTU unknown).
UDP_SIZE_LIMIT = 1300

#: Methods a UA may receive that RFC 3261 and its extensions define (405 vs 501, s8.2.1).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)


class UAError(LocalProtocolError):
    """The application asked for something the UA cannot do (unknown call, bad target...)."""


@dataclass(frozen=True, slots=True)
class UAConfig:
    """Who the UA is and what it accepts.

    user: the user part of our From/Contact URIs.
    display_name: optional display name in From.
    user_agent: the User-Agent / Server header value (``None`` leaves it out).
    methods: methods the application handles; ACK, CANCEL and BYE are always handled, OPTIONS
        too when ``answer_options``. Others get 405 (known methods) or 501 (s8.2.1).
    answer_options: answer out-of-dialog OPTIONS with 200 + Allow by ourselves (s11.2).
    timers: T1/T2/T4 for the transaction layer.
    accept: media types we accept in bodies (Accept header of OPTIONS answers).
    answer_timeout: a request handed to the application (:class:`IncomingRequest`) and not
        answered within this many seconds gets 500 from the core, so that a forgetful
        application cannot pile up server transactions (the peer gave up after 64*T1 anyway).
    ring_timeout: an incoming INVITE neither accepted nor rejected within this many seconds
        gets 480 Temporarily Unavailable (a re-INVITE gets 500).
    supported: option tags (RFC 3261 s19.2) the application implements; a request whose
        Require names any other gets 420 Bad Extension with Unsupported (s8.2.2.3).
    overload: limits on new out-of-dialog requests (:mod:`focus.sip.overload`); refused
        ones get 503 before the application sees them. ``None``: no gate.
    oc_validity: milliseconds our RFC 7339 ``oc`` feedback is valid for (s4.3), sent while
        the gate finds us overloaded to clients that offered ``oc``.
    """

    user: str = "focus"
    display_name: str | None = None
    user_agent: str | None = "xcon-focus"
    methods: frozenset[str] = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"})
    answer_options: bool = True
    timers: TimerConfig = field(default_factory=TimerConfig)
    accept: tuple[str, ...] = ("application/sdp",)
    answer_timeout: float = 32.0
    ring_timeout: float = 180.0
    supported: tuple[str, ...] = ()
    overload: OverloadConfig | None = None
    oc_validity: int = 500


_CALL_LABELS: Iterator[str] = (f"c{n}" for n in itertools.count(1))


class CallState(enum.Enum):
    """Where an INVITE dialog is (RFC 3261 s12, s13; RFC 3725 for offerless INVITEs)."""

    CALLING = "calling"  # UAC: INVITE sent, no final response yet
    INCOMING = "incoming"  # UAS: INVITE received, not answered yet
    ANSWERED = "answered"  # UAS: 2xx sent, waiting for ACK; UAC: 2xx got, ACK pending (3PCC)
    CONFIRMED = "confirmed"  # ACK sent (UAC) / received (UAS)
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class UACounts:
    """What a UA holds now (:meth:`UACore.counts`): a call that ended and whose
    transactions finished leaves every count as it was before it (the vanished-call tests
    check that). Transactions linger after their final response for Timer J/K (s17)."""

    calls: int  # calls with a dialog
    invites: int  # INVITE transactions of calls, ours and the peers'
    dialogs: int
    transactions: int  # client and server
    requests: int  # our non-INVITE requests waiting for their final response
    unanswered: int  # requests handed to the application, not answered yet
    flows: int  # dialogs' remembered next hops (TCP connection reuse)
    awaited: int = 0  # what the asyncio adapter has callers waiting on (UserAgent.counts)


@dataclass(eq=False, slots=True)
class Call:
    """One INVITE-initiated session, UAC or UAS side: the application's handle.

    ``dialog`` (a :class:`focus.sip.dialog.Dialog`) exists once the call is answered (our
    2xx sent, or theirs received); ``flow`` is where the initial INVITE went / came from.
    """

    call_id: str
    local_tag: str
    outgoing: bool
    invite: Request  # the latest INVITE of the call (initial or re-INVITE)
    state: CallState
    flow: Flow
    dialog: Dialog | None = None
    offer: bytes = b""  # the body of the INVITE (empty for an offerless INVITE)
    answer: bytes = b""  # the answer (in our 2xx / their 2xx / the ACK for 3PCC)
    invite_key: TransactionKey | None = None
    ack: Request | None = None
    final_status: int | None = None
    end_reason: str = ""
    local_sdp: bytes = b""  # what we put in our 2xx (UAS) or INVITE (UAC)
    remote_sdp: bytes = b""  # what the peer sent (offer or answer)
    label: str = field(default_factory=lambda: next(_CALL_LABELS))
    contact: NameAddr | None = None  # our Contact if the application chose it (invite)
    response: Response | None = None  # the final response to our initial INVITE (its headers)

    def __repr__(self) -> str:
        side = "out" if self.outgoing else "in"
        return f"<Call {self.label} {side} {self.state.value} {self.call_id}>"


# --- events the application reacts to ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """An INVITE created a call (or a re-INVITE arrived in one: ``reinvite``); answer it with
    :meth:`UACore.accept` or :meth:`UACore.reject`. ``offer`` is empty for an offerless
    INVITE: then our 2xx carries the offer and the answer comes in the ACK."""

    call: Call
    request: Request
    offer: bytes
    reinvite: bool = False


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """Our INVITE got a 2xx. For an offerless INVITE (``needs_ack``) the 2xx holds the
    peer's offer and the application must send the answer with :meth:`UACore.ack`."""

    call: Call
    response: Response
    needs_ack: bool


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A provisional response (101-199: 180 Ringing, 183 Session Progress ...) to an INVITE
    we sent (s13.2.2.1); ``reinvite`` when it answers a re-INVITE. 100 Trying is hop-by-hop
    (s21.1.1) and not reported."""

    call: Call
    response: Response
    reinvite: bool = False


@dataclass(frozen=True, slots=True)
class CallConfirmed:
    """The ACK for our 2xx arrived (UAS); ``body`` is the answer if we sent an offer in it."""

    call: Call
    body: bytes


@dataclass(frozen=True, slots=True)
class CallFailed:
    """Our INVITE got a final non-2xx (or timed out: 408, or could not be sent: 503), or an
    incoming INVITE was cancelled (487)."""

    call: Call
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A confirmed call ended: BYE from the peer (``by_peer``) or from us, or no ACK came."""

    call: Call
    by_peer: bool
    reason: str


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """A request the application answers with :meth:`UACore.respond` (REFER, SUBSCRIBE,
    NOTIFY, MESSAGE, INFO ...); ``dialog`` is set for in-dialog requests."""

    request: Request
    dialog: Dialog | None
    source: Flow


@dataclass(frozen=True, slots=True)
class RequestCompleted:
    """The final response to a request sent with :meth:`UACore.request` (or a 408 / 503 the
    core synthesized for a timeout / transport failure, s8.1.3.1)."""

    key: TransactionKey
    request: Request
    response: Response
    dialog: Dialog | None


UAEvent = (
    IncomingCall
    | CallAnswered
    | CallProgress
    | CallConfirmed
    | CallFailed
    | CallEnded
    | IncomingRequest
    | RequestCompleted
)


# --- what waiting for a call raises (in the asyncio face) -----------------------------------


class CallFailedError(Exception):
    """``await ua.invite(...)`` got a non-2xx final response (``status``)."""

    def __init__(self, call: Call, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.call = call
        self.status = status
        self.reason = reason


class CallEndedError(UAError):
    """``await ua.confirmed(call)``: the call ended (or failed) before the ACK came."""

    def __init__(self, call: Call, reason: str) -> None:
        super().__init__(f"{call!r} ended before the ACK: {reason}", 481)
        self.call = call
        self.reason = reason


# --- addressing ------------------------------------------------------------------------------


def resolve_target(uri: URI) -> Flow:
    """The next hop for a SIP URI: IP literal or ``localhost``, port 5060 (5061 for TLS) by
    default.

    ``maddr`` (s19.1.1) overrides the host; ``transport=tcp`` selects TCP, ``sips:`` or
    ``transport=tls`` TLS (s26.2.2; TLS carried over TCP). Raises
    :class:`UAError` for anything that would need DNS or is not SIP.
    """
    if not isinstance(uri, SipURI):
        raise UAError(f"cannot route to a non-SIP URI {uri}", 416)
    host = uri.params.get("maddr") or uri.host
    host = host.strip("[]")
    if host.lower() == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UAError(f"{host!r} is not an IP literal (the UA does no DNS)", 503) from None
    if uri.secure or uri.transport == "tls":
        kind = TransportKind.TLS
    elif uri.transport == "tcp":
        kind = TransportKind.TCP
    else:
        kind = TransportKind.UDP
    return Flow(kind, host, uri.port if uri.port is not None else kind.default_port)


def _as_contact(value: NameAddr | str | None) -> NameAddr | None:
    """A Contact given by the application, parsed if given as text."""
    if value is None or isinstance(value, NameAddr):
        return value
    try:
        return parse_name_addr(value, "Contact")
    except SipParseError as exc:
        raise UAError(f"unusable Contact {value!r}: {exc.reason}") from None


# --- the sans-IO core -----------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    """An outgoing non-INVITE request waiting for its final response."""

    request: Request
    dialog: Dialog | None  # the dialog it was sent in
    flow: Flow
    creates_dialog: bool = False  # an out-of-dialog SUBSCRIBE or REFER


class UACore:
    """The sans-IO user agent (see the module docstring).

    ``local`` maps each transport to the address we put in Via and Contact for it (what the
    transport bound). Dialogs are :class:`focus.sip.dialog.Dialog` objects kept in
    :attr:`dialogs`; the core checks in-dialog requests against them (s12.2.2) before handing
    them over (calling ``Dialog.receive_request`` again on such a request is harmless).
    """

    def __init__(self, config: UAConfig, local: dict[TransportKind, tuple[str, int]]) -> None:
        if not local:
            raise UAError("the UA needs at least one local transport address")
        self.config = config
        self.local = dict(local)
        self.layer = TransactionLayer(config.timers)
        self.dialogs = DialogTable()
        self._events: deque[UAEvent] = deque()
        self._flows: dict[DialogId, Flow] = {}
        self._calls: dict[DialogId, Call] = {}
        self._calls_by_invite: dict[TransactionKey, Call] = {}
        self._incoming_invites: dict[TransactionKey, Call] = {}
        self._pending: dict[TransactionKey, _Pending] = {}
        # Out-of-dialog SUBSCRIBE/REFER waiting for the peer's tag, by (Call-ID, our tag):
        # their NOTIFY may come before the 2xx and then creates the dialog (RFC 6665 s4.1.2.4).
        self._early: dict[tuple[str, str], _Pending] = {}
        # Where requests we have not answered yet came from (TCP connection reuse).
        # Requests handed to the application, by their server transaction: where each came
        # from, and which were given a final response (the rest are answered when overdue).
        self._sources: dict[TransactionKey, Flow] = {}
        self._finals_given: set[TransactionKey] = set()
        # (deadline, seq, key): answer_timeout / ring_timeout, lazily deleted; the request
        # waits in _awaiting_answer only while its transaction lives, so a flood's INVITEs
        # are freed when their transactions end, not ring_timeout later.
        self._deadlines: list[tuple[float, int, TransactionKey]] = []
        self._awaiting_answer: dict[TransactionKey, Request] = {}
        self._seq = itertools.count()
        self._allow = ", ".join(sorted(config.methods | {"ACK", "BYE", "CANCEL", "OPTIONS"}))
        #: decides on new out-of-dialog requests (None: every one is taken)
        self.gate = LoadGate(config.overload) if config.overload is not None else None
        #: RFC 7339 feedback from the servers we send requests to
        self.oc = OcClient()

    def counts(self) -> UACounts:
        """What this UA holds now (read-only)."""
        return UACounts(
            calls=len(self._calls),
            invites=len(self._calls_by_invite) + len(self._incoming_invites),
            dialogs=len(self.dialogs.dialogs),
            transactions=len(self.layer),
            requests=len(self._pending) + len(self._early),
            unanswered=len(self._sources),
            flows=len(self._flows),
        )

    # ------------------------------------------------------------------ SipCore protocol

    def receive_message(self, message: Request | Response, source: Flow, now: float) -> None:
        self.layer.receive_message(message, source, now)
        self._drain_layer(now)

    def transport_failed(self, failure: TransportFailure, now: float) -> None:
        self.layer.transport_failed(failure.message, now)
        self._drain_layer(now)

    def handle_timer(self, now: float) -> None:
        self.layer.handle_timer(now)
        self._drain_layer(now)
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, key = heapq.heappop(self._deadlines)
            request = self._awaiting_answer.get(key)
            if request is not None:
                self._answer_overdue(key, request, now)

    def _answer_by(self, deadline: float, key: TransactionKey, request: Request) -> None:
        self._awaiting_answer[key] = request
        heapq.heappush(self._deadlines, (deadline, next(self._seq), key))

    def get_timer(self) -> float | None:
        layer = self.layer.get_timer()
        if not self._deadlines:
            return layer
        mine = self._deadlines[0][0]
        return mine if layer is None else min(layer, mine)

    def _answer_overdue(self, key: TransactionKey, request: Request, now: float) -> None:
        """The application never answered ``request``: answer it ourselves (see UAConfig)."""
        call = self._incoming_invites.get(key)
        if call is not None and call.invite_key == key:
            log.info("%r not answered in %.0f s", call, self.config.ring_timeout)
            self.reject(call, 480 if call.state is CallState.INCOMING else 500, now)
            return
        if (
            key in self._sources
            and key not in self._finals_given
            and self.layer.transaction_state(key) in (State.TRYING, State.PROCEEDING)
        ):
            # (A final response sent with send_response left the transaction Completed:
            # answered after all, if not noted -- answer_with notes it.)
            log.info("%s request not answered in time by the application", request.method)
            self._error(request, 500, "Server Internal Error - not answered in time", now)
            self._drain_layer(now)

    def outgoing(self) -> list[Transmit]:
        return self.layer.outgoing()

    # ------------------------------------------------------------------ application side

    def next_event(self) -> UAEvent | None:
        """The next event for the application, or ``None``."""
        return self._events.popleft() if self._events else None

    @property
    def calls(self) -> list[Call]:
        """Calls with a dialog (answered, confirmed), for diagnostics."""
        return list(self._calls.values())

    def find_dialog(self, call_id: str, local_tag: str, remote_tag: str) -> Dialog | None:
        return self.dialogs.dialogs.get(DialogId(call_id, local_tag, remote_tag))

    def flow_for(self, dialog: Dialog) -> Flow:
        """The next hop of in-dialog requests: the route set's first URI or the remote
        target (s12.2.1.1), resolved; over TCP the dialog's connection while it is open."""
        base = self._flows.get(dialog.id)
        hop = dialog.next_hop()
        try:
            flow = resolve_target(hop)
        except UAError:
            if base is None:
                raise
            return base
        if base is not None and base.transport.reliable:
            # Stay on the dialog's connection-oriented transport (and its connection) unless
            # the target names another one explicitly.
            explicit = isinstance(hop, SipURI) and (hop.transport is not None or hop.secure)
            if flow.transport is base.transport or not explicit:
                return Flow(base.transport, flow.host, flow.port, base.connection)
        return flow

    def invite(
        self,
        target: str | URI,
        body: bytes,
        now: float,
        *,
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | str | None = None,
        from_user: str | None = None,
    ) -> Call:
        """Place a call. An empty ``body`` sends an offerless INVITE (3PCC): the peer's offer
        comes in its 2xx and :meth:`ack` carries our answer.

        ``contact`` replaces our Contact (and so the dialog's local target, s12.1.2), e.g. a
        focus's ``<sip:conf@host>;isfocus`` (RFC 4579 s5.5); ``from_user`` the user part of
        From (default ``UAConfig.user``), e.g. the conference's. Raises :class:`UAError` for
        an unparsable ``contact``."""
        ours = _as_contact(contact)
        uri = parse_uri(target) if isinstance(target, str) else target
        flow = resolve_target(uri)
        request = self._initial_request(
            "INVITE",
            uri,
            flow,
            body=body,
            content_type=content_type,
            headers=headers,
            contact=ours,
            from_user=from_user,
        )
        flow = self._fit(request, flow)
        call = Call(
            request.call_id,
            request.from_.tag or "",
            True,
            request,
            CallState.CALLING,
            flow,
            offer=body,
            local_sdp=body,
            contact=ours,
        )
        if not self.oc.admit(flow.address, now):
            # RFC 7339 s5.10, s7.2: the server asked for fewer requests; this one is shed.
            self._fail(call, 503, "Service Unavailable - shed by overload control (RFC 7339)")
            return call
        key = self.layer.send_request(request, flow, now)
        call.invite_key = key
        self._calls_by_invite[key] = call
        self._drain_layer(now)
        return call

    def accept(
        self,
        call: Call,
        body: bytes,
        now: float,
        *,
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | str | None = None,
    ) -> None:
        """Answer an INVITE we received with 200 and ``body`` (s13.3.1.4): the initial INVITE
        of an incoming call, or a re-INVITE in any confirmed call -- one we placed too.

        ``contact`` replaces our Contact in the 2xx and becomes the dialog's local target
        (s12.1.1; for a re-INVITE a target refresh of our side, s12.2), e.g. a focus's
        ``<sip:conf@host>;isfocus`` (RFC 4579 s3). Raises :class:`UAError` when no INVITE
        of ``call`` waits for an answer or ``contact`` does not parse."""
        if not self._awaits_answer(call) or call.state not in (
            CallState.INCOMING,
            CallState.CONFIRMED,
        ):
            raise UAError(f"{call!r} has no INVITE waiting for an answer")
        ours = _as_contact(contact)
        request = call.invite
        if call.dialog is None:
            response = make_response(request, 200, to_tag=call.local_tag)
            local = ours or self._contact(call.flow.transport)
            response.headers.add("Contact", str(local))
            dialog = Dialog.from_uas(request, response, local)
            self._register(dialog, call.flow)
            call.dialog = dialog
            self._calls[dialog.id] = call
        else:
            if ours is not None:
                call.dialog.local_contact = ours
            response = call.dialog.create_response(request, 200)
        self._finish_response(response, body, content_type, headers)
        self._send_response(response, now)
        call.invite_key = None
        call.local_sdp = call.answer = body
        call.state = CallState.ANSWERED  # until the ACK (for a re-INVITE too)
        self._drain_layer(now)

    def reject(
        self,
        call: Call,
        status: int,
        now: float,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer an INVITE we received (initial or re-INVITE, in a call placed by either
        side) with a final non-2xx ``status`` (300-699); ``headers`` are added to the
        response (WWW-Authenticate of a 401, Retry-After, Warning ...)."""
        if not self._awaits_answer(call) or not 300 <= status <= 699:
            raise UAError(f"cannot reject {call!r} with {status}")
        if call.dialog is not None:
            response = call.dialog.create_response(call.invite, status, reason)
        else:
            response = make_response(call.invite, status, reason, to_tag=call.local_tag)
        self._finish_response(response, b"", None, headers)
        self._send_response(response, now)
        call.invite_key = None
        if call.state is CallState.INCOMING:
            self._end(call, f"rejected {status}")
        self._drain_layer(now)

    def progress(
        self,
        call: Call,
        now: float,
        status: int = 180,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | str | None = None,
    ) -> None:
        """Send a provisional response (101-199: 180 Ringing, 183 ...) to the INVITE of
        ``call`` that waits for an answer. It carries the call's To-tag -- the one the 2xx
        will carry, so both are one dialog (s13.3.1.1) -- and a Contact (``contact`` or
        ours, s12.1.1). Raises :class:`UAError` if no INVITE waits or ``status`` is no
        1xx (100 is the transaction layer's)."""
        if not self._awaits_answer(call) or not 101 <= status <= 199:
            raise UAError(f"cannot send {status} for {call!r}")
        ours = _as_contact(contact)
        if call.dialog is not None:
            response = call.dialog.create_response(call.invite, status, reason)
        else:
            response = make_response(call.invite, status, reason, to_tag=call.local_tag)
            local = ours or self._contact(call.flow.transport)
            response.headers.add("Contact", str(local))
        self._finish_response(response, b"", None, headers)
        self._send_response(response, now)
        self._drain_layer(now)

    def _awaits_answer(self, call: Call) -> bool:
        """An INVITE of ``call`` came in and has no final response from us yet (its server
        transaction key; ``invite_key`` holds a client key while our own INVITE is out)."""
        key = call.invite_key
        return key is not None and key.server and self._incoming_invites.get(key) is call

    def ack(
        self, call: Call, body: bytes, now: float, *, content_type: str = "application/sdp"
    ) -> None:
        """Send the ACK of an offerless INVITE's 2xx with our answer (RFC 3725 flow I)."""
        if not call.outgoing or call.state is not CallState.ANSWERED:
            raise UAError(f"{call!r} is not waiting for an ACK from us")
        self._send_ack(call, body, content_type)
        self._drain_layer(now)

    def reinvite(
        self,
        call: Call,
        body: bytes,
        now: float,
        *,
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
    ) -> TransactionKey:
        """Send a re-INVITE in a confirmed call (s14.1); ``body`` empty asks the peer for an
        offer. Its 2xx comes as :class:`CallAnswered` (ACKed by us unless offerless); a
        non-2xx as :class:`RequestCompleted` -- the call itself goes on (s14.1). Raises
        :class:`~focus.sip.errors.LocalProtocolError` while another INVITE is pending."""
        dialog = call.dialog
        if call.state is not CallState.CONFIRMED or dialog is None:
            raise UAError(f"{call!r} is not confirmed; re-INVITE needs an established call")
        flow = self.flow_for(dialog)
        request = dialog.create_request(
            "INVITE",
            sent_by=self._sent_by(flow.transport),
            transport=flow.transport.value,
            body=body,
            content_type=content_type if body else None,
            headers=headers,
        )
        key = self.layer.send_request(request, flow, now)
        call.invite, call.invite_key, call.offer = request, key, body
        call.local_sdp = body or call.local_sdp
        self._calls_by_invite[key] = call
        self._drain_layer(now)
        return key

    def bye(self, call: Call, now: float) -> TransactionKey | None:
        """End a call: BYE for an answered one; CANCEL for our ringing INVITE (s9.1); 480
        for an incoming one not answered yet."""
        if call.state is CallState.ENDED:
            return None
        if call.state is CallState.CALLING:
            # Not answered yet: CANCEL it; the INVITE then completes with 487.
            cancel = make_cancel(call.invite)
            key = self.layer.send_request(cancel, call.flow, now)
            self._pending[key] = _Pending(cancel, None, call.flow)
            self._drain_layer(now)
            return key
        if call.state is CallState.INCOMING:
            self.reject(call, 480, now)
            return None
        assert call.dialog is not None
        if call.dialog.terminated:
            # A 408/481 in the dialog ended it (s12.2.1.2): nothing to send, only to release.
            self._end(call, "dialog ended by 408/481", by_peer=False)
            return None
        key = self.request(call.dialog, "BYE", now)
        self._end(call, "BYE sent", by_peer=False)
        return key

    def request(
        self,
        where: Dialog | str | URI,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> TransactionKey:
        """Send ``method`` in a dialog or to a target; its final response arrives as a
        :class:`RequestCompleted` with the returned key. SUBSCRIBE and REFER out of dialog
        create a dialog (their NOTIFYs arrive as :class:`IncomingRequest` in it)."""
        if method in ("ACK", "CANCEL", "INVITE"):
            raise UAError(f"use invite/ack/bye/reinvite for {method}")
        if isinstance(where, Dialog):
            flow = self.flow_for(where)
            request = where.create_request(
                method,
                sent_by=self._sent_by(flow.transport),
                transport=flow.transport.value,
                body=body,
                content_type=content_type,
                headers=headers,
            )
            return self.send(request, where, now, flow=flow)
        uri = parse_uri(where) if isinstance(where, str) else where
        flow = resolve_target(uri)
        request = self._initial_request(
            method, uri, flow, body=body, content_type=content_type, headers=headers
        )
        return self.send(request, None, now, flow=flow)

    def send(
        self, request: Request, dialog: Dialog | None, now: float, *, flow: Flow | None = None
    ) -> TransactionKey:
        """Send a request built elsewhere (e.g. ``Subscription.notify``, a ``Referrer``'s
        REFER) in ``dialog`` or, with ``flow``, to a next hop; completes like
        :meth:`request`. An out-of-dialog SUBSCRIBE or REFER creates a dialog."""
        if flow is None:
            if dialog is None:
                raise UAError("send needs a dialog or a flow")
            flow = self.flow_for(dialog)
        flow = self._fit(request, flow)
        creates = dialog is None and request.method in ("SUBSCRIBE", "REFER")
        pending = _Pending(request, dialog, flow, creates)
        key = self.layer.send_request(request, flow, now)
        self._pending[key] = pending
        if creates:
            self._early[(request.call_id, request.from_.tag or "")] = pending
        self._drain_layer(now)
        return key

    def adopt(
        self, dialog: Dialog, flow: Flow | None = None, *, request: Request | None = None
    ) -> None:
        """Let the core route in-dialog requests to a dialog created elsewhere (e.g. by
        ``Notifier.receive_subscribe`` or ``receive_refer``). ``flow`` is how the peer is
        reached if its target cannot be resolved (default: from ``request``'s top Via,
        including the TCP connection it came on)."""
        if flow is None:
            if request is None:
                flow = resolve_target(dialog.next_hop())
            else:
                flow = self._sources.get(server_key(request)) or self._source_of(request)
        self._register(dialog, flow)

    def release(self, dialog: Dialog) -> None:
        """Forget a dialog whose last usage ended (e.g. a subscription terminated)."""
        self._forget(dialog)

    def send_response(self, response: Response, now: float) -> None:
        """Send a response built elsewhere (e.g. by ``Notifier.receive_subscribe``).

        To a request delivered as :class:`IncomingRequest` prefer :meth:`answer_with`, which
        also notes the request as answered."""
        self._finish_response(response, b"", None, ())
        self._send_response(response, now)
        self._drain_layer(now)

    def answer_with(self, request: Request, response: Response, now: float) -> None:
        """Send ``response``, built elsewhere (a SUBSCRIBE's 200 by the subscription
        notifier, a REFER's 202 ...), to ``request`` delivered as :class:`IncomingRequest`.

        A final response marks the request as answered, so the core does not answer it
        again with 500 after ``UAConfig.answer_timeout``. Raises :class:`UAError` if the
        response is not for ``request`` (Call-ID and CSeq differ)."""
        if response.call_id != request.call_id or response.cseq != request.cseq:
            raise UAError(f"{response!r} does not answer {request!r}")
        key = server_key(request)
        if response.status >= 200 and key in self._sources:
            self._finals_given.add(key)
        self.send_response(response, now)

    @property
    def allow(self) -> str:
        """The Allow header value: every method we handle (RFC 3261 s20.5)."""
        return self._allow

    def contact_for(self, transport: TransportKind) -> NameAddr:
        """The Contact the core puts in what it sends over ``transport`` (any local one if
        ``transport`` is not bound), e.g. for a ``Notifier``'s dialogs."""
        return self._contact(transport)

    def respond(
        self,
        request: Request,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Answer a request delivered as :class:`IncomingRequest`; returns the response.

        In a dialog the response carries the dialog's tag (and Contact for target refresh
        requests); a 2xx to an out-of-dialog SUBSCRIBE or REFER creates the dialog."""
        key = server_key(request)
        source = self._sources.get(key)
        if status >= 200 and source is not None:
            self._finals_given.add(key)
        dialog = self.dialogs.for_request(request)
        if dialog is not None:
            response = dialog.create_response(request, status, reason)
        else:
            response = make_response(
                request, status, reason, to_tag=request.to.tag or self._tag_for(request)
            )
            if 200 <= status < 300 and request.method in ("SUBSCRIBE", "REFER"):
                flow = source or self._source_of(request)
                contact = self._contact(flow.transport)
                response.headers.add("Contact", str(contact))
                self._register(Dialog.from_uas(request, response, contact), flow)
        self._finish_response(response, body, content_type, headers)
        self._send_response(response, now)
        self._drain_layer(now)
        return response

    # ------------------------------------------------------------------ building messages

    def _fit(self, request: Request, flow: Flow) -> Flow:
        """RFC 3261 s18.1.1: a request over 1300 bytes (path MTU unknown) goes over TCP
        unless the target insists on UDP. The top Via is rewritten to say so."""
        if (
            flow.transport is not TransportKind.UDP
            or TransportKind.TCP not in self.local
            or len(request.to_bytes()) <= UDP_SIZE_LIMIT
        ):
            return flow
        uri = request.uri
        if isinstance(uri, SipURI) and uri.transport == "udp":
            return flow
        via = request.via[0]
        host, port = self.local[TransportKind.TCP]
        request.headers.replace_top_via(
            dataclasses.replace(
                via, transport="TCP", host=f"[{host}]" if ":" in host else host, port=port
            )
        )
        return Flow(TransportKind.TCP, flow.host, flow.port)

    def _sent_by(self, transport: TransportKind) -> str:
        kind = transport if transport in self.local else next(iter(self.local))
        return format_hostport(*self.local[kind])

    def _contact(self, transport: TransportKind) -> NameAddr:
        kind = transport if transport in self.local else next(iter(self.local))
        suffix = "" if kind is TransportKind.UDP else f";transport={kind.value.lower()}"
        return NameAddr(parse_uri(f"sip:{self.config.user}@{self._sent_by(kind)}{suffix}"))

    def _initial_request(
        self,
        method: str,
        uri: URI,
        flow: Flow,
        *,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]],
        contact: NameAddr | None = None,
        from_user: str | None = None,
    ) -> Request:
        """An out-of-dialog request (s8.1.1): new Call-ID, From tag and CSeq."""
        if flow.transport not in self.local:
            raise UAError(f"no local {flow.transport} transport to reach {uri}", 503)
        sent_by = self._sent_by(flow.transport)
        try:
            local = NameAddr(
                parse_uri(f"sip:{from_user or self.config.user}@{sent_by}"),
                self.config.display_name,
            )
        except SipParseError as exc:
            raise UAError(f"unusable From user {from_user!r}: {exc.reason}") from None
        request = new_request(
            method,
            uri,
            transport=flow.transport.value,
            sent_by=sent_by,
            from_=str(local.with_tag(new_tag())),
            to=str(NameAddr(uri)),
            call_id=f"{secrets.token_hex(12)}@{self.local[flow.transport][0]}",
            cseq=secrets.randbelow(2**16) + 1,
        )
        h = request.headers
        h.replace_top_via(offer(h.via[0]))  # RFC 7339 s4.1: we honour overload feedback
        if method in ("INVITE", "SUBSCRIBE", "REFER", "NOTIFY"):
            h.add("Contact", str(contact or self._contact(flow.transport)))
        if self.config.user_agent:
            h.add("User-Agent", self.config.user_agent)
        for name, value in headers:
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
            request.body = body
        return request

    def _finish_response(
        self,
        response: Response,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]],
    ) -> None:
        if self.config.user_agent:
            response.headers.add("Server", self.config.user_agent)
        headers = list(headers)
        # RFC 3261 s20.5: a 405 MUST list the methods we accept; a 2xx to INVITE (s13.3.1.4)
        # and to OPTIONS (s11.2) SHOULD. Always the same list: every method we handle.
        allow_wanted = response.status == 405 or (
            200 <= response.status < 300 and response.cseq.method in ("INVITE", "OPTIONS")
        )
        if allow_wanted and not any(name.lower() == "allow" for name, _ in headers):
            response.headers.add("Allow", self._allow)
        for name, value in headers:
            response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", content_type or "application/octet-stream")
            response.body = body

    def _error(
        self,
        request: Request,
        status: int,
        reason: str | None,
        now: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """An error response to a request outside the application's view. Works on a
        request whose From/To/CSeq do not parse too (the layer accepted its Via)."""
        try:
            dialog = self.dialogs.for_request(request)
            to_tag = request.to.tag
        except SipParseError:
            dialog, to_tag = None, None
        if dialog is not None:
            response = dialog.create_response(request, status, reason)
        else:
            response = make_response(
                request, status, reason, to_tag=to_tag or self._tag_for(request)
            )
        self._finish_response(response, b"", None, headers)
        self._send_response(response, now)

    def _tag_for(self, request: Request) -> str:
        # The same tag for every response to one request (retransmissions, s8.2.6.2).
        h = request.headers
        seed = f"{h.get('Call-ID')}|{h.get('From')}|{h.get('CSeq')}"  # raw: always readable
        return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()

    def _source_of(self, request: Request) -> Flow:
        via = request.via[0]
        host = (via.received or via.host).strip("[]")
        try:
            kind = TransportKind(via.transport.upper())
        except ValueError:
            kind = TransportKind.UDP
        return Flow(kind, host, via.rport or via.port or kind.default_port)

    def _register(self, dialog: Dialog, flow: Flow) -> None:
        self.dialogs.add(dialog)
        self._flows[dialog.id] = flow

    def _forget(self, dialog: Dialog) -> None:
        self.dialogs.remove(dialog)
        self._flows.pop(dialog.id, None)

    def _send_response(self, response: Response, now: float) -> None:
        if self.gate is not None:
            self._feedback(response, now)
        try:
            self.layer.send_response(response, now)
        except TransactionGone as exc:
            # The peer gave up (or CANCELled) before we answered: nothing left to answer.
            log.info("response dropped: %s", exc)

    def _feedback(self, response: Response, now: float) -> None:
        """RFC 7339 s5.1/s5.2: our load in the top Via, for a client that offered ``oc``."""
        assert self.gate is not None
        try:
            top = response.via[0]
        except (SipParseError, IndexError):
            return
        if offers_loss(top):
            loss = self.gate.loss(now)
            response.headers.replace_top_via(
                server_feedback(top, loss, now, self.config.oc_validity)
            )

    def _send_ack(self, call: Call, body: bytes, content_type: str) -> None:
        dialog = call.dialog
        assert dialog is not None
        flow = self.flow_for(dialog)
        ack = dialog.create_ack(
            call.invite.cseq.number,
            sent_by=self._sent_by(flow.transport),
            transport=flow.transport.value,
            body=body,
            content_type=content_type if body else None,
        )
        call.ack = ack
        call.state = CallState.CONFIRMED
        if body:
            call.answer = call.local_sdp = body
        self.layer.send_ack(ack, flow)

    # ------------------------------------------------------------------ layer events

    def _drain_layer(self, now: float) -> None:
        while (event := self.layer.next_event()) is not None:
            match event:
                case RequestReceived(request=request, source=source, transaction=key):
                    try:
                        self._on_request(request, source, key, now)
                    except SipParseError as exc:
                        if key is not None and request.method != "ACK":
                            self._error(request, exc.status, exc.reason, now)
                case ResponseReceived(response=response, transaction=key):
                    try:
                        self._on_response(response, key, now)
                    except SipParseError as exc:
                        log.info("unusable response %r: %s", response, exc)
                case TransactionTimedOut(transaction=key, request=request):
                    if not key.server:
                        self._synthesize(key, request, 408, "Request Timeout", now)
                case TransactionTransportError(transaction=key, request=request, reason=why):
                    if not key.server:
                        self._synthesize(key, request, 503, f"Service Unavailable - {why}", now)
                case RequestCancelled(transaction=key):
                    call = self._incoming_invites.pop(key, None)
                    if call is not None:
                        call.invite_key = None
                        if call.state is CallState.INCOMING:
                            self._fail(call, 487, "Request Terminated (cancelled by peer)")
                        # A cancelled re-INVITE leaves the call as it was (s14.2, s9.2).
                case AckNotReceived(response=response):
                    call = self._calls.get(
                        DialogId(response.call_id, response.to.tag or "", response.from_.tag or "")
                    )
                    if call is not None and call.state is CallState.ANSWERED:
                        # s13.3.1.4: confirm, then end the session with BYE.
                        call.state = CallState.CONFIRMED
                        self.bye(call, now)
                        call.end_reason = "no ACK for our 2xx"
                        self._replace_last_end(call)
                case TransactionTerminated(transaction=key):
                    self._incoming_invites.pop(key, None)
                    self._calls_by_invite.pop(key, None)
                    self._sources.pop(key, None)
                    self._finals_given.discard(key)
                    self._awaiting_answer.pop(key, None)
                    if len(self._deadlines) > 2 * len(self._awaiting_answer) + 32:
                        # Mostly stale entries: keep the heap bounded by live transactions.
                        self._deadlines = [
                            d for d in self._deadlines if d[2] in self._awaiting_answer
                        ]
                        heapq.heapify(self._deadlines)
                case MessageDiscarded(message=message, reason=why):
                    log.debug("discarded %r: %s", message, why)

    def _replace_last_end(self, call: Call) -> None:
        for i in range(len(self._events) - 1, -1, -1):
            event = self._events[i]
            if isinstance(event, CallEnded) and event.call is call:
                self._events[i] = CallEnded(call, False, call.end_reason)
                return

    def _synthesize(
        self, key: TransactionKey, request: Request, status: int, reason: str, now: float
    ) -> None:
        response = make_response(request, status, reason)
        self._on_response(response, key, now)

    # ------------------------------------------------------------------ requests in

    def _on_request(
        self, request: Request, source: Flow, key: TransactionKey | None, now: float
    ) -> None:
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        assert key is not None
        if self.gate is not None and request.to.tag is None:
            refusal = self.gate.check(
                method, source.host, self.layer.unanswered_from(source.host), now, request.via
            )
            if refusal is not None:
                log.info("%s from %s refused: %s", method, source.host, refusal.reason)
                self._error(request, refusal.status, refusal.reason, now, refusal.headers)
                return
        try:
            check_require(request, self.config.supported)
        except BadExtensionError as exc:
            # s8.2.2.3: refuse what needs an extension we lack, naming it in Unsupported.
            response = make_response(request, 420, to_tag=request.to.tag or self._tag_for(request))
            response.headers.add("Unsupported", ", ".join(exc.unsupported))
            self._finish_response(response, b"", None, ())
            self._send_response(response, now)
            return
        if request.to.tag is not None:
            self._in_dialog(request, source, now, key)
            return
        if method == "INVITE":
            self._new_incoming_call(request, source, key, now)
        elif method == "OPTIONS" and self.config.answer_options:
            response = make_response(request, 200, to_tag=self._tag_for(request))
            response.headers.add("Accept", ", ".join(self.config.accept))
            self._finish_response(response, b"", None, ())
            self._send_response(response, now)
        elif method == "BYE":
            self._error(request, 481, None, now)
        elif method in self.config.methods:
            self._remember_source(request, source, key, now)
            self._events.append(IncomingRequest(request, None, source))
        else:
            self._not_allowed(request, now)

    def _remember_source(
        self, request: Request, source: Flow, key: TransactionKey, now: float
    ) -> None:
        self._sources[key] = source
        self._answer_by(now + self.config.answer_timeout, key, request)

    def _not_allowed(self, request: Request, now: float) -> None:
        self._error(request, 405 if request.method in KNOWN_METHODS else 501, None, now)

    def _new_incoming_call(
        self, request: Request, source: Flow, key: TransactionKey, now: float
    ) -> None:
        contact = request.contact
        if contact == "*" or len(contact) != 1 or request.from_.tag is None:
            # s8.1.1.8: an INVITE carries exactly one Contact, the remote target; s8.1.1.3 a
            # From tag. Without them there can be no dialog.
            self._error(request, 400, "Bad Request - Missing Contact or From tag", now)
            return
        call = Call(
            request.call_id,
            new_tag(),
            False,
            request,
            CallState.INCOMING,
            source,
            offer=request.body,
            remote_sdp=request.body,
            invite_key=key,
        )
        self._incoming_invites[key] = call
        self._answer_by(now + self.config.ring_timeout, key, request)
        self._events.append(IncomingCall(call, request, request.body))

    def _on_ack(self, request: Request) -> None:
        call = self._calls.get(
            DialogId(request.call_id, request.to.tag or "", request.from_.tag or "")
        )
        if call is None or call.state is not CallState.ANSWERED:
            return  # a retransmitted ACK, or one for a call we do not know: absorb
        call.state = CallState.CONFIRMED
        if request.body:
            call.remote_sdp = request.body
        self._events.append(CallConfirmed(call, request.body))

    def _in_dialog(self, request: Request, source: Flow, now: float, key: TransactionKey) -> None:
        found = self.dialogs.dispatch(request)
        if isinstance(found, Response) and request.method == "NOTIFY":
            pending = self._early.get((request.call_id, request.to.tag or ""))
            if pending is not None:
                found = self._dialog_from_notify(pending, request, source)
        if isinstance(found, Response):
            self._finish_response(found, b"", None, ())
            self._send_response(found, now)
            return
        if found is None:
            return
        dialog: Dialog = found
        method = request.method
        # s12.2.2 for every method; the event and REFER helpers (focus.sip.subscription /
        # refer) check again, which Dialog.receive_request answers the same way.
        error = dialog.receive_request(request)
        if error is not None:
            self._finish_response(error, b"", None, ())
            self._send_response(error, now)
            return
        call = self._calls.get(dialog.id)
        if method == "BYE":
            if call is not None and call.state is CallState.ANSWERED:
                self._stop_2xx(call)
            self._send_response(dialog.create_response(request, 200), now)
            if call is not None:
                self._end(call, "BYE from peer", by_peer=True)
            else:
                self._forget(dialog)
            return
        if method == "INVITE" and call is not None:
            call.invite = request
            call.invite_key = key
            call.remote_sdp = request.body or call.remote_sdp
            self._incoming_invites[key] = call
            self._answer_by(now + self.config.ring_timeout, key, request)
            self._events.append(IncomingCall(call, request, request.body, reinvite=True))
            return
        if method in self.config.methods or method == "OPTIONS":
            self._remember_source(request, source, key, now)
            self._events.append(IncomingRequest(request, dialog, source))
        else:
            self._not_allowed(request, now)

    def _stop_2xx(self, call: Call) -> None:
        """A BYE before the ACK proves the peer got our 2xx (its ACK was lost): stop
        retransmitting the 2xx (s13.3.1.4 retransmits "until ACK"); the BYE ends the call."""
        self.layer.stop_2xx(call.call_id, call.invite.cseq.number, call.local_tag)

    def _dialog_from_notify(
        self, pending: _Pending, notify: Request, source: Flow
    ) -> Dialog | Response:
        """RFC 6665 s4.1.2.4: a NOTIFY that beats the SUBSCRIBE's 2xx creates the dialog
        (the subscriber's rules, :func:`focus.sip.subscription.dialog_from_notify`)."""
        request = pending.request
        made = dialog_from_notify(
            notify,
            local_uri=NameAddr(request.from_.uri, request.from_.display_name),
            remote_uri=NameAddr(request.to.uri, request.to.display_name),
            local_contact=self._contact(pending.flow.transport),
            local_seq=request.cseq.number,
        )
        if isinstance(made, Response):
            return made
        self._register(made, pending.flow)
        del self._early[(request.call_id, request.from_.tag or "")]
        pending.dialog = made
        return made

    # ------------------------------------------------------------------ responses in

    def _on_response(self, response: Response, key: TransactionKey, now: float) -> None:
        call = self._calls_by_invite.get(key)
        pending = self._pending.get(key)
        sent_to = call.flow if call is not None else pending.flow if pending is not None else None
        if sent_to is not None:
            self.oc.receive(sent_to.address, response.via[0], now)
        if call is not None:
            self._invite_response(call, key, response, now)
            return
        if pending is None or response.status < 200:
            return
        del self._pending[key]
        dialog = pending.dialog
        if pending.creates_dialog:
            self._early.pop((pending.request.call_id, pending.request.from_.tag or ""), None)
            if dialog is None and 200 <= response.status < 300 and response.to.tag:
                dialog = Dialog.from_uac(
                    pending.request, response, self._contact(pending.flow.transport)
                )
                self._register(dialog, pending.flow)
        elif dialog is not None:
            dialog.receive_response(pending.request, response)
            if dialog.terminated and dialog.id not in self._calls:
                self._forget(dialog)
        self._events.append(RequestCompleted(key, pending.request, response, dialog))

    def _invite_response(
        self, call: Call, key: TransactionKey, response: Response, now: float
    ) -> None:
        status = response.status
        if status >= 200 and call.state is CallState.CALLING:
            call.response = response  # e.g. a 422's Min-SE, a 2xx's Session-Expires (RFC 4028)
        if status < 200:
            if (
                status > 100
                and response.cseq.number == call.invite.cseq.number
                and call.state is not CallState.ENDED
            ):
                self._events.append(
                    CallProgress(call, response, call.state is not CallState.CALLING)
                )
            return
        if status >= 300:
            self._calls_by_invite.pop(key, None)
            if call.state is CallState.CALLING:
                self._fail(call, status, response.reason)
            elif call.dialog is not None:
                # A refused re-INVITE leaves the session as it was (s14.1).
                call.dialog.receive_response(call.invite, response)
                call.invite_key = None
                self._events.append(RequestCompleted(key, call.invite, response, call.dialog))
            return
        if call.state is CallState.CALLING:
            if not response.to.tag:
                log.info("2xx without To tag for %s: dropped", call.call_id)
                return
            call.final_status = status
            created = Dialog.from_uac(
                call.invite, response, call.contact or self._contact(call.flow.transport)
            )
            self._register(created, call.flow)
            call.dialog = created
            self._calls[created.id] = call
            self._answered(call, response)
            return
        dialog = call.dialog
        if dialog is None or response.to.tag != dialog.id.remote_tag:
            if dialog is not None and response.to.tag:
                self._end_fork(call, response, now)
            return
        dialog.receive_response(call.invite, response)
        ack = dialog.ack_for(response.cseq.number)
        if ack is not None:
            # A retransmitted 2xx: our ACK got lost, send it again (s13.2.2.4).
            self.layer.send_ack(ack, self.flow_for(dialog))
        elif call.state is CallState.CONFIRMED and response.cseq.number == call.invite.cseq.number:
            self._answered(call, response)  # the 2xx of our re-INVITE

    def _end_fork(self, call: Call, response: Response, now: float) -> None:
        """A 2xx from another fork of our INVITE (s13.2.2.4): we keep the first dialog, so
        this one is ACKed (each retransmission again) and ended with a BYE at once."""
        fork_id = DialogId(call.call_id, call.local_tag, response.to.tag or "")
        fork = self.dialogs.dialogs.get(fork_id)
        if fork is not None:
            ack = fork.ack_for(response.cseq.number)
            if ack is not None:
                self.layer.send_ack(ack, self.flow_for(fork))
            return
        log.info("2xx from a second fork of %s: ACK and BYE", call.call_id)
        fork = Dialog.from_uac(
            call.invite, response, call.contact or self._contact(call.flow.transport)
        )
        self._register(fork, call.flow)
        flow = self.flow_for(fork)
        ack = fork.create_ack(
            response.cseq.number,
            sent_by=self._sent_by(flow.transport),
            transport=flow.transport.value,
        )
        self.layer.send_ack(ack, flow)
        self.request(fork, "BYE", now)  # the BYE's 2xx (or failure) releases the dialog

    def _answered(self, call: Call, response: Response) -> None:
        call.remote_sdp = response.body or call.remote_sdp
        call.state = CallState.ANSWERED
        needs_ack = not call.offer
        if not needs_ack:
            call.answer = response.body
            self._send_ack(call, b"", "")
        self._events.append(CallAnswered(call, response, needs_ack))

    # ------------------------------------------------------------------ endings

    def _fail(self, call: Call, status: int, reason: str) -> None:
        call.final_status = status
        call.end_reason = f"{status} {reason}"
        call.state = CallState.ENDED
        if call.invite_key is not None:
            self._calls_by_invite.pop(call.invite_key, None)
        self._events.append(CallFailed(call, status, reason))

    def _end(self, call: Call, reason: str, *, by_peer: bool = False) -> None:
        was = call.state
        call.state = CallState.ENDED
        call.end_reason = reason
        if call.dialog is not None:
            call.dialog.terminate()
            self._forget(call.dialog)
            self._calls.pop(call.dialog.id, None)
        if call.invite_key is not None:
            self._calls_by_invite.pop(call.invite_key, None)
        if was in (CallState.INCOMING, CallState.CALLING):
            self._events.append(CallFailed(call, call.final_status or 487, reason))
        else:
            self._events.append(CallEnded(call, by_peer, reason))
