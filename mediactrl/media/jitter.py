"""A jitter buffer per source (pure: packets in, 20 ms frames out, no clock).

The buffer holds decoded packets keyed by an extended sequence number and plays them out in
sequence order, one frame per mixer tick:

* it starts playing once ``depth`` packets are queued (the reorder/jitter allowance);
* a packet arriving after its turn was played is *late* and dropped; one already queued is a
  *duplicate* and dropped;
* a hole whose successors are queued when its turn comes is *lost*: the frame is concealed
  (the previous packet at half amplitude, silence for further losses in a row) and play
  moves on;
* an empty buffer is an *underrun*: it plays silence and waits for ``depth`` packets again;
* more than ``depth + max_excess`` queued packets (a sender running fast, or a burst) drops the
  oldest down to ``depth``, so latency never creeps up;
* a new SSRC, or a sequence jump beyond RFC 3550 A.1's MAX_DROPOUT/MAX_MISORDER, restarts it.

With ``max_depth`` above ``depth`` the depth adapts: each late packet deepens the buffer by
one frame (up to ``max_depth``, by playing one frame of silence), and ``calm_frames`` frames
without a late packet give one frame back (by dropping the oldest queued packet), down to the
initial depth.  Lateness, not underruns, drives it: a sender that stops talking (silence
suppression) underruns without jitter.

Frames are sample-based, so 10, 20 or 30 ms packets all yield 20 ms frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from .rtp import MAX_DROPOUT, MAX_MISORDER

__all__ = ["JitterBuffer", "JitterStats", "PushResult"]

Samples = npt.NDArray[np.int16]


class PushResult(Enum):
    """What became of a pushed packet."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    LATE = "late"
    RESTARTED = "restarted"  # queued as the first packet of a new source or sequence


@dataclass(slots=True)
class JitterStats:
    """Counters since creation; restarts keep counting."""

    queued: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    underruns: int = 0
    overflow_drops: int = 0
    restarts: int = 0
    depth_changes: int = 0


class JitterBuffer:
    """Reorders one source's packets by sequence number and plays fixed-size frames."""

    def __init__(
        self,
        depth: int = 2,
        max_excess: int = 6,
        frame_samples: int = 160,
        max_depth: int | None = None,
        calm_frames: int = 500,
    ) -> None:
        if depth < 1 or max_excess < 0 or frame_samples < 1:
            raise ValueError("depth >= 1, max_excess >= 0 and frame_samples >= 1 are required")
        if max_depth is not None and max_depth < depth:
            raise ValueError("max_depth must be at least depth")
        self.depth = depth
        self.min_depth = depth
        self.max_depth = max_depth or depth  # > depth: adaptive (see the module docstring)
        self.calm_frames = calm_frames
        self._calm = 0  # frames played since the last late packet
        self._stall = 0  # frames of silence still to insert to deepen the buffer
        self.max_excess = max_excess
        self.frame_samples = frame_samples
        self.stats = JitterStats()
        self.ssrc: int | None = None
        self._packets: dict[int, Samples] = {}
        self._highest = 0  # extended sequence number of the newest packet queued
        self._next: int | None = None  # extended sequence number to play next
        self._primed = False
        self._resync = False  # primed, nothing played yet: start from the oldest queued
        self._pending: Samples = np.zeros(0, np.int16)
        self._last: Samples = np.zeros(frame_samples, np.int16)  # last audio packet played
        self._losses_in_a_row = 0

    def __len__(self) -> int:
        return len(self._packets)

    def _restart(self, ssrc: int, sequence: int) -> None:
        self.ssrc = ssrc
        self._packets.clear()
        self._highest = sequence
        self._next = None
        self._primed = False
        self._pending = np.zeros(0, np.int16)

    def push(self, ssrc: int, sequence: int, samples: Samples) -> PushResult:
        """Queue one decoded packet of ``ssrc`` with 16-bit RTP sequence number ``sequence``."""
        result = PushResult.QUEUED
        if self.ssrc != ssrc:
            if self.ssrc is not None:
                self.stats.restarts += 1
            self._restart(ssrc, sequence)
            result = PushResult.RESTARTED
        delta = (sequence - self._highest) % 65536
        if delta >= 32768:
            delta -= 65536
        if delta >= MAX_DROPOUT or delta < -MAX_MISORDER:
            self.stats.restarts += 1
            self._restart(ssrc, sequence)
            delta = 0
            result = PushResult.RESTARTED
        ext = self._highest + delta
        if self._next is not None and ext < self._next:
            self.stats.late += 1
            if self.depth < self.max_depth:
                # Arrived after its turn: the network jitters more than we buffer.
                self.depth += 1
                self._stall += 1
                self.stats.depth_changes += 1
            self._calm = 0
            return PushResult.LATE
        if ext in self._packets:
            self.stats.duplicates += 1
            return PushResult.DUPLICATE
        self._packets[ext] = samples
        self._highest = max(self._highest, ext)
        self.stats.queued += 1
        if not self._primed and len(self._packets) >= self.depth:
            self._primed = True
            self._resync = True
        if len(self._packets) > self.depth + self.max_excess:
            self._trim()
        return result

    def _trim(self) -> None:
        while len(self._packets) > self.depth:
            oldest = min(self._packets)
            del self._packets[oldest]
            self.stats.overflow_drops += 1
            if not self._resync:
                self._next = oldest + 1

    def _conceal(self) -> Samples:
        """A lost packet: its predecessor again at half amplitude, then silence (a click-free
        bridge over single losses that does not turn a long gap into a buzz)."""
        self._losses_in_a_row += 1
        if self._losses_in_a_row == 1:
            return (self._last // 2).astype(np.int16)
        return np.zeros(len(self._last), np.int16)

    def pop(self) -> Samples | None:
        """The next frame of ``frame_samples`` samples, or None when nothing is playing."""
        if not self._primed:
            return None
        if self._stall:
            self._stall -= 1  # play nothing now, so everything after plays one frame later
            return None
        self._calm += 1
        if self.depth > self.min_depth and self._calm >= self.calm_frames and len(self) > 1:
            # Long calm: give back one frame of delay by dropping the oldest queued packet.
            self._calm = 0
            self.depth -= 1
            self.stats.depth_changes += 1
            oldest = min(self._packets)
            del self._packets[oldest]
            if not self._resync:
                self._next = oldest + 1
        if self._resync:
            # After an underrun, what never came is skipped rather than waited for.
            self._resync = False
            self._next = min(self._packets)
        parts = [self._pending] if len(self._pending) else []
        have = len(self._pending)
        while have < self.frame_samples:
            if not self._packets:
                self.stats.underruns += 1
                self._primed = False
                break
            assert self._next is not None
            samples = self._packets.pop(self._next, None)
            if samples is None:
                self.stats.lost += 1
                samples = self._conceal()
            elif len(samples):
                self._last = samples
                self._losses_in_a_row = 0
            self._next += 1
            parts.append(samples)
            have += len(samples)
        if have == 0:
            self._pending = np.zeros(0, np.int16)
            return None
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if have < self.frame_samples:
            joined = np.concatenate([joined, np.zeros(self.frame_samples - have, np.int16)])
        self._pending = joined[self.frame_samples :]
        return joined[: self.frame_samples]
