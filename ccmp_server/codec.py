"""CCMP messages <-> XML bytes (RFC 6503 s5 and the schema of s11). Pure: no I/O, no core.

Reading is liberal where the published examples differ from the schema: both the RFC 6503
namespace and the draft/RFC 6504 one, the common parameters qualified or not and in any order,
textual response codes, and a specialized element that only the xsi:type names. Writing is
strict: the request's namespace, the schema's element order, numeric response codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy

from lxml import etree

from focus.xcon.safexml import XmlError, parse_xml

from .messages import (
    CCMP_NAMESPACES,
    CCMP_NS,
    INFO_NS,
    URI_LIST_TYPES,
    XCON_NS,
    XPATH_FILTER_TYPES,
    XSI_NS,
    CcmpRequest,
    CcmpResponse,
    MessageCapability,
    MessageType,
    Operation,
    Options,
    ResponseCode,
    Subject,
    UriEntry,
    parse_response_code,
)

DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_DEPTH = 64

_BY_REQUEST_ELEMENT = {t.request_element: t for t in MessageType}
_BY_RESPONSE_ELEMENT = {t.response_element: t for t in MessageType}
_BY_REQUEST_XSI = {t.request_xsi_type.lower(): t for t in MessageType}
_BY_RESPONSE_XSI = {t.response_xsi_type.lower(): t for t in MessageType}
_COMMON_REQUEST = ("subject", "confUserID", "confObjID", "operation", "conference-password")
_COMMON_RESPONSE = (
    "confUserID",
    "confObjID",
    "operation",
    "response-code",
    "response-string",
    "version",
)


class CcmpDecodeError(ValueError):
    """The peer sent a CCMP message we cannot read: answer it with `code` (400 by default).

    Carries whatever was understood before the fault so the error answer can echo the
    namespace, message type and identifiers of the request.
    """

    def __init__(
        self,
        message: str,
        *,
        code: ResponseCode = ResponseCode.BAD_REQUEST,
        namespace: str = CCMP_NS,
        message_type: MessageType | None = None,
        conf_user_id: str | None = None,
        conf_obj_id: str | None = None,
        operation: Operation | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.namespace = namespace
        self.message_type = message_type
        self.conf_user_id = conf_user_id
        self.conf_obj_id = conf_obj_id
        self.operation = operation


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _ns(el: etree._Element) -> str | None:
    return etree.QName(el).namespace


def _text(el: etree._Element) -> str:
    # Published examples wrap values across lines; identifiers never carry outer blanks.
    return "".join(str(t) for t in el.itertext()).strip()


def _xsi_local(el: etree._Element) -> str | None:
    value = el.get(f"{{{XSI_NS}}}type")
    if value is None:
        return None
    return value.rsplit(":", 1)[-1].strip().lower()


def _children(el: etree._Element) -> Iterable[etree._Element]:
    # Comments and processing instructions are not content.
    return (c for c in el if isinstance(c.tag, str))


def _parse(data: bytes, max_bytes: int, max_depth: int) -> etree._Element:
    try:
        return parse_xml(data, max_bytes=max_bytes, max_depth=max_depth)
    except XmlError as exc:
        raise CcmpDecodeError(f"malformed XML: {exc}") from exc


def _root_and_inner(root: etree._Element, outer_name: str) -> tuple[str, etree._Element]:
    ns = _ns(root)
    if ns not in CCMP_NAMESPACES or _local(root) != outer_name:
        raise CcmpDecodeError(
            f"root element must be {outer_name} in namespace {CCMP_NS}, got {root.tag!r}"
        )
    assert ns is not None
    inner = list(_children(root))
    if len(inner) != 1 or _local(inner[0]) != outer_name or _ns(inner[0]) not in (None, ns):
        raise CcmpDecodeError(
            f"{outer_name} must contain exactly one {outer_name} child element", namespace=ns
        )
    return ns, inner[0]


def _parse_operation(text: str, err: CcmpDecodeError) -> Operation:
    try:
        return Operation(text)
    except ValueError:
        err.args = (f"unknown operation {text!r} (retrieve, create, update, delete)",)
        raise err from None


def decode_request(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> CcmpRequest:
    """Read a ccmpRequest document; CcmpDecodeError (a 400) for anything unreadable."""
    root = _parse(data, max_bytes, max_depth)
    ns, inner = _root_and_inner(root, "ccmpRequest")
    common: dict[str, etree._Element] = {}
    specialized: list[etree._Element] = []
    for child in _children(inner):
        name, cns = _local(child), _ns(child)
        if cns not in (None, ns):
            continue  # s5.1: <xs:any namespace="##other"> extension content is ignored
        if name in _COMMON_REQUEST:
            if name in common:
                raise CcmpDecodeError(f"duplicate <{name}> parameter", namespace=ns)
            common[name] = child
        elif name in _BY_REQUEST_ELEMENT:
            specialized.append(child)
        else:
            raise CcmpDecodeError(f"unexpected element <{name}> in ccmpRequest", namespace=ns)

    conf_user_id = _text(common["confUserID"]) if "confUserID" in common else None
    conf_obj_id = _text(common["confObjID"]) if "confObjID" in common else None
    err = CcmpDecodeError("", namespace=ns, conf_user_id=conf_user_id, conf_obj_id=conf_obj_id)
    operation = None
    if "operation" in common:
        operation = _parse_operation(_text(common["operation"]), err)
        err.operation = operation

    if len(specialized) > 1:
        err.args = ("more than one specialized request element",)
        raise err
    xsi = _xsi_local(inner)
    by_xsi = _BY_REQUEST_XSI.get(xsi) if xsi is not None else None
    if xsi is not None and by_xsi is None:
        err.args = (f"unknown request type xsi:type={xsi!r}",)
        raise err
    by_element = _BY_REQUEST_ELEMENT[_local(specialized[0])] if specialized else None
    if by_element is not None and by_xsi is not None and by_element != by_xsi:
        err.message_type = by_element
        err.args = (f"xsi:type {xsi!r} does not match <{by_element.request_element}>",)
        raise err
    message_type = by_element or by_xsi
    if message_type is None:
        err.args = ("no specialized request message (e.g. <confRequest>) in ccmpRequest",)
        raise err
    err.message_type = message_type

    subject = None
    if "subject" in common:
        subject = _decode_subject(common["subject"], ns)
    password = _text(common["conference-password"]) if "conference-password" in common else None
    if password is None and "subject" in common:
        # RFC 6504 s6.2 prints <conference-password> inside <subject>; read it from there too.
        for part in _children(common["subject"]):
            if _local(part) == "conference-password" and _ns(part) in (None, ns):
                password = _text(part)
    xpath_filter: str | None = None
    info: etree._Element | None = None
    extension_name: str | None = None
    payload: list[etree._Element] = []
    if specialized:
        seen: set[str] = set()
        for part in _children(specialized[0]):
            name, pns = _local(part), _ns(part)
            if pns not in (None, ns):
                payload.append(part)
                continue
            if name in seen:
                err.args = (f"duplicate <{name}> in <{message_type.request_element}>",)
                raise err
            seen.add(name)
            if name == "xpathFilter" and message_type in XPATH_FILTER_TYPES:
                xpath_filter = _text(part)
            elif name == message_type.info_element:
                info = part
            elif name == "extensionName" and message_type is MessageType.EXTENDED:
                extension_name = _text(part)
            elif name == "operation" and operation is None:
                # The draft era (the seed's s5.4) put <operation> in the specialized part.
                operation = _parse_operation(_text(part), err)
                err.operation = operation
            else:
                err.args = (f"unexpected <{name}> in <{message_type.request_element}>",)
                raise err
    if message_type is MessageType.EXTENDED and not extension_name:
        err.args = ("extendedRequest requires <extensionName>",)
        raise err
    return CcmpRequest(
        message_type=message_type,
        namespace=ns,
        subject=subject,
        conf_user_id=conf_user_id,
        conf_obj_id=conf_obj_id,
        operation=operation,
        conference_password=password,
        xpath_filter=xpath_filter,
        info=info,
        extension_name=extension_name,
        extension_payload=tuple(payload),
    )


def _decode_subject(el: etree._Element, ns: str) -> Subject:
    username = password = None
    for part in _children(el):
        if _ns(part) not in (None, ns):
            continue
        if _local(part) == "username":
            username = _text(part)
        elif _local(part) == "password":
            # Passwords are compared verbatim: no stripping.
            password = "".join(str(t) for t in part.itertext())
    return Subject(username=username, password=password)


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def _nsmap(ns: str) -> dict[str, str]:
    return {"ccmp": ns, "info": INFO_NS, "xcon": XCON_NS, "xsi": XSI_NS}


def _adopt(parent: etree._Element, name: str, el: etree._Element) -> None:
    """Append a copy of `el` under `parent` renamed to the unqualified parameter `name`."""
    copy = deepcopy(el)  # the caller's element stays where it is
    copy.tag = name
    parent.append(copy)


def _to_bytes(root: etree._Element) -> bytes:
    etree.cleanup_namespaces(root, keep_ns_prefixes=["ccmp", "info", "xcon", "xsi"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def encode_request(req: CcmpRequest) -> bytes:
    """Serialize a request in the schema's order (used by the client and in tests)."""
    ns = req.namespace
    root = etree.Element(f"{{{ns}}}ccmpRequest", nsmap=_nsmap(ns))
    inner = _sub(root, "ccmpRequest")
    inner.set(f"{{{XSI_NS}}}type", f"ccmp:{req.message_type.request_xsi_type}")
    if req.subject is not None:
        subject = _sub(inner, "subject")
        if req.subject.username is not None:
            _sub(subject, "username", req.subject.username)
        if req.subject.password is not None:
            _sub(subject, "password", req.subject.password)
    if req.conf_user_id is not None:
        _sub(inner, "confUserID", req.conf_user_id)
    if req.conf_obj_id is not None:
        _sub(inner, "confObjID", req.conf_obj_id)
    if req.operation is not None:
        _sub(inner, "operation", req.operation.value)
    if req.conference_password is not None:
        _sub(inner, "conference-password", req.conference_password)
    if req.message_type is not MessageType.OPTIONS:
        spec = _sub(inner, f"{{{ns}}}{req.message_type.request_element}")
        if req.extension_name is not None:
            _sub(spec, "extensionName", req.extension_name)
        if req.xpath_filter is not None:
            _sub(spec, "xpathFilter", req.xpath_filter)
        if req.info is not None and req.message_type.info_element is not None:
            _adopt(spec, req.message_type.info_element, req.info)
        for extra in req.extension_payload:
            spec.append(deepcopy(extra))
    return _to_bytes(root)


