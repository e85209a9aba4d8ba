"""XML codec for the XCON conference object (RFC 6501 over RFC 4575).

Which element lives in which namespace follows the RFC 6501 s5 schema:
the RFC 4575 elements are in ``urn:ietf:params:xml:ns:conference-info``
and the ones RFC 6501 adds in ``urn:ietf:params:xml:ns:xcon-conference-info``.

The mapping between elements and model fields is written once, as data
(``_SPECS``), and both directions are driven by it, so the two can not
drift apart.  Serialization emits RFC 4575 children first in the order
of the RFC 4575 XML Schema, then RFC 6501 children, then preserved
extensions, so output also satisfies the RFC 4575 XSD.

Decoding is strict about what the schema fixes (types, required
attributes, duplicated single elements) and raises ``XconDecodeError``
naming the element and the fault; it is lenient about what the schema
leaves open (free-text enumeration values, unknown elements and
attributes, which are preserved as extensions; RFC 6501 s6).
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum, auto
from typing import Any, Final, TypeVar, cast

from lxml import etree

from focus.xcon.model import (
    CI_NS,
    XCON_NS,
    AllowedUsersList,
    Anonymity,
    AvailableMedia,
    CallInfo,
    Codec,
    CodecDecision,
    CodecPolicy,
    Codecs,
    ConferenceDescription,
    ConferenceFloorPolicy,
    ConferenceInfo,
    ConferenceMedium,
    ConferenceState,
    ConferenceTime,
    ConferenceTimeEntry,
    Controls,
    DenyUsersList,
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    Execution,
    Floor,
    FloorAlgorithm,
    FloorInformation,
    FloorRequestHandling,
    HostInfo,
    JoinHandling,
    JoiningMethod,
    Media,
    MediaStatus,
    Mixer,
    MixerFloor,
    MixerName,
    MixingMode,
    MixingOffset,
    PersistentList,
    PersistentUser,
    Role,
    SidebarsByVal,
    SipDialogId,
    State,
    Target,
    TargetMethod,
    UriEntry,
    Uris,
    User,
    UserAdmissionPolicy,
    Users,
    VideoLayout,
    XconElement,
)
from focus.xcon.safexml import XmlError, parse_xml

__all__ = [
    "NSMAP",
    "XconDecodeError",
    "conference_info_to_bytes",
    "parse_conference_info",
    "parse_element",
    "parse_sidebars_by_ref",
    "parse_uris",
    "parse_user",
    "parse_users",
    "serialize_conference_info",
    "serialize_element",
    "serialize_sidebars_by_ref",
    "serialize_uris",
    "serialize_user",
    "serialize_users",
    "user_to_bytes",
]

#: Prefixes used on output: RFC 4575 as the default namespace, as in RFC 6501 s7.
NSMAP: Final[dict[str | None, str]] = {None: CI_NS, "xcon": XCON_NS}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

E = TypeVar("E", bound=XconElement)


class XconDecodeError(ValueError):
    """A conference document does not follow RFC 4575/6501.

    The fault is the sender's (answer CCMP 400 / SIP 400).  ``element``
    names where (a path of element names), ``fault`` says what is wrong.
    """

    def __init__(self, element: str, fault: str) -> None:
        super().__init__(f"{element}: {fault}")
        self.element = element
        self.fault = fault


class _Kind(Enum):
    TEXT = auto()  # xsd:string, kept verbatim
    TOKEN = auto()  # anyURI, language, ...: surrounding whitespace dropped
    INT = auto()
    UINT = auto()
    BOOL = auto()
    DATETIME = auto()
    ENUM = auto()
    LIST = auto()  # whitespace-separated list -> tuple[str, ...]
    ROLES = auto()  # <roles><entry>..</entry>+</roles>
    OBJ = auto()  # a child element mapped to a model class
    MANY_OBJ = auto()
    MANY_TOKEN = auto()


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # model field
    tag: str  # Clark name of the child element or of the attribute
    kind: _Kind
    enum: type[StrEnum] | None = None
    closed: bool = False  # enum without the schema's free-text-extension
    cls: type[XconElement] | None = None
    required: bool = False
    low: int | None = None
    high: int | None = None
    qname: str = ""  # prefixed name used on output, see _qname()


@dataclass(frozen=True, slots=True)
class _Spec:
    attrs: tuple[_Field, ...]
    children: tuple[_Field, ...]
    body: _Field | None  # the element's own text content
    attr_map: dict[str, _Field]
    child_map: dict[str, _Field]
    required_attrs: tuple[_Field, ...]
    required_children: tuple[_Field, ...]


def _ci(local: str) -> str:
    return f"{{{CI_NS}}}{local}"


def _xc(local: str) -> str:
    return f"{{{XCON_NS}}}{local}"


def _qname(clark: str) -> str:
    """The name as written with NSMAP's prefixes (plain attributes stay plain)."""
    if clark.startswith(f"{{{CI_NS}}}"):
        return clark[len(CI_NS) + 2 :]
    if clark.startswith(f"{{{XCON_NS}}}"):
        return "xcon:" + clark[len(XCON_NS) + 2 :]
    if clark == _XML_LANG:
        return "xml:lang"
    assert not clark.startswith("{"), clark
    return clark


