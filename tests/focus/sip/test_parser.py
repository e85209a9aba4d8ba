"""The datagram and stream parsers: framing, folding, limits and the status of each error."""

from __future__ import annotations

import contextlib

import pytest

from focus.sip.errors import SipParseError
from focus.sip.message import BrokenRequest, Message, Request, Response, make_response
from focus.sip.parser import ParserConfig, StreamParser, is_keepalive, parse_message

HEAD = (
    "OPTIONS sip:conf@focus.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:a@example.com>;tag=1\r\n"
    "To: <sip:conf@focus.example.com>\r\n"
    "Call-ID: c1@192.0.2.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
)


def options(body: bytes = b"", extra: str = "", length: int | None = None) -> bytes:
    cl = len(body) if length is None else length
    return f"{HEAD}{extra}Content-Length: {cl}\r\n\r\n".encode() + body


def fail(data: bytes, config: ParserConfig | None = None) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data, config or ParserConfig())
    return info.value


def test_request_basics() -> None:
    msg = parse_message(options(b"hello"))
    assert isinstance(msg, Request)
    assert msg.method == "OPTIONS"
    assert msg.body == b"hello"


def test_response_basics() -> None:
    data = (
        b"SIP/2.0 486 Busy Here\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\n"
        b"To: <sip:conf@focus.example.com>;tag=2\r\n"
        b"Call-ID: c1@192.0.2.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (486, "Busy Here")
    assert msg.to.tag == "2"


def test_folded_lines_and_lf_only_line_endings() -> None:
    data = options().replace(b"Max-Forwards: 70", b"Max-Forwards:\r\n  70")
    assert parse_message(data).max_forwards == 70
    lf_only = options().replace(b"\r\n", b"\n")
    assert parse_message(lf_only).call_id == "c1@192.0.2.1"


def test_leading_crlf_before_start_line_is_ignored() -> None:
    assert isinstance(parse_message(b"\r\n\r\n" + options()), Request)


def test_datagram_without_content_length_takes_the_rest() -> None:
    data = options(b"xyz").replace(b"Content-Length: 3\r\n", b"")
    assert parse_message(data).body == b"xyz"


def test_datagram_extra_octets_after_body_are_ignored() -> None:
    assert parse_message(options(b"abc") + b"garbage").body == b"abc"


@pytest.mark.parametrize(
    ("data", "status", "fault"),
    [
        (b"", 400, "Empty message"),
        (b"\r\n\r\n", 400, "Empty message"),
        (b"OPTIONS sip:a@b SIP/2.0", 400, "Missing empty line"),
        (options().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, "Version"),
        (options().replace(b"OPTIONS sip", b"OPTIONS  sip"), 400, "Request-Line"),
        (
            options().replace(b"sip:conf", b"<sip:conf").replace(b".com SIP", b".com> SIP"),
            400,
            "URI",
        ),
        (options().replace(b"Max-Forwards: 70", b"Max-Forwards 70"), 400, "header line"),
        (options().replace(b"Max-Forwards: 70", b"Max Forwards: 70"), 400, "header line"),
        (b" folded: first\r\n" + options(), 400, "header line"),
        (options().replace(b"Via: ", b"\tVia: ", 1), 400, "Continuation line"),
        (options(length=10), 400, "Content-Length larger"),
        (options().replace(b"Content-Length: 0", b"Content-Length: -1"), 400, "Content-Length"),
        (options().replace(b"Content-Length: 0", b"Content-Length: 0x10"), 400, "Content-Length"),
        (options().replace(b"Max-Forwards: 70", b"Max-Forwards: 70\rX"), 400, "CR"),
        (options().replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), 400, "CSeq method"),
        (options().replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"), 400, "Malformed CSeq"),
        (options().replace(b"CSeq: 1 OPTIONS", b"CSeq: 4294967296 OPTIONS"), 400, "CSeq"),
        (options().replace(b"Call-ID: c1@192.0.2.1", b"Call-ID: a b"), 400, "Call-ID"),
        (options().replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0 UDP"), 400, "Via"),
        (options().replace(b"From: <sip:a@example.com>", b"From: <sip:a@example.com"), 400, "From"),
        (options(extra="Contact: <sip:a@b>;;\r\n"), 400, "Contact"),
        (
            options().replace(b"sip:conf@focus", b"sip:conf@focus?X=1"),
            400,
            "Headers in Request-URI",
        ),
        (options().replace(b"sip:conf@focus.example.com SIP", b"mailto:x@y SIP"), 416, "Scheme"),
        (options().replace(b"To: <sip:conf@focus.example.com>\r\n", b""), 400, "Missing To"),
        (
            options().replace(b"SIP/2.0/UDP", b"SIP/2.0/UDP").replace(b"Via: ", b"X-Via: "),
            400,
            "Via",
        ),
        (b"SIP/2.0 800 Whatever\r\n\r\n", 400, "Status code"),
        (b"SIP/2.0 20 OK\r\n\r\n", 400, "Status-Line"),
        (b"SIP/1.0 200 OK\r\n\r\n", 505, "Version"),
    ],
)
def test_errors_carry_status_and_fault(data: bytes, status: int, fault: str) -> None:
    exc = fail(data)
    assert exc.status == status
    assert fault.lower() in exc.reason.lower()


def test_size_limits() -> None:
    config = ParserConfig(max_message_size=600, max_head_size=400, max_body_size=100)
    assert fail(options(b"x" * 101), config).status == 413
    assert fail(options(b"x" * 700), config).status == 513
    big_head = options(extra="X-Pad: " + "p" * 400 + "\r\n")
    assert fail(big_head, config).status == 513
    many = options(extra="X-A: 1\r\n" * 20)
    assert fail(many, ParserConfig(max_header_fields=10)).status == 513


def test_supported_schemes_policy() -> None:
    data = options().replace(b"sip:conf@focus.example.com SIP", b"tel:+4312345 SIP")
    assert isinstance(parse_message(data), Request)
    exc = fail(data, ParserConfig(supported_uri_schemes=frozenset({"sip"})))
    assert exc.status == 416
    assert isinstance(exc.message, Request)


# --- stream ------------------------------------------------------------------------------


def feed(parser: StreamParser, data: bytes) -> list[Message]:
    parser.receive_data(data)
    out: list[Message] = []
    while (msg := parser.next_message()) is not None:
        out.append(msg)
    return out


def test_stream_frames_by_content_length_and_skips_keepalives() -> None:
    parser = StreamParser()
    wire = b"\r\n\r\n" + options(b"one") + b"\r\n" + options(b"two")
    assert [m.body for m in feed(parser, wire)] == [b"one", b"two"]
    assert feed(parser, b"\r\n\r\n") == []
    assert parser.buffered == 0
    assert parser.pings == 2
    # A ping split across reads still counts once; a lone CRLF (a pong) does not.
    assert feed(parser, b"\r\n") == []
    assert feed(parser, b"\r\n") == []
    assert parser.pings == 3
    assert [m.body for m in feed(parser, b"\r\n" + options(b"x"))] == [b"x"]
    assert parser.pings == 3


def test_keepalive_datagrams() -> None:
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n")
    assert not is_keepalive(b"") and not is_keepalive(options())


def test_stream_waits_for_the_whole_body() -> None:
    parser = StreamParser()
    wire = options(b"0123456789")
    assert feed(parser, wire[:-3]) == []
    assert [m.body for m in feed(parser, wire[-3:])] == [b"0123456789"]


def test_stream_requires_content_length() -> None:
    parser = StreamParser()
    with pytest.raises(SipParseError) as info:
        feed(parser, options().replace(b"Content-Length: 0\r\n", b""))
    assert "Missing Content-Length" in info.value.reason
    assert isinstance(info.value.message, Request)
    assert parser.broken
    with pytest.raises(SipParseError):
        parser.receive_data(b"more")


def test_stream_bad_message_with_good_framing_is_skipped() -> None:
    parser = StreamParser()
    bad = options().replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 BYE")
    parser.receive_data(bad + options(b"ok"))
    with pytest.raises(SipParseError) as info:
        parser.next_message()
    assert info.value.status == 400
    assert not parser.broken
    msg = parser.next_message()
    assert msg is not None and msg.body == b"ok"


def test_stream_header_block_limit() -> None:
    parser = StreamParser(ParserConfig(max_head_size=100))
    with pytest.raises(SipParseError) as info:
        feed(parser, b"OPTIONS sip:a@b SIP/2.0\r\nX-Pad: " + b"p" * 200)
    assert info.value.status == 513
    assert parser.broken


def test_stream_body_limit() -> None:
    parser = StreamParser(ParserConfig(max_body_size=10))
    with pytest.raises(SipParseError) as info:
        feed(parser, options(length=11))
    assert info.value.status == 413
    assert parser.broken


def test_stream_byte_at_a_time() -> None:
    parser = StreamParser()
    wire = options(b"abc") + options(b"defg")
    got: list[Message] = []
    for i in range(len(wire)):
        got.extend(feed(parser, wire[i : i + 1]))
    assert [m.body for m in got] == [b"abc", b"defg"]


def test_stream_parses_the_head_once_while_the_body_drips_in() -> None:
    parser = StreamParser()
    wire = options(b"b" * 2000)
    head_end = wire.index(b"\r\n\r\n") + 4
    assert feed(parser, wire[:head_end]) == []
    pending = parser._pending
    assert pending is not None
    assert parser.awaiting_body == 2000
    for i in range(head_end, len(wire) - 1):
        assert feed(parser, wire[i : i + 1]) == []
        assert parser._pending is pending  # not re-parsed
    assert parser.awaiting_body == 1
    (msg,) = feed(parser, wire[-1:])
    assert msg.body == b"b" * 2000
    assert parser.awaiting_body is None


def _hostile_inputs() -> list[tuple[str, bytes]]:
    n = 20000

    def with_header(line: str) -> bytes:
        return options(extra=line + "\r\n")

    return [
        ("long Request-URI", f"OPTIONS sip:{'a' * 3 * n} SIP/2.0\r\n\r\n".encode()),
        ("dotted host", options().replace(b"conf@focus.example.com", ("a." * n).encode() + b"!")),
        ("hyphen host", options().replace(b"focus.example.com", b"a" + b"-" * n + b"!")),
        ("Via hosts", with_header("Via: SIP/2.0/UDP " + "a." * n + "-")),
        ("Via params", with_header("Via: SIP/2.0/UDP h" + ";a=b" * n + ";")),
        ("backslashes", with_header('Contact: "' + "\\" * 2 * n)),
        ("quotes", with_header("Contact: " + '"a",' * n)),
        ("angles", with_header("Contact: " + "<" * 3 * n)),
        ("commas", with_header("Contact: " + ", " * n + "<sip:a@b")),
        ("param storm", with_header("Contact: <sip:a@b>" + ";a=" * n)),
        ("quoted params", with_header('Contact: <sip:a@b>;a="' + "x" * 3 * n)),
        ("percents", with_header("Contact: <sip:" + "%" * 3 * n + "@b>")),
        ("user chars", with_header("Contact: <sip:" + "a;" * n + ">")),
        ("ipv6", with_header("Contact: <sip:[" + ":" * 3 * n + "]>")),
        ("display tokens", with_header("Contact: " + "a " * n + "b")),
        ("call-id", options().replace(b"c1@192.0.2.1", b"a@" * n)),
        ("cseq", options().replace(b"1 OPTIONS", b"1" * n + b" OPTIONS")),
        ("folds", with_header("X-Fold: a" + "\r\n b" * n)),
        ("header names", with_header("X" * 3 * n + ": v")),
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "data"), _hostile_inputs(), ids=[n for n, _ in _hostile_inputs()])
def test_hostile_inputs_end_with_a_message_or_a_parse_error(name: str, data: bytes) -> None:
    # Limits opened up so that the inputs reach every regex and loop of the parser; a
    # backtracking blow-up would show as this test hanging (and the timeout failing it).
    config = ParserConfig(
        max_message_size=len(data) + 1, max_head_size=len(data) + 1, max_header_fields=2 * 10**5
    )
    try:
        msg = parse_message(data, config)
    except SipParseError as exc:
        assert exc.status in (400, 416, 505)
        return
    for accessor in ("via", "from_", "to", "contact", "call_id", "cseq", "route"):
        with contextlib.suppress(SipParseError):
            getattr(msg, accessor)


def test_a_broken_request_line_still_carries_the_fields_to_answer_with() -> None:
    head = (
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n"
        "To: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(SipParseError) as bad_uri:
        parse_message(f"OPTIONS <sip:b@y> SIP/2.0\r\n{head}".encode())
    broken = bad_uri.value.message
    assert isinstance(broken, BrokenRequest) and broken.method == "OPTIONS"
    answer = make_response(broken, bad_uri.value.status, bad_uri.value.reason, to_tag="t")
    assert answer.status == 400 and answer.cseq.number == 1 and answer.to.tag == "t"
    with pytest.raises(SipParseError) as bad_version:
        parse_message(f"OPTIONS sip:b@y SIP/7.0\r\n{head}".encode())
    assert bad_version.value.status == 505
    assert isinstance(bad_version.value.message, BrokenRequest)
    # a broken Status-Line is no request: nothing to answer
    with pytest.raises(SipParseError) as bad_status:
        parse_message(f"SIP/2.0 2000 OK\r\n{head}".encode())
    assert bad_status.value.message is not None
    assert not isinstance(bad_status.value.message, BrokenRequest)
