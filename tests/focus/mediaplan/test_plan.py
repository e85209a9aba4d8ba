"""The pure planner: each seed flow as a table of expected joins, and hypothesis properties."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.core.state import ConferenceObject, Lifecycle, ObjectKind
from focus.mediaplan import MediaPlan, PlannedJoin, link_of, plan_media
from focus.mediaplan.reconcile import join_streams
from focus.xcon.model import ConferenceInfo, MediaStatus
from mediactrl.mixer.model import Direction
from tests.focus.mediaplan.docs import conference, user

MAIN, SIDE = "xcon:main@example.com", "xcon:side@example.com"
CONN = {
    f"xcon-userid:{n}@example.com": f"as{n}:ms{n}"
    for n in ("alice", "bob", "carol", "david", "ethel", "fred", "a1", "a2", "a3")
}

Row = tuple[str, str, int | None]


def uid(name: str) -> str:
    return f"xcon-userid:{name}@example.com"


def row(planned: PlannedJoin) -> Row:
    """(mixer, direction word, listening gain) of one join, for readable tables."""
    return planned.conference_id, planned.status.value, planned.listen_gain_db or None


def table(plan: MediaPlan) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for planned in plan.joins:
        name = planned.connection.partition(":")[0][2:]
        out.setdefault(name, []).append(row(planned))
    return out


FLOWS: dict[str, tuple[ConferenceInfo, list[ConferenceInfo], dict[str, list[Row]]]] = {
    "mute only (RFC 4575 s5.8.5 recvonly)": (
        conference(
            MAIN, [user(uid("alice")), user(uid("bob"), "recvonly"), user(uid("carol"), held=True)]
        ),
        [],
        {
            "alice": [("main", "sendrecv", None)],
            "bob": [("main", "recvonly", None)],
            "carol": [("main", "inactive", None)],
        },
    ),
    "RFC 6501 mixer controls and muted-via-focus (s4.6.5.6, RFC 4575 s5.7.3)": (
        conference(
            MAIN,
            [
                user(uid("alice"), listen_gain=-6),
                user(uid("bob"), mute_control=True),
                user(uid("carol"), muted_via_focus=True),
            ],
        ),
        [conference(SIDE, [user(uid("alice"))], link_gain=-10)],
        {
            "alice": [("main", "recvonly", -16), ("side", "sendrecv", None)],
            "bob": [("main", "recvonly", None)],
            "carol": [("main", "recvonly", None)],
        },
    ),
    "internal sidebar, main at reduced volume (s6.5)": (
        conference(MAIN, [user(uid("alice")), user(uid("bob")), user(uid("carol"))]),
        [conference(SIDE, [user(uid("alice")), user(uid("bob"))], link_gain=-12)],
        {
            "alice": [("main", "recvonly", -12), ("side", "sendrecv", None)],
            "bob": [("main", "recvonly", -12), ("side", "sendrecv", None)],
            "carol": [("main", "sendrecv", None)],
        },
    ),
    "internal sidebar, only sidebar audio (s6.5)": (
        conference(MAIN, [user(uid("alice")), user(uid("bob")), user(uid("carol"))]),
        [conference(SIDE, [user(uid("alice")), user(uid("bob"))], link="inactive")],
        {
            "alice": [("main", "inactive", None), ("side", "sendrecv", None)],
            "bob": [("main", "inactive", None), ("side", "sendrecv", None)],
            "carol": [("main", "sendrecv", None)],
        },
    ),
    "external sidebar with a party dialled in (s6.6)": (
        conference(
            MAIN, [user(uid(n)) for n in ("alice", "bob", "carol", "david", "ethel", "fred")]
        ),
        [
            conference(
                SIDE, [user(uid(n)) for n in ("alice", "bob", "ethel", "fred")], link="inactive"
            )
        ],
        {
            **{
                n: [("main", "inactive", None), ("side", "sendrecv", None)]
                for n in ("alice", "bob", "ethel", "fred")
            },
            "carol": [("main", "sendrecv", None)],
            "david": [("main", "sendrecv", None)],
        },
    ),
    "whisper to one participant (s6.8)": (
        conference(MAIN, [user(uid("alice")), user(uid("bob")), user(uid("carol"))]),
        [
            conference(
                SIDE,
                [user(uid("alice"), "recvonly"), user(uid("carol"), parent_audio="recvonly")],
                link="sendrecv",
            )
        ],
        {
            "alice": [("main", "sendrecv", None), ("side", "recvonly", None)],
            "bob": [("main", "sendrecv", None)],
            "carol": [("main", "recvonly", None), ("side", "sendrecv", None)],
        },
    ),
    "observe and coach (s6.9)": (
        conference(MAIN, [user(uid("alice")), user(uid("bob")), user(uid("carol"))]),
        [conference(SIDE, [user(uid("alice")), user(uid("bob"), parent_audio="sendrecv")])],
        # bob is heard by alice in the main conference already: not twice in the sidebar
        {
            "alice": [("main", "recvonly", None), ("side", "sendrecv", None)],
            "bob": [("main", "sendrecv", None), ("side", "recvonly", None)],
            "carol": [("main", "sendrecv", None)],
        },
    ),
    "floor control, a2 granted, a1 queued (s6.7)": (
        conference(
            MAIN,
            [
                user(uid("alice")),
                user(uid("bob")),
                user(uid("carol")),
                user(uid("a1"), "recvonly"),
                user(uid("a2"), "recvonly"),
                user(uid("a3"), "recvonly"),
            ],
        ),
        [
            conference(
                SIDE,
                [user(uid("carol")), user(uid("a1"), "recvonly"), user(uid("a2"), "sendrecv")],
                link="sendrecv",
            )
        ],
        {
            "alice": [("main", "sendrecv", None)],
            "bob": [("main", "sendrecv", None)],
            "carol": [("main", "sendrecv", None), ("side", "recvonly", None)],
            "a1": [("main", "recvonly", None), ("side", "recvonly", None)],
            "a2": [("main", "sendrecv", None), ("side", "recvonly", None)],
            "a3": [("main", "recvonly", None)],
        },
    ),
    "text-only private-message sidebar leaves audio alone (s6.8)": (
        conference(MAIN, [user(uid("alice")), user(uid("bob"))]),
        [conference(SIDE, [user(uid("alice")), user(uid("bob"))], audio=False)],
        {"alice": [("main", "sendrecv", None)], "bob": [("main", "sendrecv", None)]},
    ),
    "ended sidebar gets no mixer": (
        conference(MAIN, [user(uid("alice")), user(uid("bob"))]),
        [conference(SIDE, [user(uid("alice"))], link="inactive", active=False)],
        {"alice": [("main", "sendrecv", None)], "bob": [("main", "sendrecv", None)]},
    ),
}


@pytest.mark.parametrize("flow", list(FLOWS))
def test_flow_table(flow: str) -> None:
    parent, sidebars, expected = FLOWS[flow]
    plan = plan_media(parent, sidebars, CONN)
    assert table(plan) == expected
    assert set(plan.conferences) == {c for joins in expected.values() for c, _, _ in joins}


def test_users_without_a_connection_are_not_planned() -> None:
    parent = conference(MAIN, [user(uid("alice")), user(uid("bob"))])
    sidebar = conference(SIDE, [user(uid("bob"))], link="inactive")
    plan = plan_media(parent, [sidebar], {uid("alice"): CONN[uid("alice")]})
    assert table(plan) == {"alice": [("main", "sendrecv", None)]}
    assert plan.conferences == ("main",)  # nobody of the sidebar is connected: no mixer


def test_conference_objects_follow_their_lifecycle() -> None:
    info = conference(MAIN, [user(uid("alice"))])
    active = ConferenceObject(uri=MAIN, kind=ObjectKind.CONFERENCE, version=1, info=info)
    assert plan_media(active, [], CONN).conferences == ("main",)
    reserved = dataclasses.replace(active, lifecycle=Lifecycle.RESERVED)
    assert plan_media(reserved, [], CONN) == MediaPlan()


def test_link_words_and_gain_are_read_leniently() -> None:
    sidebar = conference(
        SIDE, [user(uid("bob"), parent_audio="sendrecv")], link="bogus", link_gain=-500
    )
    assert link_of(sidebar).status is MediaStatus.RECVONLY  # unknown word: the default
    assert link_of(sidebar).gain_db == -127  # clamped to RFC 6501 gain-type
    assert link_of(sidebar, sidebar.users.users[0]).status is MediaStatus.SENDRECV  # type: ignore[union-attr]


def audible(plan: MediaPlan) -> set[tuple[str, str]]:
    """(listener, speaker) pairs, by name: who hears whom through some mixer of the plan."""
    return {
        (name(a.connection), name(b.connection))
        for a in plan.joins
        for b in plan.joins
        if a.conference_id == b.conference_id and a.connection != b.connection
        if a.hears and b.heard
    }


def name(connection: str) -> str:
    return connection.partition(":")[0][2:]


# ------------------------------------------- users in a sidebar and in no roster of the parent
def test_rfc6504_s7_2_external_sidebar_fred_hears_only_the_sidebar() -> None:
    """Fred, the customer, is only in the external sidebar: he joins its mixer alone, hears
    alice, bob and ethel there and nothing of the main conference, where nobody hears him."""
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "bob", "carol", "david", "ethel")])
    side = conference(
        SIDE, [user(uid(n)) for n in ("alice", "bob", "ethel", "fred")], link="inactive"
    )
    plan = plan_media(main, [side], CONN)
    assert table(plan) == {
        **{n: [("main", "inactive", None), ("side", "sendrecv", None)] for n in ("alice", "bob")},
        "carol": [("main", "sendrecv", None)],
        "david": [("main", "sendrecv", None)],
        "ethel": [("main", "inactive", None), ("side", "sendrecv", None)],
        "fred": [("side", "sendrecv", None)],
    }
    heard = audible(plan)
    assert {speaker for listener, speaker in heard if listener == "fred"} == {
        "alice",
        "bob",
        "ethel",
    }
    assert {listener for listener, speaker in heard if speaker == "fred"} == {
        "alice",
        "bob",
        "ethel",
    }


def test_rfc6504_s7_2_sidebar_updated_to_provide_main_audio() -> None:
    """ "it would allow for updates such that the media could be updated, for example, to
    provide audio from the main conference": the link becomes recvonly, 12 dB down; Fred
    now hears the main conference, which still never hears him."""
    main = conference(MAIN, [user(uid(n)) for n in ("alice", "carol")])
    side = conference(SIDE, [user(uid("alice")), user(uid("fred"))], link_gain=-12)
    plan = plan_media(main, [side], CONN)
    assert table(plan) == {
        "alice": [("main", "recvonly", -12), ("side", "sendrecv", None)],
        "carol": [("main", "sendrecv", None)],
        "fred": [("main", "recvonly", -12), ("side", "sendrecv", None)],
    }
    heard = audible(plan)
    assert ("fred", "carol") in heard
    assert ("carol", "fred") not in heard and ("carol", "alice") not in heard


def test_rfc6504_s7_2_fred_on_hold_in_the_sidebar() -> None:
    main = conference(MAIN, [user(uid("alice"))])
    side = conference(SIDE, [user(uid("alice")), user(uid("fred"), held=True)], link="recvonly")
    assert table(plan_media(main, [side], CONN))["fred"] == [("side", "inactive", None)]


@pytest.mark.parametrize(
    ("supervisor", "agent"),
    [
        ("sendonly", "recvonly"),  # RFC 6504 s7.4 as written: the "Alice-to-Bob audio"
        ("sendrecv", "sendrecv"),  # this project's coaching vector
    ],
)
def test_rfc6504_s7_4_supervisor_outside_the_call_observes_and_coaches(
    supervisor: str, agent: str
) -> None:
    """Alice, the supervisor, is in no roster of the call: the coaching sidebar links
    recvonly, so she hears agent bob and customer carol through the main conference; only
    bob hears her (in the sidebar); carol "is not aware of the presence of the coach"."""
    main = conference(MAIN, [user(uid("bob")), user(uid("carol"))])
    side = conference(
        SIDE,
        [user(uid("alice"), supervisor), user(uid("bob"), agent, parent_audio="sendrecv")],
        link="recvonly",
    )
    plan = plan_media(main, [side], CONN)
    assert table(plan) == {
        "alice": [("main", "recvonly", None), ("side", supervisor, None)],
        # bob's upstream into the sidebar would reach alice twice: she hears him in main
        "bob": [("main", "sendrecv", None), ("side", "recvonly", None)],
        "carol": [("main", "sendrecv", None)],
    }
    assert audible(plan) == {
        ("alice", "bob"),
        ("alice", "carol"),
        ("bob", "alice"),
        ("bob", "carol"),
        ("carol", "bob"),
    }


def test_rfc6504_s7_4_a_supervisor_override_cannot_hide_an_external_link() -> None:
    """An inactive link keeps a sidebar-only user out of the parent's mixer altogether, even
    if her own override says sendrecv for another sidebar's sake."""
    main = conference(MAIN, [user(uid("bob")), user(uid("carol"))])
    external = conference(SIDE, [user(uid("alice")), user(uid("bob"))], link="inactive")
    coaching = conference(
        "xcon:coach@example.com", [user(uid("alice"), parent_audio="sendrecv")], link="recvonly"
    )
    plan = plan_media(main, [external, coaching], CONN)
    assert plan.join(CONN[uid("alice")], "main") is None


