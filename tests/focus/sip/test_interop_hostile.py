"""Hostile messages naming other hosts, fed to the standalone UAS inside a network namespace.

Via sent-by, ``maddr``, ``received``, Contact and Record-Route name hosts that are not ours
(public, multicast, broadcast addresses). The UAS and the sender run together under
``unshare -n`` with only loopback up, so whatever the UAS tries to send elsewhere cannot leave
the machine. The UAS must answer what can be answered at the packet's source, refuse
multicast/broadcast destinations, survive unreachable ones, and keep serving.

Run as a module (``python -m tests.focus.sip.test_interop_hostile PORT``) this file is the sender.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
from pathlib import Path

import pytest

from tests.focus.sip.conftest import in_loopback_namespace, netns_available

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("unshare") is None or not netns_available(),
        reason="needs unshare -n (root) for a loopback-only namespace",
    ),
]


def request(
    method: str,
    via: str,
    *,
    contact: str | None = None,
    extra: str = "",
    call: str = "h",
    to_tag: str = "",
) -> bytes:
    lines = [
        f"{method} sip:uas@127.0.0.1 SIP/2.0",
        f"Via: {via}",
        "From: <sip:evil@198.51.100.7>;tag=e1",
        f"To: <sip:uas@127.0.0.1>{to_tag}",
        f"Call-ID: {call}@hostile",
        f"CSeq: 1 {method}",
        "Max-Forwards: 70",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    if extra:
        lines.append(extra)
    body = b""
    if method == "INVITE":
        body = (
            b"v=0\r\no=e 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n"
            b"m=audio 9 RTP/AVP 0\r\n"
        )
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sender(port: int) -> int:
    """Send the hostile set, then prove the UAS still answers; prints what came back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.5)  # answers come within ms on loopback; this bounds the wait
    me = sock.getsockname()[1]
    uas = ("127.0.0.1", port)
    hostile = [
        # Names another host in sent-by: answered at our source via received/rport.
        ("sentby", request("OPTIONS", "SIP/2.0/UDP 8.8.8.8:5060;branch=z9hG4bKs1;rport")),
        # maddr to a public host: the response goes there (unreachable in the namespace).
        ("maddr-public", request("OPTIONS", "SIP/2.0/UDP 8.8.8.8;maddr=8.8.4.4;branch=z9hG4bKs2")),
        # maddr multicast and a broadcast sent-by: must be refused, never sent.
        (
            "maddr-multicast",
            request("OPTIONS", "SIP/2.0/UDP 127.0.0.1;maddr=224.0.0.1;branch=z9hG4bKs3"),
        ),
        (
            "received-broadcast",
            request(
                "OPTIONS",
                "SIP/2.0/UDP 255.255.255.255:5060;received=255.255.255.255;branch=z9hG4bKs4",
            ),
        ),
        # An INVITE whose Contact and Record-Route point elsewhere: answered at our source
        # (rport); the dialog's later requests would go to 203.0.113.9 (unreachable here).
        (
            "invite-contact",
            request(
                "INVITE",
                f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKs5;rport",
                contact="<sip:evil@203.0.113.9:5060>",
                extra="Record-Route: <sip:198.51.100.1;lr>",
                call="inv",
            ),
        ),
        # A TCP Via on a UDP packet with a sent-by elsewhere.
        ("tcp-via", request("OPTIONS", "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKs6")),
        # Contact: * on an INVITE; a Via with an absurd rport.
        (
            "contact-star",
            request(
                "INVITE", f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKs7", contact="*", call="star"
            ),
        ),
        (
            "rport-junk",
            request("OPTIONS", f"SIP/2.0/UDP 127.0.0.1:{me};rport=99999;branch=z9hG4bKs8"),
        ),
    ]
    for _, data in hostile:
        sock.sendto(data, uas)
    answers: list[str] = []
    try:
        while True:
            data, _ = sock.recvfrom(65535)
            head = data.split(b"\r\n", 1)[0].decode()
            found = re.search(rb"branch=([^;\r\n]+)", data)
            branch = found.group(1).decode() if found else "?"
            answers.append(f"{branch} {head}")
    except TimeoutError:
        pass
    for line in answers:
        print("GOT", line)
    # Still alive and well: a plain OPTIONS gets its 200.
    sock.settimeout(5)
    sock.sendto(request("OPTIONS", f"SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKok;rport"), uas)
    data, _ = sock.recvfrom(65535)
    print("ALIVE", data.split(b"\r\n", 1)[0].decode())
    return 0


def test_hostile_addresses_in_a_loopback_only_namespace(tmp_path: Path) -> None:
    port = 5060
    script = (
        f"{sys.executable} -m focus.sip --listen 127.0.0.1:{port} > {tmp_path}/uas.log 2>&1 & "
        "UAS=$!; "
        f"for i in $(seq 50); do grep -q listening {tmp_path}/uas.log && break; sleep 0.1; done; "
        f"{sys.executable} -m tests.focus.sip.test_interop_hostile {port}; RC=$?; "
        "kill -TERM $UAS; wait $UAS; echo UAS_RC=$?; exit $RC"
    )
    result = in_loopback_namespace(script, timeout=60)
    out = result.stdout
    uas_log = (tmp_path / "uas.log").read_text()
    assert result.returncode == 0, out + result.stderr + uas_log
    assert "Traceback" not in uas_log, uas_log
    assert "UAS_RC=0" in out, out
    # The multicast maddr was refused before sendto; the public maddr failed (unreachable).
    stats = re.search(r"refused (\d+) destinations, (\d+) send failures", uas_log)
    assert stats is not None, uas_log
    assert int(stats.group(1)) >= 1 and int(stats.group(2)) >= 2, uas_log
    assert "ALIVE SIP/2.0 200 OK" in out, out
    got = [line for line in out.splitlines() if line.startswith("GOT")]
    # Answered at the source: the sent-by-elsewhere OPTIONS (rport) and the INVITE (100, 200).
    assert any(line.startswith("GOT z9hG4bKs1 SIP/2.0 200") for line in got), out
    assert any(line.startswith("GOT z9hG4bKs5 SIP/2.0 200") for line in got), out
    # An INVITE without a usable Contact is refused with 400, at the source.
    assert any(line.startswith("GOT z9hG4bKs7 SIP/2.0 400") for line in got), out
    # maddr / broadcast / TCP-elsewhere responses never reached us (nor anyone else).
    for branch in ("z9hG4bKs2", "z9hG4bKs3", "z9hG4bKs4", "z9hG4bKs6"):
        assert not any(line.startswith(f"GOT {branch}") for line in got), out


if __name__ == "__main__":
    sys.exit(sender(int(sys.argv[1])))
