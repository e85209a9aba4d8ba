"""SIP session timers (RFC 4028), sans-IO: the header fields, the UAS and UAC rules, the timer.

A session timer makes both ends of a call prove, every *session interval*, that the call is
still alive: the *refresher* sends a re-INVITE or UPDATE, and a side that sees no refresh in
time ends the call with BYE (RFC 4028 s3, s10). This module holds only the rules; the UA
sends and receives the messages and arms one timer at :meth:`SessionTimer.get_timer`.

UAS, for every incoming (re-)INVITE or UPDATE (s9)::

    verdict = uas_answer(request.headers, config)
    if isinstance(verdict, IntervalTooSmall):        # answer 422 with verdict.headers()
        ...
    else:                                            # add verdict.headers() to the 2xx
        timer = SessionTimer(verdict.negotiated, now) if verdict.negotiated else None
        # in dialog, when the 2xx is sent: timer.refreshed(verdict.negotiated, now)
        # and, if verdict.min_se_seen: timer.saw_min_se(verdict.min_se_seen)  (s7.4)

UAC, for our INVITE and every refresh (s7)::

    offer = initial_request(config)                  # or timer.refresh_request(config)
    invite.headers.add(name, value) for name, value in offer.headers()
    on 422:  offer = offer.after_422(response.headers)   # None: give up (the call fails)
             # in dialog: timer.saw_min_se(offer.min_se); the old expiry still holds (s10)
    on 2xx:  negotiated = offer.read_2xx(response.headers)  # None: no session timer
             timer = SessionTimer(negotiated, now)  # in dialog: timer.refreshed(negotiated, now)

The UA lists ``timer`` in its Supported option tags (so a ``Require: timer`` passes
``check_require``) and merges the ``Supported`` of :meth:`TimerRequest.headers` and
:meth:`TimerAnswer.headers` into its own.

The timer, per dialog, with ``now`` passed in::

    deadline = timer.get_timer()                     # None: nothing to do
    event = timer.handle_timer(now)                  # RefreshDue | SessionExpired | None

:class:`RefreshDue` comes at half the interval when we refresh (s7.2, s9, s10);
:class:`SessionExpired` comes, for either side, at the interval minus min(32 s, interval/3)
(s10) when no refresh succeeded: send BYE. Every 2xx to a refresh (either direction) goes to
:meth:`SessionTimer.refreshed`, which restarts the interval or, without Session-Expires,
turns the timer off (s7.2).

Many dialogs' timers, by key, with one earliest deadline for the UA's one loop timer::

    table = TimerTable()                             # e.g. TimerTable[Call]()
    table.start(key, negotiated, now)                # a 2xx sent or received (new or refresh)
    deadline = table.get_timer()
    for key, timer, event in table.handle_timer(now): ...   # an expired timer is dropped

Choices: a Session-Expires below our Min-SE is refused with 422 even when the UAC does not
list ``timer`` in Supported (s11.1: otherwise whoever inserted it sets our refresh rate); a
2xx whose interval is below the Min-SE we sent is taken at our Min-SE, and one without a
``refresher`` parameter makes us the refresher (refreshing too often is harmless, sending a
BYE wrongly is not). Malformed header fields raise :class:`SessionTimerHeaderError`, a
:class:`~focus.sip.errors.SipParseError` carrying the status to answer (400).
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import Headers, parse_params

__all__ = [
    "MIN_SE_FLOOR",
    "OPTION_TAG",
    "IntervalTooSmall",
    "Negotiated",
    "RefreshDue",
    "Refresher",
    "SessionExpired",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerConfig",
    "SessionTimerHeaderError",
    "TimerAnswer",
    "TimerRefusal",
    "TimerRequest",
    "TimerTable",
    "expiry_margin",
    "format_min_se",
    "initial_request",
    "parse_min_se",
    "parse_session_expires",
    "uas_answer",
    "uas_verdict",
]

#: The option tag of the extension (RFC 4028 s12.3).
OPTION_TAG = "timer"
#: The smallest session interval anyone may use, and Min-SE's default (RFC 4028 s4, s5).
MIN_SE_FLOOR = 90
# delta-seconds above 2**32-1 are clamped, as for Expires (RFC 3261 s20.19).
_DELTA_MAX = 2**32 - 1


class Refresher(enum.Enum):
    """The ``refresher`` parameter of Session-Expires (RFC 4028 s4): who refreshes, named
    by its role in the transaction that carries the header field."""

    UAC = "uac"
    UAS = "uas"


class SessionTimerHeaderError(SipParseError):
    """The peer sent a malformed Session-Expires or Min-SE (RFC 4028 s4, s5).

    The peer's fault: answer ``status`` (400) to a request; a response carrying one is
    unusable for the timer (the caller ends the call as for any broken 2xx).
    """


# --- the header fields (s4, s5) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires value (RFC 4028 s4); ``str()`` is its wire form. Generic
    parameters other than ``refresher`` are dropped (s4 defines none)."""

    interval: int
    refresher: Refresher | None = None

    def __str__(self) -> str:
        if self.refresher is None:
            return str(self.interval)
        return f"{self.interval};refresher={self.refresher.value}"


