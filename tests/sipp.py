"""Running sipp, the third-party SIP peer, from tests: every run bounded the same way
(``-timeout 60s -nostdin``, loopback ``-i 127.0.0.1``; the caller passes ``-m N``), its
output kept for the assertion message, and never left running."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

BOUNDS = ("-timeout", "60s", "-nostdin", "-i", "127.0.0.1")


def command(*args: str) -> list[str]:
    """sipp with ``args`` and the bounds."""
    return ["sipp", *args, *BOUNDS]


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """sipp started, stdout and stderr together in one text pipe."""
    return subprocess.Popen(
        command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """sipp run to its end; returns the finished process."""
    return subprocess.run(
        command(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"sipp exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def stop(*procs: subprocess.Popen[str]) -> None:
    """Kill whichever of ``procs`` is still running (a test that failed half-way)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def error_logs(cwd: Path) -> str:
    """The tail of each ``-trace_err`` log sipp wrote in ``cwd``."""
    return "".join(log.read_text(errors="replace")[-3000:] for log in cwd.glob("*_errors.log"))


def messages(cwd: Path) -> str:
    """Every ``-trace_msg`` log sipp wrote in ``cwd``."""
    return "".join(log.read_text(errors="replace") for log in cwd.glob("*_messages.log"))


# --- from a test whose server runs in the same event loop (it must not block the loop)


async def start_async(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    """sipp started as an asyncio subprocess, stdout and stderr together in one pipe."""
    return await asyncio.create_subprocess_exec(
        *command(*args), cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def finish_async(proc: asyncio.subprocess.Process, timeout: float = 90) -> tuple[int, str]:
    """Waits for ``proc`` to end (killed after ``timeout``); its exit code and output tail."""
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")[-3000:]


async def run_async(*args: str, cwd: Path, timeout: float = 90) -> tuple[int, str]:
    """sipp run to its end from inside an event loop; its exit code and output tail."""
    return await finish_async(await start_async(*args, cwd=cwd), timeout)