def test_a_sidebar_only_speaker_in_a_floor_sidebar_is_heard_in_main() -> None:
    """A sidebar linked sendrecv carries all its speakers to the main conference, the one
    who is in no roster of the parent included (a remote expert given the floor)."""
    main = conference(MAIN, [user(uid("alice")), user(uid("carol"), "recvonly")])
    floor = conference(SIDE, [user(uid("carol")), user(uid("fred"), "sendrecv")], link="sendrecv")
    plan = plan_media(main, [floor], CONN)
    # carol hears fred in main already: his upstream into the sidebar would be an echo
    assert table(plan)["fred"] == [("main", "sendrecv", None), ("side", "recvonly", None)]
    assert {("alice", "fred"), ("carol", "fred"), ("fred", "alice")} <= audible(plan)
    muted = conference(SIDE, [user(uid("carol")), user(uid("fred"), "recvonly")], link="sendrecv")
    assert table(plan_media(main, [muted], CONN))["fred"] == [
        ("main", "recvonly", None),
        ("side", "recvonly", None),
    ]


# --------------------------------------------------------------------- properties
NAMES = ["alice", "bob", "carol", "david", "ethel", "fred"]
OUTSIDERS = ["a1", "a2", "a3"]  # never in the parent's roster: only in its sidebars
STATUSES = [None, "sendrecv", "recvonly", "sendonly", "inactive"]
LINKS = [None, "sendrecv", "recvonly", "sendonly", "inactive"]

