"""CCMP requests -> core commands and queries; core results and errors -> CCMP responses.

This is the only place where the core's ErrorKind becomes a CCMP response code
(ERROR_TABLE, RFC 6503 s5.4). Each request is checked in this order: authentication
(s10.2: <subject> or HTTP Basic over TLS; 424), the sender's confUserID (421/401), the shape of
the request for its message type and operation (Table 1; 400/403), then the operation itself.
Nothing changes state before all checks pass: mutations go through one `store.apply(command)`,
which is atomic (s4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from lxml import etree

from focus.core import commands as cmd
from focus.core.changes import Change, Origin
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor, allowed
from focus.core.policy import Operation as PolicyOp
from focus.core.state import ConferenceObject, Lifecycle, ObjectKind, passwords
from focus.xcon.codec import (
    XconDecodeError,
    parse_conference_info,
    parse_user,
    parse_users,
    serialize_conference_info,
    serialize_user,
    serialize_users,
)
from focus.xcon.model import ConferenceInfo, Role, User

from .auth import Authenticator, Credentials
from .messages import (
    INFO_NS,
    CcmpRequest,
    CcmpResponse,
    MessageCapability,
    MessageType,
    Operation,
    Options,
    ResponseCode,
    UriEntry,
)
from .xpath import XPathFilterError, XPathLimits, compile_filter, matches

if TYPE_CHECKING:
    from focus.core.accounts import AccountDirectory

    from .app import CcmpConfig

CONF_SUMMARY = "confSummaryRequest"
# RFC 6503 s6.9 names the extension confSummaryRequest but its request example says
# confRequestSummary; both are understood.
CONF_SUMMARY_ALIASES = frozenset({CONF_SUMMARY, "confRequestSummary"})
# The namespace of RFC 6503 s6.9's example schema, kept so clients written to it work.
CONF_SUMMARY_NS = "http://example.com/ccmp-extension"

ERROR_TABLE: Mapping[ErrorKind, tuple[ResponseCode, str]] = {
    ErrorKind.BAD_REQUEST: (ResponseCode.BAD_REQUEST, "Bad Request"),
    ErrorKind.FORBIDDEN: (ResponseCode.UNAUTHORIZED, "Unauthorized"),
    ErrorKind.OPERATION_NOT_ALLOWED: (ResponseCode.FORBIDDEN, "Forbidden"),
    ErrorKind.NOT_FOUND: (ResponseCode.OBJECT_NOT_FOUND, "Object Not Found"),
    ErrorKind.CONFLICT_VERSION: (ResponseCode.CONFLICT, "Conflict"),
    ErrorKind.CONFLICT: (ResponseCode.CONFLICT, "Conflict"),
    ErrorKind.CONF_EXISTS: (ResponseCode.CONFLICT, "Conflict"),
    ErrorKind.USER_EXISTS: (ResponseCode.CONFLICT, "Conflict"),
    ErrorKind.INVALID_CONF_INFO: (ResponseCode.BAD_REQUEST, "Bad Request"),
    ErrorKind.USER_NOT_FOUND: (ResponseCode.USER_NOT_FOUND, "User Not Found"),
    ErrorKind.INVALID_CONF_USER_ID: (ResponseCode.INVALID_CONF_USER_ID, "Invalid confUserID"),
    ErrorKind.WRONG_PASSWORD: (
        ResponseCode.INVALID_CONFERENCE_PASSWORD,
        "Invalid Conference Password",
    ),
    ErrorKind.PASSWORD_REQUIRED: (
        ResponseCode.CONFERENCE_PASSWORD_REQUIRED,
        "Conference Password Required",
    ),
    ErrorKind.AUTHENTICATION_REQUIRED: (
        ResponseCode.AUTHENTICATION_REQUIRED,
        "Authentication Required",
    ),
    ErrorKind.DELETE_PARENT_FAILED: (
        ResponseCode.FORBIDDEN_DELETE_PARENT,
        "Forbidden Delete Parent",
    ),
    ErrorKind.PARENT_ENFORCED: (
        ResponseCode.FORBIDDEN_CHANGE_PROTECTED,
        "Forbidden Change Protected",
    ),
    ErrorKind.INVALID_DOMAIN: (ResponseCode.INVALID_DOMAIN_NAME, "Invalid Domain Name"),
    ErrorKind.STORAGE_FAILED: (ResponseCode.SERVER_INTERNAL_ERROR, "Server Internal Error"),
    ErrorKind.RESOURCES_EXHAUSTED: (
        ResponseCode.RESOURCES_NOT_AVAILABLE,
        "Resources Not Available",
    ),
}
"""ErrorKind -> (CCMP response code, response string): the one mapping, RFC 6503 s5.4."""


def response_for(kind: ErrorKind, operation: Operation | None) -> tuple[ResponseCode, str]:
    """(code, response string) for a core error in an `operation`; an unknown kind is our
    fault (500)."""
    # Unacceptable values are a malformed request on create but "not feasible" (409) on
    # update, which is how s5.3.4 describes a refused confRequest/update.
    if kind is ErrorKind.INVALID_CONF_INFO and operation is Operation.UPDATE:
        return ResponseCode.CONFLICT, ResponseCode.CONFLICT.reason
    return ERROR_TABLE.get(kind, (ResponseCode.SERVER_INTERNAL_ERROR, "Server Internal Error"))


def response_code(kind: ErrorKind, operation: Operation | None) -> ResponseCode:
    """Just the code of :func:`response_for`."""
    return response_for(kind, operation)[0]


class Refusal(Exception):
    """A request refused by the CCMP layer itself (shape, identity) with its code."""

    def __init__(self, code: ResponseCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Store(Protocol):
    """What the dispatcher needs from focus.core's ConferenceStore: the one mutation path
    and the core's authorizing reads (they check roles and conference passwords)."""

    @property
    def accounts(self) -> AccountDirectory: ...

    def apply(self, command: cmd.Command, *, origin: Origin = ...) -> list[Change]: ...

    def get(self, uri: str) -> ConferenceObject | None: ...

    def list_blueprints(self, actor: Actor) -> tuple[ConferenceObject, ...]: ...

    def get_blueprint(self, actor: Actor, uri: str) -> ConferenceObject: ...

    def list_conferences(self, actor: Actor) -> tuple[ConferenceObject, ...]: ...

    def get_conference(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject: ...

    def get_users(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject: ...

    def get_user(
        self, actor: Actor, uri: str, entity: str | None = None, *, password: str | None = None
    ) -> User: ...

    def get_sidebars(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject: ...

    def get_sidebar(
        self, actor: Actor, uri: str, *, by_ref: bool, password: str | None = None
    ) -> ConferenceObject: ...

    def role_on(self, actor: Actor, obj: ConferenceObject) -> Role: ...


_WITH_USERS = (ObjectKind.CONFERENCE, ObjectKind.SIDEBAR_BY_VAL, ObjectKind.SIDEBAR_BY_REF)


def _display_text(info: ConferenceInfo) -> str | None:
    desc = info.conference_description
    return desc.display_text if desc is not None else None


def _without_passwords(info: ConferenceInfo) -> ConferenceInfo:
    desc = info.conference_description
    if desc is None or desc.conf_uris is None or not passwords(info):
        return info
    entries = tuple(dataclasses.replace(e, conference_passwords=()) for e in desc.conf_uris.entries)
    uris = dataclasses.replace(desc.conf_uris, entries=entries)
    return dataclasses.replace(
        info, conference_description=dataclasses.replace(desc, conf_uris=uris)
    )


def _check_placeholders_in_values(el: etree._Element) -> None:
    # s4.3 (a): AUTO_GENERATE_X only in the value part of an attribute or element.
    for node in el.iter():
        if "AUTO_GENERATE" in str(node.tag) or any("AUTO_GENERATE" in a for a in node.attrib):
            raise Refusal(
                ResponseCode.BAD_REQUEST,
                "AUTO_GENERATE_X may only appear in attribute or element values",
            )


class Dispatcher:
    """Answers CCMP requests against one conference store."""

    def __init__(self, store: Store, config: CcmpConfig) -> None:
        self._store = store
        self._auth = Authenticator(store.accounts, ttl_s=config.auth_cache_ttl_s)
        self._allow_anonymous_join = config.allow_anonymous_join
        self._limits = XPathLimits(
            max_length=config.xpath_max_length, max_steps=config.xpath_max_steps
        )
        self._handlers: dict[MessageType, Callable[[CcmpRequest, Actor], CcmpResponse]] = {
            MessageType.BLUEPRINTS: self._blueprints,
            MessageType.CONFS: self._confs,
            MessageType.BLUEPRINT: self._blueprint,
            MessageType.CONF: self._conf,
            MessageType.USERS: self._users,
            MessageType.USER: self._user,
            MessageType.SIDEBARS_BY_VAL: self._sidebars,
            MessageType.SIDEBARS_BY_REF: self._sidebars,
            MessageType.SIDEBAR_BY_VAL: self._sidebar,
            MessageType.SIDEBAR_BY_REF: self._sidebar,
            MessageType.EXTENDED: self._extended,
            MessageType.OPTIONS: self._options,
        }

    # ---------------------------------------------------------------- entry point

    def _apply(self, command: cmd.Command) -> list[Change]:
        """The one mutation path, marked as CCMP's so other front ends see who changed it."""
        return self._store.apply(command, origin=Origin.CCMP)

    def handle(self, req: CcmpRequest, basic: Credentials | None = None) -> CcmpResponse:
        """The CCMP answer to `req`; `basic` are HTTP Basic credentials received over TLS."""
        conf_user_id = req.conf_user_id or ""
        try:
            actor = self._authenticate(req, basic)
            conf_user_id = actor.user_id or conf_user_id
            self._check_shape(req)
            return self._handlers[req.message_type](req, actor)
        except Refusal as exc:
            return self._reply(req, conf_user_id, exc.code, str(exc))
        except CoreError as exc:
            code, reason = response_for(exc.kind, req.operation)
            version = None
            if code is ResponseCode.CONFLICT and req.conf_obj_id:
                # s5.3.4: a 409 carries the current version so the client can catch up.
                current = self._store.get(req.conf_obj_id)
                version = current.version if current is not None else None
            text = f"{reason}: {exc.message}"
            return self._reply(req, conf_user_id, code, text, version=version)
        except (XconDecodeError, XPathFilterError) as exc:
            return self._reply(req, conf_user_id, ResponseCode.BAD_REQUEST, str(exc))

    def _reply(
        self,
        req: CcmpRequest,
        conf_user_id: str,
        code: ResponseCode,
        text: str | None = None,
        **fields: object,
    ) -> CcmpResponse:
        base = CcmpResponse(
            message_type=req.message_type,
            code=code,
            conf_user_id=conf_user_id,
            namespace=req.namespace,
            conf_obj_id=req.conf_obj_id,
            operation=req.operation,
            response_string=text,
        )
        return dataclasses.replace(base, **fields)  # type: ignore[arg-type]

    def _ok(self, req: CcmpRequest, actor: Actor, **fields: object) -> CcmpResponse:
        return self._reply(req, actor.user_id or "", ResponseCode.SUCCESS, "Success", **fields)

    # ---------------------------------------------------------------- checks

    def _authenticate(self, req: CcmpRequest, basic: Credentials | None) -> Actor:
        creds: Credentials | None = None
        subject = req.subject
        if subject is not None and subject.username and subject.password is not None:
            creds = Credentials(subject.username, subject.password, "subject")
        elif basic is not None:
            # Also when <subject> names a user without a password (RFC 6504 s6.2 does).
            creds = basic
        elif subject is not None and subject.username:
            raise Refusal(ResponseCode.AUTHENTICATION_REQUIRED, "<subject> without a <password>")
        if creds is None and self._anonymous_join(req):
            return Actor.unauthenticated()
        if creds is None:
            raise Refusal(
                ResponseCode.AUTHENTICATION_REQUIRED,
                "authenticate with <subject> username and password (or HTTP Basic over TLS)",
            )
        account = self._auth.authenticate(creds)
        if req.conf_user_id and req.conf_user_id != account.user_id:
            if self._store.accounts.by_user_id(req.conf_user_id) is None:
                raise Refusal(
                    ResponseCode.INVALID_CONF_USER_ID,
                    f"confUserID {req.conf_user_id!r} is not a user of this system",
                )
            raise Refusal(
                ResponseCode.UNAUTHORIZED,
                f"authenticated as {account.user_id}, not {req.conf_user_id}",
            )
        return Actor(user_id=account.user_id, role=account.role)

    def _anonymous_join(self, req: CcmpRequest) -> bool:
        """s5.3.6, third case: a client with no XCON-USERID (void confUserID) and no
        credentials asking to enter a conference; the core admits it only where the
        conference's user-admission-policy is "anonymous" (else 424)."""
        return (
            self._allow_anonymous_join
            and req.subject is None
            and not req.conf_user_id
            and req.message_type is MessageType.USER
            and req.operation is Operation.CREATE
        )

    def _check_shape(self, req: CcmpRequest) -> None:
        mt, op = req.message_type, req.operation
        allowed = mt.operations
        if not allowed:
            if op is not None:
                raise Refusal(
                    ResponseCode.BAD_REQUEST, f"{mt.request_element} takes no <operation>"
                )
        elif op is None:
            raise Refusal(ResponseCode.BAD_REQUEST, f"{mt.request_element} needs an <operation>")
        needs_target = mt not in (MessageType.BLUEPRINTS, MessageType.CONFS, MessageType.OPTIONS)
        if mt in (MessageType.CONF, MessageType.BLUEPRINT) and op is Operation.CREATE:
            needs_target = False  # direct creation, or a copy of <confObjID>
            if req.conf_obj_id is not None and req.info is not None:
                raise Refusal(
                    ResponseCode.BAD_REQUEST,
                    f"create takes <confObjID> (to clone) or <{mt.info_element}>, not both",
                )
        if needs_target and not req.conf_obj_id:
            raise Refusal(ResponseCode.BAD_REQUEST, f"{mt.request_element} needs a <confObjID>")
        if mt in (MessageType.BLUEPRINTS, MessageType.CONFS) and req.conf_obj_id:
            raise Refusal(ResponseCode.BAD_REQUEST, f"{mt.request_element} takes no <confObjID>")
        if mt is MessageType.USERS and op in (Operation.CREATE, Operation.DELETE):
            raise Refusal(
                ResponseCode.FORBIDDEN, "<users> is created and deleted with its conference"
            )
        if op is Operation.UPDATE and mt is not MessageType.EXTENDED and req.info is None:
            raise Refusal(
                ResponseCode.BAD_REQUEST, f"update needs <{mt.info_element}> with the changes"
            )
        if req.info is not None and op in (Operation.CREATE, Operation.UPDATE):
            _check_placeholders_in_values(req.info)

    def _object(self, uri: str, *kinds: ObjectKind) -> ConferenceObject:
        """The target of a mutation, which must be of a kind the message type addresses
        (s5.3.4, s5.3.8, s5.3.10: otherwise 404 even if the object exists)."""
        obj = self._store.get(uri)
        if obj is None or obj.kind not in kinds:
            what = " or ".join(k.value for k in kinds)
            raise CoreError(ErrorKind.NOT_FOUND, f"no {what} {uri!r}")
        return obj

    def _document(self, obj: ConferenceObject, actor: Actor) -> ConferenceInfo:
        # Conference passwords are shown only to those who run the conference.
        role = self._store.role_on(actor, obj)
        if role in (Role.ADMINISTRATOR, Role.MODERATOR) and obj.kind is not ObjectKind.BLUEPRINT:
            return obj.info
        return _without_passwords(obj.info)

    def _filter(self, req: CcmpRequest) -> Callable[[ConferenceInfo], bool]:
        if not req.xpath_filter:
            return lambda _info: True
        xpath = compile_filter(req.xpath_filter, self._limits)
        return lambda info: matches(xpath, serialize_conference_info(_without_passwords(info)))

    def _created(self, req: CcmpRequest, actor: Actor, changes: list[Change]) -> CcmpResponse:
        """The answer to a create (s5.3.3, s5.3.4, s5.3.8, s5.3.10): the new object's URI in
        <confObjID>, its version and its document."""
        created = next((c for c in changes if c.before is None and c.after is not None), None)
        if created is None or created.after is None:
            raise CoreError(ErrorKind.STORAGE_FAILED, "the core reported no new object")
        return self._ok(
            req,
            actor,
            conf_obj_id=created.uri,
            version=created.version,
            info=serialize_conference_info(created.after.info),
        )

    @staticmethod
    def _changed(changes: list[Change], uri: str | None = None) -> Change:
        for change in changes:
            if uri is None or change.uri == uri:
                return change
        raise CoreError(ErrorKind.STORAGE_FAILED, "the core reported no change")

    @staticmethod
    def _uri_entry(obj: ConferenceObject) -> UriEntry:
        desc = obj.info.conference_description
        title = desc.display_text if desc is not None else None
        purpose = desc.free_text if desc is not None else None
        return UriEntry(obj.uri, title or obj.name, purpose)

    # ---------------------------------------------------------------- list pairs

    def _blueprints(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        keep = self._filter(req)
        found = self._store.list_blueprints(actor)
        return self._ok(req, actor, uris=tuple(self._uri_entry(o) for o in found if keep(o.info)))

    def _confs(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        keep = self._filter(req)
        found = self._store.list_conferences(actor)
        return self._ok(req, actor, uris=tuple(self._uri_entry(o) for o in found if keep(o.info)))

    # ---------------------------------------------------------------- conference objects

    def _blueprint(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        # s5.3.3: create/update/delete are for privileged users (the core's matrix: only
        # administrators); blueprint files cannot be changed over CCMP (403).
        op = req.operation
        if op is Operation.CREATE:
            changes = self._apply(
                cmd.CreateBlueprint(
                    actor=actor, info=self._parse_info(req), clone_from=req.conf_obj_id
                )
            )
            return self._created(req, actor, changes)
        assert req.conf_obj_id is not None
        uri = req.conf_obj_id
        if op is Operation.UPDATE:
            patch = self._parse_info(req)
            assert patch is not None
            changes = self._apply(
                cmd.UpdateBlueprint(
                    actor=actor, uri=uri, patch=patch, expected_version=patch.version
                )
            )
            return self._ok(req, actor, version=self._changed(changes, uri).version)
        if op is Operation.DELETE:
            self._apply(cmd.DeleteBlueprint(actor=actor, uri=uri))
            return self._ok(req, actor)
        obj = self._store.get_blueprint(actor, uri)
        info = serialize_conference_info(_without_passwords(obj.info))
        return self._ok(req, actor, info=info, version=obj.version)

    @staticmethod
    def _parse_info(req: CcmpRequest) -> ConferenceInfo | None:
        return parse_conference_info(req.info) if req.info is not None else None

    def _conf(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        op = req.operation
        if op is Operation.CREATE:
            if req.conf_obj_id is not None and req.info is not None:
                raise Refusal(
                    ResponseCode.BAD_REQUEST,
                    "create by cloning takes <confObjID> or <confInfo>, not both (s5.3.4)",
                )
            changes = self._apply(
                cmd.CreateConference(
                    actor=actor,
                    info=self._parse_info(req),
                    clone_from=req.conf_obj_id,
                    password=req.conference_password,
                )
            )
            return self._created(req, actor, changes)
        assert req.conf_obj_id is not None
        uri = req.conf_obj_id
        if op is Operation.RETRIEVE:
            obj = self._store.get_conference(actor, uri, password=req.conference_password)
            info = serialize_conference_info(self._document(obj, actor))
            return self._ok(req, actor, info=info, version=obj.version)
        self._object(uri, ObjectKind.CONFERENCE)
        if op is Operation.UPDATE:
            patch = self._parse_info(req)
            assert patch is not None
            changes = self._apply(
                cmd.UpdateConference(
                    actor=actor,
                    uri=uri,
                    patch=patch,
                    expected_version=patch.version,
                    password=req.conference_password,
                )
            )
            return self._ok(req, actor, version=self._changed(changes, uri).version)
        self._apply(cmd.DeleteConference(actor=actor, uri=uri, password=req.conference_password))
        return self._ok(req, actor)

    # ---------------------------------------------------------------- users

    def _users(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        assert req.conf_obj_id is not None
        uri = req.conf_obj_id
        if req.operation is Operation.RETRIEVE:
            obj = self._store.get_users(actor, uri, password=req.conference_password)
            users = self._document(obj, actor).users
            info = serialize_users(users) if users is not None else None
            return self._ok(req, actor, info=info, version=obj.version)
        self._object(uri, ObjectKind.CONFERENCE)
        assert req.info is not None
        changes = self._apply(
            cmd.UpdateUsers(
                actor=actor,
                uri=uri,
                patch=parse_users(req.info),
                password=req.conference_password,
            )
        )
        return self._ok(req, actor, version=self._changed(changes, uri).version)

    def _user(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        assert req.conf_obj_id is not None
        uri = req.conf_obj_id
        user = parse_user(req.info) if req.info is not None else None
        entity = user.entity if user is not None and user.entity else None
        op = req.operation
        if op is Operation.RETRIEVE:
            found = self._store.get_user(actor, uri, entity, password=req.conference_password)
            obj = self._store.get(uri)
            version = obj.version if obj is not None else None
            return self._ok(req, actor, info=serialize_user(found), version=version)
        self._object(uri, *_WITH_USERS)
        if op is Operation.CREATE:
            changes = self._apply(
                cmd.AddUser(actor=actor, uri=uri, user=user, password=req.conference_password)
            )
            change = self._changed(changes, uri)
            added_id = getattr(change, "user", None)
            added = (
                change.after.info.user(added_id)
                if change.after is not None and isinstance(added_id, str)
                else None
            )
            info = serialize_user(added) if added is not None else None
            if actor.anonymous and isinstance(added_id, str):
                # s5.3.6 Figure 11: the new XCON-USERID comes back in <confUserID>.
                return self._reply(
                    req,
                    added_id,
                    ResponseCode.SUCCESS,
                    "Success",
                    version=change.version,
                    info=info,
                )
            return self._ok(req, actor, version=change.version, info=info)
        if op is Operation.UPDATE:
            assert user is not None
            changes = self._apply(
                cmd.UpdateUser(actor=actor, uri=uri, user=user, password=req.conference_password)
            )
            return self._ok(req, actor, version=self._changed(changes, uri).version)
        changes = self._apply(
            cmd.RemoveUser(actor=actor, uri=uri, entity=entity, password=req.conference_password)
        )
        return self._ok(req, actor, version=self._changed(changes, uri).version)

    # ---------------------------------------------------------------- sidebars

    def _sidebars(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        """sidebarsByValRequest and sidebarsByRefRequest (s5.3.7, s5.3.9): the parent's
        sidebars of that kind that pass the xpathFilter, by value as documents (with the
        passwords this reader may see), by reference as URIs."""
        assert req.conf_obj_id is not None
        obj = self._store.get_sidebars(actor, req.conf_obj_id, password=req.conference_password)
        keep = self._filter(req)
        by_ref = req.message_type is MessageType.SIDEBARS_BY_REF
        # The core keeps the parent's lists equal to its sidebars: each entry names one.
        refs = obj.info.sidebars_by_ref.entries if obj.info.sidebars_by_ref is not None else ()
        vals = obj.info.sidebars_by_val.entries if obj.info.sidebars_by_val is not None else ()
        listed = [e.uri for e in refs] if by_ref else [e.entity or "" for e in vals]
        shown = []
        for side in filter(None, map(self._store.get, listed)):
            doc = self._document(side, actor)  # filtered as this reader may see it
            if keep(doc):
                shown.append((side, doc))
        if by_ref:
            uris = tuple(UriEntry(side.uri, _display_text(side.info), None) for side, _ in shown)
            return self._ok(req, actor, uris=uris, version=obj.version)
        container = etree.Element("sidebarsByValInfo")
        for _, doc in shown:
            container.append(serialize_conference_info(doc, f"{{{INFO_NS}}}entry"))
        return self._ok(req, actor, info=container, version=obj.version)

    def _sidebar(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        assert req.conf_obj_id is not None
        by_ref = req.message_type is MessageType.SIDEBAR_BY_REF
        kind = ObjectKind.SIDEBAR_BY_REF if by_ref else ObjectKind.SIDEBAR_BY_VAL
        uri = req.conf_obj_id
        op = req.operation
        if op is Operation.CREATE:
            self._object(uri, ObjectKind.CONFERENCE)
            changes = self._apply(
                cmd.CreateSidebar(
                    actor=actor,
                    parent=uri,
                    by_ref=by_ref,
                    info=self._parse_info(req),
                    password=req.conference_password,
                )
            )
            return self._created(req, actor, changes)
        if op is Operation.RETRIEVE:
            obj = self._store.get_sidebar(
                actor, uri, by_ref=by_ref, password=req.conference_password
            )
            info = serialize_conference_info(self._document(obj, actor))
            return self._ok(req, actor, info=info, version=obj.version)
        self._object(uri, kind)
        if op is Operation.UPDATE:
            patch = self._parse_info(req)
            assert patch is not None
            changes = self._apply(
                cmd.UpdateSidebar(
                    actor=actor,
                    uri=uri,
                    by_ref=by_ref,
                    patch=patch,
                    expected_version=patch.version,
                    password=req.conference_password,
                )
            )
            return self._ok(req, actor, version=self._changed(changes, uri).version)
        self._apply(
            cmd.DeleteSidebar(actor=actor, uri=uri, by_ref=by_ref, password=req.conference_password)
        )
        return self._ok(req, actor)

    # ---------------------------------------------------------------- options, extensions

    def _options(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        standard = []
        for mt in MessageType:
            if mt in (MessageType.EXTENDED, MessageType.OPTIONS):
                continue
            ops: tuple[Operation, ...] = ()
            if mt is MessageType.BLUEPRINT and not allowed(actor.role, PolicyOp.CREATE_BLUEPRINT):
                ops = (Operation.RETRIEVE,)  # s5.3.3: writes only for privileged users
            elif mt is MessageType.USERS:
                ops = (Operation.RETRIEVE, Operation.UPDATE)
            elif mt.operations:
                ops = tuple(Operation)
            standard.append(MessageCapability(mt.request_element, ops))
        extended = (
            MessageCapability(
                CONF_SUMMARY,
                (Operation.RETRIEVE,),
                schema_def=CONF_SUMMARY_NS,
                description=(
                    "a brief description of the conference named by confObjID: title, "
                    "status (active or registered), public (anyone may join) and media "
                    "(RFC 6503 s6.9)"
                ),
            ),
        )
        return self._ok(req, actor, options=Options(tuple(standard), extended))

    def _extended(self, req: CcmpRequest, actor: Actor) -> CcmpResponse:
        if req.extension_name not in CONF_SUMMARY_ALIASES:
            raise Refusal(ResponseCode.NOT_IMPLEMENTED, f"no extension {req.extension_name!r} here")
        if req.operation is not Operation.RETRIEVE:
            raise Refusal(ResponseCode.FORBIDDEN, f"{CONF_SUMMARY} is retrieve-only")
        assert req.conf_obj_id is not None
        obj = self._store.get_conference(actor, req.conf_obj_id, password=req.conference_password)
        info = obj.info
        desc = info.conference_description
        media = []
        if desc is not None and desc.available_media is not None:
            media = [m.type for m in desc.available_media.entries if m.type]
        join = info.users.join_handling if info.users is not None else None
        summary = etree.Element(
            f"{{{CONF_SUMMARY_NS}}}confSummary", nsmap={"example": CONF_SUMMARY_NS}
        )
        for name, value in (
            ("title", (desc.display_text if desc is not None else None) or ""),
            ("status", "active" if obj.lifecycle is Lifecycle.ACTIVE else "registered"),
            ("public", "true" if str(join) == "allow" else "false"),
            ("media", " ".join(media)),
        ):
            etree.SubElement(summary, name).text = value
        return self._ok(
            req,
            actor,
            version=obj.version,
            extension_name=CONF_SUMMARY,
            extension_payload=(summary,),
        )