def _delta_seconds(text: str, what: str) -> int:
    text = text.strip(" \t")
    if not text or not text.isascii() or not text.isdigit():
        raise SessionTimerHeaderError.bad(f"Malformed {what}")
    text = text.lstrip("0") or "0"
    # The length test keeps int() away from huge digit strings (and their ValueError).
    return _DELTA_MAX if len(text) > 10 else min(int(text), _DELTA_MAX)


def _split(value: str, what: str) -> tuple[int, str]:
    delta, sep, params = value.partition(";")
    return _delta_seconds(delta, what), sep + params


def _params(text: str, what: str) -> dict[str, str | None]:
    try:
        return {name.lower(): value for name, value in parse_params(text, what).pairs}
    except SipParseError as exc:
        raise SessionTimerHeaderError(exc.reason, exc.status) from None


def parse_session_expires(value: str) -> SessionExpires:
    """``delta-seconds *(SEMI se-params)`` (RFC 4028 s4); the refresher is case-insensitive."""
    interval, rest = _split(value, "Session-Expires")
    params = _params(rest, "Session-Expires") if rest else {}
    if "refresher" not in params:
        return SessionExpires(interval)
    text = (params["refresher"] or "").lower()
    if text not in ("uac", "uas"):
        raise SessionTimerHeaderError.bad("Malformed Session-Expires refresher")
    return SessionExpires(interval, Refresher(text))


def parse_min_se(value: str) -> int:
    """``delta-seconds *(SEMI generic-param)`` (RFC 4028 s5); parameters are checked, dropped."""
    seconds, rest = _split(value, "Min-SE")
    if rest:
        _params(rest, "Min-SE")
    return seconds


def format_min_se(seconds: int) -> str:
    """Min-SE's wire form; never below 90 (RFC 4028 s5), so a smaller one is our bug."""
    if not MIN_SE_FLOOR <= seconds <= _DELTA_MAX:
        raise LocalProtocolError(f"Min-SE {seconds} outside {MIN_SE_FLOOR}..{_DELTA_MAX}")
    return str(seconds)


