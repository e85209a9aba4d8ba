"""The bundled media server's engine: RTP endpoints and N-1 conference mixing on one timer.

This is the thin asyncio layer over the pure parts (``rtp``, ``rtcp``, ``g711``, ``jitter``,
``dtmf``, ``talkers``, ``mixer``, ``clock``).  One :class:`MediaEngine` owns

* endpoints - one per SIP media leg: an RTP socket on an even port of ``port_range`` and an
  RTCP socket on the next port (RTCP arriving on the RTP port is accepted too, RFC 5761);
* conferences - sets of memberships, each two flows (see :mod:`.mixer` for the RFC 6505
  direction mapping), plus optional per-(source, sink) gains for whisper/coach;
* ONE ``loop.call_at`` timer that runs every 20 ms tick at the absolute deadline
  ``start + k * 20 ms`` (:class:`.clock.TickClock`): each tick pulls one frame from every
  endpoint's jitter buffer, mixes every conference as one matrix operation, and sends one
  RTP packet to every endpoint that listens to at least one conference.

API (all ids are strings chosen by the caller, or generated when None)::

    engine = MediaEngine(MediaConfig(...), on_event=callback)   # or read engine.events
    ep = await engine.create_endpoint(endpoint_id=None, remote=("127.0.0.1", 4000),
                                      payload_types=PayloadTypes())      # -> Endpoint
    engine.update_endpoint_remote(ep.id, remote, payload_types=None)
    engine.set_endpoint_direction(ep.id, Direction.RECVONLY)   # the leg's SDP direction (hold)
    engine.set_media_timeout(ep.id, 60.0)              # None: back to config.media_timeout
    await engine.close_endpoint(ep.id)                 # RTCP BYE, leaves every conference
    engine.create_conference(conf_id=None, active_talkers_interval=None,
                             max_participants=None) -> str
    engine.join(ep.id, conf_id, JoinSettings.from_direction(Direction.SENDRECV, 0.0, True))
    engine.modify_join(ep.id, conf_id, settings)
    engine.unjoin(ep.id, conf_id)
    engine.set_pair_gain(conf_id, source_id, sink_id, gain_db)   # None: back to default
    engine.join_endpoints(id1, id2, settings)   # connection to connection (RFC 6505 s6.2.2)
    engine.modify_join_endpoints(id1, id2, settings); engine.unjoin_endpoints(id1, id2)
    engine.destroy_conference(conf_id) -> tuple[str, ...]         # the endpoints unjoined
    await engine.close()

Misuse raises :class:`.errors.MediaUsageError` whose ``status`` is the RFC 6505 s4.6 code to
answer (405, 406, 408, 409, 410, 412, 419).  Events (:mod:`.events`): ActiveTalkers,
DtmfReceived, EndpointTimedOut, EndpointBye - passed to ``on_event`` or, by default, put on
the ``events`` queue.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mediactrl.mixer.model import Direction

from . import g711
from .clock import TickClock
from .dtmf import DigitReport, DtmfReceiver, dtmf_tone
from .errors import MalformedPacket, MediaUsageError
from .events import ActiveTalkers, DtmfReceived, EndpointBye, EndpointTimedOut, MediaEvent
from .g711 import Law
from .jitter import JitterBuffer, JitterStats
from .mixer import Flow, JoinSettings, db_to_gain, loudest, mix_many, mix_minus, saturate
from .rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    Sdes,
    SenderReport,
    build_compound,
    middle_ntp,
    ntp_from_unix,
    parse_compound,
)
from .rtp import RtpPacket, SequenceTracker, is_rtcp, parse_rtp
from .silence import SilenceWatch
from .talkers import TalkerDetector, frame_levels_dbov

__all__ = [
    "Endpoint",
    "EndpointStats",
    "EngineStats",
    "MediaConfig",
    "MediaEngine",
    "PayloadTypes",
]

Address = tuple[str, int]
_log = logging.getLogger(__name__)
_RTP_HEADER = struct.Struct("!BBHII")
_FAST_HEADER = struct.Struct("!BHII")
_NO_SAMPLES = np.zeros(0, np.int16)  # an RTP header after its first byte
_G711_TABLES = {int(Law.PCMU): g711.PCMU_DECODE, int(Law.PCMA): g711.PCMA_DECODE}
_STATUS_EXISTS = 405
_STATUS_NO_CONFERENCE = 406
_STATUS_ALREADY_JOINED = 408
_STATUS_NOT_JOINED = 409
_STATUS_FULL = 410
_STATUS_NO_CONNECTION = 412
_STATUS_EXECUTION = 419
_PAIR_PREFIX = "\x00pair\x00"  # hidden conferences that carry connection-to-connection joins


@dataclass(frozen=True)
class MediaConfig:
    """Settings of a media engine.

    host: address the RTP/RTCP sockets bind (loopback unless told otherwise).
    port_range: inclusive range for RTP ports; each endpoint takes an even port p and p+1.
    ptime: packetisation and mixing interval, seconds (20 ms: 160 samples at 8 kHz).
    jitter_depth / jitter_max_excess: packets buffered before playing / extra allowed.
    jitter_max_depth: late packets deepen the buffer up to this many packets (adaptive).
    rtcp_interval: mean seconds between RTCP reports (randomised 0.5-1.5x, RFC 3550 s6.2).
    media_timeout: seconds without RTP and RTCP before EndpointTimedOut (None: never), for
        endpoints without one of their own (set_media_timeout); never while on hold.
    latch_remote: learn an endpoint's remote address from its first packet when none is set.
    talker_*: active-talker threshold (dBov), frames to become active, frames to stop.
    dtmf_soft_timeout: seconds after which a digit without its end packet is reported.
    dtmf_level: peak amplitude of each sine of a DTMF tone mixed for unclamped senders.
    max_catch_up: at most this many overdue ticks are run at once; older ones are skipped.
    max_participants: members per conference before join answers 410.
    """

    host: str = "127.0.0.1"
    port_range: tuple[int, int] = (16384, 32767)  # below the ephemeral ports
    ptime: float = 0.02
    jitter_depth: int = 2
    jitter_max_excess: int = 6
    jitter_max_depth: int = 6
    rtcp_interval: float = 5.0
    media_timeout: float | None = 30.0
    latch_remote: bool = True
    talker_threshold_dbov: float = -45.0
    talker_attack: int = 2
    talker_hangover: int = 15
    dtmf_soft_timeout: float = 0.5
    dtmf_level: float = 4000.0
    max_catch_up: int = 5
    max_participants: int = 2000

    @property
    def frame_samples(self) -> int:
        return round(8000 * self.ptime)


@dataclass(frozen=True)
class PayloadTypes:
    """What an endpoint sends and accepts (normally the result of the SDP offer/answer).

    send: the G.711 law sent (static payload type 0 or 8, RFC 3551 s6).
    accept: the laws accepted on receive.
    telephone_event: the dynamic payload type of RFC 4733 events, None if not negotiated.
    """

    send: Law = Law.PCMU
    accept: frozenset[Law] = frozenset({Law.PCMU, Law.PCMA})
    telephone_event: int | None = 101


@dataclass(slots=True)
class EndpointStats:
    """Counters of one endpoint (RTP and RTCP)."""

    packets_received: int = 0
    octets_received: int = 0
    malformed: int = 0
    send_errors: int = 0
    unknown_payload_type: int = 0
    packets_sent: int = 0
    octets_sent: int = 0
    rtcp_sent: int = 0
    rtcp_received: int = 0
    remote_fraction_lost: float | None = None  # what the remote reported about us
    remote_cumulative_lost: int | None = None
    remote_jitter: int | None = None
    round_trip_time: float | None = None  # seconds, from LSR/DLSR (RFC 3550 s6.4.1)


@dataclass(frozen=True, slots=True)
class EngineStats:
    ticks_run: int
    late_ticks: int
    skipped_ticks: int
    endpoints: int
    conferences: int
    ports_in_use: int = 0  # RTP ports bound by open endpoints (each with its RTCP port + 1)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, engine: MediaEngine, endpoint: Endpoint, rtcp: bool) -> None:
        self.engine = engine
        self.endpoint = endpoint
        self.rtcp = rtcp

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.rtcp or is_rtcp(data):
            self.engine._on_rtcp(self.endpoint, data)
        else:
            self.engine._on_rtp(self.endpoint, data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: counted; timeouts deal with it.
        self.endpoint.stats.send_errors += 1


class Endpoint:
    """One RTP session (a SIP media leg) inside the engine; read-only for callers."""

    def __init__(
        self,
        endpoint_id: str,
        config: MediaConfig,
        payload_types: PayloadTypes,
        remote: Address | None,
        slot: int,
    ) -> None:
        self.id = endpoint_id
        self.payload_types = payload_types
        self.remote = remote
        self.rtcp_remote: Address | None = None
        self.local_port = 0
        self.rtcp_port = 0
        self.stats = EndpointStats()
        self.jitter = JitterBuffer(
            config.jitter_depth,
            config.jitter_max_excess,
            config.frame_samples,
            max_depth=max(config.jitter_max_depth, config.jitter_depth),
        )
        self.dtmf = DtmfReceiver(config.dtmf_soft_timeout)
        self.cname = f"{endpoint_id}@media".encode()[:255]
        self._slot = slot
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._tracker: SequenceTracker | None = None
        self._tracker_ssrc: int | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts_offset = secrets.randbits(32)
        self._first_packet = True
        self.silence = SilenceWatch(config.media_timeout, 0.0)  # started when it opens
        self._last_sr: tuple[int, float] | None = None  # (middle NTP, arrival) of the last SR
        self._next_rtcp = 0.0
        self._dtmf_started: int | None = None  # sample index where a synthesised tone began
        self._dtmf_hold = 0  # ticks the clamp outlasts a digit: its in-band audio lags
        self.conferences: dict[str, JoinSettings] = {}
        self.sending = True  # SDP direction of the leg itself (set_endpoint_direction)
        self.receiving = True
        self.direction = Direction.SENDRECV

    @property
    def ssrc(self) -> int:
        return self._ssrc

    @property
    def jitter_stats(self) -> JitterStats:
        return self.jitter.stats

    def _send_rtcp(self, data: bytes) -> None:
        target = self.rtcp_remote or (
            (self.remote[0], self.remote[1] + 1) if self.remote is not None else None
        )
        if target is not None and self._rtcp is not None:
            self._rtcp.sendto(data, target)
            self.stats.rtcp_sent += 1


@dataclass(slots=True, eq=False)  # identity: members are compared by object
class _Conference:
    id: str
    max_participants: int
    talkers_interval: float | None
    mix_loudest: int = 0  # RFC 6505 nbest: mix only the n loudest contributors (0: all)
    members: list[Endpoint] = field(default_factory=list)
    pair_gains: dict[tuple[str, str], float] = field(default_factory=dict)
    detector: TalkerDetector[str] = field(default_factory=TalkerDetector)
    reported_talkers: tuple[str, ...] = ()
    last_report: float = -math.inf
    # Derived arrays, rebuilt when membership or settings change.
    slots: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    up: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    down: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    routing: npt.NDArray[np.float32] | None = None

    def rebuild(self) -> None:
        self.slots = np.array([m._slot for m in self.members], dtype=np.intp)
        self.up = np.array(
            [m.conferences[self.id].upstream.gain for m in self.members], dtype=np.float32
        )
        self.down = np.array(
            [m.conferences[self.id].downstream.gain for m in self.members], dtype=np.float32
        )
        if not self.pair_gains:
            self.routing = None
            return
        n = len(self.members)
        routing = np.ones((n, n), dtype=np.float32) - np.eye(n, dtype=np.float32)
        index = {m.id: i for i, m in enumerate(self.members)}
        for (source, sink), gain in self.pair_gains.items():
            if source in index and sink in index:
                routing[index[sink], index[source]] = gain
        self.routing = routing


@dataclass(slots=True)
class _Batch:
    """Every plain conference (no pair gains, nbest or talker subscription) as one matrix.

    Memberships are laid out conference after conference, so one ``add.reduceat`` gives
    every conference's total and one subtraction every member's N-1 mix: a tick costs a
    few numpy calls however many small conferences there are.
    """

    members: tuple[_Conference, ...]  # the conferences, in layout order
    rest: tuple[_Conference, ...]  # conferences that need the per-conference path
    slots: npt.NDArray[np.intp]  # per membership: the endpoint's input row
    conference: npt.NDArray[np.intp]  # per membership: index of its conference
    starts: npt.NDArray[np.intp]  # first membership of each conference
    up: npt.NDArray[np.float32]
    down: npt.NDArray[np.float32]
    unique_slots: bool  # no endpoint in two of these conferences: plain fancy-index add

    @classmethod
    def build(cls, conferences: list[_Conference], rest: list[_Conference]) -> _Batch:
        starts, index = [], []
        position = 0
        for number, conference in enumerate(conferences):
            starts.append(position)
            position += len(conference.members)
            index.extend([number] * len(conference.members))
        slots = (
            np.concatenate([c.slots for c in conferences]) if conferences else np.zeros(0, np.intp)
        )
        return cls(
            members=tuple(conferences),
            rest=tuple(rest),
            slots=slots.astype(np.intp),
            conference=np.array(index, dtype=np.intp),
            starts=np.array(starts, dtype=np.intp),
            up=np.concatenate([c.up for c in conferences])
            if conferences
            else np.zeros(0, np.float32),
            down=np.concatenate([c.down for c in conferences])
            if conferences
            else np.zeros(0, np.float32),
            unique_slots=len(set(slots.tolist())) == len(slots),
        )

    def mix(self, inputs: npt.NDArray[np.int16], out: npt.NDArray[np.float32]) -> None:
        mix_many(
            inputs,
            out,
            slots=self.slots,
            conference=self.conference,
            starts=self.starts,
            upstream=self.up,
            downstream=self.down,
            unique_slots=self.unique_slots,
        )


class MediaEngine:
    """Endpoints, conferences and the mixing clock (see the module docstring for the API)."""

    def __init__(
        self,
        config: MediaConfig | None = None,
        on_event: Callable[[MediaEvent], None] | None = None,
    ) -> None:
        self.config = config or MediaConfig()
        self.events: asyncio.Queue[MediaEvent] = asyncio.Queue()
        self._emit = on_event or self.events.put_nowait
        self._endpoints: dict[str, Endpoint] = {}
        self._conferences: dict[str, _Conference] = {}
        self._ports_in_use: set[int] = set()
        self._free_slots: list[int] = []
        self._capacity = 0
        self._inputs = np.zeros((0, self.config.frame_samples), np.int16)
        self._has_input = np.zeros(0, dtype=bool)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: TickClock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._ids = itertools.count(1)
        self.tick_errors = 0
        self._batch: _Batch | None = None  # plain conferences mixed together; None: stale

    # ------------------------------------------------------------------ lifecycle
    def _ensure_running(self) -> None:
        if self._closed:
            raise MediaUsageError("the media engine is closed", _STATUS_EXECUTION)
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._clock = TickClock(
                self._loop.time(), self.config.ptime, max_catch_up=self.config.max_catch_up
            )
            self._arm()

    def _arm(self) -> None:
        assert self._loop is not None and self._clock is not None
        self._timer = self._loop.call_at(self._clock.next_deadline, self._on_timer)

    async def close(self) -> None:
        """Stop the clock and close every endpoint (each sends an RTCP BYE)."""
        for endpoint_id in list(self._endpoints):
            await self.close_endpoint(endpoint_id)
        self._conferences.clear()
        if self._timer is not None:
            self._timer.cancel()
        self._closed = True

    def stats(self) -> EngineStats:
        clock = self._clock
        return EngineStats(
            ticks_run=clock.ticks_run if clock else 0,
            late_ticks=clock.late_ticks if clock else 0,
            skipped_ticks=clock.skipped_ticks if clock else 0,
            endpoints=len(self._endpoints),
            conferences=sum(not c.startswith(_PAIR_PREFIX) for c in self._conferences),
            ports_in_use=len(self._ports_in_use),
        )

    # ------------------------------------------------------------------ endpoints
    def endpoint(self, endpoint_id: str) -> Endpoint:
        try:
            return self._endpoints[endpoint_id]
        except KeyError:
            raise MediaUsageError(
                f"no connection {endpoint_id!r} on this media server", _STATUS_NO_CONNECTION
            ) from None

    def _take_slot(self) -> int:
        if not self._free_slots:
            grown = max(16, self._capacity * 2)
            inputs = np.zeros((grown, self.config.frame_samples), np.int16)
            inputs[: self._capacity] = self._inputs
            has = np.zeros(grown, dtype=bool)
            has[: self._capacity] = self._has_input
            self._free_slots = list(range(grown - 1, self._capacity - 1, -1))
            self._inputs, self._has_input, self._capacity = inputs, has, grown
        return self._free_slots.pop()

    async def create_endpoint(
        self,
        endpoint_id: str | None = None,
        remote: Address | None = None,
        payload_types: PayloadTypes | None = None,
        rtcp_remote: Address | None = None,
    ) -> Endpoint:
        """Open an RTP/RTCP socket pair; ``remote`` may come later (or be latched)."""
        self._ensure_running()
        assert self._loop is not None
        endpoint_id = endpoint_id or f"ep{next(self._ids)}-{secrets.token_hex(4)}"
        if endpoint_id in self._endpoints:
            raise MediaUsageError(f"connection {endpoint_id!r} already exists", _STATUS_EXISTS)
        endpoint = Endpoint(
            endpoint_id, self.config, payload_types or PayloadTypes(), remote, self._take_slot()
        )
        endpoint.rtcp_remote = rtcp_remote
        low, high = self.config.port_range
        evens = list(range(low + (low % 2), high, 2))
        start = random.randrange(len(evens)) if evens else 0
        for port in evens[start:] + evens[:start]:
            if port in self._ports_in_use:
                continue
            try:
                rtp, _ = await self._loop.create_datagram_endpoint(
                    lambda: _RtpProtocol(self, endpoint, rtcp=False),
                    local_addr=(self.config.host, port),
                    family=socket.AF_INET6 if ":" in self.config.host else socket.AF_INET,
                )
            except OSError:
                continue
            try:
                rtcp, _ = await self._loop.create_datagram_endpoint(
                    lambda: _RtpProtocol(self, endpoint, rtcp=True),
                    local_addr=(self.config.host, port + 1),
                    family=socket.AF_INET6 if ":" in self.config.host else socket.AF_INET,
                )
            except OSError:
                rtp.close()
                continue
            break
        else:
            self._free_slots.append(endpoint._slot)
            raise MediaUsageError(f"no free RTP port pair in {low}-{high}", _STATUS_EXECUTION)
        endpoint._rtp, endpoint._rtcp = rtp, rtcp
        endpoint.local_port, endpoint.rtcp_port = port, port + 1
        self._ports_in_use.add(port)
        now = self._loop.time()
        endpoint.silence.heard(now)
        endpoint._next_rtcp = now + self._rtcp_delay()
        self._endpoints[endpoint_id] = endpoint
        return endpoint

    def update_endpoint_remote(
        self,
        endpoint_id: str,
        remote: Address | None,
        payload_types: PayloadTypes | None = None,
        rtcp_remote: Address | None = None,
    ) -> None:
        """New remote address (a re-INVITE) and, optionally, newly negotiated payload types."""
        endpoint = self.endpoint(endpoint_id)
        endpoint.remote = remote
        endpoint.rtcp_remote = rtcp_remote
        if payload_types is not None:
            endpoint.payload_types = payload_types

    def set_endpoint_direction(self, endpoint_id: str, direction: Direction) -> None:
        """The leg's negotiated SDP direction, as the media server's own SDP states it
        (RFC 3264 s6.1): recvonly/inactive stop our RTP (the phone put us on hold),
        sendonly/inactive ignore its audio; RTCP goes on.  Anything but sendrecv suspends
        the media timeout (a phone on hold may send nothing).  Independent of conference
        joins, which keep their own directions."""
        endpoint = self.endpoint(endpoint_id)
        endpoint.sending = direction in (Direction.SENDRECV, Direction.SENDONLY)
        endpoint.receiving = direction in (Direction.SENDRECV, Direction.RECVONLY)
        endpoint.direction = direction
        self._expect(endpoint)

    def set_media_timeout(self, endpoint_id: str, timeout: float | None) -> None:
        """Report EndpointTimedOut after ``timeout`` s without RTP and RTCP from this
        endpoint (None: the config's ``media_timeout``), counted from now at the earliest."""
        endpoint = self.endpoint(endpoint_id)
        endpoint.silence.set_timeout(
            timeout if timeout is not None else self.config.media_timeout, self._now()
        )

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _expect(self, endpoint: Endpoint) -> None:
        """Media is expected from a sendrecv leg not held by its joins: with joins, at
        least one must carry audio one way or the other (a held participant's are all
        inactive)."""
        joined = endpoint.conferences.values()
        carried = not joined or any(j.upstream.enabled or j.downstream.enabled for j in joined)
        endpoint.silence.expect(endpoint.direction is Direction.SENDRECV and carried, self._now())

    async def close_endpoint(self, endpoint_id: str) -> None:
        """Leave every conference, send an RTCP BYE and close the sockets."""
        endpoint = self.endpoint(endpoint_id)
        for conf_id in list(endpoint.conferences):
            if conf_id.startswith(_PAIR_PREFIX):
                other = next(m for m in self._conferences[conf_id].members if m is not endpoint)
                self.unjoin_endpoints(endpoint_id, other.id)
            else:
                self.unjoin(endpoint_id, conf_id)
        endpoint._send_rtcp(
            build_compound(self._report(endpoint, time.time()), Bye((endpoint.ssrc,)))
        )
        for transport in (endpoint._rtp, endpoint._rtcp):
            if transport is not None:
                transport.close()
        self._ports_in_use.discard(endpoint.local_port)
        del self._endpoints[endpoint_id]
        self._inputs[endpoint._slot] = 0
        self._has_input[endpoint._slot] = False
        self._free_slots.append(endpoint._slot)

    # ------------------------------------------------------------------ conferences
    def _conference(self, conf_id: str) -> _Conference:
        try:
            if conf_id.startswith(_PAIR_PREFIX):
                raise KeyError(conf_id)  # connection joins are reached by their two ids
            return self._conferences[conf_id]
        except KeyError:
            raise MediaUsageError(
                f"no conference {conf_id!r} on this media server", _STATUS_NO_CONFERENCE
            ) from None

    def create_conference(
        self,
        conf_id: str | None = None,
        active_talkers_interval: float | None = None,
        max_participants: int | None = None,
        mix_loudest: int = 0,
    ) -> str:
        """A new, empty conference.

        ``active_talkers_interval`` (s) subscribes to active talkers (s4.2.1.4.4.1);
        ``mix_loudest`` is the nbest ``n`` of <audio-mixing> (s4.2.1.4.1), 0 mixing everyone.
        """
        self._ensure_running()
        conf_id = conf_id or f"conf{next(self._ids)}-{secrets.token_hex(4)}"
        if conf_id.startswith(_PAIR_PREFIX):
            raise MediaUsageError("a conference id may not start with NUL", 400)
        if conf_id in self._conferences:
            raise MediaUsageError(f"conference {conf_id!r} already exists", _STATUS_EXISTS)
        self._conferences[conf_id] = _Conference(
            conf_id,
            max_participants or self.config.max_participants,
            active_talkers_interval,
            mix_loudest,
            detector=TalkerDetector(
                self.config.talker_threshold_dbov,
                self.config.talker_attack,
                self.config.talker_hangover,
            ),
        )
        self._batch = None
        return conf_id

    def set_audio_mixing(self, conf_id: str, mix_loudest: int) -> None:
        """Change the nbest ``n`` (modifyconference <audio-mixing>); 0 mixes everyone."""
        if mix_loudest < 0:
            raise MediaUsageError("nbest n is a non-negative integer", 400)
        self._conference(conf_id).mix_loudest = mix_loudest
        self._batch = None

    def set_active_talkers(self, conf_id: str, interval: float | None) -> None:
        """Subscribe (interval in s, 0 = no minimum) or unsubscribe (None) active talkers."""
        self._conference(conf_id).talkers_interval = interval
        self._batch = None

    def destroy_conference(self, conf_id: str) -> tuple[str, ...]:
        """Remove a conference; returns the endpoints it unjoined (for unjoin-notify)."""
        conference = self._conference(conf_id)
        unjoined = tuple(m.id for m in conference.members)
        for member in conference.members:
            member.conferences.pop(conf_id, None)
        del self._conferences[conf_id]
        self._batch = None
        return unjoined

    def members(self, conf_id: str) -> dict[str, JoinSettings]:
        conference = self._conference(conf_id)
        return {m.id: m.conferences[conf_id] for m in conference.members}

    @staticmethod
    def _settings(
        settings: JoinSettings | None, direction: Direction, volume_db: float, clamp_dtmf: bool
    ) -> JoinSettings:
        return settings or JoinSettings.from_direction(direction, volume_db, clamp_dtmf)

    def join(
        self,
        endpoint_id: str,
        conf_id: str,
        settings: JoinSettings | None = None,
        *,
        direction: Direction = Direction.SENDRECV,
        volume_db: float = 0.0,
        clamp_dtmf: bool = True,
    ) -> None:
        """Join an endpoint to a conference; either ``settings`` or the shorthand keywords."""
        conference = self._conference(conf_id)
        endpoint = self.endpoint(endpoint_id)
        if conf_id in endpoint.conferences:
            raise MediaUsageError(
                f"{endpoint_id!r} is already joined to {conf_id!r}", _STATUS_ALREADY_JOINED
            )
        if len(conference.members) >= conference.max_participants:
            raise MediaUsageError(f"conference {conf_id!r} is full", _STATUS_FULL)
        endpoint.conferences[conf_id] = self._settings(settings, direction, volume_db, clamp_dtmf)
        conference.members.append(endpoint)
        conference.rebuild()
        self._batch = None
        self._expect(endpoint)

    def modify_join(
        self,
        endpoint_id: str,
        conf_id: str,
        settings: JoinSettings | None = None,
        *,
        direction: Direction = Direction.SENDRECV,
        volume_db: float = 0.0,
        clamp_dtmf: bool = True,
    ) -> None:
        conference = self._conference(conf_id)
        endpoint = self.endpoint(endpoint_id)
        if conf_id not in endpoint.conferences:
            raise MediaUsageError(
                f"{endpoint_id!r} is not joined to {conf_id!r}", _STATUS_NOT_JOINED
            )
        endpoint.conferences[conf_id] = self._settings(settings, direction, volume_db, clamp_dtmf)
        conference.rebuild()
        self._batch = None
        self._expect(endpoint)

    def unjoin(self, endpoint_id: str, conf_id: str) -> None:
        conference = self._conference(conf_id)
        endpoint = self.endpoint(endpoint_id)
        if endpoint.conferences.pop(conf_id, None) is None:
            raise MediaUsageError(
                f"{endpoint_id!r} is not joined to {conf_id!r}", _STATUS_NOT_JOINED
            )
        conference.members.remove(endpoint)
        conference.rebuild()
        self._batch = None
        self._expect(endpoint)

    # ------------------------------------------------------------------ connection joins
    @staticmethod
    def _pair_id(id1: str, id2: str) -> str:
        first, second = sorted((id1, id2))
        return f"{_PAIR_PREFIX}{first}\x00{second}"

    @staticmethod
    def _mirror(settings: JoinSettings) -> JoinSettings:
        """id2's flows in a connection join: it hears what id1 sends and sends what id1 hears;
        the gains of the join (RFC 6505 s4.2.2.5) are applied once, on id1's side."""
        return JoinSettings(
            upstream=Flow(enabled=settings.downstream.enabled, clamp_dtmf=False),
            downstream=Flow(enabled=settings.upstream.enabled, clamp_dtmf=False),
        )

    def join_endpoints(
        self,
        id1: str,
        id2: str,
        settings: JoinSettings | None = None,
        *,
        direction: Direction = Direction.SENDRECV,
        volume_db: float = 0.0,
        clamp_dtmf: bool = True,
    ) -> None:
        """Join two connections directly (RFC 6505 s6.2.2); ``settings`` are id1's flows.

        Each connection join is a private two-member mix, so a connection joined to several
        others (a supervisor coaching an agent while listening to the caller) hears the sum
        of what each join lets through, exactly as s6.2.2 describes.
        """
        first, second = self.endpoint(id1), self.endpoint(id2)
        if id1 == id2:
            raise MediaUsageError("a connection cannot be joined to itself", 407)
        pair_id = self._pair_id(id1, id2)
        if pair_id in self._conferences:
            raise MediaUsageError(f"{id1!r} and {id2!r} are already joined", 408)
        chosen = self._settings(settings, direction, volume_db, clamp_dtmf)
        conference = _Conference(pair_id, 2, None)
        self._conferences[pair_id] = conference
        first.conferences[pair_id] = chosen
        second.conferences[pair_id] = self._mirror(chosen)
        conference.members.extend((first, second))
        conference.rebuild()
        self._batch = None

    def modify_join_endpoints(
        self,
        id1: str,
        id2: str,
        settings: JoinSettings | None = None,
        *,
        direction: Direction = Direction.SENDRECV,
        volume_db: float = 0.0,
        clamp_dtmf: bool = True,
    ) -> None:
        first, second = self.endpoint(id1), self.endpoint(id2)
        pair_id = self._pair_id(id1, id2)
        conference = self._conferences.get(pair_id)
        if conference is None:
            raise MediaUsageError(f"{id1!r} and {id2!r} are not joined", _STATUS_NOT_JOINED)
        chosen = self._settings(settings, direction, volume_db, clamp_dtmf)
        first.conferences[pair_id] = chosen
        second.conferences[pair_id] = self._mirror(chosen)
        conference.rebuild()
        self._batch = None

    def unjoin_endpoints(self, id1: str, id2: str) -> None:
        self.endpoint(id1)
        self.endpoint(id2)
        pair_id = self._pair_id(id1, id2)
        conference = self._conferences.pop(pair_id, None)
        if conference is None:
            raise MediaUsageError(f"{id1!r} and {id2!r} are not joined", _STATUS_NOT_JOINED)
        self._batch = None
        for member in conference.members:
            member.conferences.pop(pair_id, None)

    def set_pair_gain(
        self, conf_id: str, source_id: str, sink_id: str, gain_db: float | None
    ) -> None:
        """How loud ``sink`` hears ``source`` in this conference (None: the default, 0 dB).

        -inf blocks the pair: a coach joined sendrecv and blocked towards the customer is
        heard by the agent only (whisper).  Both must be members when the mix runs.
        """
        conference = self._conference(conf_id)
        self.endpoint(source_id)
        self.endpoint(sink_id)
        if gain_db is None:
            conference.pair_gains.pop((source_id, sink_id), None)
        else:
            conference.pair_gains[(source_id, sink_id)] = db_to_gain(gain_db)
        conference.rebuild()
        self._batch = None

    # ------------------------------------------------------------------ receive path
    def _on_rtp(self, endpoint: Endpoint, data: bytes, addr: Address) -> None:
        assert self._loop is not None
        if len(data) >= 12 and data[0] == 0x80:
            # The common case (no padding, extension or CSRCs) without building a packet.
            second, sequence, timestamp, ssrc = _FAST_HEADER.unpack_from(data, 1)
            payload_type, payload = second & 0x7F, data[12:]
        else:
            try:
                packet = parse_rtp(data)
            except MalformedPacket:
                endpoint.stats.malformed += 1
                return
            payload_type, sequence, timestamp = (
                packet.payload_type,
                packet.sequence,
                packet.timestamp,
            )
            ssrc, payload = packet.ssrc, packet.payload
        arrival = self._loop.time()
        if endpoint.remote is None and self.config.latch_remote:
            endpoint.remote = addr  # symmetric RTP: answer where the media comes from
        stats = endpoint.stats
        stats.packets_received += 1
        stats.octets_received += len(payload)
        endpoint.silence.heard(arrival)
        tracker = endpoint._tracker
        if tracker is None or endpoint._tracker_ssrc != ssrc:
            tracker = endpoint._tracker = SequenceTracker(sequence)
            endpoint._tracker_ssrc = ssrc
        tracker.update(sequence)
        tracker.record_transit(timestamp, arrival)
        types = endpoint.payload_types
        if not endpoint.receiving:
            return  # on hold: counted above, not mixed
        if payload_type in _G711_TABLES and payload_type in types.accept:
            samples = _G711_TABLES[payload_type][np.frombuffer(payload, np.uint8)]
            endpoint.jitter.push(ssrc, sequence, samples)
            return
        # Whatever is not audio still holds a place in the sequence, or it would look lost.
        endpoint.jitter.push(ssrc, sequence, _NO_SAMPLES)
        if payload_type == types.telephone_event:
            event_packet = RtpPacket(payload_type, sequence, timestamp, ssrc, payload)
            try:
                reports = endpoint.dtmf.receive(event_packet, arrival)
            except MalformedPacket:
                stats.malformed += 1
                return
            self._emit_digits(endpoint, reports)
            return
        stats.unknown_payload_type += 1

    def _emit_digits(self, endpoint: Endpoint, reports: list[DigitReport]) -> None:
        """A DtmfReceived per finished or expired digit, its duration turned from 8 kHz
        timestamp units into ms."""
        for report in reports:
            self._emit(
                DtmfReceived(
                    endpoint.id,
                    report.digit,
                    round(report.duration * 1000 / 8000),
                    report.volume,
                    report.end_seen,
                )
            )

    def _on_rtcp(self, endpoint: Endpoint, data: bytes) -> None:
        assert self._loop is not None
        try:
            packets = parse_compound(data)
        except MalformedPacket:
            endpoint.stats.malformed += 1
            return
        now = self._loop.time()
        endpoint.silence.heard(now)  # RTCP alone (a phone sending no audio) is a sign of life
        endpoint.stats.rtcp_received += 1
        for packet in packets:
            if isinstance(packet, SenderReport | ReceiverReport):
                if isinstance(packet, SenderReport):
                    endpoint._last_sr = (middle_ntp(packet.ntp_timestamp), now)
                for block in packet.reports:
                    if block.ssrc == endpoint.ssrc:
                        self._note_report(endpoint, block)
            elif isinstance(packet, Bye):
                for ssrc in packet.ssrcs:
                    self._emit(
                        EndpointBye(endpoint.id, ssrc, packet.reason.decode("utf-8", "replace"))
                    )

    @staticmethod
    def _note_report(endpoint: Endpoint, block: ReportBlock) -> None:
        stats = endpoint.stats
        stats.remote_fraction_lost = block.fraction_lost / 256
        stats.remote_cumulative_lost = block.cumulative_lost
        stats.remote_jitter = block.jitter
        if block.last_sr:
            # RTT = A - LSR - DLSR in 1/65536 s units (RFC 3550 s6.4.1).
            arrival = middle_ntp(ntp_from_unix(time.time()))
            rtt = (arrival - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
            stats.round_trip_time = rtt / 65536 if rtt < 0x80000000 else None

    # ------------------------------------------------------------------ RTCP send
    def _rtcp_delay(self) -> float:
        return self.config.rtcp_interval * random.uniform(0.5, 1.5)

    def _report(self, endpoint: Endpoint, wall: float) -> SenderReport | ReceiverReport:
        assert self._loop is not None and self._clock is not None
        blocks: tuple[ReportBlock, ...] = ()
        tracker, ssrc = endpoint._tracker, endpoint._tracker_ssrc
        if tracker is not None and ssrc is not None:
            last_sr, dlsr = 0, 0
            if endpoint._last_sr is not None:
                last_sr = endpoint._last_sr[0]
                dlsr = int((self._loop.time() - endpoint._last_sr[1]) * 65536)
            blocks = (
                ReportBlock(
                    ssrc=ssrc,
                    fraction_lost=tracker.fraction_lost(),
                    cumulative_lost=tracker.cumulative_lost,
                    highest_sequence=tracker.max_ext,
                    jitter=int(tracker.jitter),
                    last_sr=last_sr,
                    delay_since_last_sr=dlsr,
                ),
            )
        if endpoint.stats.packets_sent == 0:
            return ReceiverReport(endpoint.ssrc, blocks)
        # The RTP timestamp of "now" on the same timeline as the packets (s6.4.1).
        elapsed = self._loop.time() - self._clock.start
        rtp_now = (endpoint._ts_offset + round(elapsed * 8000)) & 0xFFFFFFFF
        return SenderReport(
            endpoint.ssrc,
            ntp_from_unix(wall),
            rtp_now,
            endpoint.stats.packets_sent,
            endpoint.stats.octets_sent,
            blocks,
        )

    def _send_reports(self, now: float) -> None:
        wall = time.time()
        for endpoint in self._endpoints.values():
            if now >= endpoint._next_rtcp:
                endpoint._next_rtcp = now + self._rtcp_delay()
                sdes = Sdes(((endpoint.ssrc, ((1, endpoint.cname),)),))
                endpoint._send_rtcp(build_compound(self._report(endpoint, wall), sdes))

    # ------------------------------------------------------------------ the tick
    def _on_timer(self) -> None:
        assert self._loop is not None and self._clock is not None
        now = self._loop.time()
        try:
            for tick in self._clock.due(now):
                self._tick(tick, now)
            self._send_reports(now)
        except Exception:
            # A bug in one tick must not silence every conference: log it, keep the clock.
            self.tick_errors += 1
            _log.exception("media engine tick failed")
        finally:
            if not self._closed:
                self._arm()

    def _tick(self, tick: int, now: float) -> None:
        samples = self.config.frame_samples
        inputs, has_input = self._inputs, self._has_input
        dtmf_active: list[Endpoint] = []
        for endpoint in self._endpoints.values():
            frame = endpoint.jitter.pop()
            slot = endpoint._slot
            if frame is None:
                if has_input[slot]:
                    inputs[slot] = 0
                    has_input[slot] = False
            else:
                inputs[slot] = frame
                has_input[slot] = True
            self._emit_digits(endpoint, endpoint.dtmf.expire(now))
            if endpoint.dtmf.active_digit is not None:
                # Events skip the jitter buffer the audio waits in: clamp that much longer.
                endpoint._dtmf_hold = self.config.jitter_depth + 2
                dtmf_active.append(endpoint)
            else:
                endpoint._dtmf_started = None
                if endpoint._dtmf_hold > 0:
                    endpoint._dtmf_hold -= 1
                    dtmf_active.append(endpoint)
            silent_for = endpoint.silence.check(now)
            if silent_for is not None:
                self._emit(EndpointTimedOut(endpoint.id, silent_for))

        out = np.zeros((self._capacity, samples), np.float32)
        listens = np.zeros(self._capacity, dtype=bool)
        batch = self._batch
        if batch is None:
            plain: list[_Conference] = []
            rest: list[_Conference] = []
            for c in self._conferences.values():
                if c.members:
                    simple = c.routing is None and not c.mix_loudest and c.talkers_interval is None
                    (plain if simple else rest).append(c)
            batch = self._batch = _Batch.build(plain, rest)
        others = batch.rest
        if dtmf_active:  # a digit in progress needs the full path (clamp or tone)
            others = batch.members + batch.rest
        elif batch.members:
            batch.mix(inputs, out)
            listens[batch.slots[batch.down > 0]] = True  # slots may repeat: no |= here
        for conference in others:
            slots = conference.slots
            frames = inputs[slots].astype(np.float32)
            up = conference.up
            if dtmf_active:
                up = self._apply_dtmf(conference, frames, up, dtmf_active, tick)
            if conference.talkers_interval is not None or conference.mix_loudest:
                levels = frame_levels_dbov(frames)
                if conference.talkers_interval is not None:
                    self._detect_talkers(conference, levels, up, now)
                if conference.mix_loudest:
                    up = up * loudest(levels, up > 0, conference.mix_loudest)
            out[slots] += mix_minus(frames, up, conference.down, conference.routing)
            listens[slots] |= conference.down > 0

        targets = [
            e
            for e in self._endpoints.values()
            if listens[e._slot] and e.remote is not None and e.sending
        ]
        if not targets:
            return
        target_slots = np.array([e._slot for e in targets], dtype=np.intp)
        pcm = saturate(out[target_slots])
        encoded = {law: g711.encode(law, pcm) for law in {e.payload_types.send for e in targets}}
        for row, endpoint in enumerate(targets):
            law = endpoint.payload_types.send
            payload = encoded[law][row].tobytes()
            marker = 0x80 if endpoint._first_packet else 0
            endpoint._first_packet = False
            header = _RTP_HEADER.pack(
                0x80,
                int(law) | marker,
                endpoint._seq,
                (endpoint._ts_offset + tick * samples) & 0xFFFFFFFF,
                endpoint._ssrc,
            )
            endpoint._seq = (endpoint._seq + 1) & 0xFFFF
            assert endpoint._rtp is not None and endpoint.remote is not None
            endpoint._rtp.sendto(header + payload, endpoint.remote)
            endpoint.stats.packets_sent += 1
            endpoint.stats.octets_sent += len(payload)

    def _apply_dtmf(
        self,
        conference: _Conference,
        frames: npt.NDArray[np.float32],
        up: npt.NDArray[np.float32],
        active: list[Endpoint],
        tick: int,
    ) -> npt.NDArray[np.float32]:
        """Clamped senders drop out of the mix while a digit lasts; unclamped ones without
        in-band audio are heard as the digit's tone (RFC 6505 s4.2.2.5.2)."""
        up = up.copy()
        samples = self.config.frame_samples
        for index, member in enumerate(conference.members):
            if member not in active:
                continue
            digit = member.dtmf.active_digit
            if member.conferences[conference.id].upstream.clamp_dtmf:
                up[index] = 0.0
            elif digit is not None and not self._has_input[member._slot]:
                if member._dtmf_started is None:
                    member._dtmf_started = tick * samples
                first = tick * samples - member._dtmf_started
                frames[index] = dtmf_tone(digit, first, samples, self.config.dtmf_level)
        return up

    def _detect_talkers(
        self,
        conference: _Conference,
        levels: npt.NDArray[np.float64],
        up: npt.NDArray[np.float32],
        now: float,
    ) -> None:
        heard = up > 0
        ids = [m.id for m, h in zip(conference.members, heard, strict=True) if h]
        active = conference.detector.update(zip(ids, levels[heard].tolist(), strict=True))
        talkers = tuple(sorted(active))
        interval = conference.talkers_interval
        assert interval is not None
        if talkers != conference.reported_talkers and now - conference.last_report >= interval:
            conference.reported_talkers = talkers
            conference.last_report = now
            self._emit(ActiveTalkers(conference.id, talkers))
