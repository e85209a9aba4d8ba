"""SIP-specific event notification (RFC 6665), sans-IO, notifier and subscriber sides.

Notifier (the focus, for the conference package and for REFER's implicit
subscriptions)::

    notifier = Notifier(NotifierConfig(packages=frozenset({"conference"}), ...))
    result = notifier.receive_subscribe(request, now)   # request from RequestReceived
    layer.send_response(result.response, now)           # 200 (or 489, 423, 481 ...)
    if result.notify: layer.send_request(result.notify, flow_for(result.subscription), now)
    ...state changes...: notify = sub.notify(now, body=..., content_type=...)
    deadline = notifier.get_timer(); notifier.handle_timer(now) -> [final NOTIFYs]
    notifier.notify_response(sub, response_or_None)      # 481/408/timeout remove it

Each subscription is a dialog usage (RFC 6665 s4.5.2): it lives on a
:class:`focus.sip.dialog.Dialog` and is identified by (dialog, package, id).  The
subscription states and their moves are a transition table,
:data:`SUBSCRIPTION_TABLE`.  This implementation is forking-free: a subscriber
keeps the first dialog and answers NOTIFYs of any other with 481.

Choices: a new subscription is answered 200 (RFC 6665 s4.2.1.1; 202 is only for
legacy peers) and its first NOTIFY is built at once; the expiry granted is the
requested one clamped to ``max_expires`` (s4.2.1.1 lets the notifier shorten it).
"""

from __future__ import annotations

import contextlib
import enum
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from focus.sip.dialog import Dialog, DialogId, DialogState, DialogTable
from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import EventHeader, NameAddr, split_commas
from focus.sip.message import Request, Response, make_response
from focus.sip.transaction import new_request, new_tag

__all__ = [
    "SUBSCRIPTION_TABLE",
    "Notifier",
    "NotifierConfig",
    "NotifyAccepted",
    "Reason",
    "SubInput",
    "SubState",
    "SubscribeResult",
    "Subscriber",
    "SubscriberUpdate",
    "Subscription",
    "accept_notify",
    "dialog_from_notify",
]


class SubState(enum.Enum):
    """Subscription-State values (RFC 6665 s4.1.3, s8.2.3)."""

    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


class Reason(enum.Enum):
    """Reason codes of a terminated subscription (RFC 6665 s4.1.3)."""

    DEACTIVATED = "deactivated"
    PROBATION = "probation"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    GIVEUP = "giveup"
    NORESOURCE = "noresource"
    INVARIANT = "invariant"


class SubInput(enum.Enum):
    """What moves a notifier-side subscription (RFC 6665 s4.2)."""

    AUTHORIZED = "authorized"  # s4.2.1.3: pending -> active
    REFRESH = "refreshed"  # s4.2.1.4
    EXPIRED = "expired or unsubscribed"  # s4.2.1.4 (Expires: 0 is the same)
    TERMINATE = "terminated by the notifier"  # s4.2.2
    FAILED = "NOTIFY failed (481, 408, timeout)"  # s4.2.2


SUBSCRIPTION_TABLE: dict[tuple[SubState, SubInput], SubState] = {
    (SubState.PENDING, SubInput.AUTHORIZED): SubState.ACTIVE,
    (SubState.PENDING, SubInput.REFRESH): SubState.PENDING,
    (SubState.PENDING, SubInput.EXPIRED): SubState.TERMINATED,
    (SubState.PENDING, SubInput.TERMINATE): SubState.TERMINATED,
    (SubState.PENDING, SubInput.FAILED): SubState.TERMINATED,
    (SubState.ACTIVE, SubInput.AUTHORIZED): SubState.ACTIVE,
    (SubState.ACTIVE, SubInput.REFRESH): SubState.ACTIVE,
    (SubState.ACTIVE, SubInput.EXPIRED): SubState.TERMINATED,
    (SubState.ACTIVE, SubInput.TERMINATE): SubState.TERMINATED,
    (SubState.ACTIVE, SubInput.FAILED): SubState.TERMINATED,
}


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    """How a notifier treats SUBSCRIBE requests.

    Attributes:
        packages: event packages served (anything else gets 489 Bad Event, s4.2.1.1).
        sent_by: our ``host:port`` for the Via of NOTIFY requests.
        contact: our Contact for responses and NOTIFYs.
        transport: the Via transport of NOTIFY requests.
        default_expires: granted when SUBSCRIBE has no Expires (packages define it;
            RFC 4575 s4.1 says 3600 for "conference").
        min_expires: shorter non-zero requests get 423 Interval Too Brief with
            Min-Expires (s4.2.1.1).
        max_expires: longer requests are shortened to this.
    """

    packages: frozenset[str]
    sent_by: str
    contact: NameAddr
    transport: str = "UDP"
    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 86400

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")


