"""``python -m mediactrl.server`` as an operator runs it: a subprocess on loopback, driven over
SIP + CFW by the real client, stopped by SIGTERM, and killed (SIGKILL) mid-conference."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from focus.sip.aio.ua import UserAgent
from mediactrl.client import MediaControlClient
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.legs import MediaLegs
from mediactrl.mixer import model as m
from mediactrl.plan import ConferenceSpec, participant_streams
from mediactrl.sip_opener import SipChannelOpener
from tests.mediactrl.server.conftest import FAST, sip_channel
from tests.mediactrl.server.test_sip_side import phone_sdp

READY = re.compile(rb"media server listening: SIP (sip:\S+) \(UDP and TCP\), CFW ([\d.]+):(\d+)")


class Process:
    def __init__(self, proc: asyncio.subprocess.Process, uri: str, cfw_port: int) -> None:
        self.proc = proc
        self.uri = uri
        self.cfw_port = cfw_port

    @property
    def port(self) -> int:
        return int(self.uri.rsplit(":", 1)[1])

    async def stop(self, sig: int) -> tuple[int, bytes]:
        self.proc.send_signal(sig)
        async with asyncio.timeout(20):
            out, _ = await self.proc.communicate()
        assert self.proc.returncode is not None
        return self.proc.returncode, out


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def launch(sip_port: int = 0, *extra: str) -> Process:
    base = random.randrange(20000, 60000, 2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediactrl.server",
        "--sip-listen",
        f"127.0.0.1:{sip_port}",
        "--rtp-ports",
        f"{base}-{base + 100}",
        "--log-level",
        "WARNING",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = await proc.stdout.readline()
    match = READY.search(line)
    if match is None:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"no ready line: {line!r}")
    return Process(proc, match.group(1).decode(), int(match.group(3)))


CFW_PORT = free_tcp_port()


@pytest.fixture
async def process() -> AsyncIterator[Process]:
    proc = await launch(0, "--cfw-listen", f"127.0.0.1:{CFW_PORT}")
    yield proc
    if proc.proc.returncode is None:
        proc.proc.kill()
        await proc.proc.wait()


async def test_sigterm_stops_cleanly_after_serving_a_channel(
    process: Process, ua: UserAgent
) -> None:
    async with sip_channel(ua, process.uri, 10) as (_, client):
        answer = await client.mixer(m.CreateConference("proc1"))
        assert isinstance(answer, m.Response) and answer.status == 200
        assert process.cfw_port == CFW_PORT  # --cfw-listen was honoured
    code, out = await process.stop(signal.SIGTERM)
    assert code == 0
    assert out.rstrip().endswith(b"media server stopped")


async def test_killed_server_comes_back_and_the_client_renegotiates_audits_recreates(
    process: Process, ua: UserAgent
) -> None:
    opener = SipChannelOpener(ua, process.uri, address="127.0.0.1")
    client = MediaControlClient(opener, FAST)
    refused: list[MediaDriverError] = []
    driver = MediaDriver(client, on_refused=refused.append)
    await client.start()
    restarted: Process | None = None
    try:
        await client.wait_up(10)
        leg = await MediaLegs(ua, process.uri).open(phone_sdp(31000))
        await driver.ensure_conference(ConferenceSpec("survivor"))
        await driver.set_join(leg.connection, "survivor", participant_streams())
        resyncs = driver.resyncs
        code, _ = await process.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
        restarted = await launch(process.port)  # same SIP address, new CFW port
        async with asyncio.timeout(20):
            while not (driver.resyncs > resyncs and refused):
                await asyncio.sleep(0.05)
        # The new server knows nothing: the driver re-created the conference over the new
        # channel; the join came back 412 (its SIP leg died with the old process).
        audit = await client.mixer(m.Audit())
        assert isinstance(audit, m.AuditResponse) and audit.mixers is not None
        assert [c.conferenceid for c in audit.mixers.conferences] == ["survivor"]
        assert not audit.mixers.joins
        assert set(refused[0].failures) == {(leg.connection, "survivor")}
        assert "no connection" in str(refused[0])
    finally:
        await client.close()
        await opener.close()
        if restarted is not None:
            code, _ = await restarted.stop(signal.SIGTERM)
            assert code == 0


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--sip-listen", "127.0.0.1:0", "--rtp-ports", "5000-4000"], 2, "LOW < HIGH"),
        (["--sip-listen", "0.0.0.0:0"], 1, "concrete address"),
        (["--sip-listen", "127.0.0.1:0", "--orphan-timeout", "-1"], 2, "seconds >= 0"),
    ],
    ids=["bad arguments get the usage", "a wildcard SIP address", "a negative orphan timeout"],
)
def test_bad_command_lines_are_refused(args: list[str], code: int, says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mediactrl.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == code
    assert says in result.stderr
