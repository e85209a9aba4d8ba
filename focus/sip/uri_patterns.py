"""SIP URI patterns (pure): an allow-list of URIs, e.g. where a focus may call.

A pattern is a SIP URI whose user and host may hold ``*`` wildcards (shell-style, ``?`` one
character): ``sip:*@example.com``, ``sip:+1555*@gw.example.com``, ``sip:alice@*``. A pattern
without a port matches any port; one with a port, that port only (``*`` for any). ``sip:``
matches sip and sips targets, ``sips:`` only sips (RFC 3261 s19.1). Hosts compare without
case, users with case (s19.1.4). URI parameters and headers of the target do not matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from focus.sip.errors import SipParseError
from focus.sip.uri import SipURI, parse_uri

__all__ = ["PatternError", "UriPatterns"]


class PatternError(ValueError):
    """A pattern (the operator's configuration) is not a SIP URI pattern."""


@dataclass(frozen=True, slots=True)
class _Pattern:
    secure_only: bool
    user: str | None  # None: the pattern has no user part (matches targets without one)
    host: str
    port: str | None  # None: any port

    def matches(self, uri: SipURI) -> bool:
        if self.secure_only and uri.scheme != "sips":
            return False
        if self.user is None:
            if uri.user is not None:
                return False
        elif uri.user is None or not fnmatchcase(uri.user, self.user):
            return False
        if not fnmatchcase(uri.host.lower().strip("[]"), self.host):
            return False
        return self.port in (None, "*") or str(uri.port or "") == self.port


def _parse(text: str) -> _Pattern:
    scheme, colon, rest = text.strip().partition(":")
    if not colon or scheme.lower() not in ("sip", "sips") or not rest:
        raise PatternError(f"{text!r} is not a sip: or sips: URI pattern")
    user, at, hostport = rest.rpartition("@")
    if any(c in rest for c in ";?>< \t"):
        raise PatternError(f"{text!r} may hold no parameters or headers")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else None
    else:
        host, _, port_text = hostport.partition(":")
        port = port_text or None
    if not host or (port is not None and port != "*" and not port.isdigit()):
        raise PatternError(f"{text!r} needs a host and a numeric port")
    return _Pattern(scheme.lower() == "sips", user if at else None, host.lower(), port)


class UriPatterns:
    """An allow-list of SIP URI patterns (see the module docstring)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._parsed = tuple(_parse(p) for p in self.patterns)

    @classmethod
    def anyone_at(cls, hosts: Iterable[str]) -> UriPatterns:
        """Any user at any port of one of ``hosts`` (domain names or addresses)."""
        return cls(f"sip:*@[{h}]" if ":" in h else f"sip:*@{h}" for h in dict.fromkeys(hosts))

    def allows(self, target: str | SipURI) -> bool:
        """Whether ``target`` matches a pattern; a target that is no SIP URI does not."""
        if isinstance(target, str):
            try:
                uri = parse_uri(target)
            except (SipParseError, ValueError):
                return False
            if not isinstance(uri, SipURI):
                return False
            target = uri
        return any(p.matches(target) for p in self._parsed)
