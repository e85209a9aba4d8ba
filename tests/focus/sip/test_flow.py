"""The transport's routing rules, sans-IO (RFC 3261 s18.2, s18.3, RFC 3581): Via stamping,
where responses go, refused destinations, and the stateless answer to a refused request.
The adapter that applies them on real sockets is tested in aio/test_transport.py."""

from __future__ import annotations

import pytest

from focus.sip.errors import SipParseError
from focus.sip.flow import (
    Flow,
    TransportKind,
    forbidden_destination,
    response_destination,
    stamp_via,
    stateless_rejection,
)
from focus.sip.headers import Via, parse_via
from focus.sip.message import Response
from focus.sip.parser import parse_message
from focus.sip.uri import Params


def via(text: str) -> Via:
    return parse_via(text)[0]


def test_received_added_when_sent_by_differs_from_source() -> None:
    stamped = stamp_via(via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKa"), "127.0.0.1", 5070)
    assert stamped.received == "127.0.0.1"
    assert not stamped.has_rport


def test_received_added_for_a_domain_name_sent_by() -> None:
    # RFC 3261 s18.2.1's own example: a name in sent-by always gets received.
    stamped = stamp_via(via("SIP/2.0/UDP bobspc.biloxi.com:5060"), "192.0.2.4", 5060)
    assert str(stamped) == "SIP/2.0/UDP bobspc.biloxi.com:5060;received=192.0.2.4"


def test_nothing_added_when_sent_by_is_the_source() -> None:
    original = via("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa")
    assert stamp_via(original, "127.0.0.1", 5070) is original


def test_empty_rport_is_filled_and_received_always_added() -> None:
    # RFC 3581 s4: received is added even when it equals sent-by.
    stamped = stamp_via(via("SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKa"), "127.0.0.1", 40000)
    assert stamped.rport == 40000
    assert stamped.received == "127.0.0.1"
    assert stamped.branch == "z9hG4bKa"


def test_udp_response_goes_to_received_and_rport() -> None:
    v = via("SIP/2.0/UDP 10.0.0.1:5060;received=127.0.0.1;rport=40000")
    assert response_destination(v, None) == Flow(TransportKind.UDP, "127.0.0.1", 40000)


def test_udp_response_goes_to_received_with_sent_by_port_without_rport() -> None:
    v = via("SIP/2.0/UDP 10.0.0.1:5070;received=127.0.0.1")
    assert response_destination(v, None) == Flow(TransportKind.UDP, "127.0.0.1", 5070)


def test_udp_response_goes_to_sent_by_default_port_5060() -> None:
    assert response_destination(via("SIP/2.0/UDP 127.0.0.2"), None) == Flow(
        TransportKind.UDP, "127.0.0.2", 5060
    )


def test_maddr_wins_for_udp() -> None:
    v = via("SIP/2.0/UDP 10.0.0.1:5070;maddr=127.0.0.9;received=127.0.0.1;rport=4")
    assert response_destination(v, None) == Flow(TransportKind.UDP, "127.0.0.9", 5070)


def test_tcp_response_keeps_the_connection_and_falls_back_to_received() -> None:
    v = via("SIP/2.0/TCP 10.0.0.1:5070;received=127.0.0.1")
    arrived = Flow(TransportKind.TCP, "127.0.0.1", 41000, connection=7)
    assert response_destination(v, arrived) == Flow(TransportKind.TCP, "127.0.0.1", 5070, 7)


def test_tls_sent_by_defaults_to_port_5061() -> None:
    v = via("SIP/2.0/TLS 10.0.0.1;received=127.0.0.1")
    arrived = Flow(TransportKind.TLS, "127.0.0.1", 40000, connection=3)
    assert response_destination(v, arrived) == Flow(TransportKind.TLS, "127.0.0.1", 5061, 3)


def test_the_arrival_transport_wins_over_the_via_transport() -> None:
    v = via("SIP/2.0/TCP 10.0.0.1:5070;received=127.0.0.1;rport=4000")
    arrived = Flow(TransportKind.UDP, "127.0.0.1", 4000)
    assert response_destination(v, arrived) == Flow(TransportKind.UDP, "127.0.0.1", 4000)


def test_ipv6_received_is_unbracketed() -> None:
    v = via("SIP/2.0/UDP [2001:db8::1]:5070;received=[::1];rport=9")
    assert response_destination(v, None) == Flow(TransportKind.UDP, "::1", 9)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("192.168.1.255", "broadcast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("example.com", "not an IP"),
    ],
)
def test_forbidden_destinations(host: str, why: str) -> None:
    reason = forbidden_destination(host)
    assert reason is not None and why in reason


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "192.0.2.4", "[::1]"])
def test_unicast_destinations_are_allowed(host: str) -> None:
    assert forbidden_destination(host) is None


def test_params_helper_is_case_insensitive() -> None:
    # stamp_via relies on Params.set replacing an empty rport in place.
    assert Params([("RPort", None)]).set("rport", "5").pairs == (("RPort", "5"),)


UDP_SOURCE = Flow(TransportKind.UDP, "192.0.2.9", 5070)


def _refused(text: str) -> SipParseError:
    with pytest.raises(SipParseError) as refused:
        parse_message(text.replace("\n", "\r\n").encode())
    return refused.value


BAD_CSEQ = (
    "{method} sip:bob@192.0.2.4 SIP/2.0\n"
    "Via: SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKbad;rport\n"
    "From: <sip:alice@192.0.2.9>;tag=a1\n"
    "To: <sip:bob@192.0.2.4>\n"
    "Call-ID: bad-cseq\n"
    "CSeq: one {method}\n"
    "Max-Forwards: 70\n"
    "Content-Length: 0\n\n"
)


def test_a_readable_bad_request_gets_the_parsers_status_with_a_stable_tag() -> None:
    first = stateless_rejection(_refused(BAD_CSEQ.format(method="OPTIONS")), UDP_SOURCE)
    again = stateless_rejection(_refused(BAD_CSEQ.format(method="OPTIONS")), UDP_SOURCE)
    assert isinstance(first, Response) and isinstance(again, Response)
    assert first.status == 400
    # A retransmission gets the same To-tag (s8.2.6.2); the Via is stamped so it routes back.
    assert first.to.tag is not None and first.to.tag == again.to.tag
    top = first.headers.via[0]
    assert top.params.get("rport") == "5070" and top.params.get("received") == "192.0.2.9"


def test_a_bad_ack_and_a_bad_response_get_no_answer() -> None:
    assert stateless_rejection(_refused(BAD_CSEQ.format(method="ACK")), UDP_SOURCE) is None
    bad_response = (
        "SIP/2.0 200 OK\n"
        "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKr\n"
        "From: <sip:bob@192.0.2.4>;tag=b\n"
        "To: <sip:alice@192.0.2.9>;tag=a\n"
        "Call-ID: r\n"
        "CSeq: bad INVITE\n"
        "Content-Length: 0\n\n"
    )
    assert stateless_rejection(_refused(bad_response), UDP_SOURCE) is None
