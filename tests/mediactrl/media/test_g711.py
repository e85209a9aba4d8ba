"""G.711 tables against a scalar, branch-by-branch rendition of the reference algorithm."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.media import g711
from mediactrl.media.g711 import Law

_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _search(value: int, ends: tuple[int, ...]) -> int:
    for i, end in enumerate(ends):
        if value <= end:
            return i
    return len(ends)


def ref_linear2ulaw(pcm: int) -> int:
    pcm >>= 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (0x84 >> 2)
    seg = _search(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask


def ref_ulaw2linear(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return 0x84 - t if u & 0x80 else t - 0x84


def ref_linear2alaw(pcm: int) -> int:
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    seg = _search(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm >> 1) if seg < 2 else (pcm >> seg)) & 0x0F
    return aval ^ mask


def ref_alaw2linear(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)


def test_ulaw_encode_table_matches_reference_for_every_sample() -> None:
    expected = np.array([ref_linear2ulaw(int(x)) for x in ALL_PCM], dtype=np.uint8)
    assert np.array_equal(g711.encode(Law.PCMU, ALL_PCM), expected)


def test_alaw_encode_table_matches_reference_for_every_sample() -> None:
    expected = np.array([ref_linear2alaw(int(x)) for x in ALL_PCM], dtype=np.uint8)
    assert np.array_equal(g711.encode(Law.PCMA, ALL_PCM), expected)


def test_decode_tables_match_reference_for_every_code() -> None:
    codes = bytes(range(256))
    assert g711.decode(Law.PCMU, codes).tolist() == [ref_ulaw2linear(c) for c in range(256)]
    assert g711.decode(Law.PCMA, codes).tolist() == [ref_alaw2linear(c) for c in range(256)]


def test_well_known_code_points() -> None:
    # Silence is 0xFF in mu-law and 0xD5 in A-law; the extremes are +-32124 and +-32256.
    assert g711.encode(Law.PCMU, np.zeros(1, np.int16))[0] == 0xFF
    assert g711.encode(Law.PCMA, np.zeros(1, np.int16))[0] == 0xD5
    assert g711.decode(Law.PCMU, b"\x00\x80\xff\x7f").tolist() == [-32124, 32124, 0, 0]
    assert g711.decode(Law.PCMA, b"\xd5\x55\xaa\x2a").tolist() == [8, -8, 32256, -32256]


def test_every_code_survives_decode_then_encode() -> None:
    # Each code's decoded value lies inside its own quantisation interval, except mu-law's
    # negative zero (0x7F), which re-encodes as positive zero (0xFF).
    for law in Law:
        codes = np.arange(256, dtype=np.uint8)
        again = g711.encode(law, g711.decode(law, codes))
        mismatched = {int(c) for c in codes[again != codes]}
        assert mismatched == ({0x7F} if law is Law.PCMU else set())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=320), st.sampled_from(list(Law)))
def test_round_trip_error_is_bounded_by_the_segment_step(samples: list[int], law: Law) -> None:
    pcm = np.array(samples, dtype=np.int16)
    back = g711.decode(law, g711.encode(law, pcm)).astype(np.int32)
    error = np.abs(back - pcm.astype(np.int32))
    # The quantisation step doubles per segment: the error stays within half a step (+ clip).
    bound = np.maximum(np.abs(pcm.astype(np.int32)) // 16, 16) + 8
    assert bool(np.all(error <= np.maximum(bound, 1024 * (np.abs(pcm) > 32000))))


def test_decode_accepts_frames_stacked_as_a_matrix() -> None:
    matrix = np.arange(320, dtype=np.int32).astype(np.uint8).reshape(2, 160)
    out = g711.decode(Law.PCMU, matrix)
    assert out.shape == (2, 160) and out.dtype == np.int16
