"""The sipp load runner bench/sip and bench/focus share: start a UAS command on a free
loopback port, drive it with one closed-loop sipp client (at most ``concurrency`` calls in
flight), and read calls, failures, wall time and the UAS's CPU time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    name: str
    calls: int
    failed: int
    seconds: float
    cpu_seconds: float | None

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_call(self) -> float | None:
        if self.cpu_seconds is None or not self.calls:
            return None
        return self.cpu_seconds / self.calls * 1e6


def missing() -> bool:
    """True, and said on stderr, when sipp is not installed."""
    if shutil.which("sipp") is not None:
        return False
    print("sipp is not installed (Debian: apt-get install sip-tester)", file=sys.stderr)
    return True


def free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def wait_bound(port: int, timeout: float = 10) -> None:
    """Until something has bound UDP ``port`` (our own bind then fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on UDP {port}")


def stat_counts(path: Path) -> tuple[int, int]:
    """(successful, failed) cumulative calls from sipp's -trace_stat CSV."""
    lines = path.read_text().strip().splitlines()
    header, last = lines[0].split(";"), lines[-1].split(";")
    ok = int(last[header.index("SuccessfulCall(C)")])
    failed = int(last[header.index("FailedCall(C)")])
    return ok, failed


@dataclass(frozen=True)
class Load:
    """How one target is driven.

    ``scenario``: sipp's scenario arguments (``-sn uac``, or ``-sf FILE -s SERVICE``);
    ``server_cwd``: where the UAS command runs; ``bind_timeout``: seconds to wait for it to
    bind its port, then ``settle`` seconds more (a focus opens its media channel after);
    ``call_timeout``: sipp's ``-timeout`` (the client process gets half as long again);
    ``extra``: further sipp arguments (``-d 0``)."""

    scenario: tuple[str, ...]
    server_cwd: Path
    bind_timeout: float = 10
    settle: float = 0.0
    call_timeout: int = 60
    extra: tuple[str, ...] = ()


def drive(
    name: str, server_cmd: list[str], load: Load, calls: int, concurrency: int, workdir: Path
) -> Result:
    """``server_cmd`` (``{port}`` replaced by a free port) under ``calls`` sipp calls."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in server_cmd]
    server = subprocess.Popen(
        command, cwd=load.server_cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_bound(port, timeout=load.bind_timeout)
        if load.settle:
            time.sleep(load.settle)
        cpu_before = cpu_seconds(server.pid)
        stats = workdir / f"{name.replace(' ', '_')}.csv"
        client = [
            "sipp",
            f"127.0.0.1:{port}",
            *load.scenario,
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-m",
            str(calls),
            "-r",
            "100000",
            "-l",
            str(concurrency),
            *load.extra,
            "-timeout",
            f"{load.call_timeout}s",
            "-nostdin",
            "-trace_stat",
            "-stf",
            str(stats),
            "-fd",
            "1",
        ]
        started = time.perf_counter()
        subprocess.run(
            client,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=load.call_timeout * 1.5,
            check=False,
        )
        seconds = time.perf_counter() - started
        cpu_after = cpu_seconds(server.pid)
        ok, failed = stat_counts(stats)
    finally:
        stop(server)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Result(name, ok, failed, seconds, cpu)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if the process has not exited 15 s later."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def print_results(results: list[Result], label: str, width: int) -> None:
    """The table both benches print: one row a target."""
    print(f"{label:<{width}}{'calls/s':>10}{'ok':>8}{'failed':>8}{'CPU us/call':>13}")
    for r in results:
        cpu = f"{r.cpu_us_per_call:.0f}" if r.cpu_us_per_call is not None else "-"
        print(f"{r.name:<{width}}{r.rate:>10.0f}{r.calls:>8}{r.failed:>8}{cpu:>13}")