def _f(name: str, tag: str, kind: _Kind, **kw: Any) -> _Field:
    return _Field(name, tag, kind, qname=_qname(tag), **kw)


def _enum(name: str, tag: str, enum: type[StrEnum], **kw: Any) -> _Field:
    return _f(name, tag, _Kind.ENUM, enum=enum, **kw)


def _obj(name: str, tag: str, cls: type[XconElement], **kw: Any) -> _Field:
    return _f(name, tag, _Kind.OBJ, cls=cls, **kw)


def _many(name: str, tag: str, cls: type[XconElement]) -> _Field:
    return _f(name, tag, _Kind.MANY_OBJ, cls=cls)


def _state() -> _Field:
    return _enum("state", "state", State, closed=True)


_T, _K, _U, _B, _D = _Kind.TEXT, _Kind.TOKEN, _Kind.UINT, _Kind.BOOL, _Kind.DATETIME

_SPEC_SOURCE: dict[type[XconElement], tuple[tuple[_Field, ...], tuple[_Field, ...], _Field | None]]
_SPEC_SOURCE = {
    Execution: (
        (),
        (_f("when", _ci("when"), _D), _f("reason", _ci("reason"), _T), _f("by", _ci("by"), _K)),
        None,
    ),
    UriEntry: (
        (),
        (
            _f("uri", _ci("uri"), _K, required=True),
            _f("display_text", _ci("display-text"), _T),
            _f("purpose", _ci("purpose"), _T),
            _obj("modified", _ci("modified"), Execution),
            _f("conference_passwords", _xc("conference-password"), _Kind.MANY_TOKEN),
        ),
        None,
    ),
    Uris: ((_state(),), (_many("entries", _ci("entry"), UriEntry),), None),
    MixingOffset: (
        (_enum("required_participant", "required-participant", Role, required=True),),
        (),
        _f("time", "", _D, required=True),
    ),
    ConferenceTimeEntry: (
        (),
        (
            _f("base", _xc("base"), _T, required=True),
            _obj("mixing_start_offset", _xc("mixing-start-offset"), MixingOffset),
            _obj("mixing_end_offset", _xc("mixing-end-offset"), MixingOffset),
            _f("can_join_after_offset", _xc("can-join-after-offset"), _D),
            _f("must_join_before_offset", _xc("must-join-before-offset"), _D),
            _f("request_user", _xc("request-user"), _D),
            _f("notify_end_of_conference", _xc("notify-end-of-conference"), _U),
            _f("allowed_extend_mixing_end_offset", _xc("allowed-extend-mixing-end-offset"), _B),
        ),
        None,
    ),
    ConferenceTime: ((), (_many("entries", _xc("entry"), ConferenceTimeEntry),), None),
    Codec: (
        (
            _f("name", "name", _T, required=True),
            _enum("policy", "policy", CodecPolicy, required=True),
        ),
        (_f("subtype", _xc("subtype"), _T),),
        None,
    ),
    Codecs: (
        (_enum("decision", "decision", CodecDecision, required=True),),
        (_many("codecs", _xc("codec"), Codec),),
        None,
    ),
    Controls: (
        (),
        (
            _f("mute", _xc("mute"), _B),
            _f("pause_video", _xc("pause-video"), _B),
            _f("gain", _xc("gain"), _Kind.INT, low=-127, high=127),
            _enum("video_layout", _xc("video-layout"), VideoLayout),
        ),
        None,
    ),
    ConferenceMedium: (
        (_f("label", "label", _T, required=True),),
        (
            _f("display_text", _ci("display-text"), _T),
            _f("type", _ci("type"), _K),
            _enum("status", _ci("status"), MediaStatus),
            _enum("mixing_mode", _xc("mixing-mode"), MixingMode),
            _obj("codecs", _xc("codecs"), Codecs),
            _obj("controls", _xc("controls"), Controls),
        ),
        None,
    ),
    AvailableMedia: ((), (_many("entries", _ci("entry"), ConferenceMedium),), None),
    ConferenceDescription: (
        (_f("lang", _XML_LANG, _K),),
        (
            _f("display_text", _ci("display-text"), _T),
            _f("subject", _ci("subject"), _T),
            _f("free_text", _ci("free-text"), _T),
            _f("keywords", _ci("keywords"), _Kind.LIST),
            _obj("conf_uris", _ci("conf-uris"), Uris),
            _obj("service_uris", _ci("service-uris"), Uris),
            _f("maximum_user_count", _ci("maximum-user-count"), _U),
            _obj("available_media", _ci("available-media"), AvailableMedia),
            _f("language", _xc("language"), _K),
            _f("allow_sidebars", _xc("allow-sidebars"), _B),
            _f("cloning_parent", _xc("cloning-parent"), _K),
            _f("sidebar_parent", _xc("sidebar-parent"), _K),
            _obj("conference_time", _xc("conference-time"), ConferenceTime),
        ),
        None,
    ),
    HostInfo: (
        (),
        (
            _f("display_text", _ci("display-text"), _T),
            _f("web_page", _ci("web-page"), _K),
            _obj("uris", _ci("uris"), Uris),
        ),
        None,
    ),
    ConferenceState: (
        (),
        (
            _f("user_count", _ci("user-count"), _U),
            _f("active", _ci("active"), _B),
            _f("locked", _ci("locked"), _B),
            _f(
                "allow_conference_event_subscription",
                _xc("allow-conference-event-subscription"),
                _B,
            ),
        ),
        None,
    ),
    Floor: (
        (_f("id", "id", _T, required=True),),
        (
            _f("media_labels", _xc("media-label"), _Kind.MANY_TOKEN),
            _enum("algorithm", _xc("algorithm"), FloorAlgorithm),
            _f("max_floor_users", _xc("max-floor-users"), _U),
            _f("moderator_id", _xc("moderator-id"), _U),
        ),
        None,
    ),
    ConferenceFloorPolicy: ((), (_many("floors", _xc("floor"), Floor),), None),
    FloorInformation: (
        (),
        (
            _f("conference_id", _xc("conference-ID"), _U),
            _f("allow_floor_events", _xc("allow-floor-events"), _B),
            _enum("floor_request_handling", _xc("floor-request-handling"), FloorRequestHandling),
            _obj("conference_floor_policy", _xc("conference-floor-policy"), ConferenceFloorPolicy),
        ),
        None,
    ),
    Target: (
        (_f("uri", "uri", _K, required=True), _enum("method", "method", TargetMethod)),
        (),
        None,
    ),
    PersistentUser: (
        (
            _f("name", "name", _T, required=True),
            _f("nickname", "nickname", _T, required=True),
            _f("id", "id", _T, required=True),
        ),
        (_f("emails", _xc("e-mail"), _Kind.MANY_TOKEN),),
        None,
    ),
    PersistentList: ((), (_many("users", _xc("user"), PersistentUser),), None),
    AllowedUsersList: (
        (),
        (
            _many("targets", _xc("target"), Target),
            _obj("persistent_list", _xc("persistent-list"), PersistentList),
        ),
        None,
    ),
    DenyUsersList: ((), (_many("targets", _xc("target"), Target),), None),
    SipDialogId: (
        (),
        (
            _f("display_text", _ci("display-text"), _T),
            _f("call_id", _ci("call-id"), _T, required=True),
            _f("from_tag", _ci("from-tag"), _T, required=True),
            _f("to_tag", _ci("to-tag"), _T, required=True),
        ),
        None,
    ),
    CallInfo: ((), (_obj("sip", _ci("sip"), SipDialogId),), None),
    MixerFloor: ((_f("id", "id", _T, required=True),), (), _f("value", "", _B, required=True)),
    Mixer: (
        (_enum("name", "name", MixerName, required=True),),
        (
            _many("controls", _xc("controls"), Controls),
            _many("floors", _xc("floor"), MixerFloor),
        ),
        None,
    ),
    Media: (
        (_f("id", "id", _K, required=True),),
        (
            _f("display_text", _ci("display-text"), _T),
            _f("type", _ci("type"), _K),
            _f("label", _ci("label"), _K),
            _f("src_id", _ci("src-id"), _K),
            _enum("status", _ci("status"), MediaStatus),
            _obj("to_mixer", _xc("to-mixer"), Mixer),
            _obj("from_mixer", _xc("from-mixer"), Mixer),
        ),
        None,
    ),
    Endpoint: (
        (_f("entity", "entity", _K), _state()),
        (
            _f("display_text", _ci("display-text"), _T),
            _obj("referred", _ci("referred"), Execution),
            _enum("status", _ci("status"), EndpointStatus),
            _enum("joining_method", _ci("joining-method"), JoiningMethod),
            _obj("joining_info", _ci("joining-info"), Execution),
            _enum("disconnection_method", _ci("disconnection-method"), DisconnectionMethod),
            _obj("disconnection_info", _ci("disconnection-info"), Execution),
            _many("media", _ci("media"), Media),
            _obj("call_info", _ci("call-info"), CallInfo),
        ),
        None,
    ),
    User: (
        (_f("entity", "entity", _K), _state()),
        (
            _f("display_text", _ci("display-text"), _T),
            _obj("associated_aors", _ci("associated-aors"), Uris),
            _f("roles", _ci("roles"), _Kind.ROLES),
            _f("languages", _ci("languages"), _Kind.LIST),
            _f("cascaded_focus", _ci("cascaded-focus"), _K),
            _many("endpoints", _ci("endpoint"), Endpoint),
            _enum("provide_anonymity", _xc("provide-anonymity"), Anonymity),
            _f("allow_refer_users_dynamically", _xc("allow-refer-users-dynamically"), _B),
            _f("allow_invite_users_dynamically", _xc("allow-invite-users-dynamically"), _B),
            _f("allow_remove_users_dynamically", _xc("allow-remove-users-dynamically"), _B),
        ),
        None,
    ),
    Users: (
        (_state(),),
        (
            _many("users", _ci("user"), User),
            _enum("join_handling", _xc("join-handling"), JoinHandling),
            _enum("user_admission_policy", _xc("user-admission-policy"), UserAdmissionPolicy),
            _obj("allowed_users_list", _xc("allowed-users-list"), AllowedUsersList),
            _obj("deny_users_list", _xc("deny-users-list"), DenyUsersList),
        ),
        None,
    ),
    SidebarsByVal: ((_state(),), (_many("entries", _ci("entry"), ConferenceInfo),), None),
    ConferenceInfo: (
        (_f("entity", "entity", _K, required=True), _state(), _f("version", "version", _U)),
        (
            _obj("conference_description", _ci("conference-description"), ConferenceDescription),
            _obj("host_info", _ci("host-info"), HostInfo),
            _obj("conference_state", _ci("conference-state"), ConferenceState),
            _obj("users", _ci("users"), Users),
            _obj("sidebars_by_ref", _ci("sidebars-by-ref"), Uris),
            _obj("sidebars_by_val", _ci("sidebars-by-val"), SidebarsByVal),
            _obj("floor_information", _xc("floor-information"), FloorInformation),
        ),
        None,
    ),
}

