"""AUTO_GENERATE_X placeholders (RFC 6503 s4.3) in client documents.

The client fills mandatory values it cannot know with ``AUTO_GENERATE_<n>``; the server
replaces each distinct placeholder with one fresh identifier, the same everywhere in the
document.  A placeholder in the user part of an XCON-URI/XCON-USERID must come with a
domain this server is responsible for (else 427).  The model only has values (no element
names), so a placeholder cannot sit outside a value here; the codec refuses that earlier.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

from focus.core.errors import CoreError, ErrorKind

T = TypeVar("T")

PLACEHOLDER = re.compile(r"AUTO_GENERATE_(\d+)")
_IN_URI = re.compile(r"^(?:xcon|xcon-userid):(?P<user>[^@]*AUTO_GENERATE_\d+[^@]*)@(?P<host>.+)$")


def has_placeholder(text: str | None) -> bool:
    """Whether ``text`` holds an AUTO_GENERATE_X placeholder."""
    return text is not None and PLACEHOLDER.search(text) is not None


def check_domain(text: str, domain: str) -> None:
    """427 unless a placeholder in an XCON-URI/USERID user part has our ``domain``."""
    match = _IN_URI.match(text.strip())
    if match and match.group("host").strip().lower() != domain.lower():
        raise CoreError(
            ErrorKind.INVALID_DOMAIN,
            f"{text.strip()!r}: domain {match.group('host')!r} is not served here ({domain})",
        )


class Substitution:
    """One document's placeholder -> identifier mapping (fresh ids from ``fresh``)."""

    def __init__(self, domain: str, fresh: Callable[[], str]) -> None:
        self.domain = domain
        self._fresh = fresh
        self.mapping: dict[str, str] = {}

    def token(self, number: str) -> str:
        """The identifier standing for AUTO_GENERATE_<number>."""
        if number not in self.mapping:
            self.mapping[number] = self._fresh()
        return self.mapping[number]

    def text(self, value: str) -> str:
        """``value`` with every placeholder replaced."""
        if not has_placeholder(value):
            return value
        check_domain(value, self.domain)
        return PLACEHOLDER.sub(lambda m: self.token(m.group(1)), value).strip()

    def apply(self, value: T) -> T:
        """A copy of ``value`` (a model object, tuple, string...) with placeholders replaced."""
        result: T = self._walk(value)
        return result

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value) if type(value) is str else value
        if isinstance(value, tuple):
            return tuple(self._walk(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in dataclasses.fields(value):
                old = getattr(value, f.name)
                new = self._walk(old)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(value, **changes) if changes else value
        return value
