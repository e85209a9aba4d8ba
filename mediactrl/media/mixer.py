"""N-1 audio mixing as matrix operations, and how RFC 6505 joins map onto it (pure).

Routing model
-------------
A join of a connection to a conference is two one-way *flows* (RFC 6505 s4.2.2.2: "a
bidirectional stream is implicitly composed of two unidirectional streams that can be
manipulated independently"):

* ``upstream``   connection -> conference: the participant is heard in the mix;
* ``downstream`` conference -> connection: the participant hears the mix.

RFC 6505 s4.2.2.5 defines ``direction`` "relative to the value of the 'id1' attribute".  With
the connection as id1 (as in every example of s6.2.1):

====================  ===========  ============  =====================================
direction             upstream     downstream    meaning
====================  ===========  ============  =====================================
sendrecv              on           on            talks and listens
sendonly              on           off           talks only (is heard, hears nothing)
recvonly              off          on            listens only ("listener-only", s6.2.1)
inactive              off          off           joined, no media
====================  ===========  ============  =====================================

With the conference as id1 the two columns swap (``JoinSettings.from_streams(...,
connection_is_id1=False)``).  Each flow has its own gain (setgain dB), mute state (setstate),
and, upstream only, a DTMF clamp (s4.2.2.5.2: tones are kept out of the mix).

One tick of one conference with members i = 1..N, decoded input rows x_i, upstream gains
u_i (0 when off, muted or clamped) and downstream gains d_j::

    c_i   = u_i * x_i                 contributions (N x S matrix)
    T     = sum_i c_i                 one column sum
    out_j = d_j * (T - c_j)           everyone hears everyone but themselves

Per-(source, sink) gains for whisper/coach (a supervisor heard by the agent only) replace the
implicit all-ones-minus-identity routing matrix with an explicit one: ``out = d * (G @ c)``.
A connection may belong to several conferences with different flows; the engine adds its
per-conference outputs before saturating once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mediactrl.mixer.model import Direction, Stream, VolumeControlType

from .errors import MediaUsageError

__all__ = [
    "Flow",
    "JoinSettings",
    "db_to_gain",
    "loudest",
    "mix_many",
    "mix_minus",
    "saturate",
]

FloatMatrix = npt.NDArray[np.float32]
_STREAM_CONFLICT = 407  # RFC 6505 s4.6
_STREAM_UNSUPPORTED = 422
# Which flows a <stream direction> sets, with the connection as id1 (the module doc's table).
_FLOW_PARTS: dict[Direction, tuple[str, ...]] = {
    Direction.SENDRECV: ("up", "down"),
    Direction.SENDONLY: ("up",),
    Direction.RECVONLY: ("down",),
    Direction.INACTIVE: (),
}


def db_to_gain(gain_db: float) -> float:
    """Amplitude factor of a gain in dB; -inf dB is silence."""
    return 0.0 if gain_db == -math.inf else float(10.0 ** (gain_db / 20.0))


@dataclass(frozen=True)
class Flow:
    """One direction of a join."""

    enabled: bool = True
    gain_db: float = 0.0
    muted: bool = False
    clamp_dtmf: bool = True  # upstream only: keep this participant's DTMF out of the mix

    @property
    def gain(self) -> float:
        return db_to_gain(self.gain_db) if self.enabled and not self.muted else 0.0


@dataclass(frozen=True)
class JoinSettings:
    """Both flows of a connection's membership in a conference."""

    upstream: Flow = field(default_factory=Flow)
    downstream: Flow = field(default_factory=Flow)

    @classmethod
    def from_direction(
        cls,
        direction: Direction = Direction.SENDRECV,
        volume_db: float = 0.0,
        clamp_dtmf: bool = True,
    ) -> JoinSettings:
        """Flows for a direction relative to the connection (the table in the module doc)."""
        up = direction in (Direction.SENDRECV, Direction.SENDONLY)
        down = direction in (Direction.SENDRECV, Direction.RECVONLY)
        return cls(
            upstream=Flow(enabled=up, gain_db=volume_db, clamp_dtmf=clamp_dtmf),
            downstream=Flow(enabled=down, gain_db=volume_db, clamp_dtmf=False),
        )

    @classmethod
    def from_streams(
        cls,
        streams: Sequence[Stream],
        connection_is_id1: bool = True,
        previous: JoinSettings | None = None,
    ) -> JoinSettings:
        """Flows for the audio <stream> elements of a <join>/<modifyjoin> (RFC 6505 s4.2.2).

        No audio stream means "all streams, sendrecv" (s4.2.2.2).  One sendonly/recvonly stream
        leaves the other direction inactive; a sendrecv stream and a one-way stream together,
        or two streams for the same direction, conflict (407).  ``automatic`` volume is not
        supported (422).  Unset attributes keep their ``previous`` value (modifyjoin).
        """
        audio = [s for s in streams if s.media == "audio"]
        base = previous or cls()
        if not audio:
            return cls(
                replace_flow(base.upstream, enabled=True),
                replace_flow(base.downstream, enabled=True),
            )
        seen: dict[str, Stream] = {}
        for stream in audio:
            parts = _FLOW_PARTS[stream.direction]
            if not connection_is_id1:
                parts = tuple({"up": "down", "down": "up"}[p] for p in parts)
            for part in parts:
                if part in seen:
                    raise MediaUsageError(
                        f"two audio <stream> elements both set the {part}stream flow",
                        _STREAM_CONFLICT,
                    )
                seen[part] = stream
        up = _flow_from_stream(seen.get("up"), base.upstream)
        down = _flow_from_stream(seen.get("down"), base.downstream)
        return cls(up, replace_flow(down, clamp_dtmf=False))


