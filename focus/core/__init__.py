"""The conference core: one state, one mutation path, persisted in SQLite.

    store = ConferenceStore.open(state_dir, CoreConfig(domain="example.com"))
    changes = store.apply(CreateConference(actor=Actor(user_id, Role.USER)))
    store.subscribe(lambda changes: ...)       # every committed change, in order
    store.get_conference(actor, uri)           # frozen snapshots for readers

See focus/core/README.md for the design.
"""

from focus.core.accounts import Account, AccountDirectory, add_account
from focus.core.changes import (
    Change,
    ConferenceActivated,
    ConferenceCreated,
    ConferenceDeactivated,
    ConferenceDeleted,
    ConferenceEnded,
    ConferenceUpdated,
    Origin,
    UserAdded,
    UserRemoved,
    UserUpdated,
)
from focus.core.commands import (
    AddUser,
    AlterSeries,
    Command,
    CreateConference,
    CreateSidebar,
    DeleteConference,
    DeleteSidebar,
    RemoveUser,
    Tick,
    UpdateConference,
    UpdateSidebar,
    UpdateUser,
    UpdateUsers,
)
from focus.core.core import Core, CoreConfig, conference_id
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor, Operation
from focus.core.state import ConferenceObject, Enforceable, Lifecycle, ObjectKind
from focus.core.store import ConferenceStore
from focus.xcon.model import Role

__all__ = [
    "Account",
    "AccountDirectory",
    "Actor",
    "AddUser",
    "AlterSeries",
    "Change",
    "Command",
    "ConferenceActivated",
    "ConferenceCreated",
    "ConferenceDeactivated",
    "ConferenceDeleted",
    "ConferenceEnded",
    "ConferenceObject",
    "ConferenceStore",
    "ConferenceUpdated",
    "Core",
    "CoreConfig",
    "CoreError",
    "CreateConference",
    "CreateSidebar",
    "DeleteConference",
    "DeleteSidebar",
    "Enforceable",
    "ErrorKind",
    "Lifecycle",
    "ObjectKind",
    "Operation",
    "Origin",
    "RemoveUser",
    "Role",
    "Tick",
    "UpdateConference",
    "UpdateSidebar",
    "UpdateUser",
    "UpdateUsers",
    "UserAdded",
    "UserRemoved",
    "UserUpdated",
    "add_account",
    "conference_id",
]
