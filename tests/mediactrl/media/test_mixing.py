"""Mixer arithmetic, RFC 6505 direction mapping, talkers and the tick clock (all pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mediactrl.media.clock import TickClock
from mediactrl.media.errors import MediaUsageError
from mediactrl.media.mixer import (
    Flow,
    JoinSettings,
    db_to_gain,
    loudest,
    mix_many,
    mix_minus,
    saturate,
)
from mediactrl.media.talkers import TalkerDetector, frame_levels_dbov
from mediactrl.mixer.model import Clamp, Direction, Stream, Volume, VolumeControlType

ONES = np.ones(3, np.float32)


def test_each_member_hears_the_sum_of_the_others() -> None:
    x = np.array([[1, 2], [10, 20], [100, 200]], np.float32)
    assert mix_minus(x, ONES, ONES).tolist() == [[110, 220], [101, 202], [11, 22]]


@settings(max_examples=50, deadline=None)
@given(arrays(np.int16, st.tuples(st.integers(1, 12), st.just(16))))
def test_total_minus_own_equals_the_explicit_sum_of_others(x: np.ndarray) -> None:
    n = x.shape[0]
    up = np.linspace(0.0, 1.5, n).astype(np.float32)
    down = np.linspace(1.0, 0.5, n).astype(np.float32)
    fast = mix_minus(x.astype(np.float32), up, down)
    routing = (np.ones((n, n)) - np.eye(n)).astype(np.float32)
    explicit = mix_minus(x.astype(np.float32), up, down, routing)
    x64 = x.astype(np.float64)
    reference = np.zeros((n, 16))
    for j in range(n):
        for i in range(n):
            if i != j:
                reference[j] += down[j] * up[i] * x64[i]
    assert np.allclose(fast, reference, atol=0.05 * n)
    assert np.allclose(explicit, reference, atol=0.05 * n)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 7), min_size=1, max_size=5, unique=True), min_size=1, max_size=6
    ),
    st.integers(0, 2**32 - 1),
)
def test_many_conferences_at_once_equal_one_at_a_time(
    conferences: list[list[int]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(-3000, 3000, size=(8, 16)).astype(np.int16)
    slots = np.array([s for conf in conferences for s in conf], np.intp)
    index = np.array([k for k, conf in enumerate(conferences) for _ in conf], np.intp)
    starts = np.cumsum([0] + [len(c) for c in conferences[:-1]]).astype(np.intp)
    up = rng.uniform(0, 2, len(slots)).astype(np.float32)
    down = rng.uniform(0, 2, len(slots)).astype(np.float32)
    batched = np.zeros((8, 16), np.float32)
    mix_many(
        inputs, batched, slots=slots, conference=index, starts=starts, upstream=up, downstream=down
    )
    one_by_one = np.zeros((8, 16), np.float32)
    for k in range(len(conferences)):
        mine = index == k
        one_by_one[slots[mine]] += mix_minus(
            inputs[slots[mine]].astype(np.float32), up[mine], down[mine]
        )
    assert np.allclose(batched, one_by_one, atol=0.05)


def test_loud_sums_saturate_instead_of_wrapping() -> None:
    x = np.full((3, 4), 30000, np.float32)
    x[2] = -30000
    out = saturate(mix_minus(x, ONES, ONES))
    assert out.dtype == np.int16
    assert out[2].tolist() == [32767] * 4  # 60000 clipped
    assert out[0].tolist() == [0] * 4
    assert saturate(np.array([[-40000.0, 0.4, -0.6]], np.float32)).tolist() == [[-32768, 0, -1]]


def test_upstream_and_downstream_gains_apply_per_member() -> None:
    x = np.array([[1000], [1000], [1000]], np.float32)
    up = np.array([1.0, 0.0, db_to_gain(-6.0206)], np.float32)  # member 1 is not heard
    down = np.array([1.0, 1.0, 0.0], np.float32)  # member 2 hears nothing
    out = mix_minus(x, up, down)
    assert out[:, 0] == pytest.approx([500.0, 1500.0, 0.0], abs=0.1)


def test_pair_routing_lets_a_coach_whisper_to_one_member_only() -> None:
    x = np.array([[100], [200], [400]], np.float32)  # customer, agent, coach
    routing = np.ones((3, 3), np.float32) - np.eye(3, dtype=np.float32)
    routing[0, 2] = 0.0  # the customer does not hear the coach
    out = mix_minus(x, ONES, ONES, routing)
    assert out[:, 0].tolist() == [200.0, 500.0, 300.0]


@pytest.mark.parametrize(
    ("direction", "talks", "listens"),
    [
        (Direction.SENDRECV, True, True),
        (Direction.SENDONLY, True, False),
        (Direction.RECVONLY, False, True),
        (Direction.INACTIVE, False, False),
    ],
)
def test_direction_is_relative_to_the_connection_as_id1(
    direction: Direction, talks: bool, listens: bool
) -> None:
    settings_ = JoinSettings.from_direction(direction)
    assert (settings_.upstream.gain > 0, settings_.downstream.gain > 0) == (talks, listens)
    swapped = JoinSettings.from_streams([Stream("audio", direction=direction)], False)
    assert (swapped.upstream.gain > 0, swapped.downstream.gain > 0) == (listens, talks)


def test_rfc6505_example_with_one_volume_per_direction() -> None:
    # s4.2.2.5: sendonly -3 dB (connection to conference), recvonly +3 dB (back).
    streams = [
        Stream(
            "audio", direction=Direction.SENDONLY, volume=Volume(VolumeControlType.SETGAIN, "-3")
        ),
        Stream(
            "audio", direction=Direction.RECVONLY, volume=Volume(VolumeControlType.SETGAIN, "+3")
        ),
    ]
    s = JoinSettings.from_streams(streams)
    assert (s.upstream.gain_db, s.downstream.gain_db) == (-3.0, 3.0)


def test_single_one_way_stream_leaves_the_other_direction_inactive() -> None:
    s = JoinSettings.from_streams([Stream("audio", direction=Direction.RECVONLY)])
    assert not s.upstream.enabled and s.downstream.enabled


def test_no_audio_stream_means_sendrecv_and_video_is_ignored() -> None:
    s = JoinSettings.from_streams([Stream("video", direction=Direction.INACTIVE)])
    assert s.upstream.enabled and s.downstream.enabled


def test_mute_then_setgain_unmutes_as_s4_2_2_5_1_says() -> None:
    muted = JoinSettings.from_streams(
        [Stream("audio", volume=Volume(VolumeControlType.SETSTATE, "mute"))]
    )
    assert muted.upstream.gain == 0 and muted.downstream.gain == 0
    louder = JoinSettings.from_streams(
        [Stream("audio", volume=Volume(VolumeControlType.SETGAIN, "+3"))], previous=muted
    )
    assert not louder.upstream.muted and louder.upstream.gain == pytest.approx(db_to_gain(3))


def test_clamp_applies_to_what_the_connection_sends() -> None:
    s = JoinSettings.from_streams([Stream("audio", clamp=Clamp())])
    assert s.upstream.clamp_dtmf and not s.downstream.clamp_dtmf
    assert not JoinSettings.from_streams([Stream("audio")]).upstream.clamp_dtmf


@pytest.mark.parametrize(
    ("streams", "status"),
    [
        ([Stream("audio"), Stream("audio", direction=Direction.SENDONLY)], 407),
        ([Stream("audio", volume=Volume(VolumeControlType.AUTOMATIC, "-20"))], 422),
        ([Stream("audio", volume=Volume(VolumeControlType.SETGAIN, "loud"))], 400),
        ([Stream("audio", volume=Volume(VolumeControlType.SETGAIN, "inf"))], 400),
        ([Stream("audio", volume=Volume(VolumeControlType.SETSTATE, "off"))], 400),
    ],
)
def test_unusable_streams_answer_the_rfc6505_status(streams: list[Stream], status: int) -> None:
    with pytest.raises(MediaUsageError) as caught:
        JoinSettings.from_streams(streams)
    assert caught.value.status == status


def test_nbest_keeps_the_n_loudest_eligible_sources() -> None:
    levels = np.array([-10.0, -5.0, -50.0, -1.0, -20.0])
    eligible = np.array([True, True, True, False, True])
    assert loudest(levels, eligible, 2).tolist() == [True, True, False, False, False]
    assert loudest(levels, eligible, 0).tolist() == eligible.tolist()
    assert loudest(levels, eligible, 9).tolist() == eligible.tolist()


def test_gain_conversion() -> None:
    assert db_to_gain(0) == 1.0 and db_to_gain(-math.inf) == 0.0
    assert db_to_gain(20) == pytest.approx(10.0)
    assert Flow(muted=True).gain == 0.0 and Flow(enabled=False).gain == 0.0


# ----------------------------------------------------------------- talkers
def test_levels_in_dbov() -> None:
    full = np.full((1, 160), 32767, np.int16)
    silent = np.zeros((1, 160), np.int16)
    levels = frame_levels_dbov(np.vstack([full, silent]))
    assert levels[0] == pytest.approx(0.0, abs=0.01) and levels[1] == -127.0


def test_talker_needs_attack_frames_and_keeps_hangover() -> None:
    detector: TalkerDetector[str] = TalkerDetector(threshold_dbov=-40, attack=2, hangover=3)
    assert detector.update([("a", -10.0), ("b", -60.0)]) == frozenset()
    assert detector.update([("a", -10.0), ("b", -10.0)]) == {"a"}
    assert detector.update([("a", -60.0), ("b", -10.0)]) == {"a", "b"}
    detector.update([("a", -60.0), ("b", -60.0)])
    assert detector.update([("a", -60.0), ("b", -60.0)]) == {"b"}  # a: 3 quiet frames
    assert detector.update([("b", -60.0)]) == frozenset()
    assert detector.update([]) == frozenset()


def test_a_source_leaving_the_mix_stops_being_a_talker_at_once() -> None:
    detector: TalkerDetector[str] = TalkerDetector(attack=1, hangover=50)
    assert detector.update([("a", 0.0)]) == {"a"}
    assert detector.update([]) == frozenset()


# ----------------------------------------------------------------- clock
def test_deadlines_are_absolute_and_never_drift() -> None:
    clock = TickClock(start=100.0, period=0.02)
    now = 100.0
    for k in range(1000):
        now = clock.deadline(k) + 0.003  # every wake-up 3 ms late
        assert list(clock.due(now)) == [k]
    assert clock.next_deadline == pytest.approx(100.0 + 1000 * 0.02)
    assert clock.late_ticks == 0 and clock.ticks_run == 1000


def test_early_wake_up_runs_nothing() -> None:
    clock = TickClock(start=0.0, period=0.02)
    assert list(clock.due(0.0)) == [0]
    assert list(clock.due(0.019)) == []


def test_late_ticks_are_counted_and_caught_up_within_a_bound() -> None:
    clock = TickClock(start=0.0, period=0.02, max_catch_up=3)
    assert list(clock.due(0.0)) == [0]
    assert list(clock.due(0.065)) == [1, 2, 3]  # 1 and 2 are late, 3 on time
    assert clock.late_ticks == 2
    assert list(clock.due(0.5)) == [23, 24, 25]  # 4..22 skipped
    assert clock.skipped_ticks == 19
    assert clock.late_ticks == 2 + 19 + 2
    assert clock.next_deadline == pytest.approx(0.52)
