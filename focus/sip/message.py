"""SIP requests and responses (RFC 3261 s7).

:class:`Request` and :class:`Response` are *mutable*: a transaction layer adds a Via, a proxy
rewrites the Request-URI and Route set, a UAS adds a To tag. Their typed header accessors
(``msg.via``, ``msg.cseq`` ...) delegate to :class:`~focus.sip.headers.Headers`, which caches
parsed values until the header is changed. ``bytes(msg)`` serializes; Content-Length is always
written from the actual body length (RFC 3261 s18.3 makes it mandatory on streams).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from focus.sip.errors import BadExtensionError, LocalProtocolError
from focus.sip.headers import (
    CSeq,
    EventHeader,
    Headers,
    MediaType,
    NameAddr,
    SubscriptionState,
    Via,
)
from focus.sip.uri import URI, parse_uri, redacted

__all__ = [
    "REASON_PHRASES",
    "BrokenRequest",
    "CSeq",
    "EventHeader",
    "Headers",
    "MediaType",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SubscriptionState",
    "Via",
    "make_response",
]

SIP_VERSION = "SIP/2.0"
_METHOD_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")

#: Default reason phrases (RFC 3261 s21, RFC 3265/6665, RFC 3515, RFC 4028, RFC 3329 ...).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


class Message:
    """What requests and responses share: header fields, body, serialization, accessors."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers | Iterable[tuple[str, str]] | None, body: bytes) -> None:
        self.headers: Headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body: bytes = bytes(body)

    def start_line(self) -> str:
        # A bare Message only carries the header fields of a request whose start line was
        # malformed (see SipParseError.message); it cannot go on the wire.
        raise LocalProtocolError("a bare Message has no start line")

    def _header_key(self) -> list[tuple[str, str]]:
        # Content-Length is derived from the body when serializing, so it takes no part in
        # equality: a message equals its own re-parsed serialization.
        return [(n.lower(), v) for n, v in self.headers if n != "Content-Length"]

    def to_bytes(self) -> bytes:
        """The wire form; Content-Length is (re)written to match the body."""
        start = self.start_line()
        if "\r" in start or "\n" in start:
            raise LocalProtocolError("CR/LF in the start line")
        lines = [start]
        length_written = False
        for name, value in self.headers:
            if name == "Content-Length":
                if length_written:
                    continue
                length_written = True
                lines.append(f"Content-Length: {len(self.body)}")
                continue
            if "\r" in value or "\n" in value:
                raise LocalProtocolError(f"CR/LF in the value of header {name}")
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        try:
            return head.encode("utf-8", "surrogateescape") + self.body
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"unencodable character in message: {exc}") from None

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    # typed accessors (see focus.sip.headers.Headers)

    @property
    def via(self) -> list[Via]:
        return self.headers.via

    @property
    def from_(self) -> NameAddr:
        return self.headers.from_

    @property
    def to(self) -> NameAddr:
        return self.headers.to

    @property
    def call_id(self) -> str:
        return self.headers.call_id

    @property
    def cseq(self) -> CSeq:
        return self.headers.cseq

    @property
    def contact(self) -> list[NameAddr] | Literal["*"]:
        return self.headers.contact

    @property
    def max_forwards(self) -> int | None:
        return self.headers.max_forwards

    @property
    def content_length(self) -> int | None:
        return self.headers.content_length

    @property
    def content_type(self) -> MediaType | None:
        return self.headers.content_type

    @property
    def expires(self) -> int | None:
        return self.headers.expires

    @property
    def event(self) -> EventHeader | None:
        return self.headers.event

    @property
    def subscription_state(self) -> SubscriptionState | None:
        return self.headers.subscription_state

    @property
    def route(self) -> list[NameAddr]:
        return self.headers.route

    @property
    def record_route(self) -> list[NameAddr]:
        return self.headers.record_route

    @property
    def refer_to(self) -> NameAddr | None:
        return self.headers.refer_to


