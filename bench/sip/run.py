"""SIP benchmark: INVITE-200-ACK-BYE calls per second, three UASes, one run, same load.

Drives ``sipp -sn uac`` (closed loop: at most ``--concurrency`` calls in flight, as fast as
the UAS answers) against, in turn,

1. the standalone UAS on our stack (``python -m focus.sip``),
2. ``sipp -sn uas`` (C++, the ceiling),
3. the bare asyncio UDP responder of ``bench/sip/bare_responder.py`` (the floor of any
   asyncio SIP code: no parsing, no transactions, no dialogs),

and prints calls per second, failed calls and the UAS's CPU time per call for each, plus the
ratios stack/sipp and stack/bare. Then it measures the memory one established dialog costs on
the stack (tracemalloc over ``--dialogs`` held calls between two in-process UA cores, after
their transactions have ended).

Run: ``python -m bench.sip.run`` (from the repository root; needs ``sipp``). Bounded: a few
thousand calls per target and well under a minute in total.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path

from bench import sipp
from bench.sipp import Result
from focus.sip.flow import Flow, TransportKind
from focus.sip.parser import parse_message
from focus.sip.uacore import CallConfirmed, IncomingCall, UAConfig, UACore

ROOT = Path(__file__).resolve().parents[2]


_LOAD = sipp.Load(scenario=("-sn", "uac"), server_cwd=ROOT)


def drive(name: str, uas: list[str], calls: int, concurrency: int, workdir: Path) -> Result:
    return sipp.drive(name, uas, _LOAD, calls, concurrency, workdir)


# --- memory per dialog ------------------------------------------------------------------------


def _invite(n: int) -> tuple[bytes, bytes]:
    """A distinct INVITE and its ACK template (To-tag filled in later), as a peer sends them."""
    call = f"bench-{n}@127.0.0.1"
    common = f"From: <sip:uac@127.0.0.1:5070>;tag=f{n}\r\nCall-ID: {call}\r\nMax-Forwards: 70\r\n"
    body = (
        b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 30000 RTP/AVP 0\r\n"
    )
    invite = (
        f"INVITE sip:uas@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi{n};rport\r\n{common}"
        f"To: <sip:uas@127.0.0.1:5060>\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:uac@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    ack = (
        f"ACK sip:uas@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa{n};rport\r\n{common}"
        f"To: <sip:uas@127.0.0.1:5060>;tag=TOTAG\r\nCSeq: 1 ACK\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()
    return invite, ack


def memory_per_dialog(dialogs: int) -> float:
    """Bytes one confirmed call costs the UAS core once its transactions have ended.

    The peer's INVITEs and ACKs are prepared as bytes before tracing starts; everything the
    core keeps from them (the parsed INVITE, the dialog, the call) counts.
    """
    uas = UACore(UAConfig(user="uas"), {TransportKind.UDP: ("127.0.0.1", 5060)})
    peer = Flow(TransportKind.UDP, "127.0.0.1", 5070)
    answer = (
        b"v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0\r\n"
    )
    warmup = 50
    wire = [_invite(n) for n in range(dialogs + warmup)]
    now = 0.0

    def call(invite: bytes, ack: bytes) -> None:
        uas.receive_message(parse_message(invite), peer, now)
        event = uas.next_event()
        assert isinstance(event, IncomingCall), event
        uas.accept(event.call, answer, now)
        uas.outgoing()  # the 100 and the 200 would go on the wire here
        tag = event.call.local_tag.encode()
        uas.receive_message(parse_message(ack.replace(b"TOTAG", tag)), peer, now)
        assert isinstance(uas.next_event(), CallConfirmed)

    def settle() -> int:
        # Past every transaction timer (64*T1, Timer J...): only the dialogs remain.
        nonlocal now
        now += 40.0
        uas.handle_timer(now)
        uas.outgoing()
        while uas.next_event() is not None:
            pass
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    for invite, ack in wire[:warmup]:  # warm caches and interned strings
        call(invite, ack)
    tracemalloc.start()
    try:
        before = settle()
        for invite, ack in wire[warmup:]:
            call(invite, ack)
        after = settle()
        assert len(uas.calls) == dialogs + warmup and len(uas.layer) == 0
    finally:
        tracemalloc.stop()
    return (after - before) / dialogs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="calls per UAS (default 2000)")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="calls in flight at most (sipp -l, default 32)"
    )
    parser.add_argument(
        "--dialogs",
        type=int,
        default=2000,
        help="held dialogs for the memory measurement (default 2000)",
    )
    args = parser.parse_args(argv)
    if sipp.missing():
        return 2
    py = sys.executable
    targets = [
        ("focus.sip UAS", [py, "-m", "focus.sip", "--listen", "127.0.0.1:{port}"]),
        (
            "sipp -sn uas",
            [
                "sipp",
                "-sn",
                "uas",
                "-i",
                "127.0.0.1",
                "-p",
                "{port}",
                "-timeout",
                "60s",
                "-nostdin",
            ],
        ),
        ("bare asyncio", [py, "-m", "bench.sip.bare_responder", "--listen", "127.0.0.1:{port}"]),
        # RFC 3261 s17.2.1: no 100 Trying when the 200 is ready within 200 ms.
        (
            "focus.sip 100@0.2",
            [py, "-m", "focus.sip", "--listen", "127.0.0.1:{port}", "--trying-delay", "0.2"],
        ),
    ]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp:
        for name, command in targets:
            results.append(drive(name, command, args.calls, args.concurrency, Path(tmp)))
    print(
        f"INVITE-200-ACK-BYE, {args.calls} calls per UAS, <= {args.concurrency} in flight,"
        " loopback UDP"
    )
    sipp.print_results(results, "UAS", 18)
    stack, sipp_uas, bare = results[:3]
    if sipp_uas.rate and bare.rate:
        print(
            f"ratio stack/sipp-uas = {stack.rate / sipp_uas.rate:.2f}, "
            f"stack/bare-asyncio = {stack.rate / bare.rate:.2f}"
        )
    per_dialog = memory_per_dialog(args.dialogs)
    print(
        f"memory per established dialog (UAS side, {args.dialogs} held, tracemalloc): "
        f"{per_dialog / 1024:.1f} KiB"
    )
    return 0 if all(r.failed == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
