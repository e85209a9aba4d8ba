"""Hypothesis on the CFW stream parser the way tests/focus/sip fuzzes the SIP one: streams of
valid messages with garbage spliced in, cut at any split points, truncated anywhere.

Properties: only messages, :class:`ParseError` or NEED_DATA come out (never an exception);
the verdict does not depend on the split points; a truncated stream yields a prefix of its
messages and then waits; what stays buffered is bounded by the limits; a fatal error empties
the buffer and sticks.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediactrl.cfw.message import Message, Request, Response, serialize
from mediactrl.cfw.parser import CfwParser, NeedData, ParseError, ParserLimits
from tests.mediactrl.cfw.test_cfw_parser import MESSAGES, TOKENS

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = ParserLimits(max_head=512, max_body=1024, max_headers=8)

# The parser tests' messages, and the SYNC that opens every channel.
_messages = MESSAGES | st.builds(
    lambda t, d: Request(t, (("Dialog-ID", d), ("Packages", "msc-mixer/1.0")), method="SYNC"),
    TOKENS,
    st.from_regex(r"[A-Za-z0-9]{4,16}", fullmatch=True),
)
_garbage = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.sampled_from(
        [
            b"CFW abcd1234 FROB\r\n\r\n",
            b"CFW ab SYNC\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"CFW abcd1234 CONTROL\r\nContent-Length: -1\r\n\r\n",
            b"CFW abcd1234 CONTROL\r\nContent-Length: 99999999\r\n\r\n",
            b"CFW abcd1234 SYNC\r\n" + b"X-Flood: 1\r\n" * 20,
            b"CFW abcd1234 K-ALIVE\n\n",
            b"\r\n",
        ]
    ),
)

Item = Message | ParseError


def _feed(data: bytes, cuts: list[int]) -> tuple[list[Item], CfwParser]:
    """Feeds ``data`` split at ``cuts``; drains after every chunk, checking the bound."""
    parser = CfwParser(LIMITS)
    out: list[Item] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, stop in itertools.pairwise(points):
        parser.receive_data(data[start:stop])
        while not isinstance(item := parser.next_event(), NeedData):
            assert isinstance(item, Request | Response | ParseError)
            out.append(item)
            if isinstance(item, ParseError) and item.fatal:
                assert parser.broken and parser.buffered == 0
                assert parser.next_event() == item  # sticks
                return out, parser
        # Whatever waits is one unfinished message: a head under the limit, or a head and
        # part of a body that the limits allowed.
        assert parser.buffered <= LIMITS.max_head + LIMITS.max_body
    return out, parser


@FUZZ
@given(st.lists(_messages, min_size=1, max_size=5), st.lists(st.integers(0, 4000), max_size=12))
def test_valid_streams_parse_back_at_any_split_points(
    messages: list[Message], cuts: list[int]
) -> None:
    data = b"".join(serialize(m) for m in messages)
    got, parser = _feed(data, cuts)
    assert got == messages
    assert parser.buffered == 0


@FUZZ
@given(st.lists(_messages, min_size=1, max_size=4), st.integers(0, 4000), st.data())
def test_a_truncated_stream_yields_a_prefix_and_waits(
    messages: list[Message], cut: int, data: st.DataObject
) -> None:
    wire = b"".join(serialize(m) for m in messages)
    truncated = wire[: cut % (len(wire) + 1)]
    cuts = data.draw(st.lists(st.integers(0, 4000), max_size=8))
    got, parser = _feed(truncated, cuts)
    assert got == messages[: len(got)]
    assert not parser.broken


@FUZZ
@given(
    st.lists(st.one_of(_messages.map(serialize), _garbage), min_size=1, max_size=6),
    st.lists(st.integers(0, 4000), max_size=12),
)
def test_garbage_spliced_in_gives_the_same_verdict_however_split(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    whole, _ = _feed(data, [])
    split, _ = _feed(data, cuts)
    assert split == whole
    one_by_one, _ = _feed(data, list(range(len(data))))
    assert one_by_one == whole


@FUZZ
@given(st.binary(min_size=1, max_size=600))
def test_random_bytes_end_the_stream_or_wait_bounded(data: bytes) -> None:
    got, parser = _feed(data, list(range(0, len(data), 13)))
    assert all(isinstance(item, Request | Response | ParseError) for item in got)
    if not parser.broken:
        assert parser.buffered <= LIMITS.max_head + LIMITS.max_body
