"""``python -m focus.sip --listen HOST:PORT``: a standalone answering UAS on the SIP stack.

It listens on UDP and TCP (same port) and answers like a well-behaved phone:

* INVITE -> 100 Trying (skipped when the 200 is ready within ``--trying-delay``), then 200
  with an SDP answer built by :mod:`focus.sip.offer_answer`
  (PCMU/PCMA/telephone-event; an offerless INVITE gets our offer in the 200 and the answer is
  read from the ACK; an unusable offer gets 488); re-INVITE -> 200 with a new answer;
* ACK absorbed, BYE -> 200, CANCEL -> 200 + 487 (transaction layer), OPTIONS -> 200 + Allow;
* MESSAGE -> 200; SUBSCRIBE -> 489 Bad Event (no event package here);
* REFER in a call -> 202, then NOTIFYs of the implicit ``refer`` subscription (RFC 3515)
  carrying ``message/sipfrag`` bodies: "SIP/2.0 100 Trying", then the final status of the call
  it places to the Refer-To target (which it hangs up at once);
* anything else -> 501 Not Implemented (405 for known methods it does not serve).

It is the peer bench/sip and the interop tests drive, and a handy test responder. It logs one
line per call on stderr with ``-v``. Stop it with SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from collections.abc import Sequence

from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.dialog import Dialog
from focus.sip.message import Request
from focus.sip.offer_answer import LocalSession, MediaCapability, create_answer, create_offer
from focus.sip.sdp import SdpError, parse_sdp
from focus.sip.timers import TimerConfig
from focus.sip.uacore import (
    CallConfirmed,
    CallEnded,
    CallFailedError,
    IncomingCall,
    IncomingRequest,
    UAConfig,
    UAEvent,
)

log = logging.getLogger("focus.sip.uas")

_MEDIA_PORT = 40000
_CAPABILITIES = (MediaCapability(),)  # audio: PCMU, PCMA, telephone-event over RTP/AVP


def _local(host: str) -> LocalSession:
    return LocalSession(
        address=host,
        session_id=1,
        session_version=1,
        username="uas",
        addrtype="IP6" if ":" in host else "IP4",
    )


def answer_sdp(offer: bytes, host: str, previous: bytes = b"") -> bytes:
    """Our RFC 3264 answer to ``offer`` (raises :class:`SdpError` -> 488 if unusable).

    ``previous`` is our last description in the call, for a re-offer (s8: same session id,
    version bumped if the answer changed)."""
    parsed = parse_sdp(offer)
    earlier = parse_sdp(previous) if previous else None
    ports = [_MEDIA_PORT + 2 * i for i in range(len(parsed.media))]
    return create_answer(parsed, _local(host), _CAPABILITIES, ports, previous=earlier).to_bytes()


def offer_sdp(host: str) -> bytes:
    """Our offer, for an offerless INVITE (RFC 3264 s5)."""
    return create_offer(_local(host), [(_CAPABILITIES[0], _MEDIA_PORT)]).to_bytes()


class Responder:
    """The answering behaviour, as an ``on_event`` handler of a :class:`UserAgent`."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.calls = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, ua: UserAgent, event: UAEvent) -> None:
        match event:
            case IncomingCall(call=call, offer=offer):
                try:
                    if offer:
                        previous = call.local_sdp if event.reinvite else b""
                        body = answer_sdp(offer, self.host, previous)
                    else:
                        body = offer_sdp(self.host)
                except SdpError as exc:
                    ua.reject(call, 488, exc.reason)
                    return
                ua.accept(call, body)
                if not event.reinvite:
                    self.calls += 1
            case CallConfirmed(call=call):
                log.info("call %s confirmed", call.call_id)
            case CallEnded(call=call, reason=reason):
                log.info("call %s ended: %s", call.call_id, reason)
            case IncomingRequest(request=request, dialog=dialog):
                self._request(ua, request, dialog)
            case _:
                pass

    def _request(self, ua: UserAgent, request: Request, dialog: Dialog | None) -> None:
        method = request.method
        in_dialog = dialog is not None  # the core already ran the s12.2.2 check
        if method == "MESSAGE" or (method == "NOTIFY" and in_dialog) or method == "INFO":
            ua.respond(request, 200)
        elif method == "SUBSCRIBE":
            ua.respond(request, 489, headers=[("Allow-Events", "refer")])
        elif method == "REFER" and in_dialog:
            self._refer(ua, request)
        elif method == "REFER":
            ua.respond(request, 403, reason="Forbidden - REFER outside a dialog")
        else:
            ua.respond(request, 501)

    def _refer(self, ua: UserAgent, request: Request) -> None:
        target = request.refer_to
        if target is None:
            ua.respond(request, 400, reason="Bad Request - Missing Refer-To")
            return
        ua.respond(request, 202)
        dialog = ua.core.find_dialog(request.call_id, request.to.tag or "", request.from_.tag or "")
        if dialog is None:
            return
        event = f"refer;id={request.cseq.number}"

        async def transfer() -> None:
            async def notify(frag: str, state: str) -> None:
                await ua.request(
                    dialog,
                    "NOTIFY",
                    body=f"{frag}\r\n".encode(),
                    content_type="message/sipfrag;version=2.0",
                    headers=[("Event", event), ("Subscription-State", state)],
                )

            await notify("SIP/2.0 100 Trying", "active;expires=60")
            try:
                call = await asyncio.wait_for(ua.invite(target.uri, offer_sdp(self.host)), 40)
            except CallFailedError as exc:
                final = f"SIP/2.0 {exc.status} {exc.reason}"
            except (TimeoutError, ValueError) as exc:
                final = f"SIP/2.0 503 Service Unavailable ({type(exc).__name__})"
            else:
                final = "SIP/2.0 200 OK"
                await ua.bye(call)
            await notify(final, "terminated;reason=noresource")

        task = asyncio.get_running_loop().create_task(transfer())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


