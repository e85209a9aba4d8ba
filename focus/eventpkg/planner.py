"""Which NOTIFY each conference subscriber gets, and when: sans-IO, time is a parameter.

The SIP layer (:mod:`focus.sip.subscription`) owns dialogs, expiry and the
Subscription-State header; this planner owns the *content* and the *pacing*
of the conference package's notifications::

    planner = NotifyPlanner(PlannerConfig())
    first = planner.add_subscriber("s1", conf_uri, snapshot, now,
                                   accept=accept_header_values, role=role, user_id=uid,
                                   entity=sip_uri)
    ... send ``first`` as the NOTIFY answering the SUBSCRIBE ...
    planner.conference_changed(conf_uri, old, new, now)   # from the core's changes
    planner.notify_completed("s1", ok=True, now=now)        # final response / timeout
    while (event := planner.next_event()) is not None: ...   # SendNotify to send
    loop.call_at(planner.get_timer(), ...) -> planner.handle_timer(now)

Rules, with their sources:

* **Names** (RFC 4575 s5.1, RFC 6501 s3.3): RFC 4575 documents name the
  conference by the URI its subscriber subscribed to (``entity``, its SIP URI);
  XCON documents and diffs by its XCON-URI, ``conf_uri``, which is also what
  the planner files subscribers under.

* **Formats** (RFC 4575 s3.4, RFC 6502 s4/s5): the Accept header picks
  :class:`Mode`: ``application/xcon-conference-info-diff+xml`` together with
  ``application/xcon-conference-info+xml`` gives full XCON documents followed
  by RFC 5261 diffs; the XCON type alone gives full XCON documents every time;
  otherwise (or with no Accept) RFC 4575 documents with 'state' partials.
  An Accept header naming none of them is the subscriber's fault: 406.
* **First NOTIFY and re-SUBSCRIBE** carry full state (RFC 4575 s3.2, RFC 6502
  s5.1), are never delayed and reset the basis of later partials.
* **Rate** (RFC 4575 s3.9): after a NOTIFY, a subscriber's next one waits at
  least ``min_interval`` seconds; changes in between are coalesced, since each
  partial is computed from what this subscriber was last sent to the newest
  snapshot.
* **One outstanding** (RFC 6502 s5.1 for diffs; applied to every mode here so
  that version numbers always arrive in order): no NOTIFY while the previous
  one has no final response.  A failed one (error response or timeout) makes
  the next NOTIFY carry full state, as the subscriber's copy is unknown.
* **Versions** (RFC 4575 s4.3, s4.6): per subscription, starting at 1 and
  incremented by one for every NOTIFY sent, full or partial.
* **Termination** (RFC 4575 s3.3, RFC 6665 s4.1.3): the conference ending or
  being deleted terminates every subscription to it with ``noresource``;
  :meth:`NotifyPlanner.terminate` ends one for another reason (``deactivated``,
  ``timeout``, ...).  Final NOTIFYs go out at once, ignoring pacing.
* **Privacy**: every body is built from
  :func:`focus.eventpkg.policy.view_for` of the subscriber's role; a change
  the subscriber can not see sends nothing.

Cost (a change to a conference with N subscribers is O(N), not O(N^2)): paced
deadlines sit in a heap, so :meth:`NotifyPlanner.get_timer` does not scan the
subscribers; the view of one (role, user, format) and the bodies built from the
same (sent, new, version) are computed once per snapshot and shared by every
subscriber that needs them.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from focus.eventpkg.bodies import (
    CONFERENCE_INFO,
    XCON_CONFERENCE_INFO,
    XCON_CONFERENCE_INFO_DIFF,
    rfc4575_full,
    rfc4575_partial,
    rfc4575_view,
    xcon_full,
)
from focus.eventpkg.policy import view_for
from focus.eventpkg.xmlpatch import xcon_diff
from focus.sip.subscription import Reason
from focus.xcon.codec import conference_info_to_bytes
from focus.xcon.model import ConferenceInfo, Role, State

__all__ = [
    "Mode",
    "NotAcceptable",
    "NotifyPlanner",
    "PlannerConfig",
    "SendNotify",
    "SubscriptionState",
    "TerminationReason",
    "UnknownSubscriber",
    "choose_mode",
]


class Mode(enum.Enum):
    """How a subscription's NOTIFY bodies are written (RFC 4575 s3.4, RFC 6502 s3)."""

    RFC4575 = CONFERENCE_INFO
    """application/conference-info+xml, partial by 'state' (RFC 4575 s4.4)."""
    XCON_FULL = XCON_CONFERENCE_INFO
    """application/xcon-conference-info+xml, full state every time (RFC 6502 s4)."""
    XCON_DIFF = XCON_CONFERENCE_INFO_DIFF
    """Full XCON state first, then RFC 5261 diffs (RFC 6502 s5)."""


