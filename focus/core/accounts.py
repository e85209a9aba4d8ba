"""Accounts: the CCMP users who may ask the conferencing system for things.

An account has a name, an RFC 6501 role, an XCON-USERID ``xcon-userid:<name>@<domain>``
(RFC 6501 s4.6.5) and a password kept only as a salted scrypt hash.  Accounts live in the
same SQLite file as the conferences.  RFC 6503 s3.2 leaves registration out of CCMP; the
operator adds accounts with ``python -m focus user add`` which calls :func:`add_account`.

The same account signs in over SIP: digest username = account name, and the focus keeps
only HA1 = H(name:realm:password) for MD5 and SHA-256 (RFC 8760 s2), for the realm the
account was given (the SIP profile's domain).  They live in their own ``sip_credentials``
table, created when a state file without it is opened, so an older state file keeps
working; its accounts get SIP credentials when their password is set again
(``python -m focus user set-password``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from focus.core.database import database_path, open_database, transaction
from focus.core.errors import CoreError, ErrorKind
from focus.xcon.model import Role

#: scrypt cost; 2**14 with r=8 needs 16 MiB and tens of milliseconds: costly to guess.
DEFAULT_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}")
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_MAX_PASSWORD = 1024
#: The digest algorithms whose HA1 an account keeps (RFC 8760 s2.4: SHA-256, then MD5).
SIP_ALGORITHMS = ("SHA-256", "MD5")
_SIP_SCHEMA = """
CREATE TABLE IF NOT EXISTS sip_credentials (
    name        TEXT PRIMARY KEY,  -- accounts.name
    realm       TEXT NOT NULL,
    ha1_md5     TEXT NOT NULL,     -- H(name:realm:password), never the password itself
    ha1_sha256  TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Account:
    """A registered CCMP user (no password in here)."""

    name: str
    role: Role
    user_id: str


def xcon_userid(name: str, domain: str) -> str:
    """The XCON-USERID of account ``name`` in ``domain`` (RFC 6501 s3.3/s4.6.5)."""
    return f"xcon-userid:{name}@{domain}"


def hash_password(password: str, *, n: int = DEFAULT_SCRYPT_N) -> str:
    """A self-describing salted scrypt hash of ``password``."""
    if not password:
        raise ValueError("the password is empty")
    if len(password) > _MAX_PASSWORD:
        raise ValueError(f"the password is longer than {_MAX_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant time in the password)."""
    try:
        scheme, n_text, r_text, p_text, salt_hex, digest_hex = encoded.split("$")
        if scheme != "scrypt":
            return False
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if len(password) > _MAX_PASSWORD:
        return False
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(expected))
    return hmac.compare_digest(digest, expected)


def _ha1(hash_name: str, name: str, realm: str, password: str) -> str:
    # RFC 7616 s3.4.2 (focus.sip.digest.ha1; the core may not import the SIP stack)
    return hashlib.new(hash_name, f"{name}:{realm}:{password}".encode()).hexdigest()


class AccountDirectory:
    """The accounts table of one SQLite file."""

    def __init__(self, conn: sqlite3.Connection, domain: str, *, scrypt_n: int = DEFAULT_SCRYPT_N):
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"invalid domain {domain!r}")
        self._conn = conn
        self.domain = domain
        conn.execute(_SIP_SCHEMA)  # the migration of a state file that predates SIP accounts
        self._scrypt_n = scrypt_n
        # Checked against when the name is unknown, so both paths cost one scrypt.
        self._decoy = hash_password(secrets.token_hex(8), n=scrypt_n)

    def add(self, name: str, role: Role, password: str, *, sip_realm: str | None = None) -> Account:
        """Register a new account; USER_EXISTS if the name is taken.  With ``sip_realm``
        it may also sign in over SIP (its HA1s for that realm are stored)."""
        if not _NAME.fullmatch(name):
            raise CoreError(
                ErrorKind.BAD_REQUEST,
                f"invalid account name {name!r}: use 1-64 letters, digits and ._~+- "
                "starting with a letter or digit",
            )
        try:
            encoded = hash_password(password, n=self._scrypt_n)
        except ValueError as exc:
            raise CoreError(ErrorKind.BAD_REQUEST, str(exc)) from exc
        account = Account(name=name, role=role, user_id=xcon_userid(name, self.domain))
        try:
            with transaction(self._conn):
                self._conn.execute(
                    "INSERT INTO accounts(name, role, user_id, password) VALUES (?, ?, ?, ?)",
                    (name, role.value, account.user_id, encoded),
                )
                if sip_realm is not None:
                    self._store_sip(name, sip_realm, password)
        except sqlite3.IntegrityError:
            raise CoreError(ErrorKind.USER_EXISTS, f"account {name!r} already exists") from None
        except sqlite3.Error as exc:
            raise CoreError(ErrorKind.STORAGE_FAILED, f"cannot store account: {exc}") from exc
        return account

    def get(self, name: str) -> Account | None:
        """The account called ``name``, if any."""
        row = self._conn.execute(
            "SELECT name, role, user_id FROM accounts WHERE name=?", (name,)
        ).fetchone()
        return None if row is None else Account(row[0], Role(row[1]), row[2])

    def by_user_id(self, user_id: str) -> Account | None:
        """The account whose XCON-USERID is ``user_id``, if any."""
        row = self._conn.execute(
            "SELECT name, role, user_id FROM accounts WHERE user_id=?", (user_id,)
        ).fetchone()
        return None if row is None else Account(row[0], Role(row[1]), row[2])

    def all(self) -> list[Account]:
        """Every account, by name."""
        rows = self._conn.execute("SELECT name, role, user_id FROM accounts ORDER BY name")
        return [Account(r[0], Role(r[1]), r[2]) for r in rows]

    def authenticate(self, name: str, password: str) -> Account:
        """The account if ``password`` is right; AUTHENTICATION_REQUIRED otherwise."""
        row = self._conn.execute(
            "SELECT name, role, user_id, password FROM accounts WHERE name=?", (name,)
        ).fetchone()
        encoded = self._decoy if row is None else row[3]
        if verify_password(password, encoded) and row is not None:
            return Account(row[0], Role(row[1]), row[2])
        raise CoreError(ErrorKind.AUTHENTICATION_REQUIRED, "unknown account or wrong password")

    def set_role(self, name: str, role: Role) -> Account:
        """Change the role of an account; USER_NOT_FOUND if there is none."""
        with transaction(self._conn):
            cur = self._conn.execute("UPDATE accounts SET role=? WHERE name=?", (role.value, name))
        if cur.rowcount == 0:
            raise CoreError(ErrorKind.USER_NOT_FOUND, f"no account {name!r}")
        account = self.get(name)
        assert account is not None
        return account

    def set_password(self, name: str, password: str, *, sip_realm: str | None = None) -> None:
        """Replace the password of an account; USER_NOT_FOUND if there is none.  Its SIP
        credentials are replaced too (for ``sip_realm``) or, without one, dropped: they were
        derived from the old password."""
        try:
            encoded = hash_password(password, n=self._scrypt_n)
        except ValueError as exc:
            raise CoreError(ErrorKind.BAD_REQUEST, str(exc)) from exc
        with transaction(self._conn):
            cur = self._conn.execute("UPDATE accounts SET password=? WHERE name=?", (encoded, name))
            if cur.rowcount and sip_realm is not None:
                self._store_sip(name, sip_realm, password)
            elif cur.rowcount:
                self._conn.execute("DELETE FROM sip_credentials WHERE name=?", (name,))
        if cur.rowcount == 0:
            raise CoreError(ErrorKind.USER_NOT_FOUND, f"no account {name!r}")

    def _store_sip(self, name: str, realm: str, password: str) -> None:
        if not realm or any(c in realm for c in '"\\\r\n'):
            raise CoreError(ErrorKind.BAD_REQUEST, f"invalid SIP realm {realm!r}")
        self._conn.execute(
            "INSERT OR REPLACE INTO sip_credentials(name, realm, ha1_md5, ha1_sha256) "
            "VALUES (?, ?, ?, ?)",
            (
                name,
                realm,
                _ha1("md5", name, realm, password),
                _ha1("sha256", name, realm, password),
            ),
        )

    def sip_ha1(self, name: str, algorithm: str, realm: str) -> str | None:
        """The stored HA1 of account ``name`` for a digest ``algorithm`` (MD5 or SHA-256)
        in ``realm``; ``None`` if there is no such account, it has no SIP credentials, or
        they were made for another realm (then ``user set-password`` remakes them)."""
        column = {"MD5": "ha1_md5", "SHA-256": "ha1_sha256"}.get(algorithm)
        if column is None:
            return None
        row = self._conn.execute(
            f"SELECT {column} FROM sip_credentials WHERE name=? AND realm=?",  # noqa: S608 -- fixed names
            (name, realm),
        ).fetchone()
        return None if row is None else str(row[0])

    def remove(self, name: str) -> None:
        """Delete an account; USER_NOT_FOUND if there is none."""
        with transaction(self._conn):
            self._conn.execute("DELETE FROM sip_credentials WHERE name=?", (name,))
            cur = self._conn.execute("DELETE FROM accounts WHERE name=?", (name,))
        if cur.rowcount == 0:
            raise CoreError(ErrorKind.USER_NOT_FOUND, f"no account {name!r}")


def add_account(
    state_dir: Path,
    name: str,
    role: Role | str,
    password: str,
    *,
    domain: str,
    sip_realm: str | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> Account:
    """Add an account to the SQLite file of ``state_dir`` (the CLI's ``user add``); with
    ``sip_realm`` its SIP digest credentials too."""
    parsed = role if isinstance(role, Role) else Role.parse(role)
    conn = open_database(database_path(state_dir))
    try:
        directory = AccountDirectory(conn, domain, scrypt_n=scrypt_n)
        return directory.add(name, parsed, password, sip_realm=sip_realm)
    finally:
        conn.close()
