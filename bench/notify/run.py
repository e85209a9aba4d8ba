"""Conference event package benchmark: from a CCMP change to the last of N subscribers'
NOTIFYs, against the same N NOTIFYs sent from a bare asyncio loop, in the same run.

For N = 10, 100, 1,000 (``--sizes``) one conference gets N subscribers (raw SIP over 16
UDP sockets, tests/focus/eventpkg/e2e/swarm.py, every NOTIFY answered 200 at
once). Then, ``--repeat``
times:

1. **focus**: an administrator changes the conference's subject over CCMP (real HTTP to the
   in-process focus: the change is committed to SQLite, fed to the event package planner,
   and a partial RFC 4575 NOTIFY goes to each subscriber; pacing off). Timed from just
   before the CCMP request to the arrival of the last subscriber's NOTIFY; the CCMP answer's
   arrival is printed too.
2. **bare**: a bare asyncio UDP sender (one socket, as the focus has) sends the same N
   NOTIFYs - same dialogs, same sockets, same sizes as the focus's - and waits for the N
   200s. Timed from the first send to the arrival of the last NOTIFY.

Both share the loop with the swarm, so the swarm's cost is in both. Prints median times and
the ratio focus/bare, and how many NOTIFYs the focus had to retransmit (``retx``, all
rounds). Loopback only; bounded (well under a minute).

Run: ``python -m bench.notify.run`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ccmp_server.client import Target, send
from ccmp_server.messages import CcmpRequest, MessageType, Operation, ResponseCode
from focus.app import serving
from focus.core.accounts import add_account
from focus.settings import FocusSettings, HostPort, SipProfile
from focus.sip.flow import TransportKind
from tests.focus.eventpkg.e2e.swarm import Sub, Swarm

CI = "{urn:ietf:params:xml:ns:conference-info}"
DOMAIN = "example.org"
SOCKETS = 16  # subscribers' UDP sockets: a 1,000-NOTIFY burst must fit their buffers


@dataclass
class Row:
    n: int
    focus_s: list[float]
    ccmp_s: list[float]
    bare_s: list[float]
    size: int
    retransmitted: int = 0  # focus NOTIFY datagrams beyond one per subscriber and change


def _subject(conf: str | None, subject: str) -> etree._Element:
    info = etree.Element("confInfo", entity=conf or f"xcon:AUTO_GENERATE_1@{DOMAIN}")
    desc = etree.SubElement(info, f"{CI}conference-description")
    etree.SubElement(desc, f"{CI}subject").text = subject
    if conf is None:
        # A short free-text instead of the blueprint's keeps the subject partial (it
        # carries the whole description, RFC 4575 s4.4) under 1300 bytes: UDP, as the
        # bare loop sends, not TCP (RFC 3261 s18.1.1).
        etree.SubElement(desc, f"{CI}free-text").text = "bench"
    return info


async def _ccmp(target: Target, request: CcmpRequest) -> str | None:
    _, _, response = await send(target, request)
    if response.code is not ResponseCode.SUCCESS:
        raise SystemExit(f"CCMP {response.code}: {response.response_string}")
    return response.conf_obj_id


class _Bare(asyncio.DatagramProtocol):
    """The baseline's socket: sends prepared datagrams; the 200s are read and dropped."""

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        pass


def _notify(sub: Sub, to: tuple[str, int], me: tuple[str, int], cseq: int, size: int) -> bytes:
    """A NOTIFY in ``sub``'s dialog as the focus would send it, padded to ``size`` bytes."""
    head = (
        f"NOTIFY sip:s@{to[0]}:{to[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bKbare{cseq}x{sub.call_id[:8]}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:conf@{me[0]}:{me[1]}>;tag=bare\r\n"
        f"To: <sip:s@{to[0]}:{to[1]}>;tag={sub.from_tag}\r\n"
        f"Call-ID: {sub.call_id}\r\n"
        f"CSeq: {cseq} NOTIFY\r\n"
        f"Event: conference\r\n"
        f"Subscription-State: active;expires=600\r\n"
        f"Content-Type: application/conference-info+xml\r\n"
    )
    body_len = max(0, size - len(head) - len("Content-Length: 0000\r\n\r\n"))
    body = (f'<conference-info version="{cseq}" state="partial">'.ljust(max(body_len, 40), " "))[
        : max(body_len, 40)
    ]
    return f"{head}Content-Length: {len(body):04d}\r\n\r\n{body}".encode()


