"""Focus benchmark: joins per second through the whole path, against the minimal SIP UAS.

One run, same sipp load shape (closed loop, at most ``--concurrency`` calls in flight):

1. ``python -m focus serve`` with its bundled media server, driven by
   ``sip_profiles/sipp/focus_factory.xml``: each call is a factory INVITE (an ad hoc
   conference created and persisted in SQLite, a 3PCC media leg to the media server, a CFW
   createconference and join, the caller added to the core), the 200 with the isfocus Contact
   and the media server's SDP, ACK, then BYE (leg closed, user removed, conference deleted,
   mixer destroyed);
2. ``python -m focus.sip``, the bench/sip minimal UAS on the same SIP stack, driven by the
   same load (it has no isfocus Contact, so it gets the plain call with the same
   checks of uac_call_checked.xml, the scenario bench/sip uses, see ``BASELINE_SCENARIO``).

It prints calls per second, failures and CPU time per call of each, and the ratio; then the
memory one participant costs (tracemalloc over the whole in-process focus, media server
included, while ``--participants`` phones sit in one conference).

Run: ``python -m bench.focus.run`` (repository root; needs ``sipp``). Bounded: a few hundred
calls per target.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import tracemalloc
from pathlib import Path

from bench import sipp
from bench.sipp import Result
from focus.app import serving
from focus.authority import OPEN
from focus.settings import FocusSettings, HostPort, SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.uacore import UAConfig

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "sip_profiles" / "sipp" / "focus_factory.xml"
BASELINE_SCENARIO = ROOT / "sip_profiles" / "sipp" / "uac_call_checked.xml"


def drive(
    name: str,
    server_cmd: list[str],
    scenario: Path,
    service: str,
    calls: int,
    concurrency: int,
    workdir: Path,
) -> Result:
    load = sipp.Load(
        scenario=("-sf", str(scenario), "-s", service),
        server_cwd=workdir,
        bind_timeout=30,
        settle=1.0,  # the focus opens its CFW channel right after binding SIP
        call_timeout=120,
        extra=("-d", "0"),
    )
    return sipp.drive(name, server_cmd, load, calls, concurrency, workdir)


def offer(port: int) -> bytes:
    return (
        f"v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


async def memory_per_participant(participants: int, state_dir: Path) -> float:
    """Bytes one participant costs the process (focus, core, media server and engine), by
    tracemalloc, with ``participants`` phones in one conference (no RTP sent)."""
    base = random.randrange(20000, 50000, 2)
    settings = FocusSettings(
        state_dir=state_dir,
        ccmp_listen=HostPort("127.0.0.1", 0),
        sip_listen=HostPort("127.0.0.1", 0),
        rtp_ports=(base, base + 4 * participants + 100),
        log_level="WARNING",
        profile=SipProfile(authorization=OPEN),  # the bench dials the factory anonymously
    )
    async with serving(settings) as running:
        assert running.ua is not None and running.media is not None
        await running.media.client.wait_up(10)
        host, port = running.ua.core.local[TransportKind.UDP]
        phone = await UserAgent.start(
            UAConfig(user="bench"), TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
        )
        try:
            first = await phone.invite(f"sip:conference@{host}:{port}", offer(9))
            assert first.dialog is not None
            conf = getattr(first.dialog.remote_target, "user", None)
            target = f"sip:{conf}@{host}:{port}"
            for n in range(10):  # warm up caches before measuring
                await phone.bye(await phone.invite(target, offer(11 + 2 * n)))
            await asyncio.sleep(0.5)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            calls = [await phone.invite(target, offer(1000 + 2 * n)) for n in range(participants)]
            await asyncio.sleep(1.0)  # transactions settle (the kept state is what counts)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            for call in [*calls, first]:
                await phone.bye(call)
        finally:
            await phone.close()
    # The phone's own dialogs are in the same process: subtract what one costs it.
    return (after - before) / participants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400, help="calls per target (400)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="calls in flight at most (sipp -l, default 32; each call holds "
        "~0.2 s, so this bounds the rate)",
    )
    parser.add_argument(
        "--participants",
        type=int,
        default=100,
        help="participants for the memory measurement (100)",
    )
    args = parser.parse_args(argv)
    if sipp.missing():
        return 2
    py = sys.executable
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-focus-") as tmp:
        work = Path(tmp)
        (work / "state").mkdir()
        # sipp dials the factory anonymously: the profile opens it (the default wants a user)
        open_profile = work / "open.toml"
        open_profile.write_text('[authorization]\nfactory = "anyone"\n')
        focus = [
            py,
            "-m",
            "focus",
            "serve",
            "--state-dir",
            str(work / "state"),
            "--ccmp-listen",
            "127.0.0.1:0",
            "--sip-listen",
            "127.0.0.1:{port}",
            "--log-level",
            "WARNING",
            "--profile",
            str(open_profile),
        ]
        results.append(
            drive(
                "focus (whole path)",
                focus,
                SCENARIO,
                "conference",
                args.calls,
                args.concurrency,
                work,
            )
        )
        uas = [py, "-m", "focus.sip", "--listen", "127.0.0.1:{port}"]
        results.append(
            drive(
                "focus.sip UAS", uas, BASELINE_SCENARIO, "uas", args.calls, args.concurrency, work
            )
        )
        (work / "mem").mkdir()
        per_participant = asyncio.run(memory_per_participant(args.participants, work / "mem"))
    print(
        f"INVITE-200-ACK-BYE, {args.calls} calls per target, <= {args.concurrency} in "
        "flight, loopback UDP"
    )
    sipp.print_results(results, "target", 20)
    whole, bare = results
    if bare.rate:
        print(f"ratio focus/minimal-UAS = {whole.rate / bare.rate:.2f}")
    print(
        f"memory per participant (focus + core + media server + engine, "
        f"{args.participants} in one conference, tracemalloc, phone side included): "
        f"{per_participant / 1024:.1f} KiB"
    )
    return 0 if all(r.failed == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
