"""Brute-force lock-out of SIP digest authentication (pure; time is a parameter).

A source address that fails authentication ``max_failures`` times within ``window`` seconds
is refused (403, RFC 3261 s21.4.4) for ``duration`` seconds without its credentials even
being looked at, as fail2ban does for an Asterisk box: a password guesser on the open
Internet gets a handful of tries per lock-out instead of thousands per second.  The lock-out
starting is reported once, as a :class:`LockedOut` event, for the operator's log.  A success
forgets the source's failures (a typo is not an attack).

Memory is bounded: at most ``max_sources`` addresses are remembered, the least recently
failing forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["LockedOut", "Lockout", "LockoutConfig"]


@dataclass(frozen=True, slots=True)
class LockoutConfig:
    """max_failures: failed authentications that lock a source out (>= 1);
    window: seconds within which they must fall; duration: seconds the lock-out lasts;
    max_sources: bound on the addresses remembered."""

    max_failures: int = 5
    window: float = 60.0
    duration: float = 300.0
    max_sources: int = 10_000

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.max_sources < 1:
            raise ValueError("max_failures and max_sources must be at least 1")
        if not (self.window > 0 and self.duration > 0):
            raise ValueError("window and duration must be positive seconds")


@dataclass(frozen=True, slots=True)
class LockedOut:
    """A source was locked out: ``failures`` failed authentications (the last one as
    ``username``, ``None`` when it named none) within the window; refused until ``until``."""

    source: str
    username: str | None
    failures: int
    until: float


@dataclass(slots=True)
class _Source:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float | None = None


class Lockout:
    """Failure counts and lock-outs per source address (see the module docstring)."""

    def __init__(self, config: LockoutConfig | None = None) -> None:
        self.config = config or LockoutConfig()
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def locked(self, source: str, now: float) -> bool:
        """Whether ``source`` is locked out at ``now``."""
        state = self._sources.get(source)
        if state is None or state.locked_until is None:
            return False
        if now < state.locked_until:
            return True
        del self._sources[source]  # served its time: starts over
        return False

    def failed(self, source: str, now: float, username: str | None = None) -> LockedOut | None:
        """One failed authentication from ``source``; the :class:`LockedOut` event when
        this one starts a lock-out, else ``None`` (also while already locked out)."""
        if self.locked(source, now):
            return None
        state = self._sources.pop(source, None) or _Source()
        self._sources[source] = state  # most recent last
        state.failures.append(now)
        while state.failures and now - state.failures[0] > self.config.window:
            state.failures.popleft()
        while len(self._sources) > self.config.max_sources:
            self._sources.popitem(last=False)
        if len(state.failures) < self.config.max_failures:
            return None
        state.locked_until = now + self.config.duration
        count = len(state.failures)
        state.failures.clear()
        return LockedOut(source, username, count, state.locked_until)

    def succeeded(self, source: str) -> None:
        """``source`` authenticated: its earlier failures are forgotten (not a lock-out)."""
        state = self._sources.get(source)
        if state is not None and state.locked_until is None:
            del self._sources[source]

    def __len__(self) -> int:
        return len(self._sources)
