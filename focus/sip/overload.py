"""Overload decisions for new requests: answer, do not drown (RFC 3261 s21.5.4, RFC 6357).

Pure: no sockets, no clock (``now`` is a parameter), randomness from a passed ``Random``.
The UA core (:class:`focus.sip.uacore.UACore`) asks :meth:`LoadGate.check` about every new
out-of-dialog request before anything else sees it; a refusal is answered at once, through
the request's server transaction, so the peer's retransmissions are absorbed by the
transaction layer and never decided again.

What is refused, in this order (the cheapest, most specific reason first):

1. a source with too many server transactions still unanswered (``max_pending_per_source``)
   -- every new out-of-dialog request except ACK/CANCEL: 503;
2. a source sending new INVITE, SUBSCRIBE or MESSAGE requests faster than
   ``source_rate`` per second (a token bucket per source IP, ``source_burst`` deep, in a
   table of at most ``max_sources`` sources, least recently seen evicted): 503;
3. a new INVITE while the application is busy (its ``busy`` hook names why: joins in
   progress, no media server, too many participants), the event loop lags more than
   ``max_loop_lag`` seconds, or new calls arrive faster than ``call_rate`` per second over
   all sources: 503. Only these mean *we* are overloaded, so only they set the RFC 7339
   loss percentage (:meth:`LoadGate.loss`).

OPTIONS, in-dialog requests and everything the application does itself are never refused
here. A refusal carries Retry-After, drawn from ``retry_after`` (randomised, so refused
callers do not all come back in the same second), except one for our own load (3.) of a
request that came through a proxy (RFC 7339 s5.10.2, see :meth:`LoadGate._refuse`).

A trusted proxy (``trusted_proxies``: the Kamailio in front, carrying many phones from one
address) is not one source: its requests are rate-limited by their origin, the address the
proxy received them from (:func:`origin`), and are not counted against a pending limit of
the proxy's own (the transaction layer counts by address; the origin's rate bounds what one
phone behind the proxy starts, the load checks what all of them start together).
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from focus.sip.flow import IpNetwork, in_networks
from focus.sip.headers import Via

__all__ = [
    "LoadGate",
    "OverloadConfig",
    "Refusal",
    "RefusalCause",
    "TokenBuckets",
    "origin",
]

#: Weight of the newest lag measurement in the moving average.
_LAG_WEIGHT = 0.3

#: New out-of-dialog requests that start work for the focus: rate-limited per source.
RATED_METHODS = frozenset({"INVITE", "SUBSCRIBE", "MESSAGE"})


@dataclass(frozen=True, slots=True)
class OverloadConfig:
    """Limits on new work (the profile's overload keys, see :class:`focus.settings.SipProfile`).

    max_loop_lag:  seconds the event loop may run late, on average over the last few
                   measurements of the transport's own timer, before new INVITEs are refused;
                   0 disables the check.
    lag_memory:    seconds a lag measurement counts for (a stall is remembered that long).
    retry_after:   (low, high) seconds; each 503 carries a Retry-After drawn uniformly from it.
    source_rate:   new INVITE/SUBSCRIBE/MESSAGE requests per second one source IP may send on
                   average; 0 disables the limit.
    source_burst:  how many of them it may send at once (the bucket's depth).
    max_sources:   sources whose buckets are kept (least recently seen forgotten first).
    max_pending_per_source: server transactions one source may have open and unanswered at
                   once; a new request beyond it gets 503. 0 disables the limit.
    loss_window:   seconds over which the share of refused INVITEs is measured (the RFC 7339
                   ``oc`` loss percentage we send upstream while overloaded).
    call_rate:     new INVITEs taken per second over all sources (a bucket as deep as one
                   second's worth); 0 disables it. Joins cost CPU on the one event loop that
                   also serves CCMP and calls already up: this keeps headroom for them.
    trusted_proxies: networks of the proxies in front (the profile's ``trusted_proxies``):
                   limited by their requests' origins, not as one source (module docstring).
    """

    max_loop_lag: float = 0.25
    lag_memory: float = 2.0
    retry_after: tuple[int, int] = (5, 15)
    source_rate: float = 20.0
    source_burst: int = 40
    max_sources: int = 4096
    max_pending_per_source: int = 64
    loss_window: float = 2.0
    call_rate: float = 0.0
    trusted_proxies: tuple[IpNetwork, ...] = ()

    def __post_init__(self) -> None:
        low, high = self.retry_after
        if not 0 <= low <= high:
            raise ValueError(f"retry_after must be 0 <= low <= high, not {self.retry_after}")
        if self.max_loop_lag < 0 or self.lag_memory <= 0 or self.loss_window <= 0:
            raise ValueError("max_loop_lag must be >= 0, lag_memory and loss_window > 0")
        if self.call_rate < 0:
            raise ValueError("call_rate must be >= 0")
        if self.source_rate < 0 or (self.source_rate and self.source_burst < 1):
            raise ValueError("source_rate must be >= 0 with source_burst >= 1")
        if self.max_sources < 1 or self.max_pending_per_source < 0:
            raise ValueError("max_sources must be >= 1 and max_pending_per_source >= 0")


class RefusalCause(enum.Enum):
    """Why a new request was refused with 503 (RFC 3261 s21.5.4)."""

    PENDING = "too many unanswered requests from this source"
    RATE = "request rate of this source over its limit"
    BUSY = "the focus cannot take a new call now"
    LAG = "the focus is overloaded (event loop lagging)"
    CALL_RATE = "new calls arrive faster than the focus takes them"

    @property
    def overload(self) -> bool:
        """Whether the cause is our own load (RFC 7339 feedback), not one source's excess."""
        return self in (RefusalCause.BUSY, RefusalCause.LAG, RefusalCause.CALL_RATE)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A new request refused: answer ``status`` with ``reason`` and Retry-After (seconds;
    ``None``: none, RFC 7339 s5.10.2)."""

    cause: RefusalCause
    reason: str
    retry_after: int | None
    status: int = 503

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        if self.retry_after is None:
            return ()
        return (("Retry-After", str(self.retry_after)),)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One token bucket per key (a source IP), ``rate`` tokens a second up to ``burst``.

    The table holds at most ``max_keys`` buckets; the least recently used goes first. A
    forgotten source comes back with a full bucket, which errs towards letting it in (a
    flood from more addresses than the table holds is limited by the load checks instead).
    """

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> bool:
        """Spend one token of ``key``'s bucket; False (nothing spent) when it is empty."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            # A clock that goes backwards (it must not, but) refills nothing.
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.at = max(bucket.at, now)
        if bucket.tokens >= 1.0 - 1e-9:  # (a refill of exactly 1/rate may round below 1)
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return True
        return False


class LoadGate:
    """Decides whether a new out-of-dialog request is taken or refused (module docstring).

    ``busy`` is the application's hook: it returns why a new call cannot be taken now
    (joins in progress over the limit, the media server's channel down...) or ``None``.
    The adapter reports event-loop lag with :meth:`note_lag`.
    """

    def __init__(
        self,
        config: OverloadConfig,
        *,
        busy: Callable[[], str | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.busy = busy
        self._rng = rng if rng is not None else random.Random()
        self._buckets = TokenBuckets(config.source_rate, config.source_burst, config.max_sources)
        self._calls = TokenBuckets(config.call_rate, max(1, round(config.call_rate)), 1)
        self._lag = 0.0
        self._lag_at = float("-inf")
        # INVITEs taken / refused for our own load, in the current and the previous window.
        self._window_start = float("-inf")
        self._counts = [0, 0]
        self._previous = [0, 0]
        self.refused = dict.fromkeys(RefusalCause, 0)

    def note_lag(self, lag: float, now: float) -> None:
        """The loop ran ``lag`` seconds late at ``now`` (the adapter's timer fired late).

        Smoothed (a moving average over the last few measurements): a sustained lag is
        overload; one garbage-collection pause is not."""
        previous = self.lag(now)
        self._lag = previous + _LAG_WEIGHT * (max(0.0, lag) - previous)
        self._lag_at = now

    def lag(self, now: float) -> float:
        """The smoothed lag at ``now`` (0 once the last measurement is too old)."""
        return self._lag if now - self._lag_at <= self.config.lag_memory else 0.0

    def check(
        self, method: str, source: str, pending: int, now: float, via: Sequence[Via] = ()
    ) -> Refusal | None:
        """The refusal for a new out-of-dialog ``method`` request from ``source`` (an IP),
        which has ``pending`` server transactions open (this one included), or ``None``.
        ``via`` is the request's Via list, top first: from a trusted proxy, whose request
        it is (:func:`origin`)."""
        cfg = self.config
        if method in ("ACK", "CANCEL"):
            return None
        proxied = in_networks(source, cfg.trusted_proxies)
        key = origin(source, via, cfg.trusted_proxies) if proxied else source
        if not proxied and cfg.max_pending_per_source and pending > cfg.max_pending_per_source:
            return self._refuse(RefusalCause.PENDING, f"{pending} requests pending")
        if method not in RATED_METHODS:
            return None
        if cfg.source_rate and not self._buckets.take(key, now):
            return self._refuse(RefusalCause.RATE, f"over {cfg.source_rate:g}/s")
        if method != "INVITE":
            return None
        refusal: Refusal | None = None
        why = self.busy() if self.busy is not None else None
        if why is not None:
            refusal = self._refuse(RefusalCause.BUSY, why, via)
        elif cfg.max_loop_lag and (lag := self.lag(now)) > cfg.max_loop_lag:
            refusal = self._refuse(RefusalCause.LAG, f"{lag * 1000:.0f} ms late", via)
        elif cfg.call_rate and not self._calls.take("", now):
            refusal = self._refuse(RefusalCause.CALL_RATE, f"over {cfg.call_rate:g}/s", via)
        self._count(refusal is not None, now)
        return refusal

    def loss(self, now: float) -> int:
        """RFC 7339 s7: the percentage of new INVITEs upstream clients should not send us,
        measured over the last window or two (0: not overloaded)."""
        self._roll(now)
        taken = self._counts[0] + self._previous[0]
        refused = self._counts[1] + self._previous[1]
        total = taken + refused
        return 0 if total == 0 else round(100 * refused / total)

    def _count(self, refused: bool, now: float) -> None:
        self._roll(now)
        self._counts[int(refused)] += 1

    def _roll(self, now: float) -> None:
        window = self.config.loss_window
        if now - self._window_start < window:
            return
        # One window ago: the current counts become the previous ones; longer: both go.
        self._previous = self._counts if now - self._window_start < 2 * window else [0, 0]
        self._counts = [0, 0]
        self._window_start = now

    def _refuse(self, cause: RefusalCause, detail: str, via: Sequence[Via] = ()) -> Refusal:
        self.refused[cause] += 1
        low, high = self.config.retry_after
        # Our own load, answered to an upstream SIP server (the request has come through a
        # proxy: more than one Via): RFC 7339 s5.10.2 says a throttling server "MUST reject
        # some requests from non-participating clients with a 503 ... without the
        # Retry-After header", since a proxy reads Retry-After as "this server is down for
        # that long" (RFC 3261 s21.5.4) and would send it nothing at all; one that offered
        # ``oc`` has the loss percentage in the 503's Via as its instruction (s5.10). A
        # phone calling us directly (one Via) is the end client RFC 3261 s21.5.4 speaks
        # to: it gets Retry-After, so it comes back later rather than at once. One source's
        # excess is not our overload: that refusal always has its Retry-After.
        upstream_server = len(via) > 1
        retry = None if cause.overload and upstream_server else self._rng.randint(low, high)
        return Refusal(cause, f"Service Unavailable - {cause.value} ({detail})", retry)


def origin(source: str, via: Sequence[Via], proxies: Sequence[IpNetwork]) -> str:
    """Whom a request from ``source`` is limited as: ``source`` itself unless it is a
    trusted proxy; then the first hop below the trusted ones, as the proxy
    saw it (its Via's ``received``, RFC 3261 s18.2.1, else its sent-by host). A request
    the proxies originated themselves (no such Via) is the proxy's own."""
    if not in_networks(source, proxies):
        return source
    for hop in via[1:]:
        address = hop.received or hop.host
        if not in_networks(address, proxies):
            return address.strip("[]").lower()
    return source
