"""Where a UAS call's CPU goes: the sans-IO path of ``python -m focus.sip`` without sockets.

Feeds a UAS :class:`~focus.sip.uacore.UACore` the bytes a sipp UAC sends for INVITE-200-ACK-BYE
(prepared beforehand), answers each INVITE as the standalone UAS does (SDP answer built by
:func:`focus.sip.__main__.answer_sdp`), serializes everything the core sends, and runs its
timers past the linger states. Prints microseconds per call, then (``--profile``) the top
functions by own time under cProfile.

Run: ``python -m bench.sip.profile [--calls N] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from focus.sip.__main__ import answer_sdp
from focus.sip.flow import Flow, TransportKind
from focus.sip.parser import parse_message
from focus.sip.uacore import CallEnded, IncomingCall, UAConfig, UACore

HOST = "127.0.0.1"
_BODY = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)


def sipp_call(n: int) -> tuple[bytes, bytes, bytes]:
    """INVITE, ACK and BYE (To tag as ``TOTAG``) shaped like sipp's built-in uac scenario."""
    common = (
        f"From: sipp <sip:sipp@127.0.0.1:5070>;tag={n}SIPpTag00{n}\r\n"
        f"Call-ID: {n}-bench@127.0.0.1\r\n"
        "Contact: sip:sipp@127.0.0.1:5070\r\nMax-Forwards: 70\r\n"
        "Subject: Performance Test\r\n"
    )
    invite = (
        f"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}-1-0\r\n{common}"
        f"To: <sip:service@127.0.0.1:5060>\r\nCSeq: 1 INVITE\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(_BODY)}\r\n\r\n"
    ).encode() + _BODY
    rest = (
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}-METHOD\r\n{common}"
        f"To: <sip:service@127.0.0.1:5060>;tag=TOTAG\r\n"
    )
    ack = (
        (
            f"ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n{rest}CSeq: 1 ACK\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        .replace("METHOD", "5")
        .encode()
    )
    bye = (
        (
            f"BYE sip:service@127.0.0.1:5060 SIP/2.0\r\n{rest}CSeq: 2 BYE\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        .replace("METHOD", "7")
        .encode()
    )
    return invite, ack, bye


def run(calls: int, profiler: cProfile.Profile | None = None) -> float:
    """Microseconds of CPU per call for ``calls`` calls through one UAS core."""
    uas = UACore(UAConfig(user="uas"), {TransportKind.UDP: (HOST, 5060)})
    peer = Flow(TransportKind.UDP, HOST, 5070)
    wire = [sipp_call(n) for n in range(calls)]
    now = 0.0
    sent = 0

    def flush() -> None:
        nonlocal sent
        for transmit in uas.outgoing():
            sent += len(transmit.message.to_bytes())

    if profiler is not None:
        profiler.enable()
    started = time.process_time()
    for invite, ack, bye in wire:
        uas.receive_message(parse_message(invite), peer, now)
        event = uas.next_event()
        assert isinstance(event, IncomingCall), event
        uas.accept(event.call, answer_sdp(event.offer, HOST), now)
        flush()
        tag = event.call.local_tag.encode()
        uas.receive_message(parse_message(ack.replace(b"TOTAG", tag)), peer, now)
        uas.receive_message(parse_message(bye.replace(b"TOTAG", tag)), peer, now)
        flush()
        while (event := uas.next_event()) is not None:
            pass
        assert isinstance(event, CallEnded | None)
        now += 0.001
        uas.handle_timer(now)
    now += 40.0  # past Timer J / L: every transaction ends
    uas.handle_timer(now)
    flush()
    elapsed = time.process_time() - started
    if profiler is not None:
        profiler.disable()
    assert len(uas.layer) == 0 and not uas.calls, "every call ended"
    assert sent > 0
    return elapsed / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="print the cProfile top 30")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime)")
    args = parser.parse_args(argv)
    run(200)  # warm up
    print(f"sans-IO UAS path: {run(args.calls):.0f} us CPU per call ({args.calls} calls)")
    if args.profile:
        profiler = cProfile.Profile()
        run(args.calls, profiler)
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