def encode_response(resp: CcmpResponse) -> bytes:
    """Serialize a response: the request's namespace, numeric code, schema order (s5.2)."""
    ns = resp.namespace
    root = etree.Element(f"{{{ns}}}ccmpResponse", nsmap=_nsmap(ns))
    inner = _sub(root, "ccmpResponse")
    mt = resp.message_type
    if mt is not None:
        inner.set(f"{{{XSI_NS}}}type", f"ccmp:{mt.response_xsi_type}")
    _sub(inner, "confUserID", resp.conf_user_id)
    if resp.conf_obj_id is not None:
        _sub(inner, "confObjID", resp.conf_obj_id)
    if resp.operation is not None:
        _sub(inner, "operation", resp.operation.value)
    _sub(inner, "response-code", str(int(resp.code)))
    _sub(inner, "response-string", resp.response_string or resp.code.reason)
    if resp.version is not None:
        _sub(inner, "version", str(resp.version))
    if mt is None:
        # s5.2: no specialized part when the request had no valid specialized message.
        return _to_bytes(root)
    spec = _sub(inner, f"{{{ns}}}{mt.response_element}")
    if resp.extension_name is not None:
        _sub(spec, "extensionName", resp.extension_name)
    info_name = mt.info_element
    if resp.uris is not None and info_name is not None:
        _encode_uris(_sub(spec, info_name), resp.uris)
    elif resp.info is not None and info_name is not None:
        _adopt(spec, info_name, resp.info)
    if resp.options is not None:
        _encode_options(_sub(spec, "options"), resp.options)
    for extra in resp.extension_payload:
        spec.append(deepcopy(extra))
    return _to_bytes(root)


