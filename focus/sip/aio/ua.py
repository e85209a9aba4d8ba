"""The SIP user agent's asyncio face: :class:`UserAgent`, a :class:`focus.sip.uacore.UACore`
on a :class:`focus.sip.aio.transport.SipTransport`.

The core decides everything (see :mod:`focus.sip.uacore`); this adapter only reads the loop's
clock into ``now``, turns the core's events into resolved futures (``await ua.invite(...)``,
``await ua.request(...)``) and into ``on_event`` calls, and flushes the transport after
every action. Its events, calls and errors are the core's types.

Using it::

    def on_event(ua: UserAgent, event: UAEvent) -> None:   # runs inside the stack: no await
        match event:
            case IncomingCall(call=call, offer=offer):
                ua.accept(call, make_answer(offer))            # or ua.reject(call, 486)
            case IncomingRequest(request=req) if req.method == "MESSAGE":
                ua.respond(req, 200)
            case CallEnded(call=call, by_peer=by_peer):
                ...

    ua = await UserAgent.start(UAConfig(user="focus", methods=frozenset({...})),
                               TransportConfig(host="127.0.0.1", udp_port=5060, tcp_port=5060),
                               on_event=on_event)
    call = await ua.invite("sip:ms@127.0.0.1:5070", b"")     # 3PCC: offerless INVITE
    ua.ack(call, answer_to(call.remote_sdp))                  # answer in the ACK
    await ua.refer(call, "sip:carol@127.0.0.1:5080")          # -> 202; NOTIFYs as events
    response, dialog = await ua.subscribe("sip:conf@127.0.0.1", "conference")
    await ua.bye(call)
    await ua.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from focus.sip.aio.transport import SipTransport, TransportConfig
from focus.sip.dialog import Dialog
from focus.sip.events import TransactionKey, Transmit
from focus.sip.flow import Flow, TransportFailure, TransportKind
from focus.sip.headers import NameAddr
from focus.sip.message import Request, Response
from focus.sip.uacore import (
    Call,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallEndedError,
    CallFailed,
    CallFailedError,
    CallState,
    RequestCompleted,
    UAConfig,
    UACore,
    UACounts,
    UAError,
    UAEvent,
)
from focus.sip.uri import URI, format_hostport

__all__ = ["UserAgent"]

log = logging.getLogger(__name__)


class UserAgent:
    """A :class:`UACore` on a :class:`SipTransport`, with awaitable requests and events.

    Events reach the application through ``on_event`` (called synchronously, so it may act
    on the core at once -- e.g. accept a call) and/or ``async for event in ua.events()``.
    Use :meth:`start` and :meth:`close` (or ``async with``).
    """

    def __init__(
        self,
        core: UACore,
        transport: SipTransport,
        on_event: Callable[[UserAgent, UAEvent], None] | None,
    ) -> None:
        self.core = core
        self.transport = transport
        self.on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[UAEvent] | None = None
        self._invites: dict[Call, asyncio.Future[Call]] = {}
        self._failures: dict[Call, tuple[int, str]] = {}  # call -> why its INVITE failed
        self._requests: dict[TransactionKey, asyncio.Future[RequestCompleted]] = {}
        self._confirmed: dict[Call, asyncio.Future[bytes]] = {}
        # re-INVITEs awaited with reinvite(), by (Call-ID, CSeq number)
        self._reinvites: dict[tuple[str, int], asyncio.Future[Response]] = {}
        self._dispatching = False

    @classmethod
    async def start(
        cls,
        config: UAConfig | None = None,
        transport_config: TransportConfig | None = None,
        on_event: Callable[[UserAgent, UAEvent], None] | None = None,
    ) -> UserAgent:
        config = config or UAConfig()
        transport_config = transport_config or TransportConfig()
        host = transport_config.host.strip("[]")
        if host in ("0.0.0.0", "::"):  # noqa: S104 -- checking, not binding
            # Via sent-by and Contact must name an address peers can reach (s18.1.1, s8.1.1.8).
            raise UAError(f"listen on a concrete address, not {host}: it goes into Via and Contact")
        holder: list[UserAgent] = []

        class _Bridge:
            """Lets the transport start before the core knows its bound addresses; what
            arrives in between (while the TCP listener is still being set up) is dropped,
            as if lost -- the peer retransmits."""

            core: UACore | None = None

            def receive_message(self, m: Request | Response, s: Flow, now: float) -> None:
                if self.core is not None and holder:
                    self.core.receive_message(m, s, now)
                    holder[0]._dispatch()

            def transport_failed(self, f: TransportFailure, now: float) -> None:
                if self.core is not None and holder:
                    self.core.transport_failed(f, now)
                    holder[0]._dispatch()

            def handle_timer(self, now: float) -> None:
                if self.core is not None and holder:
                    self.core.handle_timer(now)
                    holder[0]._dispatch()

            def get_timer(self) -> float | None:
                return self.core.get_timer() if self.core is not None else None

            def outgoing(self) -> list[Transmit]:
                return self.core.outgoing() if self.core is not None else []

        bridge = _Bridge()
        transport = await SipTransport.start(bridge, transport_config)
        local: dict[TransportKind, tuple[str, int]] = {}
        if transport.local_udp is not None:
            local[TransportKind.UDP] = transport.local_udp
        if transport.local_tcp is not None:
            local[TransportKind.TCP] = transport.local_tcp
        if transport.local_tls is not None:
            local[TransportKind.TLS] = transport.local_tls
        core = UACore(config, local)
        bridge.core = core
        ua = cls(core, transport, on_event)
        holder.append(ua)
        if core.gate is not None:
            # The gate measures how busy the loop is by how late our one timer fires.
            transport.on_lag = core.gate.note_lag
            transport.flush()
        return ua

    def set_load_gate(self, busy: Callable[[], str | None]) -> None:
        """The application's say in taking new calls: ``busy()`` returns why a new INVITE
        cannot be taken now (it is then answered 503 before any event; Retry-After only to a
        phone calling directly, RFC 7339 s5.10.2), or ``None``. Needs ``UAConfig.overload``
        (the gate's limits)."""
        if self.core.gate is None:
            raise UAError("set_load_gate needs UAConfig.overload")
        self.core.gate.busy = busy

    async def __aenter__(self) -> UserAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.transport.close()
        futures: list[asyncio.Future[Any]] = [
            *self._invites.values(),
            *self._requests.values(),
            *self._confirmed.values(),
            *self._reinvites.values(),
        ]
        for fut in futures:
            if not fut.done():
                fut.cancel()

    def counts(self) -> UACounts:
        """What the UA holds now (:meth:`UACore.counts`), with the futures callers await."""
        awaited = (
            len(self._invites)
            + len(self._failures)
            + len(self._requests)
            + len(self._confirmed)
            + len(self._reinvites)
        )
        return dataclasses.replace(self.core.counts(), awaited=awaited)

    @property
    def local(self) -> Mapping[TransportKind, tuple[str, int]]:
        """The bound (host, port) of each transport we listen on."""
        return MappingProxyType(self.core.local)

    @property
    def supported(self) -> tuple[str, ...]:
        """The option tags we implement (RFC 3261 s19.2), e.g. for a Supported header."""
        return self.core.config.supported

    @property
    def allow(self) -> str:
        """The Allow header value: every method we handle (RFC 3261 s20.5)."""
        return self.core.allow

    def contact_for(self, transport: TransportKind) -> NameAddr:
        """Our own Contact for ``transport`` (see :meth:`UACore.contact_for`)."""
        return self.core.contact_for(transport)

    def dialog_for(self, request: Request) -> Dialog | None:
        """The dialog an in-dialog ``request`` belongs to, or a dialog it created (SUBSCRIBE,
        REFER)."""
        return self.core.dialogs.for_request(request)

    def adopt(self, dialog: Dialog, *, request: Request | None = None) -> None:
        """Route future requests of ``dialog`` through the core (see :meth:`UACore.adopt`)."""
        self.core.adopt(dialog, request=request)

    @property
    def now(self) -> float:
        return self._loop.time()

    def local_uri(self, transport: TransportKind = TransportKind.UDP) -> str:
        host, port = self.core.local[transport]
        suffix = "" if transport is TransportKind.UDP else f";transport={transport.value.lower()}"
        return f"sip:{self.core.config.user}@{format_hostport(host, port)}{suffix}"

    # -- events

    def events(self) -> AsyncIterator[UAEvent]:
        """Every event from now on, as an async iterator (in addition to ``on_event``).

        All iterators share one queue: use one consumer."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        queue = self._queue

        async def gen() -> AsyncIterator[UAEvent]:
            while True:
                yield await queue.get()

        return gen()

    def flush(self) -> None:
        """Deliver pending events and send what the core queued: call this after driving
        :attr:`core` directly (its sans-IO methods only queue)."""
        self._dispatch()
        self.transport.flush()

    def _dispatch(self) -> None:
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while (event := self.core.next_event()) is not None:
                self._resolve(event)
                if self.on_event is not None:
                    try:
                        self.on_event(self, event)
                    except Exception:
                        log.exception("on_event handler failed for %r", event)
                if self._queue is not None:
                    self._queue.put_nowait(event)
        finally:
            self._dispatching = False

    def _reinvite_done(self, key: tuple[str, int], response: Response) -> None:
        fut = self._reinvites.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(response)

    def _confirm_failed(self, call: Call, reason: str) -> None:
        cfut = self._confirmed.pop(call, None)
        if cfut is not None and not cfut.done():
            cfut.set_exception(CallEndedError(call, reason))

    def _resolve(self, event: UAEvent) -> None:
        match event:
            case CallAnswered(call=call, response=response):
                fut = self._invites.pop(call, None)
                if fut is not None and not fut.done():
                    fut.set_result(call)
                self._reinvite_done((call.call_id, response.cseq.number), response)
            case CallFailed(call=call, status=status, reason=reason):
                self._confirm_failed(call, f"{status} {reason}")
                fut = self._invites.pop(call, None)
                if fut is not None and not fut.done():
                    # A result, not an exception: nobody may be waiting (dial without
                    # answered); answered() turns it into CallFailedError.
                    self._failures[call] = (status, reason)
                    fut.set_result(call)
            case CallEnded(call=call, reason=reason):
                self._confirm_failed(call, reason)
                for key in [k for k in self._reinvites if k[0] == call.call_id]:
                    lost = self._reinvites.pop(key)
                    if not lost.done():
                        lost.set_exception(UAError(f"{call!r} ended during a re-INVITE: {reason}"))
            case CallConfirmed(call=call, body=body):
                cfut = self._confirmed.pop(call, None)
                if cfut is not None and not cfut.done():
                    cfut.set_result(body)
            case RequestCompleted(key=key, request=request, response=response):
                rfut = self._requests.pop(key, None)
                if rfut is not None and not rfut.done():
                    rfut.set_result(event)
                if request.method == "INVITE":
                    self._reinvite_done((request.call_id, request.cseq.number), response)
            case _:
                pass

    # -- actions (each drives the core, then flushes the transport)

    async def invite(
        self,
        target: str | URI,
        body: bytes = b"",
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/sdp",
        contact: NameAddr | str | None = None,
        from_user: str | None = None,
    ) -> Call:
        """Call ``target``; returns the answered call (ACK already sent unless ``body`` is
        empty: then send the answer with :meth:`ack`). Raises :class:`CallFailedError`.
        ``contact`` and ``from_user`` as in :meth:`UACore.invite`."""
        call = self.dial(
            target,
            body,
            headers=headers,
            content_type=content_type,
            contact=contact,
            from_user=from_user,
        )
        return await self.answered(call)

    def dial(
        self,
        target: str | URI,
        body: bytes = b"",
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/sdp",
        contact: NameAddr | str | None = None,
        from_user: str | None = None,
    ) -> Call:
        """Start a call and return it at once (e.g. to CANCEL it with :meth:`bye` while it
        rings); :meth:`answered` waits for the outcome."""
        call = self.core.invite(
            target,
            body,
            self.now,
            headers=headers,
            content_type=content_type,
            contact=contact,
            from_user=from_user,
        )
        self._invites[call] = self._loop.create_future()
        self.flush()
        return call

    async def answered(self, call: Call) -> Call:
        """Wait for the final response to :meth:`dial`'s INVITE: the call once answered, or
        :class:`CallFailedError` (487 after a CANCEL, 408 on timeout...)."""
        fut = self._invites.get(call)
        if fut is not None:
            await fut
        failure = self._failures.pop(call, None)
        if failure is not None:
            raise CallFailedError(call, *failure)
        if call.state is CallState.ENDED and call.dialog is None:
            raise CallFailedError(call, call.final_status or 0, call.end_reason)
        return call

    def ack(self, call: Call, body: bytes, *, content_type: str = "application/sdp") -> None:
        self.core.ack(call, body, self.now, content_type=content_type)
        # Our ACK confirms a call we placed (3PCC): nobody else will tell confirmed().
        cfut = self._confirmed.pop(call, None)
        if cfut is not None and not cfut.done():
            cfut.set_result(b"")
        self.flush()

    def accept(
        self,
        call: Call,
        body: bytes,
        *,
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | str | None = None,
    ) -> None:
        """Answer an INVITE or re-INVITE we received (see :meth:`UACore.accept`)."""
        self.core.accept(
            call, body, self.now, content_type=content_type, headers=headers, contact=contact
        )
        self.flush()

    async def confirmed(self, call: Call) -> bytes:
        """Wait for the ACK of our 2xx (returns its body: the answer in 3PCC); for a call
        we placed with an offerless INVITE, for our own :meth:`ack` (returns ``b""``).

        Raises :class:`CallEndedError` if the call ends (or its INVITE fails) first -- no
        ACK within 64*T1 ends it with BYE (s13.3.1.4) -- or has ended already."""
        if call.state is CallState.CONFIRMED:
            return call.remote_sdp if not call.outgoing else b""
        if call.state is CallState.ENDED:
            raise CallEndedError(call, call.end_reason)
        fut = self._confirmed.get(call)
        if fut is None or fut.done():  # done: an earlier waiter was cancelled
            fut = self._confirmed[call] = self._loop.create_future()
        return await fut

    def progress(
        self,
        call: Call,
        status: int = 180,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | str | None = None,
    ) -> None:
        """Send 180/183 ... for an INVITE we received (see :meth:`UACore.progress`)."""
        self.core.progress(call, self.now, status, reason, headers=headers, contact=contact)
        self.flush()

    def reject(
        self,
        call: Call,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Refuse an INVITE or re-INVITE we received (see :meth:`UACore.reject`)."""
        self.core.reject(call, status, self.now, reason, headers=headers)
        self.flush()

    async def reinvite(
        self,
        call: Call,
        body: bytes,
        *,
        content_type: str = "application/sdp",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Send a re-INVITE in a confirmed call (s14.1) and wait for its final response.

        A 2xx is returned once ACKed (by us; with an empty ``body`` the peer's offer is in
        it and the application answers with :meth:`ack`); a non-2xx (491 glare, 488 ...)
        leaves the call as it was (s14.1). Raises :class:`UAError` if the call is not
        confirmed or another INVITE is pending in it."""
        self.core.reinvite(call, body, self.now, content_type=content_type, headers=headers)
        fut: asyncio.Future[Response] = self._loop.create_future()
        self._reinvites[(call.call_id, call.invite.cseq.number)] = fut
        self.flush()
        return await fut

    def hang_up(self, call: Call) -> None:
        """End ``call`` without waiting for the peer's answer (BYE, CANCEL while it rings,
        480 while it is incoming; see :meth:`UACore.bye`): for a call that is over for us
        whatever the peer says."""
        self.core.bye(call, self.now)
        self.flush()

    def start_request(
        self,
        where: Dialog | str | URI,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> TransactionKey:
        """Send a non-INVITE request without waiting: its final response reaches
        ``on_event`` as :class:`RequestCompleted` with the returned key."""
        key = self.core.request(
            where, method, self.now, body=body, content_type=content_type, headers=headers
        )
        self.flush()
        return key

    def send_nowait(
        self, request: Request, dialog: Dialog | None = None, *, flow: Flow | None = None
    ) -> TransactionKey:
        """Send a request built elsewhere without waiting (see :meth:`UACore.send`)."""
        key = self.core.send(request, dialog, self.now, flow=flow)
        self.flush()
        return key

    async def bye(self, call: Call) -> Response | None:
        """End ``call``; returns the response to the BYE (or CANCEL), or None."""
        key = self.core.bye(call, self.now)
        if key is None:
            self.flush()
            return None
        return (await self._await(key)).response

    async def request(
        self,
        where: Dialog | str | URI,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Send any non-INVITE request and wait for its final response."""
        return (
            await self.transaction(
                where, method, body=body, content_type=content_type, headers=headers
            )
        ).response

    async def transaction(
        self,
        where: Dialog | str | URI,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> RequestCompleted:
        """Like :meth:`request`, returning the whole completion (with the dialog a
        SUBSCRIBE or REFER created)."""
        key = self.core.request(
            where, method, self.now, body=body, content_type=content_type, headers=headers
        )
        return await self._await(key)

    async def options(self, target: str | URI) -> Response:
        return await self.request(target, "OPTIONS")

    async def message(
        self, target: str | URI | Dialog, text: str, content_type: str = "text/plain"
    ) -> Response:
        return await self.request(target, "MESSAGE", body=text.encode(), content_type=content_type)

    async def refer(self, call: Call | Dialog, refer_to: str) -> Response:
        dialog = call.dialog if isinstance(call, Call) else call
        if dialog is None:
            raise UAError(f"{call!r} has no dialog yet")
        return await self.request(dialog, "REFER", headers=[("Refer-To", f"<{refer_to}>")])

    async def subscribe(
        self, target: str | URI | Dialog, event: str, expires: int = 3600, accept: str | None = None
    ) -> tuple[Response, Dialog | None]:
        """SUBSCRIBE (RFC 6665); a Dialog ``target`` refreshes (``expires=0`` ends it).
        Returns the final response and the subscription's dialog (NOTIFYs arrive in it as
        :class:`IncomingRequest`)."""
        headers = [("Event", event), ("Expires", str(expires))]
        if accept:
            headers.append(("Accept", accept))
        done = await self.transaction(target, "SUBSCRIBE", headers=headers)
        return done.response, done.dialog

    def respond(
        self,
        request: Request,
        status: int,
        *,
        reason: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.core.respond(
            request,
            status,
            self.now,
            reason=reason,
            body=body,
            content_type=content_type,
            headers=headers,
        )
        self.flush()

    def send_response(self, response: Response) -> None:
        """Send a response built elsewhere (see :meth:`UACore.send_response`)."""
        self.core.send_response(response, self.now)
        self.flush()

    def answer_with(self, request: Request, response: Response) -> None:
        """Send a response built elsewhere to a request we were handed, marking the request
        answered (see :meth:`UACore.answer_with`)."""
        self.core.answer_with(request, response, self.now)
        self.flush()

    async def send(
        self, request: Request, dialog: Dialog | None = None, *, flow: Flow | None = None
    ) -> Response:
        """Send a request built elsewhere (see :meth:`UACore.send`); awaits the response."""
        key = self.core.send(request, dialog, self.now, flow=flow)
        return (await self._await(key)).response

    async def _await(self, key: TransactionKey) -> RequestCompleted:
        fut: asyncio.Future[RequestCompleted] = self._loop.create_future()
        self._requests[key] = fut
        self.flush()
        # The response may already have been dispatched while we drove the core.
        return await fut
