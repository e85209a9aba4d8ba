"""The conference focus (RFC 4579): routes SIP events and core changes to the call flows.

:class:`ConferenceFocus` is the application of the focus's :class:`~focus.sip.aio.ua.UserAgent`
(its ``on_event``) and a subscriber of the :class:`~focus.core.store.ConferenceStore`. It
holds no call logic itself; each flow has its own module:

==========================  ===========================================================
:mod:`~focus.calls.dial_in`   a phone dials the factory or a conference: admission,
                              joining, Join/Replaces (RFC 4579 s5.2, s5.3, s5.8-5.10)
:mod:`~focus.calls.dial_out`  the focus calls someone in (s5.5, RFC 6504 s6.1) or REFERs
                              her to the conference (s5.6)
:mod:`~focus.calls.transfer`  REFER to the focus: dial in, remove, refer (s5.5, s5.7, s5.11)
:mod:`~focus.calls.hold`      re-INVITEs: hold and resume (RFC 3264 s8.4)
:mod:`~focus.calls.keypad`    RFC 4733 digits: the mute toggle
:mod:`~focus.calls.leaving`   BYE, CANCEL, hang-ups, the ad hoc end (s5.12)
:mod:`~focus.calls.recovery`  after a restart; a lost media leg re-established
:mod:`~focus.calls.events`    SUBSCRIBE: the conference event package (RFC 4575/6502)
:mod:`~focus.calls.chat`      MESSAGE to a conference or in a call's dialog
==========================  ===========================================================

A participant's life is the transition table of :mod:`~focus.calls.participant`; every call
is in the :class:`~focus.calls.registry.CallRegistry`. The media of a conference and its
sidebars are one plan (:mod:`focus.mediaplan`), refreshed after every core change of the
tree, the focus's own included. Core changes made by others (CCMP, the clock) are acted on: a
user removed gets a BYE, a deleted or ended conference ends every call in it, a user added
with a dialed-out endpoint is called, an allowed-users-list target with method refer or
dial-out is referred or called (RFC 4579 s5.6, RFC 6504 s5.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from focus.authority import Action
from focus.calls.chat import ChatRelay
from focus.calls.context import CallContext, FocusConfig
from focus.calls.dial_in import DialIn
from focus.calls.dial_out import DialOut
from focus.calls.events import ConferenceEvents
from focus.calls.hold import Hold
from focus.calls.keypad import Keypad
from focus.calls.leaving import Departures
from focus.calls.recovery import Recovery
from focus.calls.registry import CallRegistry
from focus.calls.roster import is_ad_hoc, media_status
from focus.calls.transfer import Transfers
from focus.core.changes import (
    Change,
    ConferenceDeactivated,
    ConferenceDeleted,
    ConferenceEnded,
    Origin,
    UserRemoved,
    UserUpdated,
)
from focus.core.store import ConferenceStore
from focus.eventpkg.limits import SubscriptionQuota
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.message import Request
from focus.sip.uacore import (
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallProgress,
    IncomingCall,
    IncomingRequest,
    RequestCompleted,
    UAEvent,
)
from mediactrl.driver import MediaDriver
from mediactrl.legs import MediaLegs

__all__ = ["ConferenceFocus"]

log = logging.getLogger(__name__)


class ConferenceFocus:
    """The focus's transaction user (see the module docstring). ``legs``/``driver`` ``None``:
    no media server, every INVITE is answered 503."""

    def __init__(
        self,
        store: ConferenceStore,
        ua: UserAgent,
        legs: MediaLegs | None,
        driver: MediaDriver | None,
        config: FocusConfig,
    ) -> None:
        self.store = store
        self.ua = ua
        self.config = config
        ctx = self.ctx = CallContext(store, ua, legs, driver, config)
        self.keypad = Keypad(ctx)
        self.departures = Departures(ctx, self.keypad)
        ctx.timers.on_expired = lambda p: self.departures.departed(p, send_bye=True)
        self.dial_in = DialIn(ctx, self.departures, self.keypad)
        self.dial_out = DialOut(ctx, self.departures, self.keypad)
        self.transfers = Transfers(ctx, self.dial_out, self.departures)
        self.hold = Hold(ctx)
        self.recovery = Recovery(ctx, self.departures, self.keypad)
        self.recovery.after_restart()
        ctx.timers.on_leg_lost = self.recovery.participant_leg_lost
        self._unsubscribe = store.subscribe(self._on_changes)
        ua.on_event = self.on_event
        profile = config.profile
        self.events = ConferenceEvents(
            store,
            ua,
            ctx.lookup_request,
            min_interval=profile.notify_interval,
            contact_for=lambda obj, kind: ctx.focus_contact(obj.uri, kind),
            min_expires=profile.min_expires,
            default_expires=profile.default_expires,
            max_expires=profile.max_expires,
            quota=SubscriptionQuota(
                profile.max_subscriptions_per_conference, profile.max_subscriptions_per_source
            ),
        )
        # The room's URI at our address (as in our isfocus Contacts): a reply reaches it.
        self.chat = ChatRelay(
            store,
            ua,
            ctx.lookup_request,
            lambda uri: str(ctx.focus_contact(uri, TransportKind.UDP).uri),
        )
        if ua.core.gate is not None:
            ua.set_load_gate(self.busy)
        if driver is not None:
            driver.on_refused = self.recovery.joins_refused
            driver.on_unjoined = self.recovery.unjoined
            driver.on_dtmf = self.keypad.on_dtmf
            driver.on_media_timeout = self._media_timeout

    def _media_timeout(self, connection: str) -> None:
        """The media server heard nothing from her for ``media_timeout`` seconds: the phone
        is gone; she leaves as if she had hung up (our BYE)."""
        p = self.calls.by_connection(connection)
        if p is not None and p.in_conference():
            log.info("no media from %s: ending the call", p.caller)
            self.ctx.spawn(self.departures.departed(p, send_bye=True), f"silent {p.caller}")

    # ---- what others ask of the focus

    @property
    def calls(self) -> CallRegistry:
        return self.ctx.calls

    @property
    def ad_hoc(self) -> frozenset[str]:
        """XCON-URIs of the conferences the factory created (core state, so a restart keeps
        them)."""
        return frozenset(o.uri for o in self.store.objects() if is_ad_hoc(o))

    def busy(self) -> str | None:
        """Why a new call cannot be taken now, or None (the UA's overload gate asks before
        an INVITE reaches dial-in: a refusal is a 503 at once, with no media work)."""
        ctx, profile = self.ctx, self.config.profile
        if ctx.driver is None or not ctx.driver.client.is_up:
            return "media server control channel down"
        if len(ctx.calls) >= profile.max_participants:
            return f"{len(ctx.calls)} participants"
        joining = ctx.calls.joining()
        if joining >= profile.max_joins_in_progress:
            return f"{joining} joins in progress"
        return None

    def sip_uri(self, conference_uri: str) -> str:
        """The SIP conference URI (in the profile's domain) of an XCON-URI."""
        return self.ctx.sip_uri(conference_uri)

    async def close(self) -> None:
        """Ends every call, removes their users, closes every leg."""
        self._unsubscribe()
        self.events.close()
        await self.chat.close()
        self.ctx.timers.close()
        await self.ctx.cancel_tasks()
        # Concurrent and bounded: a phone that vanished must not hold the shutdown up for a
        # whole BYE transaction timeout.
        hangups = [self.departures.hang_up(p, remove_user=True) for p in self.calls]
        if hangups:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*hangups, return_exceptions=True),
                    self.config.shutdown_timeout,
                )
        if self.ctx.legs is not None:
            await self.ctx.legs.close_all()

    # ---- SIP in

    def on_event(self, _ua: UserAgent, event: UAEvent) -> None:
        match event:
            case IncomingCall(call=call, request=request, reinvite=False):
                self.dial_in.incoming(call, request)
            case IncomingCall(call=call, request=request, reinvite=True):
                self.hold.reinvite(call, request)
            case CallEnded(call=call, by_peer=by_peer):
                legs = self.ctx.legs
                leg = legs.forget(call) if legs is not None else None
                if leg is not None:
                    log.warning("media server ended leg %s", leg.connection)
                    self.recovery.leg_lost(leg.connection)
                    return
                p = self.calls.get(call)
                if p is not None and by_peer:
                    self.ctx.spawn(self.departures.departed(p), f"departure {call.call_id}")
            case IncomingRequest(request=request, dialog=dialog, source=source) if (
                request.method == "REFER"
            ):
                self.transfers.refer(request, dialog, source.host)
            case IncomingRequest(request=request) if request.method == "NOTIFY":
                # Progress of a REFER we sent (RFC 3515 s2.4.4): noted, always accepted.
                log.info("refer progress from %s: %r", request.from_.uri, request.body[:40])
                self.ua.respond(request, 200)
            case IncomingRequest(request=request, source=source) if request.method == "SUBSCRIBE":
                # the profile's subscribe rule, on new subscriptions (refreshes are in theirs)
                if request.headers.to.tag is not None or self.ctx.allowed(
                    Action.SUBSCRIBE, request, source.host, None, self.ctx.lookup_request(request)
                ):
                    self.events.subscribe(request)
            case IncomingRequest(request=request, dialog=dialog, source=source) if (
                request.method == "MESSAGE"
            ):
                p = self.calls.of_dialog(dialog.id) if dialog is not None else None
                conference = self.store.get(p.conference) if p is not None else None
                if self.ctx.allowed(
                    Action.MESSAGE,
                    request,
                    source.host,
                    p,
                    conference or self.ctx.lookup_request(request),
                ):
                    self.chat.message(request, conference)
            case RequestCompleted(key=key, response=response):
                self.events.completed(key, response)
            case IncomingRequest(request=request) if request.method == "OPTIONS":
                self._options(request)
            case IncomingRequest(request=request):
                self.ua.respond(request, 405)
            case CallProgress(call=call, response=response, reinvite=False):
                self.dial_out.provisional(call, response)
            case CallConfirmed(call=call, body=body):
                self.dial_in.confirmed(call, body)
            case CallFailed(call=call):
                p = self.calls.get(call)
                if p is not None and not call.outgoing and not p.in_conference():
                    log.info("caller gave up on %s (%s)", call.call_id, event.reason)
            case _:
                pass

    def _options(self, request: Request) -> None:
        """RFC 4579 s5.13: OPTIONS tells whether a URI is a conference URI (Contact with
        ;isfocus) and which call control extensions the focus supports."""
        ctx = self.ctx
        uri = request.uri
        user = getattr(uri, "user", None)
        headers = [
            ("Allow", self.ua.allow),
            ("Accept", "application/sdp, message/sipfrag"),
            ("Supported", ", ".join(self.ua.supported)),
        ]
        conference: str | None = None
        if user is not None and user != ctx.profile.factory_user:
            obj = ctx.lookup_request(request)
            if obj is None:
                self.ua.respond(request, 404, reason="Not Found - no such conference")
                return
            conference = obj.uri
        if user is not None:
            kind = TransportKind.TCP if request.via[0].transport == "TCP" else TransportKind.UDP
            contact = (
                ctx.focus_contact(conference, kind)
                if conference is not None
                else ctx.factory_contact(kind)
            )
            headers.append(("Contact", str(contact)))
        if conference is not None:
            headers.append(ctx.call_info(conference))
        self.ua.respond(request, 200, headers=headers)

    # ---- core changes in

    def _on_changes(self, changes: Sequence[Change]) -> None:
        ctx = self.ctx
        # The media follow every change of a tree, ours included (a join, a hold, a sidebar
        # made over CCMP): re-planned from the core as it is once the refresh runs.
        touched: dict[str, None] = {}
        for change in changes:
            touched[change.uri] = None
            if (
                isinstance(change, ConferenceDeleted)
                and change.before is not None
                and change.before.parent
            ):
                touched[change.before.parent] = None
        for uri in touched:
            ctx.spawn_refresh(uri)
        # What the focus did itself it has acted on already; the rest came from CCMP or
        # the clock.
        changes = [c for c in changes if c.origin is not Origin.SIP]
        self.dial_out.dial_outs_in(changes)
        self.dial_out.targets_in(changes)
        for change in changes:
            if isinstance(change, (ConferenceDeleted, ConferenceEnded, ConferenceDeactivated)):
                # Deleted, or its (scheduled) time is over (RFC 5239 s7.3): calls end.
                deleted = isinstance(change, ConferenceDeleted)
                for uri in ctx.calls.conferences():
                    if uri != change.uri and ctx.root(uri) != change.uri:
                        continue
                    for p in ctx.calls.in_conference(uri):
                        if deleted:
                            p.entity = None  # gone with the conference
                        ctx.spawn(self.departures.ended(p, record=not deleted), f"end {change.uri}")
                ctx.spawn(ctx.drop_media(change.uri), f"drop {change.uri}")
            elif isinstance(change, UserRemoved):
                for p in ctx.calls.of_user(change.uri, change.user):
                    p.entity = None
                    ctx.spawn(self.departures.removed(p), f"remove {change.user}")
            elif isinstance(change, UserUpdated) and change.after is not None:
                user = change.after.info.user(change.user)
                for p in ctx.calls.of_user(change.uri, change.user):
                    status = media_status(user, p.caller) if user is not None else None
                    if status is not None:
                        p.media_status = status  # (the refresh above applies it)