async def _bare_round(swarm: Swarm, subs: list[Sub], cseq: int, size: int) -> float:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Bare, local_addr=("127.0.0.1", 0))
    try:
        me = transport.get_extra_info("sockname")[:2]
        datagrams = {
            id(s): (_notify(s, swarm.address(s.socket), me, cseq, size), swarm.address(s.socket))
            for s in subs
        }
        before = {id(s): len(s.notifies) for s in subs}

        def arrived() -> bool:
            return all(len(s.notifies) > before[id(s)] for s in subs)

        start = loop.time()
        for data, addr in datagrams.values():
            transport.sendto(data, addr)
        # A full socket buffer drops datagrams: resend what is missing after 0.5 s, as
        # the focus's Timer E would (RFC 3261 s17.1.2.2), so both sides play fair.
        while not await swarm.wait_until(arrived, 0.5):
            if loop.time() - start > 30:
                raise SystemExit("bare loop: NOTIFYs do not arrive")
            for s in subs:
                if len(s.notifies) == before[id(s)]:
                    transport.sendto(*datagrams[id(s)])
        return max(s.notifies[-1].at for s in subs) - start
    finally:
        transport.close()


def _at(subs: list[Sub], version: int) -> bool:
    return all(s.version() == version for s in subs)


async def _measure(sizes: list[int], repeat: int, state_dir: Path) -> list[Row]:
    loop = asyncio.get_running_loop()
    add_account(state_dir, "admin", "administrator", "s3cret", domain=DOMAIN, scrypt_n=2**4)
    base = random.randrange(20000, 60000, 2)
    settings = FocusSettings(
        state_dir=state_dir,
        domain=DOMAIN,
        ccmp_listen=HostPort("127.0.0.1", 0),
        sip_listen=HostPort("127.0.0.1", 0),
        rtp_ports=(base, base + 100),
        log_level="WARNING",
        profile=SipProfile(notify_interval=0.0),
    )
    rows: list[Row] = []
    async with serving(settings) as running:
        assert running.ua is not None
        logging.getLogger().setLevel(logging.WARNING)
        host, port = running.ua.core.local[TransportKind.UDP]
        target = Target(url=running.ccmp.url, user="admin", password="s3cret")
        for n in sizes:
            swarm = await Swarm.open(sockets=SOCKETS, rcvbuf=1 << 22)
            try:
                conf = await _ccmp(
                    target,
                    CcmpRequest(
                        message_type=MessageType.CONF,
                        operation=Operation.CREATE,
                        info=_subject(None, "0"),
                    ),
                )
                assert conf is not None
                subs = await swarm.subscribe(
                    host, port, conf.split(":", 1)[1].split("@")[0], n, timeout=30
                )
                row = Row(n, [], [], [], 0)
                for k in range(1, repeat + 1):
                    want = k + 1
                    datagrams = swarm.notify_datagrams
                    start = loop.time()
                    await _ccmp(
                        target,
                        CcmpRequest(
                            message_type=MessageType.CONF,
                            operation=Operation.UPDATE,
                            conf_obj_id=conf,
                            info=_subject(conf, str(k)),
                        ),
                    )
                    row.ccmp_s.append(loop.time() - start)
                    if not await swarm.wait_until(functools.partial(_at, subs, want), 30):
                        raise SystemExit(f"N={n}: not every subscriber got version {want}")
                    row.focus_s.append(max(s.notifies[-1].at for s in subs) - start)
                    row.size = max(s.notifies[-1].size for s in subs)
                    await asyncio.sleep(0.05)  # late retransmissions land in this round
                    row.retransmitted += swarm.notify_datagrams - datagrams - n
                    row.bare_s.append(await _bare_round(swarm, subs, 100000 + k, row.size))
                rows.append(row)
            finally:
                swarm.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notify.run", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if any(n < 1 or n > 5000 for n in args.sizes) or not 1 <= args.repeat <= 50:
        parser.error("sizes must be 1..5000 and repeat 1..50")
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(_measure(args.sizes, args.repeat, Path(tmp)))
    print(
        f"{'N':>6} {'NOTIFY B':>9} {'focus ms':>9} {'(CCMP ms)':>10} {'bare ms':>8} "
        f"{'ratio':>6} {'retx':>5}   median of {args.repeat}; focus = CCMP change -> last NOTIFY"
    )
    for row in rows:
        focus_ms = statistics.median(row.focus_s) * 1000
        ccmp_ms = statistics.median(row.ccmp_s) * 1000
        bare_ms = statistics.median(row.bare_s) * 1000
        print(
            f"{row.n:>6} {row.size:>9} {focus_ms:>9.1f} {ccmp_ms:>10.1f} {bare_ms:>8.2f} "
            f"{focus_ms / bare_ms:>6.1f} {row.retransmitted:>5}"
        )
    print(f"total {time.monotonic() - began:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
