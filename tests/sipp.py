"""Running sipp, the third-party SIP peer, from tests: every run bounded the same way
(``-timeout 60s -nostdin``, loopback ``-i 127.0.0.1``; the caller passes ``-m N``), its
output kept for the assertion message, and never left running."""

from __future__ import annotations

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
