"""Calls that vanish end (issue 10): a phone killed mid-call (SIGKILL: no BYE, no more RTP or
RTCP) leaves its conference within the profile's ``media_timeout`` (3 s here, a test value)
against a running ``python -m focus serve``, and what it held goes with it: its user leaves
the roster (CCMP), the ad hoc conference ends (CCMP ``confs``), the media server's RTP port
pair is free again (a test socket can bind it) and the focus says why in its log. A call on
hold that sends nothing is not ended. Real peers: sipp (rtp_stream) and baresip."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from focus.settings import DEFAULT_RTP_PORTS
from tests import sipp as peer
from tests.focus.calls.test_baresip import Baresip, free_ports
from tests.paths import SIPP_SCENARIOS
from tests.process.test_serve import user_add
from tests.serve import Serve, open_profile

pytestmark = [pytest.mark.interop, pytest.mark.slow]

MEDIA_TIMEOUT = 3
GRACE = 10  # seconds past the timeout for the tick, the event, the BYE and the clean-up
needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
needs_baresip = pytest.mark.skipif(
    shutil.which("baresip") is None, reason="baresip is not installed"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Serve]:
    state = tmp_path / "state"
    done = user_add(state, "alice", "administrator", "s3cret\n", "--domain", "example.org")
    assert done.returncode == 0, done.stderr
    profile = tmp_path / "vanishing.toml"
    profile.write_text(
        open_profile(f"media_timeout = {MEDIA_TIMEOUT}  # a test value (below 10 s)\n")
    )
    srv = Serve(state, "--profile", str(profile))
    yield srv
    srv.kill()


def conferences(server: Serve) -> list[str]:
    return sorted(set(re.findall(r"xcon:[^\s@]+@example\.org", server.ccmp("confs"))))


def wait_for(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Polls ``check`` until true; the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - start


LOW_RTP, HIGH_RTP = DEFAULT_RTP_PORTS


def rtp_ports(server: Serve) -> set[int]:
    """The UDP ports in the bundled media server's RTP range (the default, below the
    kernel's ephemeral ports, so no other socket of the process lands there) that the focus
    process holds a socket on (its /proc fds matched with /proc/net/udp)."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{server.proc.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[9] in inodes and LOW_RTP <= port <= HIGH_RTP:
                ports.add(port)
    return ports


def media_server_port(cwd: Path) -> int | None:
    """The media server's audio port in the 200 sipp received (its -trace_msg log)."""
    for log in cwd.glob("*_messages.log"):
        for block in re.split(r"\n-{10,}[^\n]*\n", log.read_text(errors="replace")):
            if "message received" in block and "SIP/2.0 200" in block:
                found = re.search(r"^m=audio (\d+)", block, re.M)
                if found:
                    return int(found.group(1))
    return None


def vanishing_caller(target: str, cwd: Path) -> tuple[str, ...]:
    """sipp's arguments for one focus_vanishing.xml caller to ``target``'s factory, run in
    ``cwd`` (made here, with the RTP it streams)."""
    cwd.mkdir()
    (cwd / "vanishing.ulaw").write_bytes(b"\xff" * 16000)  # 2 s of PCMU silence, looped
    sipp = str(SIPP_SCENARIOS / "focus_vanishing.xml")
    return (target, "-sf", sipp, "-s", "conference", "-m", "1", "-trace_msg")


def vanished(server: Serve, conference: str, port: int, kill: Callable[[], None]) -> None:
    """Kills the phone and checks that everything it held is released in time."""
    kill()
    took = wait_for(
        lambda: conference not in conferences(server),
        "the ad hoc conference ended",
        MEDIA_TIMEOUT + GRACE,
    )
    assert took >= MEDIA_TIMEOUT - 1, "ended before the media timeout: not by it"
    assert port not in rtp_ports(server), "the media server still holds the leg's RTP ports"
    assert not rtp_ports(server)
    assert server.stop(signal.SIGTERM) == 0
    assert b"no media from" in server.log and b"ending the call" in server.log


@needs_sipp
def test_a_killed_sipp_caller_is_gone_within_the_media_timeout(
    server: Serve, tmp_path: Path
) -> None:
    cwd = tmp_path / "sipp"
    sipp = peer.start(*vanishing_caller(f"127.0.0.1:{server.sip_port}", cwd), cwd=cwd)
    try:
        wait_for(lambda: bool(conferences(server)), "sipp's ad hoc conference", 20)
        (conference,) = conferences(server)
        users = server.ccmp("users", conference)
        assert "sipp1@" in users, users
        port = media_server_port(cwd)
        assert port is not None and rtp_ports(server) == {port, port + 1}
        # Alive, it sends RTP: the media timeout passes and the call stays.
        time.sleep(MEDIA_TIMEOUT + 2)
        assert conferences(server) == [conference], "a talking caller was ended"

        def kill() -> None:
            os.kill(sipp.pid, signal.SIGKILL)
            sipp.communicate(timeout=10)  # reaped, its pipe closed

        vanished(server, conference, port, kill)
    finally:
        peer.stop(sipp)


@needs_sipp
def test_a_held_silent_sipp_call_is_not_ended(server: Serve, tmp_path: Path) -> None:
    hold_ms = (2 * MEDIA_TIMEOUT + 2) * 1000
    done = peer.run(
        f"127.0.0.1:{server.sip_port}",
        "-sf",
        str(SIPP_SCENARIOS / "focus_held_silent.xml"),
        "-s",
        "conference",
        "-d",
        str(hold_ms),
        "-m",
        "1",
        "-trace_err",
        cwd=tmp_path,
    )
    assert done.returncode == 0, peer.explain(done) + peer.error_logs(tmp_path)
    assert server.stop(signal.SIGTERM) == 0
    assert b"no media from" not in server.log


@needs_baresip
async def test_a_killed_baresip_phone_is_gone_within_the_media_timeout(
    server: Serve, tmp_path: Path
) -> None:
    sip_port, ctrl_port = free_ports(2)
    phone = Baresip(tmp_path / "baresip", sip_port, ctrl_port)
    try:
        await phone.start(700.0)
        phone.command("dial", f"sip:conference@127.0.0.1:{server.sip_port}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not phone.saw("CALL_ESTABLISHED"):
            assert loop.time() < deadline, f"baresip did not get in: {phone.events}"
            await asyncio.sleep(0.1)
        (conference,) = await asyncio.to_thread(conferences, server)
        (port, _) = sorted(rtp_ports(server))  # its leg's RTP and RTCP sockets
        await asyncio.sleep(MEDIA_TIMEOUT + 2)  # alive: its RTP keeps the call
        assert await asyncio.to_thread(conferences, server) == [conference]
        assert phone.proc is not None
        proc = phone.proc
        await asyncio.to_thread(vanished, server, conference, port, proc.kill)
    finally:
        await phone.stop()
