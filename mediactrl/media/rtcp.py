"""RTCP (RFC 3550 s6): sender/receiver reports, SDES CNAME and BYE as pure codecs.

``build_compound`` makes the compound packet every report interval needs (SR or RR first,
then an SDES with CNAME, s6.1); ``parse_compound`` splits a received compound packet into
frozen report objects, rejecting malformed ones with MalformedPacket.  Wall-clock times are
NTP timestamps (s4): 64-bit, seconds since 1900 in the high word.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import MalformedPacket

__all__ = [
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpPacket",
    "Sdes",
    "SenderReport",
    "UnknownRtcp",
    "build_compound",
    "middle_ntp",
    "ntp_from_unix",
    "parse_compound",
    "unix_from_ntp",
]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
SDES_CNAME = 1
_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_BLOCK = struct.Struct("!IB3sIIII")


def ntp_from_unix(unix_time: float) -> int:
    """64-bit NTP timestamp of a POSIX time."""
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * (1 << 32))
    return ((seconds + _NTP_UNIX_OFFSET) % (1 << 32)) << 32 | fraction


def unix_from_ntp(ntp: int) -> float:
    return (ntp >> 32) - _NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def middle_ntp(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as LSR carries them (s6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception report about one source (s6.4.1)."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point: lost/expected * 256
    cumulative_lost: int  # 24-bit signed
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # timestamp units
    last_sr: int  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    delay_since_last_sr: int  # units of 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (s6.4.1)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (s6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class Sdes:
    """SDES (s6.5): per source, its (item type, value) pairs."""

    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]

    def cname(self, ssrc: int) -> bytes | None:
        for chunk_ssrc, items in self.chunks:
            if chunk_ssrc == ssrc:
                for kind, value in items:
                    if kind == SDES_CNAME:
                        return value
        return None


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (s6.6)."""

    ssrcs: tuple[int, ...]
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """A well-framed RTCP packet of a type this engine does not interpret (e.g. APP, RTPFB)."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | UnknownRtcp


def _header(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise ValueError("an RTCP packet body is a whole number of 32-bit words")
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def _pack_block(block: ReportBlock) -> bytes:
    lost = block.cumulative_lost & 0xFFFFFF
    return _BLOCK.pack(
        block.ssrc,
        block.fraction_lost & 0xFF,
        lost.to_bytes(3, "big"),
        block.highest_sequence & 0xFFFFFFFF,
        block.jitter & 0xFFFFFFFF,
        block.last_sr & 0xFFFFFFFF,
        block.delay_since_last_sr & 0xFFFFFFFF,
    )


def _encode_one(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        body = struct.pack(
            "!IQIII",
            packet.ssrc,
            packet.ntp_timestamp,
            packet.rtp_timestamp & 0xFFFFFFFF,
            packet.packet_count & 0xFFFFFFFF,
            packet.octet_count & 0xFFFFFFFF,
        ) + b"".join(_pack_block(b) for b in packet.reports)
        return _header(PT_SR, len(packet.reports), body)
    if isinstance(packet, ReceiverReport):
        body = struct.pack("!I", packet.ssrc) + b"".join(_pack_block(b) for b in packet.reports)
        return _header(PT_RR, len(packet.reports), body)
    if isinstance(packet, Sdes):
        chunks = []
        for ssrc, items in packet.chunks:
            chunk = struct.pack("!I", ssrc) + b"".join(
                bytes((kind, len(value))) + value for kind, value in items
            )
            chunk += b"\x00" * (4 - len(chunk) % 4)  # END item plus padding to a word
            chunks.append(chunk)
        return _header(PT_SDES, len(packet.chunks), b"".join(chunks))
    if isinstance(packet, Bye):
        body = b"".join(struct.pack("!I", s) for s in packet.ssrcs)
        if packet.reason:
            reason = bytes((len(packet.reason),)) + packet.reason
            body += reason + b"\x00" * (-len(reason) % 4)
        return _header(PT_BYE, len(packet.ssrcs), body)
    return _header(packet.packet_type, packet.count, packet.body)


def build_compound(*packets: RtcpPacket) -> bytes:
    """Concatenate RTCP packets into one compound datagram (s6.1)."""
    if packets and not isinstance(packets[0], SenderReport | ReceiverReport):
        raise ValueError("a compound RTCP packet starts with an SR or RR (s6.1)")
    return b"".join(_encode_one(p) for p in packets)


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if len(body) < offset + count * _BLOCK.size:
        raise MalformedPacket("RTCP report blocks run past the packet length")
    blocks = []
    for i in range(count):
        ssrc, fraction, lost3, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(
            body, offset + i * _BLOCK.size
        )
        lost = int.from_bytes(lost3, "big", signed=True)
        blocks.append(ReportBlock(ssrc, fraction, lost, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_sdes(body: bytes, count: int) -> Sdes:
    chunks = []
    offset = 0
    for _ in range(count):
        if len(body) < offset + 4:
            raise MalformedPacket("SDES chunk runs past the packet length")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise MalformedPacket("SDES chunk lacks its END item")
            kind = body[offset]
            if kind == 0:
                offset = (offset + 4) & ~3  # skip END and the padding to the next word
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise MalformedPacket("SDES item runs past the packet length")
            length = body[offset + 1]
            items.append((kind, bytes(body[offset + 2 : offset + 2 + length])))
            offset += 2 + length
        chunks.append((ssrc, tuple(items)))
    return Sdes(tuple(chunks))


def parse_compound(data: bytes) -> tuple[RtcpPacket, ...]:
    """Split and decode a compound RTCP packet; MalformedPacket if any part is malformed."""
    packets: list[RtcpPacket] = []
    offset = 0
    if len(data) < 4:
        raise MalformedPacket(f"RTCP datagram of {len(data)} bytes has no header")
    while offset < len(data):
        if len(data) < offset + 4:
            raise MalformedPacket("trailing bytes after the last RTCP packet")
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != 2:
            raise MalformedPacket(f"RTCP version {first >> 6}, expected 2")
        end = offset + 4 + 4 * words
        if end > len(data):
            raise MalformedPacket("RTCP length field runs past the datagram")
        body = data[offset + 4 : end]
        if first & 0x20:  # padding only legal on the last packet (s6.4.1)
            if end != len(data) or not body or body[-1] == 0 or body[-1] > len(body):
                raise MalformedPacket("RTCP padding is impossible")
            body = body[: -body[-1]]
        count = first & 0x1F
        if packet_type == PT_SR:
            if len(body) < 24:
                raise MalformedPacket("SR shorter than its sender info")
            ssrc, ntp, rtp_ts, packets_sent, octets = struct.unpack_from("!IQIII", body)
            blocks = _parse_blocks(body, 24, count)
            packets.append(SenderReport(ssrc, ntp, rtp_ts, packets_sent, octets, blocks))
        elif packet_type == PT_RR:
            if len(body) < 4:
                raise MalformedPacket("RR without its SSRC")
            (ssrc,) = struct.unpack_from("!I", body)
            packets.append(ReceiverReport(ssrc, _parse_blocks(body, 4, count)))
        elif packet_type == PT_SDES:
            packets.append(_parse_sdes(body, count))
        elif packet_type == PT_BYE:
            if len(body) < 4 * count:
                raise MalformedPacket("BYE SSRC list runs past the packet length")
            ssrcs = struct.unpack_from(f"!{count}I", body)
            reason = b""
            if len(body) > 4 * count:
                length = body[4 * count]
                reason = bytes(body[4 * count + 1 : 4 * count + 1 + length])
            packets.append(Bye(tuple(ssrcs), reason))
        else:
            packets.append(UnknownRtcp(packet_type, count, bytes(body)))
        offset = end
    if not isinstance(packets[0], SenderReport | ReceiverReport):
        raise MalformedPacket("a compound RTCP packet must start with an SR or RR (s6.1)")
    return tuple(packets)
