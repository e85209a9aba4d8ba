"""ConferenceStore: the one place conference state changes, durably.

``apply(command)`` asks the pure :class:`Core` for a plan, writes the plan to SQLite in one
transaction, and only then installs it in memory and tells the subscribers.  So:

* when ``apply`` returns, the change is on disk (a CCMP 200 means durable);
* when the write fails, ``apply`` raises ``CoreError(STORAGE_FAILED)`` and neither memory nor
  disk changed (write-ahead);
* a new store on the same file sees every conference, user, sidebar, version, password and
  the ID counter (generated IDs never repeat across restarts).

``apply`` never awaits, so on one event loop it is atomic.  Reads return frozen snapshots.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from focus.core.accounts import DEFAULT_SCRYPT_N, AccountDirectory
from focus.core.blueprints import load_blueprints
from focus.core.changes import Change, Origin
from focus.core.commands import Command
from focus.core.core import Core, CoreConfig
from focus.core.database import database_path, open_database, transaction
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.serial import SerialError, from_jsonable, to_jsonable
from focus.core.state import ConferenceObject, ObjectKind
from focus.xcon.model import Role, User

log = logging.getLogger("focus.core")

Subscriber = Callable[[Sequence[Change]], None]


def _exclusive_lock(path: Path) -> int:
    """Hold ``<db>.lock`` exclusively: two stores on one file would each keep their own
    memory and silently overwrite each other's changes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CoreError(
            ErrorKind.STORAGE_FAILED, f"{path} is already in use by another conference store"
        ) from None
    return fd


