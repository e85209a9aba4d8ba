"""SIP header fields: the ordered multi-map and the typed values (RFC 3261 s7.3, s20, s25).

:class:`Headers` is mutable (transactions add Via, proxies add Record-Route); the typed values
(:class:`Via`, :class:`NameAddr`, :class:`CSeq`, ...) are frozen dataclasses whose ``str()`` is
their wire form. Typed accessors parse lazily and cache until the header is changed; a
malformed value raises :class:`~focus.sip.errors.SipParseError` naming the header.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.uri import URI, Params, check_host, format_hostport, parse_uri

__all__ = [
    "CSeq",
    "EventHeader",
    "Headers",
    "MediaType",
    "NameAddr",
    "SubscriptionState",
    "Via",
    "canonical_name",
    "format_params",
    "parse_cseq",
    "parse_event",
    "parse_media_type",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_params",
    "parse_subscription_state",
    "parse_via",
    "quote",
    "split_commas",
]

#: Compact forms (RFC 3261 s7.3.3, s20; RFC 3515, 3892, 3903, 4028, 6665 ...).
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN_NAMES = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Join",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-Sub",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Target-Dialog",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN_NAMES}
_CANONICAL.update(COMPACT_FORMS)
# Exact spellings our code and most peers use -> canonical name / lookup key, so that the hot
# paths skip the .lower() + dict lookup of the general case.
_EXACT: dict[str, str] = {name: name for name in _KNOWN_NAMES}
_EXACT.update(COMPACT_FORMS)
_EXACT.update({compact.upper(): name for compact, name in COMPACT_FORMS.items()})
_EXACT_KEY: dict[str, str] = {spelling: name.lower() for spelling, name in _EXACT.items()}
_EXACT_KEY.update({name.lower(): name.lower() for name in _KNOWN_NAMES})

_TOKEN_CHARS = "A-Za-z0-9\\-.!%*_+`'~"  # noqa: S105 (a character class, not a secret)
_TOKEN_RE = re.compile(f"[{_TOKEN_CHARS}]+")
_QUOTED = r'"(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
_QUOTED_RE = re.compile(_QUOTED)
_UNQUOTE_RE = re.compile(r"\\(.)", re.DOTALL)
# gen-value = token / host / quoted-string (RFC 3261 s25.1); host may be an IPv6 reference.
_PARAM_RE = re.compile(
    rf"[ \t]*;[ \t]*([{_TOKEN_CHARS}]+)(?:[ \t]*=[ \t]*({_QUOTED}|[{_TOKEN_CHARS}\[\]:]+))?"
)
_PLAIN_VALUE_RE = re.compile(f"[{_TOKEN_CHARS}\\[\\]:]+")


_NO_PARAMS = Params()


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name; compact forms are expanded."""
    return _CANONICAL.get(name.lower(), name)


def _checked_name(name: str) -> str:
    # Names given by our own code: a non-token would corrupt the wire format.
    canonical = _EXACT.get(name)
    if canonical is not None:
        return canonical
    canonical = _CANONICAL.get(name.lower())
    if canonical is not None:
        return canonical
    if not _TOKEN_RE.fullmatch(name):
        raise LocalProtocolError(f"header name {name!r} is not a token")
    return name


def quote(text: str) -> str:
    """A quoted-string for ``text`` (RFC 3261 s25.1), escaping ``"`` and ``\\``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(quoted: str) -> str:
    return _UNQUOTE_RE.sub(r"\1", quoted[1:-1])


def split_commas(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas in quoted strings and ``<...>``."""
    if "," not in value:
        return [value.strip()]
    parts: list[str] = []
    start = 0
    i = 0
    n = len(value)
    in_angle = False
    while i < n:
        ch = value[i]
        if ch == '"' and not in_angle:
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            if i >= n:
                raise SipParseError.bad("Unterminated quoted string")
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return parts


def parse_params(text: str, what: str) -> Params:
    """Parse ``*( SEMI generic-param )``; quoted values are unquoted."""
    if not text:
        return _NO_PARAMS
    items: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            if text[pos:].strip(" \t") == "":
                break
            raise SipParseError.bad(f"Malformed {what} parameters")
        value = m.group(2)
        if value is not None and value.startswith('"'):
            value = _unquote(value)
        items.append((m.group(1), value))
        pos = m.end()
    return Params(items)


