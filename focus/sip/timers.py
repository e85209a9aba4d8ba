"""SIP transaction timer values (RFC 3261 s17 and Table 4; RFC 6026 s8.4, s8.11).

Pure arithmetic: no clocks.  Every duration is in seconds as a float, and the
transaction layer adds it to the ``now`` the caller passes in.

Reliable transports (TCP, TLS, SCTP, WS) never retransmit at the SIP layer and
do not need to linger for retransmissions, so timers A, E, G are never armed and
D, I, J, K are zero on them (RFC 3261 s17.1.1.2, s17.1.2.2, s17.2.1, s17.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["TimerConfig", "TimerName"]


class TimerName(enum.Enum):
    """The transaction timers of RFC 3261 Table 4 and RFC 6026 s8.4/s8.11.

    Timer C (proxy INVITE timer) is not used: this stack is never a proxy.
    """

    A = "A"  # INVITE request retransmit (client, unreliable)
    B = "B"  # INVITE transaction timeout (client)
    D = "D"  # wait for response retransmits (INVITE client, Completed)
    E = "E"  # non-INVITE request retransmit (client, unreliable)
    F = "F"  # non-INVITE transaction timeout (client)
    G = "G"  # INVITE final response retransmit (server, unreliable)
    H = "H"  # wait for ACK receipt (INVITE server)
    I = "I"  # wait for ACK retransmits (INVITE server, Confirmed)  # noqa: E741
    J = "J"  # wait for non-INVITE request retransmits (server, Completed)
    K = "K"  # wait for response retransmits (non-INVITE client, Completed)
    L = "L"  # RFC 6026: wait for INVITE retransmits (server, Accepted)
    M = "M"  # RFC 6026: wait for 2xx retransmits (INVITE client, Accepted)


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Base timer values of RFC 3261 s17.1.1.1 and Table 4.

    Attributes:
        t1: round-trip time estimate; the initial retransmit interval (default 500 ms).
        t2: cap on the retransmit interval of non-INVITE requests and INVITE
            responses (default 4 s).
        t4: how long a message may stay in the network (default 5 s).
        timer_d_unreliable: Timer D on unreliable transports; RFC 3261 asks for
            "at least 32 s" (default 32 s).
        trying_delay: RFC 3261 s17.2.1 lets an INVITE server transaction skip its 100 Trying
            when the TU answers within 200 ms. 0 (default) sends the 100 at once; a positive
            value sends it only if the TU has not responded by then (0.2 is the RFC's
            figure), or at once when the INVITE is retransmitted before that.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d_unreliable: float = 32.0
    trying_delay: float = 0.0

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0):
            raise ValueError(
                f"TimerConfig needs t1 > 0, t2 >= t1 and t4 >= 0; got t1={self.t1} "
                f"t2={self.t2} t4={self.t4}"
            )
        if self.timer_d_unreliable < 0:
            raise ValueError("timer_d_unreliable must not be negative")
        if not 0 <= self.trying_delay < self.t1 * 64:
            raise ValueError("trying_delay must be >= 0 and below 64*T1")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    def initial(self, name: TimerName, reliable: bool) -> float | None:
        """First interval of timer ``name``, or ``None`` if it is not armed at all.

        ``None`` means the timer does not exist on this transport (A, E, G on a
        reliable one); ``0.0`` means it fires at once (D, I, J, K on a reliable one).
        """
        match name:
            case TimerName.A | TimerName.E | TimerName.G:
                return None if reliable else self.t1
            case TimerName.B | TimerName.F | TimerName.H | TimerName.L | TimerName.M:
                return self.timeout
            case TimerName.D:
                return 0.0 if reliable else self.timer_d_unreliable
            case TimerName.I | TimerName.K:
                return 0.0 if reliable else self.t4
            case TimerName.J:
                return 0.0 if reliable else self.timeout

    def next_interval(self, name: TimerName, previous: float) -> float:
        """Interval after a retransmit timer fired after ``previous`` seconds.

        Timer A doubles without cap (RFC 3261 s17.1.1.2); E and G double up to T2
        (s17.1.2.2, s17.2.1).  Any other timer is one-shot.
        """
        match name:
            case TimerName.A:
                return 2 * previous
            case TimerName.E | TimerName.G:
                return min(2 * previous, self.t2)
            case _:
                raise ValueError(f"timer {name.value} is one-shot; it has no next interval")
