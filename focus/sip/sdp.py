"""SDP session descriptions (RFC 4566): parse, inspect, serialize.

Everything here is an immutable (frozen) dataclass; change a description with
:func:`dataclasses.replace` or the ``with_*`` helpers, which return new objects. ``bytes(sdp)``
serializes with CRLF line ends in the order RFC 4566 s5 prescribes.

Parsing is strict where it matters for offer/answer (``v=0`` first, then ``o=`` and ``s=``,
well-formed ``o=``, ``c=``, ``t=`` and ``m=`` lines, known type letters) and tolerant where real
peers are sloppy (LF-only line ends, an empty ``s=``, RFC 4566 s5). Failures raise
:class:`SdpError` naming the line.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from focus.sip.errors import RemoteProtocolError

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "parse_sdp",
]


class SdpError(RemoteProtocolError, ValueError):
    """A session description could not be parsed or used; answer ``status`` (400 or 488)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason, status)


class Direction(enum.Enum):
    """Media direction attributes (RFC 4566 s6, RFC 3264 s5.1, s6.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return cls.SENDRECV
        if sends:
            return cls.SENDONLY
        if receives:
            return cls.RECVONLY
        return cls.INACTIVE

    def mirror(self) -> Direction:
        """The direction seen from the other end: sendonly <-> recvonly (RFC 3264 s6.1)."""
        return Direction.of(self.receives, self.sends)


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 4566 s6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"

    def same_codec(self, other: RtpMap) -> bool:
        """Same encoding (case-insensitive), clock rate and channel count (default 1)."""
        return (
            self.encoding.lower() == other.encoding.lower()
            and self.clock_rate == other.clock_rate
            and (self.channels or 1) == (other.channels or 1)
        )


#: Static RTP/AVP payload types of RFC 3551 s6 (used when an m= line has no rtpmap for them).
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    pt: RtpMap(pt, enc, rate, ch)
    for pt, enc, rate, ch in [
        (0, "PCMU", 8000, None),
        (3, "GSM", 8000, None),
        (4, "G723", 8000, None),
        (5, "DVI4", 8000, None),
        (6, "DVI4", 16000, None),
        (7, "LPC", 8000, None),
        (8, "PCMA", 8000, None),
        (9, "G722", 8000, None),
        (10, "L16", 44100, 2),
        (11, "L16", 44100, None),
        (12, "QCELP", 8000, None),
        (13, "CN", 8000, None),
        (14, "MPA", 90000, None),
        (15, "G728", 8000, None),
        (16, "DVI4", 11025, None),
        (17, "DVI4", 22050, None),
        (18, "G729", 8000, None),
        (25, "CelB", 90000, None),
        (26, "JPEG", 90000, None),
        (28, "nv", 90000, None),
        (31, "H261", 90000, None),
        (32, "MPV", 90000, None),
        (33, "MP2T", 90000, None),
        (34, "H263", 90000, None),
    ]
}


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (s5.2)."""

    username: str
    session_id: int
    version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <address>`` (s5.7); ``address`` may carry /ttl/count."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @property
    def host(self) -> str:
        """The address without multicast /ttl/count suffixes."""
        return self.address.split("/", 1)[0]

    @property
    def is_null(self) -> bool:
        """``0.0.0.0``: the RFC 2543 way to put a stream on hold (RFC 3264 s8.4)."""
        return self.host in ("0.0.0.0", "::")  # noqa: S104 -- compared, never bound


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>[:<value>]`` (s5.13); ``value`` is None for property attributes."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=<start> <stop>`` with its ``r=`` repeat lines (s5.9, s5.10)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


def _find(attributes: tuple[Attribute, ...], name: str) -> list[Attribute]:
    return [a for a in attributes if a.name == name]


def _direction(attributes: tuple[Attribute, ...]) -> Direction | None:
    found: Direction | None = None
    for attribute in attributes:
        if attribute.value is None:
            try:
                found = Direction(attribute.name)
            except ValueError:
                continue
    return found