def format_params(params: Params) -> str:
    """``;name=value`` for each parameter; values that are not token/host get quoted."""
    out: list[str] = []
    for name, value in params.pairs:
        out.append(";")
        out.append(name)
        if value is not None:
            out.append("=")
            out.append(value if _PLAIN_VALUE_RE.fullmatch(value) else quote(value))
    return "".join(out)


# --- typed values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``[display-name] <URI> *(;param)`` as in From, To, Contact, Route, Refer-To (s20.10).

    ``display_name`` is unquoted, ``None`` when absent. ``str()`` always uses the ``<URI>`` form.
    """

    uri: URI
    display_name: str | None = None
    params: Params = field(default_factory=Params)

    def __str__(self) -> str:
        display = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (From/To, RFC 3261 s19.3), or None."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri, self.display_name, self.params.set("tag", tag))

    @property
    def expires(self) -> int | None:
        """The ``expires`` Contact parameter, clamped to 2**32-1 (RFC 3261 s20.19), or None."""
        value = self.params.get("expires")
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise SipParseError.bad("Malformed Contact expires parameter")
        return min(int(value), 2**32 - 1)


_DISPLAY_TOKENS_RE = re.compile(f"[{_TOKEN_CHARS}]+(?:[ \\t]+[{_TOKEN_CHARS}]+)*")


def parse_name_addr(value: str, what: str = "name-addr") -> NameAddr:
    """Parse one ``name-addr`` or ``addr-spec`` with header parameters.

    Results are immutable and memoized: From, To and Contact values recur verbatim in every
    retransmission and in-dialog request. Long values are not kept, to bound memory.
    """
    if len(value) <= _MEMO_MAX_LEN:
        return _parse_name_addr_memo(value, what)
    return _parse_name_addr(value, what)


_MEMO_MAX_LEN = 512


@functools.lru_cache(maxsize=2048)
def _parse_name_addr_memo(value: str, what: str) -> NameAddr:
    return _parse_name_addr(value, what)


def _parse_name_addr(value: str, what: str) -> NameAddr:
    text = value.strip(" \t")
    display: str | None = None
    if text.startswith('"'):
        m = _QUOTED_RE.match(text)
        if m is None:
            raise SipParseError.bad(f"Malformed display name in {what}")
        display = _unquote(m.group(0))
        text = text[m.end() :].lstrip(" \t")
        if not text.startswith("<"):
            raise SipParseError.bad(f"Malformed {what}")
    elif "<" in text:
        lt = text.index("<")
        words = text[:lt].strip(" \t")
        if words:
            if not _DISPLAY_TOKENS_RE.fullmatch(words):
                raise SipParseError.bad(f"Malformed display name in {what}")
            display = words
        text = text[lt:]
    if text.startswith("<"):
        gt = text.find(">")
        if gt < 0:
            raise SipParseError.bad(f"Unterminated <URI> in {what}")
        uri_text, param_text = text[1:gt], text[gt + 1 :]
    else:
        uri_text, sep, rest = text.partition(";")
        param_text = sep + rest
        uri_text = uri_text.rstrip(" \t")
        if not uri_text:
            raise SipParseError.bad(f"Malformed {what}")
        if "?" in uri_text:
            # RFC 3261 s20.10: a URI with headers must be enclosed in <>.
            raise SipParseError.bad(f"Malformed {what}: URI headers need <>")
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        raise SipParseError.bad(f"Malformed URI in {what}") from exc
    return NameAddr(uri, display, parse_params(param_text, what))


def parse_name_addr_list(value: str, what: str) -> list[NameAddr]:
    return [parse_name_addr(part, what) for part in split_commas(value)]


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 s20.42): ``SIP/2.0/<transport> host[:port];params``.

    An IPv6 sent-by host is kept in brackets (``[::1]``); a bare one gets them.
    """

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    def __post_init__(self) -> None:
        if ":" in self.host and not self.host.startswith("["):
            object.__setattr__(self, "host", f"[{self.host}]")

    def __str__(self) -> str:
        return (
            f"{self.protocol}/{self.transport} {format_hostport(self.host, self.port)}"
            f"{format_params(self.params)}"
        )

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def with_params(self, **params: str | None) -> Via:
        """A copy with the given parameters set (``None`` = present without value)."""
        new = self.params
        for name, value in params.items():
            new = new.set(name, value)
        return Via(self.transport, self.host, self.port, new, self.protocol)

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def has_rport(self) -> bool:
        """True if the ``rport`` parameter is present (RFC 3581), with or without value."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The ``rport`` value filled in by the server, or None (absent or empty)."""
        value = self.params.get("rport")
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise SipParseError.bad("Malformed Via rport")
        return int(value)

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return int(value) if value is not None and value.isascii() and value.isdigit() else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_VIA_RE = re.compile(
    rf"[ \t]*([{_TOKEN_CHARS}]+)[ \t]*/[ \t]*([{_TOKEN_CHARS}]+)[ \t]*/[ \t]*([{_TOKEN_CHARS}]+)"
    rf"[ \t]+(\[[0-9A-Fa-f:.]+\]|(?:{_LABEL}\.)*{_LABEL}\.?)(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?"
    r"(?=[ \t;]|$)"
)


