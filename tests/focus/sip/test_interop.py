"""Interop with sipp, a real third-party SIP peer, over loopback UDP and TCP.

* sipp UAC (built-in and the checking scenario of sip_profiles/sipp/) against the standalone
  UAS (``python -m focus.sip``), including 10 % packet loss on sipp's side;
* the stack as UAC against ``sipp -sn uas``;
* SUBSCRIBE/NOTIFY (stack subscriber, sipp notifier scenario) and REFER (sipp referrer
  scenario, stack referee placing the transfer call to another sipp).

Every sipp run is bounded: ``-m N -timeout 60s -nostdin``; ports are picked free.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.message import Request
from tests import sipp as peer
from tests.focus.sip.conftest import (
    TlsFiles,
    free_port,
    free_udp_tcp_port,
    notify_answering_ua,
)
from tests.paths import ROOT

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

SCENARIOS = ROOT / "sip_profiles" / "sipp"


class Uas:
    """The standalone UAS as a subprocess."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "focus.sip", "--listen", f"127.0.0.1:{port}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening" in line, line

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        return out


@pytest.fixture
def uas() -> Iterator[Uas]:
    server = Uas(free_udp_tcp_port())
    try:
        yield server
    finally:
        out = server.stop()
        assert server.proc.returncode == 0, out
        assert "Traceback" not in out, out