Tree = tuple[ConferenceInfo, list[ConferenceInfo], dict[str, str]]


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    members = draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
    parent = conference(
        MAIN,
        [user(uid(n), draw(st.sampled_from(STATUSES)), held=draw(st.booleans())) for n in members],
    )
    sidebars = []
    for k in range(draw(st.integers(0, 3))):
        inside = draw(st.lists(st.sampled_from(members + OUTSIDERS), unique=True))
        sidebars.append(
            conference(
                f"xcon:side{k}@example.com",
                [
                    user(
                        uid(n),
                        draw(st.sampled_from(STATUSES)),
                        held=n in OUTSIDERS and draw(st.booleans()),
                        parent_audio=draw(st.sampled_from(LINKS)),
                    )
                    for n in inside
                ],
                link=draw(st.sampled_from(LINKS)),
                link_gain=draw(st.sampled_from([None, 0, -6, -20])),
                audio=draw(st.booleans()),
            )
        )
    connected = draw(st.lists(st.sampled_from(members + OUTSIDERS), unique=True))
    return parent, sidebars, {uid(n): CONN[uid(n)] for n in connected}


def audio_sidebars(sidebars: list[ConferenceInfo], entity: str) -> list[ConferenceInfo]:
    """The sidebars with audio that have ``entity`` in their roster."""
    return [
        s
        for s in sidebars
        if any(e.type == "audio" for e in s.conference_description.available_media.entries)  # type: ignore[union-attr]
        and s.user(entity) is not None
    ]


