"""RFC 4733 telephone-events: payload codec, a receiver that reports each digit once, tones.

``DtmfReceiver`` follows RFC 4733 s2.5.2: an event is identified by its RTP timestamp (its
start); interim packets only grow its duration; the first packet with the E bit reports it,
and the retransmissions of that final packet (s2.5.1.4) are recognised and dropped.  An event
whose end packets were all lost is reported when the next event starts or when no packet has
come for ``soft_timeout`` seconds, flagged ``end_seen=False``.  Long events split into
0xFFFF-duration segments (s2.5.1.3) are joined back into one digit.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import MalformedPacket
from .rtp import RtpPacket

__all__ = [
    "DTMF_DIGITS",
    "DigitReport",
    "DtmfReceiver",
    "TelephoneEvent",
    "build_events",
    "dtmf_tone",
    "parse_events",
]

# RFC 4733 s3.2, Table 3: event codes 0-15.
DTMF_DIGITS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF
_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
_FREQUENCIES = {
    key: (_ROWS[r], _COLUMNS[c]) for r, keys in enumerate(_KEYPAD) for c, key in enumerate(keys)
}


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One named event of a telephone-event payload (RFC 4733 s2.3, Figure 1)."""

    event: int
    end: bool
    volume: int  # 0..63, as -dBm0
    duration: int  # timestamp units since the event (segment) started

    @property
    def digit(self) -> str | None:
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


def parse_events(payload: bytes) -> tuple[TelephoneEvent, ...]:
    """Decode a telephone-event payload; several events may be packed in one (s2.5.1.5)."""
    if not payload or len(payload) % 4:
        raise MalformedPacket(
            f"telephone-event payload of {len(payload)} bytes is not a multiple of 4"
        )
    events = []
    for offset in range(0, len(payload), 4):
        event, flags, duration = _EVENT.unpack_from(payload, offset)
        events.append(TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration))
    return tuple(events)


def build_events(*events: TelephoneEvent) -> bytes:
    """Encode telephone events (the R bit is always 0, as s2.3.4 requires of senders)."""
    return b"".join(
        _EVENT.pack(e.event, (0x80 if e.end else 0) | (e.volume & 0x3F), e.duration) for e in events
    )


@dataclass(frozen=True, slots=True)
class DigitReport:
    """A completed DTMF digit from one source."""

    digit: str
    duration: int  # timestamp units
    volume: int  # -dBm0
    ssrc: int
    start_timestamp: int
    end_seen: bool


@dataclass(slots=True)
class _Current:
    ssrc: int
    event: int
    start: int  # RTP timestamp of the event's first segment
    segment_start: int
    duration: int  # of the current segment
    earlier_segments: int  # sum of full segments before the current one
    volume: int
    last_packet: float


class DtmfReceiver:
    """Turns a source's telephone-event packets into one DigitReport per digit."""

    def __init__(self, soft_timeout: float = 0.5, remember: int = 16) -> None:
        self.soft_timeout = soft_timeout
        self._current: _Current | None = None
        self._reported: deque[tuple[int, int, int]] = deque(maxlen=remember)
        self.non_dtmf_events = 0

    @property
    def active_digit(self) -> str | None:
        """The digit being pressed now (between its first packet and its report)."""
        return DTMF_DIGITS[self._current.event] if self._current is not None else None

    def _finish(self, end_seen: bool) -> DigitReport:
        cur = self._current
        assert cur is not None
        self._current = None
        self._reported.append((cur.ssrc, cur.segment_start, cur.event))
        return DigitReport(
            digit=DTMF_DIGITS[cur.event],
            duration=cur.earlier_segments + cur.duration,
            volume=cur.volume,
            ssrc=cur.ssrc,
            start_timestamp=cur.start,
            end_seen=end_seen,
        )

    def receive(self, packet: RtpPacket, now: float) -> list[DigitReport]:
        """Fold in one telephone-event packet; returns the digits it completes."""
        reports: list[DigitReport] = []
        start = packet.timestamp
        for event in parse_events(packet.payload):
            event_start, start = start, (start + event.duration) & 0xFFFFFFFF
            if event.digit is None:
                self.non_dtmf_events += 1
                continue
            key = (packet.ssrc, event_start, event.event)
            if key in self._reported:
                continue  # a retransmitted final packet (s2.5.1.4) or a late interim one
            cur = self._current
            if cur is not None and (cur.ssrc, cur.segment_start, cur.event) != key:
                continued = (
                    cur.ssrc == packet.ssrc
                    and cur.event == event.event
                    and cur.duration == _MAX_DURATION
                    and event_start == (cur.segment_start + _MAX_DURATION) & 0xFFFFFFFF
                )
                if continued:  # next segment of a long event (s2.5.2.3)
                    cur.earlier_segments += _MAX_DURATION
                    cur.segment_start = event_start
                    cur.duration = 0
                else:
                    reports.append(self._finish(end_seen=False))
                    cur = None
            if cur is None:
                cur = self._current = _Current(
                    packet.ssrc, event.event, event_start, event_start, 0, 0, event.volume, now
                )
            cur.duration = max(cur.duration, event.duration)
            cur.volume = event.volume
            cur.last_packet = now
            if event.end:
                reports.append(self._finish(end_seen=True))
        return reports

    def expire(self, now: float) -> list[DigitReport]:
        """Report a digit whose packets stopped without an E bit (s2.5.2.5, soft state)."""
        cur = self._current
        if cur is not None and now - cur.last_packet > self.soft_timeout:
            return [self._finish(end_seen=False)]
        return []


def dtmf_tone(
    digit: str, first_sample: int, count: int, level: float = 4000.0, rate: int = 8000
) -> npt.NDArray[np.float32]:
    """``count`` samples of a digit's dual tone, continuing from sample ``first_sample``."""
    if digit not in _FREQUENCIES:
        raise ValueError(f"{digit!r} is not a DTMF digit")
    low, high = _FREQUENCIES[digit]
    t = (np.arange(count, dtype=np.float64) + first_sample) / rate
    tone = np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)
    return (level * tone).astype(np.float32)
