"""The Media Control Channel Framework (RFC 6230), sans-IO: messages, parser, connection, SDP."""

from mediactrl.cfw.connection import CfwConfig, CfwConnection, Side, State
from mediactrl.cfw.errors import CfwError, LocalProtocolError, RemoteProtocolError
from mediactrl.cfw.message import Method, ReportStatus, Request, Response, serialize
from mediactrl.cfw.parser import NEED_DATA, CfwParser, ParseError, ParserLimits, parse_message

__all__ = [
    "NEED_DATA",
    "CfwConfig",
    "CfwConnection",
    "CfwError",
    "CfwParser",
    "LocalProtocolError",
    "Method",
    "ParseError",
    "ParserLimits",
    "RemoteProtocolError",
    "ReportStatus",
    "Request",
    "Response",
    "Side",
    "State",
    "parse_message",
    "serialize",
]
