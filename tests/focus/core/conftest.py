"""Fixtures: a real store on a SQLite file in tmp_path, and a few actors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from focus.core.commands import AddUser, Command, CreateConference
from focus.core.core import CoreConfig
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.store import ConferenceStore
from focus.xcon.model import Role

FAST_SCRYPT = 2**4

ADMIN = Actor("xcon-userid:root@example.com", Role.ADMINISTRATOR)
ALICE = Actor("xcon-userid:alice@example.com", Role.USER)
BOB = Actor("xcon-userid:bob@example.com", Role.PARTICIPANT)
CAROL = Actor("xcon-userid:carol@example.com", Role.PARTICIPANT)
EVE = Actor("xcon-userid:eve@example.com", Role.OBSERVER)
NOBODY = Actor(None, Role.NONE)


def open_store(state: Path, **kwargs: object) -> ConferenceStore:
    config = kwargs.pop("config", None) or CoreConfig(domain="example.com")
    assert isinstance(config, CoreConfig)
    return ConferenceStore.open(state, config, scrypt_n=FAST_SCRYPT, **kwargs)  # type: ignore[arg-type]


def vcalendar(*event_lines: str) -> str:
    """An RFC 5545 calendar of one event (UID u) with these lines, as conference-time's
    <base> carries it."""
    body = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//t//EN",
        "BEGIN:VEVENT",
        "UID:u",
        *event_lines,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(body) + "\r\n"


def three_party_conference(store: ConferenceStore) -> str:
    """Alice's conference with Alice, Bob and Carol in it (the sidebar tests' parent)."""
    uri = store.apply(CreateConference(actor=ALICE))[0].uri
    for actor in (ALICE, BOB, CAROL):
        store.apply(AddUser(actor=actor, uri=uri))
    return uri


def kind(exc: pytest.ExceptionInfo[CoreError]) -> ErrorKind:
    return exc.value.kind


def refused(store: ConferenceStore, command: Command) -> ErrorKind:
    """The kind of error the core answers ``command`` with (the test fails if it is applied)."""
    with pytest.raises(CoreError) as exc:
        store.apply(command)
    return exc.value.kind


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def add_accounts(s: ConferenceStore) -> ConferenceStore:
    """Accounts for the test actors (password pw-<name>)."""
    for actor in (ALICE, BOB, CAROL, EVE, ADMIN):
        assert actor.user_id is not None
        name = actor.user_id.split(":")[1].split("@")[0]
        if s.accounts.get(name) is None:
            s.accounts.add(name, actor.role, f"pw-{name}")
    return s


@pytest.fixture
def store(state_dir: Path) -> Iterator[ConferenceStore]:
    s = add_accounts(open_store(state_dir))
    yield s
    s.close()
