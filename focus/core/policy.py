"""Who may do what: a role matrix over the RFC 6501 roles and the core's operations.

RFC 6501 s4.6.5.2 names the roles but leaves their semantics to policy documents; RFC 5239
s5.2 leaves policy to the conferencing system.  This module is that policy, as data: one
table from (effective role, operation) to allowed.

The effective role of an actor on a conference is the more privileged of the role of
their account (system wide) and their role in that conference: the creator of a conference
is its moderator (RFC 6503 s6.3: the creator administers what she created), and a user
listed in the conference with <roles> gets the most privileged of those roles there.
On a sidebar, her standing in its parent counts too (a parent's moderator runs its sidebars).

Sidebars (RFC 5239 s9.4, RFC 6504 s7).  Creating one is a moderator's operation on the
parent: its creator, a user the parent lists as moderator, or an account whose role is
moderator or administrator.  Being a user of the parent is neither needed nor enough: RFC
6504 s7.4's supervisor, who is not in Bob's call with Carol, creates the coaching sidebar
for herself because her account makes her a moderator (RFC 6503 s10.3 speaks of "users that
are authorized with a special role in a conference (e.g., a supervisor in a call center
environment)"; s7.4 step 3 asks the server to check her authority "based on the policies
associated with that specific conference object"), while Carol, a participant, may not.
The sidebar's creator moderates it.  A sidebar's users are its own: its moderators put
anyone in it (s7.2's Fred, who is in no roster of the parent), and a non-moderator adds
herself only where the sidebar's allowed-users-list names her (a sidebar is a private
discussion, so the parent's admission policy, which may be anonymous, is not enough).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from focus.core.errors import CoreError, ErrorKind
from focus.xcon.model import Role, effective_role

__all__ = [
    "MATRIX",
    "Actor",
    "Operation",
    "allowed",
    "require",
    "role_on",
]


class Operation(enum.Enum):
    """Operations the policy decides on (RFC 6503 s5.3, Table 1, split by target)."""

    LIST_BLUEPRINTS = "list-blueprints"
    READ_BLUEPRINT = "read-blueprint"
    LIST_CONFERENCES = "list-conferences"
    CREATE_CONFERENCE = "create-conference"
    READ_CONFERENCE = "read-conference"
    UPDATE_CONFERENCE = "update-conference"
    DELETE_CONFERENCE = "delete-conference"
    READ_USERS = "read-users"
    UPDATE_USERS = "update-users"
    ADD_SELF = "add-self"
    ADD_USER = "add-user"
    READ_SELF = "read-self"
    READ_USER = "read-user"
    UPDATE_SELF = "update-self"
    UPDATE_USER = "update-user"
    """Change another user, including their media status (mute)."""
    REMOVE_SELF = "remove-self"
    REMOVE_USER = "remove-user"
    READ_SIDEBARS = "read-sidebars"
    CREATE_SIDEBAR = "create-sidebar"
    UPDATE_SIDEBAR = "update-sidebar"
    DELETE_SIDEBAR = "delete-sidebar"
    CREATE_BLUEPRINT = "create-blueprint"
    """RFC 6503 s5.3.3: blueprint writes are for privileged users (server staff)."""
    UPDATE_BLUEPRINT = "update-blueprint"
    DELETE_BLUEPRINT = "delete-blueprint"


_O = Operation
_READ_ONLY = frozenset(
    {
        _O.LIST_BLUEPRINTS,
        _O.READ_BLUEPRINT,
        _O.LIST_CONFERENCES,
        _O.READ_CONFERENCE,
        _O.READ_USERS,
        _O.READ_SELF,
        _O.READ_USER,
        _O.READ_SIDEBARS,
    }
)
_SELF_SERVICE = frozenset({_O.ADD_SELF, _O.REMOVE_SELF, _O.UPDATE_SELF})
_BLUEPRINT_WRITES = frozenset({_O.CREATE_BLUEPRINT, _O.UPDATE_BLUEPRINT, _O.DELETE_BLUEPRINT})

#: The matrix.  Administrators and moderators run conferences, and only administrators
#: (the server's staff, RFC 6503 s5.3.3) write blueprints; a registered user may
#: also create conferences (and so becomes their moderator); participants and observers
#: see conferences and manage only themselves; observers may not change even their own
#: user (they only listen); "none" may do nothing.
MATRIX: Mapping[Role, frozenset[Operation]] = {
    Role.ADMINISTRATOR: frozenset(Operation),
    Role.MODERATOR: frozenset(Operation) - _BLUEPRINT_WRITES,
    Role.USER: _READ_ONLY | _SELF_SERVICE | {_O.CREATE_CONFERENCE},
    Role.PARTICIPANT: _READ_ONLY | _SELF_SERVICE,
    Role.OBSERVER: _READ_ONLY | {_O.ADD_SELF, _O.REMOVE_SELF},
    Role.NONE: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: their XCON-USERID (None for a user without one, RFC 6503 s5.3.6) and
    the role of their account.  The core trusts the front end to have authenticated them.

    ``anonymous``: an unauthenticated client with no XCON-USERID asking to join (RFC 6503
    s5.3.6, third case; s10.2 lets a server admit such users).  It may do nothing but join
    a conference whose user-admission-policy is "anonymous" (RFC 6501 s4.6.2)."""

    user_id: str | None
    role: Role
    anonymous: bool = False
    internal: bool = False
    """The conferencing system's own work, not a protocol request: RFC 6503 s5.1's
    conference password is asked of requests, not of the focus admitting a caller."""

    @classmethod
    def system(cls) -> Actor:
        """The conferencing system itself (scheduler, SIP focus, operator tools)."""
        return cls(user_id=None, role=Role.ADMINISTRATOR, internal=True)

    @classmethod
    def unauthenticated(cls) -> Actor:
        """A client that gave no credentials and has no XCON-USERID."""
        return cls(user_id=None, role=Role.NONE, anonymous=True)


def allowed(role: Role, operation: Operation) -> bool:
    """Whether ``role`` may perform ``operation``."""
    return operation in MATRIX[role]


def role_on(actor: Actor, *, owner: str | None, conference_roles: Iterable[Role | str]) -> Role:
    """The actor's role on one conference: the :func:`effective_role` of her account role,
    her listed roles there and moderator if she created it (``owner``)."""
    held: list[Role | str] = [actor.role, *conference_roles]
    if owner is not None and actor.user_id is not None and actor.user_id == owner:
        held.append(Role.MODERATOR)
    return effective_role(held)


def require(role: Role, operation: Operation, target: str = "") -> None:
    """Raise FORBIDDEN unless ``role`` may perform ``operation``."""
    if not allowed(role, operation):
        where = f" on {target}" if target else ""
        raise CoreError(
            ErrorKind.FORBIDDEN,
            f"role {role.value!r} may not {operation.value.replace('-', ' ')}{where}",
        )
