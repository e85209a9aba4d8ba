"""The transition tables themselves: every state x input, random walks, and random loss."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.events import (
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransactionTransportError,
)
from focus.sip.message import make_response
from focus.sip.timers import TimerName
from focus.sip.transaction import (
    _START,
    LIVE_TIMERS,
    NETWORK_INPUTS,
    TABLES,
    TIMER_INPUT,
    Input,
    InvalidTransactionUse,
    Kind,
    State,
    UnexpectedInput,
    step,
)
from tests.focus.sip.test_transaction_wire import Sent, Wire, of_type

ALL = list(itertools.product(Kind, State, Input))


@pytest.mark.parametrize(("kind", "state", "event"), ALL)
def test_every_state_and_input(kind: Kind, state: State, event: Input) -> None:
    try:
        new_state, actions = step(kind, state, event)
    except UnexpectedInput as exc:
        assert event in NETWORK_INPUTS
        assert (exc.kind, exc.state, exc.input) == (kind, state, event)
        assert exc.status == 400
    except InvalidTransactionUse as exc:
        assert event not in NETWORK_INPUTS
        assert (exc.kind, exc.state, exc.input) == (kind, state, event)
    else:
        assert isinstance(new_state, State)
        assert (state, event) in TABLES[kind]
        assert new_state is not State.INIT
        assert all(a in type(actions[0]) for a in actions) if actions else True


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL))
def test_hypothesis_any_state_and_input(case: tuple[Kind, State, Input]) -> None:
    kind, state, event = case
    try:
        new_state, _ = step(kind, state, event)
    except (UnexpectedInput, InvalidTransactionUse):
        assert (state, event) not in TABLES[kind]
    else:
        assert new_state in State


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(Kind)), st.lists(st.sampled_from(list(Input)), max_size=30))
def test_random_walks_stay_in_valid_states(kind: Kind, inputs: list[Input]) -> None:
    state = State.INIT
    for event in inputs:
        try:
            state, _ = step(kind, state, event)
        except (UnexpectedInput, InvalidTransactionUse):
            continue
        assert state in State
    if state is State.TERMINATED:
        for event in Input:
            with pytest.raises((UnexpectedInput, InvalidTransactionUse)):
                step(kind, state, event)


@pytest.mark.parametrize("kind", list(Kind))
def test_started_timers_are_live_in_the_new_state(kind: Kind) -> None:
    for (_state, _event), (new_state, actions) in TABLES[kind].items():
        for action in actions:
            if action in _START:
                assert _START[action] in LIVE_TIMERS[(kind, new_state)]


@pytest.mark.parametrize("kind", list(Kind))
def test_timer_rows_only_where_the_timer_lives(kind: Kind) -> None:
    timer_inputs = {v: k for k, v in TIMER_INPUT.items()}
    for state, event in TABLES[kind]:
        if event in timer_inputs:
            assert timer_inputs[event] in LIVE_TIMERS[(kind, state)]


EXPECTED_STATES = {
    Kind.INVITE_CLIENT: {"Calling", "Proceeding", "Completed", "Accepted", "Terminated"},
    Kind.NON_INVITE_CLIENT: {"Trying", "Proceeding", "Completed", "Terminated"},
    Kind.INVITE_SERVER: {"Proceeding", "Completed", "Confirmed", "Accepted", "Terminated"},
    Kind.NON_INVITE_SERVER: {"Trying", "Proceeding", "Completed", "Terminated"},
}


def reachable(kind: Kind, start: State) -> set[State]:
    """The states ``kind``'s table can lead to from ``start`` (``start`` included)."""
    seen, todo = {start}, [start]
    while todo:
        cur = todo.pop()
        for (src, _), (dst, _) in TABLES[kind].items():
            if src is cur and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


@pytest.mark.parametrize("kind", list(Kind))
def test_figure_states_all_reachable_and_terminated_reachable_from_each(kind: Kind) -> None:
    reach = reachable(kind, State.INIT)
    assert {s.value for s in reach} - {"Init"} == EXPECTED_STATES[kind]
    for s in reach - {State.INIT, State.TERMINATED}:
        # every state can end (a timer or a transport error leads out)
        assert State.TERMINATED in reachable(kind, s)


# ---------------------------------------------------------------- random loss, end to end


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["INVITE", "OPTIONS"]),
    st.sampled_from([486, 200]),
    st.lists(st.booleans(), max_size=40),
)
def test_random_loss_final_response_reaches_tu_once_or_times_out(
    method: str, status: int, losses: list[bool]
) -> None:
    counter = itertools.count()

    def drop(s: Sent) -> bool:
        n = next(counter)
        return losses[n] if n < len(losses) else False

    wire = Wire(drop=drop)
    invite = wire.request(method)
    key = wire.a.send_request(invite, wire.b_flow, 0.0)
    answered = False
    while wire.now <= 70:
        wire.run_until(wire.now + 0.25)
        if not answered:
            for e in of_type(wire.b_events, RequestReceived):
                if e.request.method == method:
                    wire.b.send_response(make_response(e.request, status, to_tag="t"), wire.now)
                    answered = True
                    break
    finals = [
        e
        for e in of_type(wire.a_events, ResponseReceived)
        if e.response.status >= 200 and e.transaction == key
    ]
    timeouts = of_type(wire.a_events, TransactionTimedOut)
    assert of_type(wire.a_events, TransactionTransportError) == []
    if status == 200 and method == "INVITE":
        # 2xx retransmissions are passed up in Accepted: at least one, all the same
        assert finals or timeouts
    else:
        assert len(finals) + len(timeouts) == 1, (finals, timeouts)
    if timeouts:
        assert timeouts[0].timer in (TimerName.B, TimerName.F)
    # both sides always clean up
    assert len(wire.a) == 0
    assert len(wire.b) == 0
