"""The CCMP request/response model (RFC 6503 s5): plain frozen values, no I/O, no XML parsing.

The conference documents a message carries (confInfo, userInfo, usersInfo, blueprintInfo,
sidebarByValInfo, sidebarByRefInfo, sidebarsByValInfo) are kept as lxml elements here; the
dispatcher turns them into XCON model objects with focus.xcon.codec. That keeps this module and
ccmp_server.codec independent of the data model and lets the codec round-trip any document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from lxml import etree

CCMP_NS = "urn:ietf:params:xml:ns:xcon-ccmp"
"""The namespace RFC 6503 s11 registers."""
CCMP_NS_DRAFT = "urn:ietf:params:xml:ns:xcon:ccmp"
"""The namespace of the draft era and of RFC 6504's examples; read and answered in kind."""
CCMP_NAMESPACES = (CCMP_NS, CCMP_NS_DRAFT)
INFO_NS = "urn:ietf:params:xml:ns:conference-info"
XCON_NS = "urn:ietf:params:xml:ns:xcon-conference-info"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MEDIA_TYPE = "application/ccmp+xml"


class Operation(StrEnum):
    """The CRUD operations of RFC 6503 s4.1 (schema type operationType, s11)."""

    RETRIEVE = "retrieve"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class MessageType(StrEnum):
    """The twelve request/response pairs of RFC 6503 s5.3 (registry in s12.5.1)."""

    BLUEPRINTS = "blueprints"
    CONFS = "confs"
    BLUEPRINT = "blueprint"
    CONF = "conf"
    USERS = "users"
    USER = "user"
    SIDEBARS_BY_VAL = "sidebarsByVal"
    SIDEBARS_BY_REF = "sidebarsByRef"
    SIDEBAR_BY_VAL = "sidebarByVal"
    SIDEBAR_BY_REF = "sidebarByRef"
    EXTENDED = "extended"
    OPTIONS = "options"

    @property
    def request_element(self) -> str:
        return f"{self.value}Request"

    @property
    def response_element(self) -> str:
        return f"{self.value}Response"

    @property
    def request_xsi_type(self) -> str:
        return f"ccmp-{self.value}-request-message-type"

    @property
    def response_xsi_type(self) -> str:
        return f"ccmp-{self.value}-response-message-type"

    @property
    def info_element(self) -> str | None:
        """Name of the parameter carrying the document of this pair, if any (s5.3.x)."""
        return _INFO_ELEMENTS.get(self)

    @property
    def operations(self) -> frozenset[Operation]:
        """Operations RFC 6503 Table 1 defines for the pair; empty: no <operation> allowed."""
        return _OPERATIONS[self]


_INFO_ELEMENTS = {
    MessageType.BLUEPRINTS: "blueprintsInfo",
    MessageType.CONFS: "confsInfo",
    MessageType.BLUEPRINT: "blueprintInfo",
    MessageType.CONF: "confInfo",
    MessageType.USERS: "usersInfo",
    MessageType.USER: "userInfo",
    MessageType.SIDEBARS_BY_VAL: "sidebarsByValInfo",
    MessageType.SIDEBARS_BY_REF: "sidebarsByRefInfo",
    MessageType.SIDEBAR_BY_VAL: "sidebarByValInfo",
    MessageType.SIDEBAR_BY_REF: "sidebarByRefInfo",
}

_ALL_OPS = frozenset(Operation)
_OPERATIONS: dict[MessageType, frozenset[Operation]] = {
    MessageType.BLUEPRINTS: frozenset(),
    MessageType.CONFS: frozenset(),
    # Table 1: create/update/delete of blueprints are N/A* (privileged users only).
    MessageType.BLUEPRINT: _ALL_OPS,
    MessageType.CONF: _ALL_OPS,
    # s5.3.5: create and delete are not applicable; the server answers 403.
    MessageType.USERS: _ALL_OPS,
    MessageType.USER: _ALL_OPS,
    MessageType.SIDEBARS_BY_VAL: frozenset(),
    MessageType.SIDEBARS_BY_REF: frozenset(),
    MessageType.SIDEBAR_BY_VAL: _ALL_OPS,
    MessageType.SIDEBAR_BY_REF: _ALL_OPS,
    MessageType.EXTENDED: _ALL_OPS,
    MessageType.OPTIONS: frozenset(),
}