class BrokenRequest(Message):
    """The header fields of a request whose Request-Line could not be parsed (bad
    Request-URI, version, spacing): what a :class:`~focus.sip.errors.SipParseError` carries
    so that the request can still be answered (400, 505, ...) with :func:`make_response`.
    ``method`` is the start line's first word, as sent; ``line`` the whole start line."""

    __slots__ = ("line", "method")

    def __init__(self, line: str, headers: Headers) -> None:
        super().__init__(headers, b"")
        self.line = line
        self.method = line.split(" ", 1)[0]


class Request(Message):
    """A SIP request. ``uri`` may be given as text; it is parsed then."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: URI | str,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.method: str = method
        self.uri: URI = parse_uri(uri) if isinstance(uri, str) else uri

    def start_line(self) -> str:
        if not _METHOD_RE.fullmatch(self.method):
            raise LocalProtocolError(f"method {self.method!r} is not a token")
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (self.method, self.uri, self._header_key(), self.body) == (
            other.method,
            other.uri,
            other._header_key(),
            other.body,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # never a conference password in a log line (RFC 4579 dial-in with ;password=)
        return f"<Request {self.method} {redacted(self.uri)} headers={len(self.headers)}>"


class Response(Message):
    """A SIP response; ``reason`` defaults to the standard phrase for ``status``."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"status {status} is not a SIP status code")
        super().__init__(headers, body)
        self.status: int = status
        self.reason: str = reason if reason is not None else REASON_PHRASES.get(status, "")

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (self.status, self.reason, self._header_key(), self.body) == (
            other.status,
            other.reason,
            other._header_key(),
            other.body,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} headers={len(self.headers)}>"


def make_response(
    request: Message,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
) -> Response:
    """A response to ``request`` per RFC 3261 s8.2.6.2.

    Copies Via (all, in order), From, Call-ID, CSeq and To; adds ``to_tag`` to To if To has
    no tag yet (never for 100 Trying, which echoes Timestamp instead, s8.2.6.1). For 101-299
    responses Record-Route is copied too (s12.1.1), since they may create a dialog.
    Copying works on the raw field values, so it also works for a request whose typed
    headers failed to parse (to answer 400), or for the bare :class:`Message` that a
    :class:`~focus.sip.errors.SipParseError` carries when the Request-Line was malformed.
    """
    response = Response(status, reason)
    headers = response.headers
    source = request.headers
    tag_to = to_tag is not None and status != 100 and "To" in source and source.to.tag is None
    # Record-Route only where a dialog may be created (101-299); Timestamp only in a 100
    # Trying (s8.2.6.1).
    headers._copy_fields(source, ("Via", "Record-Route") if 101 <= status <= 299 else ("Via",))
    headers._copy_fields(source, ("From",))
    if tag_to:
        # Appending keeps the peer's own spelling of the To value (just one: .to rejects
        # several).
        headers.add("To", f"{source.get('To')};tag={to_tag}")
    else:
        headers._copy_fields(source, ("To",))
    headers._copy_fields(
        source, ("Call-ID", "CSeq", "Timestamp") if status == 100 else ("Call-ID", "CSeq")
    )
    copied = ["Via", "From", "Call-ID", "CSeq"]
    if 101 <= status <= 299:
        copied.append("Record-Route")
    if not tag_to:
        copied.append("To")
    headers._share_parsed(source, copied)
    return response


def check_require(request: Request, supported: Iterable[str], *, header: str = "Require") -> None:
    """Raise :class:`BadExtensionError` if ``request`` requires an option tag not supported.

    A UAS checks ``Require`` (RFC 3261 s8.2.2.3; never for ACK and CANCEL); a proxy checks
    ``Proxy-Require`` (s16.3 item 5) by passing ``header="Proxy-Require"``. Option tags are
    tokens, hence compared case-insensitively (s7.3.1).
    """
    if header == "Require" and request.method in ("ACK", "CANCEL"):
        return
    known = {tag.lower() for tag in supported}
    missing = tuple(tag for tag in request.headers.tokens(header) if tag.lower() not in known)
    if missing:
        raise BadExtensionError(missing)