@settings(max_examples=150, deadline=None)
@given(trees(), st.randoms())
def test_plans_are_deterministic_and_complete(tree: Tree, rnd: random.Random) -> None:
    parent, sidebars, connections = tree
    plan = plan_media(parent, sidebars, connections)
    shuffled = list(sidebars)
    rnd.shuffle(shuffled)
    assert plan_media(parent, shuffled, dict(reversed(list(connections.items())))) == plan
    assert plan == plan_media(parent, sidebars, connections)
    keys = [(j.connection, j.conference_id) for j in plan.joins]
    assert len(keys) == len(set(keys))
    assert {j.conference_id for j in plan.joins} <= set(plan.conferences)
    assert {j.connection for j in plan.joins} == {
        c
        for e, c in connections.items()
        if parent.user(e) is not None or audio_sidebars(sidebars, e)
    }
    for each in plan.joins:  # an omitted volume would keep an old gain (RFC 6505 s4.2.2.2)
        assert all(
            s.volume is not None
            for s in join_streams(each)
            if s.direction is not Direction.INACTIVE
        )
    for entity, connection in connections.items():
        if parent.user(entity) is not None:
            assert plan.join(connection, "main") is not None  # every member planned in main
    for sidebar in sidebars:
        mixer = sidebar.entity.partition(":")[2].partition("@")[0]
        for entity, connection in connections.items():
            planned = plan.join(connection, mixer)
            if sidebar not in audio_sidebars(sidebars, entity):
                assert planned is None  # never joined to a sidebar it is not in
            else:
                assert planned is not None


