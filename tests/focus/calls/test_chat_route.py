"""Chat routing as a table (pure): who is a member, who gets a MESSAGE, who is refused."""

from __future__ import annotations

import pytest

from focus.calls.chat import ChatRefusal, Relay, is_chat, members, route
from focus.core.state import ConferenceObject, ObjectKind
from focus.xcon.model import (
    AvailableMedia,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    Endpoint,
    EndpointStatus,
    UriEntry,
    Uris,
    User,
    Users,
)

ROOM = "xcon:conf1@example.org"


def user(
    name: str,
    *endpoints: tuple[str, EndpointStatus],
    aors: tuple[str, ...] = (),
    display: str | None = None,
) -> User:
    return User(
        entity=f"xcon-userid:{name}@example.org",
        display_text=display,
        associated_aors=Uris(entries=tuple(UriEntry(uri=a) for a in aors)) if aors else None,
        endpoints=tuple(Endpoint(entity=uri, status=status) for uri, status in endpoints),
    )


def conference(
    *users: User,
    media: tuple[str, ...] = ("text",),
    kind: ObjectKind = ObjectKind.CONFERENCE,
    uri: str = ROOM,
    parent: str | None = None,
) -> ConferenceObject:
    desc = ConferenceDescription(
        available_media=AvailableMedia(
            entries=tuple(ConferenceMedium(label=str(n), type=t) for n, t in enumerate(media))
        )
    )
    info = ConferenceInfo(entity=uri, conference_description=desc, users=Users(users=users))
    return ConferenceObject(uri=uri, kind=kind, version=1, info=info, parent=parent)


ALICE = user("alice", ("sip:alice@127.0.0.1:5070", EndpointStatus.CONNECTED), display="Alice")
BOB = user("bob", ("sip:bob@127.0.0.1:5072", EndpointStatus.PENDING))
CAROL = user("carol", ("sip:carol@127.0.0.1:5074", EndpointStatus.DISCONNECTED))
DAVE = user(
    "dave", ("xcon-userid:nothing-sip", EndpointStatus.CONNECTED), aors=("sip:dave@example.net",)
)


def test_members_are_users_with_sip_endpoints_or_aors() -> None:
    found = {
        m.entity.split(":")[1].split("@")[0]: m
        for m in members(conference(ALICE, BOB, CAROL, DAVE))
    }
    assert set(found) == {"alice", "bob", "carol", "dave"}
    assert found["alice"].display_name == "Alice"
    assert found["carol"].targets == ()  # disconnected: a member, but nothing is sent
    assert found["dave"].aors == ("sip:dave@example.net",) and found["dave"].targets == ()


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("sip:alice@127.0.0.1", {"bob"}),  # port ignored (same AOR)
        ("sip:bob@127.0.0.1:9999", {"alice"}),
        ("sip:carol@127.0.0.1:5074", {"alice", "bob"}),  # may write, gets nothing herself
        ("sip:dave@example.net", {"alice", "bob"}),  # by associated AOR
        ("sip:eve@127.0.0.1", 403),
    ],
)
def test_route(sender: str, expected: set[str] | int) -> None:
    decision = route(conference(ALICE, BOB, CAROL, DAVE), None, sender)
    if isinstance(expected, int):
        assert isinstance(decision, ChatRefusal) and decision.status == expected
        return
    assert isinstance(decision, Relay)
    assert {m.entity.split(":")[1].split("@")[0] for m in decision.recipients} == expected


def test_no_text_media_is_refused() -> None:
    audio = conference(ALICE, BOB, media=("audio",))
    assert not is_chat(audio, None)
    decision = route(audio, None, "sip:alice@127.0.0.1")
    assert isinstance(decision, ChatRefusal) and decision.status == 403


def test_a_sidebar_uses_its_parents_endpoints_and_media() -> None:
    parent = conference(ALICE, BOB, CAROL)
    sidebar = conference(
        User(entity=ALICE.entity),
        User(entity=BOB.entity),
        media=(),
        kind=ObjectKind.SIDEBAR_BY_VAL,
        uri="xcon:conf2@example.org",
        parent=ROOM,
    )
    assert is_chat(sidebar, parent)
    decision = route(sidebar, parent, "sip:alice@127.0.0.1")
    assert isinstance(decision, Relay)
    assert [m.targets for m in decision.recipients] == [("sip:bob@127.0.0.1:5072",)]
    refused = route(sidebar, parent, "sip:carol@127.0.0.1")
    assert isinstance(refused, ChatRefusal) and refused.status == 403
