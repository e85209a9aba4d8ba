"""lxml codec of the msc-ivr/1.0 bodies in :mod:`mediactrl.ivr.model` (RFC 6231).

Decoding is defensive like the mixer codec's: the body is size-capped, parsed with entity
resolution, network access and DTD loading off, a DOCTYPE is refused and nesting depth is
capped.  The shapes are checked by hand against RFC 6231 s4.2 (the package schema of s5 is
not extracted here).  Every failure is an :class:`IvrDecodeError` whose ``status`` (400, or
431 for a foreign-namespace subscription, s4.5) and ``dialogid`` go into the <response>.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from focus.xcon.safexml import XmlError, parse_xml
from mediactrl.ivr.model import (
    Dialog,
    DialogExit,
    DialogStart,
    DialogTerminate,
    DtmfMatchMode,
    DtmfNotify,
    DtmfSub,
    Event,
    IvrMessage,
    IvrStatus,
    Response,
    Subscribe,
    UnsupportedRequest,
)

__all__ = [
    "CONTENT_TYPE",
    "NAMESPACE",
    "PACKAGE",
    "DecodeLimits",
    "IvrDecodeError",
    "decode",
    "encode",
]

NAMESPACE: Final = "urn:ietf:params:xml:ns:msc-ivr"
PACKAGE: Final = "msc-ivr/1.0"  # RFC 6231 s3
CONTENT_TYPE: Final = "application/msc-ivr+xml"  # RFC 6231 s8.4
_NS = f"{{{NAMESPACE}}}"
_OPERATIONS: Final = ("prompt", "control", "collect", "record")
_DTMF_STRING = re.compile(r"[0-9#*A-Da-d]+")  # s4.6.3
_STATUS = re.compile(r"[0-9]{3}")


@dataclass(frozen=True)
class DecodeLimits:
    """Caps on what :func:`decode` reads: total bytes and element nesting depth."""

    max_bytes: int = 64 * 1024
    max_depth: int = 16


class IvrDecodeError(ValueError):
    """A body that is not a valid msc-ivr document: answer a <response> with ``status`` and
    ``dialogid`` (the request's, or "" when it had none, s4.2.4)."""

    def __init__(self, reason: str, status: int = IvrStatus.SYNTAX_ERROR, dialogid: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.dialogid = dialogid


# ----------------------------------------------------------------- decoding
def decode(data: bytes, limits: DecodeLimits | None = None) -> IvrMessage:
    """The message carried by an ``application/msc-ivr+xml`` body."""
    limits = limits or DecodeLimits()
    try:
        # The one hardened parser of the project: no DTD, no entities, no network, capped.
        root = parse_xml(data, max_bytes=limits.max_bytes, max_depth=limits.max_depth)
    except XmlError as exc:
        raise IvrDecodeError(str(exc)) from exc
    if root.tag != f"{_NS}mscivr":
        raise IvrDecodeError(f"root element is {root.tag}, not mscivr in {NAMESPACE}")
    if root.get("version") != "1.0":
        raise IvrDecodeError("mscivr version must be 1.0 (s4.1)")
    children = _mine(root)
    if len(children) != 1:
        raise IvrDecodeError("mscivr must hold exactly one element (s4.1)")
    element = children[0]
    name = _local(element)
    if name == "dialogstart":
        return _dialogstart(element)
    if name == "dialogterminate":
        dialogid = element.get("dialogid")
        if dialogid is None:
            raise IvrDecodeError("Attribute required: dialogid")
        return DialogTerminate(dialogid, _bool(element, "immediate", False, dialogid))
    if name in ("dialogprepare", "audit"):
        return UnsupportedRequest(name, element.get("dialogid") or "")
    if name == "response":
        return _response(element)
    if name == "event":
        return _event(element)
    raise IvrDecodeError(f"<{name}> is not an msc-ivr element")


def _local(element: etree._Element) -> str:
    return str(element.tag)[len(_NS) :]


def _mine(element: etree._Element) -> list[etree._Element]:
    """Children in the package namespace (foreign ones are extensions, s4)."""
    return [c for c in element if isinstance(c.tag, str) and c.tag.startswith(_NS)]


def _bool(element: etree._Element, name: str, default: bool, dialogid: str = "") -> bool:
    value = element.get(name)
    if value is None:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise IvrDecodeError(f"{name}={value!r} is no boolean (s4.6.1)", dialogid=dialogid)


def _matchmode(element: etree._Element, dialogid: str = "") -> DtmfMatchMode:
    value = element.get("matchmode", DtmfMatchMode.ALL.value)
    try:
        return DtmfMatchMode(value)
    except ValueError:
        raise IvrDecodeError(
            f"matchmode={value!r} is not all/collect/control", dialogid=dialogid
        ) from None


def _dialogstart(element: etree._Element) -> DialogStart:
    dialogid = element.get("dialogid")
    prepared = element.get("prepareddialogid")
    answer_id = dialogid or prepared or ""
    connectionid, conferenceid = element.get("connectionid"), element.get("conferenceid")
    if (connectionid is None) == (conferenceid is None):
        raise IvrDecodeError(
            "exactly one of connectionid and conferenceid is required (s4.2.2)", dialogid=answer_id
        )
    if prepared is not None and dialogid is not None:
        raise IvrDecodeError("prepareddialogid and dialogid together (s4.2.2)", dialogid=answer_id)
    dialog: Dialog | None = None
    subscribe: Subscribe | None = None
    streams = 0
    order = {"dialog": 0, "subscribe": 1, "params": 2, "stream": 3}
    last = -1
    for child in _mine(element):
        name = _local(child)
        rank = order.get(name)
        if rank is None or rank < last or (rank == last and name != "stream"):
            raise IvrDecodeError(f"<{name}> is out of place in <dialogstart>", dialogid=answer_id)
        last = rank
        if name == "dialog":
            dialog = _dialog(child, answer_id)
        elif name == "subscribe":
            subscribe = _subscribe(child, answer_id)
        elif name == "stream":
            if child.get("media") is None:
                raise IvrDecodeError("<stream> needs media (s4.2.2.2)", dialogid=answer_id)
            streams += 1
    src = element.get("src")
    if sum(x is not None for x in (src, prepared, dialog)) != 1:
        raise IvrDecodeError(
            "exactly one of src, prepareddialogid and <dialog> is required (s4.2.2)",
            dialogid=answer_id,
        )
    return DialogStart(
        connectionid=connectionid,
        conferenceid=conferenceid,
        dialogid=dialogid,
        dialog=dialog,
        subscribe=subscribe,
        src=src,
        prepareddialogid=prepared,
        streams=streams,
    )


def _dialog(element: etree._Element, dialogid: str) -> Dialog:
    operations: list[str] = []
    for child in _mine(element):
        name = _local(child)
        if name not in _OPERATIONS or name in operations:
            raise IvrDecodeError(
                f"<{name}> is out of place in <dialog> (s4.3.1)", dialogid=dialogid
            )
        operations.append(name)
    if [op for op in _OPERATIONS if op in operations] != operations:
        raise IvrDecodeError("<dialog> operations out of order (s4.3.1)", dialogid=dialogid)
    return Dialog(tuple(operations))


def _subscribe(element: etree._Element, dialogid: str) -> Subscribe:
    foreign = [c for c in element if isinstance(c.tag, str) and not c.tag.startswith(_NS)]
    if foreign:
        raise IvrDecodeError(
            f"unsupported subscription {foreign[0].tag} (s4.2.2.1)",
            IvrStatus.UNSUPPORTED_FOREIGN_NAMESPACE,
            dialogid,
        )
    dtmfsub: DtmfSub | None = None
    for child in _mine(element):
        if _local(child) != "dtmfsub" or dtmfsub is not None:
            raise IvrDecodeError(
                f"<{_local(child)}> is out of place in <subscribe>", dialogid=dialogid
            )
        if _mine(child):
            raise IvrDecodeError("<dtmfsub> has no child elements (s4.2.2.1.1)", dialogid=dialogid)
        dtmfsub = DtmfSub(_matchmode(child, dialogid))
    return Subscribe(dtmfsub)


def _required(element: etree._Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise IvrDecodeError(f"<{_local(element)}> requires {name}")
    return value


def _status(element: etree._Element) -> int:
    value = _required(element, "status")
    if not _STATUS.fullmatch(value):
        raise IvrDecodeError(f"status={value!r} is no status code (s4.5)")
    return int(value)


def _response(element: etree._Element) -> Response:
    return Response(
        status=_status(element),
        dialogid=_required(element, "dialogid"),
        reason=element.get("reason"),
        connectionid=element.get("connectionid"),
        conferenceid=element.get("conferenceid"),
    )


def _event(element: etree._Element) -> Event:
    dialogid = _required(element, "dialogid")
    children = _mine(element)
    if len(children) != 1:
        raise IvrDecodeError("<event> holds exactly one notification (s4.2.5)")
    note = children[0]
    name = _local(note)
    if name == "dtmfnotify":
        dtmf = _required(note, "dtmf")
        if not _DTMF_STRING.fullmatch(dtmf):
            raise IvrDecodeError(f"dtmf={dtmf!r} is no DTMF string (s4.6.3)")
        return Event(dialogid, DtmfNotify(dtmf, _required(note, "timestamp"), _matchmode(note)))
    if name == "dialogexit":
        value = _required(note, "status")
        if not value.isdigit():
            raise IvrDecodeError(f"dialogexit status={value!r} is not a non-negative integer")
        return Event(dialogid, DialogExit(int(value), note.get("reason")))
    raise IvrDecodeError(f"<{name}> is not an msc-ivr notification")


# ----------------------------------------------------------------- encoding
def _element(parent: etree._Element | None, name: str, **attrs: str | None) -> etree._Element:
    values = {k: v for k, v in attrs.items() if v is not None}
    if parent is None:
        nsmap: Any = {None: NAMESPACE}  # the default namespace, as the RFC examples use
        return etree.Element(f"{_NS}{name}", values, nsmap=nsmap)
    return etree.SubElement(parent, f"{_NS}{name}", values)


def _mode(mode: DtmfMatchMode) -> str | None:
    return None if mode is DtmfMatchMode.ALL else mode.value


def encode(message: IvrMessage) -> bytes:
    """The ``application/msc-ivr+xml`` body carrying ``message`` (UTF-8, no declaration)."""
    root = _element(None, "mscivr", version="1.0")
    if isinstance(message, DialogStart):
        start = _element(
            root,
            "dialogstart",
            src=message.src,
            dialogid=message.dialogid,
            prepareddialogid=message.prepareddialogid,
            connectionid=message.connectionid,
            conferenceid=message.conferenceid,
        )
        if message.dialog is not None:
            dialog = _element(start, "dialog")
            for operation in message.dialog.operations:
                _element(dialog, operation)
        if message.subscribe is not None:
            subscribe = _element(start, "subscribe")
            if message.subscribe.dtmfsub is not None:
                _element(subscribe, "dtmfsub", matchmode=_mode(message.subscribe.dtmfsub.matchmode))
    elif isinstance(message, DialogTerminate):
        _element(
            root,
            "dialogterminate",
            dialogid=message.dialogid,
            immediate="true" if message.immediate else None,
        )
    elif isinstance(message, UnsupportedRequest):
        _element(root, message.name, dialogid=message.dialogid or None)
    elif isinstance(message, Response):
        _element(
            root,
            "response",
            status=str(message.status),
            reason=message.reason,
            dialogid=message.dialogid,
            connectionid=message.connectionid,
            conferenceid=message.conferenceid,
        )
    else:
        event = _element(root, "event", dialogid=message.dialogid)
        note = message.notification
        if isinstance(note, DtmfNotify):
            _element(
                event,
                "dtmfnotify",
                matchmode=_mode(note.matchmode),
                dtmf=note.dtmf,
                timestamp=note.timestamp,
            )
        else:
            _element(event, "dialogexit", status=str(note.status), reason=note.reason)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=False))