def _encode_uris(parent: etree._Element, uris: Iterable[UriEntry]) -> None:
    for entry in uris:
        el = _sub(parent, f"{{{INFO_NS}}}entry")
        _sub(el, f"{{{INFO_NS}}}uri", entry.uri)
        if entry.display_text is not None:
            _sub(el, f"{{{INFO_NS}}}display-text", entry.display_text)
        if entry.purpose is not None:
            _sub(el, f"{{{INFO_NS}}}purpose", entry.purpose)


def _encode_capability(parent: etree._Element, tag: str, cap: MessageCapability) -> None:
    el = _sub(parent, tag)
    _sub(el, "name", cap.name)
    if cap.operations:
        ops = _sub(el, "operations")
        for op in cap.operations:
            _sub(ops, "operation", op.value)
    if cap.schema_def is not None:
        _sub(el, "schema-def", cap.schema_def)
    if cap.description is not None:
        _sub(el, "description", cap.description)


def _encode_options(parent: etree._Element, options: Options) -> None:
    std = _sub(parent, "standard-message-list")
    for cap in options.standard:
        _encode_capability(std, "standard-message", cap)
    if options.extended:
        ext = _sub(parent, "extended-message-list")
        for cap in options.extended:
            _encode_capability(ext, "extended-message", cap)


