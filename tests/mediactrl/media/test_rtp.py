"""RTP header codec and per-source statistics (RFC 3550 s5.1, A.1, A.3, A.8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.media.errors import MalformedPacket
from mediactrl.media.rtp import RtpPacket, SequenceTracker, build_rtp, is_rtcp, parse_rtp

packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none()
    | st.tuples(
        st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4))
    ),
)


@settings(max_examples=200, deadline=None)
@given(packets)
def test_round_trip(packet: RtpPacket) -> None:
    assert parse_rtp(build_rtp(packet)) == packet


def test_fixed_header_layout() -> None:
    data = build_rtp(RtpPacket(8, 0x1234, 0x01020304, 0xDEADBEEF, b"\xd5" * 160, marker=True))
    assert data[:12] == bytes.fromhex("80 88 1234 01020304 deadbeef")
    assert len(data) == 172 and not is_rtcp(data)


def test_padding_is_removed() -> None:
    data = bytearray(build_rtp(RtpPacket(0, 1, 2, 3, b"abcd")))
    data[0] |= 0x20
    data += b"\x00\x00\x03"
    assert parse_rtp(bytes(data)).payload == b"abcd"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x80\x00\x00", "shorter than its header"),
        (bytes.fromhex("40 00 0001 00000000 00000000"), "version 1"),
        (bytes.fromhex("83 00 0001 00000000 00000000 00000001"), "CSRC list"),
        (bytes.fromhex("90 00 0001 00000000 00000000 0000"), "extension runs past"),
        (bytes.fromhex("90 00 0001 00000000 00000000 00000002 00000000"), "extension length"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 00"), "padding count 0"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 07"), "padding count 7"),
    ],
)
def test_malformed_packets_say_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(MalformedPacket, match=why):
        parse_rtp(data)


def test_rtcp_is_told_apart_on_a_multiplexed_port() -> None:
    assert is_rtcp(bytes.fromhex("80 c8 0006"))  # SR, PT 200
    assert not is_rtcp(bytes.fromhex("80 60 0006"))  # RTP PT 96


def test_tracker_extends_across_wrap_and_counts_loss() -> None:
    tracker = SequenceTracker(65530)
    extended = [tracker.update(s) for s in (65530, 65531, 65533, 65534, 65535, 0, 1, 3)]
    assert extended == [65530, 65531, 65533, 65534, 65535, 65536, 65537, 65539]
    assert tracker.expected == 10 and tracker.received == 8
    assert tracker.cumulative_lost == 2
    assert tracker.fraction_lost() == (2 << 8) // 10
    assert tracker.fraction_lost() == 0  # nothing new since the last report


def test_tracker_reorder_and_duplicates_do_not_advance_the_maximum() -> None:
    tracker = SequenceTracker(100)
    assert [tracker.update(s) for s in (100, 102, 101, 102)] == [100, 102, 101, 102]
    assert tracker.max_ext == 102
    assert tracker.cumulative_lost == -1  # a duplicate counts as received (A.3)


def test_tracker_restarts_only_after_two_sequential_packets_past_a_jump() -> None:
    tracker = SequenceTracker(10)
    tracker.update(10)
    assert tracker.update(40000) is None  # a single stray packet is ignored
    assert tracker.update(11) == 11
    assert tracker.update(20000) is None
    assert tracker.update(20001) == 20001
    assert tracker.restarts == 1 and tracker.expected == 1


def test_jitter_follows_the_a8_estimator() -> None:
    tracker = SequenceTracker(0)
    # Packets every 20 ms (160 units); the third arrives 10 ms late.
    arrivals = [(0, 0.0), (160, 0.020), (320, 0.050), (480, 0.060)]
    for seq, (ts, at) in enumerate(arrivals):
        tracker.update(seq)
        tracker.record_transit(ts, at)
    # D values: 0, 80, 80 -> J = 0, 5, 5 + (80 - 5) / 16
    assert tracker.jitter == pytest.approx(5 + 75 / 16)
