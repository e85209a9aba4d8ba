"""The role matrix: every (role, operation) cell, and how the effective role is found."""

from __future__ import annotations

import pytest

from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import MATRIX, Actor, Operation, allowed, require, role_on
from focus.xcon.model import Role, effective_role

Op = Operation
READS = {
    Op.LIST_BLUEPRINTS,
    Op.READ_BLUEPRINT,
    Op.LIST_CONFERENCES,
    Op.READ_CONFERENCE,
    Op.READ_USERS,
    Op.READ_SELF,
    Op.READ_USER,
    Op.READ_SIDEBARS,
}

# The expected matrix written out independently of the module's construction of it.
EXPECTED: dict[Role, set[Operation]] = {
    Role.ADMINISTRATOR: set(Operation),
    Role.MODERATOR: set(Operation)
    - {Op.CREATE_BLUEPRINT, Op.UPDATE_BLUEPRINT, Op.DELETE_BLUEPRINT},
    Role.USER: READS | {Op.ADD_SELF, Op.UPDATE_SELF, Op.REMOVE_SELF, Op.CREATE_CONFERENCE},
    Role.PARTICIPANT: READS | {Op.ADD_SELF, Op.UPDATE_SELF, Op.REMOVE_SELF},
    Role.OBSERVER: READS | {Op.ADD_SELF, Op.REMOVE_SELF},
    Role.NONE: set(),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("operation", list(Operation))
def test_every_cell(role: Role, operation: Operation) -> None:
    expected = operation in EXPECTED[role]
    assert allowed(role, operation) is expected
    if expected:
        require(role, operation, "xcon:x@example.com")
    else:
        with pytest.raises(CoreError) as info:
            require(role, operation, "xcon:x@example.com")
        assert info.value.kind is ErrorKind.FORBIDDEN
        assert role.value in info.value.message


def test_matrix_covers_every_role() -> None:
    assert set(MATRIX) == set(Role)


def test_only_privileged_roles_change_others() -> None:
    for role in Role:
        if allowed(role, Op.UPDATE_USER) or allowed(role, Op.REMOVE_USER):
            assert role.rank >= Role.MODERATOR.rank


def test_owner_is_moderator() -> None:
    alice = Actor("xcon-userid:alice@example.com", Role.USER)
    assert role_on(alice, owner=alice.user_id, conference_roles=()) is Role.MODERATOR
    assert role_on(alice, owner="xcon-userid:bob@example.com", conference_roles=()) is (Role.USER)


def test_listed_role_raises_but_never_lowers() -> None:
    bob = Actor("xcon-userid:bob@example.com", Role.PARTICIPANT)
    assert role_on(bob, owner=None, conference_roles=[Role.MODERATOR]) is Role.MODERATOR
    admin = Actor("xcon-userid:root@example.com", Role.ADMINISTRATOR)
    assert role_on(admin, owner=None, conference_roles=[Role.OBSERVER]) is (Role.ADMINISTRATOR)


def test_anonymous_actor_is_not_owner_of_anonymous_conference() -> None:
    anon = Actor(None, Role.NONE)
    assert role_on(anon, owner=None, conference_roles=()) is Role.NONE


def test_role_parse() -> None:
    assert Role.parse(" Moderator ") is Role.MODERATOR
    with pytest.raises(ValueError, match="expected one of administrator"):
        Role.parse("chair")
    assert effective_role([]) is Role.NONE
    assert effective_role([Role.OBSERVER, Role.USER]) is Role.USER
    assert effective_role(["participant", "user"]) is Role.USER  # RFC 6501 s4.6.5.2 order
    assert effective_role(["chair"]) is Role.NONE  # an extension role grants nothing
    assert [r.rank for r in Role] == [5, 4, 3, 2, 1, 0]  # most privileged first


def test_rfc6501_s4_6_5_2_one_role_type_and_one_effective_role() -> None:
    # The roles a document lists (parsed by focus.xcon) are the keys of the core's matrix,
    # and every layer asks the same effective_role; the event package has no other.
    import focus.core
    import focus.eventpkg
    from focus.xcon.codec import parse_user
    from focus.xcon.safexml import parse_xml

    assert focus.core.Role is Role
    assert not hasattr(focus.eventpkg, "effective_role")
    user = parse_user(
        parse_xml(
            b'<user xmlns="urn:ietf:params:xml:ns:conference-info" entity="xcon-userid:b@x">'
            b"<roles><entry>participant</entry><entry>moderator</entry><entry>janitor</entry>"
            b"</roles></user>"
        )
    )
    assert user.roles == (Role.PARTICIPANT, Role.MODERATOR, "janitor")
    assert effective_role(user.roles) is Role.MODERATOR
    assert set(MATRIX) == set(Role)
    bob = Actor("xcon-userid:b@x", Role.OBSERVER)
    assert role_on(bob, owner=None, conference_roles=user.roles) is Role.MODERATOR
