"""Test harness (imported by other SIP tests): two transaction layers, lossy wire, fake clock.

Every message crosses the wire as bytes (``to_bytes`` -> ``parse_message``), so the
real serializer and parser sit between the endpoints; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from focus.sip.events import Event
from focus.sip.flow import Flow, TransportKind
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from focus.sip.timers import TimerConfig
from focus.sip.transaction import TransactionLayer, new_branch, new_tag

ALICE_PORT, BOB_PORT = 5071, 5072


@dataclass
class Sent:
    at: float
    sender: str
    first_line: str
    dropped: bool
    message: Request | Response


@dataclass
class Wire:
    """``a`` and ``b`` are two endpoints; ``drop`` decides per message whether it is lost."""

    reliable: bool = False
    config: TimerConfig = field(default_factory=TimerConfig)
    now: float = 0.0
    log: list[Sent] = field(default_factory=list)
    drop: Callable[[Sent], bool] = lambda s: False
    a_events: list[Event] = field(default_factory=list)
    b_events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.a = TransactionLayer(self.config)
        self.b = TransactionLayer(self.config)
        kind = TransportKind.TCP if self.reliable else TransportKind.UDP
        self.a_flow = Flow(kind, "127.0.0.1", ALICE_PORT)  # a as seen by b
        self.b_flow = Flow(kind, "127.0.0.1", BOB_PORT)  # b as seen by a

    @property
    def transport(self) -> str:
        return "TCP" if self.reliable else "UDP"

    def pump(self) -> None:
        """Deliver everything queued, both ways, until both sides are quiet."""
        while True:
            moved = False
            for sender, src, dst, flow in (
                ("a", self.a, self.b, self.a_flow),
                ("b", self.b, self.a, self.b_flow),
            ):
                for t in src.outgoing():
                    moved = True
                    data = t.message.to_bytes()
                    sent = Sent(
                        self.now, sender, data.split(b"\r\n", 1)[0].decode(), False, t.message
                    )
                    sent.dropped = self.drop(sent)
                    self.log.append(sent)
                    if not sent.dropped:
                        dst.receive_message(parse_message(data), flow, self.now)
            self._collect()
            if not moved:
                return

    def _collect(self) -> None:
        while (e := self.a.next_event()) is not None:
            self.a_events.append(e)
        while (e := self.b.next_event()) is not None:
            self.b_events.append(e)

    def run_until(self, until: float) -> None:
        """Advance the fake clock to ``until``, firing timers exactly at their deadlines."""
        self.pump()
        while True:
            deadlines = [d for d in (self.a.get_timer(), self.b.get_timer()) if d is not None]
            due = [d for d in deadlines if d <= until]
            if not due:
                break
            self.now = max(self.now, min(due))
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.pump()
        self.now = until

    def sends(self, sender: str, prefix: str) -> list[float]:
        """Times at which ``sender`` put a message starting with ``prefix`` on the wire."""
        return [s.at for s in self.log if s.sender == sender and s.first_line.startswith(prefix)]

    def request(
        self,
        method: str,
        *,
        to_tag: str | None = None,
        cseq: int = 1,
        call_id: str = "call-1@127.0.0.1",
        branch: str | None = None,
    ) -> Request:
        r = Request(method, f"sip:bob@127.0.0.1:{BOB_PORT}")
        h = r.headers
        h.add(
            "Via",
            f"SIP/2.0/{self.transport} 127.0.0.1:{ALICE_PORT}"
            f";branch={branch or new_branch()};rport",
        )
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:alice@127.0.0.1>;tag={ALICE_TAG}")
        h.add("To", "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""))
        h.add("Call-ID", call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Contact", f"<sip:alice@127.0.0.1:{ALICE_PORT}>")
        return r


ALICE_TAG = "a1ce" + new_tag()


T = TypeVar("T")


def of_type(events: list[Event], cls: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, cls)]


def test_wire_delivers_through_the_parser() -> None:
    wire = Wire()
    wire.a.send_request(wire.request("OPTIONS"), wire.b_flow, 0.0)
    wire.pump()
    assert [s.first_line for s in wire.log] == [f"OPTIONS sip:bob@127.0.0.1:{BOB_PORT} SIP/2.0"]
    assert len(wire.b_events) == 1


class UdpLoop:
    """A TransactionLayer on a real loopback UDP socket, driven by a blocking select loop
    (for tests against real peers such as sipp; the sans-IO layer only sees ``now``)."""

    def __init__(self, on_event: Callable[[Event, float], None]) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.layer = TransactionLayer()
        self.on_event = on_event
        self.timers: list[Callable[[], float | None]] = []
        self.on_tick: list[Callable[[float], None]] = []

    @property
    def sent_by(self) -> str:
        return f"127.0.0.1:{self.port}"

    def flow_to(self, uri: object) -> Flow:
        from focus.sip.uri import SipURI

        assert isinstance(uri, SipURI)
        return Flow(TransportKind.UDP, uri.host, uri.port or 5060)

    def serve(self, done: Callable[[], bool], limit: float = 60.0) -> None:
        import select
        import time

        from focus.sip.flow import stamp_via

        clock = time.monotonic
        stop = clock() + limit
        while not done() and clock() < stop:
            now = clock()
            deadlines = [d for d in (f() for f in [self.layer.get_timer, *self.timers]) if d]
            wait = max(0.0, min([*deadlines, now + 0.1]) - now)
            readable, _, _ = select.select([self.sock], [], [], wait)
            now = clock()
            if readable:
                data, addr = self.sock.recvfrom(65535)
                message = parse_message(data)
                if isinstance(message, Request):
                    message.headers.replace_top_via(stamp_via(message.via[0], addr[0], addr[1]))
                self.layer.receive_message(message, Flow(TransportKind.UDP, *addr), now)
            self.layer.handle_timer(now)
            for tick in self.on_tick:
                tick(now)
            while (event := self.layer.next_event()) is not None:
                self.on_event(event, now)
            for t in self.layer.outgoing():
                assert t.destination is not None
                self.sock.sendto(t.message.to_bytes(), (t.destination.host, t.destination.port))

    def close(self) -> None:
        self.sock.close()
