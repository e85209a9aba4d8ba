"""Stream parser of Control Framework messages (RFC 6230 s9.1), sans-IO.

Bytes go in with :meth:`CfwParser.receive_data`; :meth:`CfwParser.next_event` hands out one
:class:`~mediactrl.cfw.message.Request`, :class:`~mediactrl.cfw.message.Response`,
:class:`ParseError` or :data:`NEED_DATA` at a time.  Messages are framed by the blank line
after the headers and by Content-Length.

A message whose framing could be read but whose content is wrong (a bad header value, a
missing mandatory header) yields a *recoverable* ``ParseError``: its bytes are skipped and the
stream goes on.  When framing itself is lost (no valid Content-Length, a head over the size
limit, more header lines than allowed, bare LF line ends) or when a bad request cannot be
answered because no transaction id can be read from its start line, the error is fatal: the
parser stops and repeats that error, since nothing later on the stream can be trusted.

Fatal head errors are found as soon as the bytes that prove them are in (a start line that is
not ``CFW <trans-id> ...`` after its CRLF, not ``CFW `` at all after four bytes, one header
line too many, the size limit crossed), not when the blank line arrives: a peer that never
sends one is not waited for.  Each check fires at a fixed stream position and the earliest
wins, so the verdict does not depend on how the stream was split.  A malformed *response* is
skipped (responses are never answered); a transaction waiting for it times out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mediactrl.cfw.message import (
    KNOWN_HEADERS,
    Message,
    Method,
    Request,
    Response,
    is_alpha_num_token,
    is_media_type,
)

__all__ = ["NEED_DATA", "CfwParser", "NeedData", "ParseError", "ParserLimits", "parse_message"]


@dataclass(frozen=True)
class ParserLimits:
    """Size limits that keep a hostile peer from exhausting memory.

    ``max_head``: bytes of start line plus headers, blank line included; ``max_body``:
    Content-Length accepted; ``max_headers``: number of header lines.
    """

    max_head: int = 16 * 1024
    max_body: int = 1024 * 1024
    max_headers: int = 64


@dataclass(frozen=True)
class ParseError:
    """The peer sent a message we cannot accept.

    ``status`` is the RFC 6230 s7 code to answer with and ``trans_id`` the request to answer
    (None when unreadable or when the bad message is a response, which is never answered).
    ``fatal`` means framing is lost and the channel must be closed.
    """

    status: int
    reason: str
    trans_id: str | None = None
    fatal: bool = False


class NeedData:
    """Sentinel: more bytes are needed before the next message is complete."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

_START = re.compile(rb"CFW ([^ \r\n]+) ([A-Z]+(?:-[A-Z]+)?|[0-9]{3})")
_DIGITS = re.compile(r"[0-9]{1,10}")
_HNAME = re.compile(r"[A-Za-z][!#$%&'*+\-.0-9A-Z^_`a-z|~]*")

# Mandatory request headers per method (RFC 6230 s9.1, Table 1).  Dialog-ID is mandatory only
# on the initial SYNC, which the connection checks: the parser cannot know which SYNC that is.
_MANDATORY: dict[str, tuple[str, ...]] = {
    Method.CONTROL: ("Control-Package",),
    Method.REPORT: ("Seq", "Status", "Timeout"),
    Method.SYNC: ("Packages",),
    Method.K_ALIVE: (),
}


