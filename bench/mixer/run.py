"""Mixer benchmark: participants per core and late ticks, against plain RTP relaying.

Every scenario runs the real engine on real loopback sockets: a separate feeder process sends
one PCMU stream per participant every 20 ms; the engine decodes, jitter-buffers, mixes N-1 per
conference, encodes and sends one packet per participant per tick.  The baseline, measured in
the same run and on the same traffic, is a relay that forwards each packet unchanged to its
destination (no decoding, no mixing): the floor cost of the socket work alone.

CPU is this process's CPU time over the measured window, so "participants per core" is
participants / (CPU seconds per wall second).  Memory per participant is measured with
tracemalloc (Python and numpy allocations) on a separate short run.  Bounded to < 60 s.

    python bench/mixer/run.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from mediactrl.media import g711
from mediactrl.media.engine import MediaConfig, MediaEngine
from mediactrl.media.g711 import Law
from mediactrl.media.mixer import mix_many, saturate

FEEDER = Path(__file__).with_name("feeder.py")
WARMUP = 1.0


@dataclass
class Result:
    name: str
    participants: int
    cpu_fraction: float
    late_tick_rate: float | None  # of all ticks due, run late or skipped
    skipped_rate: float | None  # of all ticks due, skipped to catch up
    tick_ms: float | None

    @property
    def per_core(self) -> float:
        return self.participants / self.cpu_fraction if self.cpu_fraction > 0 else float("inf")


class _Sink(asyncio.DatagramProtocol):
    """Where the engine's output goes: received and dropped, as a phone would play it."""

    received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        _Sink.received += 1


class _TimedEngine(MediaEngine):
    tick_seconds = 0.0
    tick_count = 0

    def _tick(self, tick: int, now: float) -> None:
        start = time.perf_counter()
        super()._tick(tick, now)
        self.tick_seconds += time.perf_counter() - start
        self.tick_count += 1


async def _measure(
    ports: list[int], seconds: float, at_start: Callable[[], None] = lambda: None
) -> tuple[float, subprocess.Popen[bytes]]:
    feeder = subprocess.Popen(
        [sys.executable, str(FEEDER), str(seconds + WARMUP + 0.5), *map(str, ports)]
    )
    await asyncio.sleep(WARMUP)
    at_start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return cpu, feeder


async def mixing(name: str, conferences: int, size: int, seconds: float, base: int) -> Result:
    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    sink_addr = sink.get_extra_info("sockname")[:2]
    engine = _TimedEngine(
        MediaConfig(port_range=(base, base + 4 * conferences * size + 200), media_timeout=None)
    )
    ports = []
    for _ in range(conferences):
        conf = engine.create_conference()
        for _ in range(size):
            ep = await engine.create_endpoint(remote=sink_addr)
            engine.join(ep.id, conf)
            ports.append(ep.local_port)
    marks = []

    def start() -> None:  # after the warm-up: the jitter buffers are primed by then
        marks.append(engine.stats())
        engine.tick_seconds, engine.tick_count = 0.0, 0

    cpu, feeder = await _measure(ports, seconds, start)
    before, after = marks[0], engine.stats()
    tick_ms = 1000 * engine.tick_seconds / max(engine.tick_count, 1)
    feeder.wait()
    await engine.close()
    sink.close()
    ticks = after.ticks_run - before.ticks_run
    skipped = after.skipped_ticks - before.skipped_ticks
    late = (after.late_ticks - before.late_ticks) / max(ticks + skipped, 1)
    return Result(name, conferences * size, cpu, late, skipped / max(ticks + skipped, 1), tick_ms)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.target)


async def relaying(participants: int, seconds: float) -> Result:
    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    target = sink.get_extra_info("sockname")[:2]
    transports = []
    ports = []
    for _ in range(participants):
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Relay(target), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        ports.append(transport.get_extra_info("sockname")[1])
    cpu, feeder = await _measure(ports, seconds)
    feeder.wait()
    for transport in transports:
        transport.close()
    sink.close()
    return Result("relay (no mixing)", participants, cpu, None, None, None)