# Pairs whose request carries an optional <xpathFilter> (s5.3.1, s5.3.2, s5.3.7, s5.3.9).
XPATH_FILTER_TYPES = frozenset(
    {
        MessageType.BLUEPRINTS,
        MessageType.CONFS,
        MessageType.SIDEBARS_BY_VAL,
        MessageType.SIDEBARS_BY_REF,
    }
)
# Pairs whose response carries an info:uris-type list rather than a conference document.
URI_LIST_TYPES = frozenset({MessageType.BLUEPRINTS, MessageType.CONFS, MessageType.SIDEBARS_BY_REF})


class ResponseCode(IntEnum):
    """CCMP response codes, RFC 6503 s5.4 and the registry of s12.5.2."""

    SUCCESS = 200
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    OBJECT_NOT_FOUND = 404
    CONFLICT = 409
    USER_NOT_FOUND = 420
    INVALID_CONF_USER_ID = 421
    INVALID_CONFERENCE_PASSWORD = 422
    CONFERENCE_PASSWORD_REQUIRED = 423
    AUTHENTICATION_REQUIRED = 424
    FORBIDDEN_DELETE_PARENT = 425
    FORBIDDEN_CHANGE_PROTECTED = 426
    INVALID_DOMAIN_NAME = 427
    SERVER_INTERNAL_ERROR = 500
    NOT_IMPLEMENTED = 501
    REQUEST_TIMEOUT = 510
    RESOURCES_NOT_AVAILABLE = 511

    @property
    def reason(self) -> str:
        """The default response string of the s12.5.2 registry."""
        return _REASONS[self]


_REASONS = {
    ResponseCode.SUCCESS: "Success",
    ResponseCode.BAD_REQUEST: "Bad Request",
    ResponseCode.UNAUTHORIZED: "Unauthorized",
    ResponseCode.FORBIDDEN: "Forbidden",
    ResponseCode.OBJECT_NOT_FOUND: "Object Not Found",
    ResponseCode.CONFLICT: "Conflict",
    ResponseCode.USER_NOT_FOUND: "User Not Found",
    ResponseCode.INVALID_CONF_USER_ID: "Invalid confUserID",
    ResponseCode.INVALID_CONFERENCE_PASSWORD: "Invalid Conference Password",
    ResponseCode.CONFERENCE_PASSWORD_REQUIRED: "Conference Password Required",
    ResponseCode.AUTHENTICATION_REQUIRED: "Authentication Required",
    ResponseCode.FORBIDDEN_DELETE_PARENT: "Forbidden Delete Parent",
    ResponseCode.FORBIDDEN_CHANGE_PROTECTED: "Forbidden Change Protected",
    ResponseCode.INVALID_DOMAIN_NAME: "Invalid Domain Name",
    ResponseCode.SERVER_INTERNAL_ERROR: "Server Internal Error",
    ResponseCode.NOT_IMPLEMENTED: "Not Implemented",
    ResponseCode.REQUEST_TIMEOUT: "Request Timeout",
    ResponseCode.RESOURCES_NOT_AVAILABLE: "Resources Not Available",
}

