"""Shared helpers for the SIP tests that open real sockets or run real peers."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.message import Request
from focus.sip.uacore import IncomingRequest, UAConfig, UAEvent
from tests.certs import self_signed
from tests.paths import ROOT

__all__ = [
    "TlsFiles",
    "free_port",
    "free_udp_tcp_port",
    "in_loopback_namespace",
    "netns_available",
    "notify_answering_ua",
]


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


def in_loopback_namespace(script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``script`` (sh) in a new network namespace with only loopback, brought up first, so
    nothing it sends can leave the machine; run from the repository root, output kept."""
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && {script}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def netns_available() -> bool:
    """True if we may create a network namespace holding only loopback (root, unshare)."""
    try:
        return in_loopback_namespace(":", timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def udp_tcp_port() -> Iterator[int]:
    yield free_udp_tcp_port()


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away self-signed certificate for 127.0.0.1 and the contexts using it."""

    cert: Path
    key: Path

    def server(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client(self) -> ssl.SSLContext:
        # Verifies the peer (chain and the IP subjectAltName) against this one certificate.
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder)
    return TlsFiles(cert, key)


@contextlib.asynccontextmanager
async def notify_answering_ua(user: str, transport: TransportConfig) -> AsyncIterator[UserAgent]:
    """A UA (a subscriber's, a referrer's side) that answers every NOTIFY 200 and keeps it,
    in order, in ``agent.notifies``; closed on leaving."""
    notifies: list[Request] = []

    def on_event(agent: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingRequest) and event.request.method == "NOTIFY":
            notifies.append(event.request)
            agent.respond(event.request, 200)

    methods = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "NOTIFY"})
    agent = await UserAgent.start(
        UAConfig(user=user, methods=methods), transport, on_event=on_event
    )
    agent.notifies = notifies  # type: ignore[attr-defined]
    try:
        yield agent
    finally:
        await agent.close()
