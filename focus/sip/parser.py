"""Sans-IO SIP message parsing (RFC 3261 s7, s18.3, s25).

* :func:`parse_message` -- one message from one datagram (UDP): the body is what Content-Length
  says (extra octets are ignored, RFC 3261 s18.3), or the rest of the datagram without it.
* :class:`StreamParser` -- messages framed by Content-Length on a byte stream (TCP/TLS):
  ``receive_data(bytes)`` then ``next_message()`` until it returns ``None``. CRLF keep-alives
  between messages (RFC 5626 s3.5.1) are skipped.

Every failure is a :class:`~focus.sip.errors.SipParseError` with the status to answer and a
reason naming the fault; once the header block could be split, ``exc.message`` holds the raw
message so that a UAS can answer it. On a stream a *framing* error (no usable Content-Length,
header block too large) breaks the parser for good -- the connection must be closed
(RFC 4475 s3.1.2.3); any other error only consumes the offending message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from focus.sip.errors import SipParseError
from focus.sip.headers import Headers, canonical_name
from focus.sip.message import BrokenRequest, Message, Request, Response
from focus.sip.uri import SipURI, parse_uri

__all__ = [
    "DEFAULT_CONFIG",
    "KNOWN_METHODS",
    "ParserConfig",
    "StreamParser",
    "is_keepalive",
    "parse_message",
]


@dataclass(frozen=True, slots=True)
class ParserConfig:
    """Limits and policies of the parser.

    max_message_size: a larger message is refused with 513 Message Too Large (whole message:
        datagram, or header block plus announced body on a stream).
    max_head_size: a larger start line plus header block gets 513 as well; on a stream this is
        also how long we wait for the empty line that ends the headers.
    max_header_fields: more header lines than this get 513.
    max_body_size: a larger Content-Length gets 413 Request Entity Too Large.
    supported_uri_schemes: Request-URI schemes we serve; any other gives 416 Unsupported URI
        Scheme (RFC 3261 s8.2.2.1) with the fully parsed request in ``exc.message``. ``None``
        accepts every absolute URI.
    """

    max_message_size: int = 65535
    max_head_size: int = 16384
    max_header_fields: int = 256
    max_body_size: int = 65535
    supported_uri_schemes: frozenset[str] | None = frozenset({"sip", "sips", "tel"})


DEFAULT_CONFIG = ParserConfig()

#: Methods of RFC 3261, 3262, 3265/6665, 3311, 3428, 3515, 3903, 6086.
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "UPDATE", "MESSAGE", "REFER", "PUBLISH", "INFO",
    }
)  # fmt: skip

_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
# A CR must end a line: a stray one could not be serialized again. (Other control characters
# may legally appear as quoted-pairs, RFC 4475 s3.1.1.1 "intmeth".)
_STRAY_CR_RE = re.compile(r"\r(?!\n)")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_REQUEST_LINE_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) ([^ \t]+) ([Ss][Ii][Pp]/[0-9]+\.[0-9]+)")
_STATUS_LINE_RE = re.compile(r"[Ss][Ii][Pp]/([0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?")
_LEADING_CRLF_RE = re.compile(rb"(?:\r?\n)+")


# Header names seen before -> (key, canonical name); saves validating and canonicalizing the
# same few dozen names in every message. Bounded so that hostile peers cannot grow it.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 512
_WSP = (" ", "\t")


def _field_name(raw: str, line: str) -> tuple[str, str]:
    cached = _NAME_CACHE.get(raw)
    if cached is not None:
        return cached
    name = raw.rstrip(" \t")
    if not _TOKEN_RE.fullmatch(name):
        raise SipParseError.bad(f"Malformed header line {line[:40]!r}")
    name = canonical_name(name)
    entry = (name.lower(), name)
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[raw] = entry
    return entry


def _split_head(head: bytes, config: ParserConfig) -> Request | Response:
    """Start line and header fields of one message (without the final empty line)."""
    text = head.decode("utf-8", "surrogateescape")
    if "\r" in text:
        if _STRAY_CR_RE.search(text):
            raise SipParseError.bad("CR without LF in header block")
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if len(lines) > config.max_header_fields + 1:
        raise SipParseError("Message Too Large - too many header fields", 513)
    start = lines[0]
    fields: list[tuple[str, str, str]] = []
    folded: dict[int, list[str]] = {}  # field index -> continuation lines (rare)
    names = _NAME_CACHE
    for line in lines[1:]:
        if line[:1] in _WSP:
            # Line folding (RFC 3261 s7.3.1): a continuation line joins the previous value.
            if not fields:
                raise SipParseError.bad("Continuation line before the first header field")
            folded.setdefault(len(fields) - 1, []).append(line.strip(" \t"))
            continue
        raw_name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError.bad(f"Malformed header line {line[:40]!r}")
        entry = names.get(raw_name) or _field_name(raw_name, line)
        fields.append((entry[0], entry[1], value.strip(" \t")))
    for index, extra in folded.items():
        key, name, value = fields[index]
        # Joined once, so many folds cost linear time.
        fields[index] = (key, name, " ".join(part for part in (value, *extra) if part))
    headers = Headers._from_canonical(fields)
    try:
        return _parse_start_line(start, headers)
    except SipParseError as exc:
        # The header fields are still good enough to answer a broken request with.
        exc.message = (
            Message(headers, b"") if start[:4].upper() == "SIP/" else BrokenRequest(start, headers)
        )
        raise


def _parse_start_line(line: str, headers: Headers) -> Request | Response:
    if line[:4].upper() == "SIP/":
        m = _STATUS_LINE_RE.fullmatch(line)
        if m is None:
            raise SipParseError.bad("Malformed Status-Line")
        version, code, reason = m.groups()
        if version != "2.0":
            raise SipParseError("SIP Version Not Supported", 505)
        status = int(code)
        if not 100 <= status <= 699:
            raise SipParseError.bad("Status code out of range")
        return Response(status, reason or "", headers)
    m = _REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        raise SipParseError.bad("Malformed Request-Line")
    method, uri_text, version = m.groups()
    if version[4:] != "2.0":
        raise SipParseError("SIP Version Not Supported", 505)
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        raise SipParseError.bad("Malformed Request-URI") from exc
    if isinstance(uri, SipURI) and uri.headers:
        # RFC 3261 s19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 s3.1.2.11).
        raise SipParseError.bad("Headers in Request-URI")
    return Request(method, uri, headers)


def _content_length(msg: Message) -> int | None:
    values = msg.headers.get_all("Content-Length")
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError.bad("Multiple Content-Length values")
    text = values[0]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise SipParseError.bad("Malformed Content-Length")
    return int(text)


def _validate(msg: Message, config: ParserConfig) -> None:
    """Checks every element needs before it can act on a message (RFC 3261 s8.2, s18)."""
    try:
        headers = msg.headers
        if not headers.via:
            raise SipParseError.bad("Missing Via")
        headers.from_  # noqa: B018 -- parsing is the check
        headers.to  # noqa: B018
        headers.call_id  # noqa: B018
        cseq = headers.cseq
        if "Contact" in headers:
            headers.contact  # noqa: B018
        if isinstance(msg, Request):
            if cseq.method != msg.method:
                if msg.method not in KNOWN_METHODS:
                    # RFC 4475 s3.1.2.18: for an unknown method 501 is the better answer.
                    raise SipParseError("Not Implemented", 501)
                raise SipParseError.bad("CSeq method does not match Request-Line")
            schemes = config.supported_uri_schemes
            if schemes is not None and msg.uri.scheme not in schemes:
                raise SipParseError("Unsupported URI Scheme", 416)
    except SipParseError as exc:
        if exc.message is None:
            exc.message = msg
        raise


def _check_sizes(msg: Message, length: int, head_size: int, config: ParserConfig) -> None:
    if length > config.max_body_size:
        raise SipParseError("Request Entity Too Large", 413, message=msg)
    if head_size + length > config.max_message_size:
        raise SipParseError("Message Too Large", 513, message=msg)


def _find_head_end(data: bytes | bytearray, start: int) -> re.Match[bytes] | None:
    """The empty line ending the header block (CRLF or bare LF line ends), from ``start``.

    Every match contains b"\n\n" or b"\n\r\n"; find() locates those far faster than a regex
    scan, which then only confirms the exact span.
    """
    found = [p for p in (data.find(b"\n\n", start), data.find(b"\n\r\n", start)) if p >= 0]
    if not found:
        return None
    return _HEAD_END_RE.search(data, max(start, min(found) - 1))


def _head_of(data: bytes, config: ParserConfig) -> Request | Response | None:
    """The header block of an oversized datagram, if it is readable: enough to answer 513."""
    lead = _LEADING_CRLF_RE.match(data)
    start = lead.end() if lead else 0
    end = _find_head_end(data[: start + config.max_head_size + 4], start)
    if end is None:
        return None
    try:
        return _split_head(data[start : end.start()], config)
    except SipParseError as exc:
        return exc.message if isinstance(exc.message, Request) else None


def _bad_start_line(buf: bytes | bytearray, config: ParserConfig) -> SipParseError | None:
    """Why the first line of a stream's next message cannot start a SIP message, as soon as
    it is complete (a peer sending garbage is cut off at once, not after max_head_size)."""
    newline = buf.find(b"\n", 0, config.max_head_size)
    if newline < 0:
        return None
    line = bytes(buf[:newline]).rstrip(b"\r").decode("utf-8", "surrogateescape")
    if _REQUEST_LINE_RE.fullmatch(line) or _STATUS_LINE_RE.fullmatch(line):
        return None
    return SipParseError.bad("Malformed start line")


def is_keepalive(data: bytes) -> bool:
    """True for a datagram of only CRLFs: an RFC 5626 s4.4.1 keep-alive, not a message."""
    return bool(data) and not data.strip(b"\r\n")


def parse_message(data: bytes, config: ParserConfig = DEFAULT_CONFIG) -> Request | Response:
    """Parse one message from a datagram; raises :class:`SipParseError`."""
    if len(data) > config.max_message_size:
        raise SipParseError("Message Too Large", 513, message=_head_of(data, config))
    lead = _LEADING_CRLF_RE.match(data)
    start = lead.end() if lead else 0
    if start == len(data):
        raise SipParseError.bad("Empty message")
    end = _find_head_end(data, start)
    if end is not None:
        head_end, body_start = end.start(), end.end()
    elif data.endswith(b"\n"):
        # A datagram that ends right after its last header line: no body, lenient on the
        # missing empty line (RFC 4475 "baddn" is framed like this).
        head_end = len(data) - (2 if data.endswith(b"\r\n") else 1)
        body_start = len(data)
    else:
        raise SipParseError.bad("Missing empty line after the header fields")
    if head_end - start > config.max_head_size:
        raise SipParseError("Message Too Large - header block", 513)
    msg = _split_head(data[start:head_end], config)
    try:
        length = _content_length(msg)
    except SipParseError as exc:
        exc.message = msg
        raise
    if length is None:
        msg.body = data[body_start:]
    else:
        _check_sizes(msg, length, body_start - start, config)
        if len(data) - body_start < length:
            raise SipParseError(
                "Bad Request - Content-Length larger than message", 400, message=msg
            )
        msg.body = data[body_start : body_start + length]
    _validate(msg, config)
    return msg


class StreamParser:
    """Frames and parses SIP messages arriving on a byte stream (sans-IO).

    Feed bytes with :meth:`receive_data`; call :meth:`next_message` until it returns ``None``.
    After a framing error :attr:`broken` is set and every further call raises again: close the
    connection. Messages must carry Content-Length (RFC 3261 s18.3).
    """

    def __init__(self, config: ParserConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        #: Double-CRLF keep-alive pings consumed so far (RFC 5626 s3.5.1); each one deserves
        #: a single-CRLF pong from the transport.
        self.pings = 0
        self._crlf_run = 0
        self._pending: tuple[Request | Response, int, int] | None = None
        self._buf = bytearray()
        self._scan_from = 0
        self._error: SipParseError | None = None

    @property
    def broken(self) -> bool:
        return self._error is not None

    @property
    def buffered(self) -> int:
        """Octets received but not yet consumed by a complete message."""
        return len(self._buf)

    @property
    def awaiting_body(self) -> int | None:
        """Body octets still missing for a message whose header block is complete, else None.

        A transport can time such a connection out (RFC 4475 s3.1.2.2: a Content-Length larger
        than what is sent leaves the receiver waiting).
        """
        if self._pending is None:
            return None
        return max(0, self._pending[2] - len(self._buf))

    def receive_data(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._buf += data

    def _fail(self, exc: SipParseError) -> SipParseError:
        self._error = exc
        return exc

    def next_message(self) -> Request | Response | None:
        """The next complete message, or ``None`` if more data is needed."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pending = self._pending
        if pending is None:
            lead = _LEADING_CRLF_RE.match(buf)
            if lead is not None:
                # Keep-alives may arrive split across reads: count line ends, two per ping.
                run = self._crlf_run + buf.count(b"\n", 0, lead.end())
                self.pings += run // 2
                self._crlf_run = run % 2
                del buf[: lead.end()]
                self._scan_from = 0
            if not buf:
                return None
            pending = self._parse_head()
            if pending is None:
                return None
            self._pending = pending
            self._crlf_run = 0
        msg, body_start, total = pending
        if len(buf) < total:
            return None
        self._pending = None
        msg.body = bytes(buf[body_start:total])
        del buf[:total]
        self._scan_from = 0
        _validate(msg, self.config)
        return msg

    def _parse_head(self) -> tuple[Request | Response, int, int] | None:
        """Header block of the next message, once complete: (message, body start, end)."""
        buf = self._buf
        end = _find_head_end(buf, max(0, self._scan_from - 3))
        if end is None:
            bad = _bad_start_line(buf, self.config)
            if bad is not None:
                raise self._fail(bad)
            self._scan_from = len(buf)
            if len(buf) > self.config.max_head_size:
                raise self._fail(SipParseError("Message Too Large - header block", 513))
            return None
        if end.start() > self.config.max_head_size:
            raise self._fail(SipParseError("Message Too Large - header block", 513))
        try:
            msg = _split_head(bytes(buf[: end.start()]), self.config)
        except SipParseError as exc:
            # Without headers we cannot know where the next message starts.
            raise self._fail(exc) from None
        try:
            length = _content_length(msg)
            if length is None:
                raise SipParseError.bad("Missing Content-Length on a stream transport")
            _check_sizes(msg, length, end.end(), self.config)
        except SipParseError as exc:
            exc.message = msg
            raise self._fail(exc) from None
        # Parsed once, kept while the body trickles in (a peer dripping bytes must not make
        # us re-parse the header block for each of them).
        return msg, end.end(), end.end() + length
