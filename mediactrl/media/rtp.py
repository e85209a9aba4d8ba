"""RTP packets (RFC 3550 s5.1) and per-source reception statistics (RFC 3550 s6.4.1, A.1, A.3, A.8).

Pure functions and plain objects: bytes in, values out, time passed in by the caller.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import MalformedPacket

__all__ = [
    "RtpPacket",
    "SequenceTracker",
    "build_rtp",
    "is_rtcp",
    "parse_rtp",
]

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")
_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000  # RFC 3550 A.1: a jump this far ahead is a restart, not loss
MAX_MISORDER = 100  # ... and this far behind, a duplicate or very late packet


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; CSRCs and the header extension are kept but not interpreted."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined 16 bits, data)


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a multiplexed port is RTCP: packet types 192-223 (RFC 5761 s4)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket:
    """Decode an RTP packet; raises MalformedPacket (the sender's fault) on any violation."""
    if len(data) < _HEADER.size:
        raise MalformedPacket(f"RTP packet of {len(data)} bytes is shorter than its header")
    first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise MalformedPacket(f"RTP version {first >> 6}, expected 2")
    offset = _HEADER.size
    csrc_count = first & 0x0F
    if len(data) < offset + 4 * csrc_count:
        raise MalformedPacket("RTP CSRC list runs past the end of the packet")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
    offset += 4 * csrc_count
    extension = None
    if first & 0x10:
        if len(data) < offset + 4:
            raise MalformedPacket("RTP header extension runs past the end of the packet")
        profile, words = struct.unpack_from("!HH", data, offset)
        offset += 4
        if len(data) < offset + 4 * words:
            raise MalformedPacket("RTP header extension length runs past the end of the packet")
        extension = (profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    end = len(data)
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > end:
            raise MalformedPacket(f"RTP padding count {padding} is impossible")
        end -= padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
    )


def build_rtp(packet: RtpPacket) -> bytes:
    """Encode an RTP packet (no padding)."""
    if not 0 <= packet.payload_type <= 127:
        raise ValueError(f"payload type {packet.payload_type} is not 7 bits")
    if len(packet.csrcs) > 15:
        raise ValueError("at most 15 CSRCs fit the CC field")
    first = (RTP_VERSION << 6) | len(packet.csrcs) | (0x10 if packet.extension else 0)
    second = packet.payload_type | (0x80 if packet.marker else 0)
    parts = [
        _HEADER.pack(
            first, second, packet.sequence & 0xFFFF, packet.timestamp & 0xFFFFFFFF, packet.ssrc
        )
    ]
    parts.extend(struct.pack("!I", c) for c in packet.csrcs)
    if packet.extension is not None:
        profile, ext = packet.extension
        if len(ext) % 4:
            raise ValueError("a header extension is a whole number of 32-bit words")
        parts.append(struct.pack("!HH", profile, len(ext) // 4) + ext)
    parts.append(packet.payload)
    return b"".join(parts)


class SequenceTracker:
    """Extended sequence numbers and loss/jitter statistics of one SSRC (RFC 3550 A.1, A.3, A.8).

    ``update`` returns the packet's extended (32-bit, wrap-free) sequence number, or None when
    the packet is to be ignored (far out of order, or the first of a suspected restart that a
    second consecutive packet has not yet confirmed).
    """

    def __init__(self, sequence: int, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.base_seq = sequence
        self.max_ext = sequence  # highest extended sequence number seen
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0  # in timestamp units, RFC 3550 A.8
        self._bad_seq: int | None = None
        self._transit: int | None = None
        self.restarts = 0

    def _restart(self, sequence: int) -> None:
        self.base_seq = sequence
        self.max_ext = sequence
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self._transit = None
        self.restarts += 1

    def update(self, sequence: int) -> int | None:
        delta = (sequence - self.max_ext) % _SEQ_MOD
        if self.received == 0 and sequence == self.max_ext:
            self.received = 1
            return self.max_ext
        if 0 < delta < MAX_DROPOUT:
            self.max_ext += delta
            self._bad_seq = None
        elif delta == 0 or delta >= _SEQ_MOD - MAX_MISORDER:
            self._bad_seq = None  # duplicate or reordered: counted, not advancing the max
            self.received += 1
            return self.max_ext - ((_SEQ_MOD - delta) % _SEQ_MOD)
        elif self._bad_seq is not None and sequence == self._bad_seq:
            # Two in a row after a big jump: the sender restarted (A.1).
            self._restart(sequence)
            self._bad_seq = None
            self.received = 1
            return self.max_ext
        else:
            self._bad_seq = (sequence + 1) % _SEQ_MOD
            return None
        self.received += 1
        return self.max_ext

    def record_transit(self, timestamp: int, arrival: float) -> None:
        """Fold one packet into the interarrival jitter (A.8); arrival in seconds."""
        transit = int(arrival * self.clock_rate) - timestamp
        transit = (transit + (1 << 31)) % (1 << 32) - (1 << 31)  # timestamps wrap at 2**32
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    @property
    def expected(self) -> int:
        return self.max_ext - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Packets expected minus received, clamped to the 24-bit signed field of s6.4.1."""
        return max(-(1 << 23), min(self.expected - self.received, (1 << 23) - 1))

    def fraction_lost(self) -> int:
        """Fraction lost since the previous call, as the 8-bit fixed point of s6.4.1 (A.3)."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = self.expected
        self.received_prior = self.received
        lost = expected_interval - received_interval
        if expected_interval == 0 or lost <= 0:
            return 0
        return (lost << 8) // expected_interval
