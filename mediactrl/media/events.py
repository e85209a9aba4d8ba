"""Events the media engine reports upward (to the CFW/mixer control layer)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ActiveTalkers",
    "DtmfReceived",
    "EndpointBye",
    "EndpointTimedOut",
    "MediaEvent",
]


@dataclass(frozen=True, slots=True)
class ActiveTalkers:
    """The set of active talkers of a conference changed (RFC 6505 s4.2.4.1 feeds on it).

    Emitted only for conferences with an active-talkers subscription, at most once per
    subscription interval (s4.2.1.4.4.1); ``talkers`` are endpoint ids, sorted.
    """

    conference_id: str
    talkers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A participant sent a DTMF digit as RFC 4733 events (reported once, when it ended)."""

    endpoint_id: str
    digit: str
    duration_ms: int
    volume: int  # -dBm0
    end_seen: bool  # False when the end packets were lost and the digit timed out


@dataclass(frozen=True, slots=True)
class EndpointTimedOut:
    """No RTP from this endpoint for ``silent_for`` seconds (reported once per silence)."""

    endpoint_id: str
    silent_for: float


@dataclass(frozen=True, slots=True)
class EndpointBye:
    """The remote sent an RTCP BYE (RFC 3550 s6.6) for its source."""

    endpoint_id: str
    ssrc: int
    reason: str


MediaEvent = ActiveTalkers | DtmfReceived | EndpointTimedOut | EndpointBye
