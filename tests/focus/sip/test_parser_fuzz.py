"""Property tests of the SIP parser: it returns a message or raises SipParseError, nothing else.

* messages built from strategies survive serialize -> parse with every typed value intact;
* random mutations of valid messages (RFC 4475 and RFC 3261 examples) never crash or hang, and
  whatever is accepted round-trips;
* the StreamParser gives the same messages however the bytes are chunked.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focus.sip.errors import SipParseError
from focus.sip.headers import CSeq, NameAddr, Via
from focus.sip.message import Message, Request, Response
from focus.sip.parser import ParserConfig, StreamParser, parse_message
from focus.sip.uri import Params, SipURI
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "rfc4475"
ANY_SCHEME = ParserConfig(supported_uri_schemes=None)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda parts: "[" + ":".join(f"{p:x}" for p in parts) + "]"
)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.none() | st.integers(1, 65535)
# Any printable text, including characters that need escaping in URIs or quoting in headers.
free_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    max_size=15,
)
uri_params = st.lists(
    st.tuples(tokens, st.none() | st.text(TOKEN_CHARS + "/:[]&+$ %@", min_size=1, max_size=8)),
    max_size=3,
).map(Params)
header_params = st.lists(st.tuples(tokens, st.none() | tokens | free_text), max_size=3).map(Params)


@st.composite
def sip_uris(draw: st.DrawFn, with_headers: bool = True) -> SipURI:
    user = draw(st.none() | st.text(min_size=1, max_size=12))
    password = draw(st.none() | free_text) if user is not None else None
    headers = draw(st.lists(st.tuples(tokens, free_text), max_size=2)) if with_headers else []
    return SipURI(
        draw(hosts),
        user,
        password,
        draw(ports),
        draw(uri_params),
        tuple(headers),
        draw(st.sampled_from(["sip", "sips"])),
    )


@st.composite
def name_addrs(draw: st.DrawFn) -> NameAddr:
    return NameAddr(draw(sip_uris()), draw(st.none() | free_text), draw(header_params))


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params = draw(header_params).set("branch", "z9hG4bK" + draw(tokens))
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP"])), draw(hosts), draw(ports), params
    )


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    method = draw(
        st.sampled_from(["INVITE", "ACK", "BYE", "SUBSCRIBE", "NOTIFY", "REFER"]) | tokens
    )
    via_list = draw(st.lists(vias(), min_size=1, max_size=3))
    fields: list[tuple[str, str]] = []
    combine = draw(st.booleans())
    if combine:
        fields.append(("Via", ", ".join(map(str, via_list))))
    else:
        fields.extend(("v", str(v)) for v in via_list)
    fields.append(("From", str(draw(name_addrs()))))
    fields.append(("t", str(draw(name_addrs()))))
    fields.append(("Call-ID", draw(tokens) + "@" + draw(hostnames)))
    cseq = CSeq(draw(st.integers(0, 2**31 - 1)), method)
    fields.append(("CSeq", str(cseq)))
    contacts = draw(st.lists(name_addrs(), max_size=2))
    if contacts:
        fields.append(("m", ", ".join(map(str, contacts))))
    for _ in range(draw(st.integers(0, 3))):
        fields.append(("X-" + draw(tokens), draw(free_text).strip()))
    body = draw(st.binary(max_size=40))
    msg: Request | Response
    if draw(st.booleans()):
        msg = Request(method, draw(sip_uris(with_headers=False)), fields, body)
    else:
        msg = Response(draw(st.integers(100, 699)), draw(free_text).strip(), fields, body)
    return msg


@FUZZ
@given(messages())
def test_generated_messages_round_trip_with_typed_values(msg: Request | Response) -> None:
    wire = bytes(msg)
    parsed = parse_message(wire, ANY_SCHEME)
    assert parsed == msg
    assert parsed.via == msg.via
    assert parsed.from_ == msg.from_
    assert parsed.to == msg.to
    assert parsed.contact == msg.contact
    assert parsed.cseq == msg.cseq
    assert parsed.body == msg.body
    assert bytes(parsed) == wire


def _seeds() -> list[bytes]:
    out = []
    for path in sorted(VECTORS.glob("*.dat")):
        data = path.read_bytes()
        try:
            parse_message(data, ANY_SCHEME)
        except SipParseError:
            continue
        out.append(data)
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        if kind == "flip" and pos < len(data):
            data[pos] = draw(st.sampled_from(b' \t\r\n:;,<>"\\%@=?/[]0aZ\x00\xff'))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b" ", b"\r\n ", b";", b",", b'"', b"<"]))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 30))]
    return bytes(data)


ACCESSORS = (
    "via", "from_", "to", "call_id", "cseq", "contact", "max_forwards", "content_length",
    "content_type", "expires", "event", "subscription_state", "route", "record_route",
    "refer_to",
)  # fmt: skip


def _exercise(msg: Message) -> None:
    for name in ACCESSORS:
        with contextlib.suppress(SipParseError):
            getattr(msg, name)


@FUZZ
@given(mutated())
def test_mutations_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        msg = parse_message(data, ANY_SCHEME)
    except SipParseError as exc:
        assert 400 <= exc.status <= 599
        if exc.message is not None:
            _exercise(exc.message)
        return
    _exercise(msg)
    again = parse_message(bytes(msg), ANY_SCHEME)
    assert again == msg


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse_message(data, ANY_SCHEME)


@settings(FUZZ, max_examples=50)
@given(st.lists(messages(), min_size=1, max_size=3), st.data())
def test_stream_parser_any_chunking(msgs: list[Message], data: st.DataObject) -> None:
    wire = b"".join(b"\r\n" * data.draw(st.integers(0, 2)) + bytes(m) for m in msgs)
    parser = StreamParser(ANY_SCHEME)
    got: list[Message] = []
    pos = 0
    while pos < len(wire):
        step = data.draw(st.integers(1, 200))
        parser.receive_data(wire[pos : pos + step])
        pos += step
        while (m := parser.next_message()) is not None:
            got.append(m)
    assert got == msgs


@FUZZ
@given(mutated())
def test_stream_parser_on_mutations_byte_at_a_time(data: bytes) -> None:
    parser = StreamParser(ANY_SCHEME)
    try:
        for i in range(len(data)):
            parser.receive_data(data[i : i + 1])
            while (msg := parser.next_message()) is not None:
                _exercise(msg)
    except SipParseError:
        pass