async def memory_per_participant(participants: int, base: int) -> float:
    """Bytes allocated per joined participant, including a second of buffered traffic."""
    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    sink_addr = sink.get_extra_info("sockname")[:2]
    tracemalloc.start()
    engine = MediaEngine(MediaConfig(port_range=(base, base + 4 * participants + 200)))
    baseline = tracemalloc.take_snapshot()
    conf = engine.create_conference()
    ports = []
    for _ in range(participants):
        ep = await engine.create_endpoint(remote=sink_addr)
        engine.join(ep.id, conf)
        ports.append(ep.local_port)
    feeder = subprocess.Popen([sys.executable, str(FEEDER), "1.0", *map(str, ports)])
    await asyncio.sleep(1.0)
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    feeder.wait()
    grown = sum(s.size_diff for s in snapshot.compare_to(baseline, "filename"))
    await engine.close()
    sink.close()
    return grown / participants


def pure_mix_cost(participants: int, conference_size: int, repeat: int = 200) -> float:
    """Microseconds per tick for the numpy part alone: decode, N-1 mix, saturate, encode."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(participants, 160), dtype=np.uint8)
    slots = np.arange(participants, dtype=np.intp)
    conference = slots // conference_size
    starts = np.arange(0, participants, conference_size, dtype=np.intp)
    gains = np.ones(participants, np.float32)
    start = time.perf_counter()
    for _ in range(repeat):
        pcm = g711.decode(Law.PCMU, codes)
        out = np.zeros((participants, 160), np.float32)
        mix_many(
            pcm,
            out,
            slots=slots,
            conference=conference,
            starts=starts,
            upstream=gains,
            downstream=gains,
            unique_slots=True,
        )
        g711.encode(Law.PCMU, saturate(out))
    return 1e6 * (time.perf_counter() - start) / repeat


async def main(quick: bool, participants: int) -> None:
    seconds = 2.0 if quick else 4.0
    big = 100 if quick else participants
    started = time.perf_counter()
    results = [
        await mixing(f"1 conference x {big}", 1, big, seconds, 30000),
        await mixing(f"{big // 4} conferences x 4", big // 4, 4, seconds, 32000),
        await relaying(big, seconds),
    ]
    memory = await memory_per_participant(100, 34000)
    print(
        f"{'scenario':28} {'parts':>6} {'cpu':>6} {'per core':>9} {'late':>7} {'skipped':>8}"
        f" {'tick ms':>8}"
    )
    for r in results:
        late = "-" if r.late_tick_rate is None else f"{100 * r.late_tick_rate:.1f}%"
        skipped = "-" if r.skipped_rate is None else f"{100 * r.skipped_rate:.1f}%"
        tick = "-" if r.tick_ms is None else f"{r.tick_ms:.2f}"
        print(
            f"{r.name:28} {r.participants:6d} {100 * r.cpu_fraction:5.1f}% "
            f"{r.per_core:9.0f} {late:>7} {skipped:>8} {tick:>8}"
        )
    print("per core = participants / CPU share; it only holds while late and skipped stay near 0")
    print(
        f"memory per participant: {memory / 1024:.1f} KiB (tracemalloc, 100 joined, 1 s of traffic)"
    )
    for size, group in ((1000, 1000), (1000, 4)):
        cost = pure_mix_cost(size, group)
        print(
            f"numpy work alone, {size} participants in conferences of {group}: "
            f"{cost:.0f} us per 20 ms tick ({100 * cost / 20000:.1f}% of a core)"
        )
    print(f"total bench time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 participants, 2 s each")
    parser.add_argument(
        "--participants", type=int, default=300, help="participants per scenario (default 300)"
    )
    args = parser.parse_args()
    if not 4 <= args.participants <= 1000:
        parser.error("--participants must be between 4 and 1000 (the run stays under 60 s)")
    asyncio.run(main(args.quick, args.participants))
