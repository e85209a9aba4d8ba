"""The SQLite file behind the core: schema, opening, one-transaction helper.

Everything durable lives in one file in the state directory: conference objects (with
their versions, links and owners), the ID counters and the accounts.  Connections run in
autocommit mode and every write is wrapped in an explicit ``BEGIN IMMEDIATE``, so a
committed change is on disk (WAL, synchronous=FULL) before the caller answers anyone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from focus.core.errors import CoreError, ErrorKind

DB_FILENAME = "focus.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conference_objects (
    uri       TEXT PRIMARY KEY,
    document  TEXT NOT NULL      -- JSON of the core's ConferenceObject
);
CREATE TABLE IF NOT EXISTS accounts (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    user_id     TEXT NOT NULL UNIQUE,
    password    TEXT NOT NULL   -- scrypt$n$r$p$salt$hash, never the password itself
);
"""


def database_path(state_dir: Path) -> Path:
    """Where the SQLite file of a state directory is."""
    return state_dir / DB_FILENAME


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the core's SQLite file and make sure the schema is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise CoreError(
                ErrorKind.STORAGE_FAILED,
                f"{path} has schema version {row[0]}, this program reads {SCHEMA_VERSION}",
            )
    except sqlite3.Error as exc:
        conn.close()
        raise CoreError(ErrorKind.STORAGE_FAILED, f"cannot prepare {path}: {exc}") from exc
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed on normal exit, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
