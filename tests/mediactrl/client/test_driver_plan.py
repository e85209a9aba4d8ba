"""The driver's pure half (mediactrl.plan): desired vs known state -> mixer requests, answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediactrl.mixer import model as m
from mediactrl.mixer.model import Direction, Volume, VolumeControlType
from mediactrl.plan import (
    ConferenceSpec,
    DesiredState,
    JoinSpec,
    ServerState,
    Step,
    apply_answer,
    connection_id,
    participant_streams,
    plan,
    state_from_audit,
    streams_for_status,
)
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService

ALICE, BOB = "f1:m1", "f2:m2"
MAIN = ConferenceSpec("main", active_talkers_interval=3)
SIDE = ConferenceSpec("side")


def desired(*items: ConferenceSpec | JoinSpec) -> DesiredState:
    return DesiredState(
        {i.conference_id: i for i in items if isinstance(i, ConferenceSpec)},
        {i.key: i for i in items if isinstance(i, JoinSpec)},
    )


def requests(steps: list[Step]) -> list[m.MixerMessage]:
    return [s.request for s in steps]


def test_connection_id_is_local_colon_remote() -> None:
    assert connection_id("7HDY839", "HJKSkyHS") == "7HDY839:HJKSkyHS"  # RFC 6230 A.1
    with pytest.raises(ValueError, match="tags"):
        connection_id("a:b", "c")
    with pytest.raises(ValueError, match="tags"):
        connection_id("", "c")


def test_participant_rules() -> None:
    assert participant_streams() == (m.Stream("audio"),)
    assert participant_streams(muted=True) == (m.Stream("audio", direction=Direction.RECVONLY),)
    assert participant_streams(deaf=True) == (m.Stream("audio", direction=Direction.SENDONLY),)
    assert participant_streams(muted=True, deaf=True) == (
        m.Stream("audio", direction=Direction.INACTIVE),
    )
    gain = participant_streams(speak_gain_db=-5, listen_gain_db=3)
    assert gain == (
        m.Stream(
            "audio", direction=Direction.SENDONLY, volume=Volume(VolumeControlType.SETGAIN, "-5")
        ),
        m.Stream(
            "audio", direction=Direction.RECVONLY, volume=Volume(VolumeControlType.SETGAIN, "3")
        ),
    )
    assert participant_streams(muted=True, listen_gain_db=3) == gain[1:]


@pytest.mark.parametrize("status", ["sendrecv", "sendonly", "recvonly", "inactive"])
def test_rfc4575_media_status_maps_to_the_same_direction(status: str) -> None:
    """RFC 4575 s5.8.5 (participant's view, muted = recvonly) is RFC 6505's view from id1."""
    (stream,) = streams_for_status(status)
    assert stream.direction == Direction(status)
    with pytest.raises(ValueError, match="x"):
        streams_for_status("x")


def test_plan_from_nothing_creates_before_joining() -> None:
    # A sidebar as the focus realises it: a mixer of its own, its member joined to both.
    alice = JoinSpec(ALICE, "main", participant_streams())
    bob_main = JoinSpec(BOB, "main", participant_streams(muted=True))
    bob_side = JoinSpec(BOB, "side")
    steps = plan(desired(MAIN, SIDE, alice, bob_main, bob_side), ServerState())
    assert requests(steps) == [
        MAIN.create(),
        SIDE.create(),
        m.Join(ALICE, "main", (m.Stream("audio"),)),
        m.Join(BOB, "main", (m.Stream("audio", direction=Direction.RECVONLY),)),
        m.Join(BOB, "side", (m.Stream("audio"),)),
    ]
    assert MAIN.create().subscribe == m.Subscribe(m.ActiveTalkersSub(3))


def test_plan_removes_joins_before_conferences_and_skips_doomed_joins() -> None:
    known = ServerState(
        {"main": MAIN, "old": None},
        {
            frozenset((ALICE, "old")): JoinSpec(ALICE, "old"),
            frozenset((BOB, "main")): JoinSpec(BOB, "main"),
        },
    )
    assert requests(plan(desired(MAIN), known)) == [
        m.Unjoin(BOB, "main"),
        m.DestroyConference("old"),
    ]


def test_plan_modifies_differing_and_unknown_settings() -> None:
    muted = JoinSpec(ALICE, "main", participant_streams(muted=True))
    # Known from an audit: settings and streams unknown, so both are restated.
    known = ServerState({"main": None}, {muted.key: JoinSpec("main", ALICE, None)})
    steps = plan(desired(MAIN, muted), known)
    assert requests(steps) == [
        m.ModifyConference("main", subscribe=m.Subscribe(m.ActiveTalkersSub(3))),
        m.ModifyJoin(ALICE, "main", (m.Stream("audio", direction=Direction.RECVONLY),)),
    ]
    # Same join known in the other orientation with the same meaning: nothing to do.
    flipped = JoinSpec("main", ALICE, (m.Stream("audio", direction=Direction.SENDONLY),))
    assert plan(desired(MAIN, muted), ServerState({"main": MAIN}, {muted.key: flipped})) == []
    # A conference with no settings to state needs no modifyconference.
    assert plan(desired(SIDE), ServerState({"side": None})) == []


def test_apply_answer_learns_and_reports_failures() -> None:
    alice = JoinSpec(ALICE, "main")
    known = ServerState()
    known, failure = apply_answer(known, Step(MAIN.create(), MAIN), m.Response(200))
    assert failure is None
    assert known.conferences == {"main": MAIN}
    step = Step(m.Join(ALICE, "main", (m.Stream("audio"),)), alice)
    after, failure = apply_answer(known, step, m.Response(408))
    assert failure is None
    assert after.joins[alice.key].streams is None  # joined, streams unknown
    after, failure = apply_answer(known, step, m.Response(412, "no connection"))
    assert failure == "no connection"
    assert after.joins == {}
    # An unknown 4xx is treated as its x00 (s4.6): a failure, not a success.
    after, failure = apply_answer(known, step, m.Response(499))
    assert failure == "status 400"
    known, _ = apply_answer(known, step, m.Response(200))
    gone, failure = apply_answer(known, Step(m.DestroyConference("main")), m.Response(406))
    assert failure is None
    assert gone == ServerState()
    exists, _ = apply_answer(ServerState(), Step(MAIN.create(), MAIN), m.Response(405))
    assert exists.conferences == {"main": None}


def test_state_from_audit() -> None:
    answer = m.AuditResponse(
        200,
        mixers=m.Mixers((m.ConferenceAudit("c1"),), (m.JoinAudit(ALICE, "c1"),)),
    )
    assert state_from_audit(answer) == ServerState(
        {"c1": None}, {frozenset((ALICE, "c1")): JoinSpec(ALICE, "c1", None)}
    )


def test_wishes_change_as_the_focus_says() -> None:
    wish = DesiredState().with_conference(MAIN).with_conference(SIDE)
    wish = wish.with_join(JoinSpec(ALICE, "main")).with_join(JoinSpec(ALICE, "side"))
    wish = wish.with_join(JoinSpec(BOB, "main"))
    assert set(wish.without_connection(ALICE).joins) == {frozenset((BOB, "main"))}
    assert set(wish.without_conference("main").joins) == {frozenset((ALICE, "side"))}
    assert set(wish.without_join("main", BOB).joins) == {
        frozenset((ALICE, "main")),
        frozenset((ALICE, "side")),
    }
    with pytest.raises(ValueError, match="ensure_conference"):
        wish.with_join(JoinSpec(ALICE, "nosuch"))
    with pytest.raises(ValueError, match="itself"):
        wish.with_join(JoinSpec("main", "main"))
    known = ServerState({"main": MAIN}, {frozenset((ALICE, "main")): JoinSpec(ALICE, "main")})
    assert known.without_conference("main") == ServerState()
    assert known.without_join("main", ALICE) == ServerState({"main": MAIN})


# ----------------------------------------------------------------- property: plans converge
conference_ids = st.sampled_from(["c1", "c2", "c3"])
connection_ids = st.sampled_from([ALICE, BOB, "f3:m3"])
stream_sets = st.builds(
    participant_streams,
    muted=st.booleans(),
    deaf=st.booleans(),
    speak_gain_db=st.none() | st.integers(-10, 10),
    listen_gain_db=st.none() | st.integers(-10, 10),
)


@st.composite
def states(draw: st.DrawFn) -> DesiredState:
    conferences = draw(st.sets(conference_ids))
    specs = [
        ConferenceSpec(c, active_talkers_interval=draw(st.none() | st.integers(1, 5)))
        for c in sorted(conferences)
    ]
    joins: list[JoinSpec] = []
    if conferences:
        for connection in draw(st.sets(connection_ids)):
            conf = draw(st.sampled_from(sorted(conferences)))
            joins.append(JoinSpec(connection, conf, draw(stream_sets)))
    return desired(*specs, *joins)


@settings(max_examples=60, deadline=None)
@given(before=states(), after=states())
def test_plans_executed_on_the_real_executor_converge(
    before: DesiredState, after: DesiredState
) -> None:
    """Whatever the server has (one desired state), the plan to another one, run on the real
    executor, leaves exactly the second one, and then nothing remains to do."""
    service = MixerService(ControlOnlyBackend(accept_any_connection=True))
    known = ServerState()
    for target in (before, after):
        for step in plan(target, known):
            outcome = service.execute("as", step.request)
            assert outcome.answer is not None
            known, failure = apply_answer(known, step, outcome.answer)
            assert failure is None, step
        assert plan(target, known) == []
    audit = service.execute("as", m.Audit(capabilities=False)).answer
    assert isinstance(audit, m.AuditResponse)
    seen = state_from_audit(audit)
    assert set(seen.conferences) == set(after.conferences)
    assert set(seen.joins) == set(after.joins)
    for key, join in after.joins.items():
        assert service.join_streams(join.id1, join.id2) == join.streams, key