@dataclass
class Subscription:
    """One subscription usage of a dialog (notifier side).

    ``resource`` is the Request-URI the SUBSCRIBE was sent to (e.g. the conference
    URI) and ``accept`` the media types of its Accept header, lower-cased, in order
    (empty: the package's default type, RFC 6665 s3.1.3).
    """

    dialog: Dialog
    event: EventHeader
    state: SubState
    expires_at: float
    sent_by: str
    transport: str = "UDP"
    reason: Reason | None = None
    retry_after: int | None = None
    resource: str = ""
    accept: tuple[str, ...] = ()
    # Told of every new ``expires_at`` by the Notifier holding this subscription, so
    # that its deadline heap follows changes made from anywhere.
    _expiry_watch: Callable[[Subscription], None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name == "expires_at":
            watch = self.__dict__.get("_expiry_watch")
            if watch is not None:
                watch(self)

    @property
    def key(self) -> tuple[DialogId, str, str | None]:
        return (self.dialog.id, self.event.package, self.event.id)

    def move(self, event: SubInput) -> None:
        try:
            self.state = SUBSCRIPTION_TABLE[(self.state, event)]
        except KeyError:
            raise LocalProtocolError(
                f"subscription in state {self.state.value} cannot take {event.value}"
            ) from None

    def subscription_state(self, now: float) -> str:
        """The Subscription-State value for the next NOTIFY (s4.1.3, s8.2.3)."""
        if self.state is SubState.TERMINATED:
            value = "terminated"
            if self.reason is not None:
                value += f";reason={self.reason.value}"
            if self.retry_after is not None:
                value += f";retry-after={self.retry_after}"
            return value
        remaining = max(0, int(self.expires_at - now + 0.999))
        return f"{self.state.value};expires={remaining}"

    def notify(self, now: float, *, body: bytes = b"", content_type: str | None = None) -> Request:
        """A NOTIFY carrying the current state (s4.2.2) and ``body``."""
        headers = [
            ("Event", str(self.event)),
            ("Subscription-State", self.subscription_state(now)),
        ]
        request = self.dialog.create_request(
            "NOTIFY",
            sent_by=self.sent_by,
            transport=self.transport,
            headers=headers,
            body=body,
            content_type=content_type,
        )
        if not body and content_type is not None:
            request.headers.add("Content-Type", content_type)
        return request

    def authorize(
        self, now: float, *, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """Pending -> active (s4.2.1.3); returns the NOTIFY saying so."""
        self.move(SubInput.AUTHORIZED)
        return self.notify(now, body=body, content_type=content_type)

    def terminate(
        self,
        now: float,
        reason: Reason = Reason.NORESOURCE,
        *,
        retry_after: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """End the subscription from the notifier side; returns the final NOTIFY."""
        self.move(SubInput.TERMINATE)
        self.reason, self.retry_after = reason, retry_after
        return self.notify(now, body=body, content_type=content_type)


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What to do with a SUBSCRIBE: always send ``response``; if ``notify`` is set,
    send it right after (in ``subscription``'s dialog)."""

    response: Response
    subscription: Subscription | None = None
    notify: Request | None = None


def _accept(request: Request) -> tuple[str, ...]:
    types: list[str] = []
    for value in request.headers.get_all("Accept"):
        for part in split_commas(value):
            mime = part.split(";", 1)[0].strip().lower()
            if mime:
                types.append(mime)
    return tuple(types)


BodyFor = Callable[[Subscription], tuple[str, bytes] | None]


@dataclass
class Notifier:
    """All notifier-side subscriptions of a UA (see module docstring).

    Expiries sit in a heap of (expires_at, subscription number), pushed when a
    subscription is created and whenever its ``expires_at`` changes; entries whose
    subscription is gone or whose deadline moved are dropped lazily when they reach
    the top.  So :meth:`get_timer` and :meth:`handle_timer` cost O(log N) per
    subscription instead of a scan of all N (a conference with N subscribers would
    otherwise cost O(N^2) to set up).
    """

    config: NotifierConfig
    dialogs: DialogTable = field(default_factory=DialogTable)
    subscriptions: dict[tuple[DialogId, str, str | None], Subscription] = field(
        default_factory=dict
    )
    _heap: list[tuple[float, int]] = field(default_factory=list, init=False, repr=False)
    _numbered: dict[int, Subscription] = field(default_factory=dict, init=False, repr=False)
    _number_of: dict[tuple[DialogId, str, str | None], int] = field(
        default_factory=dict, init=False, repr=False
    )
    _next_number: int = field(default=0, init=False, repr=False)
    # subscriptions per dialog, so forgetting one need not scan them all (s4.5.2)
    _usages: dict[DialogId, int] = field(default_factory=dict, init=False, repr=False)

    def _error(self, request: Request, status: int, tag: str | None = None) -> Response:
        return make_response(request, status, to_tag=tag or new_tag())

    def receive_subscribe(
        self,
        request: Request,
        now: float,
        *,
        body_for: BodyFor | None = None,
        pending: bool = False,
        contact: NameAddr | None = None,
    ) -> SubscribeResult:
        """Handle a SUBSCRIBE (new, refresh or unsubscribe).  Never raises for bad
        peer input: the result's response says what was wrong.

        ``body_for(subscription)`` gives (content type, body) of the NOTIFY it
        triggers; ``pending`` creates the subscription awaiting authorization
        (s4.2.1.3: the first NOTIFY then says ``pending``); ``contact`` is the Contact
        of a new subscription's 200 and dialog when it is not the notifier's own
        (a conference focus answers as the conference URI, RFC 4579 s5.3).
        """
        try:
            return self._subscribe(request, now, body_for, pending, contact)
        except SipParseError as exc:
            return SubscribeResult(make_response(request, exc.status, exc.reason, to_tag=new_tag()))

    def _subscribe(
        self,
        request: Request,
        now: float,
        body_for: BodyFor | None,
        pending: bool,
        contact: NameAddr | None,
    ) -> SubscribeResult:
        if request.method != "SUBSCRIBE":
            raise LocalProtocolError("receive_subscribe takes SUBSCRIBE requests")
        event = request.event
        in_dialog = request.to.tag is not None
        if event is None or event.package not in self.config.packages:
            response = self._error(request, 489, request.to.tag)
            response.headers.add("Allow-Events", ", ".join(sorted(self.config.packages)))
            return SubscribeResult(response)
        requested = request.expires
        if requested is None:
            requested = self.config.default_expires
        if 0 < requested < self.config.min_expires:
            response = self._error(request, 423, request.to.tag)
            response.headers.add("Min-Expires", str(self.config.min_expires))
            return SubscribeResult(response)
        granted = min(requested, self.config.max_expires)
        if in_dialog:
            return self._refresh(request, event, granted, now, body_for)
        if request.contact == "*" or not request.contact:
            return SubscribeResult(self._error(request, 400))
        tag = new_tag()
        response = make_response(request, 200, to_tag=tag)
        local_contact = contact if contact is not None else self.config.contact
        response.headers.add("Contact", str(local_contact))
        response.headers.add("Expires", str(granted))
        dialog = Dialog.from_uas(request, response, local_contact)
        sub = Subscription(
            dialog=dialog,
            event=event,
            state=SubState.PENDING if pending else SubState.ACTIVE,
            expires_at=now + granted,
            sent_by=self.config.sent_by,
            transport=self.config.transport,
            resource=str(request.uri),
            accept=_accept(request),
        )
        if granted == 0:
            # a fetch (s4.4.3): one NOTIFY with the state, then gone
            sub.move(SubInput.EXPIRED)
            sub.reason = Reason.TIMEOUT
        else:
            self.dialogs.add(dialog)
            self._register(sub)
        return SubscribeResult(response, sub, self._notify(sub, now, body_for))

    def _refresh(
        self,
        request: Request,
        event: EventHeader,
        granted: int,
        now: float,
        body_for: BodyFor | None,
    ) -> SubscribeResult:
        dialog = self.dialogs.for_request(request)
        sub = (
            self.subscriptions.get((dialog.id, event.package, event.id))
            if dialog is not None
            else None
        )
        if dialog is None or sub is None or sub.state is SubState.TERMINATED:
            return SubscribeResult(make_response(request, 481))
        error = dialog.receive_request(request)
        if error is not None:
            return SubscribeResult(error)
        response = dialog.create_response(request, 200)
        response.headers.add("Expires", str(granted))
        if granted == 0:
            sub.move(SubInput.EXPIRED)
            sub.reason = Reason.TIMEOUT
            notify = self._notify(sub, now, body_for)
            self._forget(sub)  # after the final NOTIFY: it still needs the dialog
            return SubscribeResult(response, sub, notify)
        sub.move(SubInput.REFRESH)
        sub.expires_at = now + granted
        return SubscribeResult(response, sub, self._notify(sub, now, body_for))

    def _notify(self, sub: Subscription, now: float, body_for: BodyFor | None) -> Request:
        content = body_for(sub) if body_for is not None else None
        if content is None:
            return sub.notify(now)
        return sub.notify(now, content_type=content[0], body=content[1])

    def _register(self, sub: Subscription) -> None:
        key = sub.key
        if key not in self.subscriptions:
            self._usages[key[0]] = self._usages.get(key[0], 0) + 1
        self.subscriptions[key] = sub
        number = self._next_number
        self._next_number += 1
        self._numbered[number] = sub
        self._number_of[key] = number
        sub._expiry_watch = self._expiry_moved
        self._push(sub.expires_at, number)

    def _expiry_moved(self, sub: Subscription) -> None:
        number = self._number_of.get(sub.key)
        if number is not None and self._numbered.get(number) is sub:
            self._push(sub.expires_at, number)

    def _push(self, deadline: float, number: int) -> None:
        heapq.heappush(self._heap, (deadline, number))
        if len(self._heap) > 2 * len(self._numbered) + 64:
            # refreshes and early ends leave stale entries behind: rebuild with one
            # entry per live subscription (O(N), after at least N/2 pushes)
            self._heap = [(s.expires_at, n) for n, s in self._numbered.items()]
            heapq.heapify(self._heap)

    def _live(self, entry: tuple[float, int]) -> Subscription | None:
        """The subscription a heap entry is still for, or None if it is stale."""
        deadline, number = entry
        sub = self._numbered.get(number)
        if sub is None or sub.expires_at != deadline or self.subscriptions.get(sub.key) is not sub:
            return None
        return sub

    def _forget(self, sub: Subscription) -> None:
        key = sub.key
        if self.subscriptions.pop(key, None) is not None:
            self._usages[key[0]] -= 1
            if self._usages[key[0]] == 0:
                del self._usages[key[0]]
        number = self._number_of.get(key)
        if number is not None and self._numbered.get(number) is sub:
            del self._number_of[key], self._numbered[number]
            sub._expiry_watch = None
        if key[0] not in self._usages:
            # the dialog has no other usage left (s4.5.2)
            self.dialogs.remove(sub.dialog)
            sub.dialog.state = DialogState.TERMINATED

    def terminate(
        self,
        sub: Subscription,
        now: float,
        reason: Reason,
        *,
        retry_after: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """Notifier-initiated end (s4.2.2): the final NOTIFY to send."""
        notify = sub.terminate(
            now, reason, retry_after=retry_after, body=body, content_type=content_type
        )
        self._forget(sub)
        return notify

    def subscriptions_for(self, resource: str, package: str) -> list[Subscription]:
        """The live subscriptions to ``package`` of ``resource`` (a Request-URI as
        text), oldest first: whom to NOTIFY when that resource's state changes."""
        return [
            s
            for s in self.subscriptions.values()
            if s.resource == resource
            and s.event.package == package
            and s.state is not SubState.TERMINATED
        ]

    def _top(self) -> Subscription | None:
        """The subscription expiring first (ties: the older), dropping stale entries."""
        heap = self._heap
        while heap:
            sub = self._live(heap[0])
            if sub is not None:
                return sub
            heapq.heappop(heap)
        return None

    def get_timer(self) -> float | None:
        """The earliest subscription expiry."""
        sub = self._top()
        return None if sub is None else sub.expires_at

    def handle_timer(self, now: float) -> list[tuple[Subscription, Request]]:
        """Expire every subscription whose time is up, earliest first (ties: the
        older); returns their final NOTIFYs (``terminated;reason=timeout``, s4.2.1.4)."""
        out: list[tuple[Subscription, Request]] = []
        while (sub := self._top()) is not None and sub.expires_at <= now:
            sub.move(SubInput.EXPIRED)  # before the pop: if it raises, nothing is lost
            heapq.heappop(self._heap)
            sub.reason = Reason.TIMEOUT
            out.append((sub, sub.notify(now)))
            self._forget(sub)
        return out

    def notify_response(self, sub: Subscription, response: Response | None) -> None:
        """The outcome of a NOTIFY: ``None`` for a transaction timeout or transport
        error.  A failed NOTIFY (timeout, or a final error without Retry-After other
        than 401/407) removes the subscription (s4.2.2)."""
        if response is not None and (
            response.status < 300
            or response.status in (401, 407)
            or "Retry-After" in response.headers
        ):
            return  # delivered, or a failure that may recover
        if sub.state is not SubState.TERMINATED:
            sub.move(SubInput.FAILED)
        self._forget(sub)


# --------------------------------------------------------------------------- subscriber


@dataclass(frozen=True, slots=True)
class SubscriberUpdate:
    """What a NOTIFY told the subscriber (s4.1.3)."""

    state: SubState
    reason: str | None
    expires: int | None
    retry_after: int | None
    content_type: str | None
    body: bytes


@dataclass
class Subscriber:
    """The subscribing side of one subscription (tests use it; the REFER subscriber,
    :class:`focus.sip.refer.Referrer`, shares its NOTIFY handling, :func:`accept_notify`).

    Build the SUBSCRIBE with :meth:`subscribe`, feed every response with
    :meth:`receive_response` and every NOTIFY with :meth:`receive_notify`.  When
    they are given ``now``, :attr:`refresh_at` says when to send the refresh
    (halfway through the granted interval, so a lost refresh can be retried).
    """

    package: str
    local_uri: NameAddr
    remote_uri: NameAddr
    request_uri: str
    contact: NameAddr
    sent_by: str
    transport: str = "UDP"
    event_id: str | None = None
    call_id: str = field(default_factory=lambda: new_tag() + new_tag())
    local_tag: str = field(default_factory=new_tag)
    dialog: Dialog | None = None
    state: SubState | None = None
    updates: list[SubscriberUpdate] = field(default_factory=list)
    expires_at: float | None = None
    refresh_at: float | None = None
    _cseq: int = 0

    def _granted(self, seconds: int | None, now: float | None) -> None:
        if seconds is None or now is None:
            return
        self.expires_at = now + seconds
        self.refresh_at = now + seconds / 2 if seconds > 0 else None

    @property
    def event(self) -> str:
        return self.package + (f";id={self.event_id}" if self.event_id is not None else "")

    def subscribe(self, expires: int | None = None) -> Request:
        """The initial SUBSCRIBE (out of dialog), or a refresh within the dialog."""
        if self.dialog is not None:
            return self._in_dialog(expires if expires is not None else 3600)
        self._cseq += 1
        request = new_request(
            "SUBSCRIBE",
            self.request_uri,
            transport=self.transport,
            sent_by=self.sent_by,
            from_=str(self.local_uri.with_tag(self.local_tag)),
            to=str(self.remote_uri),
            call_id=self.call_id,
            cseq=self._cseq,
        )
        h = request.headers
        h.add("Contact", str(self.contact))
        h.add("Event", self.event)
        if expires is not None:
            h.add("Expires", str(expires))
        return request

    def unsubscribe(self) -> Request:
        """SUBSCRIBE with Expires: 0 in the dialog (s4.1.2.3)."""
        if self.dialog is None:
            raise LocalProtocolError("no subscription dialog to unsubscribe from")
        return self._in_dialog(0)

    def _in_dialog(self, expires: int) -> Request:
        assert self.dialog is not None
        return self.dialog.create_request(
            "SUBSCRIBE",
            sent_by=self.sent_by,
            transport=self.transport,
            headers=[("Event", self.event), ("Expires", str(expires))],
        )

    def receive_response(
        self, request: Request, response: Response, now: float | None = None
    ) -> int | None:
        """Follow a response to our SUBSCRIBE.  Returns the Min-Expires to retry with
        after a 423 (s4.1.2.1), else ``None``.  A 2xx creates the dialog unless a
        NOTIFY already did (s4.1.2.4); other failures end the subscription."""
        if response.status < 200:
            return None
        if response.status < 300:
            if self.dialog is None:
                self.dialog = Dialog.from_uac(request, response, self.contact)
                self._cseq = request.cseq.number
            else:
                self.dialog.receive_response(request, response)
            if self.state is None:
                self.state = SubState.PENDING  # until the NOTIFY says more
            with contextlib.suppress(SipParseError):
                self._granted(response.expires, now)
            return None
        if response.status == 423:
            value = response.headers.get("Min-Expires")
            if value is not None and value.strip().isdigit():
                return int(value.strip())
        if self.dialog is not None and response.status in (481, 408):
            self.dialog.terminate()
        if self.dialog is None or response.status in (481, 408):
            self.state = SubState.TERMINATED
        return None

    def receive_notify(self, notify: Request, now: float | None = None) -> Response:
        """Process a NOTIFY; returns the response to send (200, or 481/400/489)."""
        try:
            return self._notify(notify, now)
        except SipParseError as exc:
            return make_response(notify, exc.status, exc.reason)

    def _notify(self, notify: Request, now: float | None) -> Response:
        accepted = accept_notify(
            notify,
            package=self.package,
            event_id=self.event_id,
            call_id=self.call_id,
            local_tag=self.local_tag,
            dialog=self.dialog,
            local_uri=self.local_uri,
            remote_uri=self.remote_uri,
            contact=self.contact,
            local_seq=self._cseq,
        )
        if isinstance(accepted, Response):
            return accepted
        self.dialog, update = accepted.dialog, accepted.update
        self.state = update.state
        self.updates.append(update)
        response = self.dialog.create_response(notify, 200)
        if update.state is SubState.TERMINATED:
            self.dialog.terminate()
            self.expires_at = self.refresh_at = None
        else:
            self._granted(update.expires, now)
        return response


# The subscriber's handling of a NOTIFY, shared by :class:`Subscriber` and the REFER
# subscriber (:class:`focus.sip.refer.Referrer`): one copy of the matching rules.


@dataclass(frozen=True, slots=True)
class NotifyAccepted:
    """A NOTIFY that matched a subscription and passed its dialog's checks (RFC 6665
    s4.1.3): the subscription's ``dialog`` (created by this NOTIFY if there was none,
    s4.1.2.4) and what the NOTIFY says.  The caller records it and answers with
    ``dialog.create_response``."""

    dialog: Dialog
    update: SubscriberUpdate


def accept_notify(
    notify: Request,
    *,
    package: str,
    event_id: str | None,
    call_id: str,
    local_tag: str,
    dialog: Dialog | None,
    local_uri: NameAddr | None,
    remote_uri: NameAddr | None,
    contact: NameAddr,
    local_seq: int | None,
    id_optional: bool = False,
) -> Response | NotifyAccepted:
    """Match ``notify`` with the subscription of ``package`` (and ``event_id``) whose
    dialog is (``call_id``, ``local_tag``) and, when it is the first in that dialog, make
    the dialog (:func:`dialog_from_notify`); the error response to send when it does not
    fit (481 another dialog or subscription, 489 another package, 400 no
    Subscription-State, or the dialog's own verdict).  ``id_optional`` lets a NOTIFY
    without an id match (RFC 3515 s2.4.6: the first REFER's NOTIFYs may omit it).
    Raises SipParseError (answer its status) for an unparsable header."""
    if notify.call_id != call_id or notify.to.tag != local_tag or notify.from_.tag is None:
        return make_response(notify, 481)
    event = notify.event
    if event is None or event.package != package:
        return make_response(notify, 489)
    if event.id != event_id and not (id_optional and event.id is None):
        return make_response(notify, 481)  # s4.1.3: no subscription with that id
    state_header = notify.subscription_state
    if state_header is None:
        return make_response(notify, 400, "Missing Subscription-State")
    if dialog is None:
        if local_uri is None or remote_uri is None:
            raise LocalProtocolError("a NOTIFY-created dialog needs the local and remote URIs")
        created = dialog_from_notify(
            notify,
            local_uri=local_uri,
            remote_uri=remote_uri,
            local_contact=contact,
            local_seq=local_seq,
        )
        if isinstance(created, Response):
            return created
        dialog = created
    elif dialog.id.remote_tag != notify.from_.tag:
        return make_response(notify, 481)  # forking-free: one dialog only
    error = dialog.receive_request(notify)
    if error is not None:
        return error
    try:
        state = SubState(state_header.state)
    except ValueError:
        state = SubState.ACTIVE  # s8.2.3: unknown values are treated as "active"
    content_type = notify.content_type
    update = SubscriberUpdate(
        state=state,
        reason=state_header.reason,
        expires=state_header.expires,
        retry_after=state_header.retry_after,
        content_type=content_type.mime if content_type is not None else None,
        body=notify.body,
    )
    return NotifyAccepted(dialog, update)


def dialog_from_notify(
    notify: Request,
    *,
    local_uri: NameAddr,
    remote_uri: NameAddr,
    local_contact: NameAddr,
    local_seq: int | None,
) -> Dialog | Response:
    """The subscriber's dialog made by a NOTIFY that beat the 2xx of the request that
    created the subscription (RFC 6665 s4.1.2.4): its identifiers are the NOTIFY's, the
    remote target its Contact, the route set its Record-Route; ``local_uri`` and
    ``remote_uri`` are the From and To of our request (RFC 3261 s12.1.2), ``local_seq``
    its CSeq.  A NOTIFY without a Contact gets the 400 returned (a request that makes a
    dialog needs one, RFC 3261 s8.1.1.8)."""
    target = notify.contact
    if target == "*" or not target:
        return make_response(notify, 400, "Missing Contact")
    return Dialog(
        id=DialogId(notify.call_id, notify.to.tag or "", notify.from_.tag or ""),
        state=DialogState.CONFIRMED,
        is_uac=True,
        local_uri=local_uri,
        remote_uri=remote_uri,
        local_contact=local_contact,
        remote_target=target[0].uri,
        route_set=list(notify.record_route),
        local_seq=local_seq,
        remote_seq=None,
    )
