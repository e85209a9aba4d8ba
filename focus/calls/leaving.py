"""Leaving a conference (asyncio adapter): the phone hangs up, the focus hangs up, a join
that did not complete is undone, an ad hoc conference ends with its last caller (or its
creator, RFC 4579 s5.12).

Whatever the way out, what the call held goes in the same order: the participant leaves the
registry, the media plan is re-applied without her leg (her joins go before the leg does),
the leg is closed, her core user is removed when she was only there for this call, and an ad
hoc conference nobody is left in is deleted with its sidebars and its mixer.
"""

from __future__ import annotations

import logging

from focus.calls.context import SYSTEM, CallContext
from focus.calls.keypad import Keypad
from focus.calls.participant import Participant, ParticipantInput, ParticipantState
from focus.calls.roster import is_ad_hoc
from focus.core.commands import DeleteConference, DeleteSidebar, RemoveUser
from focus.core.errors import CoreError, ErrorKind
from focus.core.state import ConferenceObject, ObjectKind
from focus.sip.uacore import CallState
from focus.xcon.model import DisconnectionMethod, EndpointStatus

__all__ = ["Departures"]

log = logging.getLogger(__name__)


class Departures:
    """Every way out of a conference (see the module docstring)."""

    def __init__(self, ctx: CallContext, keypad: Keypad) -> None:
        self.ctx = ctx
        self.keypad = keypad

    async def departed(self, p: Participant, *, send_bye: bool = False) -> None:
        """The phone hung up (BYE, or CANCEL before we answered); with ``send_bye`` it is gone
        without a word (its session expired, RFC 4028 s10): we send the BYE, and she leaves
        all the same, an ad hoc conference ending per its policy."""
        if p.left():
            return
        p.move(ParticipantInput.LEAVE)
        ctx = self.ctx
        if send_bye and p.call.state is not CallState.ENDED:
            ctx.ua.hang_up(p.call)
        creator = ctx.calls.creators.get(p.conference) is p
        ctx.calls.remove(p)
        await self.release_media(p)
        self.remove_user(p)
        self._released(p)
        if ctx.profile.ad_hoc_end == "creator" and creator:
            # RFC 4579 s5.12: the creator left, the ad hoc conference goes with her.
            for other in ctx.calls.in_conference(p.conference):
                await self.hang_up(other, remove_user=False)
            await self.end_conference(p.conference)
            return
        await self.maybe_end(p.conference)

    async def hang_up(self, p: Participant, *, remove_user: bool) -> None:
        """We end the call (CCMP removal or delete, REFER BYE, Replaces, shutdown)."""
        if p.left():
            return
        p.move(ParticipantInput.LEAVE)
        ctx = self.ctx
        ctx.calls.remove(p)
        if p.call.state is CallState.INCOMING:
            ctx.ua.reject(p.call, 480, "Temporarily Unavailable - the conference ended")
        elif p.call.state is not CallState.ENDED:
            # Not awaited: the call is over for us whatever the phone answers to the BYE.
            ctx.ua.hang_up(p.call)
        await self.release_media(p)
        if remove_user:
            self.remove_user(p)
        self._released(p)

    async def undo(self, p: Participant, created: bool) -> None:
        """Leaves nothing behind of a join that did not complete (its leg may have come after
        the caller left: it is closed all the same)."""
        if not p.left():
            p.move(ParticipantInput.LEAVE)
        self.ctx.calls.remove(p)
        await self.release_media(p)
        if p.entity is not None:
            self.remove_user(p)
        self._released(p)
        if created:
            await self.end_conference(p.conference)

    async def ended(self, p: Participant, *, record: bool) -> None:
        """The conference ended under the call: BYE; the user stays, disconnected (booted:
        the focus ended it, RFC 4575 s5.7.6)."""
        entity = p.entity
        await self.hang_up(p, remove_user=False)
        if record and entity is not None:
            self.ctx.record_status(
                p.conference,
                entity,
                p.caller,
                EndpointStatus.DISCONNECTED,
                DisconnectionMethod.BOOTED,
            )

    async def removed(self, p: Participant) -> None:
        """The core removed her user (CCMP): BYE, and the ad hoc rule."""
        await self.hang_up(p, remove_user=False)
        await self.maybe_end(p.conference)

    async def maybe_end(self, uri: str) -> None:
        """An ad hoc conference nobody is left in ends (a sidebar's callers keep its parent
        alive)."""
        ctx = self.ctx
        root = ctx.root(uri)
        obj = ctx.store.get(root)
        if obj is None or not is_ad_hoc(obj):
            return
        if any(ctx.root(other) == root for other in ctx.calls.conferences()):
            return
        await self.end_conference(root)

    async def end_conference(self, uri: str) -> None:
        """Deletes an ad hoc conference (its sidebars first) and destroys its mixer."""
        ctx = self.ctx
        ctx.calls.creators.pop(uri, None)
        if ctx.store.get(uri) is not None:
            try:
                # Sidebars end with their parent (the core refuses to delete a parent).
                for sidebar in self._sidebars_of(uri):
                    ctx.apply(
                        DeleteSidebar(
                            actor=SYSTEM,
                            uri=sidebar.uri,
                            by_ref=sidebar.kind is ObjectKind.SIDEBAR_BY_REF,
                        )
                    )
                ctx.apply(DeleteConference(actor=SYSTEM, uri=uri))
            except CoreError as exc:
                log.warning("ad hoc conference %s not deleted: %s", uri, exc)
        await ctx.drop_media(uri)

    async def release_media(self, p: Participant) -> None:
        """Her joins go (the tree re-planned without her leg), then the leg."""
        self.keypad.stop(p)
        self.ctx.timers.forget(p)
        leg = p.leg
        if leg is None:
            return
        self.ctx.calls.set_leg(p, None)
        await self.ctx.mix(p)
        await self.ctx.abandon(leg)  # ACKs an offerless leg first, then BYE

    def remove_user(self, p: Participant) -> None:
        entity, p.entity = p.entity, None
        if entity is None:
            return
        try:
            self.ctx.apply(RemoveUser(actor=SYSTEM, uri=p.conference, entity=entity))
        except CoreError as exc:
            if exc.kind not in (ErrorKind.USER_NOT_FOUND, ErrorKind.NOT_FOUND):
                log.warning("could not remove %s from %s: %s", entity, p.conference, exc)

    @staticmethod
    def _released(p: Participant) -> None:
        if p.state is ParticipantState.LEAVING:
            p.move(ParticipantInput.RELEASED)

    def _sidebars_of(self, uri: str) -> list[ConferenceObject]:
        """Sidebars under ``uri``, deepest first (their own sidebars before them)."""
        found: list[ConferenceObject] = []
        for obj in self.ctx.store.objects():
            if obj.kind.is_sidebar and obj.parent == uri:
                found.extend(self._sidebars_of(obj.uri))
                found.append(obj)
        return found
