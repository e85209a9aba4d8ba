"""The focus calls someone into a conference (asyncio adapter): RFC 4579 s5.5 from CCMP
(RFC 6504 s6.1), a REFER (s5.5), or an allowed-users-list target with method dial-out (RFC
6504 s5.1); and asks someone to call in by REFER (s5.6, target method refer).

A dial-out opens an offerless leg to the media server, which gives the offer; the INVITE to
the user carries it with our isfocus Contact (and From naming the conference, as in s5.2's
example); the user's answer goes to the media server in the ACK. The endpoint status follows
the call (RFC 4575 s5.7.3): dialing-out, alerting (180/183), connected, or disconnected with
disconnection-method busy (486/600) or failed (s5.7.6).

Only targets matching the profile's ``dialout_targets`` are called (default: the profile's
domain and the focus's own addresses); any other is refused with 403 before anything is sent:
a focus that calls whatever it is asked to is an open relay for toll fraud.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from focus.calls.admission import parse_target
from focus.calls.context import SYSTEM, CallContext
from focus.calls.keypad import Keypad
from focus.calls.leaving import Departures
from focus.calls.participant import Participant, ParticipantInput, ParticipantState
from focus.calls.roster import targets, user_for
from focus.core.changes import (
    Change,
    ConferenceCreated,
    ConferenceUpdated,
    UserAdded,
    UserUpdated,
)
from focus.core.commands import AddUser
from focus.core.errors import CoreError
from focus.core.state import Lifecycle, ObjectKind
from focus.sip.flow import TransportKind
from focus.sip.message import Response
from focus.sip.sdp import parse_sdp
from focus.sip.uacore import Call, CallFailedError, UAError
from focus.xcon.model import (
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    JoiningMethod,
    TargetMethod,
    User,
)
from mediactrl.driver import MediaDriverError
from mediactrl.legs import MediaLegError

__all__ = ["DialOut"]

log = logging.getLogger(__name__)


class DialOut:
    def __init__(self, ctx: CallContext, departures: Departures, keypad: Keypad) -> None:
        self.ctx = ctx
        self.departures = departures
        self.keypad = keypad

    def dial_out(self, conference: str, entity: str, target: str) -> None:
        """Calls ``target`` for the user ``entity`` of ``conference`` (in the background)."""

        async def run() -> None:
            await self.dial(conference, entity, target)

        self.ctx.spawn(run(), f"dial-out {target}")

    async def dial(self, conference: str, entity: str, target: str) -> int:
        """Calls ``target``; returns the final status (200 when she is in)."""
        ctx = self.ctx
        if ctx.legs is None or ctx.driver is None:
            log.warning("cannot dial %s: no media server", target)
            return 503
        if ctx.calls.of_user(conference, entity):
            return 200  # already in a call
        try:
            uri = parse_target(target)
        except ValueError as exc:
            log.warning("cannot dial %s: %s", target, exc)
            self._failed(conference, entity, target)
            return 416
        if not ctx.dialout_targets.allows(uri):
            # Whoever asked (REFER, CCMP, a target list), the profile says where we may call.
            log.warning("dial-out to %s refused: not in the profile's dialout_targets", target)
            self._failed(conference, entity, target)
            return 403
        try:
            leg = await ctx.legs.open(b"")
        except MediaLegError as exc:
            log.warning("dial-out to %s: no media leg: %s", target, exc)
            self._failed(conference, entity, target)
            return 503
        offer = ctx.timers.offer()  # RFC 4028 s7.1: we ask for a session timer
        for attempt in range(2):
            try:
                # RFC 4579 s5.5: our Contact is the conference URI with isfocus, and From
                # names the conference as the calling party (as in s5.2's example).
                contact = ctx.focus_contact(conference, TransportKind.UDP)
                call = ctx.ua.dial(
                    target,
                    leg.answer,
                    contact=contact,
                    from_user=getattr(contact.uri, "user", None),
                    headers=offer.headers() if offer is not None else (),
                )
            except UAError as exc:
                await ctx.abandon(leg)
                log.warning("cannot dial %s: %s", target, exc)
                self._failed(conference, entity, target)
                return exc.status or 503
            except Exception:
                await ctx.abandon(leg)
                raise
            p = Participant(
                call, conference, target, ParticipantState.DIALING, entity=entity, leg=leg
            )
            ctx.calls.add(p)
            if attempt == 0:
                ctx.set_status(p, EndpointStatus.DIALING_OUT)
            try:
                await ctx.ua.answered(call)
            except CallFailedError as exc:
                retry = ctx.timers.retry(offer, call) if attempt == 0 else None
                if retry is None or p.left():
                    await self._unanswered(p, exc.status)
                    return exc.status
                # s7.3: 422, so once more asking the callee's Min-SE.
                ctx.calls.remove(p)
                offer = retry
                continue
            break
        if p.left():
            return 487  # hung up (CCMP removal) while her 200 was on its way
        try:
            leg.complete(call.remote_sdp)
            p.move(ParticipantInput.MEDIA_UP)
            await ctx.mix(p, strict=True)
        except (MediaDriverError, ValueError) as exc:
            log.warning("dial-out to %s: mixer refused: %s", target, exc)
            await self.departures.hang_up(p, remove_user=False)
            ctx.record_status(
                conference, entity, target, EndpointStatus.DISCONNECTED, DisconnectionMethod.FAILED
            )
            return 500
        if p.left():
            return 487
        p.answer = parse_sdp(leg.answer)
        p.move(ParticipantInput.CONNECTED)
        ctx.timers.started(p, offer)  # the 2xx said who refreshes (s7.2)
        ctx.set_status(p, EndpointStatus.CONNECTED)
        log.info("%s dialed out into %s", target, conference)
        await self.keypad.watch(p)
        return 200

    async def _unanswered(self, p: Participant, status: int) -> None:
        ctx = self.ctx
        was_gone = p.left()
        ctx.calls.remove(p)
        leg = p.leg
        ctx.calls.set_leg(p, None)
        if leg is not None:
            await ctx.abandon(leg)
        log.info("dial-out to %s failed: %d", p.caller, status)
        if was_gone:
            return
        p.move(ParticipantInput.LEAVE)
        busy = status in (486, 600)
        ctx.set_status(
            p,
            EndpointStatus.DISCONNECTED,
            DisconnectionMethod.BUSY if busy else DisconnectionMethod.FAILED,
        )
        p.move(ParticipantInput.RELEASED)

    def _failed(self, conference: str, entity: str, target: str) -> None:
        self.ctx.record_status(
            conference, entity, target, EndpointStatus.DISCONNECTED, DisconnectionMethod.FAILED
        )

    def provisional(self, call: Call, response: Response) -> None:
        """180/183 to our INVITE: she is alerted (RFC 4575 s5.7.3)."""
        p = self.ctx.calls.get(call)
        if p is not None and p.state is ParticipantState.DIALING and response.status in (180, 183):
            self.ctx.set_status(p, EndpointStatus.ALERTING)

    # ---- what the core asks for

    def dial_outs_in(self, changes: Sequence[Change]) -> None:
        """Users added (or updated) with a pending dialed-out SIP endpoint are called."""
        for change in changes:
            if not isinstance(change, (UserAdded, UserUpdated)) or change.after is None:
                continue
            if change.after.lifecycle is not Lifecycle.ACTIVE:
                continue
            user = change.after.info.user(change.user)
            if user is None:
                continue
            for e in user.endpoints:
                if (
                    e.entity is not None
                    and e.entity.startswith(("sip:", "sips:"))
                    and e.joining_method == JoiningMethod.DIALED_OUT
                    and e.status in (None, EndpointStatus.PENDING)
                ):
                    self.dial_out(change.uri, change.user, e.entity)

    def targets_in(self, changes: Sequence[Change]) -> None:
        """New allowed-users-list targets of an active conference: refer or dial them."""
        for change in changes:
            if not isinstance(change, (ConferenceCreated, ConferenceUpdated)):
                continue
            after = change.after
            if (
                after is None
                or after.lifecycle is not Lifecycle.ACTIVE
                or after.kind is not ObjectKind.CONFERENCE
            ):
                continue
            old = targets(change.before.info) if change.before is not None else set()
            for uri, method in targets(after.info) - old:
                if not uri.startswith(("sip:", "sips:")):
                    continue
                if method == TargetMethod.REFER:
                    self.ctx.spawn(self._log_refer(change.uri, uri), f"refer-in {uri}")
                elif method == TargetMethod.DIAL_OUT and user_for(after.info, uri) is None:
                    self.ctx.spawn(self._dial_target(change.uri, uri), f"dial-out {uri}")

    async def refer_in(self, conference: str, target: str) -> int:
        """RFC 4579 s5.6: asks ``target`` (by REFER) to join ``conference``; returns the
        status of the REFER (202 when accepted)."""
        conf_uri = self.ctx.conference_target(conference)
        try:
            response = await self.ctx.ua.request(
                target, "REFER", headers=[("Refer-To", f"<{conf_uri}>")]
            )
        except UAError as exc:
            log.warning("cannot REFER %s: %s", target, exc)
            return exc.status or 503
        return response.status

    async def _log_refer(self, conference: str, target: str) -> None:
        status = await self.refer_in(conference, target)
        log.info("REFER %s to %s: %d", target, conference, status)

    async def _dial_target(self, conference: str, target: str) -> None:
        user = User(
            entity=f"xcon-userid:AUTO_GENERATE_1@{self.ctx.config.xcon_domain}",
            endpoints=(
                Endpoint(
                    entity=target,
                    status=EndpointStatus.PENDING,
                    joining_method=JoiningMethod.DIALED_OUT,
                ),
            ),
        )
        try:
            changes = self.ctx.apply(AddUser(actor=SYSTEM, uri=conference, user=user))
        except CoreError as exc:
            log.warning("dial-out target %s not added: %s", target, exc)
            return
        entity = next(c.user for c in changes if isinstance(c, UserAdded))
        await self.dial(conference, entity, target)
