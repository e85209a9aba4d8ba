"""Recovery (asyncio adapter): after a restart of the focus, and after a lost media leg.

After a restart no call survives: :meth:`Recovery.after_restart` makes what the core still
says about calls of the previous run true again (and repairs conference URIs of state written
by older versions, :meth:`Recovery.advertise`).

A lost media leg (the media server restarted, or ended the leg: its BYE, a refused join after
a resync, an unjoin-notify "connection terminated", RFC 6505 s4.2.4.2) does not drop the call:
a new leg is opened (offerless: the media server offers), the phone is re-INVITEd with that
offer, its answer goes to the media server in the ACK, and the new leg is joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from focus.calls.admission import same_aor
from focus.calls.context import SYSTEM, CallContext
from focus.calls.keypad import Keypad
from focus.calls.leaving import Departures
from focus.calls.participant import Participant, ParticipantInput
from focus.calls.roster import is_ad_hoc
from focus.core.commands import DeleteConference, RemoveUser, UpdateConference, UpdateSidebar
from focus.core.errors import CoreError
from focus.core.state import ConferenceObject, ObjectKind
from focus.sip.errors import LocalProtocolError
from focus.sip.sdp import parse_sdp
from focus.sip.uacore import CallState, UAError
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    DisconnectionMethod,
    EndpointStatus,
    UriEntry,
    Uris,
)
from mediactrl.driver import MediaDriverError
from mediactrl.legs import MediaLegError

__all__ = ["Recovery"]

log = logging.getLogger(__name__)

#: Endpoint statuses of a call in progress (RFC 4575 s5.7.3): none survives a restart.
_LIVE = frozenset(
    {
        EndpointStatus.CONNECTED,
        EndpointStatus.ON_HOLD,
        EndpointStatus.DIALING_IN,
        EndpointStatus.DIALING_OUT,
        EndpointStatus.ALERTING,
        EndpointStatus.MUTED_VIA_FOCUS,
        EndpointStatus.DISCONNECTING,
    }
)


class Recovery:
    def __init__(self, ctx: CallContext, departures: Departures, keypad: Keypad) -> None:
        self.ctx = ctx
        self.departures = departures
        self.keypad = keypad
        self.relink_attempts = 20

    # ---- after a restart of the focus

    def after_restart(self) -> None:
        """* Live endpoints (connected, on hold, dialing, alerting, ...) become disconnected
          with disconnection-method failed: their calls died with the process.
        * In an ad hoc conference a user whose every endpoint was live is removed: her call
          was her whole presence, so she left; then the ad hoc rule applies as if she had
          hung up: a conference nobody is left in is deleted (no orphan conferences), one
          that still holds users CCMP added (invited, pending) is kept and stays ad hoc.
          With ``ad_hoc_end = "creator"`` the creator's call died too, so it is deleted.
        RFC 4579 has no rule for this; this is the careful operator's choice."""
        ctx = self.ctx
        for obj in ctx.store.objects():
            self.advertise(obj)
            if obj.kind is not ObjectKind.CONFERENCE:
                continue
            try:
                users = obj.info.users.users if obj.info.users else ()
                if is_ad_hoc(obj):
                    called = [
                        u
                        for u in users
                        if u.entity is not None
                        and u.endpoints
                        and all(e.status in _LIVE for e in u.endpoints)
                    ]
                    if len(called) == len(users) or ctx.profile.ad_hoc_end == "creator":
                        ctx.apply(DeleteConference(actor=SYSTEM, uri=obj.uri))
                        log.info("ad hoc conference %s of a previous run deleted", obj.uri)
                        continue
                    for user in called:
                        assert user.entity is not None
                        ctx.apply(RemoveUser(actor=SYSTEM, uri=obj.uri, entity=user.entity))
                    users = tuple(u for u in users if u not in called)
                for user in users:
                    for e in user.endpoints:
                        if e.entity is not None and user.entity is not None and e.status in _LIVE:
                            ctx.record_status(
                                obj.uri,
                                user.entity,
                                e.entity,
                                EndpointStatus.DISCONNECTED,
                                DisconnectionMethod.FAILED,
                            )
            except CoreError as exc:
                log.warning("could not tidy %s after a restart: %s", obj.uri, exc)

    def advertise(self, obj: ConferenceObject) -> None:
        """Puts the conference's SIP URI in its ``<conf-uris>`` (purpose participation: where
        phones dial) and its XCON-URI in ``<service-uris>`` (purpose ccmp, RFC 7082 s3),
        through the core, unless they are there already.

        A repair for state written before the core listed both in every create
        (``CoreConfig.participation_uri``): on a store opened with the profile's pattern it
        finds them there and changes nothing."""
        if obj.kind not in (
            ObjectKind.CONFERENCE,
            ObjectKind.SIDEBAR_BY_REF,
            ObjectKind.SIDEBAR_BY_VAL,
        ):
            return
        desc = obj.info.conference_description
        sip = self.ctx.sip_uri(obj.uri)
        conf_uris = desc.conf_uris if desc is not None else None
        service = desc.service_uris if desc is not None else None
        need_sip = conf_uris is None or not any(
            same_aor(e.uri, sip) for e in conf_uris.entries if e.uri.startswith("sip")
        )
        need_ccmp = service is None or not any(
            e.uri == obj.uri and (e.purpose or "").lower() == "ccmp" for e in service.entries
        )
        if not need_sip and not need_ccmp:
            return
        patch = ConferenceInfo(
            entity=obj.uri,
            conference_description=ConferenceDescription(
                conf_uris=Uris(entries=(UriEntry(uri=sip, purpose="participation"),))
                if need_sip
                else None,
                service_uris=Uris(entries=(UriEntry(uri=obj.uri, purpose="ccmp"),))
                if need_ccmp
                else None,
            ),
        )
        command: UpdateConference | UpdateSidebar
        if obj.kind is ObjectKind.CONFERENCE:
            command = UpdateConference(actor=SYSTEM, uri=obj.uri, patch=patch)
        else:
            command = UpdateSidebar(
                actor=SYSTEM,
                uri=obj.uri,
                patch=patch,
                by_ref=obj.kind is ObjectKind.SIDEBAR_BY_REF,
            )
        try:
            self.ctx.apply(command)
        except CoreError as exc:
            log.info("conf-uris/service-uris of %s not set: %s", obj.uri, exc)

    # ---- a lost media leg

    def joins_refused(self, error: MediaDriverError) -> None:
        """After a resync the media server refused joins: their connections are gone (a
        restarted media server has lost its SIP legs: 412)."""
        for item in error.failures:
            if isinstance(item, tuple):
                for entity in item:
                    if ":" in entity:
                        self.leg_lost(entity)

    def unjoined(self, id1: str, id2: str, status: int) -> None:
        # RFC 6505 s4.2.4.2: status 2 = the connection was terminated.
        if status == 2:
            for entity in (id1, id2):
                if ":" in entity:
                    self.leg_lost(entity)

    def leg_lost(self, connection: str) -> None:
        p = self.ctx.calls.by_connection(connection)
        if p is not None:
            self.participant_leg_lost(p)

    def participant_leg_lost(self, p: Participant) -> None:
        """Her leg is gone (the media server ended it, or it failed its session refresh,
        RFC 4028 s10): a new one is opened."""
        if p.can(ParticipantInput.MEDIA_LOST):
            p.move(ParticipantInput.MEDIA_LOST)
            self.ctx.spawn(self._relink(p), f"relink {p.caller}")

    async def _relink(self, p: Participant) -> None:
        try:
            await self._new_leg(p)
        except Exception:
            log.exception("media of %s not restored: hanging up", p.caller)
            await self.departures.hang_up(p, remove_user=True)

    async def _new_leg(self, p: Participant) -> None:
        ctx = self.ctx
        assert ctx.legs is not None and ctx.driver is not None
        old = p.leg
        ctx.calls.set_leg(p, None)
        if old is not None:
            await ctx.driver.forget_connection(old.connection)
            ctx.legs.forget(old.call)
            if old.call.state is not CallState.ENDED:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ctx.legs.close(old), 2.0)
        delay = 0.1
        for _ in range(self.relink_attempts):
            if p.left():
                return
            try:
                leg = await ctx.legs.open(b"", timeout=2.0)
                break
            except MediaLegError as exc:
                log.info("no new leg for %s yet: %s", p.caller, exc)
                await asyncio.sleep(delay)  # the media server is restarting: back off
                delay = min(delay * 2, 2.0)
        else:
            log.warning("media for %s could not be restored: hanging up", p.caller)
            await self.departures.hang_up(p, remove_user=True)
            return
        if p.left() or p.call.state is not CallState.CONFIRMED:
            await ctx.abandon(leg)
            return
        try:
            response = await ctx.ua.reinvite(p.call, leg.answer)
        except (UAError, LocalProtocolError) as exc:
            log.warning("cannot re-INVITE %s: %s", p.caller, exc)
            await ctx.abandon(leg)
            await self.departures.hang_up(p, remove_user=True)
            return
        if not 200 <= response.status < 300 or not response.body:
            log.warning("%s refused the new media (%d)", p.caller, response.status)
            await ctx.abandon(leg)
            await self.departures.hang_up(p, remove_user=True)
            return
        if p.left():
            await ctx.abandon(leg)
            return
        leg.complete(response.body)
        ctx.calls.set_leg(p, leg)
        p.answer = parse_sdp(leg.answer)
        p.move(ParticipantInput.RELINKED)
        ctx.timers.leg_opened(p)
        await ctx.mix(p)
        log.info("media of %s restored on %s", p.caller, leg.connection)
        await self.keypad.watch(p)
