"""The pure conference core: commands in, planned changes out; no I/O, no clock.

:class:`Core` holds the committed conference objects.  ``plan(command)`` computes, without
touching that state, everything the command would change (a :class:`Plan`: new objects,
deleted URIs, the next ID serial, the changes); ``commit(plan)`` then installs it.  The
:class:`focus.core.store.ConferenceStore` writes a plan to SQLite between the two, so a
failed write leaves memory untouched (write-ahead).

Handlers are looked up in a table by command type: a command without an entry is a
programming error, not something to guess about.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from focus.core import commands as cmd
from focus.core.autogen import Substitution, check_domain, has_placeholder
from focus.core.changes import (
    BlueprintCreated,
    BlueprintDeleted,
    BlueprintUpdated,
    Change,
    ConferenceActivated,
    ConferenceCreated,
    ConferenceDeactivated,
    ConferenceDeleted,
    ConferenceEnded,
    ConferenceUpdated,
    UserAdded,
    UserRemoved,
    UserUpdated,
)
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor, Operation, require, role_on
from focus.core.schedule import Occurrence, Schedule, ScheduleError, parse_schedule
from focus.core.state import (
    ConferenceObject,
    Enforceable,
    Lifecycle,
    ObjectKind,
    SeriesRange,
    passwords,
)
from focus.xcon.merge import merge, merge_user
from focus.xcon.model import (
    AllowedUsersList,
    ConferenceDescription,
    ConferenceInfo,
    DenyUsersList,
    Endpoint,
    JoinHandling,
    Role,
    SidebarsByVal,
    UriEntry,
    Uris,
    User,
    UserAdmissionPolicy,
    Users,
    effective_role,
)

_CONFERENCES = frozenset({ObjectKind.CONFERENCE})
_WITH_USERS = frozenset(
    {ObjectKind.CONFERENCE, ObjectKind.SIDEBAR_BY_VAL, ObjectKind.SIDEBAR_BY_REF}
)


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """How the core behaves.

    domain: the domain of every XCON-URI and XCON-USERID this system generates, and the
        only one AUTO_GENERATE_X placeholders may name (RFC 6503 s4.3, 427 otherwise).
    default_blueprint: name of the blueprint cloned for a create without confObjID and
        confInfo (RFC 6503 s5.3.4) and underneath direct creation.
    default_enforce: elements a new conference enforces on its linked children unless the
        create command says otherwise (RFC 5239 s7.1 "parent enforceable").
    max_conferences: limit on conference objects (RESOURCES_EXHAUSTED beyond, 511).
    max_sidebars: limit on sidebars of one conference (511 beyond).
    participation_uri: pattern of a conference's SIP URI, where phones dial it, with ``{id}``
        once for :func:`conference_id` of its XCON-URI (e.g. ``sip:conf-{id}@example.com``,
        filled by the app from its SIP profile).  Every conference and sidebar gets it in
        its ``<conf-uris>`` (purpose participation) when it is created.  ``None`` when no
        SIP front end serves the conferences.
    ccmp_service_uri: list every conference's and sidebar's own XCON-URI in its
        ``<service-uris>`` with purpose ccmp (RFC 7082 s3: where CCMP clients manipulate
        it) from its creation on.  The focus application always sets it (with or without
        SIP); off, a bare core leaves ``<service-uris>`` as the documents give them.
    exempt_administrators_from_passwords: let actors whose account role is administrator
        act on password-protected conferences without the conference password.  Off by
        default, as RFC 6503 s5.1 wants the password "in all requests whose target
        conference object is password-protected", whoever sends them (the conference's
        creator and moderators included; 423 without it, 422 when wrong).  The system's own
        work (``Actor.system()``: SIP focus, scheduler) never needs it.
    """

    domain: str = "example.com"
    default_blueprint: str = "AudioRoom"
    default_enforce: frozenset[Enforceable] = frozenset(
        {Enforceable.MAXIMUM_USER_COUNT, Enforceable.CONF_URIS, Enforceable.DENY_USERS_LIST}
    )
    max_conferences: int = 10_000
    max_sidebars: int = 64
    participation_uri: str | None = None
    ccmp_service_uri: bool = False
    exempt_administrators_from_passwords: bool = False

    def __post_init__(self) -> None:
        pattern = self.participation_uri
        if pattern is not None and (pattern.count("{id}") != 1 or ":" not in pattern):
            raise ValueError(
                f"participation_uri {pattern!r} must be a URI with {{id}} exactly once"
            )


def conference_id(xcon_uri: str) -> str:
    """A conference's short id: the local part of its XCON-URI with anything but letters,
    digits, ``_`` and ``-`` made ``-``, so it is safe in a SIP user part and as a media
    server's conference id (RFC 6505 s4.2.1)."""
    local = xcon_uri.partition(":")[2].partition("@")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "-", local) or "conference"


