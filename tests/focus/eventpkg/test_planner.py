"""The notification planner on a fake clock: formats, pacing, one outstanding,
versions, failures, re-SUBSCRIBE and termination."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from focus.eventpkg.bodies import (
    CONFERENCE_INFO,
    XCON_CONFERENCE_INFO,
    XCON_CONFERENCE_INFO_DIFF,
    Outcome,
    apply_rfc4575,
    rfc4575_view,
)
from focus.eventpkg.planner import (
    Mode,
    NotAcceptable,
    NotifyPlanner,
    PlannerConfig,
    SendNotify,
    SubscriptionState,
    TerminationReason,
    UnknownSubscriber,
    choose_mode,
)
from focus.eventpkg.policy import view_for
from focus.eventpkg.xmlpatch import apply_patch
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import ConferenceInfo, ConferenceState, Role, State
from tests.focus.eventpkg.helpers import (
    ALICE,
    BOB,
    CONF,
    RFC4575_XSD,
    RFC6501_RNG,
    RFC6502_XSD,
    standard,
    tree,
    user,
    valid,
    with_users,
)

XCON_ACCEPT = [f"{XCON_CONFERENCE_INFO}, {XCON_CONFERENCE_INFO_DIFF}", CONFERENCE_INFO]


def drain(planner: NotifyPlanner) -> list[SendNotify]:
    events = []
    while (event := planner.next_event()) is not None:
        events.append(event)
    return events


def joined(conf: ConferenceInfo, n: int) -> ConferenceInfo:
    """``conf`` with user number ``n`` added."""
    extra = user(f"xcon-userid:u{n}@example.com", f"U{n}", n=10 + n)
    return with_users(conf, *conf.users.users, extra)  # type: ignore[union-attr]


def state_of(event: SendNotify) -> str | None:
    return etree.fromstring(event.body).get("state")


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("accept", "mode"),
    [
        (None, Mode.RFC4575),
        ([], Mode.RFC4575),
        ([CONFERENCE_INFO], Mode.RFC4575),
        (XCON_ACCEPT, Mode.XCON_DIFF),
        ([f"{XCON_CONFERENCE_INFO};q=0.8", CONFERENCE_INFO], Mode.XCON_FULL),
        # diffs need the full XCON type for the first NOTIFY (RFC 6502 s5.1)
        ([XCON_CONFERENCE_INFO_DIFF, CONFERENCE_INFO], Mode.RFC4575),
        ([f"{XCON_CONFERENCE_INFO};q=0, {CONFERENCE_INFO}"], Mode.RFC4575),
        (["Application/Conference-Info+XML"], Mode.RFC4575),
        (["*/*"], Mode.RFC4575),
    ],
)
def test_accept_header_picks_the_mode(accept: list[str] | None, mode: Mode) -> None:
    assert choose_mode(accept) is mode


def test_unacceptable_accept_is_a_406() -> None:
    with pytest.raises(NotAcceptable) as err:
        choose_mode(["application/sdp", "text/plain;q=0.5"])
    assert err.value.status == 406
    assert CONFERENCE_INFO in err.value.supported
    planner = NotifyPlanner()
    with pytest.raises(NotAcceptable):
        planner.add_subscriber("s", CONF, standard(), 0.0, accept=["text/html"])
    assert planner.subscribers() == []


def test_first_notify_is_full_state_at_version_1() -> None:
    planner = NotifyPlanner()
    first = planner.add_subscriber("s", CONF, standard(), 0.0, role=Role.PARTICIPANT, user_id=BOB)
    assert (first.content_type, first.version) == (CONFERENCE_INFO, 1)
    assert first.subscription_state is SubscriptionState.ACTIVE and first.reason is None
    assert state_of(first) == "full"
    ok, log = valid(RFC4575_XSD, first.body)
    assert ok, log
    # filtered for a participant
    assert b"s3cret" not in first.body
    assert planner.subscribers(CONF) == ["s"] and planner.version_of("s") == 1
    assert drain(planner) == []  # returned, not queued


def test_xcon_subscriber_gets_xcon_full_then_diffs() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    first = planner.add_subscriber(
        "x", CONF, standard(), 0.0, accept=XCON_ACCEPT, role=Role.MODERATOR
    )
    assert first.content_type == XCON_CONFERENCE_INFO
    ok, log = valid(RFC6501_RNG, first.body)
    assert ok, log
    planner.notify_completed("x", True, 0.1)
    new = joined(standard(), 1)
    planner.conference_changed(CONF, standard(), new, 1.0)
    (diff,) = drain(planner)
    assert diff.content_type == XCON_CONFERENCE_INFO_DIFF and diff.version == 2
    ok, log = valid(RFC6502_XSD, diff.body)
    assert ok, log
    assert tree(apply_patch(first.body, diff.body)) == tree(
        _xcon(view_for(Role.MODERATOR, None, new))
    )
    # a re-SUBSCRIBE gets full state again (RFC 6502 s5.1)
    again = planner.resubscribed("x", 2.0)
    assert again.content_type == XCON_CONFERENCE_INFO and again.version == 3


def _xcon(view: ConferenceInfo) -> bytes:
    from focus.eventpkg.bodies import xcon_full

    return xcon_full(view)


def test_xcon_full_only_subscriber_always_gets_full_documents() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    planner.add_subscriber("f", CONF, standard(), 0.0, accept=[XCON_CONFERENCE_INFO])
    planner.notify_completed("f", True, 0.0)
    planner.conference_changed(CONF, standard(), joined(standard(), 1), 1.0)
    (event,) = drain(planner)
    assert event.content_type == XCON_CONFERENCE_INFO


# --------------------------------------------------------------------------- pacing


def test_changes_during_the_interval_are_coalesced() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=5.0))
    first = planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.notify_completed("s", True, 0.2)
    one = joined(standard(), 1)
    two = joined(one, 2)
    planner.conference_changed(CONF, standard(), one, 1.0)
    planner.conference_changed(CONF, one, two, 2.0)
    assert drain(planner) == []
    assert planner.get_timer() == 5.0
    planner.handle_timer(4.999)
    assert drain(planner) == []
    planner.handle_timer(5.0)
    (event,) = drain(planner)
    assert event.version == 2 and state_of(event) == "partial"
    # both joins in one partial, which applied to the first full state gives the latest
    local = apply_rfc4575(None, None, parse_conference_info(first.body))
    result = apply_rfc4575(local.info, local.version, parse_conference_info(event.body))
    assert result.outcome is Outcome.UPDATED
    assert result.info == rfc4575_view(view_for(Role.PARTICIPANT, None, two))
    assert planner.get_timer() is None


def test_first_change_after_a_quiet_period_goes_out_at_once() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=5.0))
    planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.notify_completed("s", True, 0.1)
    planner.conference_changed(CONF, standard(), joined(standard(), 1), 60.0)
    (event,) = drain(planner)
    assert event.version == 2


def test_one_outstanding_notify_at_a_time() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=1.0))
    planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.conference_changed(CONF, standard(), joined(standard(), 1), 10.0)
    # the first NOTIFY has no final response yet
    assert drain(planner) == [] and planner.get_timer() is None
    planner.handle_timer(20.0)
    assert drain(planner) == []
    planner.notify_completed("s", True, 21.0)
    (event,) = drain(planner)
    assert event.version == 2 and state_of(event) == "partial"


def test_failed_notify_makes_the_next_one_full_state() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=1.0))
    planner.add_subscriber("d", CONF, standard(), 0.0, accept=XCON_ACCEPT)
    planner.notify_completed("d", True, 0.0)
    planner.conference_changed(CONF, standard(), joined(standard(), 1), 2.0)
    (diff,) = drain(planner)
    assert diff.content_type == XCON_CONFERENCE_INFO_DIFF
    planner.notify_completed("d", False, 3.0)  # e.g. 500, or a timeout
    # the subscriber's copy is unknown now: full state, even without a new change
    (full,) = drain(planner)
    assert full.content_type == XCON_CONFERENCE_INFO and full.version == 3
    planner.notify_completed("d", True, 3.5)
    planner.conference_changed(CONF, standard(), joined(joined(standard(), 1), 2), 10.0)
    (after,) = drain(planner)
    assert after.content_type == XCON_CONFERENCE_INFO_DIFF


def test_legacy_failed_notify_resends_full_state_after_the_interval() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=5.0))
    planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.notify_completed("s", False, 1.0)
    assert drain(planner) == []
    assert planner.get_timer() == 5.0
    planner.handle_timer(5.0)
    (event,) = drain(planner)
    assert state_of(event) == "full" and event.version == 2


def test_invisible_changes_send_nothing() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    planner.add_subscriber("p", CONF, standard(), 0.0, role=Role.PARTICIPANT, user_id=BOB)
    planner.add_subscriber("m", CONF, standard(), 0.0, role=Role.MODERATOR, user_id=ALICE)
    planner.notify_completed("p", True, 0.0)
    planner.notify_completed("m", True, 0.0)
    users = standard().users
    assert users is not None
    new = replace(standard(), users=replace(users, deny_users_list=None))
    planner.conference_changed(CONF, standard(), new, 1.0)
    # a participant never saw the deny list; an RFC 4575 moderator has no such element either
    assert drain(planner) == []
    planner.add_subscriber("mx", CONF, new, 2.0, accept=XCON_ACCEPT, role=Role.MODERATOR)
    planner.notify_completed("mx", True, 2.0)
    planner.conference_changed(CONF, new, standard(), 3.0)
    (event,) = drain(planner)
    assert event.sub_id == "mx" and b"mallory" in event.body


def test_versions_count_per_subscription() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    planner.add_subscriber("a", CONF, standard(), 0.0)
    planner.notify_completed("a", True, 0.0)
    conf = standard()
    for n in range(1, 4):
        new = joined(conf, n)
        planner.conference_changed(CONF, conf, new, float(n))
        conf = new
        (event,) = drain(planner)
        planner.notify_completed("a", True, float(n))
        assert event.version == n + 1
    planner.add_subscriber("b", CONF, conf, 10.0)
    assert planner.version_of("b") == 1 and planner.version_of("a") == 4


# --------------------------------------------------------------------------- termination


def test_conference_deletion_terminates_with_noresource() -> None:
    planner = NotifyPlanner()
    planner.add_subscriber("legacy", CONF, standard(), 0.0)
    planner.add_subscriber("xcon", CONF, standard(), 0.0, accept=XCON_ACCEPT)
    planner.add_subscriber("other", "xcon:other@example.com", standard(), 0.0)
    planner.conference_changed(CONF, standard(), None, 1.0)
    events = {e.sub_id: e for e in drain(planner)}
    assert set(events) == {"legacy", "xcon"}
    for event in events.values():
        assert event.subscription_state is SubscriptionState.TERMINATED
        assert event.reason is TerminationReason.NORESOURCE
    legacy = parse_conference_info(events["legacy"].body)
    assert legacy.state is State.DELETED and legacy.version == 2
    assert apply_rfc4575(None, 1, legacy).outcome is Outcome.DELETED
    assert events["xcon"].body == b"" and events["xcon"].content_type is None
    assert planner.subscribers() == ["other"]
    planner.notify_completed("legacy", True, 2.0)  # a late response is harmless
    assert drain(planner) == []


def test_terminate_one_subscription() -> None:
    planner = NotifyPlanner()
    planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.terminate("s", TerminationReason.DEACTIVATED, 1.0)
    (event,) = drain(planner)
    assert (event.reason, event.body) == (TerminationReason.DEACTIVATED, b"")
    with pytest.raises(UnknownSubscriber):
        planner.resubscribed("s", 2.0)
    planner.remove_subscriber("s")  # idempotent


def test_ended_conference_and_config_checks() -> None:
    planner = NotifyPlanner()
    planner.add_subscriber("s", CONF, standard(), 0.0)
    with pytest.raises(ValueError, match="already exists"):
        planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.conference_ended(CONF, 1.0)
    (event,) = drain(planner)
    assert event.reason is TerminationReason.NORESOURCE
    with pytest.raises(ValueError, match="min_interval"):
        PlannerConfig(min_interval=-1)


# --------------------------------------------------------------------------- a subscriber's life


@dataclass
class Subscriber:
    """The far end: keeps what the NOTIFYs say, as RFC 4575 s4.6 / RFC 6502 s5.2 do."""

    mode: Mode
    local: ConferenceInfo | None = None
    version: int | None = None
    document: bytes | None = None

    def receive(self, event: SendNotify) -> None:
        if event.content_type == CONFERENCE_INFO:
            result = apply_rfc4575(self.local, self.version, parse_conference_info(event.body))
            assert result.outcome in (Outcome.REPLACED, Outcome.UPDATED), result.outcome
            self.local, self.version = result.info, result.version
        elif event.content_type == XCON_CONFERENCE_INFO:
            self.document = event.body
        else:
            assert self.document is not None
            self.document = apply_patch(self.document, event.body)


actions = st.lists(
    st.tuples(
        st.sampled_from(["change", "ok", "fail", "timer", "resubscribe"]),
        st.floats(0.0, 4.0),
        st.integers(0, 5),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([None, XCON_ACCEPT, [XCON_CONFERENCE_INFO]]), actions)
def test_subscriber_converges_and_pacing_holds(
    accept: list[str] | None, script: list[tuple[str, float, int]]
) -> None:
    interval = 2.0
    planner = NotifyPlanner(PlannerConfig(min_interval=interval))
    now = 0.0
    conf = standard()
    first = planner.add_subscriber("s", CONF, conf, now, accept=accept, role=Role.OBSERVER)
    far = Subscriber(choose_mode(accept))
    far.receive(first)
    outstanding = 1  # NOTIFYs without a final response
    sent_at = [now]
    versions = [first.version]
    for action, delay, n in script:
        now += delay
        if action == "change":
            new = (
                joined(conf, n)
                if n % 2
                else replace(
                    conf, conference_state=ConferenceState(user_count=n, active=bool(n % 3))
                )
            )
            planner.conference_changed(CONF, conf, new, now)
            conf = new
        elif action in ("ok", "fail") and outstanding:
            planner.notify_completed("s", action == "ok", now)
            outstanding -= 1
        elif action == "timer":
            planner.handle_timer(now)
        elif action == "resubscribe":
            event = planner.resubscribed("s", now)
            far.receive(event)
            sent_at.append(now)
            versions.append(event.version)
            outstanding += 1
            continue
        for event in drain(planner):
            # never two outstanding, never faster than the interval
            assert outstanding == 0
            assert now - sent_at[-1] >= interval
            far.receive(event)
            outstanding += 1
            sent_at.append(now)
            versions.append(event.version)
    assert versions == list(range(1, len(versions) + 1))
    # let everything settle: answer the last NOTIFY, run the timer
    for _ in range(outstanding):
        planner.notify_completed("s", True, now)
    for _ in range(100):
        events = drain(planner)
        for event in events:
            far.receive(event)
            planner.notify_completed("s", True, now)
        if events:
            continue
        deadline = planner.get_timer()
        if deadline is None:
            break
        now = max(now, deadline)
        planner.handle_timer(now)
    view = view_for(Role.OBSERVER, None, conf)
    if far.mode is Mode.RFC4575:
        assert far.local == rfc4575_view(view)
    else:
        assert far.document is not None and tree(far.document) == tree(_xcon(view))


def test_a_diff_larger_than_the_document_is_sent_as_the_document() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=0))
    small = ConferenceInfo(entity=CONF, conference_state=ConferenceState(user_count=1))
    planner.add_subscriber("d", CONF, small, 0.0, accept=XCON_ACCEPT)
    planner.notify_completed("d", True, 0.0)
    planner.conference_changed(CONF, small, replace(small, conference_state=None), 1.0)
    (event,) = drain(planner)
    assert event.content_type == XCON_CONFERENCE_INFO


# --------------------------------------------------------------------------- many subscribers


def test_paced_deadlines_come_in_order_and_forget_removed_subscribers() -> None:
    """Subscribers last notified at different times are held back until each one's own
    deadline; a removed or already served subscriber leaves no timer behind."""
    planner = NotifyPlanner(PlannerConfig(min_interval=5.0))
    for i in range(5):
        planner.add_subscriber(f"s{i}", CONF, standard(), float(i))
        planner.notify_completed(f"s{i}", True, float(i))
    one = joined(standard(), 1)
    planner.conference_changed(CONF, standard(), one, 4.5)
    assert drain(planner) == []  # every one was notified less than 5 s ago
    planner.remove_subscriber("s0")
    assert planner.get_timer() == 6.0  # s1's (s0's 5.0 is gone with it)
    planner.handle_timer(7.0)
    assert [e.sub_id for e in drain(planner)] == ["s1", "s2"]
    assert planner.get_timer() == 8.0
    planner.notify_completed("s1", True, 7.1)
    planner.notify_completed("s2", True, 7.1)
    planner.handle_timer(9.0)
    assert [e.sub_id for e in drain(planner)] == ["s3", "s4"]
    planner.notify_completed("s3", True, 9.1)
    planner.notify_completed("s4", True, 9.1)
    assert planner.get_timer() is None
    planner.handle_timer(100.0)
    assert drain(planner) == []


def test_a_deadline_moved_by_a_new_notify_is_not_served_twice() -> None:
    planner = NotifyPlanner(PlannerConfig(min_interval=5.0))
    planner.add_subscriber("s", CONF, standard(), 0.0)
    planner.notify_completed("s", True, 0.0)
    one = joined(standard(), 1)
    planner.conference_changed(CONF, standard(), one, 1.0)
    assert planner.get_timer() == 5.0
    planner.resubscribed("s", 2.0)  # full state now: the held-back change is in it
    planner.notify_completed("s", True, 2.0)
    assert planner.get_timer() is None
    planner.handle_timer(5.0)
    assert drain(planner) == []


def test_subscribers_of_one_role_get_the_same_bodies_and_users_their_own() -> None:
    """Many subscribers of one role share what they are sent (one view, one body per
    change); a user of the conference still gets her own view."""
    planner = NotifyPlanner(PlannerConfig(min_interval=0.0))
    conf = with_users(standard(), user(ALICE, "Alice"), user(BOB, "Bob"))
    firsts = [planner.add_subscriber(f"p{i}", CONF, conf, 0.0) for i in range(20)]
    mine = planner.add_subscriber("alice", CONF, conf, 0.0, user_id=ALICE)
    xcon = [planner.add_subscriber(f"x{i}", CONF, conf, 0.0, accept=XCON_ACCEPT) for i in range(5)]
    assert len({f.body for f in firsts}) == 1 and len({f.body for f in xcon}) == 1
    for sub_id in planner.subscribers(CONF):
        planner.notify_completed(sub_id, True, 0.1)
    new = joined(conf, 1)
    planner.conference_changed(CONF, conf, new, 1.0)
    events = {e.sub_id: e for e in drain(planner)}
    assert len(events) == 26
    partials = {events[f"p{i}"].body for i in range(20)}
    diffs = {events[f"x{i}"].body for i in range(5)}
    assert len(partials) == 1 and len(diffs) == 1
    assert all(events[f"x{i}"].content_type == XCON_CONFERENCE_INFO_DIFF for i in range(5))
    # each applies to what its subscriber held and gives its own role's view
    local = apply_rfc4575(None, None, parse_conference_info(firsts[0].body))
    result = apply_rfc4575(local.info, local.version, parse_conference_info(events["p0"].body))
    assert result.info == rfc4575_view(view_for(Role.PARTICIPANT, None, new, pseudonym_key=b""))
    own = apply_rfc4575(None, None, parse_conference_info(mine.body))
    own = apply_rfc4575(own.info, own.version, parse_conference_info(events["alice"].body))
    assert own.info == rfc4575_view(view_for(Role.PARTICIPANT, ALICE, new))
