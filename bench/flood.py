"""Overload bench: a sipp INVITE flood at the conference factory, 5x the rate the focus
completes joins, for 10 s (issue 10: answer, do not drown).

One run, one ``python -m focus serve`` (bundled media server, a profile in a temporary
directory that opens the factory to anyone), all on loopback:

1. the join rate: a closed loop of ``--calls`` factory calls (INVITE, 200, ACK, 200 ms in
   the conference, BYE; ``sip_profiles/sipp/focus_factory.xml``), at most ``--concurrency``
   in flight; joins completed per second is the flood's base;
2. quiet: the p99 of a CCMP conference retrieve (one client, back to back, for 3 s), the
   focus's CPU (share of one core over 2 s) and its RSS;
3. the flood: sipp at 5x the join rate for ``--seconds`` (``bench/flood_factory.xml``:
   200 or 503 accepted, anything else or no final answer within 32 s counts as nothing),
   with CCMP retrieves timed all the while;
4. 30 s after the flood stopped: CPU, RSS and the heap again; 15 s later the heap once more
   (by then every flood transaction has ended: Timer L/J and D are 32 s, 64*T1).

Memory is reported twice, because RSS alone is not honest about a leak: CPython keeps freed
pymalloc arenas and glibc keeps freed pages, so RSS after a peak stays near the peak even
when everything the flood allocated is free again. The focus runs under
:mod:`bench.heap_focus` (``python -m focus serve`` plus a SIGUSR1 probe, bench-only: the
product has no such option) and reports, when the bench signals it, the objects the garbage
collector tracks, pymalloc's allocated blocks and glibc's malloc bytes in use. The memory
goal is judged on that heap figure (malloc bytes in use back within 10 % of before, live
objects within 5 %); RSS is printed beside it. ``--trim`` has the probe call glibc's
``malloc_trim(0)`` after its reading, to show how much of the RSS was free pages malloc
kept (a measurement aid: the focus itself never trims).

It prints how many INVITEs got 200, 503 and nothing, both p99s, CPU and RSS before and
after, and whether each goal is met: every INVITE answered within 32 s; CCMP p99 during the
flood under 3x the quiet p99; CPU back within 5 points of a core and the heap back (above).

Run: ``python -m bench.flood`` (repository root; needs ``sipp``). About 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import sipp
from bench.ccmp.run import HEADERS
from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import (
    CcmpRequest,
    MessageType,
    Operation,
    ResponseCode,
    Subject,
)

ROOT = Path(__file__).resolve().parents[1]
JOIN_SCENARIO = ROOT / "sip_profiles" / "sipp" / "focus_factory.xml"
FLOOD_SCENARIO = ROOT / "bench" / "flood_factory.xml"
SUBJECT = Subject("bench", "bench-password")
USER_ID = "xcon-userid:bench@example.org"
ANSWER_BOUND = 32  # seconds: 64*T1, the INVITE client transaction's Timer B
CCMP_LISTEN = re.compile(rb"CCMP server listening on http://[^:]+:(\d+)/ccmp")


@dataclass
class Usage:
    cpu: float  # share of one core, percent
    rss: int  # bytes


def usage(pid: int, window: float = 2.0) -> Usage:
    before = sipp.cpu_seconds(pid) or 0.0
    time.sleep(window)
    after = sipp.cpu_seconds(pid) or 0.0
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return Usage(100 * (after - before) / window, rss)


def heap(pid: int, report: Path, timeout: float = 20.0) -> dict[str, float]:
    """The focus's heap figures (bench.heap_focus writes one JSON line per SIGUSR1)."""
    seen = len(report.read_text().splitlines()) if report.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = report.read_text().splitlines() if report.exists() else []
        if len(lines) > seen:
            figures: dict[str, float] = json.loads(lines[seen])
            return figures
        time.sleep(0.1)
    raise RuntimeError("the focus did not report its heap (is it bench.heap_focus?)")


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000 if ordered else 0.0


def profile_text(extra: str = "") -> str:
    # The flood comes from one address (sipp's): its per-source rate limit is lifted, so
    # what is measured is the focus's own load shedding, not the rate limiter.
    text = 'domain = "example.org"\nsource_rate = 0.0\n' + extra
    # The factory needs an authenticated caller by default (a TOML table: it goes last).
    return text + '\n[authorization]\nfactory = "anyone"\n'


