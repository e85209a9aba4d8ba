"""lxml codec of msc-mixer/1.0 bodies (RFC 6505): ``encode`` a model, ``decode`` bytes.

Decoding is defensive: the body is size-capped, parsed with entity resolution, network access
and DTD loading off, a DOCTYPE is refused, nesting depth is capped, and the document is
validated against the package's schema (RFC 6505 s5, in ``schema/``) before it is read.  Every
failure is a :class:`MixerDecodeError` whose ``status`` (400, s4.6) is what to answer.
Elements and attributes of other namespaces, which the schema allows, are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from lxml import etree

from focus.xcon.safexml import XmlError, parse_xml
from mediactrl.mixer.model import (
    DEFAULT_TONES,
    ActiveTalker,
    ActiveTalkersNotify,
    ActiveTalkersSub,
    AudioMixing,
    AudioMixType,
    Audit,
    AuditResponse,
    Capabilities,
    Clamp,
    Codec,
    ConferenceAudit,
    ConferenceExit,
    CreateConference,
    DestroyConference,
    Direction,
    Event,
    Join,
    JoinAudit,
    MediaTimeout,
    MixerMessage,
    Mixers,
    MixerStatus,
    ModifyConference,
    ModifyJoin,
    Param,
    Response,
    Stream,
    Subscribe,
    Unjoin,
    UnjoinNotify,
    VideoLayout,
    VideoLayoutKind,
    VideoSwitch,
    VideoSwitchPolicy,
    Volume,
    VolumeControlType,
)

__all__ = [
    "CONTENT_TYPE",
    "MEDIA_TIMEOUT_NAMESPACE",
    "NAMESPACE",
    "PACKAGE",
    "DecodeLimits",
    "MixerDecodeError",
    "decode",
    "encode",
    "schema",
]

NAMESPACE: Final = "urn:ietf:params:xml:ns:msc-mixer"
#: Our package extension (mediactrl/README.md "Media timeout"): the media-timeout attribute
#: of <join> and the <media-timeout> notification of <event>.
MEDIA_TIMEOUT_NAMESPACE: Final = "urn:x-xcon-focus:params:xml:ns:msc-mixer:media-timeout"
_MT = f"{{{MEDIA_TIMEOUT_NAMESPACE}}}"
PACKAGE: Final = "msc-mixer/1.0"  # RFC 6505 s3.1
CONTENT_TYPE: Final = "application/msc-mixer+xml"  # RFC 6505 s8.4
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schema"
_NS = f"{{{NAMESPACE}}}"


@dataclass(frozen=True)
class DecodeLimits:
    """Caps on what :func:`decode` reads: total bytes and element nesting depth."""

    max_bytes: int = 256 * 1024
    max_depth: int = 32


class MixerDecodeError(ValueError):
    """A body that is not a valid msc-mixer document; answer with ``status`` (s4.6)."""

    def __init__(self, reason: str, status: int = MixerStatus.SYNTAX_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


@cache
def schema() -> etree.XMLSchema:
    """The msc-mixer schema (RFC 6505 s5), importing framework.xsd (RFC 6230 A.1)."""
    document = etree.parse(str(SCHEMA_DIR / "mixer.xsd"), _parser())
    return etree.XMLSchema(document)


# ----------------------------------------------------------------- decoding
def decode(data: bytes, limits: DecodeLimits | None = None) -> MixerMessage:
    """The mixer message carried by an ``application/msc-mixer+xml`` body."""
    limits = limits or DecodeLimits()
    try:
        # The one hardened parser of the project: no DTD, no entities, no network, capped.
        root = parse_xml(data, max_bytes=limits.max_bytes, max_depth=limits.max_depth)
    except XmlError as exc:
        raise MixerDecodeError(str(exc)) from exc
    if root.tag != f"{_NS}mscmixer":
        raise MixerDecodeError(f"root element is {root.tag}, not mscmixer in {NAMESPACE}")
    checker = schema()
    if not checker.validate(root):
        log: Any = checker.error_log  # lxml-stubs do not type the log's entries
        error = log.last_error
        raise MixerDecodeError(f"invalid per RFC 6505 schema: line {error.line}: {error.message}")
    children = _mine(root)
    if len(children) != 1:
        raise MixerDecodeError("mscmixer must hold exactly one mixer element")
    return _decode_message(children[0])


def _local(element: etree._Element) -> str:
    return str(element.tag)[len(_NS) :]


def _mine(element: etree._Element) -> list[etree._Element]:
    """Children in the mixer namespace (foreign ones are extensions, skipped)."""
    return [c for c in element if isinstance(c.tag, str) and c.tag.startswith(_NS)]


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return element.find(f"{_NS}{name}")


def _attr(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    return None if value is None else str(value)


def _req(element: etree._Element, name: str) -> str:
    value = _attr(element, name)
    if value is None:  # the schema already requires it; kept for a clear message
        raise MixerDecodeError(f"<{_local(element)}> lacks the mandatory '{name}' attribute")
    return value


def _int(element: etree._Element, name: str, default: int) -> int:
    value = _attr(element, name)
    return default if value is None else int(value.strip())


def _bool(element: etree._Element, name: str, default: bool) -> bool:
    value = _attr(element, name)
    return default if value is None else value.strip() in ("true", "1")


def _codecs(element: etree._Element | None) -> tuple[Codec, ...] | None:
    if element is None:
        return None
    codecs = []
    for codec in element.iterfind(f"{_NS}codec"):
        subtype = _child(codec, "subtype")
        params_el = _child(codec, "params")
        params = None
        if params_el is not None:
            params = tuple(
                Param(
                    _req(p, "name"),
                    p.text or "",
                    _attr(p, "type") or "text/plain",
                    _attr(p, "encoding"),
                )
                for p in params_el.iterfind(f"{_NS}param")
            )
        codecs.append(
            Codec(_req(codec, "name"), (subtype.text or "") if subtype is not None else "", params)
        )
    return tuple(codecs)


def _video_layout(element: etree._Element) -> VideoLayout:
    kinds = _mine(element)
    if not kinds:
        raise MixerDecodeError("<video-layout> names no layout this package defines")
    return VideoLayout(VideoLayoutKind(_local(kinds[0])), _int(element, "min-participants", 1))


def _conference_config(
    element: etree._Element,
) -> tuple[
    tuple[Codec, ...] | None,
    AudioMixing | None,
    tuple[VideoLayout, ...] | None,
    VideoSwitch | None,
    Subscribe | None,
]:
    mixing_el = _child(element, "audio-mixing")
    mixing = None
    if mixing_el is not None:
        mixing = AudioMixing(
            AudioMixType(_attr(mixing_el, "type") or "nbest"), _int(mixing_el, "n", 0)
        )
    layouts_el = _child(element, "video-layouts")
    layouts = None
    if layouts_el is not None:
        layouts = tuple(_video_layout(v) for v in layouts_el.iterfind(f"{_NS}video-layout"))
    switch_el = _child(element, "video-switch")
    switch = None
    if switch_el is not None:
        policies = _mine(switch_el)
        if not policies:
            raise MixerDecodeError("<video-switch> names no policy this package defines")
        switch = VideoSwitch(
            VideoSwitchPolicy(_local(policies[0])),
            _int(switch_el, "interval", 3),
            _bool(switch_el, "activespeakermix", False),
        )
    subscribe_el = _child(element, "subscribe")
    subscribe = None
    if subscribe_el is not None:
        sub_el = _child(subscribe_el, "active-talkers-sub")
        subscribe = Subscribe(
            None if sub_el is None else ActiveTalkersSub(_int(sub_el, "interval", 3))
        )
    return _codecs(_child(element, "codecs")), mixing, layouts, switch, subscribe


def _streams(element: etree._Element) -> tuple[Stream, ...]:
    streams = []
    for s in element.iterfind(f"{_NS}stream"):
        volume_el = _child(s, "volume")
        clamp_el = _child(s, "clamp")
        region_el = _child(s, "region")
        priority_el = _child(s, "priority")
        streams.append(
            Stream(
                media=_req(s, "media"),
                label=_attr(s, "label"),
                direction=Direction(_attr(s, "direction") or "sendrecv"),
                volume=None
                if volume_el is None
                else Volume(
                    VolumeControlType(_req(volume_el, "controltype")), _attr(volume_el, "value")
                ),
                clamp=None
                if clamp_el is None
                else Clamp(_attr(clamp_el, "tones") or DEFAULT_TONES),
                region=None if region_el is None else (region_el.text or "").strip(),
                priority=None if priority_el is None else int((priority_el.text or "").strip()),
            )
        )
    return tuple(streams)


def _decode_message(element: etree._Element) -> MixerMessage:
    name = _local(element)
    if name == "createconference":
        codecs, mixing, layouts, switch, subscribe = _conference_config(element)
        return CreateConference(
            _attr(element, "conferenceid"),
            _int(element, "reserved-talkers", 0),
            _int(element, "reserved-listeners", 0),
            codecs,
            mixing,
            layouts,
            switch,
            subscribe,
        )
    if name == "modifyconference":
        codecs, mixing, layouts, switch, subscribe = _conference_config(element)
        return ModifyConference(
            _req(element, "conferenceid"), codecs, mixing, layouts, switch, subscribe
        )
    if name == "destroyconference":
        return DestroyConference(_req(element, "conferenceid"))
    if name in ("join", "modifyjoin", "unjoin"):
        ids = (_req(element, "id1"), _req(element, "id2"))
        if name == "join":
            return Join(*ids, _streams(element), _media_timeout(element))
        if name == "modifyjoin":
            return ModifyJoin(*ids, _streams(element))
        return Unjoin(*ids, _streams(element))
    if name == "audit":
        return Audit(
            _bool(element, "capabilities", True),
            _bool(element, "mixers", True),
            _attr(element, "conferenceid"),
        )
    if name == "response":
        return Response(
            _int(element, "status", 0),
            _attr(element, "reason"),
            _attr(element, "desclang"),
            _attr(element, "connectionid"),
            _attr(element, "conferenceid"),
        )
    if name == "event":
        return Event(_decode_notification(element))
    if name == "auditresponse":
        return _decode_auditresponse(element)
    raise MixerDecodeError(f"<{name}> is not a mixer request, response or event")


def _media_timeout(element: etree._Element) -> int | None:
    text = element.get(f"{_MT}media-timeout")
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.isdigit() or not 0 < len(text) <= 9 or int(text) == 0:
        raise MixerDecodeError(f"media-timeout must be a positive number of seconds: {text!r}")
    return int(text)


def _decode_notification(
    element: etree._Element,
) -> ActiveTalkersNotify | UnjoinNotify | ConferenceExit | MediaTimeout | None:
    children = _mine(element)
    if not children:
        ours = element.find(f"{_MT}media-timeout")
        if ours is None:
            return None  # foreign content we do not know
        silent = ours.get("silent-for", "0").strip()
        return MediaTimeout(_req(ours, "connectionid"), int(silent) if silent.isdigit() else 0)
    child = children[0]
    name = _local(child)
    if name == "active-talkers-notify":
        talkers = tuple(
            ActiveTalker(_attr(t, "connectionid"), _attr(t, "conferenceid"))
            for t in child.iterfind(f"{_NS}active-talker")
        )
        return ActiveTalkersNotify(_req(child, "conferenceid"), talkers)
    if name == "unjoin-notify":
        return UnjoinNotify(
            _int(child, "status", 0),
            _req(child, "id1"),
            _req(child, "id2"),
            _attr(child, "reason"),
            _attr(child, "desclang"),
        )
    return ConferenceExit(
        _req(child, "conferenceid"),
        _int(child, "status", 0),
        _attr(child, "reason"),
        _attr(child, "desclang"),
    )


def _decode_auditresponse(element: etree._Element) -> AuditResponse:
    caps_el = _child(element, "capabilities")
    capabilities = None
    if caps_el is not None:
        capabilities = Capabilities(_codecs(_child(caps_el, "codecs")) or ())
    mixers_el = _child(element, "mixers")
    mixers = None
    if mixers_el is not None:
        conferences = []
        for conf in mixers_el.iterfind(f"{_NS}conferenceaudit"):
            participants_el = _child(conf, "participants")
            layout_el = _child(conf, "video-layout")
            conferences.append(
                ConferenceAudit(
                    _req(conf, "conferenceid"),
                    _codecs(_child(conf, "codecs")),
                    None
                    if participants_el is None
                    else tuple(
                        _req(p, "id") for p in participants_el.iterfind(f"{_NS}participant")
                    ),
                    None if layout_el is None else _video_layout(layout_el),
                )
            )
        joins = tuple(
            JoinAudit(_req(j, "id1"), _req(j, "id2")) for j in mixers_el.iterfind(f"{_NS}joinaudit")
        )
        mixers = Mixers(tuple(conferences), joins)
    return AuditResponse(
        _int(element, "status", 0),
        _attr(element, "reason"),
        _attr(element, "desclang"),
        capabilities,
        mixers,
    )


# ----------------------------------------------------------------- encoding
class _Builder:
    """Makes elements in the mixer namespace with attributes that are not None/default."""

    def __call__(
        self,
        parent: etree._Element | None,
        name: str,
        attrs: dict[str, str | None] | None = None,
        text: str | None = None,
    ) -> etree._Element:
        values = {k: v for k, v in (attrs or {}).items() if v is not None}
        if parent is None:
            nsmap: Any = {None: NAMESPACE}  # the default namespace, as RFC 6505 examples use
            element = etree.Element(f"{_NS}{name}", values, nsmap=nsmap)
        else:
            element = etree.SubElement(parent, f"{_NS}{name}", values)
        if text is not None:
            element.text = text
        return element


_E = _Builder()


def _opt(value: int | bool | str, default: int | bool | str) -> str | None:
    """The attribute text, or None when the value is the schema default (left implicit)."""
    if value == default:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode_codecs(parent: etree._Element, codecs: tuple[Codec, ...] | None) -> None:
    if codecs is None:
        return
    holder = _E(parent, "codecs")
    for codec in codecs:
        element = _E(holder, "codec", {"name": codec.name})
        _E(element, "subtype", text=codec.subtype)
        if codec.params is not None:
            params = _E(element, "params")
            for param in codec.params:
                _E(
                    params,
                    "param",
                    {
                        "name": param.name,
                        "type": _opt(param.type, "text/plain"),
                        "encoding": param.encoding,
                    },
                    text=param.value,
                )


def _encode_layout(parent: etree._Element, layout: VideoLayout) -> None:
    element = _E(parent, "video-layout", {"min-participants": _opt(layout.min_participants, 1)})
    _E(element, layout.layout.value)


def _encode_config(parent: etree._Element, message: CreateConference | ModifyConference) -> None:
    _encode_codecs(parent, message.codecs)
    if message.audio_mixing is not None:
        mixing = message.audio_mixing
        _E(
            parent,
            "audio-mixing",
            {"type": _opt(mixing.type.value, "nbest"), "n": _opt(mixing.n, 0)},
        )
    if message.video_layouts is not None:
        layouts = _E(parent, "video-layouts")
        for layout in message.video_layouts:
            _encode_layout(layouts, layout)
    if message.video_switch is not None:
        switch = message.video_switch
        element = _E(
            parent,
            "video-switch",
            {
                "interval": _opt(switch.interval, 3),
                "activespeakermix": _opt(switch.activespeakermix, False),
            },
        )
        _E(element, switch.policy.value)
    if message.subscribe is not None:
        subscribe = _E(parent, "subscribe")
        if message.subscribe.active_talkers is not None:
            _E(
                subscribe,
                "active-talkers-sub",
                {"interval": _opt(message.subscribe.active_talkers.interval, 3)},
            )


def _encode_streams(parent: etree._Element, streams: tuple[Stream, ...]) -> None:
    for stream in streams:
        element = _E(
            parent,
            "stream",
            {
                "media": stream.media,
                "label": stream.label,
                "direction": _opt(stream.direction.value, "sendrecv"),
            },
        )
        if stream.volume is not None:
            _E(
                element,
                "volume",
                {"controltype": stream.volume.controltype.value, "value": stream.volume.value},
            )
        if stream.clamp is not None:
            _E(element, "clamp", {"tones": _opt(stream.clamp.tones, DEFAULT_TONES)})
        if stream.region is not None:
            _E(element, "region", text=stream.region)
        if stream.priority is not None:
            _E(element, "priority", text=str(stream.priority))


def _status_attrs(status: int, reason: str | None, desclang: str | None) -> dict[str, str | None]:
    return {"status": str(status), "reason": reason, "desclang": desclang}


def _encode_body(root: etree._Element, message: MixerMessage) -> None:
    if isinstance(message, CreateConference):
        element = _E(
            root,
            "createconference",
            {
                "conferenceid": message.conferenceid,
                "reserved-talkers": _opt(message.reserved_talkers, 0),
                "reserved-listeners": _opt(message.reserved_listeners, 0),
            },
        )
        _encode_config(element, message)
    elif isinstance(message, ModifyConference):
        element = _E(root, "modifyconference", {"conferenceid": message.conferenceid})
        _encode_config(element, message)
    elif isinstance(message, DestroyConference):
        _E(root, "destroyconference", {"conferenceid": message.conferenceid})
    elif isinstance(message, Join | ModifyJoin | Unjoin):
        name = {Join: "join", ModifyJoin: "modifyjoin", Unjoin: "unjoin"}[type(message)]
        element = _E(root, name, {"id1": message.id1, "id2": message.id2})
        if isinstance(message, Join) and message.media_timeout is not None:
            element.set(f"{_MT}media-timeout", str(message.media_timeout))
        _encode_streams(element, message.streams)
    elif isinstance(message, Audit):
        _E(
            root,
            "audit",
            {
                "capabilities": _opt(message.capabilities, True),
                "mixers": _opt(message.mixers, True),
                "conferenceid": message.conferenceid,
            },
        )
    elif isinstance(message, Response):
        attrs = _status_attrs(message.status, message.reason, message.desclang)
        attrs.update(connectionid=message.connectionid, conferenceid=message.conferenceid)
        _E(root, "response", attrs)
    elif isinstance(message, Event):
        _encode_event(_E(root, "event"), message)
    else:
        _encode_auditresponse(root, message)


def _encode_event(element: etree._Element, message: Event) -> None:
    note = message.notification
    if isinstance(note, ActiveTalkersNotify):
        notify = _E(element, "active-talkers-notify", {"conferenceid": note.conferenceid})
        for talker in note.talkers:
            _E(
                notify,
                "active-talker",
                {"connectionid": talker.connectionid, "conferenceid": talker.conferenceid},
            )
    elif isinstance(note, UnjoinNotify):
        attrs = _status_attrs(note.status, note.reason, note.desclang)
        attrs.update(id1=note.id1, id2=note.id2)
        _E(element, "unjoin-notify", attrs)
    elif isinstance(note, ConferenceExit):
        attrs = {"conferenceid": note.conferenceid}
        attrs.update(_status_attrs(note.status, note.reason, note.desclang))
        _E(element, "conferenceexit", attrs)
    elif isinstance(note, MediaTimeout):
        nsmap: Any = {"mt": MEDIA_TIMEOUT_NAMESPACE}
        etree.SubElement(
            element,
            f"{_MT}media-timeout",
            {"connectionid": note.connectionid, "silent-for": str(note.silent_for)},
            nsmap=nsmap,
        )


def _encode_auditresponse(root: etree._Element, message: AuditResponse) -> None:
    element = _E(
        root, "auditresponse", _status_attrs(message.status, message.reason, message.desclang)
    )
    if message.capabilities is not None:
        _encode_codecs(_E(element, "capabilities"), message.capabilities.codecs)
    if message.mixers is not None:
        mixers = _E(element, "mixers")
        for conf in message.mixers.conferences:
            audit = _E(mixers, "conferenceaudit", {"conferenceid": conf.conferenceid})
            _encode_codecs(audit, conf.codecs)
            if conf.participants is not None:
                participants = _E(audit, "participants")
                for participant in conf.participants:
                    _E(participants, "participant", {"id": participant})
            if conf.video_layout is not None:
                _encode_layout(audit, conf.video_layout)
        for join in message.mixers.joins:
            _E(mixers, "joinaudit", {"id1": join.id1, "id2": join.id2})


def encode(message: MixerMessage, *, desclang: str | None = None) -> bytes:
    """The ``application/msc-mixer+xml`` body carrying ``message`` (UTF-8, no declaration)."""
    root = _E(None, "mscmixer", {"version": "1.0", "desclang": desclang})
    _encode_body(root, message)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=False))
