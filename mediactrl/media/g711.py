"""G.711 PCMU (mu-law) and PCMA (A-law) as lookup tables (ITU-T G.711, RFC 3551 s4.5.14).

Encoding is one table lookup per sample: a 65536-entry table indexed by the 16-bit two's
complement pattern of each int16 sample.  Decoding is a 256-entry table indexed by the byte.
Both tables are computed once, vectorised, from the classic segment/quantisation algorithm
(the one the widely used Sun reference implementation follows), so whole frames - or a whole
conference's frames stacked as one matrix - convert in a single numpy indexing operation.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "PCMA_DECODE",
    "PCMA_ENCODE",
    "PCMU_DECODE",
    "PCMU_ENCODE",
    "Law",
    "decode",
    "encode",
]

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]


class Law(IntEnum):
    """The two G.711 companding laws, valued by their static RTP payload type (RFC 3551 s6)."""

    PCMU = 0
    PCMA = 8


_ULAW_BIAS = 0x84  # added to the magnitude so every segment's start is a power of two
_ULAW_CLIP = 8159  # largest 14-bit magnitude that still fits after the bias
_QUANT_MASK = 0x0F
_SEG_MASK = 0x70
_SEG_SHIFT = 4
_SIGN_BIT = 0x80


def _segment(magnitude: npt.NDArray[np.int32], first_end: int) -> npt.NDArray[np.int32]:
    """Segment number 0..8 of each magnitude: ends are first_end*2**k - 1 for k = 0..7."""
    ends = np.array([(first_end << k) - 1 for k in range(8)], dtype=np.int32)
    return np.searchsorted(ends, magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> UInt8Array:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 2  # 14-bit signed, index = uint16 view
    mask = np.where(pcm < 0, 0x7F, 0xFF).astype(np.int32)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(magnitude, 0x40)
    code = (np.minimum(seg, 7) << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & _QUANT_MASK)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> Int16Array:
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    t = ((u & _QUANT_MASK) << 3) + _ULAW_BIAS
    t = t << ((u & _SEG_MASK) >> _SEG_SHIFT)
    return np.where(u & _SIGN_BIT, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> UInt8Array:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 3  # 13-bit signed
    mask = np.where(pcm >= 0, 0xD5, 0x55).astype(np.int32)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _segment(magnitude, 0x20)
    safe = np.minimum(seg, 7)
    quant = np.where(seg < 2, magnitude >> 1, magnitude >> np.maximum(safe, 1)) & _QUANT_MASK
    code = (safe << _SEG_SHIFT) | quant
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & _QUANT_MASK) << 4
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & _SIGN_BIT, t, -t).astype(np.int16)


PCMU_ENCODE: UInt8Array = _build_ulaw_encode()
PCMU_DECODE: Int16Array = _build_ulaw_decode()
PCMA_ENCODE: UInt8Array = _build_alaw_encode()
PCMA_DECODE: Int16Array = _build_alaw_decode()
for _table in (PCMU_ENCODE, PCMU_DECODE, PCMA_ENCODE, PCMA_DECODE):
    _table.flags.writeable = False  # shared by every call: nobody may alter them

_ENCODE = {Law.PCMU: PCMU_ENCODE, Law.PCMA: PCMA_ENCODE}
_DECODE = {Law.PCMU: PCMU_DECODE, Law.PCMA: PCMA_DECODE}


def encode(law: Law, samples: Int16Array) -> UInt8Array:
    """Compand int16 samples (any shape) to G.711 bytes of the same shape."""
    return _ENCODE[law][samples.view(np.uint16)]


def decode(law: Law, data: bytes | UInt8Array) -> Int16Array:
    """Expand G.711 bytes (or a uint8 array of any shape) to int16 samples."""
    codes = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else data
    return _DECODE[law][codes]