def _without_direction(attributes: Iterable[Attribute]) -> tuple[Attribute, ...]:
    names = {d.value for d in Direction}
    return tuple(a for a in attributes if not (a.value is None and a.name in names))


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section (s5.14) with its ``i= c= b= k= a=`` lines."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    information: str | None = None
    connections: tuple[Connection, ...] = ()
    bandwidths: tuple[tuple[str, int], ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()

    @property
    def rejected(self) -> bool:
        """Port 0: the stream is rejected or removed (RFC 3264 s6, s8.2)."""
        return self.port == 0

    @property
    def direction(self) -> Direction | None:
        """The explicit direction attribute of this section, if any."""
        return _direction(self.attributes)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value``; None if absent or valueless."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.value
        return None

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> rtpmap, with RFC 3551 static types filled in for RTP profiles."""
        out: dict[int, RtpMap] = {}
        for attribute in _find(self.attributes, "rtpmap"):
            rtpmap = _parse_rtpmap(attribute.value or "")
            out.setdefault(rtpmap.payload_type, rtpmap)
        if self.proto.upper().startswith("RTP/"):
            for fmt in self.formats:
                if fmt.isdigit() and int(fmt) not in out and int(fmt) in STATIC_PAYLOAD_TYPES:
                    out[int(fmt)] = STATIC_PAYLOAD_TYPES[int(fmt)]
        return out

    @property
    def fmtps(self) -> dict[str, str]:
        """Format -> its ``a=fmtp`` parameters."""
        out: dict[str, str] = {}
        for attribute in _find(self.attributes, "fmtp"):
            fmt, _, params = (attribute.value or "").partition(" ")
            out.setdefault(fmt, params.strip())
        return out

    def with_direction(self, direction: Direction | None) -> MediaDescription:
        """A copy whose direction attribute is ``direction`` (None: no attribute)."""
        attributes = _without_direction(self.attributes)
        if direction is not None:
            attributes = (*attributes, Attribute(direction.value))
        return replace(self, attributes=attributes)

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        if self.information is not None:
            out.append(f"i={self.information}")
        out.extend(f"c={c}" for c in self.connections)
        out.extend(f"b={t}:{v}" for t, v in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={a}" for a in self.attributes)
        return out


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole session description (RFC 4566 s5)."""

    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[tuple[str, int], ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    zone: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    version: int = field(default=0)

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self.lines())

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def to_bytes(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")

    def lines(self) -> list[str]:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={e}" for e in self.emails)
        out.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={t}:{v}" for t, v in self.bandwidths)
        for timing in self.timings:
            out.append(f"t={timing.start} {timing.stop}")
            out.extend(f"r={r}" for r in timing.repeats)
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(f"a={a}" for a in self.attributes)
        for media in self.media:
            out.extend(media.lines())
        return out

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, if any."""
        return _direction(self.attributes)

    def direction_of(self, index: int) -> Direction:
        """Effective direction of stream ``index``: media level, else session level, else
        sendrecv (RFC 4566 s6)."""
        return self.media[index].direction or self.direction or Direction.SENDRECV

    def connection_of(self, index: int) -> Connection | None:
        """The connection of stream ``index``: its own c= line, else the session's."""
        media = self.media[index]
        return media.connections[0] if media.connections else self.connection

    def with_version(self, version: int) -> SessionDescription:
        return replace(self, origin=replace(self.origin, version=version))

    def bump_version(self) -> SessionDescription:
        """The o= version incremented, as every changed re-offer/answer needs (RFC 3264 s8)."""
        return self.with_version(self.origin.version + 1)


# --- parsing -----------------------------------------------------------------------------

_LINE_RE = re.compile(r"([a-z])=(.*)")
_ORIGIN_RE = re.compile(r"(\S+) ([0-9]{1,20}) ([0-9]{1,20}) (\S+) (\S+) (\S+)")
_CONNECTION_RE = re.compile(r"(\S+) (\S+) (\S+)")
_MEDIA_RE = re.compile(r"([A-Za-z0-9\-_.!%*+`'~]+) ([0-9]{1,5})(?:/([0-9]{1,5}))? (\S+)((?: \S+)*)")
_BANDWIDTH_RE = re.compile(r"([A-Za-z0-9\-_.!%*+`'~]+):([0-9]{1,10})")
_TIMING_RE = re.compile(r"([0-9]{1,20}) ([0-9]{1,20})")
_ATTRIBUTE_RE = re.compile(r"([A-Za-z0-9\-_.!%*+`'~]+)(?::(.*))?")
_RTPMAP_RE = re.compile(r"([0-9]{1,3}) ([^/\s]+)/([0-9]{1,10})(?:/([0-9]{1,3}))?")

_MAX_LINES = 2000
_SESSION_ONLY = set("osuepztr")


def _parse_rtpmap(value: str) -> RtpMap:
    m = _RTPMAP_RE.fullmatch(value.strip())
    if m is None or int(m.group(1)) > 127:
        raise SdpError(f"Bad SDP - malformed rtpmap {value[:40]!r}")
    channels = int(m.group(4)) if m.group(4) else None
    return RtpMap(int(m.group(1)), m.group(2), int(m.group(3)), channels)


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse a session description; raises :class:`SdpError` naming the offending line."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > _MAX_LINES:
        raise SdpError("Bad SDP - too many lines")
    if len(lines) < 3:
        raise SdpError("Bad SDP - v=, o= and s= lines required")

    def fail(number: int, what: str) -> SdpError:
        return SdpError(f"Bad SDP - line {number}: {what}")

    parsed: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, 1):
        m = _LINE_RE.fullmatch(line)
        if m is None:
            raise fail(number, "not <type>=<value>")
        parsed.append((number, m.group(1), m.group(2)))
    (_, t0, v0), (n1, t1, v1), (_, t2, v2) = parsed[:3]
    if (t0, t1, t2) != ("v", "o", "s"):
        raise SdpError("Bad SDP - must start with v=, o=, s=")
    if v0 != "0":
        raise SdpError("Bad SDP - unsupported version")
    om = _ORIGIN_RE.fullmatch(v1)
    if om is None:
        raise fail(n1, "malformed o=")
    origin = Origin(
        om.group(1), int(om.group(2)), int(om.group(3)), om.group(6), om.group(4), om.group(5)
    )
    information: str | None = None
    uri: str | None = None
    zone: str | None = None
    key: str | None = None
    connection: Connection | None = None
    emails: list[str] = []
    phones: list[str] = []
    bandwidths: list[tuple[str, int]] = []
    timings: list[Timing] = []
    attributes: list[Attribute] = []
    media: list[MediaDescription] = []
    current: _MediaBuilder | None = None

    for number, kind, value in parsed[3:]:
        if current is not None and kind in _SESSION_ONLY:
            raise fail(number, f"{kind}= not allowed in a media section")
        if kind == "m":
            mm = _MEDIA_RE.fullmatch(value)
            if mm is None or int(mm.group(2)) > 65535:
                raise fail(number, "malformed m=")
            if current is not None:
                media.append(current.build())
            current = _MediaBuilder(
                mm.group(1),
                int(mm.group(2)),
                mm.group(4),
                tuple(mm.group(5).split()),
                int(mm.group(3)) if mm.group(3) else None,
            )
        elif kind == "c":
            cm = _CONNECTION_RE.fullmatch(value)
            if cm is None:
                raise fail(number, "malformed c=")
            parsed_connection = Connection(cm.group(3), cm.group(1), cm.group(2))
            if current is not None:
                current.connections.append(parsed_connection)
            elif connection is not None:
                raise fail(number, "second session-level c=")
            else:
                connection = parsed_connection
        elif kind == "b":
            bm = _BANDWIDTH_RE.fullmatch(value)
            if bm is None:
                raise fail(number, "malformed b=")
            (current.bandwidths if current is not None else bandwidths).append(
                (bm.group(1), int(bm.group(2)))
            )
        elif kind == "a":
            am = _ATTRIBUTE_RE.fullmatch(value)
            if am is None:
                raise fail(number, "malformed a=")
            attribute = Attribute(am.group(1), am.group(2))
            if attribute.name == "rtpmap":
                _parse_rtpmap(attribute.value or "")
            (current.attributes if current is not None else attributes).append(attribute)
        elif kind == "i":
            if current is not None:
                if current.information is not None:
                    raise fail(number, "second i=")
                current.information = value
            elif information is not None:
                raise fail(number, "second i=")
            else:
                information = value
        elif kind == "k":
            if current is not None:
                current.key = value
            else:
                key = value
        elif kind == "t":
            tm = _TIMING_RE.fullmatch(value)
            if tm is None:
                raise fail(number, "malformed t=")
            timings.append(Timing(int(tm.group(1)), int(tm.group(2))))
        elif kind == "r":
            if not timings:
                raise fail(number, "r= without t=")
            timings[-1] = replace(timings[-1], repeats=(*timings[-1].repeats, value))
        elif kind == "u":
            uri = value
        elif kind == "e":
            emails.append(value)
        elif kind == "p":
            phones.append(value)
        elif kind == "z":
            zone = value
        else:
            raise fail(number, f"unknown type {kind}=")
    if current is not None:
        media.append(current.build())
    if not timings:
        raise SdpError("Bad SDP - t= line required")
    return SessionDescription(
        origin=origin,
        session_name=v2,
        information=information,
        uri=uri,
        emails=tuple(emails),
        phones=tuple(phones),
        connection=connection,
        bandwidths=tuple(bandwidths),
        timings=tuple(timings),
        zone=zone,
        key=key,
        attributes=tuple(attributes),
        media=tuple(media),
    )


@dataclass(slots=True)
class _MediaBuilder:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None
    information: str | None = None
    key: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[tuple[str, int]] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)

    def build(self) -> MediaDescription:
        return MediaDescription(
            self.media,
            self.port,
            self.proto,
            self.formats,
            self.port_count,
            self.information,
            tuple(self.connections),
            tuple(self.bandwidths),
            self.key,
            tuple(self.attributes),
        )
