"""The participant's transition table, over every state x input (hypothesis), and the
registry's indexes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from focus.calls.participant import (
    TRANSITIONS,
    Participant,
    ParticipantError,
    ParticipantInput,
    ParticipantState,
)
from focus.calls.registry import CallRegistry
from focus.sip.dialog import Dialog, DialogId, DialogState
from focus.sip.flow import Flow, TransportKind
from focus.sip.headers import NameAddr
from focus.sip.message import Request
from focus.sip.uacore import Call, CallState
from focus.sip.uri import parse_uri

S, In = ParticipantState, ParticipantInput
STARTS = (S.INCOMING, S.DIALING)


def call(call_id: str = "c1") -> Call:
    return Call(
        call_id=call_id,
        local_tag="ours",
        outgoing=False,
        invite=Request("INVITE", parse_uri("sip:conf1@example.com")),
        state=CallState.INCOMING,
        flow=Flow(TransportKind.UDP, "127.0.0.1", 5060),
    )


def participant(state: ParticipantState, conference: str = "xcon:conf1@example.com") -> Participant:
    return Participant(call(), conference, "sip:alice@example.com", state)


def _every_pair(test: Callable[..., None]) -> Callable[..., None]:
    """Hypothesis draws state x input, and is made to try every pair at least once."""
    for state, event in itertools.product(S, In):
        test = example(state, event)(test)
    return test


@given(st.sampled_from(list(S)), st.sampled_from(list(In)))
@_every_pair
def test_every_state_and_input_moves_as_the_table_says_or_refuses(
    state: ParticipantState, event: ParticipantInput
) -> None:
    """The table's entry, or ParticipantError naming the pair and no change at all."""
    p = participant(state)
    expected = TRANSITIONS.get((state, event))
    assert p.can(event) is (expected is not None)
    try:
        moved = p.move(event)
    except ParticipantError as exc:
        assert expected is None and exc.state is state and exc.event is event
        assert p.state is state  # a refused move changes nothing
    else:
        assert moved is expected is p.state


def test_every_state_is_reachable_and_every_one_but_gone_can_leave() -> None:
    reached = set(STARTS)
    frontier = list(STARTS)
    while frontier:
        state = frontier.pop()
        for (before, _), after in TRANSITIONS.items():
            if before is state and after not in reached:
                reached.add(after)
                frontier.append(after)
    assert reached == set(S)
    for state in S:
        if state not in (S.LEAVING, S.GONE):
            assert TRANSITIONS[(state, In.LEAVE)] is S.LEAVING
    assert not [event for (state, event) in TRANSITIONS if state is S.GONE]


@given(st.sampled_from(STARTS), st.lists(st.sampled_from(list(In)), max_size=30))
def test_any_sequence_keeps_the_invariants(
    start: ParticipantState, events: list[ParticipantInput]
) -> None:
    p = participant(start)
    left = False
    for event in events:
        before = p.state
        if not p.can(event):
            with pytest.raises(ParticipantError):
                p.move(event)
            assert p.state is before
            continue
        p.move(event)
        left = left or p.left()
        # Once leaving, never back in the conference; the hold is what the state says.
        assert not (left and (p.in_conference() or p.mixable()))
        assert p.held() is (p.state in (S.HELD, S.RELINKING_HELD))
        assert p.in_conference() <= p.mixable()
    if left:
        assert p.state in (S.LEAVING, S.GONE)


@given(st.lists(st.sampled_from([In.HOLD, In.RESUME, In.MEDIA_LOST, In.RELINKED]), max_size=20))
def test_a_hold_survives_a_relink(events: list[ParticipantInput]) -> None:
    """Whatever mix of re-offers and lost legs, the state's hold follows the last re-offer."""
    p = participant(S.JOINED)
    held = False
    for event in events:
        if p.can(event):
            p.move(event)
            if event is In.HOLD:
                held = True
            elif event is In.RESUME:
                held = False
    assert p.held() is held


def test_registry_indexes_follow_the_participant() -> None:
    calls = CallRegistry()
    p = participant(S.INCOMING, conference="")
    calls.add(p)
    assert calls.get(p.call) is p and calls.conferences() == []
    calls.set_conference(p, "xcon:conf7@example.com")
    assert calls.in_conference("xcon:conf7@example.com") == [p]
    p.entity = "xcon-userid:alice@example.com"
    assert calls.of_user("xcon:conf7@example.com", p.entity) == [p]
    with pytest.raises(ValueError, match="registered already"):
        calls.add(p)
    calls.creators["xcon:conf7@example.com"] = p
    assert calls.remove(p) and not calls.remove(p)
    assert calls.get(p.call) is None and calls.conferences() == [] and not calls.creators


def test_registry_finds_a_dialog_named_either_way_round() -> None:
    """RFC 3891 s3: Replaces names the tags as the other end sees them (to-tag is the
    recipient's local tag); some UAs reverse them. Only a joined call can be named."""
    calls = CallRegistry()
    p = participant(S.JOINING)
    me, them = NameAddr(parse_uri("sip:conf1@example.com")), NameAddr(parse_uri("sip:a@b"))
    p.call.dialog = Dialog(
        id=DialogId("c1", "ours", "theirs"),
        state=DialogState.CONFIRMED,
        is_uac=False,
        local_uri=me,
        remote_uri=them,
        local_contact=me,
        remote_target=them.uri,
        route_set=[],
        local_seq=None,
        remote_seq=1,
    )
    calls.add(p)
    assert calls.of_dialog(DialogId("c1", "ours", "theirs")) is p
    assert calls.of_dialog(DialogId("c1", "theirs", "ours")) is None
    assert calls.named_by("c1", "ours", "theirs") is None  # not joined yet
    p.move(In.CONNECTED)
    assert calls.named_by("c1", "ours", "theirs") is p
    assert calls.named_by("c1", "theirs", "ours") is p
    assert calls.named_by("c1", "ours", "other") is None
    assert calls.named_by("c2", "ours", "theirs") is None
