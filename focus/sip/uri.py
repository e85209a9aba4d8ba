"""SIP, SIPS and tel URIs (RFC 3261 s19.1, s25.1; RFC 3966), and ordered parameter lists.

URI objects are frozen dataclasses; ``str(uri)`` serializes. Components are stored *unescaped*
(``%41`` becomes ``A``) and re-escaped on output, so two URIs that differ only in escaping of
unreserved characters compare equal after parsing. Non-UTF-8 escapes survive the round trip
(they are kept as surrogates).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar, cast, overload

from focus.sip.errors import SipParseError

__all__ = [
    "URI",
    "AbsoluteURI",
    "Params",
    "SipURI",
    "TelURI",
    "check_host",
    "escape",
    "format_hostport",
    "parse_hostport",
    "parse_uri",
    "redacted",
    "unescape",
]


_ABSENT = object()
_T = TypeVar("_T")


class Params(Mapping[str, str | None]):
    """An immutable, ordered list of ``name[=value]`` parameters with case-insensitive names.

    A parameter present without a value maps to ``None``; use ``name in params`` to tell
    "absent" from "present without value". Duplicates are kept (lookups see the first one).
    """

    __slots__ = ("_items",)

    def __init__(
        self, items: Iterable[tuple[str, str | None]] | Mapping[str, str | None] = ()
    ) -> None:
        if isinstance(items, Mapping):
            items = items.items()
        self._items: tuple[tuple[str, str | None], ...] = tuple(items)

    def _find(self, name: str) -> str | object | None:
        low = name.lower()
        for key, value in self._items:
            if key == low or key.lower() == low:
                return value
        return _ABSENT

    def __getitem__(self, name: str) -> str | None:
        value = self._find(name)
        if value is _ABSENT:
            raise KeyError(name)
        return cast("str | None", value)

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str | None, /) -> str | None: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T | None: ...

    def get(self, name: str, default: object = None, /) -> object:
        # Mapping.get would go through a KeyError for every absent parameter (branch,
        # rport, received, maddr ... are looked up on every message).
        value = self._find(name)
        return default if value is _ABSENT else value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self._find(name) is not _ABSENT

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._key() == other._key()
        if isinstance(other, Mapping):
            return self == Params(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"

    def _key(self) -> tuple[tuple[str, str | None], ...]:
        return tuple((key.lower(), value) for key, value in self._items)

    @property
    def pairs(self) -> tuple[tuple[str, str | None], ...]:
        """All parameters in order, duplicates included."""
        return self._items

    def set(self, name: str, value: str | None = None) -> Params:
        """A copy with ``name`` set to ``value`` (replacing the first occurrence, else appended)."""
        low = name.lower()
        out: list[tuple[str, str | None]] = []
        done = False
        for key, old in self._items:
            if not done and key.lower() == low:
                out.append((key, value))
                done = True
            else:
                out.append((key, old))
        if not done:
            out.append((name, value))
        return Params(out)

    def remove(self, name: str) -> Params:
        """A copy without any parameter called ``name``."""
        low = name.lower()
        return Params((k, v) for k, v in self._items if k.lower() != low)


# --- escaping (RFC 3261 s25.1) ------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
_MARK = "-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")
_TEL_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEX = frozenset("0123456789abcdefABCDEF")


def escape(text: str, safe: frozenset[str]) -> str:
    """Percent-escape every character of ``text`` not in ``safe`` (UTF-8, surrogates kept)."""
    if all(ch in safe for ch in text):
        return text
    out: list[str] = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def unescape(text: str, what: str = "URI") -> str:
    """Decode ``%XX`` escapes; a ``%`` not followed by two hex digits is the peer's fault."""
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not (pair[0] in _HEX and pair[1] in _HEX):
                raise SipParseError.bad(f"Malformed escape in {what}")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw.extend(ch.encode("utf-8", "surrogateescape"))
            i += 1
    return raw.decode("utf-8", "surrogateescape")


# --- hosts ------------------------------------------------------------------------------

_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\.?"
)
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def check_host(host: str, what: str = "URI") -> str:
    """Validate a hostname, IPv4 address or bracketed IPv6 reference (RFC 3261 s25.1)."""
    if host.startswith("["):
        if not host.endswith("]") or not _IPV6_RE.fullmatch(host[1:-1]) or ":" not in host:
            raise SipParseError.bad(f"Malformed IPv6 reference in {what}")
        return host
    if not host or len(host) > 255 or not _HOSTNAME_RE.fullmatch(host):
        raise SipParseError.bad(f"Malformed host in {what}")
    return host


