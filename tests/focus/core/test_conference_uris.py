"""Every conference and sidebar lists where it is reached from the moment it is created:
its SIP URI in <conf-uris> (purpose participation, from CoreConfig.participation_uri) and
its XCON-URI in <service-uris> (purpose ccmp, RFC 7082 s3), in the create itself, so the
version a create reports is the version an update must name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from focus.core import commands as cmd
from focus.core.core import CoreConfig, conference_id
from focus.core.errors import CoreError, ErrorKind
from focus.core.state import ConferenceObject, Enforceable
from focus.core.store import ConferenceStore
from focus.xcon.model import ConferenceDescription, ConferenceInfo, UriEntry, Uris
from tests.focus.core.conftest import ALICE, BOB, add_accounts, open_store

PATTERN = "sip:conf-{id}@focus.example.com"


def sip_of(uri: str) -> str:
    return PATTERN.replace("{id}", conference_id(uri))


def conf_uris(obj: ConferenceObject) -> list[tuple[str, str | None]]:
    desc = obj.info.conference_description
    assert desc is not None
    return [(e.uri, e.purpose) for e in desc.conf_uris.entries] if desc.conf_uris else []


def service_uris(obj: ConferenceObject) -> list[tuple[str, str | None]]:
    desc = obj.info.conference_description
    assert desc is not None
    return [(e.uri, e.purpose) for e in desc.service_uris.entries] if desc.service_uris else []


@pytest.fixture
def sip_store(state_dir: Path) -> Iterator[ConferenceStore]:
    config = CoreConfig(domain="example.com", participation_uri=PATTERN, ccmp_service_uri=True)
    s = add_accounts(open_store(state_dir, config=config))
    yield s
    s.close()


def test_conference_id_is_a_safe_local_part() -> None:
    assert conference_id("xcon:abc-12_x@example.com") == "abc-12_x"
    assert conference_id("xcon:a.b+c@example.com") == "a-b-c"
    assert conference_id("xcon:@example.com") == "conference"


@pytest.mark.parametrize("pattern", ["sip:conf@example.com", "sip:{id}{id}@x", "{id}"])
def test_a_pattern_without_one_id_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="participation_uri"):
        CoreConfig(participation_uri=pattern)


def test_a_create_lists_both_uris_and_its_version_is_the_stored_one(
    sip_store: ConferenceStore,
) -> None:
    (created,) = sip_store.apply(cmd.CreateConference(actor=ALICE))
    obj = created.after
    assert obj is not None and obj.version == created.version
    assert conf_uris(obj) == [(sip_of(obj.uri), "participation")]
    assert service_uris(obj) == [(obj.uri, "ccmp")]
    stored = sip_store.get(obj.uri)
    assert stored == obj
    # The version the create reported is the one an update must name: no 409.
    patch = ConferenceInfo(
        entity=obj.uri, conference_description=ConferenceDescription(display_text="t")
    )
    sip_store.apply(
        cmd.UpdateConference(
            actor=ALICE, uri=obj.uri, patch=patch, expected_version=created.version
        )
    )
    assert sip_store.find(sip_of(obj.uri)) == sip_store.get(obj.uri)


def test_without_sip_only_the_xcon_uri_is_listed(state_dir: Path) -> None:
    s = add_accounts(open_store(state_dir, config=CoreConfig(ccmp_service_uri=True)))
    try:
        (created,) = s.apply(cmd.CreateConference(actor=ALICE))
        assert created.after is not None
        assert conf_uris(created.after) == []
        assert service_uris(created.after) == [(created.uri, "ccmp")]
    finally:
        s.close()


def test_a_bare_core_lists_neither(store: ConferenceStore) -> None:
    (created,) = store.apply(cmd.CreateConference(actor=ALICE))
    assert created.after is not None
    assert conf_uris(created.after) == []
    assert service_uris(created.after) == []


def test_direct_creation_keeps_the_clients_entries(sip_store: ConferenceStore) -> None:
    mine = UriEntry(uri="sips:room@elsewhere.example.com", purpose="participation")
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.com",
        conference_description=ConferenceDescription(
            conf_uris=Uris(entries=(mine,)),
            service_uris=Uris(entries=(UriEntry(uri="http://x.example.com/", purpose="web-page"),)),
        ),
    )
    (created,) = sip_store.apply(cmd.CreateConference(actor=ALICE, info=info))
    assert created.after is not None
    assert conf_uris(created.after) == [
        (mine.uri, "participation"),
        (sip_of(created.uri), "participation"),
    ]
    assert service_uris(created.after) == [
        ("http://x.example.com/", "web-page"),
        (created.uri, "ccmp"),
    ]


@pytest.mark.parametrize("linked", [False, True])
def test_a_clone_lists_its_own_uris_not_its_sources(
    sip_store: ConferenceStore, linked: bool
) -> None:
    source = sip_store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    (created,) = [
        c
        for c in sip_store.apply(
            cmd.CreateConference(actor=ALICE, clone_from=source, linked=linked)
        )
        if c.uri != source
    ]
    assert created.after is not None
    assert conf_uris(created.after) == [(sip_of(created.uri), "participation")]
    assert service_uris(created.after) == [(created.uri, "ccmp")]
    if linked:
        # The parent's enforced conf-uris do not include its own SIP URI: the child keeps
        # its own through a later change of the parent's list.
        extra = UriEntry(uri="sip:dial-in@gw.example.com", purpose="participation")
        patch = ConferenceInfo(
            entity=source,
            conference_description=ConferenceDescription(conf_uris=Uris(entries=(extra,))),
        )
        sip_store.apply(cmd.UpdateConference(actor=ALICE, uri=source, patch=patch))
        child = sip_store.get(created.uri)
        assert child is not None
        assert sorted(conf_uris(child)) == sorted(
            [(extra.uri, "participation"), (sip_of(created.uri), "participation")]
        )


@pytest.mark.parametrize("by_ref", [False, True])
@pytest.mark.parametrize("with_info", [False, True])
def test_a_sidebar_lists_its_own_uris(
    sip_store: ConferenceStore, by_ref: bool, with_info: bool
) -> None:
    conf = sip_store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    sip_store.apply(cmd.AddUser(actor=BOB, uri=conf))
    parent = sip_store.get(conf)
    assert parent is not None and Enforceable.CONF_URIS in parent.enforce
    info = (
        ConferenceInfo(
            entity="xcon:AUTO_GENERATE_1@example.com",
            conference_description=ConferenceDescription(display_text="side"),
        )
        if with_info
        else None
    )
    changes = sip_store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=by_ref, info=info))
    created = changes[0]
    sidebar = created.after
    assert sidebar is not None and sidebar.uri != conf
    assert conf_uris(sidebar) == [(sip_of(sidebar.uri), "participation")]
    assert service_uris(sidebar) == [(sidebar.uri, "ccmp")]
    stored = sip_store.get(sidebar.uri)
    assert stored is not None and stored.version == created.version
    patch = ConferenceInfo(
        entity=sidebar.uri, conference_description=ConferenceDescription(display_text="s")
    )
    sip_store.apply(
        cmd.UpdateSidebar(
            actor=ALICE,
            uri=sidebar.uri,
            by_ref=by_ref,
            patch=patch,
            expected_version=created.version,
        )
    )
    # Still enforced: a sidebar may not add a conf-uris entry of its own.
    extra = UriEntry(uri="sip:side@gw.example.com", purpose="participation")
    bad = ConferenceInfo(
        entity=sidebar.uri,
        conference_description=ConferenceDescription(conf_uris=Uris(entries=(extra,))),
    )
    with pytest.raises(CoreError) as exc:
        sip_store.apply(cmd.UpdateSidebar(actor=ALICE, uri=sidebar.uri, by_ref=by_ref, patch=bad))
    assert exc.value.kind is ErrorKind.PARENT_ENFORCED
    # The parent is still found by its own SIP URI, the sidebar by its.
    assert sip_store.find(sip_of(conf)) == sip_store.get(conf)
    assert sip_store.find(sip_of(sidebar.uri)) == sip_store.get(sidebar.uri)


@pytest.mark.parametrize("child", ["linked clone", "sidebar", "sidebar from info"])
def test_rfc5239_s7_1_every_linked_child_starts_as_its_parent_enforces(
    sip_store: ConferenceStore, child: str
) -> None:
    # One normalisation for new conferences and sidebars: a linked child's enforced
    # elements are its parent's from the start (an entry naming the parent is not renamed,
    # as it is in an independent clone), with its own SIP and CCMP URIs added.
    conf = sip_store.apply(
        cmd.CreateConference(
            actor=ALICE,
            enforce=frozenset({Enforceable.CONF_URIS, Enforceable.ALLOW_SIDEBARS}),
        )
    )[0].uri
    web = UriEntry(uri=conf, purpose="web-page")
    patch = ConferenceInfo(
        entity=conf,
        conference_description=ConferenceDescription(
            conf_uris=Uris(entries=(web,)), allow_sidebars=True
        ),
    )
    sip_store.apply(cmd.UpdateConference(actor=ALICE, uri=conf, patch=patch))
    if child == "linked clone":
        command: cmd.Command = cmd.CreateConference(actor=ALICE, clone_from=conf, linked=True)
    else:
        info = ConferenceInfo(entity="xcon:AUTO_GENERATE_1@example.com")
        with_info = info if child == "sidebar from info" else None
        command = cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True, info=with_info)
    made = next(c.after for c in sip_store.apply(command) if c.uri != conf)
    assert made is not None
    assert conf_uris(made) == [(conf, "web-page"), (sip_of(made.uri), "participation")]
    assert service_uris(made) == [(made.uri, "ccmp")]
    desc = made.info.conference_description
    assert desc is not None and desc.allow_sidebars is True
    # An independent clone names itself where its source named itself.
    clone = sip_store.apply(cmd.CreateConference(actor=ALICE, clone_from=conf))[0].after
    assert clone is not None
    assert conf_uris(clone) == [(clone.uri, "web-page"), (sip_of(clone.uri), "participation")]


def test_a_restart_keeps_the_uris(state_dir: Path) -> None:
    config = CoreConfig(domain="example.com", participation_uri=PATTERN, ccmp_service_uri=True)
    first = add_accounts(open_store(state_dir, config=config))
    conf = first.apply(cmd.CreateConference(actor=ALICE))[0].uri
    side = first.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    before = {u: first.get(u) for u in (conf, side)}
    first.close()
    again = open_store(state_dir, config=config)
    try:
        for uri, obj in before.items():
            after = again.get(uri)
            assert after == obj
            assert after is not None and (sip_of(uri), "participation") in conf_uris(after)
            assert (uri, "ccmp") in service_uris(after)
    finally:
        again.close()
