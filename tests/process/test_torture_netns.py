"""Every RFC 4475 torture message sent to `python -m focus serve` (bundled media server and
all) inside a loopback-only network namespace -- whatever the focus answers to the foreign
hosts those messages name cannot leave the machine -- then a factory call still completes
and SIGTERM stops the process cleanly, with no traceback in its log.

Run as a module (``python -m tests.process.test_torture_netns``) this file is the driver
that runs inside the namespace."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
import tempfile

import pytest

from tests.focus.sip.conftest import in_loopback_namespace, netns_available
from tests.paths import ROOT
from tests.serve import OPEN_SIP

VECTORS = ROOT / "tests" / "vectors" / "rfc4475"
OFFER = (
    b"v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0\r\n"
)


@pytest.mark.interop
@pytest.mark.skipif(
    shutil.which("unshare") is None or not netns_available(),
    reason="needs unshare -n (root) for a loopback-only namespace",
)
def test_torture_messages_in_a_namespace() -> None:
    done = in_loopback_namespace(
        f"exec {sys.executable} -m tests.process.test_torture_netns", timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "call ok" in done.stdout


async def drive() -> int:
    from focus.sip.aio.transport import TransportConfig
    from focus.sip.aio.ua import UserAgent
    from focus.sip.headers import parse_name_addr
    from focus.sip.uacore import CallAnswered, UAConfig, UAEvent

    with tempfile.TemporaryDirectory() as state:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "focus",
            "serve",
            "--state-dir",
            state,
            "--ccmp-listen",
            "127.0.0.1:0",
            "--sip-listen",
            "127.0.0.1:0",
            "--profile",  # its phone dials the factory anonymously
            str(OPEN_SIP),
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert proc.stderr is not None
        log = b""
        port = 0
        while b"CCMP server listening" not in log:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            if not line:
                print(log.decode(errors="replace"))
                return 1
            log += line
        match = re.search(rb"SIP focus listening on UDP 127.0.0.1:(\d+)", log)
        assert match
        port = int(match.group(1))
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        writers = []
        for path in sorted(VECTORS.glob("*.dat")):
            data = path.read_bytes()
            udp.sendto(data[:65000], ("127.0.0.1", port))
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            writers.append(writer)
        await asyncio.sleep(1.0)
        for writer in writers:
            writer.close()
        udp.close()
        answers: list[str] = []

        def on_event(_ua: UserAgent, event: UAEvent) -> None:
            if isinstance(event, CallAnswered):
                answers.append(event.response.headers.get("Contact") or "")

        async with await UserAgent.start(
            UAConfig(user="probe"),
            TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
            on_event=on_event,
        ) as ua:
            call = await ua.invite(f"sip:conference@127.0.0.1:{port}", OFFER)
            assert "isfocus" in parse_name_addr(answers[0]).params
            await ua.bye(call)
        print("call ok")
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), 30)
        log += rest
        code = await proc.wait()
        text = log.decode(errors="replace")
        if code != 0 or "Traceback" in text:
            print(text[-5000:])
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(drive()))
