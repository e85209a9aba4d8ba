"""The conference event package on the focus (RFC 4575, RFC 6502 formats, RFC 6665).

SUBSCRIBE to a conference URI with ``Event: conference`` is answered by two sans-IO parts
glued here to the focus's user agent and the core:

* :class:`focus.sip.subscription.Notifier` owns the SIP side (dialogs, Expires, refresh,
  Subscription-State, termination);
* :class:`focus.eventpkg.planner.NotifyPlanner` owns what each NOTIFY says and
  when (full state first, partials or RFC 6502 diffs after, pacing, one outstanding NOTIFY,
  privacy views).

The core's committed changes reach the planner through
:func:`focus.eventpkg.core_bridge.feed_changes`, so a change made over CCMP or SIP is
notified at once (subject to RFC 4575 s3.9 pacing). One ``loop.call_at`` timer serves both
parts' deadlines (subscription expiry, paced NOTIFYs).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable, Sequence

from focus.calls.admission import same_aor
from focus.core.changes import Change
from focus.core.state import ConferenceObject
from focus.core.store import ConferenceStore
from focus.eventpkg.bodies import participation_uri
from focus.eventpkg.core_bridge import feed_changes
from focus.eventpkg.limits import SubscriptionLimits, SubscriptionQuota
from focus.eventpkg.planner import (
    NotAcceptable,
    NotifyPlanner,
    PlannerConfig,
    SendNotify,
    SubscriptionState,
)
from focus.eventpkg.policy import may_subscribe
from focus.sip.aio.ua import UserAgent
from focus.sip.dialog import DialogId
from focus.sip.events import TransactionKey
from focus.sip.flow import TransportKind
from focus.sip.headers import NameAddr
from focus.sip.message import Request, Response, make_response
from focus.sip.subscription import Notifier, NotifierConfig, Reason, Subscription, SubState
from focus.sip.transaction import new_tag
from focus.sip.uacore import UAError
from focus.sip.uri import SipURI
from focus.xcon.model import ConferenceInfo, Role, effective_role

__all__ = ["ConferenceEvents"]

log = logging.getLogger(__name__)

Lookup = Callable[[Request], ConferenceObject | None]
#: A SIP subscription's identity (RFC 6665 s4.5.2: dialog, package, id): ``Subscription.key``.
SubKey = tuple[DialogId, str, str | None]
#: Our Contact in a subscription to a conference: the conference URI with ``;isfocus``.
ContactFor = Callable[[ConferenceObject, TransportKind], NameAddr]


class ConferenceEvents:
    """Conference package subscriptions of one focus (see the module docstring).

    ``lookup(request)`` names the conference a SUBSCRIBE's Request-URI addresses (None:
    404); ``contact_for(conference, transport)`` is our Contact in its subscriptions: the
    conference URI with ``;isfocus`` (RFC 4579 s5.3; RFC 6665 s4.2.1: the notifier's
    Contact is the resource's URI); ``min_interval`` paces NOTIFYs to one subscriber
    (RFC 4575 s3.9); ``min_expires``, ``default_expires`` and ``max_expires`` bound the
    subscriptions' durations (RFC 6665 s4.2.1.1; :class:`focus.settings.SipProfile` has
    them).

    Fan-out is windowed: at most ``window`` NOTIFYs sent in the last ``window_age``
    seconds may wait for their responses; the rest queue (in order, so each dialog's
    CSeqs go out in order) and go as responses come. Without it a change to 1,000
    subscribers sends 1,000 NOTIFYs in one go, their 200s overflow our UDP socket's
    receive buffer and most NOTIFYs are retransmitted (Timer E). A NOTIFY older than
    ``window_age`` no longer holds a place, so a dead subscriber delays the others by
    ``window_age`` at most, not by its transaction's timeout."""

    def __init__(
        self,
        store: ConferenceStore,
        ua: UserAgent,
        lookup: Lookup,
        *,
        min_interval: float = 5.0,
        contact_for: ContactFor | None = None,
        min_expires: int = 60,
        default_expires: int = 3600,
        max_expires: int = 86400,
        window: int = 64,
        window_age: float = 0.25,
        quota: SubscriptionQuota | None = None,
    ) -> None:
        self.ua = ua
        self.lookup = lookup
        self.contact_for = contact_for
        kind = TransportKind.UDP if TransportKind.UDP in ua.local else next(iter(ua.local))
        self._kind = kind
        host, port = ua.local[kind]
        sent_by = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.sip = Notifier(
            NotifierConfig(
                packages=frozenset({"conference"}),
                sent_by=sent_by,
                contact=ua.contact_for(kind),
                transport=kind.value,
                min_expires=min_expires,
                default_expires=default_expires,
                max_expires=max_expires,
            )
        )
        self.planner = NotifyPlanner(
            PlannerConfig(min_interval=min_interval, pseudonym_key=secrets.token_bytes(16))
        )
        self.subs: dict[str, Subscription] = {}  # planner id -> SIP subscription
        self.limits = SubscriptionLimits(quota or SubscriptionQuota())
        self._ids: dict[SubKey, str] = {}  # Subscription.key -> planner id
        self._pending: dict[TransactionKey, str] = {}  # NOTIFY transactions -> planner id
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._window = window
        self._window_age = window_age
        self._queue: deque[tuple[Subscription, Request, str | None]] = deque()
        self._recent: dict[TransactionKey, float] = {}  # NOTIFYs in flight, by send time
        self._window_timer: asyncio.TimerHandle | None = None
        self._unsubscribe = store.subscribe(self._changed)

    @property
    def idle(self) -> bool:
        """No NOTIFY awaits its final response and none is held back by pacing: every
        subscriber has what the focus has sent (tests wait for this, not for time)."""
        return not self._pending and not self._queue and self.planner.get_timer() is None

    def close(self) -> None:
        self._unsubscribe()
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ SIP in

    def subscribe(self, request: Request) -> None:
        """A SUBSCRIBE (new, refresh or unsubscribe) for the conference package."""
        now = self.ua.now
        if request.to.tag is not None:
            self._refresh(request, now)
            return
        event = request.event
        if event is None or event.package not in self.sip.config.packages:
            # The package is checked before anything about the body formats (RFC 6665
            # s4.2.1.1): another package's Accept values mean nothing to ours.
            self._answer(
                request,
                self.sip.receive_subscribe(request, now, body_for=lambda _sub: None).response,
            )
            return
        obj = self.lookup(request)
        if obj is None:
            self._answer(
                request,
                make_response(request, 404, "Not Found - no such conference", to_tag=new_tag()),
            )
            return
        role, user_id = _subscriber(obj.info, request)
        if not may_subscribe(role, user_id, obj.info):
            self._answer(request, make_response(request, 403, to_tag=new_tag()))
            return
        source = request.via[0].received or request.via[0].host
        if (why := self.limits.refusal(obj.uri, source)) is not None:
            refused = make_response(request, 503, f"Service Unavailable - {why}", to_tag=new_tag())
            refused.headers.add("Retry-After", str(30 + secrets.randbelow(31)))
            self._answer(request, refused)
            return
        sub_id = secrets.token_hex(8)
        try:
            first = self.planner.add_subscriber(
                sub_id,
                obj.uri,
                obj.info,
                now,
                accept=request.headers.get_all("Accept"),
                role=role,
                user_id=user_id,
                entity=_conference_uri(obj, request),
            )
        except NotAcceptable as exc:
            response = make_response(request, 406, to_tag=new_tag())
            response.headers.add("Accept", ", ".join(exc.supported))
            self._answer(request, response)
            return
        # The SIP notifier's Contact is one for all; this subscription's (its 200, its
        # dialog's local target, every NOTIFY) is the conference's.
        contact = self.contact_for(obj, self._kind) if self.contact_for is not None else None
        result = self.sip.receive_subscribe(
            request,
            now,
            body_for=lambda _sub: (first.content_type or "", first.body),
            contact=contact,
        )
        sub = result.subscription
        if sub is None or result.notify is None or result.response.status >= 300:
            self.planner.remove_subscriber(sub_id)
            self._answer(request, result.response)
            return
        self._answer(request, result.response)
        self.ua.adopt(sub.dialog, request=request)
        if sub.state is SubState.TERMINATED:  # a fetch (Expires: 0): one NOTIFY, then gone
            self.planner.remove_subscriber(sub_id)
            self._send(sub, result.notify, None)
            return
        self.subs[sub_id] = sub
        self.limits.added(sub_id, obj.uri, source)
        self._ids[sub.key] = sub_id
        self._send(sub, result.notify, sub_id)
        self._arm()

    def _refresh(self, request: Request, now: float) -> None:
        holder: list[SendNotify] = []

        def body_for(sub: Subscription) -> tuple[str, bytes] | None:
            sub_id = self._ids.get(sub.key)
            if sub_id is None:
                return None
            holder.append(self.planner.resubscribed(sub_id, now))
            return (holder[0].content_type or "", holder[0].body)

        result = self.sip.receive_subscribe(request, now, body_for=body_for)
        self._answer(request, result.response)
        sub = result.subscription
        if sub is None or result.notify is None:
            return
        sub_id = self._ids.get(sub.key)
        if sub.state is SubState.TERMINATED:
            self._forget(sub)
            sub_id = None
        self._send(sub, result.notify, sub_id)
        self._arm()

    def completed(self, key: TransactionKey, response: Response) -> bool:
        """The final response to a NOTIFY we sent (or a 408/503 for none); True if it was
        ours."""
        if self._recent.pop(key, None) is not None:
            self._flush_queue()
        sub_id = self._pending.pop(key, None)
        if sub_id is None:
            return False
        now = self.ua.now
        ok = 200 <= response.status < 300
        sub = self.subs.get(sub_id)
        self.planner.notify_completed(sub_id, ok, now)
        if sub is not None and not ok:
            failed = response if response.status not in (408, 503) else None
            self.sip.notify_response(sub, failed)
            if sub.state is SubState.TERMINATED:
                self._forget(sub)
        self._drain(now)
        return True

    # ------------------------------------------------------------------ core in

    def _changed(self, changes: Sequence[Change]) -> None:
        now = self.ua.now
        feed_changes(self.planner, changes, now)
        self._drain(now)

    # ------------------------------------------------------------------ out

    def _drain(self, now: float) -> None:
        while (event := self.planner.next_event()) is not None:
            sub = self.subs.get(event.sub_id)
            if sub is None:
                continue
            body, ctype = event.body, event.content_type
            if (
                event.subscription_state is SubscriptionState.ACTIVE
                and sub.state is not SubState.TERMINATED
            ):
                self._send(sub, sub.notify(now, body=body, content_type=ctype), event.sub_id)
            else:
                reason = event.reason or Reason.NORESOURCE
                notify = self.sip.terminate(sub, now, reason, body=body, content_type=ctype)
                self._forget(sub)
                self._send(sub, notify, None)
        self._arm()

    def _send(self, sub: Subscription, notify: Request, sub_id: str | None) -> None:
        self._queue.append((sub, notify, sub_id))
        self._flush_queue()

    def _flush_queue(self) -> None:
        """Send queued NOTIFYs while the window has room (see the class docstring)."""
        now = self.ua.now
        recent = self._recent
        while recent:  # the oldest first (dicts keep insertion order)
            key, sent_at = next(iter(recent.items()))
            if sent_at + self._window_age > now:
                break
            del recent[key]
        failed: list[str] = []
        while self._queue and len(recent) < self._window:
            sub, notify, sub_id = self._queue.popleft()
            try:
                key = self.ua.send_nowait(notify, sub.dialog)
            except UAError as exc:
                log.info("NOTIFY not sent: %s", exc)
                if sub_id is not None:
                    failed.append(sub_id)
                continue
            recent[key] = now
            if sub_id is not None:
                self._pending[key] = sub_id
        if self._queue and self._window_timer is None and recent:
            # Full with NOTIFYs that may never be answered: room again when the oldest ages.
            loop = asyncio.get_running_loop()
            oldest = next(iter(recent.values()))
            self._window_timer = loop.call_at(oldest + self._window_age, self._window_due)
        for sub_id in failed:
            self.planner.notify_completed(sub_id, False, now)
        if failed:
            self._drain(now)

    def _window_due(self) -> None:
        self._window_timer = None
        self._flush_queue()

    def _answer(self, request: Request, response: Response) -> None:
        self.ua.answer_with(request, response)

    def _forget(self, sub: Subscription) -> None:
        sub_id = self._ids.pop(sub.key, None)
        if sub_id is not None:
            self.subs.pop(sub_id, None)
            self.limits.removed(sub_id)
            self.planner.remove_subscriber(sub_id)

    # ------------------------------------------------------------------ time

    def _arm(self) -> None:
        """One timer at the earliest deadline of both parts, re-armed only when that
        moves (this runs after every NOTIFY's response)."""
        # Both get_timer()s are heap peeks, cheap enough after every NOTIFY's response.
        deadlines = [d for d in (self.planner.get_timer(), self.sip.get_timer()) if d is not None]
        due = min(deadlines, default=None)
        if self._timer is not None and due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.ua.now
        for sub, notify in self.sip.handle_timer(now):
            self._forget(sub)
            self._send(sub, notify, None)
        self.planner.handle_timer(now)
        self._drain(now)


def _subscriber(info: ConferenceInfo, request: Request) -> tuple[Role | str, str | None]:
    """The subscriber's role and XCON-USERID: a user of the conference (by her From AOR)
    with her roles, else nobody special (RFC 4575 s3.5 leaves this to policy)."""
    aor = str(request.from_.uri)
    if info.users is not None:
        for user in info.users.users:
            if any(e.entity is not None and same_aor(e.entity, aor) for e in user.endpoints):
                return effective_role(user.roles or (Role.PARTICIPANT,)), user.entity
    return Role.NONE, None


def _conference_uri(obj: ConferenceObject, request: Request) -> str:
    """The conference URI the SUBSCRIBE subscribed to, the 'entity' of its RFC 4575
    documents (RFC 4575 s5.1): the SIP URI the conference lists for participation (the
    core lists its own, in the profile's domain) with the Request-URI's user part, so one
    dialled by IP address is still named as the focus advertises it; the Request-URI
    itself if the conference lists none."""
    uri = request.uri
    user = uri.user if isinstance(uri, SipURI) else None
    return participation_uri(obj.info, user) or str(uri)
