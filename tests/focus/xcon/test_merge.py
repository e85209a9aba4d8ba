"""Partial updates (RFC 6503 s5.3.4) applied with merge()/merge_user()."""

from __future__ import annotations

from focus.xcon.codec import parse_conference_info, parse_user
from focus.xcon.merge import merge, merge_user, strip_state
from focus.xcon.model import (
    CI_NS,
    XCON_NS,
    ConferenceDescription,
    ConferenceInfo,
    Endpoint,
    EndpointStatus,
    Media,
    MediaStatus,
    Role,
    State,
    User,
    Users,
)
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "xcon"
BASE = parse_conference_info((VECTORS / "rfc6501-s7-example.xml").read_bytes())
ENTITY = BASE.entity


def patch(body: str) -> ConferenceInfo:
    return parse_conference_info(
        f'<conference-info xmlns="{CI_NS}" xmlns:xcon="{XCON_NS}" entity="{ENTITY}">'
        f"{body}</conference-info>".encode()
    )


def test_empty_patch_changes_nothing() -> None:
    assert merge(BASE, ConferenceInfo(entity=ENTITY)) == BASE


def test_change_the_title_rfc6503_figure7() -> None:
    out = merge(
        BASE,
        patch(
            "<conference-description><display-text> *** NEW CONFERENCE TITLE *** "
            "</display-text></conference-description>"
        ),
    )
    assert out.conference_description is not None
    assert BASE.conference_description is not None
    assert out.conference_description.display_text == " *** NEW CONFERENCE TITLE *** "
    # everything else in the description is untouched
    assert out.conference_description.subject == BASE.conference_description.subject
    assert out.conference_description.available_media == BASE.conference_description.available_media
    assert out.users == BASE.users


def test_remove_the_title_rfc6503_figure8() -> None:
    out = merge(BASE, patch("<conference-description><display-text/></conference-description>"))
    assert out.conference_description is not None
    assert out.conference_description.display_text is None
    assert out.conference_description.cleared == frozenset()
    assert out.conference_description.subject == "Sports:Formula-1"


def test_add_and_modify_users_by_entity() -> None:
    out = merge(
        BASE,
        patch(
            "<users>"
            '<user entity="xcon-userid:bob534"><display-text>Robert</display-text></user>'
            '<user entity="xcon-userid:dave1"><display-text>Dave</display-text>'
            "<roles><entry>observer</entry></roles></user>"
            "</users>"
        ),
    )
    assert out.users is not None and BASE.users is not None
    entities = [u.entity for u in out.users.users]
    assert entities == [u.entity for u in BASE.users.users] + ["xcon-userid:dave1"]
    bob = out.user("xcon-userid:bob534")
    old_bob = BASE.user("xcon-userid:bob534")
    assert bob is not None and old_bob is not None
    assert bob.display_text == "Robert"
    assert bob.endpoints == old_bob.endpoints  # not mentioned, so kept
    assert bob.roles == old_bob.roles
    dave = out.user("xcon-userid:dave1")
    assert dave is not None and dave.roles == (Role.OBSERVER,)
    # the other lists of <users> survive
    assert out.users.allowed_users_list == BASE.users.allowed_users_list
    assert out.users.join_handling == BASE.users.join_handling


def test_deleted_user_is_removed() -> None:
    out = merge(BASE, patch('<users><user entity="xcon-userid:bob534" state="deleted"/></users>'))
    assert out.user("xcon-userid:bob534") is None
    assert out.user("xcon-userid:alice334") is not None
    # deleting what is not there is harmless
    assert merge(out, patch('<users><user entity="nobody" state="deleted"/></users>')) == out


def test_full_state_replaces_the_element_whole() -> None:
    out = merge(
        BASE,
        patch(
            '<users><user entity="xcon-userid:bob534" state="full">'
            "<display-text>B</display-text></user></users>"
        ),
    )
    bob = out.user("xcon-userid:bob534")
    assert bob == User(entity="xcon-userid:bob534", display_text="B")
    out = merge(BASE, patch('<users state="full"><user entity="solo"/></users>'))
    assert out.users == Users(users=(User(entity="solo"),))


def test_endpoints_and_media_merge_by_key() -> None:
    out = merge(
        BASE,
        patch(
            '<users><user entity="xcon-userid:alice334">'
            '<endpoint entity="sip:alice@example.com"><status>on-hold</status>'
            '<media id="2"><status>inactive</status></media>'
            '<media id="9"><type>text</type></media></endpoint>'
            "</user></users>"
        ),
    )
    alice = out.user("xcon-userid:alice334")
    old = BASE.user("xcon-userid:alice334")
    assert alice is not None and old is not None
    ep = alice.endpoints[0]
    assert ep.status is EndpointStatus.ON_HOLD
    assert [m.id for m in ep.media] == ["1", "2", "9"]
    assert ep.media[1].status is MediaStatus.INACTIVE
    assert ep.media[1].to_mixer == old.endpoints[0].media[1].to_mixer
    assert ep.call_info == old.endpoints[0].call_info