def replace_flow(
    flow: Flow, *, enabled: bool | None = None, clamp_dtmf: bool | None = None
) -> Flow:
    return Flow(
        enabled=flow.enabled if enabled is None else enabled,
        gain_db=flow.gain_db,
        muted=flow.muted,
        clamp_dtmf=flow.clamp_dtmf if clamp_dtmf is None else clamp_dtmf,
    )


def _flow_from_stream(stream: Stream | None, previous: Flow) -> Flow:
    if stream is None:
        return replace_flow(previous, enabled=False)
    gain_db, muted = previous.gain_db, previous.muted
    if stream.volume is not None:
        kind, value = stream.volume.controltype, stream.volume.value
        if kind is VolumeControlType.AUTOMATIC:
            raise MediaUsageError("automatic gain control is not supported", _STREAM_UNSUPPORTED)
        if kind is VolumeControlType.SETSTATE:
            if value not in ("mute", "unmute"):
                raise MediaUsageError(f"setstate value {value!r} is not mute/unmute", 400)
            muted = value == "mute"
        else:  # setgain also unmutes (s4.2.2.5.1)
            try:
                gain_db = float(value or "0")
            except ValueError:
                raise MediaUsageError(f"setgain value {value!r} is not a number", 400) from None
            if not math.isfinite(gain_db):
                raise MediaUsageError(f"setgain value {value!r} is not finite", 400)
            muted = False
    return Flow(enabled=True, gain_db=gain_db, muted=muted, clamp_dtmf=stream.clamp is not None)


def mix_minus(
    inputs: FloatMatrix,
    upstream: npt.NDArray[np.float32],
    downstream: npt.NDArray[np.float32],
    routing: FloatMatrix | None = None,
) -> FloatMatrix:
    """Each member's output (N x S, float, unsaturated) from the N x S input matrix.

    ``routing[j, i]`` is the gain with which sink j hears source i; None means the usual
    conference (ones everywhere but the diagonal), computed as total minus own contribution.
    """
    contributions = inputs * upstream[:, None]
    if routing is None:
        total = contributions.sum(axis=0, dtype=np.float32)
        heard = total[None, :] - contributions
    else:
        heard = routing @ contributions
    result: FloatMatrix = heard * downstream[:, None]
    return result


def mix_many(
    inputs: npt.NDArray[np.int16],
    out: FloatMatrix,
    *,
    slots: npt.NDArray[np.intp],
    conference: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    upstream: npt.NDArray[np.float32],
    downstream: npt.NDArray[np.float32],
    unique_slots: bool = False,
) -> None:
    """Mix many conferences at once, adding each member's N-1 mix into ``out``.

    Memberships are laid out conference by conference: membership m reads input row
    ``slots[m]``, belongs to conference ``conference[m]`` (non-decreasing), and the first
    membership of conference k is ``starts[k]``.  A connection in several conferences has
    several memberships; their mixes add up in its ``out`` row (saturate afterwards).
    """
    if len(slots) == 0:
        return
    contributions = inputs[slots].astype(np.float32) * upstream[:, None]
    totals = np.add.reduceat(contributions, starts, axis=0)
    heard = (totals[conference] - contributions) * downstream[:, None]
    if unique_slots:
        out[slots] += heard
    else:
        np.add.at(out, slots, heard)  # repeated rows must accumulate, not overwrite


def loudest(
    levels: npt.NDArray[np.float64], eligible: npt.NDArray[np.bool_], n: int
) -> npt.NDArray[np.bool_]:
    """The ``n`` loudest eligible sources (RFC 6505 s4.2.1.4.1 "nbest"); n = 0 keeps all."""
    if n <= 0 or int(eligible.sum()) <= n:
        return eligible.copy()
    ranked = np.where(eligible, levels, -np.inf)
    keep = np.zeros(len(levels), dtype=bool)
    keep[np.argpartition(-ranked, n - 1)[:n]] = True
    result: npt.NDArray[np.bool_] = keep & eligible
    return result


def saturate(mixed: FloatMatrix) -> npt.NDArray[np.int16]:
    """Round and clip to int16: loud sums clip instead of wrapping around."""
    return np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
