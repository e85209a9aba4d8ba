"""SDP of the control-channel set-up over SIP: the CFW rules (RFC 6230 s4) with COMEDIA
(RFC 4145) on the SIP stack's SDP model (:mod:`focus.sip.sdp`, RFC 4566).

The SDP itself is parsed and written by :func:`focus.sip.sdp.parse_sdp` and
:class:`~focus.sip.sdp.SessionDescription`; this module only says what makes a control channel:

* exactly one media description ``m=application <port> TCP cfw`` (``TCP/TLS`` for TLS),
  s4.1 (:func:`is_cfw_media`);
* ``a=setup`` (RFC 4145 s4: active, passive, actpass, holdconn; active when absent) and
  ``a=connection`` (RFC 4145 s5: new, existing; new when absent), media level first, else
  session level;
* ``a=cfw-id`` with one or more tokens (s9.2), required unless the stream is rejected (port 0).

The client (application server) offers setup:active, connection:new, the discard port 9 and
its cfw-id; the server (media server) answers setup:passive with its listening port and a
*different* cfw-id (s4.2).  Every failure is a :class:`focus.sip.sdp.SdpError` whose
``status`` is what to answer the INVITE: 400 for SDP that does not parse, 488 for SDP that
parses but cannot set up this channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from focus.sip.sdp import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    parse_sdp,
)

__all__ = [
    "CfwSdp",
    "build_answer",
    "build_offer",
    "is_cfw_media",
    "parse_cfw_sdp",
    "validate_answer",
]

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # token of RFC 4566 / s9.2
_SETUPS = ("active", "passive", "actpass", "holdconn")  # RFC 4145 s4
_CONNECTIONS = ("new", "existing")  # RFC 4145 s5
_PROTOS = ("TCP", "TCP/TLS")
_NOT_ACCEPTABLE = 488


def _refuse(reason: str) -> SdpError:
    return SdpError(reason, _NOT_ACCEPTABLE)


@dataclass(frozen=True)
class CfwSdp:
    """The control channel as described by one SDP body (RFC 6230 s4.1).

    ``port`` 0 means the stream was rejected (RFC 3264).  ``cfw_id`` holds the first name of
    the cfw-id attribute (s9.2 allows several; the first identifies the channel).
    """

    address: str
    addrtype: str
    port: int
    proto: str
    setup: str
    connection: str
    cfw_id: str

    @property
    def rejected(self) -> bool:
        return self.port == 0


def is_cfw_media(media: MediaDescription) -> bool:
    """True for a control-channel media description (s4.1: application over TCP or TCP/TLS
    with the ``cfw`` format)."""
    return media.media == "application" and media.proto in _PROTOS and "cfw" in media.formats


def _check_token(value: str, what: str) -> None:
    if _TOKEN.fullmatch(value) is None:
        raise ValueError(f"{what} {value!r} is not an SDP token")


def _body(
    *,
    address: str,
    port: int,
    cfw_id: str,
    setup: str,
    connection: str,
    tls: bool,
    sess: int,
    origin_user: str,
) -> str:
    addrtype = "IP6" if ":" in address else "IP4"
    channel = MediaDescription(
        "application",
        port,
        "TCP/TLS" if tls else "TCP",
        ("cfw",),
        attributes=(
            Attribute("setup", setup),
            Attribute("connection", connection),
            Attribute("cfw-id", cfw_id),
        ),
    )
    sdp = SessionDescription(
        Origin(origin_user, sess, sess, address, addrtype=addrtype),
        connection=Connection(address, addrtype=addrtype),
        media=(channel,),
    )
    return str(sdp)


def build_offer(
    *,
    address: str,
    cfw_id: str,
    session_id: int,
    port: int = 9,
    connection: str = "new",
    tls: bool = False,
    origin_user: str = "-",
) -> str:
    """The client's offer: it connects (setup:active), so its port is the discard port 9."""
    _check_token(cfw_id, "cfw-id")
    if connection not in _CONNECTIONS:
        raise ValueError(f"connection must be one of {_CONNECTIONS}")
    return _body(
        address=address,
        port=port,
        cfw_id=cfw_id,
        setup="active",
        connection=connection,
        tls=tls,
        sess=session_id,
        origin_user=origin_user,
    )