async def serve(
    host: str,
    port: int,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    tls_port: int | None = None,
    tls: ssl.SSLContext | None = None,
    trying_delay: float = 0.0,
) -> None:
    """Run the responder until ``stop`` is set (or SIGINT/SIGTERM); TLS too with
    ``tls_port`` and a certificate context ``tls``; ``trying_delay`` as in
    :class:`~focus.sip.timers.TimerConfig`."""
    responder = Responder(host)
    config = UAConfig(
        user="uas",
        methods=frozenset(
            {
                "INVITE",
                "ACK",
                "BYE",
                "CANCEL",
                "OPTIONS",
                "MESSAGE",
                "SUBSCRIBE",
                "NOTIFY",
                "REFER",
                "INFO",
            }
        ),
        timers=TimerConfig(trying_delay=trying_delay),
    )
    transport = TransportConfig(
        host=host,
        udp_port=port,
        tcp_port=port,
        tls_port=tls_port if tls is not None else None,
        tls_server=tls,
    )
    ua = await UserAgent.start(config, transport, on_event=responder)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tls_note = f", TLS on {ua.transport.local_tls[1]}" if ua.transport.local_tls else ""
    print(f"SIP UAS listening on {host}:{port} (UDP and TCP{tls_note})", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        for task in list(responder.tasks):
            task.cancel()
        await ua.close()
        stats = ua.transport.stats
        print(
            f"SIP UAS stopped after {responder.calls} calls; refused "
            f"{stats.refused_destinations} destinations, {stats.send_failures} send failures",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m focus.sip", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--listen",
        type=parse_hostport,
        default=("127.0.0.1", 5060),
        metavar="HOST:PORT",
        help="address for UDP and TCP (default 127.0.0.1:5060)",
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        metavar="PORT",
        help="also listen for TLS on this port (needs --cert and --key)",
    )
    parser.add_argument("--cert", metavar="PEM", help="certificate chain for TLS")
    parser.add_argument("--key", metavar="PEM", help="private key for TLS")
    parser.add_argument(
        "--trying-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="send 100 Trying only if the 200 is not ready within SECONDS "
        "(RFC 3261 s17.2.1 suggests 0.2; default 0: at once)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log calls on stderr")
    args = parser.parse_args(argv)
    if not 0 <= args.trying_delay <= 1:
        parser.error("--trying-delay must be between 0 and 1 second")
    tls: ssl.SSLContext | None = None
    if args.tls_port is not None:
        if not (args.cert and args.key):
            parser.error("--tls-port needs --cert and --key")
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(args.cert, args.key)
        except (OSError, ssl.SSLError) as exc:
            print(f"cannot load the TLS certificate: {exc}", file=sys.stderr)
            return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    host, port = args.listen
    try:
        asyncio.run(
            serve(host, port, tls_port=args.tls_port, tls=tls, trying_delay=args.trying_delay)
        )
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
