"""Property tests: a partial notification applied to the old state gives the new one."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from focus.eventpkg.bodies import (
    Outcome,
    apply_rfc4575,
    rfc4575_full,
    rfc4575_partial,
    rfc4575_view,
    xcon_full,
)
from focus.eventpkg.xmlpatch import apply_patch, xcon_diff
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import ConferenceInfo
from tests.focus.eventpkg.helpers import RFC6502_XSD, tree, valid
from tests.focus.eventpkg.strategies import conference_pairs

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(conference_pairs(depth=0))
def test_rfc4575_partial_applied_to_old_gives_new(
    pair: tuple[ConferenceInfo, ConferenceInfo],
) -> None:
    old, new = pair
    # the subscriber's copy comes over the wire, as full state
    start = apply_rfc4575(None, None, parse_conference_info(rfc4575_full(old, 1)))
    assert start.outcome is Outcome.REPLACED
    assert start.info == rfc4575_view(old)
    body = rfc4575_partial(old, new, 2)
    if body is None:
        assert rfc4575_view(old) == rfc4575_view(new)
        return
    result = apply_rfc4575(start.info, start.version, parse_conference_info(body))
    assert result.outcome in (Outcome.UPDATED, Outcome.REPLACED)
    assert result.info == rfc4575_view(new)
    assert result.version == 2


@SETTINGS
@given(conference_pairs(depth=0))
def test_rfc6502_diff_applied_to_old_gives_new(pair: tuple[ConferenceInfo, ConferenceInfo]) -> None:
    old, new = pair
    before, after = xcon_full(old), xcon_full(new)
    diff = xcon_diff(before, after, old.entity)
    if diff is None:
        assert tree(before) == tree(after)
        return
    ok, log = valid(RFC6502_XSD, diff)
    assert ok, log
    # extensions keep their own prefixes as strings in the model: compare trees
    assert tree(apply_patch(before, diff)) == tree(after)
