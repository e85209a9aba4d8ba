"""SIP credentials of accounts: HA1 hashes only (RFC 8760), per realm, and the migration of
a state file made before accounts had them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from focus.core.accounts import AccountDirectory, add_account
from focus.core.database import database_path, open_database
from focus.core.errors import CoreError, ErrorKind
from focus.xcon.model import Role

FAST = 2**4


def h(name: str, text: str) -> str:
    return hashlib.new(name, text.encode()).hexdigest()


def test_user_add_stores_ha1s_never_the_password(tmp_path: Path) -> None:
    add_account(
        tmp_path,
        "alice",
        "moderator",
        "s3cret",
        domain="example.org",
        sip_realm="sip.test",
        scrypt_n=FAST,
    )
    conn = open_database(database_path(tmp_path))
    try:
        d = AccountDirectory(conn, "example.org", scrypt_n=FAST)
        assert d.sip_ha1("alice", "MD5", "sip.test") == h("md5", "alice:sip.test:s3cret")
        assert d.sip_ha1("alice", "SHA-256", "sip.test") == h("sha256", "alice:sip.test:s3cret")
        assert d.sip_ha1("alice", "SHA-256", "other.realm") is None  # made for one realm
        assert d.sip_ha1("alice", "SHA-512-256", "sip.test") is None
        assert d.sip_ha1("bob", "MD5", "sip.test") is None
    finally:
        conn.close()
    raw = database_path(tmp_path).read_bytes()
    for suffix in ("", "-wal"):
        path = Path(str(database_path(tmp_path)) + suffix)
        if path.exists():
            raw += path.read_bytes()
    assert b"s3cret" not in raw


def test_set_password_remakes_or_drops_the_sip_credentials(tmp_path: Path) -> None:
    conn = open_database(database_path(tmp_path))
    try:
        d = AccountDirectory(conn, "example.org", scrypt_n=FAST)
        d.add("bob", Role.USER, "old", sip_realm="r")
        d.set_password("bob", "new", sip_realm="r")
        assert d.sip_ha1("bob", "MD5", "r") == h("md5", "bob:r:new")
        d.set_password("bob", "newer")  # no realm: the old HA1s would be wrong, so gone
        assert d.sip_ha1("bob", "MD5", "r") is None
        with pytest.raises(CoreError) as caught:
            d.set_password("nobody", "x", sip_realm="r")
        assert caught.value.kind is ErrorKind.USER_NOT_FOUND
        d.remove("bob")
        assert conn.execute("SELECT COUNT(*) FROM sip_credentials").fetchone() == (0,)
        with pytest.raises(CoreError, match="realm"):
            d.add("carol", Role.USER, "pw", sip_realm='bad"realm')
        assert d.get("carol") is None  # nothing half-stored
    finally:
        conn.close()


def test_a_state_file_without_sip_credentials_is_migrated(tmp_path: Path) -> None:
    """An accounts table from before SIP accounts: it opens, its accounts still sign in to
    CCMP, and get SIP credentials once their password is set again."""
    conn = open_database(database_path(tmp_path))
    try:
        AccountDirectory(conn, "example.org", scrypt_n=FAST).add("old", Role.USER, "pw")
        conn.execute("DROP TABLE sip_credentials")  # as the older program left the file
    finally:
        conn.close()
    conn = open_database(database_path(tmp_path))
    try:
        d = AccountDirectory(conn, "example.org", scrypt_n=FAST)
        assert d.authenticate("old", "pw").name == "old"
        assert d.sip_ha1("old", "MD5", "localhost") is None
        d.set_password("old", "pw2", sip_realm="localhost")
        assert d.sip_ha1("old", "MD5", "localhost") == h("md5", "old:localhost:pw2")
    finally:
        conn.close()
