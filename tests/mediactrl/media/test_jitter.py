"""Jitter buffer: reorder, duplicates, late packets, loss, underrun, overflow, restarts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.media.jitter import JitterBuffer, PushResult


def frame(n: int, samples: int = 160) -> np.ndarray:
    """A frame whose every sample carries its packet number, so order is visible."""
    return np.full(samples, n, dtype=np.int16)


def played(buffer: JitterBuffer, ticks: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(ticks):
        f = buffer.pop()
        out.append(None if f is None else int(f[0]) if f[0] == f[-1] else -1)
    return out


def test_waits_for_depth_then_plays_in_order() -> None:
    buffer = JitterBuffer(depth=2)
    buffer.push(1, 10, frame(10))
    assert buffer.pop() is None  # not primed yet
    buffer.push(1, 11, frame(11))
    assert played(buffer, 2) == [10, 11]


def test_reordered_packets_within_the_depth_play_in_sequence() -> None:
    buffer = JitterBuffer(depth=3)
    for seq in (12, 10, 11, 14, 13):
        buffer.push(1, seq, frame(seq))
    assert played(buffer, 5) == [10, 11, 12, 13, 14]
    assert buffer.stats.lost == 0


def test_duplicates_and_late_packets_are_dropped_and_counted() -> None:
    buffer = JitterBuffer(depth=2)
    assert buffer.push(1, 1, frame(1)) is PushResult.RESTARTED
    assert buffer.push(1, 2, frame(2)) is PushResult.QUEUED
    assert buffer.push(1, 2, frame(2)) is PushResult.DUPLICATE
    assert played(buffer, 1) == [1]
    assert buffer.push(1, 1, frame(1)) is PushResult.LATE
    assert (buffer.stats.duplicates, buffer.stats.late) == (1, 1)


def test_a_hole_with_successors_is_concealed_and_counted_lost() -> None:
    buffer = JitterBuffer(depth=2)
    for seq, value in ((1, 10), (2, 20), (3, 40), (4, 42), (8, 80)):
        buffer.push(1, seq, frame(value))
    # 5, 6 and 7 are lost: the first is bridged by 4 at half amplitude, the rest are silent.
    assert played(buffer, 5) == [10, 20, 40, 42, 21]
    buffer.push(1, 9, frame(90))
    assert played(buffer, 4) == [0, 0, 80, 90]
    assert buffer.stats.lost == 3


def test_underrun_plays_nothing_and_waits_to_refill() -> None:
    buffer = JitterBuffer(depth=2)
    buffer.push(1, 1, frame(1))
    buffer.push(1, 2, frame(2))
    assert played(buffer, 3) == [1, 2, None]
    assert buffer.stats.underruns == 1
    buffer.push(1, 5, frame(5))
    assert buffer.pop() is None  # refilling
    buffer.push(1, 6, frame(6))
    assert played(buffer, 2) == [5, 6]  # 3 and 4 never came: skipped, not waited for
    assert buffer.push(1, 3, frame(3)) is PushResult.LATE


def test_overflow_drops_the_oldest_so_latency_stays_bounded() -> None:
    buffer = JitterBuffer(depth=2, max_excess=2)
    for seq in range(1, 8):
        buffer.push(1, seq, frame(seq))
    # Trimmed to depth when depth + max_excess was exceeded (at seq 5), then refilled.
    assert len(buffer) == 4
    assert played(buffer, 5) == [4, 5, 6, 7, None]
    assert buffer.stats.overflow_drops == 3


def test_new_ssrc_restarts_the_buffer() -> None:
    buffer = JitterBuffer(depth=1)
    buffer.push(1, 100, frame(1))
    assert played(buffer, 1) == [1]
    assert buffer.push(2, 7, frame(2)) is PushResult.RESTARTED
    assert played(buffer, 1) == [2]
    assert buffer.stats.restarts == 1


def test_sequence_jump_beyond_max_dropout_restarts() -> None:
    buffer = JitterBuffer(depth=1)
    buffer.push(1, 100, frame(1))
    played(buffer, 1)
    assert buffer.push(1, 30000, frame(2)) is PushResult.RESTARTED
    assert played(buffer, 1) == [2]


def test_sequence_wrap_is_seamless() -> None:
    buffer = JitterBuffer(depth=2)
    for seq in (65534, 65535, 0, 1):
        buffer.push(1, seq, frame(seq % 100))
    assert played(buffer, 4) == [34, 35, 0, 1]
    assert buffer.stats.lost == 0


def test_10ms_packets_are_joined_into_20ms_frames() -> None:
    buffer = JitterBuffer(depth=2)
    for seq in range(4):
        buffer.push(1, seq, np.arange(80, dtype=np.int16) + 80 * seq)
    first, second = buffer.pop(), buffer.pop()
    assert first is not None and second is not None
    assert np.array_equal(first, np.arange(160))
    assert np.array_equal(second, np.arange(160, 320))


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(12))), st.integers(1, 4))
def test_any_arrival_order_within_a_burst_plays_everything_once_in_order(
    order: list[int], depth: int
) -> None:
    buffer = JitterBuffer(depth=depth, max_excess=20)
    for seq in order:
        buffer.push(9, 500 + seq, frame(seq))
    assert played(buffer, 12) == list(range(12))


def test_empty_packets_hold_their_sequence_number_without_adding_audio() -> None:
    # Telephone-events interleaved with audio in one RTP stream (RFC 4733) are pushed empty.
    buffer = JitterBuffer(depth=2)
    empty = np.zeros(0, np.int16)
    for seq, samples in ((1, frame(1)), (2, empty), (3, frame(3)), (4, empty), (5, frame(5))):
        buffer.push(1, seq, samples)
    assert played(buffer, 3) == [1, 3, 5]
    assert buffer.stats.lost == 0


def test_late_packets_deepen_an_adaptive_buffer_and_calm_gives_it_back() -> None:
    buffer = JitterBuffer(depth=1, max_depth=3, calm_frames=5)
    buffer.push(1, 1, frame(1))
    assert played(buffer, 1) == [1]
    buffer.push(1, 3, frame(3))
    assert played(buffer, 1) == [0]  # 2 missing when its turn came: concealed (1 // 2 == 0)
    assert buffer.push(1, 2, frame(2)) is PushResult.LATE
    assert buffer.depth == 2 and buffer.stats.depth_changes == 1
    # One frame of silence is inserted, so later packets get one more frame of slack.
    buffer.push(1, 4, frame(4))
    assert played(buffer, 3) == [None, 3, 4]
    for seq in range(5, 12):
        buffer.push(1, seq, frame(seq))
    # Five calm frames later one frame of delay is given back: packet 7 is dropped.
    assert played(buffer, 5) == [5, 6, 8, 9, 10]
    assert buffer.depth == 1 and buffer.stats.depth_changes == 2


def test_a_fixed_buffer_never_changes_depth() -> None:
    buffer = JitterBuffer(depth=2)
    for seq in (1, 2, 4):
        buffer.push(1, seq, frame(seq))
    played(buffer, 3)
    assert buffer.push(1, 3, frame(3)) is PushResult.LATE
    assert buffer.depth == 2 and buffer.stats.depth_changes == 0