# Textual codes of the draft era (draft-ietf-xcon-ccmp, the seed's examples) and camel-cased
# registry strings, both understood when reading; we always write the numbers.
TEXTUAL_CODES: dict[str, ResponseCode] = {
    "success": ResponseCode.SUCCESS,
    "badrequest": ResponseCode.BAD_REQUEST,
    "unauthorized": ResponseCode.UNAUTHORIZED,
    "forbidden": ResponseCode.FORBIDDEN,
    "objectnotfound": ResponseCode.OBJECT_NOT_FOUND,
    "conflict": ResponseCode.CONFLICT,
    "usernotfound": ResponseCode.USER_NOT_FOUND,
    "invalidconfuserid": ResponseCode.INVALID_CONF_USER_ID,
    "invalidconferencepassword": ResponseCode.INVALID_CONFERENCE_PASSWORD,
    "conferencepasswordrequired": ResponseCode.CONFERENCE_PASSWORD_REQUIRED,
    "authenticationrequired": ResponseCode.AUTHENTICATION_REQUIRED,
    "forbiddendeleteparent": ResponseCode.FORBIDDEN_DELETE_PARENT,
    "deletefailedparent": ResponseCode.FORBIDDEN_DELETE_PARENT,
    "forbiddenchangeprotected": ResponseCode.FORBIDDEN_CHANGE_PROTECTED,
    "changefailedprotected": ResponseCode.FORBIDDEN_CHANGE_PROTECTED,
    "invaliddomainname": ResponseCode.INVALID_DOMAIN_NAME,
    "serverinternalerror": ResponseCode.SERVER_INTERNAL_ERROR,
    "notimplemented": ResponseCode.NOT_IMPLEMENTED,
    "requesttimeout": ResponseCode.REQUEST_TIMEOUT,
    "timeout": ResponseCode.REQUEST_TIMEOUT,
    "resourcesnotavailable": ResponseCode.RESOURCES_NOT_AVAILABLE,
}


def parse_response_code(text: str) -> ResponseCode:
    """A numeric (RFC 6503) or textual (draft era) response code; ValueError if unknown."""
    value = text.strip()
    if value.isdigit():
        return ResponseCode(int(value))
    key = "".join(ch for ch in value if ch.isalnum()).lower()
    try:
        return TEXTUAL_CODES[key]
    except KeyError:
        raise ValueError(f"unknown CCMP response code {value!r}") from None


@dataclass(frozen=True, slots=True)
class Subject:
    """The <subject> parameter (s5.1): the sender's username and password."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CcmpRequest:
    """A CCMP request (s5.1) with its specialized part (s5.3).

    `info` is the document parameter named by `message_type.info_element` (e.g. <confInfo>) as
    received; `extension_name`/`extension_payload` are for extendedRequest (s5.3.11).
    `namespace` is the CCMP namespace the request used, so the answer can use it too.
    """

    message_type: MessageType
    namespace: str = CCMP_NS
    subject: Subject | None = None
    conf_user_id: str | None = None
    conf_obj_id: str | None = None
    operation: Operation | None = None
    conference_password: str | None = field(default=None, repr=False)
    xpath_filter: str | None = None
    info: etree._Element | None = None
    extension_name: str | None = None
    extension_payload: tuple[etree._Element, ...] = ()


@dataclass(frozen=True, slots=True)
class UriEntry:
    """One entry of an info:uris-type list (blueprintsInfo, confsInfo, sidebarsByRefInfo)."""

    uri: str
    display_text: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class MessageCapability:
    """A <standard-message> or <extended-message> of an optionsResponse (s5.3.12)."""

    name: str
    operations: tuple[Operation, ...] = ()
    schema_def: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """The <options> of an optionsResponse (s5.3.12)."""

    standard: tuple[MessageCapability, ...]
    extended: tuple[MessageCapability, ...] = ()


@dataclass(frozen=True, slots=True)
class CcmpResponse:
    """A CCMP response (s5.2) with its specialized part (s5.3).

    Exactly one of `info` (a document parameter, named by `message_type.info_element`), `uris`
    (for the list pairs) or `options` is set on success when the pair carries data.
    `message_type` is None only for an error answer to a request whose type could not be
    told (s5.2: then no specialized response is included).
    """

    message_type: MessageType | None
    code: ResponseCode
    conf_user_id: str = ""
    namespace: str = CCMP_NS
    conf_obj_id: str | None = None
    operation: Operation | None = None
    response_string: str | None = None
    version: int | None = None
    info: etree._Element | None = None
    uris: tuple[UriEntry, ...] | None = None
    options: Options | None = None
    extension_name: str | None = None
    extension_payload: tuple[etree._Element, ...] = ()
