"""RTCP codecs (RFC 3550 s6): SR/RR/SDES/BYE round trips, field layout and malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.media.errors import MalformedPacket
from mediactrl.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    Sdes,
    SenderReport,
    UnknownRtcp,
    build_compound,
    middle_ntp,
    ntp_from_unix,
    parse_compound,
    unix_from_ntp,
)

u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
reports = st.lists(blocks, max_size=3).map(tuple)


@settings(max_examples=100, deadline=None)
@given(
    st.builds(SenderReport, u32, st.integers(0, (1 << 64) - 1), u32, u32, u32, reports)
    | st.builds(ReceiverReport, u32, reports),
    st.binary(min_size=1, max_size=40),
    st.binary(max_size=30),
)
def test_compound_round_trip(
    first: SenderReport | ReceiverReport, cname: bytes, reason: bytes
) -> None:
    packets = (first, Sdes(((first.ssrc, ((1, cname),)),)), Bye((first.ssrc,), reason))
    data = build_compound(*packets)
    assert len(data) % 4 == 0
    assert parse_compound(data) == packets


def test_sender_report_field_layout() -> None:
    wall = 1_700_000_000.25
    sr = SenderReport(0x11223344, ntp_from_unix(wall), 0xAABBCCDD, 50, 8000)
    data = build_compound(sr)
    assert data[:4] == bytes.fromhex("80 c8 0006")  # V=2, RC=0, PT=200, length 6 words
    ssrc, ntp_hi, ntp_lo, rtp_ts, count, octets = struct.unpack("!IIIIII", data[4:])
    assert ntp_hi == 1_700_000_000 + 2_208_988_800  # seconds since 1900
    assert ntp_lo == 1 << 30  # a quarter second
    assert (ssrc, rtp_ts, count, octets) == (0x11223344, 0xAABBCCDD, 50, 8000)
    assert unix_from_ntp(sr.ntp_timestamp) == pytest.approx(wall)
    assert middle_ntp(sr.ntp_timestamp) == ((ntp_hi & 0xFFFF) << 16) | (ntp_lo >> 16)


def test_negative_cumulative_loss_uses_24_bit_twos_complement() -> None:
    block = ReportBlock(1, 0, -2, 0, 0, 0, 0)
    data = build_compound(ReceiverReport(9, (block,)))
    assert data[12:16] == bytes.fromhex("00 ff fffe")
    assert parse_compound(data)[0] == ReceiverReport(9, (block,))


def test_unknown_packet_types_are_kept_opaque() -> None:
    app = UnknownRtcp(204, 1, b"nameDATA")
    assert parse_compound(build_compound(ReceiverReport(1), app))[1] == app


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x80", "has no header"),
        (bytes.fromhex("40 c9 0001 00000001"), "version 1"),
        (bytes.fromhex("80 c9 0005 00000001"), "runs past the datagram"),
        (bytes.fromhex("81 c9 0001 00000001"), "report blocks run past"),
        (bytes.fromhex("80 ca 0001 00000001"), "must start with an SR or RR"),
        (bytes.fromhex("80 c8 0001 00000001"), "SR shorter"),
        (bytes.fromhex("80 c9 0001 00000001 81ca0002 00000001 0105 6162"), "SDES item"),
        (bytes.fromhex("80 c9 0001 00000001 00"), "trailing bytes"),
    ],
)
def test_malformed_compound_packets_are_rejected(data: bytes, why: str) -> None:
    with pytest.raises(MalformedPacket, match=why):
        parse_compound(data)


def test_sdes_cname_lookup() -> None:
    sdes = Sdes(((5, ((1, b"a@host"), (2, b"name"))),))
    assert sdes.cname(5) == b"a@host" and sdes.cname(6) is None


def test_a_compound_must_lead_with_a_report() -> None:
    with pytest.raises(ValueError, match="starts with an SR or RR"):
        build_compound(Bye((1,)))