class _Invalid(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _check_value(name: str, value: str) -> str:
    """Validates a known header's value; returns it (normalized where the ABNF allows)."""
    if name in ("Content-Length", "Seq", "Timeout", "Keep-Alive"):
        if _DIGITS.fullmatch(value) is None:
            raise _Invalid(f"{name} must be a decimal number, got {value!r}")
    elif name in ("Control-Package", "Dialog-ID"):
        if not is_alpha_num_token(value):
            raise _Invalid(f"{name} must be an alpha-num-token, got {value!r}")
    elif name in ("Packages", "Supported"):
        items = [item.strip() for item in value.split(",")]
        if not items or not all(is_alpha_num_token(item) for item in items):
            raise _Invalid(f"{name} must be a comma-separated list of package names")
    elif name == "Status":
        if value.lower() not in ("update", "terminate"):
            raise _Invalid(f"Status must be update or terminate, got {value!r}")
    elif name == "Content-Type" and not is_media_type(value):
        raise _Invalid(f"Content-Type is not a media type: {value!r}")
    return value


def _parse_head(head: bytes, limits: ParserLimits) -> tuple[str, str, list[tuple[str, str]], int]:
    """Start line and headers -> (trans_id, method-or-code, headers, content_length).

    Raises _Invalid; ``trans_id`` is reported through the exception's args when known.
    """
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid("message head is not UTF-8") from exc
    lines = text.split("\r\n")
    match = _START.fullmatch(lines[0].encode("utf-8"))
    if match is None:
        raise _Invalid(f"bad start line {lines[0][:80]!r}")
    trans_id = match.group(1).decode("utf-8")
    verb = match.group(2).decode("ascii")
    if len(lines) - 1 > limits.max_headers:
        raise _Invalid(f"more than {limits.max_headers} header lines")
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    content_length = 0
    for line in lines[1:]:
        name, colon, raw_value = line.partition(":")
        if not colon or _HNAME.fullmatch(name) is None:
            raise _Invalid(f"bad header line {line[:80]!r}")
        value = raw_value.strip(" \t")
        if any((ord(ch) < 0x20 and ch != "\t") or ch == "\x7f" for ch in value):
            raise _Invalid(f"control character in header {name}")
        canonical = KNOWN_HEADERS.get(name.lower())
        if canonical is not None:
            if canonical in seen:
                raise _Invalid(f"duplicate header {canonical}")
            seen.add(canonical)
            value = _check_value(canonical, value)
            if canonical == "Content-Length":
                content_length = int(value)
                continue
            name = canonical
        headers.append((name, value))
    return trans_id, verb, headers, content_length


def _validate(trans_id: str, verb: str, headers: list[tuple[str, str]], body: bytes) -> Message:
    if not is_alpha_num_token(trans_id):
        raise _Invalid(f"transaction id {trans_id[:40]!r} is not an alpha-num-token")
    names = {name for name, _ in headers}
    if body and "Content-Type" not in names:
        raise _Invalid("a message with a body needs a Content-Type")
    if verb.isdigit():
        code = int(verb)
        if code < 100:
            raise _Invalid(f"bad status code {verb}")
        return Response(trans_id, tuple(headers), body, code=code)
    for required in _MANDATORY.get(verb, ()):
        if required not in names:
            raise _Invalid(f"{verb} without the mandatory {required} header")
    return Request(trans_id, tuple(headers), body, method=verb)


class CfwParser:
    """Incremental parser of a CFW byte stream (RFC 6230 s9.1)."""

    def __init__(self, limits: ParserLimits | None = None) -> None:
        self.limits = limits or ParserLimits()
        self._buffer = bytearray()
        self._fatal: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out as a message."""
        return len(self._buffer)

    @property
    def broken(self) -> bool:
        """True once framing is lost; the channel must then be closed."""
        return self._fatal is not None

    def receive_data(self, data: bytes) -> None:
        """Appends bytes read from the stream (ignored once the stream is broken)."""
        if self._fatal is None:
            self._buffer += data

    def next_event(self) -> Message | ParseError | NeedData:
        """The next complete message, its parse error, or NEED_DATA."""
        if self._fatal is not None:
            return self._fatal
        end = self._buffer.find(b"\r\n\r\n")
        problem = _head_problem(self._buffer, end, self.limits)
        if problem is not None:
            status, reason, trans_id = problem
            return self._fail(status, reason, trans_id)
        if end < 0:
            return NEED_DATA
        head = bytes(self._buffer[:end])
        trans_id = _peek_trans_id(head)  # only a valid id may be answered
        try:
            raw_id, verb, headers, length = _parse_head(head, self.limits)
        except _Invalid as exc:
            length_or_none = _salvage_length(head)
            if length_or_none is None:
                return self._fail(exc.status, exc.reason, trans_id)
            return self._skip(end + 4 + length_or_none, exc, trans_id)
        if length > self.limits.max_body:
            return self._fail(
                413, f"body of {length} bytes exceeds {self.limits.max_body}", trans_id
            )
        total = end + 4 + length
        if len(self._buffer) < total:
            return NEED_DATA
        body = bytes(self._buffer[end + 4 : total])
        try:
            message = _validate(raw_id, verb, headers, body)
        except _Invalid as exc:
            return self._skip(total, exc, trans_id)
        del self._buffer[:total]
        return message

    def _fail(self, status: int, reason: str, trans_id: str | None) -> ParseError:
        # 413/431 are not s7 codes; the peer is answered 400 and the channel closed.
        self._fatal = ParseError(400 if status in (413, 431) else status, reason, trans_id, True)
        self._buffer.clear()
        return self._fatal

    def _skip(self, total: int, exc: _Invalid, trans_id: str | None) -> ParseError | NeedData:
        if total - self._head_end() - 4 > self.limits.max_body:
            return self._fail(413, exc.reason, trans_id)
        if len(self._buffer) < total:
            return NEED_DATA
        del self._buffer[:total]
        return ParseError(exc.status, exc.reason, trans_id, False)

    def _head_end(self) -> int:
        return self._buffer.find(b"\r\n\r\n")


_PREFIX = b"CFW "


def _head_problem(
    buffer: bytearray, end: int, limits: ParserLimits
) -> tuple[int, str, str | None] | None:
    """The fatal problem of the message head at the start of ``buffer``, if the bytes in prove
    one: (status, reason, trans_id to answer).  ``end`` is where the head's CRLFCRLF starts (-1:
    not in yet).  Each check has the stream position at which it is decided; the earliest
    wins, so byte-at-a-time feeding and one big read agree."""
    stop = end + 4 if end >= 0 else len(buffer)  # the head's bytes, blank line included
    bare = buffer.find(b"\n\n", 0, stop)
    if bare >= 0:
        stop = bare + 2
    found: list[tuple[int, int, str]] = []  # (position decided, order, reason)
    for i, byte in enumerate(buffer[: min(len(_PREFIX), stop)]):
        if byte != _PREFIX[i]:
            found.append((i + 1, 0, "not a CFW message (RFC 6230 s9.1 start line)"))
            break
    first_end = buffer.find(b"\r\n", 0, stop)
    first = bytes(buffer[:first_end]) if first_end >= 0 else None
    if first is not None and _peek_trans_id(first) is None and not _is_response_line(first):
        found.append((first_end + 2, 1, f"bad start line {first[:80]!r}: no transaction id"))
    crlf = -2
    for _ in range(limits.max_headers + 2):  # the start line's, one per header, one too many
        crlf = buffer.find(b"\r\n", crlf + 2, stop)
        if crlf < 0:
            break
    else:
        found.append((crlf + 2, 2, f"more than {limits.max_headers} header lines"))
    if stop > limits.max_head:
        found.append((limits.max_head + 1, 3, f"message head exceeds {limits.max_head} bytes"))
    if bare >= 0:
        found.append((bare + 2, 4, "lines must end with CRLF (RFC 6230 s9.1)"))
    if not found:
        return None
    position, _, reason = min(found)
    trans_id = None
    if first is not None and first_end + 2 <= position:
        trans_id = _peek_trans_id(first)
    return 400, reason, trans_id


def _is_response_line(first: bytes) -> bool:
    parts = first.split(b" ")
    return len(parts) >= 3 and parts[0] == b"CFW" and parts[2].isdigit()


def _peek_trans_id(head: bytes) -> str | None:
    """The transaction id of a request's start line, if it is usable in an answer.

    None for a response: a response is never answered, whatever is wrong with it.
    """
    first = head.split(b"\r\n", 1)[0]
    parts = first.split(b" ")
    if len(parts) >= 3 and parts[2].isdigit():
        return None
    if len(parts) >= 2 and parts[0] == b"CFW":
        try:
            candidate = parts[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if is_alpha_num_token(candidate):
            return candidate
    return None


def _salvage_length(head: bytes) -> int | None:
    """Content-Length of a head that failed to parse, if it can be read unambiguously."""
    found: list[int] = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"content-length":
            text = value.strip(b" \t")
            if not text.isdigit() or len(text) > 10:
                return None
            found.append(int(text))
    if len(found) > 1:
        return None
    return found[0] if found else 0


def parse_message(data: bytes, limits: ParserLimits | None = None) -> Message:
    """Parses exactly one complete message; raises RemoteProtocolError otherwise."""
    from mediactrl.cfw.errors import RemoteProtocolError

    parser = CfwParser(limits)
    parser.receive_data(data)
    event = parser.next_event()
    if isinstance(event, ParseError):
        raise RemoteProtocolError(event.reason, status=event.status, trans_id=event.trans_id)
    if isinstance(event, NeedData):
        raise RemoteProtocolError("incomplete message", status=400)
    if parser.buffered:
        raise RemoteProtocolError("trailing bytes after the message", status=400)
    return event
