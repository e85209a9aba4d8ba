"""``python -m mediactrl.server --sip-listen HOST:PORT``: the bundled RFC 6230/6505 media server.

Options: ``--cfw-listen HOST:PORT`` (default: the SIP host, any free port), ``--rtp-ports
LOW-HIGH`` (default 16384-32767), ``--orphan-timeout SECONDS`` (default 120; 0: keep a lost
channel's mixers), ``--log-level L``.  It prints one line with its SIP URI and
CFW address when it is ready, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from focus.sip.uacore import UAError
from mediactrl.server.app import MediaServerConfig, run_until


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH, got {text!r}")
    first, last = int(low), int(high)
    if not 1024 <= first < last <= 65535:
        raise argparse.ArgumentTypeError(f"need 1024 <= LOW < HIGH <= 65535, got {text!r}")
    return first, last


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mediactrl.server",
        description="The bundled media server: SIP (control channel and media legs), "
        "CFW (RFC 6230) with msc-mixer/1.0 (RFC 6505), RTP mixing.",
    )
    parser.add_argument(
        "--sip-listen",
        type=_hostport,
        required=True,
        metavar="HOST:PORT",
        help="SIP address, UDP and TCP (port 0: any free port)",
    )
    parser.add_argument(
        "--cfw-listen",
        type=_hostport,
        default=None,
        metavar="HOST:PORT",
        help="CFW listener (default: the SIP host, any free port)",
    )
    parser.add_argument(
        "--rtp-ports",
        type=_port_range,
        default=(16384, 32767),
        metavar="LOW-HIGH",
        help="RTP port range (default 16384-32767, below the kernel's ephemeral ports)",
    )
    parser.add_argument(
        "--orphan-timeout",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="how long a control channel that lost its connection keeps its mixers for its "
        "application server to come back with the same cfw-id (RFC 6505 s7); 0: forever "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level",
    )
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> MediaServerConfig:
    sip_host, sip_port = args.sip_listen
    cfw_host, cfw_port = args.cfw_listen if args.cfw_listen is not None else (None, 0)
    return MediaServerConfig(
        sip_host=sip_host,
        sip_port=sip_port,
        cfw_host=cfw_host,
        cfw_port=cfw_port,
        rtp_ports=args.rtp_ports,
        orphan_timeout=args.orphan_timeout or None,
    )


async def _serve(config: MediaServerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_until(stop, config)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        asyncio.run(_serve(config_from(args)))
    except (OSError, UAError) as exc:
        print(f"media server: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
