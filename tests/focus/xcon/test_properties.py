"""Property tests: the codec round-trips every model value; merge laws."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from focus.xcon.codec import (
    conference_info_to_bytes,
    parse_conference_info,
    parse_element,
    parse_user,
    serialize_element,
    user_to_bytes,
)
from focus.xcon.merge import merge, strip_state
from focus.xcon.model import CI_NS, ConferenceInfo, User
from tests.focus.xcon import strategies

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(strategies.conference_infos())
def test_conference_info_round_trips(ci: ConferenceInfo) -> None:
    data = conference_info_to_bytes(ci)
    assert parse_conference_info(data) == ci
    # output is canonical: writing what was read gives the same bytes
    assert conference_info_to_bytes(parse_conference_info(data)) == data
    # the element API agrees with the bytes API
    assert parse_element(ConferenceInfo, serialize_element(ci, f"{{{CI_NS}}}x")) == ci


@SETTINGS
@given(strategies.users())
def test_user_round_trips(user: User) -> None:
    assert parse_user(user_to_bytes(user)) == user


@SETTINGS
@given(strategies.conference_infos())
def test_merging_an_empty_patch_is_identity(ci: ConferenceInfo) -> None:
    assert merge(ci, ConferenceInfo(entity=ci.entity)) == ci


@SETTINGS
@given(strategies.conference_infos(depth=0), strategies.conference_infos(depth=0))
def test_merge_result_is_stateless_and_serializable(
    base: ConferenceInfo, patch: ConferenceInfo
) -> None:
    base = strip_state(base)
    out = merge(base, patch)
    assert strip_state(out) == out
    assert out.entity == base.entity
    assert parse_conference_info(conference_info_to_bytes(out)) == out
