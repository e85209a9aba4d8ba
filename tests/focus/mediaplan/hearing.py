"""Who hears whom in the sidebar flows: tones at AMPLITUDE, heard above LOUD, unheard
below SILENT (levels from tests.mediactrl.media.phones.tone_levels, by party name)."""

from __future__ import annotations

AMPLITUDE = 3000.0  # several tones summed stay far from int16 saturation
LOUD = AMPLITUDE * 0.6
SILENT = AMPLITUDE * 0.06

#: party -> the level of every other party's tone in what it receives
Heard = dict[str, dict[str, float]]


def hears(heard: Heard, who: str, *others: str) -> None:
    for other in others:
        assert heard[who][other] > LOUD, f"{who} should hear {other}: {heard[who]}"


def deaf_to(heard: Heard, who: str, *others: str) -> None:
    for other in others:
        assert heard[who][other] < SILENT, f"{who} must not hear {other}: {heard[who]}"
