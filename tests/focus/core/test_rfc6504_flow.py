"""The data-model bodies of RFC 6503 s6 / RFC 6504 requests, driven through the core.

The documents are the RFCs' own (tests/vectors/xcon/ccmp, cut out by the data-model
engineer); the CCMP envelope is left to the CCMP server, here only its body is used."""

from __future__ import annotations

from lxml import etree

from focus.core import commands as cmd
from focus.core.changes import ConferenceCreated, UserAdded
from focus.core.policy import Actor
from focus.core.state import Lifecycle, ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.codec import parse_conference_info, parse_user
from focus.xcon.model import Role
from focus.xcon.safexml import parse_xml
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "xcon" / "ccmp"


def body(name: str, tag: str, replace: dict[str, str] | None = None) -> etree._Element:
    data = (VECTORS / name).read_bytes()
    for old, new in (replace or {}).items():  # the IDs this server generated
        data = data.replace(old.encode(), new.encode())
    root = parse_xml(data)
    found = [el for el in root.iter() if etree.QName(el).localname == tag]
    assert len(found) == 1, f"{name}: {len(found)} <{tag}>"
    return found[0]


def test_rfc6504_conference_user_and_sidebars(store: ConferenceStore) -> None:
    store.accounts.add("Alice", Role.USER, "pw")
    alice = Actor("xcon-userid:Alice@example.com", Role.USER)

    # s5.1: Alice creates a weekly conference from her confInfo with AUTO_GENERATE_X
    info = parse_conference_info(body("rfc6504-11.xml", "confInfo"))
    created = store.apply(cmd.CreateConference(actor=alice, info=info))
    assert isinstance(created[0], ConferenceCreated)
    conf = created[0].uri
    obj = store.get_conference(alice, conf)
    assert "AUTO_GENERATE" not in repr(obj.info)
    assert obj.lifecycle is Lifecycle.RESERVED  # it has a conference-time
    assert obj.owner == alice.user_id

    # s6.2: Alice adds Bob, who has no XCON-USERID yet
    user = parse_user(body("rfc6504-15.xml", "userInfo"))
    added = store.apply(cmd.AddUser(actor=alice, uri=conf, user=user))[0]
    assert isinstance(added, UserAdded) and "AUTO_GENERATE" not in added.user
    bob = store.get_user(alice, conf, added.user)
    assert bob.display_text == "Bob"
    assert [e.entity for e in bob.endpoints] == ["sip:bob83@example.com"]
    store.apply(cmd.AddUser(actor=alice, uri=conf))  # and herself

    # s7.4: a private textual sidebar-by-val for Alice and Bob
    ids = {"xcon-userid:Bob@example.com": added.user}
    sidebar_info = parse_conference_info(body("rfc6504-36.xml", "sidebarByValInfo", ids))
    changes = store.apply(
        cmd.CreateSidebar(actor=alice, parent=conf, by_ref=False, info=sidebar_info)
    )
    sidebar = changes[0].uri
    side = store.get_sidebar(alice, sidebar, by_ref=False)
    assert side.kind is ObjectKind.SIDEBAR_BY_VAL
    desc = side.info.conference_description
    assert desc is not None and desc.available_media is not None
    assert [m.type for m in desc.available_media.entries] == ["audio", "video", "text"]
    parent = store.get_sidebars(alice, conf)
    assert parent.info.sidebars_by_val is not None
    assert [e.entity for e in parent.info.sidebars_by_val.entries] == [sidebar]
    # the RFC's own Bob, who is not in the parent, may be in a sidebar: its users are its
    # own (RFC 5239 s9.4.2, RFC 6504 s7.2); the parent's roster does not gain him
    stranger = parse_conference_info(body("rfc6504-36.xml", "sidebarByValInfo"))
    store.apply(cmd.CreateSidebar(actor=alice, parent=conf, by_ref=False, info=stranger))
    assert store.get_users(alice, conf).info.user("xcon-userid:Bob@example.com") is None

    # s7.1 (whisper): the sidebar is updated with the body of RFC 6504's sidebar update
    update = parse_conference_info(body("rfc6504-28.xml", "sidebarByValInfo", ids))
    store.apply(cmd.UpdateSidebar(actor=alice, uri=sidebar, by_ref=False, patch=update))
    side = store.get_sidebar(alice, sidebar, by_ref=False)
    desc = side.info.conference_description
    assert desc is not None and desc.display_text is not None
    assert "Alice - Bob" in desc.display_text
    assert "AUTO_GENERATE" not in repr(side.info)

    # RFC 6503 s6.4: Alice updates the conference
    patch = parse_conference_info(body("rfc6503-07.xml", "confInfo"))
    before = store.get(conf)
    assert before is not None
    changes = store.apply(
        cmd.UpdateConference(actor=alice, uri=conf, patch=patch, expected_version=before.version)
    )
    assert changes[0].version == before.version + 1
