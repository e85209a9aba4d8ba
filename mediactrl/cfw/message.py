"""Control Framework messages (RFC 6230 s9.1): the model and its serializer.

A message is a :class:`Request` or a :class:`Response`.  Headers are kept in wire order as
(name, value) pairs so a parsed message serializes back to the same bytes; ``Content-Length``
is never stored, it is derived from the body when serializing.  Typed accessors read the
framework headers of s9.1 (Control-Package, Status, Seq, Timeout, Dialog-ID, Packages,
Supported, Keep-Alive, Content-Type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from mediactrl.cfw.errors import LocalProtocolError

__all__ = [
    "KNOWN_HEADERS",
    "Message",
    "Method",
    "ReportStatus",
    "Request",
    "Response",
    "canonical_header_name",
    "is_alpha_num_token",
    "serialize",
]


class Method(StrEnum):
    """The four framework methods (RFC 6230 s6.3); others are 405 (s7.5)."""

    CONTROL = "CONTROL"
    REPORT = "REPORT"
    SYNC = "SYNC"
    K_ALIVE = "K-ALIVE"


class ReportStatus(StrEnum):
    """Values of the Status header of a REPORT (RFC 6230 s6.3.2.1, s9.1)."""

    UPDATE = "update"
    TERMINATE = "terminate"


# Canonical spelling of the s9.1 headers; names are matched case-insensitively.
KNOWN_HEADERS: dict[str, str] = {
    name.lower(): name
    for name in (
        "Content-Length",
        "Content-Type",
        "Control-Package",
        "Status",
        "Seq",
        "Timeout",
        "Dialog-ID",
        "Packages",
        "Supported",
        "Keep-Alive",
    )
}

# alpha-num-token = ALPHANUM 3*31alpha-num-tokent-char (RFC 6230 s9.1)
_ALPHA_NUM_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=/]{3,31}")
# ext-header: hname = ALPHA *token; hval = utf8text (no CR/LF/controls other than HTAB)
_HNAME = re.compile(r"[A-Za-z][!#$%&'*+\-.0-9A-Z^_`a-z|~]*")
_TCHAR = r"!#$%&'*+\-.0-9A-Z^_`a-z|~"
_MEDIA_TYPE = re.compile(
    rf"[{_TCHAR}]+/[{_TCHAR}]+"
    rf"(?:\s*;\s*[{_TCHAR}]+(?:=(?:[{_TCHAR}]+|\"(?:[^\"\\\r\n]|\\[\\\"])*\"))?)*"
)


def is_alpha_num_token(value: str) -> bool:
    """True if ``value`` is an RFC 6230 alpha-num-token (4 to 32 characters)."""
    return _ALPHA_NUM_TOKEN.fullmatch(value) is not None


def is_media_type(value: str) -> bool:
    """True if ``value`` is a media-type as in the s9.1 Content-Type rule."""
    return _MEDIA_TYPE.fullmatch(value) is not None


def canonical_header_name(name: str) -> str:
    """The canonical spelling of a framework header, or ``name`` itself for extensions."""
    return KNOWN_HEADERS.get(name.lower(), name)


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Base:
    trans_id: str
    headers: Headers = ()
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def _int(self, name: str) -> int | None:
        value = self.get(name)
        return None if value is None else int(value)

    def _list(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        if value is None:
            return ()
        return tuple(item.strip() for item in value.split(",") if item.strip())

    @property
    def content_type(self) -> str | None:
        return self.get("Content-Type")

    @property
    def control_package(self) -> str | None:
        return self.get("Control-Package")

    @property
    def seq(self) -> int | None:
        return self._int("Seq")

    @property
    def timeout(self) -> int | None:
        return self._int("Timeout")

    @property
    def keep_alive(self) -> int | None:
        return self._int("Keep-Alive")

    @property
    def dialog_id(self) -> str | None:
        return self.get("Dialog-ID")

    @property
    def packages(self) -> tuple[str, ...]:
        return self._list("Packages")

    @property
    def supported(self) -> tuple[str, ...]:
        return self._list("Supported")


@dataclass(frozen=True)
class Request(_Base):
    """A framework request: ``CFW <trans-id> <method>``.

    ``method`` is a str so that an unknown method (other-method, s9.1) can still be
    represented and answered with 405.
    """

    method: str = field(default=Method.CONTROL, kw_only=True)

    @property
    def status(self) -> ReportStatus | None:
        value = self.get("Status")
        return None if value is None else ReportStatus(value.lower())


@dataclass(frozen=True)
class Response(_Base):
    """A framework response: ``CFW <trans-id> <status-code>``."""

    code: int = field(default=200, kw_only=True)


Message = Request | Response


def _check_header(name: str, value: str) -> None:
    if _HNAME.fullmatch(name) is None:
        raise LocalProtocolError(f"invalid header name {name!r}")
    if name.lower() == "content-length":
        raise LocalProtocolError("Content-Length is derived from the body; do not set it")
    if any(ch in value for ch in "\r\n\0"):
        raise LocalProtocolError(f"header {name} contains a line break or NUL")


def serialize(message: Message) -> bytes:
    """The wire form of ``message`` (CRLF line ends, Content-Length from the body).

    Raises :class:`LocalProtocolError` for a message the grammar cannot carry.
    """
    if not is_alpha_num_token(message.trans_id):
        raise LocalProtocolError(f"transaction id {message.trans_id!r} is not an alpha-num-token")
    if isinstance(message, Request):
        if message.method != Method.K_ALIVE and re.fullmatch(r"[A-Z]+", message.method) is None:
            raise LocalProtocolError(f"invalid method {message.method!r}")
        start = f"CFW {message.trans_id} {message.method}"
    else:
        if not 100 <= message.code <= 999:
            raise LocalProtocolError(f"invalid status code {message.code}")
        start = f"CFW {message.trans_id} {message.code:03d}"
    lines = [start]
    for name, value in message.headers:
        _check_header(name, value)
        lines.append(f"{name}: {value}")
    if message.body:
        if message.content_type is None:
            raise LocalProtocolError("a message with a body needs a Content-Type (s6.1)")
        lines.append(f"Content-Length: {len(message.body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + message.body
