"""Issue 10: ``python -m focus user add`` / ``set-password`` give an account SIP digest
credentials as HA1 hashes (MD5, SHA-256; RFC 8760) for the profile's realm, never the
password itself."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from focus.core.database import database_path
from tests.serve import run_cli


def cli(*args: str, password: str) -> None:
    done = run_cli("focus", "user", *args, stdin=password + "\n")
    assert done.returncode == 0, done.stderr


def stored(state: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(database_path(state))
    try:
        return list(conn.execute("SELECT name, realm, ha1_md5, ha1_sha256 FROM sip_credentials"))
    finally:
        conn.close()


def everything_on_disk(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())


def test_user_add_and_set_password_store_ha1_for_the_profiles_realm(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('domain = "sip.example.net"\n')
    state = tmp_path / "state"
    common = ("--password-stdin", "--state-dir", str(state), "--profile", str(profile))
    cli("add", "alice", "--role", "moderator", *common, password="First-Secret")
    md5 = hashlib.md5(b"alice:sip.example.net:First-Secret").hexdigest()
    sha = hashlib.sha256(b"alice:sip.example.net:First-Secret").hexdigest()
    assert stored(state) == [("alice", "sip.example.net", md5, sha)]
    cli("set-password", "alice", *common, password="Second-Secret")
    ((_, realm, md5, _),) = stored(state)
    assert realm == "sip.example.net"
    assert md5 == hashlib.md5(b"alice:sip.example.net:Second-Secret").hexdigest()
    disk = everything_on_disk(state)
    assert b"First-Secret" not in disk and b"Second-Secret" not in disk
    missing = run_cli("focus", "user", "set-password", "bob", *common, stdin="x\n")
    assert missing.returncode == 2 and "bob" in missing.stderr
