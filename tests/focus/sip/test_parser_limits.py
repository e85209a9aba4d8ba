"""Size and framing limits of the parser: what can be answered is (513/400 with the message
to answer), what cannot breaks the stream at once (the transport then closes it)."""

from __future__ import annotations

import pytest

from focus.sip.errors import SipParseError
from focus.sip.flow import Flow, TransportKind, stateless_rejection
from focus.sip.message import Request
from focus.sip.parser import ParserConfig, StreamParser, parse_message

HEAD = (
    b"MESSAGE sip:conf@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-big\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:conf@127.0.0.1>\r\n"
    b"Call-ID: big@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
)
SOURCE = Flow(TransportKind.UDP, "127.0.0.1", 5099)


def test_an_oversized_datagram_with_a_readable_head_is_answered_513() -> None:
    config = ParserConfig(max_message_size=2048, max_body_size=2048)
    body = b"x" * 4096
    data = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    with pytest.raises(SipParseError) as caught:
        parse_message(data, config)
    assert caught.value.status == 513
    assert isinstance(caught.value.message, Request)
    response = stateless_rejection(caught.value, SOURCE)
    assert response is not None and response.status == 513


def test_an_oversized_datagram_of_garbage_is_dropped() -> None:
    config = ParserConfig(max_message_size=2048, max_body_size=2048)
    with pytest.raises(SipParseError) as caught:
        parse_message(b"\x00" * 4096, config)
    assert caught.value.status == 513
    assert stateless_rejection(caught.value, SOURCE) is None


@pytest.mark.parametrize(
    "garbage", [b"\x16\x03\x01\x02\x00\x01\x00\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n", b"HELLO\n"]
)
def test_a_stream_with_a_garbage_start_line_breaks_as_soon_as_the_line_ends(
    garbage: bytes,
) -> None:
    parser = StreamParser()
    parser.receive_data(garbage)
    with pytest.raises(SipParseError) as caught:
        parser.next_message()
    assert caught.value.status == 400
    assert parser.broken


def test_a_stream_start_line_split_across_reads_is_fine() -> None:
    parser = StreamParser()
    parser.receive_data(HEAD[:10])
    assert parser.next_message() is None
    parser.receive_data(HEAD[10:] + b"Content-Length: 0\r\n\r\n")
    message = parser.next_message()
    assert isinstance(message, Request) and message.method == "MESSAGE"