_SPECS: Final[dict[type[XconElement], _Spec]] = {
    cls: _Spec(
        attrs=attrs,
        children=children,
        body=body,
        attr_map={f.tag: f for f in attrs},
        child_map={f.tag: f for f in children},
        required_attrs=tuple(f for f in attrs if f.required),
        required_children=tuple(f for f in children if f.required),
    )
    for cls, (attrs, children, body) in _SPEC_SOURCE.items()
}


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

# 20 digits hold any 64-bit value and keep int() far from its digit limit.
_INT = re.compile(r"[+-]?[0-9]{1,20}")
_UINT_MAX = 2**64 - 1
_DATETIME = re.compile(
    r"-?[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _where(el: etree._Element, attr: str | None = None) -> str:
    """A readable path such as <users>/<user>/<endpoint>/<status> (only built on error)."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        parts.append(f"<{etree.QName(node).localname}>")
        node = node.getparent()
    path = "/".join(reversed(parts))
    return f"{path}@{attr}" if attr else path


def _scalar(f: _Field, raw: str, el: etree._Element, attr: str | None) -> Any:
    """Convert ``raw`` per ``f``; '' (or blank for non-text kinds) gives None."""
    kind = f.kind
    if kind is _Kind.TEXT:
        return raw if raw else None
    value = raw.strip()
    if not value:
        return None
    if kind is _Kind.TOKEN:
        return value
    if kind is _Kind.ENUM:
        assert f.enum is not None
        member = f.enum._value2member_map_.get(value)
        if member is not None:
            return member
        if f.closed:
            allowed = ", ".join(repr(m.value) for m in f.enum)
            raise XconDecodeError(_where(el, attr), f"{value!r} is not one of {allowed}")
        return value
    if kind is _Kind.BOOL:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise XconDecodeError(_where(el, attr), f"{value!r} is not a boolean (true/false/1/0)")
    if kind is _Kind.INT or kind is _Kind.UINT:
        if not _INT.fullmatch(value):
            raise XconDecodeError(
                _where(el, attr), f"{value[:30]!r} is not an integer of at most 20 digits"
            )
        number = int(value)
        low, high = (0, _UINT_MAX) if kind is _Kind.UINT else (f.low, f.high)
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"{'-inf' if low is None else low}..{'inf' if high is None else high}"
            raise XconDecodeError(_where(el, attr), f"{number} is out of range {bounds}")
        return number
    if kind is _Kind.DATETIME:
        if not _DATETIME.fullmatch(value):
            raise XconDecodeError(_where(el, attr), f"{value!r} is not an xsd:dateTime")
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise XconDecodeError(_where(el, attr), f"{value!r}: {exc}") from None
    raise AssertionError(kind)  # pragma: no cover - specs only use the kinds above


def _text_of(el: etree._Element) -> str:
    if len(el):
        for child in el:
            tag: object = child.tag
            if isinstance(tag, str):
                raise XconDecodeError(_where(el), "must contain only text, found an element")
    return el.text or ""


def _extension(el: etree._Element) -> str:
    # Exclusive C14N gives one stable string per extension: only the
    # namespaces it uses, sorted attributes, so it round-trips unchanged.
    text: str = etree.tostring(
        el, method="c14n", exclusive=True, with_comments=False, with_tail=False
    ).decode("utf-8")
    if etree.QName(el).namespace is None:
        # An element in no namespace must say so, or it would land in the
        # default namespace of whatever document it is written into.
        local = etree.QName(el).localname
        text = f'<{local} xmlns=""' + text[len(local) + 1 :]
    return text


_OBJ, _MANY_OBJ, _MANY_TOKEN = _Kind.OBJ, _Kind.MANY_OBJ, _Kind.MANY_TOKEN
_TEXT, _LIST, _ROLES = _Kind.TEXT, _Kind.LIST, _Kind.ROLES
_TOKEN, _ENUM = _Kind.TOKEN, _Kind.ENUM


def _decode(cls: type[E], el: etree._Element) -> E:
    spec = _SPECS[cls]
    kw: dict[str, Any] = {}
    ext_attrs: list[tuple[str, str]] | None = None
    for name, value in cast(list[tuple[str, str]], el.items()):
        f = spec.attr_map.get(name)
        if f is None:
            if ext_attrs is None:
                ext_attrs = []
            ext_attrs.append((name, value))
            continue
        converted = _scalar(f, value, el, name)
        if converted is not None:
            kw[f.name] = converted
    for f in spec.required_attrs:
        if f.name not in kw:
            raise XconDecodeError(_where(el), f"missing required attribute {f.tag!r}")
    if spec.body is not None:
        body = _scalar(spec.body, _text_of(el), el, None)
        if body is None:
            raise XconDecodeError(_where(el), "missing value")
        kw[spec.body.name] = body

    child_map = spec.child_map
    cleared: set[str] | None = None
    extensions: list[str] | None = None
    many: dict[str, list[Any]] | None = None
    for child in el:
        tag: object = child.tag  # a function, not a str, for comments and PIs
        f = child_map.get(tag) if isinstance(tag, str) else None
        if f is None:
            if isinstance(tag, str):
                if extensions is None:
                    extensions = []
                extensions.append(_extension(child))
            continue
        kind = f.kind
        name = f.name
        if kind is _MANY_OBJ or kind is _MANY_TOKEN:
            if many is None:
                many = {}
            items = many.get(name)
            if items is None:
                items = many[name] = []
            if kind is _MANY_OBJ:
                assert f.cls is not None
                items.append(_decode(f.cls, child))
            else:
                items.append(_text_of(child).strip())
            continue
        if name in kw or (cleared is not None and name in cleared):
            raise XconDecodeError(_where(child), "appears more than once")
        if kind is _OBJ:
            assert f.cls is not None
            kw[name] = _decode(f.cls, child)
            continue
        if kind is _ROLES:
            found: Any = _roles(child)
        else:
            if len(child):
                _text_of(child)  # raises: a simple element holds text only
            raw = child.text or ""
            if kind is _TEXT:
                found = raw or None
            elif kind is _TOKEN:
                found = raw.strip() or None
            elif kind is _ENUM and f.enum is not None and not f.closed:
                raw = raw.strip()
                found = f.enum._value2member_map_.get(raw, raw) or None
            elif kind is _LIST:
                found = tuple(raw.split()) or None
            else:
                found = _scalar(f, raw, child, None)
        if found is not None:
            kw[name] = found
        elif f.required and kind is _TEXT:
            kw[name] = ""
        else:
            if cleared is None:
                cleared = set()
            cleared.add(name)
    if many is not None:
        for name, values in many.items():
            kw[name] = tuple(values)
    for f in spec.required_children:
        if f.name not in kw:
            raise XconDecodeError(
                _where(el), f"missing required element <{etree.QName(f.tag).localname}>"
            )
    if extensions is not None:
        kw["extensions"] = tuple(extensions)
    if ext_attrs is not None:
        kw["extension_attributes"] = tuple(ext_attrs)
    if cleared is not None:
        kw["cleared"] = frozenset(cleared)
    return cls(**kw)


_ROLE_ENTRY = _ci("entry")


def _roles(el: etree._Element) -> tuple[Role | str, ...] | None:
    roles: list[Role | str] = []
    for child in el:
        tag: object = child.tag
        if not isinstance(tag, str):
            continue
        if tag != _ROLE_ENTRY:
            raise XconDecodeError(_where(child), "unexpected element in <roles>")
        value = _text_of(child).strip()
        if not value:
            raise XconDecodeError(_where(child), "empty role")
        member = Role._value2member_map_.get(value)
        roles.append(member if isinstance(member, Role) else value)
    return tuple(roles) or None


def _root(data: bytes | etree._Element, expected: str | None) -> etree._Element:
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            root = parse_xml(bytes(data))
        except XmlError as exc:
            raise XconDecodeError("document", str(exc)) from None
        if expected is not None and root.tag != expected:
            raise XconDecodeError(
                f"<{etree.QName(root).localname}>",
                f"root element must be {expected} (check the namespace)",
            )
        return root
    return data


def parse_element(cls: type[E], el: etree._Element) -> E:
    """Decode ``el`` (whatever its own tag) as the model class ``cls``."""
    return _decode(cls, el)


def parse_conference_info(data: bytes | etree._Element) -> ConferenceInfo:
    """Decode a conference document (bytes) or any conference-type element
    (``<conference-info>``, CCMP ``<confInfo>``, a sidebars-by-val ``<entry>``)."""
    return _decode(ConferenceInfo, _root(data, _ci("conference-info")))


def parse_user(data: bytes | etree._Element) -> User:
    """Decode a user-type element (``<user>``, CCMP ``<userInfo>``)."""
    return _decode(User, _root(data, _ci("user")))


def parse_users(data: bytes | etree._Element) -> Users:
    """Decode a users-type element (``<users>``, CCMP ``<usersInfo>``)."""
    return _decode(Users, _root(data, _ci("users")))


def parse_uris(data: bytes | etree._Element) -> Uris:
    """Decode a uris-type element (CCMP ``<confsInfo>``, ``<blueprintsInfo>``, ...),
    whatever its name."""
    return _decode(Uris, _root(data, None))


def parse_sidebars_by_ref(data: bytes | etree._Element) -> Uris:
    """Decode ``<sidebars-by-ref>`` or CCMP ``<sidebarsByRefInfo>`` (a uris-type)."""
    return parse_uris(data)


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


def _format(f: _Field, value: Any) -> str:
    kind = f.kind
    if kind is _Kind.BOOL:
        return "true" if value else "false"
    if kind is _Kind.INT or kind is _Kind.UINT:
        return str(int(value))
    if kind is _Kind.DATETIME:
        return _format_datetime(value)
    return str(value)


def _format_datetime(value: datetime) -> str:
    text = value.isoformat()
    if value.utcoffset() == timedelta(0) and text.endswith("+00:00"):
        return text[: -len("+00:00")] + "Z"
    return text


_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# Chained str.replace rather than str.translate: on the short values of a conference
# document it is an order of magnitude faster (translate looks up every character).
def _esc_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _esc_attr(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
        .replace("\n", "&#10;")
        .replace("\t", "&#9;")
    )


_ROOT_NS = f' xmlns="{CI_NS}" xmlns:xcon="{XCON_NS}"'


def _ext_attrs(pairs: tuple[tuple[str, str], ...]) -> str:
    """Unknown attributes, each foreign namespace declared on the spot."""
    parts: list[str] = []
    prefixes: dict[str, str] = {}
    for clark, value in pairs:
        if clark.startswith("{"):
            ns, _, local = clark[1:].partition("}")
            if ns == "http://www.w3.org/XML/1998/namespace":
                name = "xml:" + local
            elif ns == XCON_NS:
                name = "xcon:" + local
            else:
                prefix = prefixes.get(ns)
                if prefix is None:
                    prefix = prefixes[ns] = f"ext{len(prefixes)}"
                    parts.append(f' xmlns:{prefix}="{_esc_attr(ns)}"')
                name = f"{prefix}:{local}"
        else:
            name = clark
        parts.append(f' {name}="{_esc_attr(value)}"')
    return "".join(parts)


def _write(obj: XconElement, qname: str, out: list[str], root_attrs: str = "") -> None:
    """Append the XML text of ``obj`` as element ``qname`` to ``out``.

    Text is written directly rather than through lxml's tree API: it is
    several times faster, and the result is still parsed (or validated by
    the caller's tests) as XML.
    """
    spec = _SPECS[type(obj)]
    out.append("<" + qname + root_attrs)
    for f in spec.attrs:
        value = getattr(obj, f.name)
        if value is not None:
            out.append(f' {f.qname}="{_esc_attr(_format(f, value))}"')
    if obj.extension_attributes:
        out.append(_ext_attrs(obj.extension_attributes))
    mark = len(out)
    out.append(">")
    if spec.body is not None:
        if obj.extensions:
            # RFC 6501 s5 gives these text-only elements no anyElement.
            raise ValueError(f"{type(obj).__name__} can not carry extension elements")
        out.append(_esc_text(_format(spec.body, getattr(obj, spec.body.name))))
    cleared = obj.cleared
    for f in spec.children:
        value = getattr(obj, f.name)
        kind = f.kind
        if kind is _MANY_OBJ:
            for item in value:
                _write(item, f.qname, out)
        elif value is None:
            if cleared and f.name in cleared:
                out.append(f"<{f.qname}/>")
        elif kind is _OBJ:
            _write(value, f.qname, out)
        elif kind is _MANY_TOKEN:
            for item in value:
                out.append(f"<{f.qname}>{_esc_text(item)}</{f.qname}>")
        elif kind is _ROLES:
            out.append(f"<{f.qname}>")
            for role in value:
                out.append(f"<entry>{_esc_text(str(role))}</entry>")
            out.append(f"</{f.qname}>")
        else:
            text = " ".join(value) if kind is _LIST else _format(f, value)
            out.append(f"<{f.qname}>{_esc_text(text)}</{f.qname}>")
    for xml in obj.extensions:
        out.append(_checked_extension(xml))
    if len(out) == mark + 1:
        out[mark] = "/>"
    else:
        out.append(f"</{qname}>")


def _document(obj: XconElement, qname: str) -> str:
    out: list[str] = []
    _write(obj, qname, out, _ROOT_NS)
    text = "".join(out)
    bad = _BAD_XML_CHARS.search(text)
    if bad is not None:
        raise ValueError(f"{type(obj).__name__} holds {bad.group()!r}, which XML can not carry")
    return text


_LOCAL = threading.local()


def _serializer_parser() -> etree.XMLParser:
    # Re-reads our own output only (extensions were checked by
    # _checked_extension), so no size caps; one parser per thread as lxml asks.
    parser: etree.XMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
            collect_ids=False,
        )
    return parser


@functools.lru_cache(maxsize=4096)
def _checked_extension(xml: str) -> str:
    """``xml`` if it is one well-formed element (checked once per string).

    Extensions are written verbatim, so a malformed one built by hand must
    be stopped here rather than corrupt the whole document.
    """
    if not xml.lstrip().startswith("<") or xml.lstrip().startswith("<?"):
        raise ValueError(f"{xml[:60]!r} is not a valid extension element: not an element")
    try:
        parse_xml(xml.encode("utf-8"))
    except XmlError as exc:
        raise ValueError(f"{xml[:60]!r} is not a valid extension element: {exc}") from None
    return xml


def serialize_element(obj: XconElement, tag: str) -> etree._Element:
    """Encode ``obj`` as a new root element named ``tag`` (a Clark name).

    Raises ValueError if a text in ``obj`` holds characters XML can not
    carry, or an extension string is not well-formed XML.
    """
    text = _document(obj, "root")
    try:
        root = etree.fromstring(text, _serializer_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{type(obj).__name__} does not serialize to XML: {exc}") from None
    root.tag = tag
    return root


def serialize_conference_info(
    ci: ConferenceInfo, tag: str = _ci("conference-info")
) -> etree._Element:
    """Encode a conference object; ``tag`` lets CCMP name it ``confInfo``."""
    return serialize_element(ci, tag)


def serialize_user(user: User, tag: str = _ci("user")) -> etree._Element:
    """Encode a user; ``tag`` lets CCMP name it ``userInfo``."""
    return serialize_element(user, tag)


def serialize_users(users: Users, tag: str = _ci("users")) -> etree._Element:
    """Encode a users-type element; ``tag`` lets CCMP name it ``usersInfo``."""
    return serialize_element(users, tag)


def serialize_uris(uris: Uris, tag: str) -> etree._Element:
    """Encode a uris-type element under the Clark name ``tag``."""
    return serialize_element(uris, tag)


def serialize_sidebars_by_ref(uris: Uris, tag: str = _ci("sidebars-by-ref")) -> etree._Element:
    """Encode ``<sidebars-by-ref>`` (or CCMP ``<sidebarsByRefInfo>`` via ``tag``)."""
    return serialize_element(uris, tag)


_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


def conference_info_to_bytes(ci: ConferenceInfo) -> bytes:
    """A complete application/conference-info+xml document (UTF-8, with declaration)."""
    return (_DECLARATION + _document(ci, "conference-info")).encode("utf-8")


def user_to_bytes(user: User) -> bytes:
    """A standalone ``<user>`` document (UTF-8, with declaration)."""
    return (_DECLARATION + _document(user, "user")).encode("utf-8")
