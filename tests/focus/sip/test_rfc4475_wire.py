"""Every RFC 4475 torture message, over UDP and TCP, to the standalone UAS in a namespace.

The messages name hosts that are not ours (Via sent-by, Contact, Record-Route, maddr), so the
UAS and the sender run together under ``unshare -n`` with only loopback up: whatever the UAS
answers to those hosts cannot leave the machine. The UAS must neither crash nor wedge: after
all 49 messages (each over UDP, and each on its own TCP connection, left open while the
others arrive), a normal call -- INVITE, 200, ACK, BYE, 200 -- still completes over UDP and
over TCP, and the UAS then exits cleanly on SIGTERM with no traceback in its log.

Run as a module (``python -m tests.focus.sip.test_rfc4475_wire PORT``) this file is the sender.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from tests.focus.sip.conftest import in_loopback_namespace, netns_available
from tests.paths import ROOT

VECTORS = ROOT / "tests" / "vectors" / "rfc4475"
NAMES = sorted(p.stem for p in VECTORS.glob("*.dat"))
OFFER = (
    b"v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0\r\n"
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("unshare") is None or not netns_available(),
        reason="needs unshare -n (root) for a loopback-only namespace",
    ),
]


def _drain_udp(sock: socket.socket, seconds: float) -> list[bytes]:
    got: list[bytes] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recvfrom(65535)[0])
        except TimeoutError:
            break
    return got


def _drain_tcp(conns: dict[str, socket.socket], seconds: float) -> dict[str, list[str]]:
    """The status lines the UAS answers on each open connection within ``seconds``."""
    buffers = dict.fromkeys(conns, b"")
    end = time.monotonic() + seconds
    for conn in conns.values():
        conn.setblocking(False)
    while time.monotonic() < end:
        idle = True
        for name, conn in conns.items():
            try:
                data = conn.recv(65535)
            except OSError:  # nothing yet (BlockingIOError), or reset
                continue
            if data:
                buffers[name] += data
                idle = False
        if idle:
            time.sleep(0.02)
    return {
        name: re.findall(r"^SIP/2\.0 \d\d\d[^\r\n]*", data.decode(errors="replace"), re.M)
        for name, data in buffers.items()
    }


async def _normal_calls(port: int) -> list[str]:
    from focus.sip.aio.transport import TransportConfig
    from focus.sip.aio.ua import UserAgent
    from focus.sip.uacore import CallState, UAConfig

    done: list[str] = []
    ua = await UserAgent.start(
        UAConfig(user="probe"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    )
    try:
        for suffix in ("", ";transport=tcp"):
            call = await asyncio.wait_for(ua.invite(f"sip:uas@127.0.0.1:{port}{suffix}", OFFER), 10)
            assert call.state is CallState.CONFIRMED, call
            bye = await asyncio.wait_for(ua.bye(call), 10)
            assert bye is not None, "BYE got no response"
            done.append(f"{suffix or 'udp'} {bye.status}")
    finally:
        await ua.close()
    return done


def sender(udp_port: int, tcp_port: int) -> int:
    """Send every message over UDP to one UAS and over TCP to another (the same message on
    both transports to one UAS would be one transaction: same branch), then place normal
    calls to both; prints a summary."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    conns: dict[str, socket.socket] = {}
    for name in NAMES:
        data = (VECTORS / f"{name}.dat").read_bytes()
        udp.sendto(data, ("127.0.0.1", udp_port))
        conn = socket.create_connection(("127.0.0.1", tcp_port), timeout=5)
        conn.sendall(data)
        conns[name] = conn
    udp_answers = _drain_udp(udp, 1.5)
    tcp_answers = _drain_tcp(conns, 1.5)
    print(f"SENT {len(NAMES)} UDP {len(udp_answers)} TCP {sum(map(len, tcp_answers.values()))}")
    for data in udp_answers:
        print("UDP-GOT", data.split(b"\r\n", 1)[0].decode(errors="replace"))
    for name, lines in tcp_answers.items():
        print("TCP-GOT", name, " | ".join(lines))
    # Half of the TCP connections vanish abruptly (RST), the rest are closed properly.
    for i, conn in enumerate(conns.values()):
        if i % 2:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    udp.close()
    for port in (udp_port, tcp_port):
        for line in asyncio.run(_normal_calls(port)):
            print("CALL", port, line)
    return 0


def test_every_rfc4475_message_over_udp_and_tcp_then_a_normal_call(tmp_path: Path) -> None:
    assert len(NAMES) == 49, NAMES  # RFC 4475 s3; the archive's test.dat is no test case
    log_u, log_t = tmp_path / "uas-udp.log", tmp_path / "uas-tcp.log"
    uas = f"{sys.executable} -m focus.sip --listen"
    script = (
        f"{uas} 127.0.0.1:5060 > {log_u} 2>&1 & U=$!; "
        f"{uas} 127.0.0.1:5062 > {log_t} 2>&1 & T=$!; "
        f"for i in $(seq 100); do grep -q listening {log_u} && grep -q listening {log_t} "
        "&& break; sleep 0.1; done; "
        f"{sys.executable} -m tests.focus.sip.test_rfc4475_wire 5060 5062; RC=$?; "
        "kill -TERM $U $T; wait $U; echo UAS_UDP_RC=$?; wait $T; echo UAS_TCP_RC=$?; exit $RC"
    )
    result = in_loopback_namespace(script, timeout=90)
    out = result.stdout
    logs = log_u.read_text() + log_t.read_text()
    assert result.returncode == 0, out + result.stderr + logs
    assert "Traceback" not in logs, logs
    assert "UAS_UDP_RC=0" in out and "UAS_TCP_RC=0" in out, out + logs
    for port in (5060, 5062):  # neither UAS wedged: both still complete calls on both
        assert re.search(rf"^CALL {port} udp 200$", out, re.M), out
        assert re.search(rf"^CALL {port} ;transport=tcp 200$", out, re.M), out
    assert re.search(r"^SENT 49 UDP \d+ TCP \d+$", out, re.M), out
    tcp = dict(re.findall(r"^TCP-GOT (\w+) ?(.*)$", out, re.M))
    # Over TCP every answer comes back on the connection (s18.2.2), so the errors RFC 4475
    # asks for can be checked at the wire; responses (bigcode, noreason, unreason) get none.
    expected = {
        "badvers": "505",
        "bext01": "420",
        "novelsc": "416",
        "unkscm": "416",
        "insuf": "400",
        "mcl01": "400",
        "ncl": "400",
        "scalar02": "400",
        "multi01": "400",
        "mismatch01": "400",
        "mismatch02": "501",
        "inv2543": "400",
        "escruri": "400",
        "ltgtruri": "400",
        "lwsstart": "400",
        "trws": "400",
        "badaspec": "400",
        "intmeth": "501",
        "esc02": "501",  # methods the UAS does not know (s8.2.1)
    }
    for name, status in expected.items():
        assert tcp[name].startswith(f"SIP/2.0 {status} "), (name, tcp[name], out)
    for name in ("bigcode", "noreason", "unreason"):
        assert tcp[name] == "", (name, out)


if __name__ == "__main__":
    sys.exit(sender(int(sys.argv[1]), int(sys.argv[2])))
