"""Active-talker detection: frame energy against a threshold, with attack and hangover.

A source becomes active after ``attack`` consecutive frames louder than ``threshold_dbov`` and
stays active until ``hangover`` consecutive frames were quieter, so pauses between words do
not flap the set that RFC 6505 active-talkers-notify (s4.2.4.1) reports.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["TalkerDetector", "frame_levels_dbov"]

K = TypeVar("K", bound=Hashable)
_FULL_SCALE_POWER = 32768.0**2
_FLOOR_DB = -127.0


def frame_levels_dbov(
    frames: npt.NDArray[np.floating] | npt.NDArray[np.integer],
) -> npt.NDArray[np.float64]:
    """Mean power of each row of a (sources x samples) matrix, in dB below full scale."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=-1)
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(power / _FULL_SCALE_POWER)
    floored: npt.NDArray[np.float64] = np.maximum(levels, _FLOOR_DB)
    return floored


class TalkerDetector(Generic[K]):
    def __init__(self, threshold_dbov: float = -45.0, attack: int = 2, hangover: int = 15) -> None:
        self.threshold_dbov = threshold_dbov
        self.attack = attack
        self.hangover = hangover
        self._loud: dict[K, int] = {}
        self._quiet: dict[K, int] = {}
        self.active: frozenset[K] = frozenset()

    def update(self, levels: Iterable[tuple[K, float]]) -> frozenset[K]:
        """Fold in one frame's level per source (absent sources go quiet); the new active set."""
        active = set(self.active)
        seen = set()
        for key, level in levels:
            seen.add(key)
            if level > self.threshold_dbov:
                self._loud[key] = self._loud.get(key, 0) + 1
                self._quiet[key] = 0
                if self._loud[key] >= self.attack:
                    active.add(key)
            else:
                self._loud[key] = 0
                self._quiet[key] = self._quiet.get(key, 0) + 1
                if self._quiet[key] >= self.hangover:
                    active.discard(key)
        for key in set(self._loud) - seen:  # left the mix: forget at once
            self._loud.pop(key, None)
            self._quiet.pop(key, None)
            active.discard(key)
        self.active = frozenset(active)
        return self.active
