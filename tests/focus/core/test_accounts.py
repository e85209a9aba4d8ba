"""Accounts: hashing, the directory in SQLite, add_account for the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from focus.core.accounts import (
    AccountDirectory,
    add_account,
    hash_password,
    verify_password,
    xcon_userid,
)
from focus.core.database import database_path, open_database
from focus.core.errors import CoreError, ErrorKind
from focus.xcon.model import Role

FAST = 2**4  # cheap scrypt for tests; production uses the default cost


def test_hash_roundtrip_and_salted() -> None:
    a = hash_password("s3cret", n=FAST)
    b = hash_password("s3cret", n=FAST)
    assert a != b  # salted
    assert "s3cret" not in a
    assert verify_password("s3cret", a)
    assert not verify_password("s3creT", a)
    assert not verify_password("s3cret", "garbage")
    assert not verify_password("s3cret", "md5$1$2$3$00$00")


def test_empty_password_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("", n=FAST)


def test_directory(tmp_path: Path) -> None:
    conn = open_database(database_path(tmp_path))
    accounts = AccountDirectory(conn, "example.com", scrypt_n=FAST)
    alice = accounts.add("alice", Role.MODERATOR, "pw-alice")
    assert alice.user_id == "xcon-userid:alice@example.com" == xcon_userid("alice", "example.com")
    assert accounts.authenticate("alice", "pw-alice") == alice
    with pytest.raises(CoreError) as info:
        accounts.authenticate("alice", "wrong")
    assert info.value.kind is ErrorKind.AUTHENTICATION_REQUIRED
    with pytest.raises(CoreError) as info:
        accounts.authenticate("nobody", "pw-alice")
    assert info.value.kind is ErrorKind.AUTHENTICATION_REQUIRED
    with pytest.raises(CoreError) as info:
        accounts.add("alice", Role.USER, "other")
    assert info.value.kind is ErrorKind.USER_EXISTS
    with pytest.raises(CoreError) as info:
        accounts.add("bad name", Role.USER, "x")
    assert info.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(CoreError) as info:
        accounts.add("carol", Role.USER, "")
    assert info.value.kind is ErrorKind.BAD_REQUEST

    assert accounts.by_user_id(alice.user_id) == alice
    assert accounts.set_role("alice", Role.USER).role is Role.USER
    accounts.set_password("alice", "new-pw")
    assert accounts.authenticate("alice", "new-pw").role is Role.USER
    accounts.remove("alice")
    assert accounts.get("alice") is None
    for call in (
        lambda: accounts.remove("alice"),
        lambda: accounts.set_role("alice", Role.USER),
        lambda: accounts.set_password("alice", "x"),
    ):
        with pytest.raises(CoreError) as info:
            call()
        assert info.value.kind is ErrorKind.USER_NOT_FOUND
    conn.close()


def test_password_is_not_stored_in_clear(tmp_path: Path) -> None:
    add_account(
        tmp_path, "bob", "participant", "hunter2-secret", domain="example.com", scrypt_n=FAST
    )
    raw = database_path(tmp_path).read_bytes()
    assert b"hunter2-secret" not in raw
    with sqlite3.connect(database_path(tmp_path)) as conn:
        (stored,) = conn.execute("SELECT password FROM accounts").fetchone()
    assert stored.startswith("scrypt$")


def test_add_account_persists(tmp_path: Path) -> None:
    bob = add_account(tmp_path, "bob", "participant", "pw", domain="example.com", scrypt_n=FAST)
    assert bob.role is Role.PARTICIPANT
    conn = open_database(database_path(tmp_path))
    again = AccountDirectory(conn, "example.com", scrypt_n=FAST)
    assert again.all() == [bob]
    assert again.authenticate("bob", "pw") == bob
    conn.close()
    with pytest.raises(ValueError, match="unknown role"):
        add_account(tmp_path, "eve", "chair", "pw", domain="example.com", scrypt_n=FAST)


def test_invalid_domain(tmp_path: Path) -> None:
    conn = open_database(database_path(tmp_path))
    with pytest.raises(ValueError, match="invalid domain"):
        AccountDirectory(conn, "bad domain", scrypt_n=FAST)
    conn.close()
