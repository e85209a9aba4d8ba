"""Who is asking: credentials from the CCMP <subject> or HTTP Basic auth (RFC 6503 s10.2).

Checking a password costs one scrypt (tens of milliseconds, on purpose). A CCMP client sends
its credentials with every request, so verified credentials are remembered for a short while,
keyed by an HMAC of name and password under a per-process random key: a wrong password never
matches a cached entry, and the cache holds no password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from focus.core.accounts import Account


class AuthError(ValueError):
    """The peer's credentials are unusable (malformed header): answer 424."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, and where they came from."""

    username: str
    password: str = field(repr=False)
    source: Literal["subject", "basic"]


def parse_basic_authorization(header: str | None) -> Credentials | None:
    """Credentials of an `Authorization: Basic ...` header (RFC 7617); None if absent or
    another scheme; AuthError if it claims Basic but is malformed."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed Basic authorization header") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AuthError("Basic authorization header without user-id:password")
    return Credentials(username, password, "basic")


class AccountCheck(Protocol):
    """What the authenticator needs from the core's account directory."""

    def authenticate(self, name: str, password: str) -> Account: ...


class Authenticator:
    """Verifies credentials against the account directory, with a small TTL cache."""

    def __init__(
        self,
        accounts: AccountCheck,
        *,
        cache_size: int = 1024,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = accounts
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, Account]] = OrderedDict()
        self._size = cache_size
        self._ttl = ttl_s
        self._clock = clock

    def _fingerprint(self, creds: Credentials) -> bytes:
        material = creds.username.encode() + b"\x00" + creds.password.encode()
        return hmac.new(self._key, material, hashlib.sha256).digest()

    def authenticate(self, creds: Credentials) -> Account:
        """The account, or the core's CoreError(AUTHENTICATION_REQUIRED)."""
        key = self._fingerprint(creds)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        account = self._accounts.authenticate(creds.username, creds.password)
        self._cache[key] = (now + self._ttl, account)
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return account

    def forget(self) -> None:
        """Drop every remembered credential (after an account change)."""
        self._cache.clear()
