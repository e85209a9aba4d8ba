"""REFER (RFC 3515) with its implicit subscription, and Refer-Sub: false (RFC 4488).

Referee (we are asked to act, e.g. the focus asked to dial out, RFC 4579 s5.5)::

    result = receive_refer(request, now, config=..., dialog=existing_or_None)
    layer.send_response(result.response, now)            # 202 Accepted (or 400, 403...)
    if result.notify: layer.send_request(result.notify, ...)   # "SIP/2.0 100 Trying"
    ... later: layer.send_request(result.referral.progress(now, 180, "Ringing"), ...)
    ...        layer.send_request(result.referral.progress(now, 200, "OK"), ...)  # final

Referrer (we ask someone else, e.g. the focus asking a UA to join or leave)::

    referrer = Referrer.in_dialog(dialog, sent_by=...)   # or Referrer.out_of_dialog(...)
    refer = referrer.refer("sip:carol@example.com", method="BYE")
    referrer.receive_response(refer, response); referrer.receive_notify(notify) -> response

The implicit subscription uses ``Event: refer;id=<CSeq of the REFER>`` (RFC 3515
s2.4.6; we always put the id, which RFC 6665 s4.4.1 allows) and NOTIFY bodies of type
``message/sipfrag`` holding a status line (s2.4.5).  A final status (>= 200)
terminates it with ``reason=noresource`` (s2.4.7).  The referrer matches those NOTIFYs
with the RFC 6665 subscriber's rules (:func:`focus.sip.subscription.accept_notify`), the
NOTIFY-created dialog included (RFC 6665 s4.1.2.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from focus.sip.dialog import Dialog
from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import EventHeader, NameAddr, parse_name_addr, split_commas
from focus.sip.message import REASON_PHRASES, Request, Response, make_response
from focus.sip.subscription import (
    Reason,
    SubscriberUpdate,
    Subscription,
    SubState,
    accept_notify,
)
from focus.sip.transaction import new_request, new_tag
from focus.sip.uri import Params, SipURI

__all__ = [
    "SIPFRAG",
    "ReferConfig",
    "ReferResult",
    "Referral",
    "Referrer",
    "parse_sipfrag",
    "receive_refer",
    "sipfrag",
]

SIPFRAG = "message/sipfrag;version=2.0"
_STATUS_LINE_RE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: ([^\r\n]*))?")


def sipfrag(status: int, reason: str | None = None) -> bytes:
    """A message/sipfrag body with just a status line (RFC 3515 s2.4.5, RFC 3420)."""
    phrase = reason if reason is not None else REASON_PHRASES.get(status, "")
    return f"SIP/2.0 {status} {phrase}\r\n".encode()


def parse_sipfrag(body: bytes) -> tuple[int, str]:
    """The status code and reason of a sipfrag body's first line.

    Raises :class:`~focus.sip.errors.SipParseError` (answer 400) if it does not start
    with a SIP/2.0 status line.
    """
    try:
        first = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError.bad("sipfrag body is not UTF-8") from None
    m = _STATUS_LINE_RE.fullmatch(first)
    if m is None:
        raise SipParseError.bad("sipfrag body does not start with a SIP/2.0 status line")
    return int(m.group(1)), m.group(2) or ""


@dataclass(frozen=True, slots=True)
class ReferConfig:
    """How the referee answers.

    Attributes:
        sent_by: our ``host:port`` for the Via of NOTIFYs.
        contact: our Contact.
        transport: Via transport of NOTIFYs.
        expires: lifetime of the implicit subscription (RFC 3515 s2.4.4 leaves it to
            the notifier); the referral should end well before.
    """

    sent_by: str
    contact: NameAddr
    transport: str = "UDP"
    expires: int = 180


@dataclass
class Referral:
    """A REFER we accepted: what to do and, unless Refer-Sub: false, its subscription."""

    refer_to: NameAddr
    method: str  # from the Refer-To URI's method parameter (RFC 3515 s2.1), INVITE if none
    referred_by: str | None
    request: Request
    subscription: Subscription | None
    last_progress: bytes | None = None

    def progress(self, now: float, status: int, reason: str | None = None) -> Request | None:
        """The NOTIFY reporting ``status`` of the referred request (s2.4.5); a final
        status ends the subscription (s2.4.7).  ``None`` if there is no subscription
        (Refer-Sub: false) or it already ended."""
        sub = self.subscription
        if sub is None or sub.state is SubState.TERMINATED:
            return None
        body = sipfrag(status, reason)
        self.last_progress = body
        if status >= 200:
            return sub.terminate(now, Reason.NORESOURCE, body=body, content_type=SIPFRAG)
        return sub.notify(now, body=body, content_type=SIPFRAG)

    def get_timer(self) -> float | None:
        """When the implicit subscription expires (``None`` if there is none left)."""
        sub = self.subscription
        if sub is None or sub.state is SubState.TERMINATED:
            return None
        return sub.expires_at

    def handle_timer(self, now: float) -> Request | None:
        """If the subscription has expired before a final status, end it: the NOTIFY
        with ``terminated;reason=timeout`` (RFC 6665 s4.2.1.4) and the last sipfrag
        known, a "100 Trying" if nothing better (RFC 3515 s2.4.5 wants a body)."""
        deadline = self.get_timer()
        if deadline is None or now < deadline:
            return None
        assert self.subscription is not None
        return self.subscription.terminate(
            now, Reason.TIMEOUT, body=self._last_body, content_type=SIPFRAG
        )

    @property
    def _last_body(self) -> bytes:
        return self.last_progress if self.last_progress is not None else sipfrag(100)


@dataclass(frozen=True, slots=True)
class ReferResult:
    """Send ``response``; then ``notify`` if set (the first "100 Trying" NOTIFY)."""

    response: Response
    referral: Referral | None = None
    notify: Request | None = None


def receive_refer(
    request: Request, now: float, *, config: ReferConfig, dialog: Dialog | None = None
) -> ReferResult:
    """Accept a REFER (RFC 3515 s2.4.2) or say what is wrong with it.

    ``dialog`` is the dialog the REFER arrived in (from a DialogTable), ``None`` if it
    came outside a dialog: then it creates one (s2.4.2), unless Refer-Sub: false
    (RFC 4488 s4) asks for no subscription.  Never raises for bad peer input.
    """
    if request.method != "REFER":
        raise LocalProtocolError("receive_refer takes REFER requests")
    tag = dialog.id.local_tag if dialog is not None else new_tag()
    try:
        return _accept_refer(request, now, config, dialog, tag)
    except SipParseError as exc:
        return ReferResult(make_response(request, exc.status, exc.reason, to_tag=tag))


def _accept_refer(
    request: Request, now: float, config: ReferConfig, dialog: Dialog | None, tag: str
) -> ReferResult:
    refer_tos = request.headers.get_all("Refer-To")
    if len(refer_tos) != 1 or len(split_commas(refer_tos[0])) != 1:
        return ReferResult(make_response(request, 400, "Exactly one Refer-To required", to_tag=tag))
    refer_to = parse_name_addr(refer_tos[0], "Refer-To")
    if dialog is not None:
        error = dialog.receive_request(request)
        if error is not None:
            return ReferResult(error)
    refer_sub = (request.headers.get("Refer-Sub") or "true").strip().lower()
    method = "INVITE"
    if isinstance(refer_to.uri, SipURI):
        method = (refer_to.uri.params.get("method") or "INVITE").upper()
    subscribe = refer_sub != "false"
    if dialog is None and subscribe:
        accepted = make_response(request, 202, to_tag=tag)
        accepted.headers.add("Contact", str(config.contact))
        dialog = Dialog.from_uas(request, accepted, config.contact)
    elif dialog is not None:
        accepted = dialog.create_response(request, 202)
    else:
        accepted = make_response(request, 202, to_tag=tag)
        accepted.headers.add("Contact", str(config.contact))
    if not subscribe:
        accepted.headers.add("Refer-Sub", "false")  # RFC 4488 s4: we honour it
        referral = Referral(refer_to, method, request.headers.get("Referred-By"), request, None)
        return ReferResult(accepted, referral)
    assert dialog is not None
    sub = Subscription(
        dialog=dialog,
        event=EventHeader("refer", _id_params(request.cseq.number)),
        state=SubState.ACTIVE,
        expires_at=now + config.expires,
        sent_by=config.sent_by,
        transport=config.transport,
    )
    referral = Referral(refer_to, method, request.headers.get("Referred-By"), request, sub)
    first = sub.notify(now, body=sipfrag(100), content_type=SIPFRAG)
    return ReferResult(accepted, referral, first)


def _id_params(cseq: int) -> Params:
    return Params([("id", str(cseq))])


# --------------------------------------------------------------------------- referrer


@dataclass
class Referrer:
    """Sends one REFER and follows its implicit subscription (RFC 3515 s2.4.5)."""

    sent_by: str
    contact: NameAddr
    transport: str = "UDP"
    dialog: Dialog | None = None
    # out-of-dialog addressing
    local_uri: NameAddr | None = None
    remote_uri: NameAddr | None = None
    request_uri: str | None = None
    call_id: str = field(default_factory=lambda: new_tag() + new_tag())
    local_tag: str = field(default_factory=new_tag)
    cseq: int | None = None  # CSeq of our REFER = the subscription id
    subscribed: bool = True
    accepted: bool | None = None  # True on 2xx, False on failure
    state: SubState | None = None
    updates: list[SubscriberUpdate] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # sipfrag status codes seen

    @classmethod
    def in_dialog(cls, dialog: Dialog, *, sent_by: str, transport: str = "UDP") -> Referrer:
        return cls(
            sent_by=sent_by, contact=dialog.local_contact, transport=transport, dialog=dialog
        )

    @classmethod
    def out_of_dialog(
        cls,
        *,
        local_uri: NameAddr,
        remote_uri: NameAddr,
        request_uri: str,
        contact: NameAddr,
        sent_by: str,
        transport: str = "UDP",
    ) -> Referrer:
        return cls(
            sent_by=sent_by,
            contact=contact,
            transport=transport,
            local_uri=local_uri,
            remote_uri=remote_uri,
            request_uri=request_uri,
        )

    def refer(
        self,
        target: str | NameAddr,
        *,
        method: str | None = None,
        subscribe: bool = True,
        referred_by: str | None = None,
    ) -> Request:
        """The REFER asking to send ``method`` (default INVITE) to ``target``."""
        refer_to = target if isinstance(target, NameAddr) else parse_name_addr(target)
        if method is not None and method.upper() != "INVITE":
            if not isinstance(refer_to.uri, SipURI):
                raise LocalProtocolError("a method parameter needs a SIP URI in Refer-To")
            refer_to = NameAddr(
                refer_to.uri.with_params(method=method.upper()),
                refer_to.display_name,
                refer_to.params,
            )
        extra = [("Refer-To", str(refer_to))]
        if not subscribe:
            extra.append(("Refer-Sub", "false"))
        if referred_by is not None:
            extra.append(("Referred-By", referred_by))
        self.subscribed = subscribe
        if self.dialog is not None:
            request = self.dialog.create_request(
                "REFER", sent_by=self.sent_by, transport=self.transport, headers=extra
            )
        else:
            if self.local_uri is None or self.remote_uri is None or self.request_uri is None:
                raise LocalProtocolError("out-of-dialog REFER needs local/remote/request URI")
            request = new_request(
                "REFER",
                self.request_uri,
                transport=self.transport,
                sent_by=self.sent_by,
                from_=str(self.local_uri.with_tag(self.local_tag)),
                to=str(self.remote_uri),
                call_id=self.call_id,
                cseq=1,
            )
            h = request.headers
            h.add("Contact", str(self.contact))
            for name, value in extra:
                h.add(name, value)
        self.cseq = request.cseq.number
        return request

    def receive_response(self, request: Request, response: Response) -> None:
        """Follow the response to our REFER (202 starts the subscription)."""
        if response.status < 200:
            return
        if response.status >= 300:
            self.accepted = False
            self.state = SubState.TERMINATED
            return
        self.accepted = True
        if (response.headers.get("Refer-Sub") or "").strip().lower() == "false":
            self.subscribed = False
        if not self.subscribed:
            self.state = SubState.TERMINATED
            return
        if self.dialog is None:
            self.dialog = Dialog.from_uac(request, response, self.contact)
        elif self.dialog.id.remote_tag == response.to.tag:
            self.dialog.receive_response(request, response)
        if self.state is None:
            self.state = SubState.ACTIVE

    def receive_notify(self, notify: Request) -> Response:
        """A NOTIFY of the refer subscription; returns the response to send."""
        try:
            return self._notify(notify)
        except SipParseError as exc:
            return make_response(notify, exc.status, exc.reason)

    def _notify(self, notify: Request) -> Response:
        if not self.subscribed:
            return make_response(notify, 481)  # Refer-Sub: false: there is no subscription
        dialog = self.dialog
        accepted = accept_notify(
            notify,
            package="refer",
            event_id=str(self.cseq) if self.cseq is not None else None,
            call_id=dialog.id.call_id if dialog is not None else self.call_id,
            local_tag=dialog.id.local_tag if dialog is not None else self.local_tag,
            dialog=dialog,
            local_uri=self.local_uri,
            remote_uri=self.remote_uri,
            contact=self.contact,
            local_seq=self.cseq,
            id_optional=True,  # RFC 3515 s2.4.6
        )
        if isinstance(accepted, Response):
            return accepted
        # The dialog may be a call's (an in-dialog REFER): the subscription ending does
        # not end it (RFC 6665 s4.5.2), so unlike Subscriber nothing is terminated here.
        self.dialog, update = accepted.dialog, accepted.update
        if update.content_type != "message/sipfrag":
            return self.dialog.create_response(notify, 415, "Need message/sipfrag")
        status, _ = parse_sipfrag(notify.body)
        self.state = update.state
        self.statuses.append(status)
        self.updates.append(update)
        return self.dialog.create_response(notify, 200)

    @property
    def final_status(self) -> int | None:
        """The referred request's final status, once a final sipfrag arrived."""
        finals = [s for s in self.statuses if s >= 200]
        return finals[-1] if finals else None
