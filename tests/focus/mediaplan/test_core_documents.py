"""The planner on what the REAL core stores: a conference on a SQLite file, sidebars by value
and by reference created and updated with CCMP-style documents parsed by the project's codec
(vectors/), collected with sidebar_documents(parent, store.get)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core import conference_id
from focus.core.store import ConferenceStore
from focus.mediaplan import (
    PARENT_AUDIO,
    link_of,
    plan_media,
    plan_tree,
    root_uri,
    sidebar_documents,
)
from focus.xcon.codec import parse_conference_info
from focus.xcon.model import MediaStatus
from tests.focus.core.conftest import (
    ALICE,
    BOB,
    CAROL,
    add_accounts,
    open_store,
    three_party_conference,
)
from tests.focus.mediaplan.docs import audio_label, vector
from tests.focus.mediaplan.test_plan import row

CONNECTIONS = {ALICE.user_id: "fa:ma", BOB.user_id: "fb:mb", CAROL.user_id: "fc:mc"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConferenceStore]:
    s = add_accounts(open_store(tmp_path / "state"))
    yield s
    s.close()


@pytest.fixture
def conf(store: ConferenceStore) -> str:
    return three_party_conference(store)


@pytest.mark.parametrize(
    ("by_ref", "name"), [(False, "internal-sidebar.xml"), (True, "coaching-sidebar.xml")]
)
def test_sidebars_from_the_store(
    store: ConferenceStore, conf: str, by_ref: bool, name: str
) -> None:
    connections = {k: v for k, v in CONNECTIONS.items() if k is not None}
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=by_ref))[0].uri
    # A fresh clone is an internal sidebar with everyone: heard only in the sidebar.
    parent = store.get(conf)
    assert parent is not None
    fresh = plan_media(parent, sidebar_documents(parent, store.get), connections)
    assert {row(j) for j in fresh.joins if j.conference_id == conference_id(conf)} == {
        (conference_id(conf), "recvonly", None)
    }

    patch = parse_conference_info(vector(name, sidebar, audio_label(store, sidebar)))
    store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref, patch=patch))
    parent = store.get(conf)
    assert parent is not None
    documents = sidebar_documents(parent, store.get)
    assert [d.uri for d in documents] == [sidebar]  # type: ignore[union-attr]
    planned = plan_media(parent, documents, connections)
    main, side = conference_id(conf), conference_id(sidebar)
    rows = {(j.connection, *row(j)) for j in planned.joins}
    if not by_ref:  # internal: main 12 dB down, only alice and bob in the sidebar
        assert rows == {
            ("fa:ma", main, "recvonly", -12),
            ("fb:mb", main, "recvonly", -12),
            ("fc:mc", main, "sendrecv", None),
            ("fa:ma", side, "sendrecv", None),
            ("fb:mb", side, "sendrecv", None),
        }
    else:  # coaching: bob heard in main (his override), alice only in the sidebar
        obj = store.get(sidebar)
        assert obj is not None
        assert link_of(obj.info, obj.info.user(BOB.user_id or "")).status is MediaStatus.SENDRECV
        assert rows == {
            ("fa:ma", main, "recvonly", None),
            ("fb:mb", main, "sendrecv", None),
            ("fc:mc", main, "sendrecv", None),
            ("fa:ma", side, "sendrecv", None),
            ("fb:mb", side, "recvonly", None),
        }

    store.apply(cmd.DeleteSidebar(actor=ALICE, uri=sidebar, by_ref=by_ref))
    parent = store.get(conf)
    assert parent is not None
    after = plan_media(parent, sidebar_documents(parent, store.get), connections)
    assert after.conferences == (main,)
    assert all(j.status is not MediaStatus.INACTIVE for j in after.joins)


def test_the_codec_keeps_the_extension_attributes() -> None:
    info = parse_conference_info(vector("coaching-sidebar.xml", "xcon:s@example.com", "a1"))
    desc = info.conference_description
    assert desc is not None and desc.available_media is not None
    entry = desc.available_media.entries[0]
    assert (PARENT_AUDIO, "recvonly") in entry.extension_attributes


def test_root_and_tree_from_the_store(store: ConferenceStore, conf: str) -> None:
    connections = {k: v for k, v in CONNECTIONS.items() if k is not None}
    sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    assert root_uri(sidebar, store.get) == conf
    assert root_uri(conf, store.get) == conf
    assert root_uri("xcon:gone@example.com", store.get) == "xcon:gone@example.com"
    planned = plan_tree(conf, store.get, connections)
    assert planned.conferences == tuple(sorted((conference_id(conf), conference_id(sidebar))))
    assert plan_tree("xcon:gone@example.com", store.get, connections).joins == ()