def _single(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    if len(values) > 1:
        raise SessionTimerHeaderError.bad(f"Multiple {name} header fields")
    return values[0] if values else None


def _session_expires(headers: Headers) -> SessionExpires | None:
    value = _single(headers, "Session-Expires")
    return None if value is None else parse_session_expires(value)


def _min_se(headers: Headers) -> int | None:
    value = _single(headers, "Min-SE")
    return None if value is None else parse_min_se(value)


def _lists_timer(headers: Headers, name: str) -> bool:
    # A plain split: a malformed Supported is the UA's to refuse, not the timer's.
    return any(
        part.strip(" \t").lower() == OPTION_TAG
        for value in headers.get_all(name)
        for part in value.split(",")
    )


# --- configuration and the agreed timer -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionTimerConfig:
    """Our session timer policy (RFC 4028).

    session_expires: the interval we ask for on our INVITEs and grant at most to others
        (s4 RECOMMENDS 1800 s; a UAS may lower what it is asked, s9).
    min_se: the smallest interval we accept: a request asking less gets 422 with this
        Min-SE (s9); never below 90 (s4, s5).
    request_timer: whether we ask for a timer (Session-Expires) on our INVITEs and in our
        2xx to a UAC that supports timer but asked none (s7.1, s9). Supported: timer is
        sent either way (s7.1 MUST).
    refresh_ourselves: when the peer leaves the choice to us (s9 Table 2, row 4) we refresh;
        then a dead peer shows as a failed refresh on our side.
    """

    session_expires: int = 1800
    min_se: int = MIN_SE_FLOOR
    request_timer: bool = True
    refresh_ourselves: bool = True

    def __post_init__(self) -> None:
        if not MIN_SE_FLOOR <= self.min_se <= self.session_expires <= _DELTA_MAX:
            raise LocalProtocolError(
                f"session timer config needs {MIN_SE_FLOOR} <= min_se ({self.min_se})"
                f" <= session_expires ({self.session_expires}) (RFC 4028 s4, s5)"
            )


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The timer a 2xx agreed (RFC 4028 s7.2, s9): its interval and whether we refresh."""

    interval: int
    we_refresh: bool

    def __post_init__(self) -> None:
        if not MIN_SE_FLOOR <= self.interval <= _DELTA_MAX:
            raise LocalProtocolError(f"session interval {self.interval} below 90 s (s4)")


# --- UAS (s9) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntervalTooSmall:
    """Answer 422 Session Interval Too Small with this Min-SE (RFC 4028 s6, s9)."""

    min_se: int
    status = 422

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Min-SE", format_min_se(self.min_se)),)


@dataclass(frozen=True, slots=True)
class TimerAnswer:
    """What our 2xx says about the timer (RFC 4028 s9); ``negotiated`` None: no timer.
    ``min_se_seen`` is the request's Min-SE, for :meth:`SessionTimer.saw_min_se` (s7.4)."""

    session_expires: SessionExpires | None
    require_timer: bool
    min_se_seen: int | None = None

    @property
    def negotiated(self) -> Negotiated | None:
        se = self.session_expires
        return None if se is None else Negotiated(se.interval, se.refresher is Refresher.UAS)

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Supported (merge it with the UA's own list), Session-Expires, Require."""
        out = [("Supported", OPTION_TAG)]
        if self.session_expires is not None:
            out.append(("Session-Expires", str(self.session_expires)))
        if self.require_timer:
            out.append(("Require", OPTION_TAG))
        return tuple(out)


def uas_answer(headers: Headers, config: SessionTimerConfig) -> IntervalTooSmall | TimerAnswer:
    """The UAS verdict on an incoming (re-)INVITE or UPDATE (RFC 4028 s9).

    422 when its Session-Expires is below our Min-SE (or below its own Min-SE, which s7.1
    forbids); else the interval, lowered to our ``session_expires`` but never below its
    Min-SE, and the refresher of Table 2. Raises :class:`SessionTimerHeaderError` (400).
    """
    requested = _session_expires(headers)
    seen = _min_se(headers)
    floor = max(config.min_se, seen or MIN_SE_FLOOR)
    supports = _lists_timer(headers, "Supported")
    if requested is None:
        if not (supports and config.request_timer):
            return TimerAnswer(None, require_timer=False, min_se_seen=seen)
        requested = SessionExpires(max(config.session_expires, floor))
    elif requested.interval < floor:
        return IntervalTooSmall(floor)
    interval = min(requested.interval, max(config.session_expires, floor))
    if not supports:
        refresher = Refresher.UAS  # Table 2 rows 1-3: a UAC without timer cannot refresh
    elif requested.refresher is not None:
        refresher = requested.refresher  # rows 5-6: the UAC's choice stands
    else:
        refresher = Refresher.UAS if config.refresh_ourselves else Refresher.UAC
    # Require: MUST when the UAC refreshes, SHOULD when it only has to BYE; never to a UAC
    # that does not support timer (it would fail the call).
    return TimerAnswer(SessionExpires(interval, refresher), supports, seen)


@dataclass(frozen=True, slots=True)
class TimerRefusal:
    """Reject the (re-)INVITE or UPDATE with this: 422 with our Min-SE (s6, s9), or 400 for
    a malformed Session-Expires or Min-SE (the UAC's fault)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def uas_verdict(headers: Headers, config: SessionTimerConfig) -> TimerRefusal | TimerAnswer:
    """:func:`uas_answer` with its refusals as the response to send (422 or 400)."""
    try:
        answer = uas_answer(headers, config)
    except SessionTimerHeaderError as exc:
        return TimerRefusal(exc.status, exc.reason)
    if isinstance(answer, IntervalTooSmall):
        return TimerRefusal(answer.status, "Session Interval Too Small", answer.headers())
    return answer


# --- UAC (s7) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimerRequest:
    """What our INVITE, re-INVITE or UPDATE says about the timer (RFC 4028 s7.1, s7.4)."""

    min_se: int
    session_expires: SessionExpires | None

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Supported: timer always (s7.1), Session-Expires when we ask, and Min-SE."""
        out = [("Supported", OPTION_TAG)]
        if self.session_expires is not None:
            out.append(("Session-Expires", str(self.session_expires)))
        out.append(("Min-SE", format_min_se(self.min_se)))
        return tuple(out)

    def after_422(self, headers: Headers) -> TimerRequest | None:
        """The retry after a 422 (s7.3, s7.4): Min-SE and Session-Expires raised to the
        largest Min-SE seen; None when a retry would ask no more (the call fails)."""
        their = _min_se(headers)
        if their is None:
            raise SessionTimerHeaderError.bad("422 without Min-SE")  # s6 MUST
        asked = self.min_se if self.session_expires is None else self.session_expires.interval
        if their <= asked:
            return None
        refresher = None if self.session_expires is None else self.session_expires.refresher
        return TimerRequest(their, SessionExpires(their, refresher))

    def retry_after_422(self, headers: Headers) -> TimerRequest | None:
        """:meth:`after_422` for a UAC that just gives up: None also when the 422 carries
        no usable Min-SE (the peer broke s6's MUST; nothing to retry with)."""
        try:
            return self.after_422(headers)
        except SessionTimerHeaderError:
            return None

    def read_2xx(self, headers: Headers) -> Negotiated | None:
        """The timer a 2xx to this request agreed (s7.2); None: no session timer."""
        answered = _session_expires(headers)
        if answered is None:
            if self.session_expires is None:
                return None
            # The UAS lacks the extension: we refresh at the interval we asked for.
            return Negotiated(self.session_expires.interval, we_refresh=True)
        interval = max(answered.interval, self.min_se)  # s11.1: not faster than we allowed
        return Negotiated(interval, we_refresh=answered.refresher is not Refresher.UAS)


def initial_request(config: SessionTimerConfig, min_se: int | None = None) -> TimerRequest:
    """Our INVITE's timer (s7.1): our interval, no refresher (s7.1 RECOMMENDS leaving the
    choice to the negotiation), Min-SE at least ours or ``min_se`` (a 422's on this Call-ID)."""
    floor = max(config.min_se, min_se or MIN_SE_FLOOR)
    if not config.request_timer:
        return TimerRequest(floor, None)
    return TimerRequest(floor, SessionExpires(max(config.session_expires, floor)))


# --- the per-dialog timer (s7.2, s9, s10) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshDue:
    """Half the interval has passed and we are the refresher (s7.2, s9, s10): send a
    re-INVITE or UPDATE with :meth:`SessionTimer.refresh_request`."""

    at: float


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """No refresh succeeded before the session expiration (s10): send BYE."""

    at: float
    interval: int


def expiry_margin(interval: int) -> float:
    """How long before the session expiration the BYE goes: min(32 s, interval/3) (s10)."""
    return min(32.0, interval / 3)


class SessionTimer:
    """The session timer of one dialog, started by the 2xx that agreed it (s7.2, s9)."""

    __slots__ = ("_refresh_at", "expires_at", "interval", "min_se", "we_refresh")

    def __init__(self, negotiated: Negotiated, now: float) -> None:
        self.interval = negotiated.interval
        self.we_refresh = negotiated.we_refresh
        #: the largest Min-SE seen on this dialog (s7.4), raised by :meth:`saw_min_se`
        self.min_se = MIN_SE_FLOOR
        self.expires_at: float | None = None
        self._refresh_at: float | None = None
        self.refreshed(negotiated, now)

    def refreshed(self, negotiated: Negotiated | None, now: float) -> None:
        """A 2xx to a refresh was sent or received at ``now`` (s7.2, s9); ``None`` (a 2xx
        without Session-Expires) turns the timer off."""
        if negotiated is None:
            self.expires_at = self._refresh_at = None
            return
        self.interval = negotiated.interval
        self.we_refresh = negotiated.we_refresh
        self.expires_at = now + self.interval - expiry_margin(self.interval)
        self._refresh_at = now + self.interval / 2 if self.we_refresh else None

    def saw_min_se(self, min_se: int) -> None:
        """A 422 or a request on this dialog carried Min-SE (s7.4): refreshes ask at least it."""
        self.min_se = max(self.min_se, min(min_se, _DELTA_MAX))

    def refresh_request(self, config: SessionTimerConfig) -> TimerRequest:
        """Our refresh's timer (s7.4): the current interval (or a larger Min-SE), keeping the
        refresher role as it is (``uac`` if we refresh)."""
        floor = max(config.min_se, self.min_se)
        refresher = Refresher.UAC if self.we_refresh else Refresher.UAS
        return TimerRequest(floor, SessionExpires(max(floor, self.interval), refresher))

    def get_timer(self) -> float | None:
        """The next deadline, or None when the timer is off or has expired."""
        return self._refresh_at if self._refresh_at is not None else self.expires_at

    def handle_timer(self, now: float) -> RefreshDue | SessionExpired | None:
        """The event due at ``now``, if any; each fires once per interval."""
        if self.expires_at is not None and now >= self.expires_at:
            at = self.expires_at
            self.expires_at = self._refresh_at = None
            return SessionExpired(at, self.interval)
        if self._refresh_at is not None and now >= self._refresh_at:
            at = self._refresh_at
            self._refresh_at = None
            return RefreshDue(at)
        return None


# --- many dialogs' timers, for one loop timer ---------------------------------------------

K = TypeVar("K", bound=Hashable)


class TimerTable(Generic[K]):
    """The session timers of many dialogs by key, their deadlines in a heap: a start or a
    forget costs O(log N), not a scan; an entry whose timer moved or went is stale and
    dropped when it comes up."""

    __slots__ = ("_heap", "_order", "_timers")

    def __init__(self) -> None:
        self._timers: dict[K, SessionTimer] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._order = itertools.count()

    def __contains__(self, key: K) -> bool:
        return key in self._timers

    def get(self, key: K) -> SessionTimer | None:
        return self._timers.get(key)

    def start(self, key: K, negotiated: Negotiated | None, now: float) -> SessionTimer | None:
        """A 2xx agreed ``negotiated`` at ``now``: ``key``'s timer restarts, or starts; None
        when there is none (no timer asked, or turned off: it stays until :meth:`forget`)."""
        timer = self._timers.get(key)
        if timer is not None:
            timer.refreshed(negotiated, now)
        elif negotiated is not None:
            timer = self._timers[key] = SessionTimer(negotiated, now)
        if timer is not None:
            self._push(key, timer)
        return timer

    def forget(self, key: K) -> SessionTimer | None:
        return self._timers.pop(key, None)

    def clear(self) -> None:
        self._timers.clear()
        self._heap.clear()

    def get_timer(self) -> float | None:
        """The earliest deadline of any timer, or None."""
        heap = self._heap
        while heap and self._current(heap[0][0], heap[0][2]) is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> list[tuple[K, SessionTimer, RefreshDue | SessionExpired]]:
        """Every event due at ``now``; a timer whose session expired is dropped."""
        due: list[tuple[K, SessionTimer, RefreshDue | SessionExpired]] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, key = heapq.heappop(self._heap)
            timer = self._current(deadline, key)
            event = timer.handle_timer(now) if timer is not None else None
            if timer is None or event is None:
                continue
            due.append((key, timer, event))
            if isinstance(event, SessionExpired):
                del self._timers[key]
            else:  # after a refresh is due: the expiry, until the refresh works
                self._push(key, timer)
        return due

    def _push(self, key: K, timer: SessionTimer) -> None:
        deadline = timer.get_timer()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._order), key))

    def _current(self, deadline: float, key: K) -> SessionTimer | None:
        timer = self._timers.get(key)
        return timer if timer is not None and timer.get_timer() == deadline else None
