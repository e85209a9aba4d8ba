"""SIP dialogs (RFC 3261 s12, s13.2.2.4, s14), sans-IO.

A :class:`Dialog` is the state two UAs share after an INVITE (or SUBSCRIBE/REFER):
Call-ID and tags, CSeq counters, the remote target and the route set.  It builds
in-dialog requests (s12.2.1.1), checks incoming ones (s12.2.2), follows responses
(s12.2.1.2, s13.2.2.4) and guards against re-INVITE glare (s14).  A
:class:`DialogTable` finds the dialog a message belongs to and answers 481 for
requests that match none.

The dialog's life is a transition table, :data:`DIALOG_TABLE` (s12: early ->
confirmed -> terminated); a missing row is a :class:`~focus.sip.errors.LocalProtocolError`
(our TU drove it wrongly) -- network input never raises, it gets an error response.
"""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import NameAddr
from focus.sip.message import Request, Response, make_response
from focus.sip.transaction import new_request
from focus.sip.uri import URI, SipURI

__all__ = [
    "DIALOG_TABLE",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogId",
    "DialogInput",
    "DialogState",
    "DialogTable",
    "glare_retry_delay",
]

#: Requests that replace the remote target (RFC 3261 s12.2; RFC 3311 UPDATE;
#: RFC 6665 s4.1.2.3/s4.2.1 SUBSCRIBE and NOTIFY).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})
_NEEDS_CONTACT = TARGET_REFRESH_METHODS | {"REFER"}


class DialogState(enum.Enum):
    """Dialog states (RFC 3261 s12: "early" and "confirmed"; s15 ends them)."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogInput(enum.Enum):
    """What moves a dialog (RFC 3261 s12.1, s12.2.1.2, s13.2.2.4, s15)."""

    PROVISIONAL = "1xx with To tag to the initial request"
    SUCCESS = "2xx to the initial request"
    FAILURE = "300-699 to the initial request"
    BYE = "BYE sent or received"
    DEAD = "481 or 408 to an in-dialog request"  # s12.2.1.2


DIALOG_TABLE: dict[tuple[DialogState, DialogInput], DialogState] = {
    (DialogState.EARLY, DialogInput.PROVISIONAL): DialogState.EARLY,
    (DialogState.EARLY, DialogInput.SUCCESS): DialogState.CONFIRMED,
    (DialogState.EARLY, DialogInput.FAILURE): DialogState.TERMINATED,
    (DialogState.EARLY, DialogInput.BYE): DialogState.TERMINATED,
    (DialogState.EARLY, DialogInput.DEAD): DialogState.TERMINATED,
    # a 2xx retransmission or a second 2xx of the same dialog changes nothing
    (DialogState.CONFIRMED, DialogInput.SUCCESS): DialogState.CONFIRMED,
    (DialogState.CONFIRMED, DialogInput.BYE): DialogState.TERMINATED,
    (DialogState.CONFIRMED, DialogInput.DEAD): DialogState.TERMINATED,
}


def glare_retry_delay(owns_call_id: bool, rng: random.Random | None = None) -> float:
    """How long to wait before retrying a re-INVITE that got 491 (RFC 3261 s14.1).

    The UA that generated the Call-ID waits 2.1-4 s, the other 0-2 s, both in units
    of 10 ms, so that the two sides do not collide again.
    """
    r = rng if rng is not None else random.SystemRandom()
    if owns_call_id:
        return r.randint(210, 400) / 100
    return r.randint(0, 200) / 100


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID, local tag, remote tag (RFC 3261 s12)."""

    call_id: str
    local_tag: str
    remote_tag: str


def _contact_uri(message: Request | Response) -> URI | None:
    contacts = message.contact
    if contacts == "*" or not contacts:
        return None
    return contacts[0].uri


