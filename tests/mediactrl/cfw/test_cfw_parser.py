"""CFW message model, serializer and stream parser (RFC 6230 s9.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.cfw.errors import LocalProtocolError, RemoteProtocolError
from mediactrl.cfw.message import Message, Method, ReportStatus, Request, Response, serialize
from mediactrl.cfw.parser import (
    NEED_DATA,
    CfwParser,
    NeedData,
    ParseError,
    ParserLimits,
    parse_message,
)

SYNC = (
    b"CFW 6e5e86f95609 SYNC\r\n"
    b"Dialog-ID: 5feb6486792a\r\n"
    b"Keep-Alive: 100\r\n"
    b"Packages: msc-ivr/1.0,msc-mixer/1.0\r\n"
    b"\r\n"
)
BODY = b'<mscmixer version="1.0" xmlns="urn:ietf:params:xml:ns:msc-mixer"><audit/></mscmixer>'
CONTROL = (
    b"CFW 3032e5fb79a1 CONTROL\r\n"
    b"Control-Package: msc-mixer/1.0\r\n"
    b"Content-Type: application/msc-mixer+xml\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
REPORT = b"CFW i387yeiqyiq REPORT\r\nSeq: 1\r\nStatus: update\r\nTimeout: 10\r\n\r\n"


def drain(parser: CfwParser) -> list[Message | ParseError]:
    out: list[Message | ParseError] = []
    while True:
        item = parser.next_event()
        if isinstance(item, NeedData):
            return out
        out.append(item)
        if isinstance(item, ParseError) and item.fatal:
            return out


def test_sync_fields() -> None:
    message = parse_message(SYNC)
    assert isinstance(message, Request)
    assert message.method == Method.SYNC
    assert message.trans_id == "6e5e86f95609"
    assert message.dialog_id == "5feb6486792a"
    assert message.keep_alive == 100
    assert message.packages == ("msc-ivr/1.0", "msc-mixer/1.0")
    assert serialize(message) == SYNC


def test_control_with_body_round_trips() -> None:
    message = parse_message(CONTROL)
    assert isinstance(message, Request)
    assert message.control_package == "msc-mixer/1.0"
    assert message.content_type == "application/msc-mixer+xml"
    assert message.body == BODY
    assert serialize(message) == CONTROL


def test_report_fields() -> None:
    message = parse_message(REPORT)
    assert isinstance(message, Request)
    assert (message.seq, message.status, message.timeout) == (1, ReportStatus.UPDATE, 10)


def test_response_and_case_insensitive_names() -> None:
    message = parse_message(b"CFW 8djae7khauj 200\r\nkeep-alive: 100\r\nPACKAGES: a.b/1.0\r\n\r\n")
    assert isinstance(message, Response)
    assert message.code == 200
    assert message.keep_alive == 100
    assert message.headers == (("Keep-Alive", "100"), ("Packages", "a.b/1.0"))


def test_k_alive_and_extension_header() -> None:
    message = parse_message(b"CFW 518ba6047880 K-ALIVE\r\nX-Trace: abc def\r\n\r\n")
    assert isinstance(message, Request)
    assert message.method == Method.K_ALIVE
    assert message.get("x-trace") == "abc def"


def test_stream_of_messages_split_anywhere() -> None:
    stream = SYNC + CONTROL + REPORT
    whole = CfwParser()
    whole.receive_data(stream)
    expected = drain(whole)
    assert len(expected) == 3
    for cut in range(len(stream)):
        parser = CfwParser()
        parser.receive_data(stream[:cut])
        got = drain(parser)
        parser.receive_data(stream[cut:])
        got += drain(parser)
        assert got == expected


@pytest.mark.parametrize(
    ("raw", "status", "trans_id"),
    [
        (b"CFW abcd1234 SYNC\r\nDialog-ID: x1234\r\n\r\n", 400, "abcd1234"),  # no Packages
        (b"CFW abcd1234 CONTROL\r\n\r\n", 400, "abcd1234"),  # no Control-Package
        (
            b"CFW abcd1234 REPORT\r\nSeq: one\r\nStatus: update\r\nTimeout: 1\r\n\r\n",
            400,
            "abcd1234",
        ),
        (b"CFW abcd1234 REPORT\r\nSeq: 1\r\nStatus: done\r\nTimeout: 1\r\n\r\n", 400, "abcd1234"),
        (b"CFW abcd1234 SYNC\r\nPackages: a.b/1\r\nPackages: a.b/1\r\n\r\n", 400, "abcd1234"),
        (b"CFW abcd1234 200\r\nbad header\r\n\r\n", 400, None),  # responses are not answered
        (
            b"CFW abcd1234 CONTROL\r\nControl-Package: msc-mixer/1.0\r\n"
            b"Content-Length: 2\r\n\r\nhi",
            400,
            "abcd1234",
        ),  # body without Content-Type
    ],
)
def test_recoverable_errors_name_the_status(raw: bytes, status: int, trans_id: str | None) -> None:
    parser = CfwParser()
    parser.receive_data(raw + SYNC)
    first, second = drain(parser)
    assert isinstance(first, ParseError)
    assert (first.status, first.trans_id, first.fatal) == (status, trans_id, False)
    assert isinstance(second, Request)  # the stream goes on after a framed error


@pytest.mark.parametrize(
    ("raw", "trans_id", "reason"),
    [
        (b"CFW ab SYNC\r\n", None, "no transaction id"),  # trans-id too short: unanswerable
        (b"HTTP", None, "not a CFW message"),  # decided after four bytes
        (b"GET / HTTP/1.1\r\n", None, "not a CFW message"),
        (b"\r\nCFW abcd1234 K-ALIVE\r\n", None, "not a CFW message"),
        (b"CFW \xff\xfe SYNC\r\n", None, "no transaction id"),
        (b"CFW abcd1234 SYNC\r\n" + b"X: y\r\n" * 65, "abcd1234", "header lines"),
    ],
)
def test_unanswerable_or_flooding_heads_are_fatal_before_the_blank_line(
    raw: bytes, trans_id: str | None, reason: str
) -> None:
    """No blank line needed: the bytes in already prove the stream cannot be framed or the
    request cannot be answered (a 400 goes out only with a readable transaction id)."""
    parser = CfwParser()
    parser.receive_data(raw)
    event = parser.next_event()
    assert isinstance(event, ParseError)
    assert (event.status, event.trans_id, event.fatal) == (400, trans_id, True)
    assert reason in event.reason


def test_bad_content_length_is_fatal() -> None:
    parser = CfwParser()
    parser.receive_data(b"CFW abcd1234 CONTROL\r\nContent-Length: lots\r\n\r\n" + SYNC)
    (error,) = drain(parser)
    assert isinstance(error, ParseError)
    assert error.fatal and error.status == 400 and error.trans_id == "abcd1234"
    assert parser.broken
    parser.receive_data(SYNC)
    assert parser.next_event() == error


def test_bare_lf_fails_at_once_instead_of_waiting() -> None:
    parser = CfwParser()
    parser.receive_data(b"CFW abcd1234 K-ALIVE\n\n")
    event = parser.next_event()
    assert isinstance(event, ParseError) and event.fatal and "CRLF" in event.reason


def test_size_limits() -> None:
    parser = CfwParser(ParserLimits(max_head=64, max_body=10))
    parser.receive_data(b"CFW abcd1234 SYNC\r\n" + b"X: y\r\n" * 20)
    event = parser.next_event()
    assert isinstance(event, ParseError) and event.fatal
    parser = CfwParser(ParserLimits(max_body=10))
    parser.receive_data(
        b"CFW abcd1234 CONTROL\r\nControl-Package: a.b/1\r\nContent-Length: 11\r\n\r\n"
    )
    event = parser.next_event()
    assert isinstance(event, ParseError) and event.fatal and "exceeds" in event.reason


def test_need_data_until_body_complete() -> None:
    parser = CfwParser()
    parser.receive_data(CONTROL[:-1])
    assert parser.next_event() is NEED_DATA
    parser.receive_data(CONTROL[-1:])
    assert isinstance(parser.next_event(), Request)


def test_parse_message_rejects_incomplete_and_trailing() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_message(SYNC[:-2])
    with pytest.raises(RemoteProtocolError):
        parse_message(SYNC + b"x")
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(b"CFW abcd1234 CONTROL\r\n\r\n")
    assert info.value.status == 400 and info.value.trans_id == "abcd1234"


def test_serializer_refuses_what_the_grammar_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        serialize(Request("x", method=Method.SYNC))
    with pytest.raises(LocalProtocolError):
        serialize(Request("abcd1234", (("Seq", "1\r\nX: y"),), method=Method.REPORT))
    with pytest.raises(LocalProtocolError):
        serialize(Request("abcd1234", (), b"body", method=Method.CONTROL))
    with pytest.raises(LocalProtocolError):
        serialize(Response("abcd1234", (("Content-Length", "3"),), code=200))


# ---------------------------------------------------------------- fuzzing
TOKENS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-+%=/]{3,12}", fullmatch=True)
MESSAGES = st.one_of(
    st.builds(
        lambda t, p, b: Request(
            t,
            (("Control-Package", p), ("Content-Type", "application/msc-mixer+xml")),
            b,
            method=Method.CONTROL,
        ),
        TOKENS,
        TOKENS,
        st.binary(min_size=1, max_size=64),
    ),
    st.builds(
        lambda t, s, n: Request(
            t, (("Seq", str(n)), ("Status", s), ("Timeout", "10")), method=Method.REPORT
        ),
        TOKENS,
        st.sampled_from(["update", "terminate"]),
        st.integers(0, 10**6),
    ),
    st.builds(lambda t, c: Response(t, code=c), TOKENS, st.sampled_from([200, 202, 400, 403, 481])),
    st.builds(lambda t: Request(t, method=Method.K_ALIVE), TOKENS),
)


def _parse_all(data: bytes, step: int | None) -> list[Message | ParseError]:
    parser = CfwParser(ParserLimits(max_head=2048, max_body=4096))
    out: list[Message | ParseError] = []
    if step is None:
        parser.receive_data(data)
        return drain(parser)
    for i in range(0, len(data), step):
        parser.receive_data(data[i : i + step])
        out += drain(parser)
        if out and isinstance(out[-1], ParseError) and out[-1].fatal:
            break
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=4))
def test_fuzz_serialized_messages_parse_back(messages: list[Message]) -> None:
    data = b"".join(serialize(m) for m in messages)
    assert _parse_all(data, None) == messages
    assert _parse_all(data, 1) == messages


@settings(max_examples=300, deadline=None)
@given(
    MESSAGES,
    st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=4)), min_size=1, max_size=4),
)
def test_fuzz_mutations_yield_messages_or_errors(
    message: Message, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(serialize(message))
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    whole = _parse_all(bytes(data), None)
    assert all(isinstance(item, Request | Response | ParseError) for item in whole)
    # Fed one byte at a time, the parser reaches the same verdict.
    assert _parse_all(bytes(data), 1) == whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_garbage_never_raises(data: bytes) -> None:
    result = _parse_all(b"CFW abcd1234 " + data, 7)
    assert all(isinstance(item, Request | Response | ParseError) for item in result)
