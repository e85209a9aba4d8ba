"""Every cell of the role matrix, enforced by the core on real commands and queries.

The actor under test has an account with the role in question, is not the conference's
owner and holds no role inside it, so only the account role decides."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from focus.core import commands as cmd
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import MATRIX, Actor, Operation
from focus.core.store import ConferenceStore
from focus.xcon.model import ConferenceDescription, ConferenceInfo, JoinHandling, Role, User, Users
from tests.focus.core.conftest import ADMIN, ALICE, BOB, add_accounts, open_store

Action = Callable[[ConferenceStore, Actor, str, str], object]


def _apply(command: Callable[[Actor, str, str], cmd.Command]) -> Action:
    return lambda store, actor, conf, sidebar: store.apply(command(actor, conf, sidebar))


ACTIONS: dict[Operation, Action] = {
    Operation.LIST_BLUEPRINTS: lambda s, a, c, sb: s.list_blueprints(a),
    Operation.READ_BLUEPRINT: lambda s, a, c, sb: s.get_blueprint(a, "xcon:AudioRoom@example.com"),
    Operation.LIST_CONFERENCES: lambda s, a, c, sb: s.list_conferences(a),
    Operation.CREATE_CONFERENCE: _apply(lambda a, c, sb: cmd.CreateConference(actor=a)),
    Operation.READ_CONFERENCE: lambda s, a, c, sb: s.get_conference(a, c),
    Operation.UPDATE_CONFERENCE: _apply(
        lambda a, c, sb: cmd.UpdateConference(
            actor=a,
            uri=c,
            patch=ConferenceInfo(
                entity=c, conference_description=ConferenceDescription(subject="s")
            ),
        )
    ),
    Operation.DELETE_CONFERENCE: _apply(lambda a, c, sb: cmd.DeleteConference(actor=a, uri=c)),
    Operation.READ_USERS: lambda s, a, c, sb: s.get_users(a, c),
    Operation.UPDATE_USERS: _apply(
        lambda a, c, sb: cmd.UpdateUsers(
            actor=a, uri=c, patch=Users(join_handling=JoinHandling.CONFIRM)
        )
    ),
    Operation.ADD_SELF: _apply(lambda a, c, sb: cmd.AddUser(actor=a, uri=c)),
    Operation.ADD_USER: _apply(
        lambda a, c, sb: cmd.AddUser(
            actor=a, uri=c, user=User(entity="xcon-userid:carol@example.com")
        )
    ),
    Operation.READ_SELF: lambda s, a, c, sb: s.get_user(a, c),
    Operation.READ_USER: lambda s, a, c, sb: s.get_user(a, c, BOB.user_id),
    Operation.UPDATE_SELF: _apply(
        lambda a, c, sb: cmd.UpdateUser(actor=a, uri=c, user=User(display_text="me"))
    ),
    Operation.UPDATE_USER: _apply(
        lambda a, c, sb: cmd.UpdateUser(
            actor=a, uri=c, user=User(entity=BOB.user_id, display_text="him")
        )
    ),
    Operation.REMOVE_SELF: _apply(lambda a, c, sb: cmd.RemoveUser(actor=a, uri=c)),
    Operation.REMOVE_USER: _apply(
        lambda a, c, sb: cmd.RemoveUser(actor=a, uri=c, entity=BOB.user_id)
    ),
    Operation.READ_SIDEBARS: lambda s, a, c, sb: s.get_sidebars(a, c),
    Operation.CREATE_SIDEBAR: _apply(
        lambda a, c, sb: cmd.CreateSidebar(actor=a, parent=c, by_ref=True)
    ),
    Operation.UPDATE_SIDEBAR: _apply(
        lambda a, c, sb: cmd.UpdateSidebar(
            actor=a,
            uri=sb,
            by_ref=True,
            patch=ConferenceInfo(
                entity=sb, conference_description=ConferenceDescription(subject="x")
            ),
        )
    ),
    Operation.DELETE_SIDEBAR: _apply(
        lambda a, c, sb: cmd.DeleteSidebar(actor=a, uri=sb, by_ref=True)
    ),
    Operation.CREATE_BLUEPRINT: _apply(
        lambda a, c, sb: cmd.CreateBlueprint(actor=a, clone_from="xcon:AudioRoom@example.com")
    ),
    # for the blueprint cells, the last argument is a blueprint created over CCMP
    Operation.UPDATE_BLUEPRINT: _apply(
        lambda a, c, bp: cmd.UpdateBlueprint(
            actor=a,
            uri=bp,
            patch=ConferenceInfo(
                entity=bp, conference_description=ConferenceDescription(subject="x")
            ),
        )
    ),
    Operation.DELETE_BLUEPRINT: _apply(lambda a, c, bp: cmd.DeleteBlueprint(actor=a, uri=bp)),
}

# The actor must already be a user of the conference for these.
NEEDS_MEMBERSHIP = {Operation.READ_SELF, Operation.UPDATE_SELF, Operation.REMOVE_SELF}


def test_every_operation_has_an_action() -> None:
    assert set(ACTIONS) == set(Operation)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConferenceStore]:
    """One store for all cells (each cell works on its own new conference)."""
    store = open_store(tmp_path_factory.mktemp("authz"))
    for role in Role:
        store.accounts.add(f"tester-{role.value}", role, "pw")
    add_accounts(store)
    yield store
    store.close()


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("operation", list(Operation))
def test_cell(shared: ConferenceStore, role: Role, operation: Operation) -> None:
    store = shared
    tester = f"xcon-userid:tester-{role.value}@example.com"
    conf = store.apply(cmd.CreateConference(actor=ALICE))[0].uri
    store.apply(cmd.AddUser(actor=ALICE, uri=conf, user=User(entity=BOB.user_id)))
    if operation in NEEDS_MEMBERSHIP:
        store.apply(cmd.AddUser(actor=ALICE, uri=conf, user=User(entity=tester)))
    sidebar = ""
    if operation in (Operation.UPDATE_SIDEBAR, Operation.DELETE_SIDEBAR):
        sidebar = store.apply(cmd.CreateSidebar(actor=ALICE, parent=conf, by_ref=True))[0].uri
    if operation in (Operation.UPDATE_BLUEPRINT, Operation.DELETE_BLUEPRINT):
        sidebar = store.apply(
            cmd.CreateBlueprint(actor=ADMIN, clone_from="xcon:VideoRoom@example.com")
        )[0].uri
    actor = Actor(tester, role)
    if operation in MATRIX[role]:
        ACTIONS[operation](store, actor, conf, sidebar)
    else:
        with pytest.raises(CoreError) as exc:
            ACTIONS[operation](store, actor, conf, sidebar)
        assert exc.value.kind is ErrorKind.FORBIDDEN
