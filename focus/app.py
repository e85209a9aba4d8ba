"""Wiring and lifecycle of the whole process: the store first, then the front ends; reverse on stop.

No business logic lives here. Later front ends (the SIP focus, the media driver) are started
between the store and CCMP, and subscribe to the store's changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import UTC, datetime

from ccmp_server.app import CcmpConfig, start_ccmp
from focus.core.changes import Change
from focus.core.commands import Tick
from focus.core.core import CoreConfig
from focus.core.errors import CoreError
from focus.core.store import ConferenceStore
from focus.settings import FocusSettings

log = logging.getLogger("focus")


def open_store(settings: FocusSettings) -> ConferenceStore:
    """The conference store of ``settings.state_dir`` (created on first use)."""
    dirs = (settings.blueprint_dir,) if settings.blueprint_dir is not None else ()
    return ConferenceStore.open(
        settings.state_dir, CoreConfig(domain=settings.domain), blueprint_dirs=dirs
    )


class ScheduleClock:
    """Drives reservations (RFC 5239 s7.3-7.4): one ``loop.call_at`` timer that applies a
    ``Tick`` at the store's next deadline, re-armed after every change (a new reservation
    may start sooner)."""

    def __init__(self, store: ConferenceStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._unsubscribe = store.subscribe(self._changed)

    def _changed(self, _changes: Sequence[Change]) -> None:
        # Not re-armed inline: a subscriber must not re-enter the store while it publishes.
        self._loop.call_soon(self.arm)

    def tick(self) -> None:
        self._handle = None
        try:
            self._store.apply(Tick(now=datetime.now(UTC)))
        except CoreError:
            log.exception("schedule tick failed; retrying at the next deadline")
        self.arm()

    def arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        now = datetime.now(UTC)
        deadline = self._store.next_deadline(now)
        if deadline is None:
            return
        delay = max(0.0, (deadline - now).total_seconds())
        # Far deadlines are re-evaluated hourly rather than trusting a day-long timer.
        self._handle = self._loop.call_at(self._loop.time() + min(delay, 3600.0), self.tick)

    def close(self) -> None:
        self._unsubscribe()
        if self._handle is not None:
            self._handle.cancel()


def ccmp_config(settings: FocusSettings) -> CcmpConfig:
    return CcmpConfig(
        host=settings.ccmp_listen.host,
        port=settings.ccmp_listen.port,
        path=settings.ccmp_path,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
    )


async def run(settings: FocusSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set, or SIGTERM/SIGINT arrives when no event is given."""
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    store = open_store(settings)
    clock = ScheduleClock(store, loop)
    try:
        clock.tick()
        ccmp = await start_ccmp(store, ccmp_config(settings))
        try:
            await stop.wait()
            log.info("stopping")
        finally:
            await ccmp.close()
    finally:
        clock.close()
        store.close()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    log.info("stopped")
