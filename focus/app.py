"""Wiring and lifecycle of the whole process: the store first, then the front ends; reverse on stop.

No business logic lives here. Start order: the store, the schedule clock, the SIP user agent,
the media server (bundled, or reached at ``--media-server``) with the CFW client and the media
driver, the focus (:class:`focus.calls.focus.ConferenceFocus`), then CCMP. Stop in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ccmp_server.app import CcmpConfig, start_ccmp
from focus.calls.focus import ConferenceFocus, FocusConfig
from focus.calls.media import MediaLegs, sip_channel_opener
from focus.core.changes import Change
from focus.core.commands import Tick
from focus.core.core import CoreConfig
from focus.core.errors import CoreError
from focus.core.store import ConferenceStore
from focus.settings import FocusSettings, HostPort, SettingsError
from focus.sip.timers import TimerConfig
from focus.sip.transport import TransportConfig
from focus.sip.ua import UAConfig, UserAgent
from mediactrl.client import MediaControlClient
from mediactrl.driver import MediaDriver

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


def sip_configs(settings: FocusSettings, listen: HostPort) -> tuple[UAConfig, TransportConfig]:
    """The focus UA's identity and its listener, from the profile."""
    profile = settings.profile
    ua = UAConfig(
        user="focus",
        user_agent=profile.user_agent,
        timers=TimerConfig(t1=profile.t1, t2=profile.t2, t4=profile.t4),
        methods=frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}),
    )
    transport = TransportConfig(
        host=listen.host,
        udp_port=listen.port if "udp" in profile.transports else None,
        tcp_port=listen.port if "tcp" in profile.transports else None,
    )
    return ua, transport


class MediaPlane:
    """The media server as the focus reaches it: SIP legs, the CFW client and the driver.
    ``server`` is the bundled media server when the process runs it."""

    def __init__(self, legs: MediaLegs, client: MediaControlClient, driver: MediaDriver,
                 server: object | None) -> None:
        self.legs = legs
        self.client = client
        self.driver = driver
        self.server = server
        self._starting: asyncio.Task[None] | None = None

    def start(self) -> None:
        # Not awaited: an external media server that is not up yet must not keep SIP and
        # CCMP from starting; the client keeps reconnecting and the driver resyncs.
        self._starting = asyncio.get_running_loop().create_task(self.client.start())

    async def close(self) -> None:
        await self.legs.close_all()
        await self.client.close()
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        close = getattr(self.server, "close", None)
        if close is not None:
            await close()


async def start_media(settings: FocusSettings, ua: UserAgent) -> MediaPlane | None:
    """The media plane: ``--media-server`` if given, else the bundled media server."""
    server: Any = None
    uri = settings.media_server
    if uri is None:
        try:
            from mediactrl.server import start_media_server  # type: ignore[attr-defined]
        except ImportError:
            log.warning("no bundled media server in this build and no --media-server: "
                        "calls will be refused with 503")
            return None
        server = await start_media_server(None)
        uri = str(server.sip_uri)
    host = ua.core.local[next(iter(ua.core.local))][0]
    legs = MediaLegs(ua, uri)
    client = MediaControlClient(sip_channel_opener(ua, uri, host))
    driver = MediaDriver(client)
    plane = MediaPlane(legs, client, driver, server)
    plane.start()
    log.info("media server %s", uri)
    return plane


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
        ua: UserAgent | None = None
        media: MediaPlane | None = None
        focus: ConferenceFocus | None = None
        try:
            if settings.sip_listen is not None:
                ua_config, transport_config = sip_configs(settings, settings.sip_listen)
                try:
                    ua = await UserAgent.start(ua_config, transport_config)
                except OSError as exc:
                    raise SettingsError(
                        f"cannot listen for SIP on {settings.sip_listen}: {exc.strerror}"
                    ) from None
                for kind, (host, port) in ua.core.local.items():
                    log.info("SIP focus listening on %s %s:%d", kind.value, host, port)
                log.info("conference factory URI %s", settings.profile.factory_uri)
                media = await start_media(settings, ua)
                focus = ConferenceFocus(
                    store, ua, media.legs if media else None, media.driver if media else None,
                    FocusConfig(settings.profile, settings.domain))
            ccmp = await start_ccmp(store, ccmp_config(settings))
            try:
                await stop.wait()
                log.info("stopping")
            finally:
                await ccmp.close()
        finally:
            if focus is not None:
                await focus.close()
            if media is not None:
                await media.close()
            if ua is not None:
                await ua.close()
    finally:
        clock.close()
        store.close()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    log.info("stopped")