def build_answer(
    offer: CfwSdp,
    *,
    address: str,
    port: int,
    cfw_id: str,
    session_id: int,
    origin_user: str = "-",
) -> str:
    """The server's answer to ``offer``: it listens (setup:passive) on ``port`` (s4.2).

    Raises ValueError for our own mistakes (a cfw-id equal to the offer's, a bad port) and
    :class:`SdpError` (488) for an offer this server cannot answer.
    """
    _check_token(cfw_id, "cfw-id")
    if cfw_id == offer.cfw_id:
        raise ValueError("the answer's cfw-id must differ from the offer's (s4.2)")
    if offer.setup not in ("active", "actpass"):
        raise _refuse(f"offer has setup:{offer.setup}; this server only listens (passive)")
    if not 0 < port < 65536:
        raise ValueError("a listening port is 1..65535")
    return _body(
        address=address,
        port=port,
        cfw_id=cfw_id,
        setup="passive",
        connection=offer.connection,
        tls=offer.proto == "TCP/TLS",
        sess=session_id,
        origin_user=origin_user,
    )


def parse_cfw_sdp(sdp: str | bytes | SessionDescription) -> CfwSdp:
    """Finds and checks the one control-channel media description of ``sdp`` (s4.1).

    Raises :class:`SdpError` naming what is missing or wrong.
    """
    description = sdp if isinstance(sdp, SessionDescription) else parse_sdp(sdp)
    channels = [i for i, media in enumerate(description.media) if is_cfw_media(media)]
    if not channels:
        raise _refuse("no 'm=application <port> TCP cfw' line")
    if len(channels) > 1:
        raise _refuse("more than one control channel in the SDP (s4.1 allows one)")
    index = channels[0]
    media = description.media[index]
    conn = description.connection_of(index)
    if conn is None:
        raise _refuse("no c= line for the control channel")
    if conn.nettype != "IN" or conn.addrtype not in ("IP4", "IP6"):
        raise _refuse(f"bad connection line c={conn} (IN IP4/IP6 required)")

    def attribute(name: str) -> str | None:
        # Media level first, else session level (RFC 4145 s4, s5); "" when valueless.
        for attributes in (media.attributes, description.attributes):
            for found in attributes:
                if found.name == name:
                    return found.value or ""
        return None

    setup = attribute("setup")
    connection = attribute("connection")
    cfw_id = attribute("cfw-id")
    if media.rejected:
        # A rejected stream (RFC 3264): the attributes need not be there.
        names = (cfw_id or "").split()
        first = names[0] if names else ""
        return CfwSdp(
            conn.host, conn.addrtype, 0, media.proto, setup or "", connection or "", first
        )
    if setup is None:
        setup = "active"  # RFC 4145 s4: active when absent
    if setup not in _SETUPS:
        raise _refuse(f"bad a=setup:{setup}")
    if connection is None:
        connection = "new"  # RFC 4145 s5: new when absent
    if connection not in _CONNECTIONS:
        raise _refuse(f"bad a=connection:{connection}")
    if cfw_id is None:
        raise _refuse("no a=cfw-id attribute (RFC 6230 s4.1 requires it)")
    names = cfw_id.split()
    if not names or not all(_TOKEN.fullmatch(name) for name in names):
        raise _refuse(f"bad a=cfw-id:{cfw_id}")
    return CfwSdp(conn.host, conn.addrtype, media.port, media.proto, setup, connection, names[0])


def validate_answer(offer: CfwSdp, answer: CfwSdp) -> None:
    """Checks that ``answer`` completes ``offer`` into a channel the client can open."""
    if answer.rejected:
        raise _refuse("the media server rejected the control channel (port 0)")
    if answer.proto != offer.proto:
        raise _refuse(f"answer transport {answer.proto} differs from the offer's {offer.proto}")
    if offer.setup == "active" and answer.setup != "passive":
        raise _refuse(f"offer was active, answer must be passive, not {answer.setup}")
    if answer.cfw_id == offer.cfw_id:
        raise _refuse("answer reuses the offer's cfw-id (s4.2 forbids it)")
