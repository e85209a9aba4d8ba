"""The SDP offer/answer model (RFC 3264) as pure functions on :mod:`focus.sip.sdp` values.

* :func:`create_offer` -- an offer (or re-offer, with the o= version bumped, RFC 3264 s8) from
  our capabilities.
* :func:`create_answer` -- an answer to an offer: one m= line per offered one in the same order
  (s6), codecs intersected keeping the *offerer's* order and payload type numbers (s6.1),
  telephone-event kept only next to a real codec, unsupported or port-0 streams rejected with
  port 0 (s6, s8.2), directions mirrored and intersected with ours (s6.1, hold s8.4).
* :func:`negotiate` -- what a completed exchange means for each stream (codec, peer address,
  our direction).
* :func:`hold`, :func:`resume`, :func:`remove_stream`, :func:`add_stream` -- re-offers derived
  from our previous description (s8.1-8.4), each with the version bumped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from focus.sip.errors import LocalProtocolError
from focus.sip.sdp import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
)

__all__ = [
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "LocalSession",
    "MediaCapability",
    "NegotiatedStream",
    "add_stream",
    "create_answer",
    "create_offer",
    "hold",
    "negotiate",
    "remove_stream",
    "resume",
]


@dataclass(frozen=True, slots=True)
class Codec:
    """A payload format we can handle.

    ``payload_type`` is the number we use when *we* offer it (static types default to their
    RFC 3551 number, others get a free dynamic one from 96). ``fmtp`` is put in our a=fmtp.
    """

    encoding: str
    clock_rate: int
    channels: int | None = None
    payload_type: int | None = None
    fmtp: str | None = None

    def matches(self, rtpmap: RtpMap) -> bool:
        return RtpMap(0, self.encoding, self.clock_rate, self.channels).same_codec(rtpmap)

    @property
    def is_telephone_event(self) -> bool:
        """RFC 4733 DTMF events: not a codec of its own, only usable next to one."""
        return self.encoding.lower() == "telephone-event"


PCMU = Codec("PCMU", 8000, payload_type=0)
PCMA = Codec("PCMA", 8000, payload_type=8)
TELEPHONE_EVENT = Codec("telephone-event", 8000, payload_type=101, fmtp="0-16")


@dataclass(frozen=True, slots=True)
class MediaCapability:
    """What we accept for one kind of stream.

    media: the m= media type ("audio", "video", "application" ...).
    codecs: our formats, in our order of preference (used when we offer).
    protos: transport protocols accepted in an m= line; the first one is used in offers.
    direction: how far we are willing to go: SENDRECV, or e.g. RECVONLY for a recorder.
    formats: for non-RTP protocols (e.g. TCP/CFW, RFC 6230), the fmt tokens we accept,
        compared literally; "*" accepts any.
    """

    media: str = "audio"
    codecs: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT)
    protos: tuple[str, ...] = ("RTP/AVP",)
    direction: Direction = Direction.SENDRECV
    formats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LocalSession:
    """Our o= and c= identity: address (IP literal), session id, first version, user name."""

    address: str
    session_id: int
    session_version: int = 0
    username: str = "-"
    addrtype: str = "IP4"
    session_name: str = "-"

    def origin(self, version: int) -> Origin:
        return Origin(self.username, self.session_id, version, self.address, addrtype=self.addrtype)

    def connection(self) -> Connection:
        return Connection(self.address, addrtype=self.addrtype)


# --- offers ------------------------------------------------------------------------------


def _format_lines(codec: Codec, pt: int) -> list[Attribute]:
    rtpmap = RtpMap(pt, codec.encoding, codec.clock_rate, codec.channels)
    out = [Attribute("rtpmap", str(rtpmap))]
    if codec.fmtp is not None:
        out.append(Attribute("fmtp", f"{pt} {codec.fmtp}"))
    return out


def _offer_media(
    capability: MediaCapability, port: int, direction: Direction, explicit: bool
) -> MediaDescription:
    used: set[int] = set()
    assigned: list[tuple[Codec, int]] = []
    for codec in capability.codecs:
        pt = codec.payload_type
        if pt is None:
            static = [p for p, r in STATIC_PAYLOAD_TYPES.items() if codec.matches(r)]
            pt = static[0] if static else None
        if pt is None or pt in used:
            pt = next(p for p in range(96, 128) if p not in used)
        used.add(pt)
        assigned.append((codec, pt))
    attributes: list[Attribute] = []
    for codec, pt in assigned:
        attributes.extend(_format_lines(codec, pt))
    media = MediaDescription(
        capability.media,
        port,
        capability.protos[0],
        tuple(str(pt) for _, pt in assigned),
        attributes=tuple(attributes),
    )
    show = explicit or direction is not Direction.SENDRECV
    return media.with_direction(direction if show else None)


def create_offer(
    local: LocalSession,
    streams: Sequence[tuple[MediaCapability, int]],
    *,
    previous: SessionDescription | None = None,
    directions: Sequence[Direction] | None = None,
) -> SessionDescription:
    """An offer with one m= line per ``(capability, port)``; port 0 offers a disabled slot.

    With ``previous`` (our last description in this session) it is a re-offer: same session
    id, version + 1, and never fewer m= lines than before (RFC 3264 s8). ``directions``
    overrides the capabilities' directions and is then always written out, sendrecv included.
    """
    if previous is not None and len(streams) < len(previous.media):
        raise LocalProtocolError("a re-offer must not have fewer m= lines (RFC 3264 s8)")
    media = tuple(
        _offer_media(
            cap, port, directions[i] if directions else cap.direction, directions is not None
        )
        for i, (cap, port) in enumerate(streams)
    )
    version = previous.origin.version + 1 if previous is not None else local.session_version
    origin = previous.origin if previous is not None else local.origin(version)
    return SessionDescription(
        origin=replace(origin, version=version),
        session_name=local.session_name,
        connection=local.connection(),
        media=media,
    )


# --- answers -----------------------------------------------------------------------------


def _rejected(offered: MediaDescription) -> MediaDescription:
    # s6: a rejected stream keeps its media type and formats with port 0.
    return MediaDescription(offered.media, 0, offered.proto, offered.formats or ("0",))


def _answer_media(
    offer: SessionDescription,
    index: int,
    capability: MediaCapability,
    port: int,
) -> MediaDescription:
    offered = offer.media[index]
    if not offered.proto.upper().startswith("RTP/"):
        # Not RTP: fmt tokens have no rtpmap and are matched as they are (RFC 4566 s5.14).
        accepted = tuple(
            f for f in offered.formats if f in capability.formats or "*" in capability.formats
        )
        if not accepted:
            return _rejected(offered)
        return MediaDescription(offered.media, port, offered.proto, accepted)
    rtpmaps = offered.rtpmaps
    fmtps = offered.fmtps
    chosen: list[tuple[str, Codec, RtpMap]] = []
    for fmt in offered.formats:
        rtpmap = rtpmaps.get(int(fmt)) if fmt.isdigit() else None
        if rtpmap is None:
            continue
        for codec in capability.codecs:
            if codec.matches(rtpmap):
                chosen.append((fmt, codec, rtpmap))
                break
    if not any(not codec.is_telephone_event for _, codec, _ in chosen):
        return _rejected(offered)
    attributes: list[Attribute] = []
    for fmt, codec, rtpmap in chosen:
        attributes.append(Attribute("rtpmap", str(rtpmap)))
        fmtp = codec.fmtp if codec.fmtp is not None else fmtps.get(fmt)
        if fmtp:
            attributes.append(Attribute("fmtp", f"{fmt} {fmtp}"))
    for name in ("ptime", "maxptime"):
        value = offered.attribute(name)
        if value is not None:
            attributes.append(Attribute(name, value))
    offered_direction = offer.direction_of(index)
    connection = offer.connection_of(index)
    # c=0.0.0.0 is the RFC 2543 hold: the offerer has no address to receive on (s8.4).
    peer_receives = offered_direction.receives and not (connection and connection.is_null)
    ours = capability.direction
    direction = Direction.of(
        sends=peer_receives and ours.sends, receives=offered_direction.sends and ours.receives
    )
    explicit = offered.direction is not None or offer.direction is not None
    answer = MediaDescription(
        offered.media,
        port,
        offered.proto,
        tuple(fmt for fmt, _, _ in chosen),
        attributes=tuple(attributes),
    )
    show = direction is not Direction.SENDRECV or explicit
    return answer.with_direction(direction if show else None)


def create_answer(
    offer: SessionDescription,
    local: LocalSession,
    capabilities: Sequence[MediaCapability],
    ports: Sequence[int],
    *,
    previous: SessionDescription | None = None,
) -> SessionDescription:
    """Our answer to ``offer``; ``ports[i]`` is where we receive stream ``i`` if accepted.

    ``previous`` is our last description in this session (a re-offer): the answer keeps its
    session id and bumps the version only if something changed (RFC 3264 s8). A re-offer with
    fewer m= lines than before is refused with :class:`SdpError` (status 488). If every stream
    ends up rejected the answer is still well-formed; the caller may prefer to send 488.
    """
    if len(ports) < len(offer.media):
        raise LocalProtocolError("create_answer needs one port per offered m= line")
    if previous is not None and len(offer.media) < len(previous.media):
        raise SdpError("Not Acceptable Here - re-offer removed m= lines", 488)
    media: list[MediaDescription] = []
    for index, offered in enumerate(offer.media):
        capability = next(
            (c for c in capabilities if c.media == offered.media and offered.proto in c.protos),
            None,
        )
        if offered.port == 0 or capability is None or ports[index] == 0:
            media.append(_rejected(offered))
        else:
            media.append(_answer_media(offer, index, capability, ports[index]))
    origin = local.origin(local.session_version) if previous is None else previous.origin
    answer = SessionDescription(
        origin=origin,
        session_name=local.session_name,
        connection=local.connection(),
        media=tuple(media),
    )
    if previous is not None and answer != previous:
        answer = answer.bump_version()
    return answer


# --- the result of an exchange -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NegotiatedStream:
    """What one m= line came to after an offer/answer exchange, from our side."""

    index: int
    media: str
    accepted: bool
    direction: Direction
    remote_address: str | None = None
    remote_port: int | None = None
    codec: RtpMap | None = None
    telephone_event: int | None = None
    fmtp: str | None = None


def negotiate(local: SessionDescription, remote: SessionDescription) -> list[NegotiatedStream]:
    """Streams of a completed exchange; ``local``/``remote`` are our and their descriptions
    (either may be the offer). Raises :class:`SdpError` if they do not pair up (s6)."""
    if len(local.media) != len(remote.media):
        raise SdpError("Bad SDP - answer has a different number of m= lines", 488)
    out: list[NegotiatedStream] = []
    for index, (mine, theirs) in enumerate(zip(local.media, remote.media, strict=True)):
        if mine.media != theirs.media:
            raise SdpError(f"Bad SDP - m= line {index + 1} changed media type", 488)
        if mine.rejected or theirs.rejected:
            out.append(NegotiatedStream(index, mine.media, False, Direction.INACTIVE))
            continue
        my_dir, their_dir = local.direction_of(index), remote.direction_of(index)
        connection = remote.connection_of(index)
        null = connection is None or connection.is_null
        direction = Direction.of(
            sends=my_dir.sends and their_dir.receives and not null,
            receives=my_dir.receives and their_dir.sends,
        )
        mine_maps, their_maps = mine.rtpmaps, theirs.rtpmaps
        codec: RtpMap | None = None
        event: int | None = None
        for fmt in theirs.formats:
            if not fmt.isdigit() or fmt not in mine.formats:
                continue
            rtpmap = their_maps.get(int(fmt)) or mine_maps.get(int(fmt))
            if rtpmap is None:
                continue
            if rtpmap.encoding.lower() == "telephone-event":
                event = event if event is not None else rtpmap.payload_type
            elif codec is None:
                codec = rtpmap
        out.append(
            NegotiatedStream(
                index,
                mine.media,
                codec is not None,
                direction if codec is not None else Direction.INACTIVE,
                connection.host if connection is not None else None,
                theirs.port,
                codec,
                event,
                theirs.fmtps.get(str(codec.payload_type)) if codec is not None else None,
            )
        )
    return out


# --- re-offers ---------------------------------------------------------------------------


def _map_streams(
    sdp: SessionDescription, change: dict[int, MediaDescription]
) -> SessionDescription:
    media = tuple(change.get(i, m) for i, m in enumerate(sdp.media))
    return replace(sdp, media=media).bump_version()


def hold(sdp: SessionDescription) -> SessionDescription:
    """Re-offer putting every active stream on hold: sendrecv -> sendonly, recvonly ->
    inactive (RFC 3264 s8.4)."""
    change: dict[int, MediaDescription] = {}
    for i, media in enumerate(sdp.media):
        if media.rejected:
            continue
        current = sdp.direction_of(i)
        change[i] = media.with_direction(Direction.of(sends=current.sends, receives=False))
    return _map_streams(sdp, change)


def resume(
    sdp: SessionDescription, direction: Direction = Direction.SENDRECV
) -> SessionDescription:
    """Re-offer taking every active stream off hold (to ``direction``)."""
    change = {
        i: m.with_direction(None if direction is Direction.SENDRECV else direction)
        for i, m in enumerate(sdp.media)
        if not m.rejected
    }
    return _map_streams(sdp, change)


def remove_stream(sdp: SessionDescription, index: int) -> SessionDescription:
    """Re-offer disabling stream ``index`` with port 0; the m= line stays (s8.2)."""
    return _map_streams(sdp, {index: _rejected(sdp.media[index])})


def add_stream(
    sdp: SessionDescription, media: MediaDescription, *, reuse_slot: bool = False
) -> tuple[SessionDescription, int]:
    """Re-offer with a new stream: appended, or in the first disabled slot with ``reuse_slot``
    (s8.1). Returns the description and the new stream's index."""
    if reuse_slot:
        for i, existing in enumerate(sdp.media):
            if existing.rejected:
                return _map_streams(sdp, {i: media}), i
    added = replace(sdp, media=(*sdp.media, media)).bump_version()
    return added, len(sdp.media)