def decode_response(
    data: bytes, *, max_bytes: int = 10 * DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> CcmpResponse:
    """Read a ccmpResponse (client side and tests); textual draft-era codes are understood."""
    root = _parse(data, max_bytes, max_depth)
    ns, inner = _root_and_inner(root, "ccmpResponse")
    values: dict[str, str] = {}
    specialized: etree._Element | None = None
    for child in _children(inner):
        name, cns = _local(child), _ns(child)
        if cns not in (None, ns):
            continue
        if name in _COMMON_RESPONSE:
            values[name] = _text(child)
        elif name in _BY_RESPONSE_ELEMENT:
            specialized = child
        else:
            raise CcmpDecodeError(f"unexpected element <{name}> in ccmpResponse", namespace=ns)
    xsi = _xsi_local(inner)
    message_type = (
        _BY_RESPONSE_ELEMENT[_local(specialized)]
        if specialized is not None
        else _BY_RESPONSE_XSI.get(xsi or "")
    )
    if message_type is None and xsi is not None and xsi != "ccmp-response-message-type":
        raise CcmpDecodeError(f"unknown response type xsi:type={xsi!r}", namespace=ns)
    if "response-code" not in values:
        raise CcmpDecodeError("ccmpResponse without <response-code>", namespace=ns)
    try:
        code = parse_response_code(values["response-code"])
        operation = Operation(values["operation"]) if "operation" in values else None
        version = int(values["version"]) if "version" in values else None
    except ValueError as exc:
        raise CcmpDecodeError(str(exc), namespace=ns) from exc
    info = uris = options = extension_name = None
    payload: list[etree._Element] = []
    if specialized is not None and message_type is not None:
        for part in _children(specialized):
            name = _local(part)
            if _ns(part) not in (None, ns):
                payload.append(part)
            elif name == "extensionName":
                extension_name = _text(part)
            elif name == "options":
                options = _decode_options(part)
            elif name == message_type.info_element:
                if message_type in URI_LIST_TYPES:
                    uris = _decode_uris(part)
                else:
                    info = part
    return CcmpResponse(
        message_type=message_type,
        code=code,
        conf_user_id=values.get("confUserID", ""),
        namespace=ns,
        conf_obj_id=values.get("confObjID"),
        operation=operation,
        response_string=values.get("response-string"),
        version=version,
        info=info,
        uris=uris,
        options=options,
        extension_name=extension_name,
        extension_payload=tuple(payload),
    )


def _decode_uris(el: etree._Element) -> tuple[UriEntry, ...]:
    entries: list[UriEntry] = []
    for entry in _children(el):
        fields: dict[str, str] = {}
        for part in _children(entry):
            fields[_local(part)] = _text(part)
        if "uri" in fields:
            entries.append(
                UriEntry(fields["uri"], fields.get("display-text"), fields.get("purpose"))
            )
    return tuple(entries)


def _decode_options(el: etree._Element) -> Options:
    lists: dict[str, list[MessageCapability]] = {"standard": [], "extended": []}
    for lst in _children(el):
        kind = _local(lst).split("-", 1)[0]
        if kind not in lists:
            continue
        for msg in _children(lst):
            fields: dict[str, str] = {}
            ops: list[Operation] = []
            for part in _children(msg):
                if _local(part) == "operations":
                    ops.extend(Operation(_text(o)) for o in _children(part))
                else:
                    fields[_local(part)] = _text(part)
            lists[kind].append(
                MessageCapability(
                    name=fields.get("name", ""),
                    operations=tuple(ops),
                    schema_def=fields.get("schema-def"),
                    description=fields.get("description"),
                )
            )
    return Options(standard=tuple(lists["standard"]), extended=tuple(lists["extended"]))
