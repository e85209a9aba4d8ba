"""SDP of the control-channel set-up over SIP (RFC 6230 s4, COMEDIA of RFC 4145).

Plain line handling on purpose: this module must not depend on the focus's SIP stack.  The
client (application server) offers ``m=application 9 TCP cfw`` with ``a=setup:active``,
``a=connection:new`` and its ``a=cfw-id``; the server (media server) answers with
``a=setup:passive``, its listening port and a *different* cfw-id (s4.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CfwSdp", "SdpError", "build_answer", "build_offer", "parse_cfw_sdp", "validate_answer"]

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # token of RFC 4566 / s9.2
_SETUPS = ("active", "passive", "actpass", "holdconn")
_CONNECTIONS = ("new", "existing")
_PROTOS = ("TCP", "TCP/TLS")


class SdpError(ValueError):
    """The SDP cannot set up a control channel; answer the INVITE with ``sip_status``."""

    def __init__(self, reason: str, sip_status: int = 488) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sip_status = sip_status


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
    lines = [
        "v=0",
        f"o={origin_user} {sess} {sess} IN {addrtype} {address}",
        "s=-",
        f"c=IN {addrtype} {address}",
        "t=0 0",
        f"m=application {port} {'TCP/TLS' if tls else 'TCP'} cfw",
        f"a=setup:{setup}",
        f"a=connection:{connection}",
        f"a=cfw-id:{cfw_id}",
    ]
    return "\r\n".join(lines) + "\r\n"


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
    """The server's answer to ``offer``: it listens (setup:passive) on ``port`` (s4.2)."""
    _check_token(cfw_id, "cfw-id")
    if cfw_id == offer.cfw_id:
        raise ValueError("the answer's cfw-id must differ from the offer's (s4.2)")
    if offer.setup not in ("active", "actpass"):
        raise SdpError(f"offer has setup:{offer.setup}; this server only listens (passive)")
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


def parse_cfw_sdp(sdp: str) -> CfwSdp:
    """Finds and checks the one control-channel media description of ``sdp`` (s4.1).

    Raises :class:`SdpError` naming what is missing or wrong.
    """
    lines = [line.rstrip("\r") for line in sdp.split("\n") if line.strip()]
    session_c: tuple[str, str] | None = None
    media: list[list[str]] = []
    for line in lines:
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"not an SDP line: {line[:60]!r}")
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        elif line.startswith("c="):
            session_c = _parse_c(line)
    channels = [
        block for block in media if block[0].split()[2:4] in (["TCP", "cfw"], ["TCP/TLS", "cfw"])
    ]
    if not channels:
        raise SdpError("no 'm=application <port> TCP cfw' line")
    if len(channels) > 1:
        raise SdpError("more than one control channel in the SDP (s4.1 allows one)")
    block = channels[0]
    parts = block[0][2:].split()
    if len(parts) != 4 or parts[0] != "application":
        raise SdpError(f"bad control-channel media line {block[0]!r}")
    if not parts[1].isdigit() or int(parts[1]) > 65535:
        raise SdpError(f"bad port in {block[0]!r}")
    port = int(parts[1])
    conn = session_c
    attributes: dict[str, str] = {}
    for line in block[1:]:
        if line.startswith("c="):
            conn = _parse_c(line)
        elif line.startswith("a="):
            name, _, value = line[2:].partition(":")
            attributes.setdefault(name.strip(), value.strip())
    if conn is None:
        raise SdpError("no c= line for the control channel")
    if port == 0:
        # A rejected stream (RFC 3264): the attributes need not be there.
        return CfwSdp(
            conn[1],
            conn[0],
            0,
            parts[2],
            attributes.get("setup", ""),
            attributes.get("connection", ""),
            attributes.get("cfw-id", ""),
        )
    setup = attributes.get("setup", "active")  # RFC 4145 s4: active when absent
    if setup not in _SETUPS:
        raise SdpError(f"bad a=setup:{setup}")
    connection = attributes.get("connection", "new")  # RFC 4145 s5: new when absent
    if connection not in _CONNECTIONS:
        raise SdpError(f"bad a=connection:{connection}")
    if "cfw-id" not in attributes:
        raise SdpError("no a=cfw-id attribute (RFC 6230 s4.1 requires it)")
    names = attributes["cfw-id"].split()
    if not names or not all(_TOKEN.fullmatch(name) for name in names):
        raise SdpError(f"bad a=cfw-id:{attributes['cfw-id']}")
    return CfwSdp(conn[1], conn[0], port, parts[2], setup, connection, names[0])


def _parse_c(line: str) -> tuple[str, str]:
    parts = line[2:].split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad connection line {line!r} (IN IP4/IP6 required)")
    return parts[1], parts[2].split("/")[0]


def validate_answer(offer: CfwSdp, answer: CfwSdp) -> None:
    """Checks that ``answer`` completes ``offer`` into a channel the client can open."""
    if answer.rejected:
        raise SdpError("the media server rejected the control channel (port 0)")
    if answer.proto != offer.proto:
        raise SdpError(f"answer transport {answer.proto} differs from the offer's {offer.proto}")
    if offer.setup == "active" and answer.setup != "passive":
        raise SdpError(f"offer was active, answer must be passive, not {answer.setup}")
    if answer.cfw_id == offer.cfw_id:
        raise SdpError("answer reuses the offer's cfw-id (s4.2 forbids it)")