def _same_uri(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _is_ccmp(entry: UriEntry) -> bool:
    return (entry.purpose or "").strip().lower() == "ccmp"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a command changes, computed but not yet committed."""

    upserts: Mapping[str, ConferenceObject]
    deletes: frozenset[str]
    next_serial: int
    now: datetime | None
    changes: tuple[Change, ...]


#: Lifecycle transitions (RFC 5239 s7.3) and the change each one is reported as.
_LIFECYCLE_TRANSITIONS: Mapping[tuple[Lifecycle, Lifecycle], type[Change]] = {
    (Lifecycle.RESERVED, Lifecycle.ACTIVE): ConferenceActivated,
    (Lifecycle.ACTIVE, Lifecycle.RESERVED): ConferenceDeactivated,
    (Lifecycle.ACTIVE, Lifecycle.ENDED): ConferenceEnded,
    (Lifecycle.RESERVED, Lifecycle.ENDED): ConferenceEnded,
    # rescheduled after its end:
    (Lifecycle.ENDED, Lifecycle.RESERVED): ConferenceDeactivated,
    (Lifecycle.ENDED, Lifecycle.ACTIVE): ConferenceActivated,
}


@functools.lru_cache(maxsize=4096)
def _schedule(base: str) -> Schedule:
    return parse_schedule(base)


def _fail(kind: ErrorKind, message: str) -> CoreError:
    return CoreError(kind, message)


# --------------------------------------------------------------------------------------
# Reading the document
# --------------------------------------------------------------------------------------


def _description(info: ConferenceInfo) -> ConferenceDescription:
    return info.conference_description or ConferenceDescription()


def _users(info: ConferenceInfo) -> tuple[User, ...]:
    return info.users.users if info.users is not None else ()


def _user_ids(info: ConferenceInfo) -> set[str]:
    return {u.entity for u in _users(info) if u.entity is not None}


def _targets(targets: AllowedUsersList | DenyUsersList | None) -> set[str]:
    """The URIs an allowed- or deny-users-list names, lower-cased."""
    return {t.uri.strip().lower() for t in targets.targets} if targets is not None else set()


def _roles_of(info: ConferenceInfo, user_id: str | None) -> list[Role | str]:
    """The <roles> of ``user_id`` in ``info`` (extension roles included: effective_role
    gives them no privilege)."""
    user = info.user(user_id) if user_id is not None else None
    return list(user.roles or ()) if user is not None else []


_DESCRIPTION_FIELD = {
    Enforceable.MAXIMUM_USER_COUNT: "maximum_user_count",
    Enforceable.AVAILABLE_MEDIA: "available_media",
    Enforceable.CONF_URIS: "conf_uris",
    Enforceable.CONFERENCE_TIME: "conference_time",
    Enforceable.ALLOW_SIDEBARS: "allow_sidebars",
}
_USERS_FIELD = {
    Enforceable.JOIN_HANDLING: "join_handling",
    Enforceable.USER_ADMISSION_POLICY: "user_admission_policy",
    Enforceable.ALLOWED_USERS_LIST: "allowed_users_list",
    Enforceable.DENY_USERS_LIST: "deny_users_list",
}


def _enforced_value(info: ConferenceInfo, element: Enforceable) -> object:
    # Read through the same tables _with_enforced writes through: one map of element to field.
    if element in _DESCRIPTION_FIELD:
        return getattr(_description(info), _DESCRIPTION_FIELD[element])
    if element in _USERS_FIELD:
        return getattr(info.users or Users(), _USERS_FIELD[element])
    return info.floor_information


def _with_enforced(info: ConferenceInfo, element: Enforceable, value: Any) -> ConferenceInfo:
    if element in _DESCRIPTION_FIELD:
        desc = dataclasses.replace(_description(info), **{_DESCRIPTION_FIELD[element]: value})
        return dataclasses.replace(info, conference_description=desc)
    if element in _USERS_FIELD:
        users = dataclasses.replace(info.users or Users(), **{_USERS_FIELD[element]: value})
        return dataclasses.replace(info, users=users)
    return dataclasses.replace(info, floor_information=value)


def _with_users(info: ConferenceInfo, users: Iterable[User]) -> ConferenceInfo:
    return dataclasses.replace(
        info, users=dataclasses.replace(info.users or Users(), users=tuple(users))
    )


def _clean_user(user: User) -> User:
    """A user as stored: no partial-notification state attribute."""
    return dataclasses.replace(user, state=None) if user.state is not None else user


# --------------------------------------------------------------------------------------
# The transaction: a copy-on-write view over the committed objects
# --------------------------------------------------------------------------------------


class _Tx:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.base = core.objects
        self.over: dict[str, ConferenceObject | None] = {}
        self.serial = core.next_serial
        self.now = core.now
        self.events: list[tuple[type[Change], str, dict[str, str]]] = []

    def get(self, uri: str) -> ConferenceObject | None:
        if uri in self.over:
            return self.over[uri]
        return self.base.get(uri)

    def all(self) -> list[ConferenceObject]:
        merged = {**self.base, **self.over}
        return [o for o in merged.values() if o is not None]

    def children(self, uri: str) -> list[ConferenceObject]:
        return sorted((o for o in self.all() if o.parent == uri and o.linked), key=lambda o: o.uri)

    def fresh(self, prefix: str) -> str:
        token = f"{prefix}{self.serial}"
        self.serial += 1
        return token

    def write(
        self, obj: ConferenceObject, event: type[Change] | None, **extra: str
    ) -> ConferenceObject:
        """Record ``obj`` as the new state; the first write in this tx bumps the version.
        ``event`` None: already reported by an earlier event of this command."""
        original = self.base.get(obj.uri)
        version = 1 if original is None else original.version + 1
        obj = dataclasses.replace(obj, version=version).with_info(obj.info)
        self.over[obj.uri] = obj
        if event is not None:
            self._event(event, obj.uri, extra)
        return obj

    def reported(self, uri: str) -> bool:
        """Whether this command already has an event for ``uri``."""
        return any(u == uri for _, u, _ in self.events)

    def delete(self, uri: str, event: type[Change] = ConferenceDeleted) -> None:
        self.over[uri] = None
        self._event(event, uri, {})

    def _event(self, event: type[Change], uri: str, extra: dict[str, str]) -> None:
        if (event, uri, extra) in self.events:
            return  # already reported for this object in this command
        self.events.append((event, uri, extra))

    def plan(self) -> Plan:
        changes: list[Change] = []
        for event, uri, extra in self.events:
            before = self.base.get(uri)
            after = self.over.get(uri, before)
            if after is None:
                version = (before.version + 1) if before is not None else 0
            else:
                version = after.version
            # ``extra`` names the user of a user event (UserAdded(user=...)); the origin is
            # the store's to set.
            fields: dict[str, Any] = dict(extra)
            changes.append(event(uri=uri, version=version, before=before, after=after, **fields))
        upserts = {u: o for u, o in self.over.items() if o is not None}
        deletes = frozenset(u for u, o in self.over.items() if o is None and u in self.base)
        return Plan(upserts, deletes, self.serial, self.now, tuple(changes))


# --------------------------------------------------------------------------------------
# The core
# --------------------------------------------------------------------------------------


class Core:
    """The committed conference objects and the rules for changing them."""

    def __init__(
        self,
        config: CoreConfig,
        objects: Iterable[ConferenceObject] = (),
        *,
        next_serial: int = 1,
        known_user: Callable[[str], bool] = lambda _uid: False,
    ) -> None:
        self.config = config
        self.objects: dict[str, ConferenceObject] = {o.uri: o for o in objects}
        self.next_serial = next_serial
        self.now: datetime | None = None
        self._known_user = known_user
        self._handlers: Mapping[type[Any], Callable[[_Tx, Any], None]] = {
            cmd.CreateConference: self._create_conference,
            cmd.UpdateConference: self._update_conference,
            cmd.DeleteConference: self._delete_conference,
            cmd.AlterSeries: self._alter_series,
            cmd.UpdateUsers: self._update_users,
            cmd.AddUser: self._add_user,
            cmd.UpdateUser: self._update_user,
            cmd.RemoveUser: self._remove_user,
            cmd.CreateSidebar: self._create_sidebar,
            cmd.UpdateSidebar: self._update_sidebar,
            cmd.DeleteSidebar: self._delete_sidebar,
            cmd.CreateBlueprint: self._create_blueprint,
            cmd.UpdateBlueprint: self._update_blueprint,
            cmd.DeleteBlueprint: self._delete_blueprint,
            cmd.Tick: self._tick,
        }

    # ---- planning and committing ----------------------------------------------------

    def plan(self, command: cmd.Command) -> Plan:
        """Everything ``command`` changes; CoreError if it is refused.  State untouched."""
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {type(command).__name__}")
        actor = getattr(command, "actor", None)
        if actor is not None:
            self._check_actor(actor)
        tx = _Tx(self)
        handler(tx, command)
        self._refresh_sidebar_lists(tx)
        return tx.plan()

    def commit(self, plan: Plan) -> None:
        """Install a plan computed by :meth:`plan` against the current state."""
        for uri in plan.deletes:
            self.objects.pop(uri, None)
        self.objects.update(plan.upserts)
        self.next_serial = plan.next_serial
        self.now = plan.now

    # ---- reads ----------------------------------------------------------------------

    def get(self, uri: str) -> ConferenceObject | None:
        """The object ``uri`` without any authorization (for trusted in-process callers)."""
        return self.objects.get(uri)

    def find(self, uri: str) -> ConferenceObject | None:
        """The conference or sidebar known by ``uri``: its XCON-URI or a <conf-uris> entry
        (e.g. the SIP URI a participant dials, RFC 4579 s5).  No authorization."""
        direct = self.objects.get(uri)
        if direct is not None and direct.kind is not ObjectKind.BLUEPRINT:
            return direct
        wanted = uri.strip().lower()
        for obj in sorted(self.objects.values(), key=lambda o: o.uri):
            if obj.kind is ObjectKind.BLUEPRINT:
                continue
            conf_uris = _description(obj.info).conf_uris
            if conf_uris is not None and any(
                e.uri.strip().lower() == wanted for e in conf_uris.entries
            ):
                return obj
        return None

    def list_blueprints(self, actor: Actor) -> tuple[ConferenceObject, ...]:
        """blueprintsRequest (RFC 6503 s5.3.1)."""
        self._check_actor(actor)
        require(actor.role, Operation.LIST_BLUEPRINTS)
        found = (o for o in self.objects.values() if o.kind is ObjectKind.BLUEPRINT)
        return tuple(sorted(found, key=lambda o: o.name or o.uri))

    def get_blueprint(self, actor: Actor, uri: str) -> ConferenceObject:
        """blueprintRequest/retrieve (RFC 6503 s5.3.3)."""
        self._check_actor(actor)
        obj = self._find(self.objects.get(uri), uri, frozenset({ObjectKind.BLUEPRINT}))
        require(actor.role, Operation.READ_BLUEPRINT, uri)
        return obj

    def list_conferences(self, actor: Actor) -> tuple[ConferenceObject, ...]:
        """confsRequest (RFC 6503 s5.3.2): active and registered conferences."""
        self._check_actor(actor)
        require(actor.role, Operation.LIST_CONFERENCES)
        found = (o for o in self.objects.values() if o.kind is ObjectKind.CONFERENCE)
        return tuple(sorted(found, key=lambda o: o.uri))

    def get_conference(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject:
        """confRequest/retrieve (RFC 6503 s5.3.4)."""
        self._check_actor(actor)
        obj = self._find(self.objects.get(uri), uri, _CONFERENCES)
        self._authorize(actor, obj, Operation.READ_CONFERENCE, password)
        return obj

    def get_users(self, actor: Actor, uri: str, *, password: str | None = None) -> ConferenceObject:
        """usersRequest/retrieve (RFC 6503 s5.3.5): the object; its ``info.users`` is it."""
        self._check_actor(actor)
        obj = self._find(self.objects.get(uri), uri, _WITH_USERS)
        self._authorize(actor, obj, Operation.READ_USERS, password)
        return obj

    def get_user(
        self, actor: Actor, uri: str, entity: str | None = None, *, password: str | None = None
    ) -> User:
        """userRequest/retrieve (RFC 6503 s5.3.6); ``entity`` None means the actor."""
        self._check_actor(actor)
        obj = self._find(self.objects.get(uri), uri, _WITH_USERS)
        target = self._target(actor, entity)
        own = target == actor.user_id
        self._authorize(actor, obj, Operation.READ_SELF if own else Operation.READ_USER, password)
        user = obj.info.user(target)
        if user is None:
            raise _fail(ErrorKind.USER_NOT_FOUND, f"{target} is not a user of {uri}")
        return user

    def get_sidebars(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject:
        """sidebarsByVal/sidebarsByRef retrieve (RFC 6503 s5.3.7, s5.3.9): the parent
        object, whose ``info.sidebars_by_val`` / ``info.sidebars_by_ref`` list them."""
        self._check_actor(actor)
        obj = self._find(self.objects.get(uri), uri, _CONFERENCES)
        self._authorize(actor, obj, Operation.READ_SIDEBARS, password)
        return obj

    def get_sidebar(
        self, actor: Actor, uri: str, *, by_ref: bool, password: str | None = None
    ) -> ConferenceObject:
        """sidebarByVal/sidebarByRef retrieve (RFC 6503 s5.3.8, s5.3.10)."""
        self._check_actor(actor)
        kind = ObjectKind.SIDEBAR_BY_REF if by_ref else ObjectKind.SIDEBAR_BY_VAL
        obj = self._find(self.objects.get(uri), uri, frozenset({kind}))
        self._authorize(actor, obj, Operation.READ_SIDEBARS, password)
        return obj

    def role_on(self, actor: Actor, obj: ConferenceObject) -> Role:
        """The role ``actor`` acts with on ``obj``: her account's, her <roles> there,
        moderator of what she created; for a sidebar also her standing in its parent."""
        return self._role(None, actor, obj)

    def next_deadline(self, now: datetime) -> datetime | None:
        """When a Tick is next needed (a reservation starts or an occurrence ends)."""
        if self.now is not None and now < self.now:
            now = self.now  # as Tick does: a clock stepping back must not cause a busy loop
        best: datetime | None = None
        tx = _Tx(self)
        for obj in self.objects.values():
            if obj.kind is not ObjectKind.CONFERENCE or not self._is_scheduled(obj):
                continue
            wanted, occurrence = self._wanted_lifecycle(tx, obj, now)
            if wanted is not obj.lifecycle:
                return now
            if occurrence is None:
                continue
            moment = occurrence.start if occurrence.start > now else occurrence.end
            if best is None or moment < best:
                best = moment
        return best

    # ---- helpers ---------------------------------------------------------------------

    def _find(
        self, obj: ConferenceObject | None, uri: str, kinds: frozenset[ObjectKind]
    ) -> ConferenceObject:
        if obj is None or obj.kind not in kinds:
            what = " or ".join(sorted(k.value for k in kinds))
            raise _fail(ErrorKind.NOT_FOUND, f"no {what} {uri!r}")
        return obj

    def _role(self, tx_or_none: _Tx | None, actor: Actor, obj: ConferenceObject) -> Role:
        roles = _roles_of(obj.info, actor.user_id)
        owner = obj.owner
        if obj.kind.is_sidebar and obj.parent is not None:
            parent = tx_or_none.get(obj.parent) if tx_or_none else self.objects.get(obj.parent)
            if parent is not None:
                roles += _roles_of(parent.info, actor.user_id)
                if parent.owner is not None and parent.owner == actor.user_id:
                    roles.append(Role.MODERATOR)
        return role_on(actor, owner=owner, conference_roles=roles)

    def _authorize(
        self,
        actor: Actor,
        obj: ConferenceObject,
        operation: Operation,
        password: str | None,
        tx: _Tx | None = None,
    ) -> Role:
        """``actor``'s role on ``obj`` if it allows ``operation``, and the conference
        password given if ``obj`` has one: RFC 6503 s5.1 wants it "in all requests whose
        target conference object is password-protected", from everyone, its creator and
        moderators included.  Exempt: the system's own work (``Actor.internal``) and, only
        when ``CoreConfig.exempt_administrators_from_passwords`` says so, administrators."""
        role = self._role(tx, actor, obj)
        require(role, operation, obj.uri)
        exempt = actor.internal or (
            self.config.exempt_administrators_from_passwords and actor.role is Role.ADMINISTRATOR
        )
        if not exempt:
            expected = passwords(obj.info)
            if expected:
                if password is None:
                    raise _fail(
                        ErrorKind.PASSWORD_REQUIRED, f"{obj.uri} is protected by a password"
                    )
                given = password.encode("utf-8")
                if not any(hmac.compare_digest(given, p.encode("utf-8")) for p in expected):
                    raise _fail(ErrorKind.WRONG_PASSWORD, f"wrong password for {obj.uri}")
        return role

    @staticmethod
    def _target(actor: Actor, entity: str | None) -> str:
        if entity is not None:
            return entity
        if actor.user_id is None:
            raise _fail(ErrorKind.BAD_REQUEST, "no user given and the requester has no XCON-USERID")
        return actor.user_id

    @staticmethod
    def _check_version(obj: ConferenceObject, expected: int | None) -> None:
        if expected is not None and expected != obj.version:
            raise _fail(
                ErrorKind.CONFLICT_VERSION,
                f"{obj.uri} is at version {obj.version}, the change was made on {expected}",
            )

    def _new_uri(self, tx: _Tx, entity_hint: str | None = None) -> str:
        if entity_hint is not None and has_placeholder(entity_hint):
            check_domain(entity_hint, self.config.domain)
        while True:  # an operator's blueprint file may be called conf7.xml
            uri = f"xcon:{tx.fresh('conf')}@{self.config.domain}"
            if tx.get(uri) is None:
                return uri

    def _substitute(self, tx: _Tx, value: Any) -> Any:
        return Substitution(self.config.domain, lambda: tx.fresh("gen")).apply(value)

    def _default_blueprint(self) -> ConferenceObject:
        for obj in self.objects.values():
            if obj.kind is ObjectKind.BLUEPRINT and obj.name == self.config.default_blueprint:
                return obj
        raise _fail(
            ErrorKind.NOT_FOUND,
            f"the default blueprint {self.config.default_blueprint!r} is missing",
        )

    def _check_actor(self, actor: Actor) -> None:
        """421 when the requester names an XCON-USERID this system does not know."""
        if actor.user_id is not None and not (
            self._known_user(actor.user_id)
            or any(actor.user_id in _user_ids(o.info) for o in self.objects.values())
        ):
            raise _fail(ErrorKind.INVALID_CONF_USER_ID, f"{actor.user_id} is not known here")

    def _known(self, tx: _Tx, user_id: str) -> bool:
        if self._known_user(user_id):
            return True
        return any(user_id in _user_ids(o.info) for o in tx.all())

    # ---- validation ------------------------------------------------------------------

    def _validate(self, info: ConferenceInfo) -> None:
        desc = _description(info)
        count = desc.maximum_user_count
        if count is not None and count < 1:
            raise _fail(ErrorKind.INVALID_CONF_INFO, f"maximum-user-count {count} is below 1")
        users = _users(info)
        if count is not None and len(users) > count:
            raise _fail(
                ErrorKind.RESOURCES_EXHAUSTED,
                f"{len(users)} users exceed the maximum-user-count {count}",
            )
        seen: set[str] = set()
        for user in users:
            if user.entity is None:
                raise _fail(ErrorKind.INVALID_CONF_INFO, "a user has no entity")
            if user.entity in seen:
                raise _fail(ErrorKind.INVALID_CONF_INFO, f"user {user.entity} appears twice")
            seen.add(user.entity)
        if desc.available_media is not None:
            labels = [m.label for m in desc.available_media.entries]
            if len(labels) != len(set(labels)):
                raise _fail(
                    ErrorKind.INVALID_CONF_INFO, "two available-media entries share a label"
                )
        for entry in desc.conference_time.entries if desc.conference_time else ():
            try:
                _schedule(entry.base)
            except ScheduleError as exc:
                raise _fail(ErrorKind.INVALID_CONF_INFO, str(exc)) from exc

    def _check_enforced(self, tx: _Tx, obj: ConferenceObject, new: ConferenceInfo) -> None:
        if not obj.linked or obj.parent is None:
            return
        parent = tx.get(obj.parent)
        if parent is None:
            return
        for element in sorted(parent.enforce):
            if self._enforced(obj.uri, new, element) != self._enforced(obj.uri, obj.info, element):
                raise _fail(
                    ErrorKind.PARENT_ENFORCED,
                    f"{element.value} of {obj.uri} is enforced by its parent {parent.uri}",
                )

    def _fill_user_ids(self, tx: _Tx, info: ConferenceInfo) -> ConferenceInfo:
        if info.users is None or all(u.entity is not None for u in info.users.users):
            return info
        users = [
            u
            if u.entity is not None
            else dataclasses.replace(
                u, entity=f"xcon-userid:{tx.fresh('user')}@{self.config.domain}"
            )
            for u in info.users.users
        ]
        return _with_users(info, users)

    # ---- lifecycle -------------------------------------------------------------------

    @staticmethod
    def _is_scheduled(obj: ConferenceObject) -> bool:
        time = _description(obj.info).conference_time
        return time is not None and bool(time.entries)

    def _occurrences(self, tx: _Tx, obj: ConferenceObject, now: datetime) -> list[Occurrence]:
        """The occurrences of ``obj`` still running or to come, in order."""
        time = _description(obj.info).conference_time
        if time is None:
            return []
        exclusions = [c.series_range for c in tx.children(obj.uri) if c.series_range is not None]
        found: list[Occurrence] = []
        for entry in time.entries:
            schedule = _schedule(entry.base)
            after = now
            for _ in range(64):  # skip occurrences given away to altered sub-ranges
                nxt = schedule.current_or_next(after)
                if nxt is None:
                    break
                own = obj.series_range
                if own is not None and not own.contains(nxt.start):
                    if nxt.start >= own.end:
                        break
                    after = nxt.end
                    continue
                if any(r.contains(nxt.start) for r in exclusions):
                    after = nxt.end
                    continue
                found.append(nxt)
                break
        return sorted(found, key=lambda o: o.start)

    def _wanted_lifecycle(
        self, tx: _Tx, obj: ConferenceObject, now: datetime
    ) -> tuple[Lifecycle, Occurrence | None]:
        if not self._is_scheduled(obj):
            return Lifecycle.ACTIVE, None
        occurrences = self._occurrences(tx, obj, now)
        if not occurrences:
            return Lifecycle.ENDED, None
        first = occurrences[0]
        return (Lifecycle.ACTIVE if first.contains(now) else Lifecycle.RESERVED), first

    def _initial_lifecycle(self, tx: _Tx, obj: ConferenceObject) -> Lifecycle:
        if not self._is_scheduled(obj):
            return Lifecycle.ACTIVE
        if tx.now is None:
            return Lifecycle.RESERVED  # the first Tick decides
        return self._wanted_lifecycle(tx, obj, tx.now)[0]

    # ---- sidebars bookkeeping -----------------------------------------------------------

    def _refresh_sidebar_lists(self, tx: _Tx) -> None:
        """Keep each parent's <sidebars-by-val>/<sidebars-by-ref> equal to its sidebars."""
        parents = set()
        for uri, obj in tx.over.items():
            old = tx.base.get(uri)
            for candidate in (obj, old):
                if candidate is not None and candidate.kind.is_sidebar and candidate.parent:
                    parents.add(candidate.parent)
        for parent_uri in sorted(parents):
            parent = tx.get(parent_uri)
            if parent is None:
                continue
            sidebars = [c for c in tx.children(parent_uri) if c.kind.is_sidebar]
            by_val = [c.info for c in sidebars if c.kind is ObjectKind.SIDEBAR_BY_VAL]
            by_ref = [
                UriEntry(uri=c.uri, display_text=_description(c.info).display_text)
                for c in sidebars
                if c.kind is ObjectKind.SIDEBAR_BY_REF
            ]
            info = dataclasses.replace(
                parent.info,
                sidebars_by_val=SidebarsByVal(entries=tuple(by_val)) if by_val else None,
                sidebars_by_ref=Uris(entries=tuple(by_ref)) if by_ref else None,
            )
            if info != parent.info:
                event = None if tx.reported(parent_uri) else ConferenceUpdated
                tx.write(dataclasses.replace(parent, info=info), event)

    # ---- the URIs the system lists for each conference and sidebar -------------------

    def participation_uri(self, uri: str) -> str | None:
        """The SIP URI phones dial to join the conference ``uri`` (``None`` without SIP)."""
        pattern = self.config.participation_uri
        return None if pattern is None else pattern.replace("{id}", conference_id(uri))

    def _with_own_uris(
        self, info: ConferenceInfo, uri: str, source: str | None = None
    ) -> ConferenceInfo:
        """``info`` listing where the object ``uri`` is reached, as configured: its SIP URI
        in ``<conf-uris>`` (purpose participation) and its XCON-URI in ``<service-uris>``
        (purpose ccmp, RFC 7082 s3).  The entries of ``source`` (the conference the
        document was copied from: a clone's or a sidebar's original) are dropped: they
        name another conference."""
        desc = _description(info)
        service_uris = desc.service_uris
        if self.config.ccmp_service_uri:
            service = [
                e
                for e in (service_uris.entries if service_uris else ())
                if not (source is not None and _is_ccmp(e) and _same_uri(e.uri, source))
            ]
            if not any(_is_ccmp(e) and _same_uri(e.uri, uri) for e in service):
                service.append(UriEntry(uri=uri, purpose="ccmp"))
            service_uris = dataclasses.replace(service_uris or Uris(), entries=tuple(service))
        conf_uris = desc.conf_uris
        sip = self.participation_uri(uri)
        if sip is not None:
            old = self.participation_uri(source) if source is not None else None
            entries = [
                e
                for e in (conf_uris.entries if conf_uris else ())
                if old is None or not _same_uri(e.uri, old)
            ]
            if not any(_same_uri(e.uri, sip) for e in entries):
                entries.append(UriEntry(uri=sip, purpose="participation"))
            conf_uris = dataclasses.replace(conf_uris or Uris(), entries=tuple(entries))
        desc = dataclasses.replace(desc, conf_uris=conf_uris, service_uris=service_uris)
        return dataclasses.replace(info, conference_description=desc)

    def _enforced(self, uri: str, info: ConferenceInfo, element: Enforceable) -> object:
        """The value of ``element`` the object ``uri`` imposes on (or receives from) a
        linked parent.  Its own SIP URI is not part of an enforced ``<conf-uris>``: every
        conference keeps its own, a sidebar is not reached at its parent's."""
        value = _enforced_value(info, element)
        sip = self.participation_uri(uri)
        if element is not Enforceable.CONF_URIS or sip is None or not isinstance(value, Uris):
            return value
        entries = tuple(e for e in value.entries if not _same_uri(e.uri, sip))
        if not entries and value.state is None:
            return None
        return dataclasses.replace(value, entries=entries)

    def _enforce(
        self, uri: str, info: ConferenceInfo, element: Enforceable, value: object
    ) -> ConferenceInfo:
        """``info`` of the object ``uri`` with a parent's enforced ``value`` (its own SIP
        URI kept)."""
        info = _with_enforced(info, element, value)
        if element is Enforceable.CONF_URIS and self.participation_uri(uri) is not None:
            info = self._with_own_uris(info, uri)
        return info

    def _system_parts(self, obj: ConferenceObject, info: ConferenceInfo) -> ConferenceInfo:
        """``info`` with what only the system manages put back from ``obj``."""
        desc = dataclasses.replace(
            _description(info),
            cloning_parent=_description(obj.info).cloning_parent,
            sidebar_parent=_description(obj.info).sidebar_parent,
        )
        return dataclasses.replace(
            info,
            entity=obj.uri,
            state=None,
            conference_description=desc,
            sidebars_by_val=obj.info.sidebars_by_val,
            sidebars_by_ref=obj.info.sidebars_by_ref,
        )

    # ---- the document changes of one object, with per-user events --------------------

    def _write_document(
        self, tx: _Tx, obj: ConferenceObject, new_info: ConferenceInfo
    ) -> ConferenceObject:
        """Commit ``new_info`` for ``obj`` with user-level events, cascades and
        propagation of enforced elements to linked children."""
        before_users = {u.entity: u for u in _users(obj.info) if u.entity is not None}
        after_users = {u.entity: u for u in _users(new_info) if u.entity is not None}
        updated = dataclasses.replace(obj, info=new_info)
        wrote = False
        for entity in before_users:
            if entity not in after_users:
                updated = tx.write(updated, UserRemoved, user=entity)
                wrote = True
                self._cascade_removal(tx, obj.uri, entity)
        for entity, user in after_users.items():
            if entity not in before_users:
                updated = tx.write(updated, UserAdded, user=entity)
                wrote = True
            elif user != before_users[entity]:
                updated = tx.write(updated, UserUpdated, user=entity)
                wrote = True
        others_changed = dataclasses.replace(new_info, users=None) != dataclasses.replace(
            obj.info, users=None
        ) or (
            dataclasses.replace(new_info.users or Users(), users=())
            != dataclasses.replace(obj.info.users or Users(), users=())
        )
        if others_changed or not wrote:
            updated = tx.write(updated, ConferenceUpdated)
        self._propagate(tx, obj, updated)
        if _description(new_info).conference_time != _description(obj.info).conference_time:
            self._settle(tx, updated, tx.now)  # a new schedule may start or stop it now
        return updated

    def _cascade_removal(self, tx: _Tx, uri: str, entity: str) -> None:
        for child in tx.children(uri):
            if child.kind.is_sidebar and child.info.user(entity) is not None:
                remaining = [u for u in _users(child.info) if u.entity != entity]
                tx.write(
                    child.with_info(_with_users(child.info, remaining)), UserRemoved, user=entity
                )

    def _propagate(self, tx: _Tx, old: ConferenceObject, new: ConferenceObject) -> None:
        for element in sorted(new.enforce):
            value = self._enforced(new.uri, new.info, element)
            if value == self._enforced(old.uri, old.info, element):
                continue
            for child in tx.children(new.uri):
                current = tx.get(child.uri)
                assert current is not None
                info = self._enforce(current.uri, current.info, element, value)
                if info != current.info:
                    tx.write(dataclasses.replace(current, info=info), ConferenceUpdated)

    # ---- handlers --------------------------------------------------------------------

    def _create_conference(self, tx: _Tx, c: cmd.CreateConference) -> None:
        require(c.actor.role, Operation.CREATE_CONFERENCE)
        if c.clone_from is not None and c.info is not None:
            raise _fail(ErrorKind.BAD_REQUEST, "give either a conference to clone or a confInfo")
        if sum(o.kind is ObjectKind.CONFERENCE for o in tx.all()) >= self.config.max_conferences:
            raise _fail(
                ErrorKind.RESOURCES_EXHAUSTED, "the system holds its maximum of conferences"
            )
        parent: ConferenceObject | None = None
        if c.clone_from is not None:
            source = self._find(
                tx.get(c.clone_from),
                c.clone_from,
                frozenset({ObjectKind.BLUEPRINT, ObjectKind.CONFERENCE}),
            )
            if source.kind is ObjectKind.BLUEPRINT:
                require(c.actor.role, Operation.READ_BLUEPRINT, source.uri)
                if c.linked:
                    raise _fail(ErrorKind.BAD_REQUEST, "a blueprint cannot be a linked parent")
            else:
                self._authorize(c.actor, source, Operation.READ_CONFERENCE, c.password, tx)
            info = source.info
            if c.linked:
                parent = source
            if source.lifecycle is Lifecycle.ENDED and c.linked:
                raise _fail(ErrorKind.CONFLICT, f"{source.uri} has ended")
        elif c.info is not None:
            info = self._from_default_blueprint(self._substitute(tx, c.info))
        else:
            info = self._default_blueprint().info
        uri = self._new_uri(tx, c.info.entity if c.info is not None else None)
        info = self._new_document(
            tx, uri, info, kind=ObjectKind.CONFERENCE, source=c.clone_from, parent=parent
        )
        obj = ConferenceObject(
            uri=uri,
            kind=ObjectKind.CONFERENCE,
            version=0,
            info=info,
            parent=c.clone_from,
            linked=parent is not None,
            enforce=self.config.default_enforce if c.enforce is None else c.enforce,
            owner=c.actor.user_id,
            ad_hoc=c.ad_hoc,
        )
        obj = dataclasses.replace(obj, lifecycle=self._initial_lifecycle(tx, obj))
        tx.write(obj, ConferenceCreated)

    def _from_default_blueprint(self, doc: ConferenceInfo) -> ConferenceInfo:
        """Direct creation is implicit cloning (RFC 5239 s7.1, RFC 6503 s5.3.4): the default
        blueprint's document with the client's description applied as by an update.  One
        exception: a given <available-media> is the media set the client wants, not media
        to add to the blueprint's (RFC 6504 s5.3 asks for audio under a fresh label), so
        it replaces the blueprint's, and blueprint floors for media left out go with them."""
        # Merging folds repeated keys together: refuse them before they vanish.
        entities = [u.entity for u in _users(doc) if u.entity is not None]
        if len(entities) != len(set(entities)):
            raise _fail(ErrorKind.INVALID_CONF_INFO, "a user appears twice in the confInfo")
        wanted = _description(doc).available_media
        if wanted is not None and len({m.label for m in wanted.entries}) != len(wanted.entries):
            raise _fail(ErrorKind.INVALID_CONF_INFO, "two available-media entries share a label")
        base = self._default_blueprint().info
        if wanted is not None:
            labels = {m.label for m in wanted.entries}
            base_desc = dataclasses.replace(_description(base), available_media=None)
            floors = base.floor_information
            policy = floors.conference_floor_policy if floors is not None else None
            if floors is not None and policy is not None:
                kept = tuple(f for f in policy.floors if set(f.media_labels) <= labels)
                floors = dataclasses.replace(
                    floors,
                    conference_floor_policy=(
                        dataclasses.replace(policy, floors=kept) if kept else None
                    ),
                )
            base = dataclasses.replace(
                base, conference_description=base_desc, floor_information=floors
            )
        return merge(base, dataclasses.replace(doc, entity=base.entity))

    def _new_document(
        self,
        tx: _Tx,
        uri: str,
        info: ConferenceInfo,
        *,
        kind: ObjectKind,
        source: str | None,
        parent: ConferenceObject | None,
    ) -> ConferenceInfo:
        """The document of the new conference or sidebar ``uri``, made from ``info`` (a copy
        of ``source``'s, a blueprint's or the client's): named ``uri``, its cloning or sidebar
        parent set, no state and no sidebars of its own; <conf-uris> entries naming ``source``
        renamed; the linked ``parent``'s enforced elements imposed (RFC 5239 s7.1: a linked
        child starts as its parent says); its own SIP and CCMP URIs listed; users stored
        clean, each with an XCON-USERID.  Validated."""
        desc = dataclasses.replace(
            _description(info),
            cloning_parent=parent.uri if parent is not None and not kind.is_sidebar else None,
            sidebar_parent=parent.uri if parent is not None and kind.is_sidebar else None,
            conf_uris=self._clone_conf_uris(_description(info).conf_uris, source, uri),
        )
        info = dataclasses.replace(
            info,
            entity=uri,
            state=None,
            conference_description=desc,
            sidebars_by_ref=None,
            sidebars_by_val=None,
        )
        if parent is not None:
            for element in sorted(parent.enforce):
                value = self._enforced(parent.uri, parent.info, element)
                info = self._enforce(uri, info, element, value)
        info = self._with_own_uris(info, uri, source)
        info = self._fill_user_ids(tx, _with_users(info, map(_clean_user, _users(info))))
        self._validate(info)
        return info

    @staticmethod
    def _clone_conf_uris(uris: Uris | None, source: str | None, uri: str) -> Uris | None:
        if uris is None or source is None:
            return uris
        entries = tuple(
            dataclasses.replace(e, uri=uri) if e.uri.strip() == source else e for e in uris.entries
        )
        return dataclasses.replace(uris, entries=entries)

    def _patch_checks(self, patch: ConferenceInfo) -> None:
        if patch.sidebars_by_ref is not None or patch.sidebars_by_val is not None:
            raise _fail(ErrorKind.BAD_REQUEST, "sidebars are changed with the sidebar operations")

    def _update_object(
        self,
        tx: _Tx,
        actor: Actor,
        obj: ConferenceObject,
        *,
        patch: ConferenceInfo,
        expected_version: int | None,
        password: str | None,
        operation: Operation,
    ) -> None:
        self._authorize(actor, obj, operation, password, tx)
        self._check_version(obj, expected_version)
        self._patch_checks(patch)
        patch = self._substitute(tx, patch)
        merged = self._system_parts(
            obj, merge(obj.info, dataclasses.replace(patch, entity=obj.uri))
        )
        merged = self._fill_user_ids(tx, _with_users(merged, map(_clean_user, _users(merged))))
        self._validate(merged)
        self._check_enforced(tx, obj, merged)
        self._write_document(tx, obj, merged)

    def _update_conference(self, tx: _Tx, c: cmd.UpdateConference) -> None:
        obj = self._find(tx.get(c.uri), c.uri, _CONFERENCES)
        self._update_object(
            tx,
            c.actor,
            obj,
            patch=c.patch,
            expected_version=c.expected_version,
            password=c.password,
            operation=Operation.UPDATE_CONFERENCE,
        )

    def _delete_conference(self, tx: _Tx, c: cmd.DeleteConference) -> None:
        obj = tx.get(c.uri)
        if obj is not None and obj.kind is ObjectKind.BLUEPRINT:
            raise _fail(ErrorKind.OPERATION_NOT_ALLOWED, f"{c.uri} is a blueprint")
        obj = self._find(obj, c.uri, _CONFERENCES)
        self._authorize(c.actor, obj, Operation.DELETE_CONFERENCE, c.password, tx)
        dependants = tx.children(c.uri)
        if dependants:
            raise _fail(
                ErrorKind.DELETE_PARENT_FAILED,
                f"{c.uri} is the parent of {', '.join(d.uri for d in dependants)}",
            )
        tx.delete(c.uri)

    def _alter_series(self, tx: _Tx, c: cmd.AlterSeries) -> None:
        obj = self._find(tx.get(c.uri), c.uri, _CONFERENCES)
        self._authorize(c.actor, obj, Operation.UPDATE_CONFERENCE, c.password, tx)
        if not (c.start.tzinfo and c.end.tzinfo) or c.start >= c.end:
            raise _fail(ErrorKind.BAD_REQUEST, "the range needs aware times with start < end")
        time = _description(obj.info).conference_time
        if time is None or not any(_schedule(e.base).recurring for e in time.entries):
            raise _fail(ErrorKind.CONFLICT, f"{c.uri} is not a recurring reservation")
        new_range = SeriesRange(start=c.start.astimezone(UTC), end=c.end.astimezone(UTC))
        for child in tx.children(c.uri):
            r = child.series_range
            if r is not None and r.start < new_range.end and new_range.start < r.end:
                raise _fail(ErrorKind.CONFLICT, f"the range overlaps {child.uri}'s")
        self._patch_checks(c.patch)
        uri = self._new_uri(tx)
        patch = self._substitute(tx, dataclasses.replace(c.patch, entity=uri))
        base = dataclasses.replace(obj.info, sidebars_by_ref=None, sidebars_by_val=None)
        info = merge(base, patch)
        desc = dataclasses.replace(_description(info), cloning_parent=obj.uri, sidebar_parent=None)
        info = dataclasses.replace(info, entity=uri, state=None, conference_description=desc)
        self._validate(info)
        child = ConferenceObject(
            uri=uri,
            kind=ObjectKind.CONFERENCE,
            version=0,
            info=info,
            parent=obj.uri,
            linked=True,
            enforce=obj.enforce,
            owner=c.actor.user_id or obj.owner,
            series_range=new_range,
        )
        self._check_enforced(tx, dataclasses.replace(child, info=obj.info), info)
        child = dataclasses.replace(child, lifecycle=self._initial_lifecycle(tx, child))
        tx.write(child, ConferenceCreated)
        if tx.now is not None:
            self._settle(tx, obj, tx.now)

    def _update_users(self, tx: _Tx, c: cmd.UpdateUsers) -> None:
        obj = self._find(tx.get(c.uri), c.uri, _WITH_USERS)
        patch = ConferenceInfo(entity=obj.uri, users=c.patch)
        self._update_object(
            tx,
            c.actor,
            obj,
            patch=patch,
            expected_version=c.expected_version,
            password=c.password,
            operation=Operation.UPDATE_USERS,
        )

    def _add_user(self, tx: _Tx, c: cmd.AddUser) -> None:
        obj = self._find(tx.get(c.uri), c.uri, _WITH_USERS)
        actor = self._anonymous_joiner(obj, c.user) if c.actor.anonymous else c.actor
        user = c.user or User(entity=self._target(actor, None))
        generated = user.entity is None or has_placeholder(user.entity)
        if user.entity is not None and has_placeholder(user.entity):
            check_domain(user.entity, self.config.domain)
        own = (user.entity == actor.user_id and not generated) or (
            generated and actor.user_id is None
        )
        role = self._authorize(
            actor, obj, Operation.ADD_SELF if own else Operation.ADD_USER, c.password, tx
        )
        if obj.lifecycle is Lifecycle.ENDED:
            raise _fail(ErrorKind.CONFLICT, f"{obj.uri} has ended")
        users = obj.info.users or Users()
        if (own and role.rank < Role.MODERATOR.rank) and (
            users.join_handling == JoinHandling.BLOCK
            or (obj.info.conference_state is not None and obj.info.conference_state.locked)
        ):
            raise _fail(ErrorKind.FORBIDDEN, f"{obj.uri} does not admit users now")
        if generated:
            # Never hand an unauthenticated client the XCON-USERID of whoever used its
            # contact URI before: that would be someone else's identity.
            recovered = None if c.actor.anonymous else self._recover_user_id(tx, user)
            entity = recovered or f"xcon-userid:{tx.fresh('user')}@{self.config.domain}"
            user = self._substitute(tx, dataclasses.replace(user, entity=entity))
        else:
            user = self._substitute(tx, user)
            assert user.entity is not None
            if not own and not self._known(tx, user.entity):
                raise _fail(ErrorKind.USER_NOT_FOUND, f"{user.entity} is unknown here")
        entity = user.entity
        assert entity is not None
        names = {n.strip().lower() for n in (entity, *(e.entity for e in user.endpoints)) if n}
        if names & _targets(users.deny_users_list):
            raise _fail(ErrorKind.FORBIDDEN, f"{entity} is on the deny list of {obj.uri}")
        if (
            obj.kind.is_sidebar
            and own
            and role.rank < Role.MODERATOR.rank
            and not names & _targets(users.allowed_users_list)
        ):
            # A sidebar is a private discussion (RFC 6504 s7): its users are whom its
            # moderators put in it or invite, not whoever asks (in its parent or not).
            raise _fail(
                ErrorKind.FORBIDDEN,
                f"{entity} is not on the allowed-users-list of the sidebar {obj.uri}; "
                "a moderator of it may add her",
            )
        if obj.info.user(entity) is not None:
            raise _fail(ErrorKind.USER_EXISTS, f"{entity} is already in {obj.uri}")
        if not own and role.rank < Role.MODERATOR.rank and user.roles:
            raise _fail(ErrorKind.FORBIDDEN, "only moderators assign roles")
        wanted = effective_role(user.roles)
        if own and role.rank < Role.MODERATOR.rank and wanted.rank > role.rank:
            raise _fail(ErrorKind.FORBIDDEN, "a user cannot grant herself a higher role")
        new_info = _with_users(obj.info, [*_users(obj.info), _clean_user(user)])
        limit = _description(obj.info).maximum_user_count
        if limit is not None and len(_users(new_info)) > limit:
            raise _fail(ErrorKind.RESOURCES_EXHAUSTED, f"{obj.uri} is full ({limit} users)")
        tx.write(obj.with_info(new_info), UserAdded, user=entity)

    @staticmethod
    def _anonymous_joiner(obj: ConferenceObject, user: User | None) -> Actor:
        """The participant an unauthenticated client may become in ``obj`` (RFC 6503
        s5.3.6, third case): only where the user-admission-policy is "anonymous" (RFC 6501
        s4.6.2), with a placeholder entity and a contact URI for the focus to call."""
        policy = (obj.info.users or Users()).user_admission_policy
        if policy != UserAdmissionPolicy.ANONYMOUS:
            raise _fail(
                ErrorKind.AUTHENTICATION_REQUIRED,
                f"{obj.uri} admits authenticated users only; authenticate to join",
            )
        if user is None or user.entity is None or not has_placeholder(user.entity):
            raise _fail(
                ErrorKind.BAD_REQUEST,
                "without an XCON-USERID, give userInfo entity="
                "'xcon-userid:AUTO_GENERATE_1@<domain>' (RFC 6503 s5.3.6)",
            )
        if not any(e.entity and not has_placeholder(e.entity) for e in user.endpoints):
            raise _fail(
                ErrorKind.BAD_REQUEST, "give an <endpoint> with your contact URI (RFC 6503 s5.3.6)"
            )
        if user.roles:
            raise _fail(ErrorKind.FORBIDDEN, "an unauthenticated user cannot take roles")
        return Actor(user_id=None, role=Role.PARTICIPANT)

    def _recover_user_id(self, tx: _Tx, user: User) -> str | None:
        """The XCON-USERID already given to the signalling URI of ``user``, if any
        (RFC 6503 s5.3.6: avoid duplicates for the same client)."""
        wanted = {
            e.entity.strip() for e in user.endpoints if e.entity and not has_placeholder(e.entity)
        }
        if not wanted:
            return None
        for obj in sorted(tx.all(), key=lambda o: o.uri):
            for known in _users(obj.info):
                if known.entity and any(
                    e.entity and e.entity.strip() in wanted for e in known.endpoints
                ):
                    return known.entity
        return None

    def _update_user(self, tx: _Tx, c: cmd.UpdateUser) -> None:
        obj = self._find(tx.get(c.uri), c.uri, _WITH_USERS)
        entity = self._target(c.actor, c.user.entity)
        own = entity == c.actor.user_id
        role = self._authorize(
            c.actor, obj, Operation.UPDATE_SELF if own else Operation.UPDATE_USER, c.password, tx
        )
        self._check_version(obj, c.expected_version)
        current = obj.info.user(entity)
        if current is None:
            raise _fail(ErrorKind.USER_NOT_FOUND, f"{entity} is not a user of {obj.uri}")
        named = _name_endpoints(current, c.user)
        patch = self._substitute(tx, dataclasses.replace(c.user, entity=entity, endpoints=named))
        merged = _clean_user(dataclasses.replace(merge_user(current, patch), entity=entity))
        if role.rank < Role.MODERATOR.rank and merged.roles != current.roles:
            raise _fail(ErrorKind.FORBIDDEN, "only moderators change roles")
        users = [merged if u.entity == entity else u for u in _users(obj.info)]
        if merged == current:
            tx.write(obj, UserUpdated, user=entity)
            return
        tx.write(obj.with_info(_with_users(obj.info, users)), UserUpdated, user=entity)

    def _remove_user(self, tx: _Tx, c: cmd.RemoveUser) -> None:
        obj = self._find(tx.get(c.uri), c.uri, _WITH_USERS)
        entity = self._target(c.actor, c.entity)
        own = entity == c.actor.user_id
        self._authorize(
            c.actor,
            obj,
            Operation.REMOVE_SELF if own else Operation.REMOVE_USER,
            c.password,
            tx,
        )
        if obj.info.user(entity) is None:
            raise _fail(ErrorKind.USER_NOT_FOUND, f"{entity} is not a user of {obj.uri}")
        remaining = [u for u in _users(obj.info) if u.entity != entity]
        tx.write(obj.with_info(_with_users(obj.info, remaining)), UserRemoved, user=entity)
        self._cascade_removal(tx, obj.uri, entity)

    def _create_sidebar(self, tx: _Tx, c: cmd.CreateSidebar) -> None:
        parent = self._find(tx.get(c.parent), c.parent, _CONFERENCES)
        self._authorize(c.actor, parent, Operation.CREATE_SIDEBAR, c.password, tx)
        if _description(parent.info).allow_sidebars is False:
            raise _fail(ErrorKind.OPERATION_NOT_ALLOWED, f"{parent.uri} does not allow sidebars")
        if parent.lifecycle is Lifecycle.ENDED:
            raise _fail(ErrorKind.CONFLICT, f"{parent.uri} has ended")
        existing = [s for s in tx.children(parent.uri) if s.kind.is_sidebar]
        if len(existing) >= self.config.max_sidebars:
            raise _fail(ErrorKind.RESOURCES_EXHAUSTED, f"{parent.uri} has its maximum of sidebars")
        uri = self._new_uri(tx, c.info.entity if c.info is not None else None)
        if c.info is None:
            # A clone of the parent, but not of its permission to nest sidebars.
            desc = dataclasses.replace(_description(parent.info), allow_sidebars=None)
            info = dataclasses.replace(parent.info, conference_description=desc)
        else:
            self._patch_checks(c.info)
            info = self._substitute(tx, c.info)
        kind = ObjectKind.SIDEBAR_BY_REF if c.by_ref else ObjectKind.SIDEBAR_BY_VAL
        info = self._new_document(tx, uri, info, kind=kind, source=parent.uri, parent=parent)
        sidebar = ConferenceObject(
            uri=uri,
            kind=kind,
            version=0,
            info=info,
            lifecycle=parent.lifecycle,
            parent=parent.uri,
            linked=True,
            owner=c.actor.user_id,
        )
        tx.write(sidebar, ConferenceCreated)

    def _sidebar(self, tx: _Tx, uri: str, by_ref: bool) -> ConferenceObject:
        kind = ObjectKind.SIDEBAR_BY_REF if by_ref else ObjectKind.SIDEBAR_BY_VAL
        return self._find(tx.get(uri), uri, frozenset({kind}))

    def _update_sidebar(self, tx: _Tx, c: cmd.UpdateSidebar) -> None:
        obj = self._sidebar(tx, c.uri, c.by_ref)
        self._update_object(
            tx,
            c.actor,
            obj,
            patch=c.patch,
            expected_version=c.expected_version,
            password=c.password,
            operation=Operation.UPDATE_SIDEBAR,
        )

    def _delete_sidebar(self, tx: _Tx, c: cmd.DeleteSidebar) -> None:
        obj = self._sidebar(tx, c.uri, c.by_ref)
        self._authorize(c.actor, obj, Operation.DELETE_SIDEBAR, c.password, tx)
        tx.delete(obj.uri)

    # ---- blueprints (RFC 6503 s5.3.3: privileged users only) --------------------------

    @staticmethod
    def _check_blueprint(info: ConferenceInfo) -> None:
        # s5.3.1: blueprints are shown to everyone, so they carry nothing sensitive.
        if passwords(info):
            raise _fail(ErrorKind.INVALID_CONF_INFO, "a blueprint cannot carry a password")
        if _users(info):
            raise _fail(ErrorKind.INVALID_CONF_INFO, "a blueprint cannot list users")
        if info.sidebars_by_ref is not None or info.sidebars_by_val is not None:
            raise _fail(ErrorKind.INVALID_CONF_INFO, "a blueprint cannot have sidebars")

    def _editable_blueprint(self, tx: _Tx, uri: str) -> ConferenceObject:
        obj = self._find(tx.get(uri), uri, frozenset({ObjectKind.BLUEPRINT}))
        if not obj.editable:
            raise _fail(
                ErrorKind.OPERATION_NOT_ALLOWED,
                f"{uri} is a blueprint file of the operator; change it on disk",
            )
        return obj

    def _create_blueprint(self, tx: _Tx, c: cmd.CreateBlueprint) -> None:
        require(c.actor.role, Operation.CREATE_BLUEPRINT)
        if (c.clone_from is None) == (c.info is None):
            raise _fail(ErrorKind.BAD_REQUEST, "give either a blueprint to copy or a document")
        if c.clone_from is not None:
            source = self._find(
                tx.get(c.clone_from), c.clone_from, frozenset({ObjectKind.BLUEPRINT})
            )
            info = source.info
        else:
            assert c.info is not None
            info = self._substitute(tx, c.info)
        uri = self._new_uri(tx, c.info.entity if c.info is not None else None)
        desc = dataclasses.replace(_description(info), cloning_parent=None, sidebar_parent=None)
        info = dataclasses.replace(info, entity=uri, state=None, conference_description=desc)
        self._check_blueprint(info)
        self._validate(info)
        obj = ConferenceObject(
            uri=uri,
            kind=ObjectKind.BLUEPRINT,
            version=0,
            info=info,
            lifecycle=Lifecycle.RESERVED,
            owner=c.actor.user_id,
            editable=True,
        )
        tx.write(obj, BlueprintCreated)

    def _update_blueprint(self, tx: _Tx, c: cmd.UpdateBlueprint) -> None:
        require(c.actor.role, Operation.UPDATE_BLUEPRINT)
        obj = self._editable_blueprint(tx, c.uri)
        self._check_version(obj, c.expected_version)
        self._patch_checks(c.patch)
        patch = self._substitute(tx, dataclasses.replace(c.patch, entity=obj.uri))
        merged = self._system_parts(obj, merge(obj.info, patch))
        self._check_blueprint(merged)
        self._validate(merged)
        tx.write(obj.with_info(merged), BlueprintUpdated)

    def _delete_blueprint(self, tx: _Tx, c: cmd.DeleteBlueprint) -> None:
        require(c.actor.role, Operation.DELETE_BLUEPRINT)
        obj = self._editable_blueprint(tx, c.uri)
        tx.delete(obj.uri, BlueprintDeleted)

    def _tick(self, tx: _Tx, c: cmd.Tick) -> None:
        if c.now.tzinfo is None:
            raise _fail(ErrorKind.BAD_REQUEST, "Tick needs an aware (UTC) time")
        now = c.now.astimezone(UTC)
        if tx.now is not None and now < tx.now:
            now = tx.now  # time never runs backwards for the core
        tx.now = now
        for obj in sorted(tx.all(), key=lambda o: o.uri):
            if obj.kind is ObjectKind.CONFERENCE:
                self._settle(tx, obj, now)

    def _settle(self, tx: _Tx, obj: ConferenceObject, now: datetime | None) -> None:
        """Move the conference ``obj`` to the lifecycle its schedule wants at ``now``
        (None: no Tick seen yet, a scheduled conference waits); end its sidebars when it
        stops being active (a sidebar never outlives its parent's occurrence); sidebars
        follow their parent, they have no schedule of their own."""
        current = tx.get(obj.uri)
        if current is None or current.kind is not ObjectKind.CONFERENCE:
            return
        if now is None:
            wanted = Lifecycle.RESERVED if self._is_scheduled(current) else Lifecycle.ACTIVE
        else:
            wanted, _ = self._wanted_lifecycle(tx, current, now)
        if wanted is current.lifecycle:
            return
        event = _LIFECYCLE_TRANSITIONS.get((current.lifecycle, wanted))
        if event is None:
            raise AssertionError(f"no lifecycle transition {current.lifecycle} -> {wanted}")
        if wanted is not Lifecycle.ACTIVE:
            for child in tx.children(current.uri):
                if child.kind.is_sidebar:
                    tx.delete(child.uri)
        tx.write(dataclasses.replace(current, lifecycle=wanted), event)
        for child in tx.children(current.uri):
            if child.kind.is_sidebar and child.lifecycle is not wanted:
                tx.write(dataclasses.replace(child, lifecycle=wanted), event)


def _name_endpoints(current: User, patch: User) -> tuple[Endpoint, ...]:
    """The patch's endpoints keyed as RFC 4575 s4.5 keys them, by entity.

    An endpoint without an entity cannot be merged by key; appended as is, it would leave the
    user with a keyless second endpoint while the real one stays unchanged (a mute that mutes
    nothing). It can only mean the user's one endpoint: it is named so when there is exactly
    one, and refused otherwise.
    """
    if all(e.entity for e in patch.endpoints):
        return patch.endpoints
    if len(current.endpoints) != 1 or current.endpoints[0].entity is None:
        raise _fail(
            ErrorKind.INVALID_CONF_INFO,
            f"an endpoint of {current.entity} without an entity: name which of its "
            f"{len(current.endpoints)} endpoints is meant",
        )
    only = current.endpoints[0].entity
    named = tuple(e if e.entity else dataclasses.replace(e, entity=only) for e in patch.endpoints)
    if sum(1 for e in named if e.entity == only) > 1:
        raise _fail(ErrorKind.INVALID_CONF_INFO, f"endpoint {only} given twice")
    return named
