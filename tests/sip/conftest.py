"""Shared helpers for the SIP tests that open real sockets or run real peers."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

__all__ = ["free_port", "free_udp_tcp_port", "netns_available"]


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    """A port that is free right now for ``kind`` on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP (SIP listens on both, RFC 3261 s18.2.1)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM, host)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def netns_available() -> bool:
    """True if we may create a network namespace holding only loopback (root, unshare)."""
    try:
        result = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"],
            capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture
def udp_tcp_port() -> Iterator[int]:
    yield free_udp_tcp_port()
