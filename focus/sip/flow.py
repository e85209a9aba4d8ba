"""Where SIP messages go: the sans-IO rules of the transport layer (RFC 3261 s18, RFC 3581).

Pure: no sockets, no event loop, no ssl. The asyncio adapter
(:class:`focus.sip.aio.transport.SipTransport`) applies these rules; the sans-IO cores it
drives (:class:`focus.sip.uacore.UACore`) name flows with them.

* :class:`TransportKind` and :class:`Flow`: which transport, which address, which connection;
* :class:`SipCore`: what an adapter drives (parsed messages and ``now`` in; :class:`Transmit`
  values and the next deadline out), :class:`TransportFailure` what it reports back;
* :func:`stamp_via` (s18.2.1, RFC 3581 s4): ``received``/``rport`` on a request's top Via;
* :func:`response_destination` (s18.2.2): where a response goes, from its top Via;
* :func:`forbidden_destination`: addresses the stack never sends to (broadcast, multicast);
* :func:`stateless_rejection` (s18.3, s8.2): the answer to a request the parser refused.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from focus.sip.errors import SipParseError
from focus.sip.events import Transmit
from focus.sip.headers import Via
from focus.sip.message import BrokenRequest, Request, Response, make_response

__all__ = [
    "Flow",
    "IpNetwork",
    "SipCore",
    "TransportFailure",
    "TransportKind",
    "forbidden_destination",
    "in_networks",
    "parse_networks",
    "response_destination",
    "stamp_via",
    "stateless_rejection",
]

Message = Request | Response


class TransportKind(enum.StrEnum):
    """Transport protocols of a Via sent-protocol (RFC 3261 s18, s20.42)."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"  # TLS over TCP (RFC 3261 s26.2)

    @property
    def reliable(self) -> bool:
        """RFC 3261 s17.1.1.2: reliable transports switch off retransmission timers."""
        return self is not TransportKind.UDP

    @property
    def default_port(self) -> int:
        """RFC 3261 s19.1.2: 5060 for UDP/TCP, 5061 for TLS."""
        return 5061 if self is TransportKind.TLS else 5060


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from (or must go to).

    ``connection`` identifies the TCP connection a request arrived on, so that its responses
    go back over it (RFC 3261 s18.2.2); it is ``None`` for UDP and for destinations that are
    not bound to a connection yet.
    """

    transport: TransportKind
    host: str
    port: int
    connection: int | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """A message could not be sent (RFC 3261 s18.4); ``reason`` says why, for logs."""

    message: Message
    destination: Flow | None
    reason: str


class SipCore(Protocol):
    """What the transport drives: a sans-IO SIP core (transactions, dialogs, the UA).

    All methods are synchronous and take ``now`` (the event loop's monotonic clock). After
    each call the transport drains :meth:`outgoing` and re-arms its timer to
    :meth:`get_timer`.
    """

    def receive_message(self, message: Message, source: Flow, now: float) -> None:
        """A parsed message arrived; for requests the top Via is already stamped."""

    def transport_failed(self, failure: TransportFailure, now: float) -> None:
        """A send failed (unreachable, forbidden destination, connection refused...)."""

    def handle_timer(self, now: float) -> None:
        """The deadline returned by :meth:`get_timer` has passed."""

    def get_timer(self) -> float | None:
        """The next deadline (loop clock), or ``None`` if nothing is pending."""

    def outgoing(self) -> list[Transmit]:
        """Messages to send now; the list is handed over (the core forgets them).

        A request's ``destination`` is mandatory (the next hop the core resolved); a
        response's only contributes its TCP connection: the address comes from the top Via
        (:func:`response_destination`)."""


# --- routing rules ------------------------------------------------------------------------


def forbidden_destination(host: str) -> str | None:
    """Why we refuse to send to ``host``, or ``None`` if it is an acceptable unicast address.

    The stack never sends to broadcast, multicast or unspecified addresses: a hostile Via or
    maddr could otherwise turn us into an amplifier. ``host`` must be a literal IP (name
    resolution happens before this check).
    """
    addr = _ip(host)
    if addr is None:
        return f"not an IP literal: {host!r}"
    if addr.is_multicast:
        return f"multicast address {addr}"
    if addr.is_unspecified:
        return f"unspecified address {addr}"
    if isinstance(addr, ipaddress.IPv4Address) and (
        addr == ipaddress.IPv4Address("255.255.255.255") or int(addr) & 0xFF == 0xFF
    ):
        # Without interface netmasks we cannot know every subnet's broadcast address; refusing
        # every x.x.x.255 is the conservative choice (no SIP peer of ours lives there).
        return f"broadcast address {addr}"
    return None


@functools.lru_cache(maxsize=4096)
def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: every message parses one or two addresses, and peers are few (bounded anyway).
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``192.0.2.10``, ``10.0.0.0/8``, ``2001:db8::/32``: addresses or CIDR networks
    (ValueError naming the bad one)."""
    out: list[IpNetwork] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(out)


def in_networks(host: str, networks: Sequence[IpNetwork]) -> bool:
    """Whether ``host`` is an IP address inside one of ``networks`` (a host name never is:
    trusted peers are listed by address)."""
    address = _ip(host) if networks else None
    return address is not None and any(address in net for net in networks)


def stamp_via(via: Via, source_host: str, source_port: int) -> Via:
    """The top Via of a received request with ``received``/``rport`` filled in.

    RFC 3261 s18.2.1: add ``received`` when sent-by is a name or differs from the packet's
    source. RFC 3581 s4: if ``rport`` is present without a value, set it to the source port
    and then always add ``received``.
    """
    params = via.params
    wants_rport = "rport" in params and not params["rport"]
    if wants_rport:
        params = params.set("rport", str(source_port))
    sent_by = _ip(via.host)
    if wants_rport or sent_by is None or sent_by != _ip(source_host):
        params = params.set("received", source_host)
    if params is via.params:
        return via
    return dataclasses.replace(via, params=params)


def _transport_of(via: Via) -> TransportKind:
    try:
        return TransportKind(via.transport.upper())
    except ValueError:
        # TLS/SCTP/WS are not served; answering over UDP is the least surprising fallback.
        return TransportKind.UDP


def _port(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < 65536 else None


def response_destination(via: Via, arrived_on: Flow | None) -> Flow:
    """Where a response goes, from its top Via (RFC 3261 s18.2.2, RFC 3581 s4).

    For TCP the connection the request came in on is kept in the returned flow (the sender
    uses it while it is still open); the address is the fallback for a new connection:
    ``received`` (if any) with the sent-by port. For UDP: ``maddr`` if present (port from
    sent-by, else 5060), else ``received`` with ``rport`` (RFC 3581) or the sent-by port,
    else sent-by itself. Names are returned as they are: the sender resolves or refuses them.
    """
    # The transport the request really came over wins over what its Via claims: the peer
    # demonstrably uses it, and a UDP request claiming TCP must not make us open connections.
    kind = arrived_on.transport if arrived_on is not None else _transport_of(via)
    params = via.params
    sent_port = via.port if via.port is not None else _transport_of(via).default_port
    received = params.get("received") or None
    if kind.reliable:
        host = received or via.host
        connection = arrived_on.connection if arrived_on is not None else None
        return Flow(kind, host.strip("[]"), sent_port, connection)
    maddr = params.get("maddr") or None
    if maddr:
        return Flow(kind, maddr.strip("[]"), sent_port)
    if received:
        port = _port(params.get("rport")) or sent_port
        return Flow(kind, received.strip("[]"), port)
    return Flow(kind, via.host.strip("[]"), sent_port)


def stateless_rejection(exc: SipParseError, source: Flow) -> Response | None:
    """The response to a message the parser refused, or ``None`` if it gets none.

    RFC 3261 s18.3/s8.2: a bad request gets the error the parser names (400, 413, 416, 505,
    513...) if Via, From, To, Call-ID and CSeq could be read; bad responses and unreadable
    requests are dropped (s18.1.2). A request whose Request-Line is broken
    (``BrokenRequest``) is answered too, as RFC 4475 s3.1.2.11/12 ask; an ACK never is. The
    top Via of the refused request is stamped (:func:`stamp_via`) so the answer routes back.
    """
    bad = exc.message
    if not isinstance(bad, Request | BrokenRequest) or bad.method.upper() == "ACK":
        return None
    try:
        top = bad.headers.via[0]
        bad.headers.replace_top_via(stamp_via(top, source.host, source.port))
    except (SipParseError, IndexError):
        return None  # no usable Via: nowhere to answer
    try:
        return make_response(bad, exc.status, exc.reason, to_tag=_stateless_tag(bad))
    except SipParseError:
        # The To itself is broken, so it cannot take a tag: echo it as it came, which still
        # ends the peer's transaction (better than silence and retransmissions).
        return make_response(bad, exc.status, exc.reason)


def _stateless_tag(request: Request | BrokenRequest) -> str:
    # A retransmitted bad request must get the same To-tag (RFC 3261 s8.2.6.2).
    seed = f"{request.headers.get('Call-ID')}|{request.headers.get('From')}"
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()