def start_focus(
    work: Path, sip_port: int, extra: str = "", *, trim: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    py = sys.executable
    state = work / "state"
    added = subprocess.run(
        [
            py,
            "-m",
            "focus",
            "user",
            "add",
            "bench",
            "--role",
            "moderator",
            "--password-stdin",
            "--state-dir",
            str(state),
            "--domain",
            "example.org",
        ],
        input=b"bench-password\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    if added.returncode:
        raise RuntimeError(f"user add failed: {added.stderr.decode()}")
    profile = work / "flood.toml"
    profile.write_text(profile_text(extra))
    log = (work / "focus.log").open("wb")
    proc = subprocess.Popen(
        [
            py,
            "-m",
            "bench.heap_focus",
            str(work / "heap.jsonl"),
            "serve",
            "--state-dir",
            str(state),
            "--profile",
            str(profile),
            "--ccmp-listen",
            "127.0.0.1:0",
            "--sip-listen",
            f"127.0.0.1:{sip_port}",
            "--domain",
            "example.org",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "XCON_BENCH_TRIM": "trim" if trim else ""},
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = CCMP_LISTEN.search((work / "focus.log").read_bytes())
        if match:
            return proc, f"http://127.0.0.1:{int(match.group(1))}/ccmp"
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"focus did not start: {(work / 'focus.log').read_text()[-2000:]}")


def run_sipp(args: list[str], work: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", *args, "-i", "127.0.0.1", "-p", str(sipp.free_port()), "-nostdin"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def join_rate(port: int, calls: int, concurrency: int, work: Path) -> tuple[float, int]:
    """Joins completed per second in a closed loop, and how many calls failed (refused)."""
    stats = work / "joins.csv"
    started = time.perf_counter()
    proc = run_sipp(
        [
            f"127.0.0.1:{port}",
            "-sf",
            str(JOIN_SCENARIO),
            "-s",
            "conference",
            "-m",
            str(calls),
            "-l",
            str(concurrency),
            "-r",
            "100000",
            "-d",
            "0",
            "-timeout",
            "30s",
            "-trace_stat",
            "-stf",
            str(stats),
            "-fd",
            "1",
        ],
        work,
    )
    proc.wait(45)
    seconds = time.perf_counter() - started
    ok, failed = sipp.stat_counts(stats)
    return ok / seconds, failed


class Ccmp:
    """One CCMP client timing conference retrieves back to back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.retrieve = b""

    async def prepare(self, session: aiohttp.ClientSession) -> None:
        made = await self._post(
            session,
            encode_request(
                CcmpRequest(
                    subject=SUBJECT,
                    conf_user_id=USER_ID,
                    message_type=MessageType.CONF,
                    operation=Operation.CREATE,
                )
            ),
        )
        answer = decode_response(made)
        if answer.code is not ResponseCode.SUCCESS or answer.conf_obj_id is None:
            raise RuntimeError(f"cannot create a conference over CCMP: {answer}")
        self.retrieve = encode_request(
            CcmpRequest(
                subject=SUBJECT,
                conf_user_id=USER_ID,
                message_type=MessageType.CONF,
                operation=Operation.RETRIEVE,
                conf_obj_id=answer.conf_obj_id,
            )
        )

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> bytes:
        async with session.post(self.url, data=body, headers=HEADERS) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"CCMP HTTP {resp.status}")
            return data

    async def time_for(self, session: aiohttp.ClientSession, seconds: float) -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await self._post(session, self.retrieve)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)  # a steady probe, not a second load
        return latencies


def count_answers(work: Path) -> tuple[int, int]:
    text = "".join(p.read_text(errors="replace") for p in work.glob("flood*_logs.log"))
    return text.count("answered 200"), text.count("answered 503")


async def measure(args: argparse.Namespace, work: Path) -> int:
    port = sipp.free_port()
    focus, url = start_focus(work, port, "\n".join(args.set), trim=args.trim)
    report = work / "heap.jsonl"
    try:
        sipp.wait_bound(port)
        ccmp = Ccmp(url)
        async with aiohttp.ClientSession() as session:
            await ccmp.prepare(session)
            rate, join_failures = await asyncio.to_thread(
                join_rate, port, args.calls, args.concurrency, work
            )
            if args.joins_only:
                print(f"join rate (closed loop, {args.concurrency} in flight): {rate:.0f}/s")
                return 0
            quiet = await ccmp.time_for(session, 3.0)
            before = await asyncio.to_thread(usage, focus.pid)
            heap_before = await asyncio.to_thread(heap, focus.pid, report)
            flood_rate = max(1, round(5 * rate))
            total = flood_rate * args.seconds
            flood = run_sipp(
                [
                    f"127.0.0.1:{port}",
                    "-sf",
                    str(FLOOD_SCENARIO),
                    "-s",
                    "conference",
                    "-r",
                    str(flood_rate),
                    "-m",
                    str(total),
                    "-l",
                    str(total),
                    "-recv_timeout",
                    str(ANSWER_BOUND * 1000),
                    "-timeout",
                    "60s",
                    "-trace_logs",
                    "-log_file",
                    str(work / "flood_logs.log"),
                ],
                work,
            )
            flood_started = time.monotonic()
            during = await ccmp.time_for(session, float(args.seconds))
            flood_stopped = time.monotonic()
            await asyncio.to_thread(flood.wait, 75)
            wait = args.settle - (time.monotonic() - flood_stopped)
            if wait > 0:
                await asyncio.sleep(wait)
            after = await asyncio.to_thread(usage, focus.pid)
            heap_after = await asyncio.to_thread(heap, focus.pid, report)
            await asyncio.sleep(15)
            heap_late = await asyncio.to_thread(heap, focus.pid, report)
    finally:
        sipp.stop(focus)
    ok, refused = count_answers(work)
    nothing = total - ok - refused
    quiet_p99, flood_p99 = p99(quiet), p99(during)
    answered = nothing == 0
    responsive = flood_p99 < 3 * quiet_p99
    in_use = "malloc_in_use" if "malloc_in_use" in heap_before else "pymalloc_blocks"
    heap_back = (
        heap_late[in_use] <= heap_before[in_use] * 1.1
        and heap_late["gc_objects"] <= heap_before["gc_objects"] * 1.05
    )
    recovered = after.cpu <= before.cpu + 5 and heap_back
    print(
        f"join rate (closed loop of {args.calls} calls, {args.concurrency} in flight): "
        f"{rate:.0f} joins/s ({join_failures} calls refused or failed)"
    )
    print(
        f"flood: {flood_rate} INVITE/s for {args.seconds} s = {total} INVITEs "
        f"(sending took {flood_stopped - flood_started:.1f} s)"
    )
    print(f"  200: {ok}   503: {refused}   nothing (or other) within {ANSWER_BOUND} s: {nothing}")
    print(
        f"CCMP retrieve p99: quiet {quiet_p99:.1f} ms ({len(quiet)} requests), "
        f"during the flood {flood_p99:.1f} ms ({len(during)} requests)"
    )
    print(
        f"focus CPU {before.cpu:.1f} % -> {after.cpu:.1f} % of a core, "
        f"RSS {before.rss / 2**20:.1f} MiB -> {after.rss / 2**20:.1f} MiB "
        f"({args.settle:.0f} s after the flood)"
    )
    print(
        f"focus heap (bench.heap_focus): live objects {heap_before['gc_objects']:.0f} -> "
        f"{heap_after['gc_objects']:.0f} -> {heap_late['gc_objects']:.0f}, pymalloc blocks "
        f"{heap_before['pymalloc_blocks']:.0f} -> {heap_after['pymalloc_blocks']:.0f} -> "
        f"{heap_late['pymalloc_blocks']:.0f} (before, {args.settle:.0f} s after, "
        f"{args.settle + 15:.0f} s after)"
    )
    if "malloc_in_use" in heap_before:
        print(
            f"  malloc in use {mib(heap_before['malloc_in_use'])} -> "
            f"{mib(heap_after['malloc_in_use'])} -> {mib(heap_late['malloc_in_use'])}; "
            f"held by malloc {mib(heap_before['malloc_held'])} -> "
            f"{mib(heap_after['malloc_held'])} -> {mib(heap_late['malloc_held'])}"
        )
    if "rss_after_trim" in heap_late:
        print(
            f"  RSS {mib(heap_late['rss'])} -> {mib(heap_late['rss_after_trim'])} after "
            f"malloc_trim(0) ({args.settle + 15:.0f} s after; before the flood: "
            f"{mib(heap_before['rss_after_trim'])} after a trim)"
        )
    for goal, met in (
        (f"every INVITE got a final answer within {ANSWER_BOUND} s", answered),
        ("CCMP p99 during the flood < 3x quiet p99", responsive),
        ("CPU and the heap back to their before-values", recovered),
    ):
        print(f"  [{'met' if met else 'NOT met'}] {goal}")
    return 0 if answered and responsive and recovered else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200, help="join-rate calls (200)")
    parser.add_argument("--concurrency", type=int, default=8, help="join-rate sipp -l (8)")
    parser.add_argument("--seconds", type=int, default=10, help="flood duration (10)")
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds after the flood before the after-values (30)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a profile line for the focus (TOML, e.g. max_joins_in_progress=8); repeatable",
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="have the focus call glibc malloc_trim(0) after each heap reading",
    )
    parser.add_argument("--joins-only", action="store_true", help="measure the join rate only")
    args = parser.parse_args(argv)
    if sipp.missing():
        return 2
    with socket.socket() as probe:  # loopback only: fail early where there is none
        probe.bind(("127.0.0.1", 0))
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        return asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