def parse_hostport(text: str, what: str = "URI") -> tuple[str, int | None]:
    """Split ``host[:port]`` (host may be an IPv6 reference in brackets) and validate both."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError.bad(f"Malformed IPv6 reference in {what}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError.bad(f"Malformed host in {what}")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    check_host(host, what)
    if port_text is None:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise SipParseError.bad(f"Malformed port in {what}")
    port = int(port_text)
    if port > 65535:
        raise SipParseError.bad(f"Port out of range in {what}")
    return host, port


def format_hostport(host: str, port: int | None) -> str:
    """``host[:port]``; a bare IPv6 address gets its brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


# --- URI types --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipURI:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 s19.1.1). Immutable; ``str()`` serializes.

    An IPv6 host is kept as a reference in brackets (``[::1]``), as in the URI text; a bare
    IPv6 address given to the constructor gets its brackets.
    """

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    def __post_init__(self) -> None:
        if ":" in self.host and not self.host.startswith("["):
            object.__setattr__(self, "host", f"[{self.host}]")

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":")
                out.append(escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(format_hostport(self.host, self.port))
        for name, value in self.params.pairs:
            out.append(";")
            out.append(escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=")
                out.append(escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers
                )
            )
        return "".join(out)

    @property
    def secure(self) -> bool:
        """True for ``sips:`` (RFC 3261 s19.1.1: TLS on every hop)."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lower-cased, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def aor(self) -> str:
        """The address of record: ``scheme:user@host`` without port, params or headers."""
        user = f"{escape(self.user, _USER_SAFE)}@" if self.user is not None else ""
        return f"{self.scheme}:{user}{self.host.lower()}"

    def with_params(self, **params: str | None) -> SipURI:
        """A copy with the given URI parameters set (``None`` = present without value)."""
        new = self.params
        for name, value in params.items():
            new = new.set(name, value)
        return SipURI(
            self.host, self.user, self.password, self.port, new, self.headers, self.scheme
        )

    def equivalent(self, other: object) -> bool:
        """URI comparison of RFC 3261 s19.1.4 (case rules, ignorable parameters, headers)."""
        if not isinstance(other, SipURI):
            return False
        if (self.scheme, self.user, self.password, self.port) != (
            other.scheme,
            other.user,
            other.password,
            other.port,
        ):
            return False
        if self.host.lower() != other.host.lower():
            return False
        # user, ttl, method, maddr and transport must match if present in either one;
        # other parameters only if present in both.
        for name in set(map(str.lower, self.params)) | set(map(str.lower, other.params)):
            mine, theirs = name in self.params, name in other.params
            if name in ("user", "ttl", "method", "maddr", "transport"):
                if mine != theirs:
                    return False
            elif not (mine and theirs):
                continue
            a, b = self.params[name], other.params[name]
            if (a or "").lower() != (b or "").lower():
                return False
        return {(n.lower(), v) for n, v in self.headers} == {
            (n.lower(), v) for n, v in other.headers
        }


@dataclass(frozen=True, slots=True)
class TelURI:
    """A ``tel:`` URI (RFC 3966): a telephone number with parameters."""

    number: str
    params: Params = field(default_factory=Params)

    scheme = "tel"

    def __str__(self) -> str:
        out = ["tel:", self.number]
        for name, value in self.params.pairs:
            out.append(";")
            out.append(name)
            if value is not None:
                out.append("=")
                out.append(escape(value, _TEL_PARAM_SAFE))
        return "".join(out)

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")