def sipp(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run sipp bounded (the caller passes -m); returns the finished process."""
    return peer.run(*args, "-max_socket", "512", cwd=cwd, timeout=timeout)


explain = peer.explain


# --- sipp UAC -> stack UAS ------------------------------------------------------------------


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(("-m", "60", "-r", "30"), id="udp"),
        pytest.param(("-t", "t1", "-m", "60", "-r", "30"), id="tcp"),
        # -t tn: every call opens its own connection, so the UAS keeps many at once and
        # answers each request over the connection it came on.
        pytest.param(("-t", "tn", "-m", "100", "-r", "50"), id="one_tcp_connection_per_call"),
        # sipp drops 10 % of what it sends and receives: INVITE, 200, ACK and BYE all get
        # lost sometimes, and only retransmissions (ours and sipp's) can complete the calls.
        pytest.param(("-lost", "10", "-m", "40", "-r", "20"), id="ten_percent_loss"),
    ],
)
def test_sipp_uac_calls_the_stack(uas: Uas, tmp_path: Path, load: tuple[str, ...]) -> None:
    result = sipp(
        f"127.0.0.1:{uas.port}", "-sn", "uac", *load, "-p", str(free_port()), cwd=tmp_path
    )
    assert result.returncode == 0, explain(result)


def _to_tags_of_invite_200s(trace: str) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for block in trace.split("-----------------------------------------------"):
        if "message received" not in block or "SIP/2.0 200 OK" not in block:
            continue
        if not re.search(r"^CSeq:\s*1 INVITE", block, re.M):
            continue
        call_id = re.search(r"^Call-ID:\s*(\S+)", block, re.M)
        tag = re.search(r"^To:.*;tag=([^;>\s]+)", block, re.M)
        assert call_id and tag, block
        tags.setdefault(call_id.group(1), []).append(tag.group(1))
    return tags


def held_ack_calls(port: int, calls: int, cwd: Path) -> dict[str, list[str]]:
    """``calls`` calls of the checking scenario, each ACK held 1.7 s (so a UAS that
    retransmits its 2xx, T1 then 2*T1, is seen doing it), which must pass; Call-ID -> the
    To-tags of every 200 to the INVITE sipp received."""
    trace = cwd / "messages.log"
    result = sipp(
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / "uac_call_checked.xml"),
        "-d",
        "1700",
        "-m",
        str(calls),
        "-r",
        "10",
        "-p",
        str(free_port()),
        "-trace_msg",
        "-message_file",
        str(trace),
        cwd=cwd,
    )
    assert result.returncode == 0, explain(result)
    return _to_tags_of_invite_200s(trace.read_text(errors="replace"))


def test_checked_scenario_and_to_tag_stable_across_2xx_retransmissions(
    uas: Uas, tmp_path: Path
) -> None:
    tags = held_ack_calls(uas.port, 4, tmp_path)
    assert len(tags) == 4
    for call_id, seen in tags.items():
        # Held ACK for 1.7 s: the 200 was retransmitted (T1, 2*T1) with the same To-tag.
        assert len(seen) >= 2, (call_id, seen)
        assert len(set(seen)) == 1, (call_id, seen)


def test_the_retransmission_check_catches_a_uas_that_does_not_retransmit(tmp_path: Path) -> None:
    # The bare benchmark responder answers each INVITE once and never retransmits: the same
    # scenario and analysis must notice (a check that cannot fail proves nothing).
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "bench.sip.bare_responder", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bare.stdout is not None and "bare responder" in bare.stdout.readline()
        # headers and bodies are fine (held_ack_calls asserts sipp passed)...
        tags = held_ack_calls(port, 1, tmp_path)
        assert [len(seen) for seen in tags.values()] == [1]  # ...but no 2xx retransmission
    finally:
        bare.terminate()
        bare.communicate(timeout=10)


def test_checked_scenario_over_tcp(uas: Uas, tmp_path: Path) -> None:
    result = sipp(
        f"127.0.0.1:{uas.port}",
        "-sf",
        str(SCENARIOS / "uac_call_checked.xml"),
        "-t",
        "t1",
        "-d",
        "0",
        "-m",
        "10",
        "-r",
        "10",
        "-p",
        str(free_port()),
        cwd=tmp_path,
    )
    assert result.returncode == 0, explain(result)


def sipp_refers(
    port: int, refer_to: str, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """One call of the REFER checking scenario (uac_refer.xml) to ``port``, referring the
    referee to ``refer_to``."""
    return sipp(
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / "uac_refer.xml"),
        *args,
        "-set",
        "referto",
        refer_to,
        "-m",
        "1",
        "-p",
        str(free_udp_tcp_port()),  # TCP too, for -t t1
        cwd=cwd,
    )


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_refer_transfers_and_reports_with_sipfrag_notifies(
    uas: Uas, tmp_path: Path, transport: str
) -> None:
    # Over TCP the UAS's NOTIFYs reuse the connection sipp's INVITE opened.
    target_port = free_port()
    target = peer.start("-sn", "uas", "-m", "1", "-p", str(target_port), cwd=tmp_path)
    try:
        result = sipp_refers(
            uas.port, f"sip:target@127.0.0.1:{target_port}", tmp_path, "-t", transport
        )
        assert result.returncode == 0, explain(result)
        out, _ = target.communicate(timeout=30)
        assert target.returncode == 0, out[-3000:]
    finally:
        peer.stop(target)


def test_the_refer_scenario_fails_against_a_referee_that_changes_its_tag(tmp_path: Path) -> None:
    port = free_port()
    broken = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / "uas_referee_broken.xml"),
            "-m",
            "1",
            "-timeout",
            "30s",
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = sipp_refers(port, "sip:nobody@127.0.0.1:9", tmp_path)
        assert result.returncode == 1, explain(result)
        # Failed on purpose, at the tag check: the "999" step (reached only from there) timed
        # out once (columns: messages, retransmissions, timeouts).
        assert re.search(r"999 <-+\s+0\s+0\s+1\b", result.stdout), explain(result)
    finally:
        broken.kill()
        broken.wait()


# --- stack UAC -> sipp ----------------------------------------------------------------------


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    async with notify_answering_ua("subscriber", TransportConfig(udp_port=0, tcp_port=0)) as agent:
        yield agent


async def start_sipp(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *peer.command(*args),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")[-3000:]


async def wait_listening(port: int, tcp: bool = False) -> None:
    """Wait until sipp has bound ``port``: binding it ourselves fails from then on."""
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    async with asyncio.timeout(10):
        while True:
            with socket.socket(socket.AF_INET, kind) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    return
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_stack_uac_calls_sipp_uas(ua: UserAgent, tmp_path: Path, transport: str) -> None:
    port = free_udp_tcp_port()
    proc = await start_sipp("-sn", "uas", "-t", transport, "-m", "1", "-p", str(port), cwd=tmp_path)
    try:
        await wait_listening(port, tcp=transport == "t1")
        suffix = ";transport=tcp" if transport == "t1" else ""
        offer = (
            b"v=0\r\no=focus 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            b"t=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        call = await asyncio.wait_for(ua.invite(f"sip:service@127.0.0.1:{port}{suffix}", offer), 20)
        assert b"m=audio" in call.remote_sdp
        assert call.dialog is not None and "SIPpTag01" in call.dialog.id.remote_tag
        response = await asyncio.wait_for(ua.bye(call), 20)
        assert response is not None and response.status == 200
        code, out = await finish(proc)
        assert code == 0, out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_stack_subscriber_against_sipp_notifier(ua: UserAgent, tmp_path: Path) -> None:
    port = free_port()
    proc = await start_sipp(
        "-sf", str(SCENARIOS / "uas_notifier.xml"), "-m", "1", "-p", str(port), cwd=tmp_path
    )
    try:
        await wait_listening(port)
        response, dialog = await asyncio.wait_for(
            ua.subscribe(
                f"sip:conf@127.0.0.1:{port}",
                "conference",
                600,
                accept="application/conference-info+xml",
            ),
            20,
        )
        assert response.status == 200 and dialog is not None
        notifies: list[Request] = ua.notifies  # type: ignore[attr-defined]
        async with asyncio.timeout(20):
            while not notifies:
                await asyncio.sleep(0.02)
        first = notifies[0]
        assert (first.headers.get("Subscription-State") or "").startswith("active")
        assert b"conference-info" in first.body
        assert first.to.tag == dialog.id.local_tag and first.from_.tag == dialog.id.remote_tag
        response, _ = await asyncio.wait_for(ua.subscribe(dialog, "conference", 0), 20)
        assert response.status == 200
        async with asyncio.timeout(20):
            while len(notifies) < 2:
                await asyncio.sleep(0.02)
        assert (notifies[1].headers.get("Subscription-State") or "").startswith("terminated")
        code, out = await finish(proc)
        assert code == 0, out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_uas_serves_tls_too(tls_files: TlsFiles, tmp_path: Path) -> None:
    port, tls_port = free_udp_tcp_port(), free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "focus.sip",
            "--listen",
            f"127.0.0.1:{port}",
            "--tls-port",
            str(tls_port),
            "--cert",
            str(tls_files.cert),
            "--key",
            str(tls_files.key),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"TLS on {tls_port}" in proc.stdout.readline()
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw,
            tls_files.client().wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            conn.sendall(
                b"OPTIONS sip:uas@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:1;branch="
                b"z9hG4bKtls\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:uas@127.0.0.1>\r\n"
                b"Call-ID: tls@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            assert conn.recv(4096).startswith(b"SIP/2.0 200 OK\r\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in out, out


def test_uas_exits_cleanly_on_sigint() -> None:
    server = Uas(free_udp_tcp_port())
    server.proc.send_signal(signal.SIGINT)
    out, _ = server.proc.communicate(timeout=10)
    assert server.proc.returncode == 0 and "stopped" in out, out
