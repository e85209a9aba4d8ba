"""RFC 6502 diffs (RFC 5261 patches) of XCON documents, and the patch applier."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

from focus.eventpkg.bodies import xcon_full
from focus.eventpkg.xmlpatch import PatchError, apply_patch, xcon_diff
from focus.xcon.model import XCON_NS, ConferenceState, Target, TargetMethod
from tests.focus.eventpkg.helpers import (
    DAVE,
    RFC6502_XSD,
    standard,
    tree,
    user,
    valid,
    with_users,
)

DOC = b"""<?xml version="1.0" encoding="UTF-8"?>
<doc xmlns="urn:example:doc" xmlns:p="urn:example:p">
<foo a="1">text</foo><list><item id="x"/><item id="y"/></list><p:bar/></doc>"""


def patch(*ops: str, default: str = "urn:example:doc") -> bytes:
    return (
        f'<diff xmlns="{default}" xmlns:d="urn:example:doc" xmlns:p="urn:example:p">'
        + "".join(ops)
        + "</diff>"
    ).encode()


def ops_of(diff: bytes) -> list[tuple[str, str | None, str | None]]:
    return [
        (etree.QName(op).localname, op.get("sel"), op.get("pos")) for op in etree.fromstring(diff)
    ]


def roundtrip(old: bytes, new: bytes, entity: str) -> bytes:
    diff = xcon_diff(old, new, entity)
    assert diff is not None
    ok, log = valid(RFC6502_XSD, diff)
    assert ok, log
    assert tree(apply_patch(old, diff)) == tree(new)
    return diff


# --------------------------------------------------------------------------- diff


def test_same_documents_have_no_diff() -> None:
    assert xcon_diff(xcon_full(standard()), xcon_full(standard()), standard().entity) is None


def test_diff_root_is_the_rfc6502_element_without_version() -> None:
    old = standard()
    new = replace(old, conference_state=ConferenceState(user_count=4, active=True))
    diff = roundtrip(xcon_full(old), xcon_full(new), old.entity)
    root = etree.fromstring(diff)
    assert root.tag == f"{{{XCON_NS}}}conference-info-diff"
    assert root.get("entity") == old.entity
    assert root.get("version") is None
    assert ops_of(diff) == [
        ("replace", "/ci:conference-info/ci:conference-state[1]/ci:user-count[1]", None),
        ("remove", "/ci:conference-info/ci:conference-state[1]/ci:locked[1]", None),
        (
            "remove",
            "/ci:conference-info/ci:conference-state[1]/xcon:allow-conference-event-subscription[1]",
            None,
        ),
    ]


def test_user_leaving_is_one_remove_by_key() -> None:
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    diff = roundtrip(xcon_full(old), xcon_full(with_users(old, alice, carol)), old.entity)
    assert ops_of(diff) == [
        ("remove", f"/ci:conference-info/ci:users[1]/ci:user[@entity='{bob.entity}']", None)
    ]


def test_user_joining_is_added_before_the_next_sibling() -> None:
    old = standard()
    dave = user(DAVE, "Dave", n=4)
    new = with_users(old, *old.users.users, dave)  # type: ignore[union-attr]
    diff = roundtrip(xcon_full(old), xcon_full(new), old.entity)
    # <users> goes on with <xcon:join-handling>: the new user goes before it
    assert ops_of(diff) == [
        ("add", "/ci:conference-info/ci:users[1]/xcon:join-handling[1]", "before")
    ]
    (op,) = etree.fromstring(diff)
    (added,) = op
    assert added.get("entity") == DAVE


def test_user_joining_at_the_end_is_appended() -> None:
    old = standard()
    assert old.users is not None
    users = replace(old.users, join_handling=None, allowed_users_list=None, deny_users_list=None)
    old = replace(old, users=users)
    new = with_users(old, *users.users, user(DAVE, "Dave", n=4))
    diff = roundtrip(xcon_full(old), xcon_full(new), old.entity)
    assert ops_of(diff) == [("add", "/ci:conference-info/ci:users[1]", None)]


def test_targets_are_keyed_by_uri_and_method() -> None:
    old = standard()
    assert old.users is not None and old.users.allowed_users_list is not None
    allowed = old.users.allowed_users_list
    more = replace(
        allowed,
        targets=(*allowed.targets, Target(uri="sip:eve@example.com", method=TargetMethod.REFER)),
    )
    new = replace(old, users=replace(old.users, allowed_users_list=more))
    diff = roundtrip(xcon_full(old), xcon_full(new), old.entity)
    ((kind, sel, _),) = ops_of(diff)
    assert kind == "add" and sel == "/ci:conference-info/ci:users[1]/xcon:allowed-users-list[1]"
    back = roundtrip(xcon_full(new), xcon_full(old), old.entity)
    assert ops_of(back) == [
        (
            "remove",
            "/ci:conference-info/ci:users[1]/xcon:allowed-users-list[1]"
            "/xcon:target[@uri='sip:eve@example.com'][@method='refer']",
            None,
        )
    ]


def test_reordered_children_replace_their_parent() -> None:
    old = standard()
    alice, bob, carol = old.users.users  # type: ignore[union-attr]
    diff = roundtrip(xcon_full(old), xcon_full(with_users(old, carol, alice, bob)), old.entity)
    assert ops_of(diff) == [("replace", "/ci:conference-info/ci:users[1]", None)]


def test_key_values_with_quotes_are_quoted_the_other_way() -> None:
    old = standard()
    odd = user("sip:o'neil@example.com", "Oneil", n=5)
    new = with_users(old, *old.users.users, odd)  # type: ignore[union-attr]
    roundtrip(xcon_full(old), xcon_full(new), old.entity)
    diff = roundtrip(xcon_full(new), xcon_full(old), old.entity)
    assert ops_of(diff)[0][1] == (
        '/ci:conference-info/ci:users[1]/ci:user[@entity="sip:o\'neil@example.com"]'
    )


def test_a_different_conference_replaces_the_root() -> None:
    old = standard()
    new = replace(old, entity="xcon:other@example.com")
    diff = roundtrip(xcon_full(old), xcon_full(new), old.entity)
    assert ops_of(diff) == [("replace", "/ci:conference-info", None)]


# --------------------------------------------------------------------------- apply


def test_apply_the_rfc5261_operations() -> None:
    out = apply_patch(
        DOC,
        patch(
            '<add sel="doc/list"><item id="z"/></add>',
            '<add sel="doc/list/item[@id=\'x\']" pos="before"><item id="w"/></add>',
            '<add sel="doc/list" pos="prepend"><item id="v"/></add>',
            '<add sel="doc/list/item[@id=\'y\']" pos="after"><item id="y2"/></add>',
            '<add sel="doc/foo" type="@b">2</add>',
            '<replace sel="doc/foo/@a">3</replace>',
            "<replace sel=\"doc/foo[@a='3']/text()\">new text</replace>",
            '<remove sel="*/p:bar"/>',
        ),
    )
    root = etree.fromstring(out)
    ns = {"d": "urn:example:doc"}
    assert [i.get("id") for i in root.iterfind("d:list/d:item", ns)] == [
        "v",
        "w",
        "x",
        "y",
        "y2",
        "z",
    ]
    foo = root.find("d:foo", ns)
    assert foo is not None
    assert (foo.get("a"), foo.get("b"), foo.text) == ("3", "2", "new text")
    assert root.find("{urn:example:p}bar") is None


def test_unprefixed_names_use_the_patch_default_namespace() -> None:
    # RFC 5261 s4.2.2: with no default namespace an unprefixed name has none
    with pytest.raises(PatchError, match="unlocated-node"):
        apply_patch(DOC, patch('<remove sel="doc/foo"/>', default="urn:example:other"))
    out = apply_patch(DOC, patch('<remove sel="/d:doc/d:foo"/>', default="urn:example:other"))
    assert b"foo" not in out


def test_replace_element_and_root() -> None:
    out = apply_patch(DOC, patch('<replace sel="doc/foo[1]"><baz/></replace>'))
    assert b"<baz/>" in out and b"foo" not in out
    out = apply_patch(DOC, patch('<replace sel="/doc"><other/></replace>'))
    assert etree.fromstring(out).tag == "{urn:example:doc}other"


def test_positions_and_child_value_predicates() -> None:
    doc = b'<r xmlns="urn:example:doc"><e><uri>a</uri></e><e><uri>b</uri></e></r>'
    out = apply_patch(doc, patch("<remove sel=\"r/e[uri='b']\"/>"))
    assert b">b<" not in out
    out = apply_patch(doc, patch('<remove sel="r/e[2]"/>'))
    assert b">b<" not in out
    out = apply_patch(doc, patch("<remove sel=\"r/e/uri[.='a']\"/>"))
    assert b">a<" not in out


@pytest.mark.parametrize(
    ("op", "tag"),
    [
        ('<remove sel="doc/list/item"/>', "unlocated-node"),  # two matches
        ('<remove sel="doc/nothing"/>', "unlocated-node"),
        ('<remove sel="doc/foo/@zz"/>', "unlocated-node"),
        ('<remove sel="doc//foo"/>', "invalid-xpath"),
        ("<remove sel=\"doc/foo[contains(., 't')]\"/>", "invalid-xpath"),
        ('<remove sel="q:doc"/>', "invalid-namespace-prefix"),
        ('<remove sel="/doc"/>', "invalid-root-element-operation"),
        ('<add sel="/doc" pos="before"><x/></add>', "invalid-root-element-operation"),
        ('<add sel="doc/foo" type="@a">1</add>', "invalid-attribute-value"),
        ('<add sel="doc/foo" type="namespace::x">urn:x</add>', "unsupported"),
        ('<add sel="doc/foo" pos="sideways"><x/></add>', "invalid-patch-directive"),
        ('<add sel="doc/foo/@a"><x/></add>', "invalid-patch-directive"),
        ('<replace sel="doc/foo"><a/><b/></replace>', "invalid-patch-directive"),
        ("<remove/>", "invalid-patch-directive"),
        ('<remove sel=""/>', "invalid-xpath"),
    ],
)
def test_bad_patches_say_what_is_wrong(op: str, tag: str) -> None:
    with pytest.raises(PatchError) as err:
        apply_patch(DOC, patch(op))
    assert err.value.tag == tag


def test_unknown_elements_in_the_diff_are_ignored() -> None:
    # RFC 6502 s5.3: extension elements MUST be ignored
    out = apply_patch(DOC, patch('<note xmlns="urn:example:ext">hi</note>'))
    assert tree(out) == tree(DOC)


def test_hostile_documents_are_refused_by_the_hardened_parser() -> None:
    from focus.xcon.safexml import XmlError

    evil = b'<!DOCTYPE d [<!ENTITY e "x">]><diff xmlns="urn:example:doc">&e;</diff>'
    with pytest.raises(XmlError, match="DTD"):
        apply_patch(DOC, evil)