@settings(max_examples=150, deadline=None)
@given(trees())
def test_nobody_hears_what_they_must_not(tree: Tree) -> None:
    parent, sidebars, connections = tree
    plan = plan_media(parent, sidebars, connections)
    for p_user in parent.users.users:  # type: ignore[union-attr]
        connection = connections.get(p_user.entity or "")
        if connection is None:
            continue
        main = plan.join(connection, "main")
        assert main is not None
        held = p_user.endpoints[0].status == "on-hold"
        mine = audio_sidebars(sidebars, p_user.entity or "")
        links = [link_of(s, s.user(p_user.entity or "")) for s in mine]
        if held or any(link.status is MediaStatus.INACTIVE for link in links):
            assert not main.hears and not main.heard  # on hold: external sidebar
        if any(not link.receives for link in links):
            assert not main.hears
        status = p_user.endpoints[0].media[0].status
        if status in ("recvonly", "inactive"):
            assert not main.heard or any(link.sends for link in links)
        if status in ("sendonly", "inactive"):
            assert not main.hears
        if not mine and not held:
            word = status or "sendrecv"
            assert (main.heard, main.hears) == (
                word in ("sendrecv", "sendonly"),
                word in ("sendrecv", "recvonly"),
            )


@settings(max_examples=150, deadline=None)
@given(trees())
def test_a_sidebar_only_user_gets_of_the_parent_what_the_links_say(tree: Tree) -> None:
    """RFC 6504 s7.2/s7.4: nothing of the parent without a recv link, never heard there
    without a send link, never joined there through an external sidebar."""
    parent, sidebars, connections = tree
    plan = plan_media(parent, sidebars, connections)
    heard = audible(plan)
    for entity, connection in connections.items():
        if parent.user(entity) is not None:
            continue
        mine = [(s, s.user(entity)) for s in audio_sidebars(sidebars, entity)]
        links = [link_of(s, u) for s, u in mine]
        main = plan.join(connection, "main")
        if main is None:
            continue
        assert mine and not any(link.status is MediaStatus.INACTIVE for link in links)
        assert main.hears or main.heard  # no inactive join where she is no participant
        assert main.hears == all(link.receives for link in links)
        if main.heard:
            assert any(link.sends for link in links)
        parent_only = {
            name(connections[e])
            for e in connections
            if parent.user(e) is not None and not audio_sidebars(sidebars, e)
        }
        if not any(link.sends for link in links):
            assert not any((p, name(connection)) in heard for p in parent_only)