def parse_via(value: str) -> list[Via]:
    """Parse a Via header value (possibly several, comma-separated)."""
    out: list[Via] = []
    for part in split_commas(value):
        m = _VIA_RE.match(part)
        if m is None:
            raise SipParseError.bad("Malformed Via")
        name, version, transport, host, port_text = m.groups()
        port = int(port_text) if port_text is not None else None
        if port is not None and port > 65535:
            raise SipParseError.bad("Malformed Via")
        if host[0] == "[":
            try:
                check_host(host, "Via")
            except SipParseError:
                raise SipParseError.bad("Malformed Via sent-by") from None
        params = parse_params(part[m.end() :], "Via")
        out.append(Via(transport.upper(), host, port, params, f"{name.upper()}/{version}"))
    return out


@dataclass(frozen=True, slots=True)
class CSeq:
    """CSeq (RFC 3261 s20.16): sequence number and method."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+([{_TOKEN_CHARS}]+)[ \t]*")


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise SipParseError.bad("Malformed CSeq")
    number = int(m.group(1))
    if number >= 2**32:
        # RFC 3261 s20.16: a 32-bit unsigned integer (we generate < 2**31, s8.1.1.5).
        raise SipParseError.bad("CSeq number out of range")
    return CSeq(number, m.group(2))


@dataclass(frozen=True, slots=True)
class MediaType:
    """Content-Type / Accept media type (RFC 3261 s20.15); type/subtype are lower-cased."""

    type: str
    subtype: str
    params: Params = field(default_factory=Params)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"


_MEDIA_RE = re.compile(rf"[ \t]*([{_TOKEN_CHARS}]+)[ \t]*/[ \t]*([{_TOKEN_CHARS}]+)")


def parse_media_type(value: str) -> MediaType:
    m = _MEDIA_RE.match(value)
    if m is None:
        raise SipParseError.bad("Malformed Content-Type")
    return MediaType(
        m.group(1).lower(), m.group(2).lower(), parse_params(value[m.end() :], "Content-Type")
    )


@dataclass(frozen=True, slots=True)
class EventHeader:
    """Event (RFC 6665 s8.2.1): the event package (with template) and params such as ``id``."""

    package: str
    params: Params = field(default_factory=Params)

    def __str__(self) -> str:
        return f"{self.package}{format_params(self.params)}"

    @property
    def id(self) -> str | None:
        return self.params.get("id")


def parse_event(value: str) -> EventHeader:
    m = _TOKEN_RE.match(value.lstrip(" \t"))
    if m is None:
        raise SipParseError.bad("Malformed Event")
    text = value.lstrip(" \t")
    return EventHeader(m.group(0), parse_params(text[m.end() :], "Event"))


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """Subscription-State (RFC 6665 s8.2.3): active/pending/terminated with params."""

    state: str
    params: Params = field(default_factory=Params)

    def __str__(self) -> str:
        return f"{self.state}{format_params(self.params)}"

    def _int(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise SipParseError.bad(f"Malformed Subscription-State {name}")
        return int(value)

    @property
    def expires(self) -> int | None:
        return self._int("expires")

    @property
    def retry_after(self) -> int | None:
        return self._int("retry-after")

    @property
    def reason(self) -> str | None:
        return self.params.get("reason")


def parse_subscription_state(value: str) -> SubscriptionState:
    text = value.lstrip(" \t")
    m = _TOKEN_RE.match(text)
    if m is None:
        raise SipParseError.bad("Malformed Subscription-State")
    return SubscriptionState(
        m.group(0).lower(), parse_params(text[m.end() :], "Subscription-State")
    )


def _parse_int(value: str, what: str, limit: int) -> int:
    text = value.strip(" \t")
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10:
        raise SipParseError.bad(f"Malformed {what}")
    number = int(text)
    if number > limit:
        raise SipParseError.bad(f"{what} out of range")
    return number


_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID_RE = re.compile(f"{_WORD}(?:@{_WORD})?")

_T = TypeVar("_T")
_MISSING = object()
_NO_VALUES: list[str] = []  # shared: _values' callers only read


# --- the multi-map ----------------------------------------------------------------------


class Headers:
    """An ordered multi-map of header fields with case-insensitive names.

    Names are stored in canonical spelling (compact forms expanded: ``v`` -> ``Via``).
    Values are kept as received (unfolded, stripped); several values of a list header may share
    one field, joined by commas -- the typed accessors split them. Mutable; every mutation
    drops the cached typed values.
    """

    __slots__ = ("_cache", "_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] | None = None) -> None:
        # (lower-case key, canonical name, value): the key saves a .lower() per lookup.
        self._items: list[tuple[str, str, str]] = []
        self._cache: dict[str, object] = {}
        self._index: dict[str, list[str]] | None = None
        if items is not None:
            for name, value in items:
                canonical = _checked_name(name)
                self._items.append((canonical.lower(), canonical, value))

    @classmethod
    def _from_canonical(cls, items: list[tuple[str, str, str]]) -> Headers:
        """Fast path for the parser, which already canonicalized (key, name, value)."""
        headers = cls()
        headers._items = items
        return headers

    @staticmethod
    def _key(name: str) -> str:
        key = _EXACT_KEY.get(name)
        if key is not None:
            return key
        return _CANONICAL.get(name.lower(), name).lower()

    # -- multi-map protocol

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter([(n, v) for _, n, v in self._items])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return bool(self._values(self._key(name)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def copy(self) -> Headers:
        return Headers._from_canonical(list(self._items))

    def items(self) -> list[tuple[str, str]]:
        return [(n, v) for _, n, v in self._items]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._index_map().get(self._key(name))
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every field value of ``name`` in order (comma-joined values are not split)."""
        return list(self._index_map().get(self._key(name), ()))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a field, or put it before all others of the same name with ``first``."""
        name = _checked_name(name)
        key = name.lower()
        if first:
            self._changed()
            for i, (k, _, _) in enumerate(self._items):
                if k == key:
                    self._items.insert(i, (key, name, value))
                    return
        else:
            # Appending keeps the index valid: extend it rather than rebuild it. Typed
            # values are cached under the canonical name, so only that one goes stale.
            self._cache.pop(name, None)
            index = self._index
            if index is not None:
                bucket = index.get(key)
                if bucket is None:
                    index[key] = [value]
                else:
                    bucket.append(value)
        self._items.append((key, name, value))

    def set(self, name: str, value: str) -> None:
        """Replace all fields of ``name`` by one, kept where the first one was."""
        name = _checked_name(name)
        key = name.lower()
        self._changed()
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (key, name, value)
                self._items[i + 1 :] = [item for item in self._items[i + 1 :] if item[0] != key]
                return
        self._items.append((key, name, value))

    def remove(self, name: str) -> int:
        """Remove every field of ``name``; returns how many were removed."""
        key = self._key(name)
        before = len(self._items)
        self._items = [item for item in self._items if item[0] != key]
        self._changed()
        return before - len(self._items)

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first value of ``name`` (first of a comma list)."""
        key = self._key(name)
        for i, (k, n, v) in enumerate(self._items):
            if k == key:
                self._changed()
                parts = split_commas(v)
                if len(parts) > 1:
                    self._items[i] = (k, n, ", ".join(parts[1:]))
                else:
                    del self._items[i]
                return parts[0]
        return None

    def replace_top_via(self, via: Via) -> None:
        """Replace the topmost Via value (e.g. to stamp received/rport, RFC 3261 s18.2.1)."""
        for i, (k, n, v) in enumerate(self._items):
            if k == "via":
                parts = split_commas(v)
                value = ", ".join([str(via), *parts[1:]])
                self._items[i] = (k, n, value)
                self._cache.pop("Via", None)
                if self._index is not None:
                    self._index["via"][0] = value  # the first Via field is this one
                return
        raise SipParseError.bad("Missing Via")

    def _copy_fields(self, source: Headers, names: Iterable[str]) -> None:
        """Append every field of each of ``names`` (canonical spellings) from ``source``, in
        that order: what :func:`~focus.sip.message.make_response` copies, without the
        per-field name checks of :meth:`add` (the names are ours, the values already
        passed the parser or :meth:`add`)."""
        index = source._index_map()
        items = self._items
        for name in names:
            key = name.lower()
            for value in index.get(key, ()):
                items.append((key, name, value))
            self._cache.pop(name, None)
        self._index = None

    def _share_parsed(self, source: Headers, names: Iterable[str]) -> None:
        """Reuse ``source``'s parsed (immutable) values of fields copied verbatim from it, so
        that a response does not parse again what its request already did."""
        cache = source._cache
        for name in names:
            value = cache.get(name, _MISSING)
            if value is not _MISSING:
                self._cache[name] = value

    # -- typed accessors

    def _changed(self) -> None:
        self._cache.clear()
        self._index = None

    def _index_map(self) -> dict[str, list[str]]:
        """Field values by lower-case name, in order; built on first use, kept up to date by
        :meth:`add` and :meth:`replace_top_via`, dropped by other mutations. Callers must
        not mutate the lists."""
        index = self._index
        if index is None:
            index = {}
            for key, _, value in self._items:
                bucket = index.get(key)
                if bucket is None:
                    index[key] = [value]
                else:
                    bucket.append(value)
            self._index = index
        return index

    def _values(self, name: str) -> list[str]:
        """Values of a canonically spelled ``name`` (read only)."""
        return self._index_map().get(name.lower(), _NO_VALUES)

    def _cached(self, key: str, build: Callable[[], _T]) -> _T:
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = build()
            self._cache[key] = value
        return cast(_T, value)

    def _single(self, name: str) -> str | None:
        values = self._values(name)
        if not values:
            return None
        if len(values) > 1:
            raise SipParseError.bad(f"Multiple {name} header fields")
        return values[0]

    def _required(self, name: str) -> str:
        value = self._single(name)
        if value is None:
            raise SipParseError.bad(f"Missing {name}")
        return value

    def _list(self, name: str, parse: Callable[[str], list[_T]]) -> list[_T]:
        def build() -> list[_T]:
            out: list[_T] = []
            for value in self._values(name):
                out.extend(parse(value))
            return out

        return list(self._cached(name, build))

    # The accessors the parser validates eagerly are written out without closures: they run
    # for every message.

    @property
    def via(self) -> list[Via]:
        value = self._cache.get("Via", _MISSING)
        if value is _MISSING:
            vias: list[Via] = []
            for field_value in self._values("Via"):
                vias.extend(parse_via(field_value))
            self._cache["Via"] = value = vias
        return list(cast(list[Via], value))

    @property
    def from_(self) -> NameAddr:
        value = self._cache.get("From", _MISSING)
        if value is _MISSING:
            self._cache["From"] = value = parse_name_addr(self._required("From"), "From")
        return cast(NameAddr, value)

    @property
    def to(self) -> NameAddr:
        value = self._cache.get("To", _MISSING)
        if value is _MISSING:
            self._cache["To"] = value = parse_name_addr(self._required("To"), "To")
        return cast(NameAddr, value)

    @property
    def call_id(self) -> str:
        value = self._cache.get("Call-ID", _MISSING)
        if value is _MISSING:
            text = self._required("Call-ID").strip(" \t")
            if not _CALL_ID_RE.fullmatch(text):
                raise SipParseError.bad("Malformed Call-ID")
            self._cache["Call-ID"] = value = text
        return cast(str, value)

    @property
    def cseq(self) -> CSeq:
        value = self._cache.get("CSeq", _MISSING)
        if value is _MISSING:
            self._cache["CSeq"] = value = parse_cseq(self._required("CSeq"))
        return cast(CSeq, value)

    @property
    def contact(self) -> list[NameAddr] | Literal["*"]:
        """Contact values, or ``"*"`` for the REGISTER wildcard (RFC 3261 s10.2.2)."""
        value = self._cache.get("Contact", _MISSING)
        if value is _MISSING:
            values = self._values("Contact")
            if len(values) == 1 and values[0].strip(" \t") == "*":
                value = "*"
            else:
                contacts: list[NameAddr] = []
                for field_value in values:
                    parts = split_commas(field_value)
                    if "*" in parts:
                        raise SipParseError.bad("Contact * mixed with other values")
                    contacts.extend(parse_name_addr(p, "Contact") for p in parts)
                value = contacts
            self._cache["Contact"] = value
        return "*" if value == "*" else list(cast(list[NameAddr], value))

    def _int_header(self, name: str, limit: int) -> int | None:
        def build() -> int | None:
            value = self._single(name)
            return None if value is None else _parse_int(value, name, limit)

        return self._cached(name, build)

    @property
    def max_forwards(self) -> int | None:
        return self._int_header("Max-Forwards", 255)

    @property
    def content_length(self) -> int | None:
        return self._int_header("Content-Length", 2**31 - 1)

    @property
    def expires(self) -> int | None:
        """Expires in seconds; values above 2**32-1 are clamped (RFC 3261 s20.19)."""

        def build() -> int | None:
            value = self._single("Expires")
            if value is None:
                return None
            text = value.strip(" \t")
            if not text or not text.isascii() or not text.isdigit():
                raise SipParseError.bad("Malformed Expires")
            return min(int(text), 2**32 - 1)

        return self._cached("Expires", build)

    @property
    def content_type(self) -> MediaType | None:
        def build() -> MediaType | None:
            value = self._single("Content-Type")
            return None if value is None else parse_media_type(value)

        return self._cached("Content-Type", build)

    @property
    def event(self) -> EventHeader | None:
        def build() -> EventHeader | None:
            value = self._single("Event")
            return None if value is None else parse_event(value)

        return self._cached("Event", build)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        def build() -> SubscriptionState | None:
            value = self._single("Subscription-State")
            return None if value is None else parse_subscription_state(value)

        return self._cached("Subscription-State", build)

    @property
    def route(self) -> list[NameAddr]:
        return self._list("Route", lambda v: parse_name_addr_list(v, "Route"))

    @property
    def record_route(self) -> list[NameAddr]:
        return self._list("Record-Route", lambda v: parse_name_addr_list(v, "Record-Route"))

    @property
    def refer_to(self) -> NameAddr | None:
        def build() -> NameAddr | None:
            value = self._single("Refer-To")
            return None if value is None else parse_name_addr(value, "Refer-To")

        return self._cached("Refer-To", build)

    def media_types(self, name: str = "Accept") -> list[MediaType]:
        """A comma-separated list of media types (Accept, RFC 3261 s20.1)."""
        out: list[MediaType] = []
        for value in self.get_all(name):
            out.extend(parse_media_type(part) for part in split_commas(value) if part)
        return out

    def tokens(self, name: str) -> list[str]:
        """A comma-separated token list (Supported, Require, Allow, Allow-Events ...)."""
        out: list[str] = []
        for value in self.get_all(name):
            for part in value.split(","):
                token = part.strip(" \t")
                if token:
                    if not _TOKEN_RE.fullmatch(token):
                        raise SipParseError.bad(f"Malformed {canonical_name(name)}")
                    out.append(token)
        return out
