"""SIP URI patterns: the allow-list of where a focus may call (issue 10's dialout_targets)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from focus.sip.uri_patterns import PatternError, UriPatterns


@pytest.mark.parametrize(
    ("patterns", "target", "allowed"),
    [
        (["sip:*@example.com"], "sip:alice@example.com", True),
        (["sip:*@example.com"], "sip:alice@EXAMPLE.com:5070;transport=tcp", True),  # s19.1.4
        (["sip:*@example.com"], "sips:alice@example.com", True),  # sip: covers sips
        (["sips:*@example.com"], "sip:alice@example.com", False),  # sips: only sips
        (["sip:*@example.com"], "sip:alice@evil.example.com", False),
        (["sip:*@*.example.com"], "sip:alice@gw.example.com", True),
        (["sip:+1555*@gw.example.com"], "sip:+15551234@gw.example.com", True),
        (["sip:+1555*@gw.example.com"], "sip:+19005551234@gw.example.com", False),
        (["sip:Alice@*"], "sip:alice@example.com", False),  # users compare with case
        (["sip:*@127.0.0.1:5080"], "sip:bob@127.0.0.1:5080", True),
        (["sip:*@127.0.0.1:5080"], "sip:bob@127.0.0.1:5090", False),
        (["sip:*@127.0.0.1:*"], "sip:bob@127.0.0.1", True),
        (["sip:*@[::1]"], "sip:bob@[::1]:5060", True),
        (["sip:*@example.com"], "tel:+15551234", False),  # not a SIP URI: never
        (["sip:*@example.com"], "not a uri", False),
        ([], "sip:alice@example.com", False),  # an empty list allows nobody
        (["sip:*@a.example", "sip:*@b.example"], "sip:x@b.example", True),
    ],
)
def test_patterns(patterns: list[str], target: str, allowed: bool) -> None:
    assert UriPatterns(patterns).allows(target) is allowed


def test_anyone_at_the_given_hosts() -> None:
    own = UriPatterns.anyone_at(["localhost", "127.0.0.1", "::1", "127.0.0.1"])
    assert own.patterns == ("sip:*@localhost", "sip:*@127.0.0.1", "sip:*@[::1]")
    assert own.allows("sip:bob@127.0.0.1:40000") and not own.allows("sip:bob@10.0.0.1")


@pytest.mark.parametrize(
    "bad",
    ["example.com", "http://example.com", "sip:", "sip:*@", "sip:*@host:port", "sip:*@h;x=1"],
)
def test_a_bad_pattern_is_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(PatternError, match=r"pattern|host|parameters"):
        UriPatterns([bad])


@given(st.text(max_size=80))
def test_any_target_text_gets_an_answer(target: str) -> None:
    assert UriPatterns(["sip:*@example.com"]).allows(target) in (True, False)
