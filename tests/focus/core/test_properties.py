"""Random command sequences keep the core's invariants, and the state after a restart
equals the state before (hypothesis)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from focus.core import commands as cmd
from focus.core.changes import Change
from focus.core.errors import CoreError
from focus.core.policy import Actor
from focus.core.state import Lifecycle, ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceTime,
    ConferenceTimeEntry,
    Endpoint,
    Media,
    MediaStatus,
    User,
)
from tests.focus.core.conftest import ADMIN, ALICE, BOB, CAROL, add_accounts, open_store

ACTORS = (ALICE, BOB, CAROL, ADMIN)
START = datetime(2030, 1, 7, 8, tzinfo=UTC)
DAILY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:u\r\n"
    "DTSTAMP:20300101T000000Z\r\nDTSTART:20300107T090000Z\r\nDURATION:PT2H\r\n"
    "RRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)

steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "create",
                "create-scheduled",
                "clone",
                "clone-linked",
                "delete",
                "join",
                "add",
                "leave",
                "kick",
                "subject",
                "reschedule",
                "alter",
                "mute",
                "sidebar",
                "unsidebar",
                "tick",
            ]
        ),
        st.integers(0, 7),
        st.integers(0, 7),
    ),
    max_size=18,
)


def command_for(store: ConferenceStore, name: str, a: int, b: int) -> cmd.Command:
    actor: Actor = ACTORS[a % len(ACTORS)]
    confs = [o for o in store.objects() if o.kind is ObjectKind.CONFERENCE]
    sidebars = [o for o in store.objects() if o.kind.is_sidebar]
    conf = confs[b % len(confs)].uri if confs else "xcon:none@example.com"
    other = ACTORS[b % len(ACTORS)].user_id
    match name:
        case "create":
            return cmd.CreateConference(actor=actor)
        case "create-scheduled":
            info = ConferenceInfo(
                entity="xcon:AUTO_GENERATE_1@example.com",
                conference_description=ConferenceDescription(
                    conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=DAILY),))
                ),
            )
            return cmd.CreateConference(actor=actor, info=info)
        case "clone" | "clone-linked":
            return cmd.CreateConference(actor=actor, clone_from=conf, linked=name == "clone-linked")
        case "delete":
            return cmd.DeleteConference(actor=actor, uri=conf)
        case "join":
            return cmd.AddUser(actor=actor, uri=conf)
        case "add":
            return cmd.AddUser(actor=actor, uri=conf, user=User(entity=other))
        case "leave":
            return cmd.RemoveUser(actor=actor, uri=conf)
        case "kick":
            return cmd.RemoveUser(actor=actor, uri=conf, entity=other)
        case "subject":
            patch = ConferenceInfo(
                entity=conf,
                conference_description=ConferenceDescription(
                    subject=f"s{a}", maximum_user_count=b + 1
                ),
            )
            return cmd.UpdateConference(actor=actor, uri=conf, patch=patch)
        case "reschedule":
            desc = (
                ConferenceDescription(
                    conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=DAILY),))
                )
                if a % 2
                else ConferenceDescription(cleared=frozenset({"conference_time"}))
            )
            return cmd.UpdateConference(
                actor=actor,
                uri=conf,
                patch=ConferenceInfo(entity=conf, conference_description=desc),
            )
        case "alter":
            begin = START + timedelta(days=a % 3)
            return cmd.AlterSeries(
                actor=actor,
                uri=conf,
                start=begin,
                end=begin + timedelta(days=1),
                patch=ConferenceInfo(
                    entity=conf, conference_description=ConferenceDescription(subject="moved")
                ),
            )
        case "mute":
            user = User(
                entity=other,
                endpoints=(
                    Endpoint(
                        entity="sip:x@example.com",
                        media=(Media(id="1", status=MediaStatus.RECVONLY),),
                    ),
                ),
            )
            return cmd.UpdateUser(actor=actor, uri=conf, user=user)
        case "sidebar":
            return cmd.CreateSidebar(actor=actor, parent=conf, by_ref=a % 2 == 0)
        case "unsidebar":
            if not sidebars:
                return cmd.DeleteSidebar(actor=actor, uri="xcon:none@example.com", by_ref=True)
            s = sidebars[b % len(sidebars)]
            return cmd.DeleteSidebar(
                actor=actor, uri=s.uri, by_ref=s.kind is ObjectKind.SIDEBAR_BY_REF
            )
        case _:
            return cmd.Tick(now=START + timedelta(hours=3 * a + 11 * b))


def check_invariants(store: ConferenceStore) -> None:
    objects = {o.uri: o for o in store.objects()}
    for obj in objects.values():
        info = obj.info
        assert info.entity == obj.uri and info.version == obj.version
        users = info.users.users if info.users is not None else ()
        assert len({u.entity for u in users}) == len(users)
        if obj.kind is ObjectKind.BLUEPRINT:
            continue
        assert info.conference_state is not None
        assert info.conference_state.user_count == len(users)
        assert info.conference_state.active == (obj.lifecycle is Lifecycle.ACTIVE)
        if obj.linked:
            assert obj.parent in objects, "a linked child outlived its parent"
        if obj.kind.is_sidebar:
            parent = objects[obj.parent or ""]
            assert parent.lifecycle is obj.lifecycle
            allowed = {u.entity for u in parent.info.users.users} if parent.info.users else set()
            assert {u.entity for u in users} <= allowed
            if obj.kind is ObjectKind.SIDEBAR_BY_REF:
                assert parent.info.sidebars_by_ref is not None
                assert obj.uri in [e.uri for e in parent.info.sidebars_by_ref.entries]
            else:
                assert parent.info.sidebars_by_val is not None
                assert obj.info in parent.info.sidebars_by_val.entries


def run_sequence(sequence: list[tuple[str, int, int]]) -> list[str]:
    """Apply the sequence checking invariants throughout and restart equality at the end;
    returns the names of the steps that succeeded."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        store = add_accounts(open_store(state))
        published: list[Change] = []
        store.subscribe(published.extend)
        # A subscriber rebuilding the state from the changes alone must end up with the
        # store's state: every change the core commits is observable (cascades included).
        mirror = {o.uri: o for o in store.objects()}

        def follow(changes: Sequence[Change]) -> None:
            for change in changes:
                if change.after is None:
                    mirror.pop(change.uri, None)
                else:
                    mirror[change.uri] = change.after

        store.subscribe(follow)
        versions: dict[str, int] = {}
        succeeded: list[str] = []
        try:
            for name, a, b in sequence:
                command = command_for(store, name, a, b)
                before = store.objects()
                try:
                    changes = store.apply(command)
                except CoreError:
                    assert store.objects() == before, "a refused command changed state"
                    continue
                assert published[len(published) - len(changes) :] == changes
                succeeded.append(name)
                per_object = {c.uri: c.version for c in changes}
                for change in changes:
                    assert change.version == per_object[change.uri], "one version per command"
                    if change.after is not None:
                        assert change.version == change.after.version
                for uri, version in per_object.items():
                    assert version == versions.get(uri, 0) + 1, "versions step by one"
                    versions[uri] = version
                check_invariants(store)
                assert mirror == {o.uri: o for o in store.objects()}, "an unreported change"
            snapshot, now = store.objects(), store.now
        finally:
            store.close()
        again = open_store(state)
        try:
            assert again.objects() == snapshot
            assert again.now == now
        finally:
            again.close()
    return succeeded


RICH = [
    ("tick", 0, 0),
    ("create", 0, 0),
    ("create-scheduled", 0, 0),
    ("join", 1, 0),
    ("join", 2, 0),
    ("add", 0, 0),
    ("mute", 0, 0),
    ("subject", 0, 8),
    ("sidebar", 0, 0),
    ("sidebar", 1, 0),
    ("clone", 0, 0),
    ("clone-linked", 0, 0),
    ("kick", 0, 2),
    ("leave", 1, 0),
    ("tick", 1, 0),
    ("unsidebar", 0, 0),
    ("reschedule", 0, 0),
    ("reschedule", 3, 1),
    ("tick", 7, 7),
    ("delete", 0, 3),
    ("alter", 3, 1),
]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps)
@example(RICH)
def test_random_sequences_keep_invariants_and_survive_restart(
    sequence: list[tuple[str, int, int]],
) -> None:
    run_sequence(sequence)


def test_the_rich_sequence_does_real_work() -> None:
    """Guard against a property that passes because every command is refused."""
    done = run_sequence(RICH)
    assert set(done) == {name for name, _, _ in RICH}, done