TerminationReason = Reason
"""Why a subscription ends (RFC 6665 s4.1.3): the SIP layer's own Subscription-State
reason enum (one name per concept), under the name this package has always exported."""


class SubscriptionState(enum.Enum):
    """The Subscription-State value a NOTIFY carries (RFC 6665 s4.1.3); the SIP
    layer adds 'expires' (active) or the reason (terminated)."""

    ACTIVE = "active"
    TERMINATED = "terminated"


class NotAcceptable(ValueError):
    """The SUBSCRIBE's Accept header names no format we write (RFC 4575 s3.4):
    the subscriber's fault, answer 406 Not Acceptable with an Accept header
    listing ``supported``."""

    status = 406

    def __init__(self, offered: Iterable[str]) -> None:
        self.offered = tuple(offered)
        self.supported = tuple(m.value for m in Mode)
        super().__init__(
            f"Accept lists {', '.join(self.offered) or 'nothing'}; "
            f"supported: {', '.join(self.supported)}"
        )


class UnknownSubscriber(KeyError):
    """A subscriber id this planner does not know: the caller's bug."""


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Pacing of conference notifications.

    Attributes:
        min_interval: seconds between two NOTIFYs to one subscriber (RFC 4575
            s3.9 recommends at least 5).  Full state for a new subscription or a
            re-SUBSCRIBE, and final NOTIFYs, are not held back.
        pseudonym_key: key of the anonymous identities of the privacy policy
            (see :func:`focus.eventpkg.policy.view_for`); pass random bytes.
    """

    min_interval: float = 5.0
    pseudonym_key: bytes = b""

    def __post_init__(self) -> None:
        if not self.min_interval >= 0:
            raise ValueError(f"min_interval must be >= 0, not {self.min_interval}")


@dataclass(frozen=True, slots=True)
class SendNotify:
    """Send a NOTIFY in subscription ``sub_id`` with this body.

    ``body`` is empty (and ``content_type`` None) only for a final NOTIFY that
    has nothing to say.  ``version`` is this subscription's RFC 4575 version of
    the document (also counted for XCON bodies, which do not carry it).
    """

    sub_id: str
    content_type: str | None
    body: bytes
    subscription_state: SubscriptionState
    reason: Reason | None = None
    version: int = 0


def _media_types(accept: Iterable[str]) -> list[str]:
    """Media types of Accept values ("a/b;q=0.5, c/d"), q=0 ones left out."""
    types: list[str] = []
    for header in accept:
        for item in header.split(","):
            media, *params = (part.strip() for part in item.split(";"))
            if not media:
                continue
            refused = False
            for param in params:
                name, _, value = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        refused = float(value) == 0
                    except ValueError:
                        refused = False
            if not refused:
                types.append(media.lower())
    return types


def choose_mode(accept: Iterable[str] | None) -> Mode:
    """The body format for a SUBSCRIBE with these Accept header values (None or
    empty: no Accept header, RFC 4575 s3.4's default).  Raises NotAcceptable."""
    if accept is None:
        return Mode.RFC4575
    values = list(accept)
    if not values:
        return Mode.RFC4575
    types = set(_media_types(values))
    if XCON_CONFERENCE_INFO in types:
        # RFC 6502 s5.1: diffs need the full XCON type for the first NOTIFY
        return Mode.XCON_DIFF if XCON_CONFERENCE_INFO_DIFF in types else Mode.XCON_FULL
    if CONFERENCE_INFO in types or "application/*" in types or "*/*" in types:
        return Mode.RFC4575
    raise NotAcceptable(sorted(types))


@dataclass(frozen=True, slots=True, eq=False)
class _View:
    """What one kind of subscriber may see of one snapshot, numbered: ``number`` is never
    reused in a planner, so bodies built from views are cached by numbers."""

    number: int
    info: ConferenceInfo


@dataclass
class _Subscriber:
    sub_id: str
    conf_uri: str
    mode: Mode
    role: Role | enum.Enum | str
    user_id: str | None
    entity: str  # the 'entity' of its RFC 4575 documents (RFC 4575 s5.1)
    version: int = 0
    sent: _View | None = None  # what the subscriber holds
    sent_xml: bytes | None = None  # the full XCON document of ``sent`` (diff basis)
    latest: ConferenceInfo | None = None  # newest unfiltered snapshot
    dirty: bool = False
    need_full: bool = False
    outstanding: int = 0  # NOTIFYs sent without a final response yet
    last_sent_at: float | None = None
    terminated: bool = False
    queued_due: float | None = None  # the deadline this subscriber has in the heap


_ViewKey = tuple[object, str | None, bool, str | None]  # role, user id, RFC 4575, entity
_BodyKey = tuple[str | int, ...]  # what a body is built from: a kind, view numbers, version


@dataclass
class _Shared:
    """What the subscribers of one conference share while its snapshot is ``latest``:
    views by :data:`_ViewKey`, bodies by :data:`_BodyKey`, and whether two views (by
    number) are equal."""

    latest: ConferenceInfo
    views: dict[_ViewKey, _View] = field(default_factory=dict)
    bodies: dict[_BodyKey, bytes | None] = field(default_factory=dict)
    same: dict[tuple[int, int], bool] = field(default_factory=dict)


@dataclass
class NotifyPlanner:
    """Notification planner of the conference package (see the module doc)."""

    config: PlannerConfig = field(default_factory=PlannerConfig)
    _subs: dict[str, _Subscriber] = field(default_factory=dict, init=False)
    _by_conf: dict[str, dict[str, None]] = field(default_factory=dict, init=False)
    _events: deque[SendNotify] = field(default_factory=deque, init=False)
    # paced deadlines (due, sub_id); entries whose subscriber moved on are skipped lazily
    _deadlines: list[tuple[float, str]] = field(default_factory=list, init=False)
    _shared: dict[str, _Shared] = field(default_factory=dict, init=False)
    _view_numbers: Iterator[int] = field(default_factory=itertools.count, init=False)

    # ------------------------------------------------------------------ subscribers

    def add_subscriber(
        self,
        sub_id: str,
        conf_uri: str,
        conference: ConferenceInfo,
        now: float,
        *,
        accept: Iterable[str] | None = None,
        role: Role | enum.Enum | str = Role.PARTICIPANT,
        user_id: str | None = None,
        entity: str | None = None,
    ) -> SendNotify:
        """A new subscription; returns its first NOTIFY (full state, RFC 4575 s3.2),
        to be sent right after the 2xx.  Raises NotAcceptable (answer 406) before
        anything is recorded.

        ``entity`` is the conference URI the subscriber subscribed to (the conference's
        SIP URI): RFC 4575 s5.1 makes it the 'entity' of every RFC 4575 document, and
        with it the sidebars-by-val entries are named by their own SIP URIs too (see
        :func:`focus.eventpkg.bodies.rfc4575_view`).  None keeps ``conf_uri``.  XCON
        documents name the conference by its XCON-URI whatever it is (RFC 6501 s3.3)."""
        if sub_id in self._subs:
            raise ValueError(f"subscriber {sub_id!r} already exists")
        mode = choose_mode(accept)
        shared = self._shared.get(conf_uri)
        if shared is not None and shared.latest is not conference and shared.latest == conference:
            conference = shared.latest  # same snapshot: share its views and bodies
        sub = _Subscriber(
            sub_id, conf_uri, mode, role, user_id, entity or conf_uri, latest=conference
        )
        self._subs[sub_id] = sub
        self._by_conf.setdefault(conf_uri, {})[sub_id] = None
        return self._send(sub, now, full=True)

    def resubscribed(self, sub_id: str, now: float) -> SendNotify:
        """A refreshing SUBSCRIBE: returns the NOTIFY with full state it triggers
        (RFC 6665 s4.2.1.4, RFC 6502 s5.1), sent at once."""
        sub = self._get(sub_id)
        return self._send(sub, now, full=True)

    def remove_subscriber(self, sub_id: str) -> None:
        """Forget a subscription (unsubscribed, expired or failed in the SIP
        layer).  Unknown ids are ignored: removal races with termination."""
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return
        subs = self._by_conf.get(sub.conf_uri)
        if subs is not None:
            subs.pop(sub_id, None)
            if not subs:
                del self._by_conf[sub.conf_uri]
                self._shared.pop(sub.conf_uri, None)

    def subscribers(self, conf_uri: str | None = None) -> list[str]:
        """Ids of the live subscriptions (to ``conf_uri`` if given)."""
        if conf_uri is None:
            return list(self._subs)
        return list(self._by_conf.get(conf_uri, {}))

    def version_of(self, sub_id: str) -> int:
        """The version of the last document sent in ``sub_id`` (0 before any)."""
        return self._get(sub_id).version

    # ------------------------------------------------------------------ inputs

    def conference_changed(
        self, conf_uri: str, old: ConferenceInfo | None, new: ConferenceInfo | None, now: float
    ) -> None:
        """The conference ``conf_uri`` changed from ``old`` to ``new`` (None: it
        was deleted, which terminates its subscriptions with ``noresource``).

        Each subscriber's next partial is computed from what it was last sent,
        not from ``old``, so changes coalesce and a subscriber that missed one
        still converges; ``old`` is accepted for symmetry with the core's
        Change and ignored.
        """
        del old
        if new is None:
            self.conference_ended(conf_uri, now)
            return
        touched = [self._subs[sub_id] for sub_id in self._by_conf.get(conf_uri, {})]
        for sub in touched:
            sub.latest = new
            sub.dirty = True
        self._pump(now, touched)

    def conference_ended(self, conf_uri: str, now: float) -> None:
        """The conference is over (RFC 4575 s3.3): every subscription to it ends
        with ``noresource``."""
        for sub_id in list(self._by_conf.get(conf_uri, {})):
            self.terminate(sub_id, Reason.NORESOURCE, now)

    def conference_deactivated(self, conf_uri: str, now: float) -> None:
        """The conference's schedule deactivated it (RFC 5239 s7.3: a recurring series
        between occurrences is a reservation again): every subscription to it ends
        with ``deactivated``, which tells the subscriber to subscribe again at once
        (RFC 6665 s4.2.2) and so see the reservation."""
        for sub_id in list(self._by_conf.get(conf_uri, {})):
            self.terminate(sub_id, Reason.DEACTIVATED, now)

    def terminate(self, sub_id: str, reason: Reason, now: float) -> None:
        """End one subscription from our side: queues its final NOTIFY and forgets
        it.  RFC 4575 subscribers are told ``state="deleted"`` when the resource
        is gone (RFC 4575 s4.6); other final NOTIFYs carry no body."""
        sub = self._get(sub_id)
        sub.terminated = True
        body, content_type = b"", None
        if reason is Reason.NORESOURCE and sub.mode is Mode.RFC4575:
            doc = ConferenceInfo(
                entity=sub.entity, state=State.DELETED, version=self._next_version(sub)
            )
            body, content_type = conference_info_to_bytes(doc), CONFERENCE_INFO
        self._events.append(
            SendNotify(
                sub_id,
                content_type,
                body,
                SubscriptionState.TERMINATED,
                reason,
                sub.version,
            )
        )
        self.remove_subscriber(sub_id)

    def notify_completed(self, sub_id: str, ok: bool, now: float) -> None:
        """A NOTIFY of ``sub_id`` (one call per NOTIFY sent, the first one
        included) got a final response (``ok``: 2xx) or failed (error or
        timeout).  After a failure the next NOTIFY carries full state; whether
        the subscription survives is the SIP layer's call (RFC 6665 s4.2.2),
        which then calls :meth:`remove_subscriber`."""
        sub = self._subs.get(sub_id)
        if sub is None:
            return  # already terminated or removed
        sub.outstanding = max(0, sub.outstanding - 1)
        if not ok:
            sub.need_full = True
            sub.dirty = True
        self._pump(now, [sub])

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` has work next (None: nothing is waiting)."""
        heap = self._deadlines
        while heap and not self._waiting(*heap[0]):
            self._unqueue(heapq.heappop(heap))
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        """Send what pacing held back until ``now``."""
        heap = self._deadlines
        ready: list[_Subscriber] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._waiting(*entry):
                ready.append(self._subs[entry[1]])
            self._unqueue(entry)
        self._pump(now, ready)

    def next_event(self) -> SendNotify | None:
        """The next NOTIFY to send, or None."""
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------ internals

    def _get(self, sub_id: str) -> _Subscriber:
        sub = self._subs.get(sub_id)
        if sub is None:
            raise UnknownSubscriber(sub_id)
        return sub

    def _due(self, sub: _Subscriber) -> float:
        if sub.last_sent_at is None:
            return float("-inf")
        return sub.last_sent_at + self.config.min_interval

    def _waiting(self, due: float, sub_id: str) -> bool:
        """Whether a heap entry still stands for a subscriber held back until ``due``."""
        sub = self._subs.get(sub_id)
        return (
            sub is not None
            and sub.dirty
            and not sub.outstanding
            and sub.queued_due == due == self._due(sub)
        )

    def _unqueue(self, entry: tuple[float, str]) -> None:
        sub = self._subs.get(entry[1])
        if sub is not None and sub.queued_due == entry[0]:
            sub.queued_due = None

    def _pump(self, now: float, subs: Iterable[_Subscriber]) -> None:
        for sub in subs:
            if sub.dirty and not sub.outstanding:
                due = self._due(sub)
                if due <= now:
                    event = self._plan(sub, now)
                    if event is not None:
                        self._events.append(event)
                elif sub.queued_due != due:
                    sub.queued_due = due
                    heapq.heappush(self._deadlines, (due, sub.sub_id))

    def _shared_for(self, sub: _Subscriber) -> _Shared:
        assert sub.latest is not None
        shared = self._shared.get(sub.conf_uri)
        if shared is None or shared.latest is not sub.latest:
            shared = self._shared[sub.conf_uri] = _Shared(sub.latest)
        return shared

    def _view(self, sub: _Subscriber) -> _View:
        assert sub.latest is not None
        shared = self._shared_for(sub)
        rfc4575 = sub.mode is Mode.RFC4575
        key = (sub.role, sub.user_id, rfc4575, sub.entity if rfc4575 else None)
        view = shared.views.get(key)
        if view is None:
            info = view_for(
                sub.role, sub.user_id, sub.latest, pseudonym_key=self.config.pseudonym_key
            )
            if rfc4575:
                info = rfc4575_view(info, entity=sub.entity)
            view = shared.views[key] = _View(next(self._view_numbers), info)
        return view

    def _unchanged(self, sub: _Subscriber, view: _View) -> bool:
        """``view`` says what ``sub.sent`` said, compared once per pair of views."""
        sent = sub.sent
        if sent is None or sent.number == view.number:
            return sent is not None
        shared = self._shared_for(sub)
        key = (sent.number, view.number)
        same = shared.same.get(key)
        if same is None:
            same = shared.same[key] = sent.info == view.info
        return same

    def _built(
        self, sub: _Subscriber, key: _BodyKey, build: Callable[[], bytes | None]
    ) -> bytes | None:
        """``build()`` once per snapshot for what ``key`` names."""
        bodies = self._shared_for(sub).bodies
        if key in bodies:
            return bodies[key]
        body = bodies[key] = build()
        return body

    def _next_version(self, sub: _Subscriber) -> int:
        sub.version += 1
        return sub.version

    def _plan(self, sub: _Subscriber, now: float) -> SendNotify | None:
        """The paced NOTIFY of a dirty subscriber, or None if its view is unchanged."""
        sub.dirty = False
        view = self._view(sub)
        if not sub.need_full and self._unchanged(sub, view):
            return None  # nothing this subscriber may see has changed
        return self._send(sub, now, full=sub.need_full, view=view)

    def _send(
        self, sub: _Subscriber, now: float, *, full: bool, view: _View | None = None
    ) -> SendNotify:
        view = self._view(sub) if view is None else view
        info = view.info
        content_type: str
        if sub.mode is Mode.RFC4575:
            body: bytes | None = None
            version = self._next_version(sub)
            sent = sub.sent
            if not full and sent is not None:
                body = self._built(
                    sub,
                    ("partial", sent.number, view.number, version),
                    lambda: rfc4575_partial(sent.info, info, version),
                )
            if body is None:
                body = self._built(
                    sub, ("full", view.number, version), lambda: rfc4575_full(info, version)
                )
            assert body is not None
            content_type = CONFERENCE_INFO
            sub.sent_xml = None
        else:
            document = self._built(sub, ("xcon", view.number), lambda: xcon_full(info))
            assert document is not None
            diff = None
            basis, sent_xml = sub.sent, sub.sent_xml
            if sub.mode is Mode.XCON_DIFF and not full and basis and sent_xml is not None:
                diff = self._built(
                    sub,
                    ("diff", basis.number, view.number),
                    lambda: xcon_diff(sent_xml, document, info.entity),
                )
            if diff is None or len(diff) >= len(document):
                # a diff no smaller than the document saves nothing (RFC 6502
                # s5.1 leaves what counts as a change to local policy)
                body, content_type = document, XCON_CONFERENCE_INFO
            else:
                body, content_type = diff, XCON_CONFERENCE_INFO_DIFF
            sub.sent_xml = document
            self._next_version(sub)
        sub.sent = view
        sub.need_full = False
        sub.dirty = False
        sub.outstanding += 1
        sub.last_sent_at = now
        return SendNotify(
            sub.sub_id, content_type, body, SubscriptionState.ACTIVE, None, sub.version
        )