class ConferenceStore:
    """The conference state of one SQLite file (see the module doc)."""

    def __init__(
        self,
        path: Path,
        config: CoreConfig | None = None,
        *,
        blueprint_dirs: Sequence[Path] = (),
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> None:
        self.path = path
        self.config = config or CoreConfig()
        self._lock = _exclusive_lock(path)
        try:
            self._conn = open_database(path)
        except BaseException:
            os.close(self._lock)
            raise
        try:
            self.accounts = AccountDirectory(self._conn, self.config.domain, scrypt_n=scrypt_n)
            blueprints = load_blueprints(self.config.domain, blueprint_dirs)
            objects, serial, now = self._load()
        except BaseException:
            self._conn.close()
            os.close(self._lock)
            raise
        self._closed = False
        self._core = Core(
            self.config,
            [*blueprints, *objects],
            next_serial=serial,
            known_user=lambda uid: self.accounts.by_user_id(uid) is not None,
        )
        self._core.now = now
        self._subscribers: list[Subscriber] = []
        self._pending: deque[tuple[Change, ...]] = deque()
        self._publishing = False

    @classmethod
    def open(
        cls,
        state_dir: Path,
        config: CoreConfig | None = None,
        *,
        blueprint_dirs: Sequence[Path] = (),
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> ConferenceStore:
        """The store of a state directory (its SQLite file is ``focus.sqlite3``)."""
        return cls(
            database_path(state_dir), config, blueprint_dirs=blueprint_dirs, scrypt_n=scrypt_n
        )

    def close(self) -> None:
        """Close the SQLite connection and release the state; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._conn.close()
        os.close(self._lock)  # closing the descriptor releases the lock

    def __enter__(self) -> ConferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_busy_timeout(self, milliseconds: int) -> None:
        """How long a write waits for another process holding the file's lock."""
        self._conn.execute(f"PRAGMA busy_timeout={int(milliseconds)}")

    # ---- loading ----------------------------------------------------------------------

    def _load(self) -> tuple[list[ConferenceObject], int, datetime | None]:
        objects = []
        for uri, document in self._conn.execute("SELECT uri, document FROM conference_objects"):
            try:
                objects.append(from_jsonable(ConferenceObject, json.loads(document)))
            except (SerialError, ValueError) as exc:
                raise CoreError(
                    ErrorKind.STORAGE_FAILED, f"{self.path}: stored object {uri} is corrupt: {exc}"
                ) from exc
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        serial = int(meta.get("next_serial", "1"))
        now = datetime.fromisoformat(meta["now"]) if "now" in meta else None
        return objects, serial, now

    # ---- the one mutation path ------------------------------------------------------------

    def apply(self, command: Command, *, origin: Origin = Origin.LOCAL) -> list[Change]:
        """Carry out ``command`` for the front end ``origin``: durable before returning;
        CoreError when refused. Every change returned and published carries ``origin``."""
        plan = self._core.plan(command)
        try:
            with transaction(self._conn):
                for uri in sorted(plan.deletes):
                    self._conn.execute("DELETE FROM conference_objects WHERE uri=?", (uri,))
                for uri, obj in sorted(plan.upserts.items()):
                    if obj.kind is ObjectKind.BLUEPRINT and not obj.editable:
                        continue  # blueprint files stay files, never rows
                    self._conn.execute(
                        "INSERT OR REPLACE INTO conference_objects(uri, document) VALUES (?, ?)",
                        (uri, json.dumps(to_jsonable(obj), separators=(",", ":"))),
                    )
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('next_serial', ?)",
                    (str(plan.next_serial),),
                )
                if plan.now is not None:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES ('now', ?)",
                        (plan.now.isoformat(),),
                    )
        except sqlite3.Error as exc:
            log.error("could not persist %s: %s", type(command).__name__, exc)
            raise CoreError(
                ErrorKind.STORAGE_FAILED, f"the change could not be stored: {exc}"
            ) from exc
        self._core.commit(plan)
        changes = [replace(c, origin=origin) for c in plan.changes]
        if changes:
            self._publish(tuple(changes))
        return changes

    def _publish(self, batch: tuple[Change, ...]) -> None:
        """Deliver ``batch`` to every subscriber, batches strictly in commit order: a
        subscriber that applies a command itself has that command's changes delivered
        after the current batch reached everyone."""
        self._pending.append(batch)
        if self._publishing:
            return
        self._publishing = True
        try:
            while self._pending:
                current = self._pending.popleft()
                for subscriber in list(self._subscribers):
                    try:
                        subscriber(current)
                    except Exception:
                        # A failing listener must not undo or hide a committed change.
                        log.exception("subscriber %r failed", subscriber)
        finally:
            self._publishing = False

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with the changes of every committed command; returns a
        function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # ---- reads (frozen snapshots) ---------------------------------------------------------

    def get(self, uri: str) -> ConferenceObject | None:
        """Any object by URI, without authorization (trusted in-process callers)."""
        return self._core.get(uri)

    def find(self, uri: str) -> ConferenceObject | None:
        """A conference or sidebar by its XCON-URI or one of its <conf-uris> (e.g. the SIP
        URI of the focus), without authorization."""
        return self._core.find(uri)

    def objects(self) -> list[ConferenceObject]:
        """Every object (blueprints included), by URI."""
        return sorted(self._core.objects.values(), key=lambda o: o.uri)

    def list_blueprints(self, actor: Actor) -> tuple[ConferenceObject, ...]:
        """blueprintsRequest (RFC 6503 s5.3.1)."""
        return self._core.list_blueprints(actor)

    def get_blueprint(self, actor: Actor, uri: str) -> ConferenceObject:
        """blueprintRequest/retrieve (RFC 6503 s5.3.3)."""
        return self._core.get_blueprint(actor, uri)

    def list_conferences(self, actor: Actor) -> tuple[ConferenceObject, ...]:
        """confsRequest (RFC 6503 s5.3.2)."""
        return self._core.list_conferences(actor)

    def get_conference(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject:
        """confRequest/retrieve (RFC 6503 s5.3.4)."""
        return self._core.get_conference(actor, uri, password=password)

    def get_users(self, actor: Actor, uri: str, *, password: str | None = None) -> ConferenceObject:
        """usersRequest/retrieve (RFC 6503 s5.3.5): read ``.info.users``, ``.version``."""
        return self._core.get_users(actor, uri, password=password)

    def get_user(
        self, actor: Actor, uri: str, entity: str | None = None, *, password: str | None = None
    ) -> User:
        """userRequest/retrieve (RFC 6503 s5.3.6); ``entity`` None: the actor's own."""
        return self._core.get_user(actor, uri, entity, password=password)

    def get_sidebars(
        self, actor: Actor, uri: str, *, password: str | None = None
    ) -> ConferenceObject:
        """sidebarsByVal/ByRef retrieve (RFC 6503 s5.3.7, s5.3.9): the parent object."""
        return self._core.get_sidebars(actor, uri, password=password)

    def get_sidebar(
        self, actor: Actor, uri: str, *, by_ref: bool, password: str | None = None
    ) -> ConferenceObject:
        """sidebarByVal/ByRef retrieve (RFC 6503 s5.3.8, s5.3.10)."""
        return self._core.get_sidebar(actor, uri, by_ref=by_ref, password=password)

    def role_on(self, actor: Actor, obj: ConferenceObject) -> Role:
        """The role ``actor`` acts with on ``obj`` (the one the policy decides by)."""
        return self._core.role_on(actor, obj)

    def next_deadline(self, now: datetime) -> datetime | None:
        """When the application should next ``apply(Tick(...))`` (None: no schedule)."""
        return self._core.next_deadline(now)

    @property
    def now(self) -> datetime | None:
        """The time of the last Tick the core saw."""
        return self._core.now