@dataclass
class Dialog:
    """One dialog; create with :meth:`from_uac` or :meth:`from_uas`.

    Attributes follow RFC 3261 s12: ``local_seq``/``remote_seq`` are ``None`` while
    empty; ``route_set`` is in the order the Route header will use; ``local_uri`` and
    ``remote_uri`` are the From/To identities without tags; ``local_contact`` is put
    in Contact of our target-refresh requests and responses.
    """

    id: DialogId
    state: DialogState
    is_uac: bool
    local_uri: NameAddr
    remote_uri: NameAddr
    local_contact: NameAddr
    remote_target: URI
    route_set: list[NameAddr]
    local_seq: int | None
    remote_seq: int | None
    secure: bool = False
    #: an INVITE transaction we sent (client) or received (server) is not final yet (s14)
    client_invite_pending: bool = False
    server_invite_pending: int | None = None  # CSeq of the INVITE we have not answered
    _initial_cseq: int | None = field(default=None, repr=False)
    _acks: dict[int, Request] = field(default_factory=dict, repr=False)
    # The request receive_request last checked and its verdict, so that checking the same
    # request again (the UA core, then a subscription / REFER helper) gives the same answer
    # instead of seeing its CSeq a second time.
    _checked: tuple[tuple[str, int, str], Response | None] | None = field(default=None, repr=False)

    # ---------------------------------------------------------------- creation

    @classmethod
    def from_uac(cls, request: Request, response: Response, local_contact: NameAddr) -> Dialog:
        """The dialog our request created, from a 101-299 response with a To tag (s12.1.2)."""
        to_tag = response.to.tag
        from_tag = request.from_.tag
        if not 101 <= response.status <= 299 or to_tag is None or from_tag is None:
            raise LocalProtocolError("a dialog needs a 101-299 response with a To tag")
        target = _contact_uri(response)
        if target is None:
            # s12.1.2: Contact is mandatory in dialog-creating responses; fall back to the
            # To URI rather than fail, so that a sloppy peer still gets a BYE.
            target = response.to.uri
        dialog = cls(
            id=DialogId(request.call_id, from_tag, to_tag),
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            is_uac=True,
            local_uri=NameAddr(request.from_.uri, request.from_.display_name),
            remote_uri=NameAddr(response.to.uri, response.to.display_name),
            local_contact=local_contact,
            remote_target=target,
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq.number,
            remote_seq=None,
            secure=isinstance(request.uri, SipURI) and request.uri.scheme == "sips",
            client_invite_pending=request.method == "INVITE" and response.status < 200,
        )
        dialog._initial_cseq = request.cseq.number
        return dialog

    @classmethod
    def from_uas(cls, request: Request, response: Response, local_contact: NameAddr) -> Dialog:
        """The dialog a received request created, from our 101-299 response (s12.1.1).

        ``response`` must carry our To tag (``make_response(..., to_tag=...)``).
        """
        to_tag = response.to.tag
        from_tag = request.from_.tag
        if not 101 <= response.status <= 299 or to_tag is None:
            raise LocalProtocolError("a dialog needs our 101-299 response with a To tag")
        if from_tag is None:
            raise SipParseError.bad("From tag missing: cannot create a dialog")
        target = _contact_uri(request)
        if target is None:
            raise SipParseError.bad("Contact missing in a dialog-creating request")
        dialog = cls(
            id=DialogId(request.call_id, to_tag, from_tag),
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            is_uac=False,
            local_uri=NameAddr(request.to.uri, request.to.display_name),
            remote_uri=NameAddr(request.from_.uri, request.from_.display_name),
            local_contact=local_contact,
            remote_target=target,
            route_set=list(request.record_route),
            local_seq=None,
            remote_seq=request.cseq.number,
            secure=isinstance(request.uri, SipURI) and request.uri.scheme == "sips",
            server_invite_pending=(
                request.cseq.number
                if request.method == "INVITE" and response.status < 200
                else None
            ),
        )
        dialog._initial_cseq = request.cseq.number
        return dialog

    # ---------------------------------------------------------------- state

    def _move(self, event: DialogInput) -> None:
        try:
            self.state = DIALOG_TABLE[(self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"dialog in state {self.state.value} cannot take {event.value}"
            ) from None

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def terminate(self) -> None:
        """End the dialog at once (e.g. after AckNotReceived + BYE, or a timeout)."""
        self.state = DialogState.TERMINATED

    # ---------------------------------------------------------------- UAC side

    def next_hop(self) -> URI:
        """Where in-dialog requests go first (s12.2.1.1, s8.1.2): the first Route or
        the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def create_request(
        self,
        method: str,
        *,
        sent_by: str,
        transport: str = "UDP",
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A request within this dialog (RFC 3261 s12.2.1.1).

        ``sent_by`` is our ``host:port`` for the Via.  Raises
        :class:`~focus.sip.errors.LocalProtocolError` for an INVITE while another
        INVITE transaction is pending in either direction (s14.1) and for requests
        on a terminated dialog.  ACK and CANCEL are not built here (see
        :meth:`create_ack` and :func:`focus.sip.transaction.make_cancel`).
        """
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{method} is not built with create_request")
        if self.terminated:
            raise LocalProtocolError("the dialog is terminated")
        if method == "INVITE":
            if self.client_invite_pending or self.server_invite_pending is not None:
                raise LocalProtocolError(
                    "an INVITE transaction is pending in this dialog (RFC 3261 s14.1)"
                )
            self.client_invite_pending = True
        if self.local_seq is None:
            # s12.2.1.1: an empty local sequence number gets an arbitrary start (< 2**31)
            self.local_seq = secrets.randbelow(2**16) + 1
        else:
            self.local_seq += 1
        return self._build(
            method,
            self.local_seq,
            sent_by=sent_by,
            transport=transport,
            body=body,
            content_type=content_type,
            extra=headers,
        )

    def create_ack(
        self,
        invite_cseq: int,
        *,
        sent_by: str,
        transport: str = "UDP",
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """The ACK for a 2xx to our INVITE with CSeq ``invite_cseq`` (s13.2.2.4).

        It is remembered: :meth:`ack_for` returns it again for 2xx retransmissions.
        """
        ack = self._build(
            "ACK",
            invite_cseq,
            sent_by=sent_by,
            transport=transport,
            body=body,
            content_type=content_type,
            extra=headers,
        )
        self._acks[invite_cseq] = ack
        for old in sorted(self._acks)[:-2]:  # only the latest INVITEs can still see 2xx
            del self._acks[old]
        return ack

    def ack_for(self, invite_cseq: int) -> Request | None:
        """The ACK already sent for that INVITE: the UAC core sends it again for every
        retransmission of the 2xx (s13.2.2.4), without building a new one."""
        return self._acks.get(invite_cseq)

    def _build(
        self,
        method: str,
        cseq: int,
        *,
        sent_by: str,
        transport: str,
        body: bytes,
        content_type: str | None,
        extra: Iterable[tuple[str, str]],
    ) -> Request:
        uri, routes = self._request_uri_and_routes()
        request = new_request(
            method,
            uri,
            transport=transport,
            sent_by=sent_by,
            from_=str(self.local_uri.with_tag(self.id.local_tag)),
            to=str(self.remote_uri.with_tag(self.id.remote_tag)),
            call_id=self.id.call_id,
            cseq=cseq,
            routes=map(str, routes),
        )
        h = request.headers
        if method in _NEEDS_CONTACT:
            h.add("Contact", str(self.local_contact))
        for name, value in extra:
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
        request.body = body
        return request

    def _request_uri_and_routes(self) -> tuple[URI, list[NameAddr]]:
        """Request-URI and Route values per s12.2.1.1 (loose vs strict first route)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipURI) and "lr" in first.params:
            return self.remote_target, list(self.route_set)
        # strict router: it becomes the Request-URI; the remote target goes last
        stripped: URI = first
        if isinstance(first, SipURI):
            stripped = SipURI(
                host=first.host,
                user=first.user,
                password=first.password,
                port=first.port,
                params=first.params.remove("method").remove("maddr").remove("ttl"),
                scheme=first.scheme,
            )
        return stripped, [*self.route_set[1:], NameAddr(self.remote_target)]

    def receive_response(self, request: Request, response: Response) -> None:
        """Follow a response to a request we sent in (or to create) this dialog.

        2xx to INVITE confirms an early dialog and recomputes the route set
        (s13.2.2.4); a 2xx to a target refresh replaces the remote target
        (s12.2.1.2); 481 and 408 end the dialog (s12.2.1.2); a failure to the
        initial INVITE ends an early dialog.
        """
        status = response.status
        initial = request.cseq.number == self._initial_cseq and self.is_uac
        if request.method == "INVITE" and status >= 200:
            self.client_invite_pending = False
        if status in (481, 408):
            if not self.terminated:
                self._move(DialogInput.DEAD)
            return
        if self.state is DialogState.EARLY and initial:
            if status < 200:
                self._move(DialogInput.PROVISIONAL)
                self._refresh_target(response)
            elif status < 300:
                self._move(DialogInput.SUCCESS)
                self.route_set = list(reversed(response.record_route))
                self._refresh_target(response)
            else:
                self._move(DialogInput.FAILURE)
            return
        if 200 <= status < 300 and request.method in TARGET_REFRESH_METHODS:
            self._refresh_target(response)
        if request.method == "BYE" and status >= 200 and not self.terminated:
            self._move(DialogInput.BYE)

    def _refresh_target(self, message: Request | Response) -> None:
        target = _contact_uri(message)
        if target is not None:
            self.remote_target = target

    # ---------------------------------------------------------------- UAS side

    def receive_request(self, request: Request) -> Response | None:
        """Check a request that matched this dialog (s12.2.2).

        Returns the error response to send (500 for a lower CSeq, 491/500 for
        re-INVITE glare, s14.2), or ``None`` if the TU should process it.  ACK and
        CANCEL carry the INVITE's CSeq and are not counted.  A BYE ends the dialog
        here; the TU still answers it 200.

        Idempotent: the same request (same method, CSeq number and top Via branch -- a
        retransmission, which the transaction layer absorbs anyway) checked again gets the
        same verdict (a fresh copy of the same error response) and changes nothing.
        """
        try:
            key = (request.method, request.cseq.number, request.headers.get("Via") or "")
        except SipParseError as exc:
            return self._error(request, exc.status, exc.reason)
        if self._checked is not None and self._checked[0] == key:
            earlier = self._checked[1]
            return None if earlier is None else self._repeat(request, earlier)
        try:
            verdict = self._check_request(request)
        except SipParseError as exc:
            verdict = self._error(request, exc.status, exc.reason)
        if request.method not in ("ACK", "CANCEL"):
            self._checked = (key, verdict)
        return verdict

    def _repeat(self, request: Request, earlier: Response) -> Response:
        response = self._error(request, earlier.status, earlier.reason)
        for value in earlier.headers.get_all("Retry-After"):
            response.headers.add("Retry-After", value)
        return response

    def _check_request(self, request: Request) -> Response | None:
        if request.method in ("ACK", "CANCEL"):
            return None
        cseq = request.cseq.number
        if self.remote_seq is not None and cseq <= self.remote_seq:
            # s12.2.2: lower CSeq -> 500; an equal one that is not a retransmission
            # (the transaction layer absorbs those) is just as out of order.
            return self._error(request, 500, "CSeq out of order")
        if request.method == "INVITE":
            if self.server_invite_pending is not None:
                # s14.2: second INVITE before the first got its final response
                response = self._error(request, 500, "Previous INVITE still pending")
                response.headers.add("Retry-After", str(secrets.randbelow(10) + 1))
                self.remote_seq = cseq
                return response
            if self.client_invite_pending:
                self.remote_seq = cseq
                return self._error(request, 491)  # s14.2 glare
            self.server_invite_pending = cseq
        self.remote_seq = cseq
        if request.method in TARGET_REFRESH_METHODS:
            self._refresh_target(request)
        if request.method == "BYE" and not self.terminated:
            self._move(DialogInput.BYE)
        return None

    def create_response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Response:
        """Our response to an in-dialog (or dialog-creating) request, with our tag and,
        for target refresh requests, our Contact (s12.1.1, s13.3.1.4)."""
        response = make_response(request, status, reason, to_tag=self.id.local_tag)
        if request.method in _NEEDS_CONTACT and 101 <= status <= 299:
            response.headers.add("Contact", str(self.local_contact))
        if body:
            response.headers.add("Content-Type", content_type or "application/sdp")
            response.body = body
        if request.method == "INVITE" and status >= 200:
            if self.server_invite_pending == request.cseq.number:
                self.server_invite_pending = None
            if (
                request.cseq.number == self._initial_cseq
                and not self.is_uac
                and self.state is DialogState.EARLY
            ):
                self._move(DialogInput.SUCCESS if status < 300 else DialogInput.FAILURE)
        return response

    def _error(self, request: Request, status: int, reason: str | None = None) -> Response:
        return make_response(request, status, reason, to_tag=self.id.local_tag)


@dataclass
class DialogTable:
    """All dialogs of a UA, keyed by :class:`DialogId`."""

    dialogs: dict[DialogId, Dialog] = field(default_factory=dict)

    def add(self, dialog: Dialog) -> Dialog:
        self.dialogs[dialog.id] = dialog
        return dialog

    def remove(self, dialog: Dialog) -> None:
        self.dialogs.pop(dialog.id, None)

    def for_request(self, request: Request) -> Dialog | None:
        """The dialog an incoming request belongs to (local tag = To tag, s12.2.2)."""
        to_tag, from_tag = request.to.tag, request.from_.tag
        if to_tag is None or from_tag is None:
            return None
        return self.dialogs.get(DialogId(request.call_id, to_tag, from_tag))

    def dispatch(self, request: Request) -> Dialog | Response | None:
        """Route a request with a To tag: its dialog, or a 481 to send (s12.2.2).

        Returns ``None`` for requests without a To tag (out of dialog: the TU
        decides) and for an ACK matching no dialog (dropped: ACK has no response).
        """
        if request.to.tag is None:
            return None
        dialog = self.for_request(request)
        if dialog is not None and not dialog.terminated:
            return dialog
        if request.method == "ACK":
            return None
        return make_response(request, 481)
