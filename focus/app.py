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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ccmp_server.app import CcmpConfig, CcmpServer, start_ccmp
from focus.calls.context import FocusConfig
from focus.calls.focus import ConferenceFocus
from focus.core.changes import Change, Origin
from focus.core.commands import Tick
from focus.core.core import CoreConfig
from focus.core.errors import CoreError
from focus.core.store import ConferenceStore
from focus.settings import FocusSettings, HostPort, SettingsError, SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.timers import TimerConfig
from focus.sip.uacore import UAConfig
from mediactrl.client import ChannelDown, MediaControlClient
from mediactrl.driver import MediaDriver
from mediactrl.legs import MediaLegs
from mediactrl.server.app import MediaServer, MediaServerConfig, start_media_server
from mediactrl.sip_opener import SipChannelOpener

log = logging.getLogger("focus")

#: Seconds the start waits for the media server's control channel before serving anyway.
MEDIA_STARTUP_WAIT = 10.0


def core_config(settings: FocusSettings) -> CoreConfig:
    """The core's configuration: every conference lists its XCON-URI for CCMP clients
    (RFC 7082 s3) and, with a SIP front end, the SIP URI the profile gives it
    (``sip:<conference_user>@<domain>``), from its creation on."""
    participation = None
    if settings.sip_listen is not None:
        profile = settings.profile
        participation = f"sip:{profile.conference_user}@{profile.domain}"
    return CoreConfig(
        domain=settings.domain,
        participation_uri=participation,
        ccmp_service_uri=True,
        exempt_administrators_from_passwords=settings.exempt_administrators_from_passwords,
    )


def open_store(settings: FocusSettings) -> ConferenceStore:
    """The conference store of ``settings.state_dir`` (created on first use)."""
    dirs = (settings.blueprint_dir,) if settings.blueprint_dir is not None else ()
    return ConferenceStore.open(settings.state_dir, core_config(settings), blueprint_dirs=dirs)


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
            self._store.apply(Tick(now=datetime.now(UTC)), origin=Origin.CLOCK)
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


def transaction_timers(profile: SipProfile) -> TimerConfig:
    """The profile's RFC 3261 T1/T2/T4, for the focus UA and the bundled media server."""
    return TimerConfig(t1=profile.t1, t2=profile.t2, t4=profile.t4)


def sip_configs(settings: FocusSettings, listen: HostPort) -> tuple[UAConfig, TransportConfig]:
    """The focus UA's identity and its listener, from the profile."""
    profile = settings.profile
    ua = UAConfig(
        user="focus",
        user_agent=profile.user_agent,
        timers=transaction_timers(profile),
        methods=frozenset(
            {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE"}
        ),
        # The focus answers OPTIONS itself: a conference URI's answer names it isfocus.
        answer_options=False,
        # Join (RFC 3911), Replaces (RFC 3891) and session timers (RFC 4028) are the focus's:
        # a request that Requires them is not refused 420.
        supported=("join", "replaces", *(("timer",) if profile.session_timer else ())),
        # New out-of-dialog requests pass the overload gate first (focus.sip.overload).
        overload=profile.overload,
    )
    transport = TransportConfig(
        host=listen.host,
        udp_port=listen.port if "udp" in profile.transports else None,
        tcp_port=listen.port if "tcp" in profile.transports else None,
        parser=profile.parser,
    )
    return ua, transport


class MediaPlane:
    """The media server as the focus reaches it: SIP legs, the CFW client and the driver.
    ``server`` is the bundled media server when the process runs it."""

    def __init__(
        self,
        legs: MediaLegs,
        opener: SipChannelOpener,
        client: MediaControlClient,
        driver: MediaDriver,
        server: MediaServer | None,
    ) -> None:
        self.legs = legs
        self.opener = opener
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
        await self.opener.close()
        if self.server is not None:
            await self.server.close()


async def start_media(settings: FocusSettings, ua: UserAgent) -> MediaPlane:
    """The media plane: ``--media-server`` if given, else the bundled media server."""
    server: MediaServer | None = None
    uri = settings.media_server
    host = ua.local[next(iter(ua.local))][0]
    if uri is None:
        # The bundled media server, on loopback ports of its own, reached like any other.
        server = await start_media_server(
            MediaServerConfig(
                sip_host=host,
                sip_port=0,
                rtp_ports=settings.rtp_ports,
                timers=transaction_timers(settings.profile),  # one process, one set of timers
            )
        )
        uri = server.sip_uri
    legs = MediaLegs(ua, uri, session_timer=settings.profile.session_timer)
    opener = SipChannelOpener(ua, uri, address=host)
    client = MediaControlClient(opener)
    # Its on_dtmf (keypad digits), on_refused and on_unjoined callbacks are the focus's,
    # set when ConferenceFocus is built on it (the focus comes after the media plane).
    driver = MediaDriver(client, media_timeout=settings.profile.media_timeout or None)
    plane = MediaPlane(legs, opener, client, driver, server)
    plane.start()
    log.info("media server %s", uri)
    return plane


@dataclass
class Running:
    """The pieces of a running process (tests and benchmarks look inside)."""

    store: ConferenceStore
    ccmp: CcmpServer
    ua: UserAgent | None = None
    media: MediaPlane | None = None
    focus: ConferenceFocus | None = None


@contextlib.asynccontextmanager
async def serving(settings: FocusSettings) -> AsyncIterator[Running]:
    """Everything started in order, stopped in reverse when the block exits."""
    loop = asyncio.get_running_loop()
    store = open_store(settings)
    clock = ScheduleClock(store, loop)
    ua: UserAgent | None = None
    media: MediaPlane | None = None
    focus: ConferenceFocus | None = None
    try:
        clock.tick()
        if settings.sip_listen is not None:
            ua_config, transport_config = sip_configs(settings, settings.sip_listen)
            try:
                ua = await UserAgent.start(ua_config, transport_config)
            except OSError as exc:
                raise SettingsError(
                    f"cannot listen for SIP on {settings.sip_listen}: {exc.strerror}"
                ) from None
            for kind, (host, port) in ua.local.items():
                log.info("SIP focus listening on %s %s:%d", kind.value, host, port)
            log.info("conference factory URI %s", settings.profile.factory_uri)
            media = await start_media(settings, ua)
            # Until the control channel is up every new call is refused 503 (the overload
            # gate); give it a moment so a freshly started focus takes calls at once.
            with contextlib.suppress(ChannelDown):
                await media.client.wait_up(MEDIA_STARTUP_WAIT)
            focus = ConferenceFocus(
                store, ua, media.legs, media.driver, FocusConfig(settings.profile, settings.domain)
            )
        ccmp = await start_ccmp(store, ccmp_config(settings))
        try:
            yield Running(store, ccmp, ua, media, focus)
        finally:
            await ccmp.close()
    finally:
        if focus is not None:
            await focus.close()
        if media is not None:
            await media.close()
        if ua is not None:
            await ua.close()
        clock.close()
        store.close()


async def run(settings: FocusSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set, or SIGTERM/SIGINT arrives when no event is given."""
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(settings):
            await stop.wait()
            log.info("stopping")
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    log.info("stopped")