@dataclass(frozen=True, slots=True)
class AbsoluteURI:
    """Any other absolute URI (RFC 3261 s25.1 ``absoluteURI``), kept opaque."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


URI = SipURI | TelURI | AbsoluteURI
_NO_PARAMS = Params()

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_USER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
_PARAM_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
_HEADER_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]*")
_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")
_TEL_PVALUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]*")
_OPAQUE_BAD = frozenset(' \t\r\n<>"\\^`{|}') | frozenset(chr(c) for c in range(32))


_SECRET_PARAMS = frozenset({"password"})
_HIDDEN = "***"


def redacted(uri: URI | str) -> str:
    """``uri`` for a log line: a conference password (the ``password`` URI parameter, as
    focus.calls.dial_in accepts it) and the RFC 3261 s19.1.1 user:password part replaced by
    ``***``. Text that does not parse as a URI has everything after its first ``;`` or
    ``?`` hidden."""
    if isinstance(uri, str):
        text = uri
        try:
            uri = parse_uri(text)
        except SipParseError:
            cut = min((i for i in (text.find(";"), text.find("?")) if i >= 0), default=-1)
            return text if cut < 0 else text[:cut] + ";" + _HIDDEN
    if not isinstance(uri, SipURI):
        return str(uri)
    params = Params(
        [(n, _HIDDEN if n.lower() in _SECRET_PARAMS else v) for n, v in uri.params.pairs]
    )
    password = None if uri.password is None else _HIDDEN
    return str(SipURI(uri.host, uri.user, password, uri.port, params, uri.headers, uri.scheme))


def parse_uri(text: str) -> URI:
    """Parse a URI; unknown schemes become :class:`AbsoluteURI` (the caller decides on 416).

    URI objects are immutable, so results are memoized: the same URIs recur in every request
    of a dialog (Request-URI, From, To, Contact). Long ones are not kept, to bound memory.
    """
    if len(text) <= _CACHE_MAX_LEN:
        return _parse_uri_cached(text)
    return _parse_uri(text)


_CACHE_MAX_LEN = 256


@functools.lru_cache(maxsize=2048)
def _parse_uri_cached(text: str) -> URI:
    return _parse_uri(text)


def _parse_uri(text: str) -> URI:
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME_RE.fullmatch(scheme):
        raise SipParseError.bad("Malformed URI")
    low = scheme.lower()
    if low in ("sip", "sips"):
        return _parse_sip(low, rest)
    if low == "tel":
        return _parse_tel(rest)
    if not rest or any(ch in _OPAQUE_BAD for ch in rest) or not rest.isascii():
        raise SipParseError.bad("Malformed URI")
    return AbsoluteURI(low, rest)


def _parse_params(text: str, regex: re.Pattern[str], what: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if not regex.fullmatch(name) or (sep and not regex.fullmatch(value)):
            raise SipParseError.bad(f"Malformed {what} parameter")
        items.append((unescape(name, what), unescape(value, what) if sep else None))
    return Params(items)


# The common shape (no escapes, no password, no IPv6, no headers) in one linear regex; anything
# else takes the general path below, which also names the fault.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_PCHAR = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]"
_SIP_FAST_RE = re.compile(
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)@)?"
    rf"((?:{_LABEL}\.)*{_LABEL}\.?)"
    r"(?::([0-9]{1,5}))?"
    rf"((?:;{_PCHAR}+(?:={_PCHAR}+)?)*)"
)


def _parse_sip(scheme: str, rest: str) -> SipURI:
    fast = _SIP_FAST_RE.fullmatch(rest)
    if fast is not None:
        user_text, host_text, port_text, param_text = fast.groups()
        port_value = int(port_text) if port_text is not None else None
        if (port_value is None or port_value <= 65535) and len(host_text) <= 255:
            fast_params = (
                Params(
                    (name, value if sep else None)
                    for name, sep, value in (p.partition("=") for p in param_text[1:].split(";"))
                )
                if param_text
                else _NO_PARAMS
            )
            return SipURI(host_text, user_text, None, port_value, fast_params, (), scheme)
    return _parse_sip_general(scheme, rest)


def _parse_sip_general(scheme: str, rest: str) -> SipURI:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_text, sep, password_text = userinfo.partition(":")
        if not _USER_RE.fullmatch(user_text):
            raise SipParseError.bad("Malformed user part in SIP URI")
        if sep and not _PASSWORD_RE.fullmatch(password_text):
            raise SipParseError.bad("Malformed password in SIP URI")
        user = unescape(user_text, "SIP URI user")
        password = unescape(password_text, "SIP URI password") if sep else None
    rest, qsep, header_text = rest.partition("?")
    hostport, psep, param_text = rest.partition(";")
    host, port = parse_hostport(hostport, "SIP URI")
    params = _parse_params(param_text, _PARAM_RE, "SIP URI") if psep else Params()
    headers: list[tuple[str, str]] = []
    if qsep:
        for part in header_text.split("&"):
            name, sep, value = part.partition("=")
            if (
                not sep
                or not name
                or not _HEADER_RE.fullmatch(name)
                or not _HEADER_RE.fullmatch(value)
            ):
                raise SipParseError.bad("Malformed header in SIP URI")
            headers.append((unescape(name, "SIP URI header"), unescape(value, "SIP URI header")))
    return SipURI(host, user, password, port, params, tuple(headers), scheme)


def _parse_tel(rest: str) -> TelURI:
    number, psep, param_text = rest.partition(";")
    if not _TEL_NUMBER_RE.fullmatch(number) or number == "+":
        raise SipParseError.bad("Malformed tel URI")
    params = _parse_params(param_text, _TEL_PVALUE_RE, "tel URI") if psep else Params()
    return TelURI(number, params)