def test_unkeyed_lists_are_replaced() -> None:
    out = merge(
        BASE,
        patch(
            '<users><user entity="xcon-userid:bob534">'
            "<roles><entry>moderator</entry></roles></user></users>"
        ),
    )
    bob = out.user("xcon-userid:bob534")
    assert bob is not None and bob.roles == (Role.MODERATOR,)


def test_allowed_users_targets_keyed_by_uri_and_method() -> None:
    out = merge(
        BASE,
        patch(
            "<users><xcon:allowed-users-list>"
            '<xcon:target uri="sip:bob@example.com" method="refer"/>'
            '<xcon:target uri="sip:bob@example.com" method="dial-out"/>'
            "</xcon:allowed-users-list></users>"
        ),
    )
    assert out.users is not None and out.users.allowed_users_list is not None
    pairs = [(t.uri, t.method) for t in out.users.allowed_users_list.targets]
    assert pairs.count(("sip:bob@example.com", "dial-out")) == 1
    assert pairs[-1] == ("sip:bob@example.com", "refer")
    assert len(pairs) == 5


def test_uri_entries_and_sidebars_by_val() -> None:
    out = merge(
        BASE,
        patch(
            "<conference-description><conf-uris><entry><uri>tel:+3585671234</uri>"
            "<xcon:conference-password>0000</xcon:conference-password></entry>"
            "</conf-uris></conference-description>"
            '<sidebars-by-val><entry entity="conf223"><users>'
            '<user entity="xcon-userid:carol233" state="deleted"/></users></entry>'
            '<entry entity="conf224"/></sidebars-by-val>'
        ),
    )
    d = out.conference_description
    assert d is not None and d.conf_uris is not None
    first = d.conf_uris.entries[0]
    assert first.conference_passwords == ("0000",)
    assert first.display_text == "Conference Bridge"
    assert len(d.conf_uris.entries) == 2
    assert out.sidebars_by_val is not None
    side = out.sidebars_by_val.entries
    assert [s.entity for s in side] == ["conf223", "conf224"]
    assert side[0].users is not None
    assert [u.entity for u in side[0].users.users] == ["xcon-userid:bob534"]


def test_entity_state_and_version_of_base_are_kept() -> None:
    base = ConferenceInfo(entity="xcon:a", version=7)
    out = merge(base, ConferenceInfo(entity="xcon:other", state=State.PARTIAL, version=99))
    assert (out.entity, out.state, out.version) == ("xcon:a", None, 7)


def test_added_elements_carry_no_state() -> None:
    base = ConferenceInfo(entity="c")
    p = ConferenceInfo(
        entity="c",
        users=Users(
            state=State.PARTIAL,
            users=(
                User(
                    entity="u",
                    state=State.PARTIAL,
                    endpoints=(
                        Endpoint(entity="e1", state=State.FULL, media=(Media(id="1"),)),
                        Endpoint(entity="e2", state=State.DELETED),
                    ),
                ),
            ),
        ),
    )
    out = merge(base, p)
    assert out.users == Users(
        users=(User(entity="u", endpoints=(Endpoint(entity="e1", media=(Media(id="1"),)),)),)
    )
    assert strip_state(out) is out


def test_merge_user_for_ccmp_user_update() -> None:
    old = BASE.user("xcon-userid:bob534")
    assert old is not None
    p = parse_user(
        f'<user xmlns="{CI_NS}" xmlns:xcon="{XCON_NS}" entity="xcon-userid:bob534">'
        "<xcon:provide-anonymity>hidden</xcon:provide-anonymity><languages/></user>".encode()
    )
    new = merge_user(old, p)
    assert new.provide_anonymity == "hidden"
    assert new.languages is None
    assert new.display_text == old.display_text
    assert new.endpoints == old.endpoints


def test_extensions_replace_same_name_and_attributes_merge() -> None:
    base = patch(
        '<conference-state xmlns:v="urn:v" v:a="1" v:b="2">'
        "<v:x>1</v:x><v:y>1</v:y></conference-state>"
    )
    p = patch('<conference-state xmlns:v="urn:v" v:b="3"><v:y>2</v:y></conference-state>')
    out = merge(base, p)
    assert out.conference_state is not None
    assert out.conference_state.extensions == (
        '<v:x xmlns:v="urn:v">1</v:x>',
        '<v:y xmlns:v="urn:v">2</v:y>',
    )
    assert dict(out.conference_state.extension_attributes) == {"{urn:v}a": "1", "{urn:v}b": "3"}


def test_merge_does_not_touch_its_inputs() -> None:
    before = ConferenceDescription(display_text="x")
    base = ConferenceInfo(entity="c", conference_description=before)
    merge(
        base, ConferenceInfo(entity="c", conference_description=ConferenceDescription(subject="s"))
    )
    assert base.conference_description is before
