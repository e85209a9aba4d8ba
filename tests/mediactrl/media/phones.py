"""Test peers: minimal RTP phones on real UDP sockets that send tones and record what they hear.

Deliberately independent of the engine's send path: packets are built with the engine's pure
codec (it is tested on its own) but timing, sockets and analysis live here.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mediactrl.media import g711
from mediactrl.media.dtmf import DTMF_DIGITS, TelephoneEvent, build_events
from mediactrl.media.g711 import Law
from mediactrl.media.rtcp import RtcpPacket, parse_compound
from mediactrl.media.rtp import RtpPacket, build_rtp, parse_rtp

RATE = 8000
FRAME = 160


@dataclass
class Heard:
    arrival: float
    packet: RtpPacket


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, sink: list[bytes]) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sink.append(data)


@dataclass
class Phone:
    """An RTP peer: ``tone_hz`` None sends nothing (a listener)."""

    tone_hz: float | None
    amplitude: float = 8000.0
    law: Law = Law.PCMU
    heard: list[Heard] = field(default_factory=list)
    rtcp: list[tuple[float, tuple[RtcpPacket, ...]]] = field(default_factory=list)
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    sent: int = 0
    _transport: asyncio.DatagramTransport | None = None
    _rtcp_transport: asyncio.DatagramTransport | None = None
    _task: asyncio.Task[None] | None = None
    _seq: int = 0
    _raw: list[bytes] = field(default_factory=list)
    _raw_rtcp: list[bytes] = field(default_factory=list)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Stamped(self), local_addr=("127.0.0.1", 0)
        )
        self._rtcp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _StampedRtcp(self), local_addr=("127.0.0.1", 0)
        )

    @property
    def address(self) -> tuple[str, int]:
        assert self._transport is not None
        addr: tuple[str, int] = self._transport.get_extra_info("sockname")[:2]
        return addr

    @property
    def rtcp_address(self) -> tuple[str, int]:
        assert self._rtcp_transport is not None
        addr: tuple[str, int] = self._rtcp_transport.get_extra_info("sockname")[:2]
        return addr

    def send_raw(self, data: bytes, port: int) -> None:
        assert self._transport is not None
        self._transport.sendto(data, ("127.0.0.1", port))

    def send_rtcp(self, data: bytes, port: int) -> None:
        assert self._rtcp_transport is not None
        self._rtcp_transport.sendto(data, ("127.0.0.1", port))

    def send_packet(
        self, port: int, payload_type: int, timestamp: int, payload: bytes, marker: bool = False
    ) -> None:
        packet = RtpPacket(payload_type, self._seq, timestamp, self.ssrc, payload, marker)
        self._seq = (self._seq + 1) & 0xFFFF
        self.send_raw(build_rtp(packet), port)
        self.sent += 1

    def start_tone(self, port: int) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send_tone(port))

    async def stop_tone(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _send_tone(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while True:
            n = np.arange(k * FRAME, (k + 1) * FRAME)
            if self.tone_hz is not None:
                pcm = (self.amplitude * np.sin(2 * np.pi * self.tone_hz * n / RATE)).astype(
                    np.int16
                )
                self.send_packet(
                    port, int(self.law), k * FRAME, g711.encode(self.law, pcm).tobytes()
                )
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - loop.time()))

    def close(self) -> None:
        for transport in (self._transport, self._rtcp_transport):
            if transport is not None:
                transport.close()

    def audio(self, since: float, until: float) -> npt.NDArray[np.float64]:
        """The decoded audio that arrived in [since, until), in sequence order."""
        chosen = sorted(
            (h.packet for h in self.heard if since <= h.arrival < until), key=lambda p: p.sequence
        )
        if not chosen:
            return np.zeros(0)
        return np.concatenate(
            [g711.decode(Law(p.payload_type), p.payload).astype(np.float64) for p in chosen]
        )


class _Stamped(asyncio.DatagramProtocol):
    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.phone.heard.append(Heard(asyncio.get_running_loop().time(), parse_rtp(data)))


class _StampedRtcp(asyncio.DatagramProtocol):
    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.phone.rtcp.append((asyncio.get_running_loop().time(), parse_compound(data)))


def tone_levels(audio: npt.NDArray[np.float64], freqs: list[float]) -> dict[float, float]:
    """Amplitude of each frequency in ``audio`` (Hann-windowed FFT, nearest bin, +-1 bin)."""
    if len(audio) < RATE // 4:
        return dict.fromkeys(freqs, 0.0)
    window = np.hanning(len(audio))
    spectrum = np.abs(np.fft.rfft(audio * window)) / (window.sum() / 2)
    bin_hz = RATE / len(audio)
    levels = {}
    for f in freqs:
        k = round(f / bin_hz)
        levels[f] = float(spectrum[max(k - 1, 0) : k + 2].max())
    return levels


#: RFC 4733 s3.2 event codes of the keys the tests press.
#: RFC 4733 s3.2 event codes of the keys (the inverse of the media server's table).
EVENT_CODES = {key: code for code, key in enumerate(DTMF_DIGITS)}


def press_key(phone: Phone, port: int, timestamp: int, key: str) -> int:
    """Presses ``key`` toward ``port`` as RFC 4733 s2.5 sends it (payload type 101): three
    updates, the first marked, then the end packet twice more. ``timestamp`` is the last
    event's; the new event's own (the last plus 1600) is returned."""
    code = EVENT_CODES[key]
    timestamp = (timestamp + 1600) & 0xFFFFFFFF  # a new event, a new timestamp
    for i, duration in enumerate((160, 320, 480)):
        payload = build_events(TelephoneEvent(code, i == 2, 10, duration))
        phone.send_packet(port, 101, timestamp, payload, marker=i == 0)
    for _ in range(2):  # the end packet three times in all (s2.5.1.4)
        payload = build_events(TelephoneEvent(code, True, 10, 480))
        phone.send_packet(port, 101, timestamp, payload)
    return timestamp


#: A tone someone is meant to hear arrives above this (each is sent at Phone's 8000);
#: one they must not hear stays below an eighth of it.
HEARD = 800.0


def assert_hears(levels: dict[float, float], heard: set[float], who: int) -> None:
    """``levels`` (tone_levels of party ``who``) has exactly the tones ``heard``."""
    for tone, level in levels.items():
        if tone in heard:
            assert level > HEARD, f"party {who} should hear {tone} Hz: {levels}"
        else:
            assert level < HEARD / 8, f"party {who} should not hear {tone} Hz: {levels}"
