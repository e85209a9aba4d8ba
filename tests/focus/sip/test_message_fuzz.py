"""Property tests of the header-value and URI parsers on arbitrary text.

Each parser returns a value or raises SipParseError; whatever it accepts, it accepts again in
serialized form and gets the same value (parse(str(parse(x))) == parse(x)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.errors import SipParseError
from focus.sip.headers import (
    format_params,
    parse_cseq,
    parse_event,
    parse_media_type,
    parse_name_addr,
    parse_params,
    parse_subscription_state,
    parse_via,
)
from focus.sip.uri import parse_uri

# Text rich in the characters that matter to SIP syntax.
TOKENS = ["sip:", "sips:", "tel:", "SIP/2.0/UDP ", ";tag=", "<sip:a@b>", '"x"', "%41", "[::1]"]
ALPHABET = st.sampled_from([*"sipSIP:;,=<>\"\\@?&%/[]. \t0123456789abcdefz+-_!~*'()$", *TOKENS])
T = TypeVar("T")
texts = st.lists(ALPHABET, max_size=25).map("".join)
FUZZ = settings(max_examples=300, deadline=None)


def _round_trip(parse: Callable[[str], T], render: Callable[[T], str], text: str) -> None:
    try:
        value = parse(text)
    except SipParseError:
        return
    assert parse(render(value)) == value


@FUZZ
@given(texts)
def test_uri(text: str) -> None:
    _round_trip(parse_uri, str, text)


@FUZZ
@given(texts)
def test_name_addr(text: str) -> None:
    _round_trip(parse_name_addr, str, text)


@FUZZ
@given(texts)
def test_via(text: str) -> None:
    _round_trip(parse_via, lambda vias: ", ".join(map(str, vias)), text)


@FUZZ
@given(texts)
def test_params(text: str) -> None:
    _round_trip(lambda t: parse_params(t, "test"), format_params, text)


@pytest.mark.parametrize(
    "parse", [parse_cseq, parse_media_type, parse_event, parse_subscription_state]
)
@FUZZ
@given(text=texts)
def test_small_headers(parse: Callable[[str], object], text: str) -> None:
    _round_trip(parse, str, text)
