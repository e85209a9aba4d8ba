"""The application server's end of a CFW channel to one media server (RFC 6230), asyncio.

A thin adapter over :class:`~mediactrl.cfw.connection.CfwConnection` as the client side: it
opens the TCP connection to where the SIP/SDP set-up said (COMEDIA active side, RFC 6230 s4),
sends SYNC with our cfw-id as Dialog-ID and the packages we want, lets the connection send
K-ALIVE, arms ONE ``loop.call_at`` timer from ``get_timer()``, and turns transactions into
futures: ``await client.control(package, body)`` gives the 200 answer, or the final REPORT of a
202-extended transaction.  CONTROLs from the media server (mixer <event>s, and msc-ivr
<event>s when RFC 6231's package was negotiated too) are answered 200 and handed to callbacks.
msc-ivr/1.0 is offered besides msc-mixer/1.0 but optional: a mixer-only server still works
(:meth:`MediaControlClient.has_package` tells what the current channel negotiated).

The SIP INVITE that negotiates the channel is not done here: a caller-supplied async *channel
opener* returns the :class:`ChannelTarget` (host, port, cfw-id) each time a channel is needed,
so the same client runs over a direct opener (tests, static configuration) or the SIP UA.

When the channel drops, the client reconnects with bounded exponential backoff, re-SYNCs
(openers keep their cfw-id, so the media server sees the same channel come back and hands its
mixers over, RFC 6505 s7), and runs the ``on_channel_up`` hook (the driver audits the server
there and re-creates what it wants).  SIP calls are not touched: only the control channel is
re-established.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mediactrl.cfw.connection import CfwConfig, CfwConnection, Side
from mediactrl.cfw.errors import LocalProtocolError
from mediactrl.cfw.events import (
    BadMessageReceived,
    ChannelClosed,
    ControlReceived,
    Event,
    KeepAliveMissed,
    ReportReceived,
    ResponseReceived,
    StrayResponse,
    SyncCompleted,
    SyncRefused,
    TransactionTimedOut,
)
from mediactrl.cfw.message import ReportStatus
from mediactrl.cfw.parser import ParserLimits
from mediactrl.cfw.sdp import build_offer, parse_cfw_sdp, validate_answer
from mediactrl.ivr import codec as ivr_codec
from mediactrl.ivr import model as ivr
from mediactrl.mixer import model as m
from mediactrl.mixer.codec import CONTENT_TYPE, PACKAGE, MixerDecodeError, decode, encode

__all__ = [
    "ChannelDown",
    "ChannelOffer",
    "ChannelOpener",
    "ChannelTarget",
    "ClientConfig",
    "ControlAnswer",
    "ControlError",
    "ControlTimeout",
    "MediaControlClient",
    "channel_offer",
    "direct_opener",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelTarget:
    """Where and as whom to open a channel: the media server's TCP address from its SDP answer
    and our cfw-id (RFC 6230 s4) to send as Dialog-ID."""

    host: str
    port: int
    dialog_id: str


ChannelOpener = Callable[[], Awaitable[ChannelTarget]]
"""Negotiates a channel (normally a SIP INVITE with the COMEDIA SDP of RFC 6230 s4)."""


@dataclass(frozen=True)
class ChannelOffer:
    """Our half of the SDP negotiation of a channel: the offer to put in the INVITE."""

    cfw_id: str
    sdp: str

    def target(self, answer_sdp: str) -> ChannelTarget:
        """Where to connect, from the media server's SDP answer (RFC 6230 s4.2).

        Raises :class:`~focus.sip.sdp.SdpError` when the answer does not complete the
        offer (rejected, not passive, same cfw-id, other transport).
        """
        offer = parse_cfw_sdp(self.sdp)
        answer = parse_cfw_sdp(answer_sdp)
        validate_answer(offer, answer)
        # The SYNC carries the cfw-id of OUR offer as Dialog-ID (s6).
        return ChannelTarget(answer.address, answer.port, self.cfw_id)


def channel_offer(address: str, *, cfw_id: str | None = None) -> ChannelOffer:
    """A fresh COMEDIA offer (setup:active, connection:new) with ``cfw_id`` or a new one (s4.1).

    A SIP channel opener is then: ``offer = channel_offer(my_ip, cfw_id=mine)``; send an
    INVITE with ``offer.sdp``; ``return offer.target(answer_sdp)``.  Offer the same cfw-id on
    every reconnect: it names the channel, and the channel owns its mixers (RFC 6505 s7).
    """
    cfw_id = cfw_id or secrets.token_hex(6)
    sdp = build_offer(address=address, cfw_id=cfw_id, session_id=secrets.randbits(31))
    return ChannelOffer(cfw_id, sdp)


def direct_opener(host: str, port: int, dialog_id: str) -> ChannelOpener:
    """An opener for a statically known media server (no SIP): always the same target."""
    target = ChannelTarget(host, port, dialog_id)

    async def open_channel() -> ChannelTarget:
        return target

    return open_channel


@dataclass(frozen=True)
class ClientConfig:
    """Settings of the client.

    packages: offered in SYNC (s6.3.4); the server answers the subset it has.
    keep_alive: seconds proposed in SYNC (s6.3.4.1), None for no keep-alive.
    transaction_timeout: RFC 6230's Transaction-Timeout (s6.1); a request fails after twice it.
    connect_timeout: bound on one TCP connect plus SYNC.
    backoff_initial, backoff_max: reconnect delays double from the first up to the second.
    max_attempts: consecutive failed (re)connections before giving up; None: never give up.
    limits: CFW parser limits.
    """

    packages: tuple[str, ...] = (PACKAGE, ivr_codec.PACKAGE)
    keep_alive: int | None = 100
    transaction_timeout: float = 10.0
    connect_timeout: float = 5.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    max_attempts: int | None = None
    limits: ParserLimits = field(default_factory=ParserLimits)


@dataclass(frozen=True)
class ControlAnswer:
    """The outcome of a CONTROL: ``code`` 200 and the body of the answer, which is the 200's
    body, or the body of the final REPORT of a 202-extended transaction (s6.3.2)."""

    code: int
    content_type: str | None
    body: bytes
    extended: bool = False


class ControlError(Exception):
    """The media server refused a CONTROL at the framework level (RFC 6230 s7 ``code``), or
    answered 200 with a body that is not a valid answer (``reason`` says so)."""

    def __init__(self, code: int, trans_id: str, reason: str | None = None) -> None:
        super().__init__(reason or f"CONTROL {trans_id} answered {code}")
        self.code = code
        self.trans_id = trans_id
        self.reason = reason


class ControlTimeout(Exception):
    """No (final) answer in time (s6.1); the outcome on the media server is unknown."""


class ChannelDown(Exception):
    """There is no open channel (not yet connected, or it dropped mid-transaction)."""


EventCallback = Callable[[m.Event], None]
IvrEventCallback = Callable[[ivr.Event], None]
ChannelHook = Callable[[], Awaitable[None]]


class MediaControlClient:
    """One CFW channel to one media server, kept open for as long as the client runs."""

    def __init__(
        self,
        opener: ChannelOpener,
        config: ClientConfig | None = None,
        *,
        on_event: EventCallback | None = None,
        on_channel_up: ChannelHook | None = None,
        on_channel_down: Callable[[str], None] | None = None,
        on_ivr_event: IvrEventCallback | None = None,
    ) -> None:
        self.config = config or ClientConfig()
        self._opener = opener
        self.on_event = on_event
        self.on_ivr_event = on_ivr_event
        self.packages: tuple[str, ...] = ()  # negotiated on the current channel
        self.on_channel_up = on_channel_up
        self.on_channel_down = on_channel_down
        self._conn: CfwConnection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._pending: dict[str, asyncio.Future[ControlAnswer]] = {}
        self._sync_done: asyncio.Future[None] | None = None
        self._closed_event = asyncio.Event()
        self._up = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._hook_task: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()  # read loops; each ends with its socket
        self._stopping = False
        self.connections_made = 0  # successful SYNCs so far (diagnostics)
        self.failure: BaseException | None = None  # why the client gave up, if it did

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Starts the connect/reconnect loop and waits for the first open channel.

        Raises :class:`ChannelDown` when the first ``max_attempts`` all failed.
        """
        if self._runner is not None:
            raise RuntimeError("client already started")
        self._runner = asyncio.create_task(self._run(), name="cfw-client")
        await self.wait_up()

    async def wait_up(self, timeout: float | None = None) -> None:
        """Waits until a channel is open (or raises :class:`ChannelDown` if the client gave up)."""
        up: asyncio.Task[bool] = asyncio.create_task(self._up.wait())
        waiters: set[asyncio.Future[object]] = {up}  # type: ignore[arg-type]
        if self._runner is not None:
            waiters.add(self._runner)  # type: ignore[arg-type]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
        if not self._up.is_set():
            raise ChannelDown(f"no channel: {self.failure}" if self.failure else "no channel")

    def has_package(self, package: str) -> bool:
        """True if the open channel negotiated ``package`` (e.g. ``msc-ivr/1.0``)."""
        return self.is_up and package in self.packages

    @property
    def is_up(self) -> bool:
        """True while a channel is open (SYNC done)."""
        return self._up.is_set()

    async def close(self) -> None:
        """Closes the channel and stops reconnecting."""
        self._stopping = True
        self._drop("closed by the application")
        for task in (self._runner, self._hook_task, *self._readers):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._runner = None

    def abort_channel(self) -> None:
        """Drops the current channel as if the network failed; the client reconnects."""
        self._drop("aborted locally")

    # ----------------------------------------------------------------- transactions
    async def control(
        self,
        package: str,
        body: bytes,
        *,
        content_type: str = CONTENT_TYPE,
        timeout: float | None = None,
    ) -> ControlAnswer:
        """Sends a CONTROL; returns its 200 answer, or the final REPORT of a 202.

        Raises :class:`ControlError` for a framework error code, :class:`ControlTimeout`,
        :class:`ChannelDown` when there is no channel or it drops before the answer.
        """
        conn = self._conn
        if conn is None or not self._up.is_set():
            raise ChannelDown("no open channel")
        loop = asyncio.get_running_loop()
        try:
            trans_id = conn.control(package, content_type, body, loop.time())
        except LocalProtocolError as exc:
            raise ChannelDown(str(exc)) from exc
        future: asyncio.Future[ControlAnswer] = loop.create_future()
        self._pending[trans_id] = future
        self._flush()
        self._rearm()
        try:
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise ControlTimeout(f"CONTROL {trans_id}: no answer in {timeout} s") from exc
        finally:
            self._pending.pop(trans_id, None)

    async def mixer(
        self, request: m.MixerMessage, *, timeout: float | None = None
    ) -> m.MixerMessage:
        """Sends one msc-mixer/1.0 request; returns the decoded <response>/<auditresponse>."""
        answer = await self.control(PACKAGE, encode(request), timeout=timeout)
        try:
            return decode(answer.body)
        except MixerDecodeError as exc:
            reason = f"the media server's answer is no msc-mixer body: {exc.reason}"
            raise ControlError(answer.code, "?", reason) from exc

    async def ivr(self, request: ivr.IvrMessage, *, timeout: float | None = None) -> ivr.Response:
        """Sends one msc-ivr/1.0 request; returns the decoded <response>.

        Raises :class:`ControlError` with code 420 when the channel did not negotiate
        msc-ivr/1.0 (a mixer-only media server), besides what :meth:`control` raises.
        """
        if self.is_up and ivr_codec.PACKAGE not in self.packages:
            raise ControlError(420, "-", f"{ivr_codec.PACKAGE} was not negotiated")
        answer = await self.control(
            ivr_codec.PACKAGE,
            ivr_codec.encode(request),
            content_type=ivr_codec.CONTENT_TYPE,
            timeout=timeout,
        )
        try:
            message = ivr_codec.decode(answer.body)
        except ivr_codec.IvrDecodeError as exc:
            reason = f"the media server's answer is no msc-ivr body: {exc.reason}"
            raise ControlError(answer.code, "?", reason) from exc
        if not isinstance(message, ivr.Response):
            raise ControlError(answer.code, "?", f"answered with {type(message).__name__}")
        return message

    # ----------------------------------------------------------------- connect loop
    async def _run(self) -> None:
        failures = 0
        delay = self.config.backoff_initial
        while not self._stopping:
            try:
                await asyncio.wait_for(self._connect(), self.config.connect_timeout)
            except Exception as exc:  # the opener (a SIP INVITE) may fail in any way: retry
                self._drop(f"connect failed: {exc}")
                failures += 1
                if self.config.max_attempts is not None and failures >= self.config.max_attempts:
                    self.failure = exc
                    log.warning("giving up on the media server after %d attempts", failures)
                    return
                log.info("channel set-up failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max)
                continue
            failures = 0
            delay = self.config.backoff_initial
            self.connections_made += 1
            self._up.set()
            if self.on_channel_up is not None:
                self._hook_task = asyncio.create_task(self._channel_up_hook())
            await self._closed_event.wait()
            if not self._stopping:
                await asyncio.sleep(delay)

    async def _channel_up_hook(self) -> None:
        assert self.on_channel_up is not None
        try:
            await self.on_channel_up()
        except (ChannelDown, ControlTimeout, ControlError) as exc:
            # The channel dropped again or the server misbehaved: the next channel retries.
            log.info("channel-up work interrupted: %s", exc)

    async def _connect(self) -> None:
        target = await self._opener()
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(target.host, target.port)
        cfw = CfwConfig(
            packages=self.config.packages,
            dialog_id=target.dialog_id,
            keep_alive=self.config.keep_alive,
            transaction_timeout=self.config.transaction_timeout,
            limits=self.config.limits,
        )
        self._conn = CfwConnection(Side.CLIENT, cfw, now=loop.time())
        self._writer = writer
        self._closed_event = asyncio.Event()
        self._sync_done = loop.create_future()
        reading = asyncio.create_task(self._read_loop(reader, self._conn))
        self._readers.add(reading)
        reading.add_done_callback(self._readers.discard)
        self._conn.sync(loop.time())
        self._flush()
        self._rearm()
        await self._sync_done

    async def _read_loop(self, reader: asyncio.StreamReader, conn: CfwConnection) -> None:
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                data = b""
            if conn is not self._conn:
                return  # a newer channel replaced this one
            if not data:
                conn.connection_lost()
                self._pump()
                return
            conn.receive_data(data, asyncio.get_running_loop().time())
            self._pump()

    # ----------------------------------------------------------------- plumbing
    def _flush(self) -> None:
        if self._conn is None or self._writer is None:
            return
        data = self._conn.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    def _rearm(self) -> None:
        deadline = self._conn.get_timer() if self._conn is not None else None
        if self._timer is not None and (deadline is None or self._timer.when() != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._conn is not None:
            self._conn.handle_timer(asyncio.get_running_loop().time())
            self._pump()

    def _pump(self) -> None:
        conn = self._conn
        if conn is None:
            return
        while (event := conn.next_event()) is not None:
            self._handle(conn, event)
        self._flush()
        if conn.closed:
            self._drop("channel closed")
        else:
            self._rearm()

    def _drop(self, reason: str) -> None:
        """Ends the current channel: fails what waits on it, lets the run loop reconnect."""
        was_up = self._up.is_set()
        self._up.clear()
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sync_done is not None and not self._sync_done.done():
            self._sync_done.set_exception(ChannelDown(reason))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChannelDown(reason))
        self._pending.clear()
        self._closed_event.set()
        if was_up and self.on_channel_down is not None:
            self.on_channel_down(reason)

    # ----------------------------------------------------------------- events
    def _resolve(self, trans_id: str, answer: ControlAnswer | BaseException) -> None:
        future = self._pending.get(trans_id)
        if future is None or future.done():
            return
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)

    def _handle(self, conn: CfwConnection, event: Event) -> None:
        if isinstance(event, SyncCompleted):
            self.packages = event.packages
            if self._sync_done is not None and not self._sync_done.done():
                self._sync_done.set_result(None)
        elif isinstance(event, SyncRefused):
            if event.code == 422:
                # No common package (s6.3.4.2): nothing narrower to offer from our side.
                conn.close()
            log.warning("SYNC refused with %s", event.code)
        elif isinstance(event, ResponseReceived):
            if event.extended:
                return  # 202: the answer comes in the final REPORT
            if event.code == 200:
                answer = ControlAnswer(event.code, event.content_type, event.body)
                self._resolve(event.trans_id, answer)
            else:
                self._resolve(event.trans_id, ControlError(event.code, event.trans_id))
        elif isinstance(event, ReportReceived):
            if event.status is ReportStatus.TERMINATE:
                answer = ControlAnswer(200, event.content_type, event.body, extended=True)
                self._resolve(event.trans_id, answer)
        elif isinstance(event, TransactionTimedOut):
            self._resolve(event.trans_id, ControlTimeout(f"{event.method} {event.trans_id}"))
        elif isinstance(event, ControlReceived):
            self._on_server_control(conn, event)
        elif isinstance(event, KeepAliveMissed):
            log.warning("media server missed keep-alive")
        elif isinstance(event, ChannelClosed):
            log.info("channel closed: %s", event.reason)
        elif isinstance(event, BadMessageReceived | StrayResponse):
            log.info("ignored from media server: %s", event)

    def _on_server_control(self, conn: CfwConnection, event: ControlReceived) -> None:
        if event.package.split("/")[0] == ivr_codec.PACKAGE.split("/")[0]:
            self._on_ivr_control(conn, event)
            return
        if event.package.split("/")[0] != PACKAGE.split("/")[0]:
            conn.respond(event.trans_id, 420)
            return
        try:
            message = decode(event.body)
        except MixerDecodeError as exc:
            log.info("undecodable event from media server: %s", exc.reason)
            conn.respond(event.trans_id, 400)
            return
        conn.respond(event.trans_id, 200)  # RFC 7058 s6.4.3 L2: the event is acknowledged
        if not isinstance(message, m.Event):
            log.info("unexpected %s from media server", type(message).__name__)
            return
        if self.on_event is not None:
            self.on_event(message)

    def _on_ivr_control(self, conn: CfwConnection, event: ControlReceived) -> None:
        try:
            message = ivr_codec.decode(event.body)
        except ivr_codec.IvrDecodeError as exc:
            log.info("undecodable IVR event from media server: %s", exc.reason)
            conn.respond(event.trans_id, 400)
            return
        conn.respond(event.trans_id, 200)
        if not isinstance(message, ivr.Event):
            log.info("unexpected %s from media server", type(message).__name__)
            return
        if self.on_ivr_event is not None:
            self.on_ivr_event(message)
