"""A call's re-INVITEs (asyncio adapter): hold and resume (RFC 3264 s8.4).

A sendonly/inactive re-offer (or the RFC 2543 ``c=0.0.0.0``) puts the participant on hold:
her endpoint status becomes on-hold (RFC 4575 s5.7.3), which the media plan reads (her joins
go inactive); a sendrecv re-offer resumes. An offerless re-INVITE gets our last answer again
(version bumped, RFC 3264 s8); a re-offer whose streams do not line up with the session is
refused 488 (a new stream would need a new leg).

The phone's audio direction also goes on to its media leg (3PCC, RFC 3725: the focus offers
the media server what the phone offered): the media server then sends only to a phone that
listens and expects media only from a phone that sends, so its media timeout pauses for a
phone that said recvonly or inactive and rightly sends no RTP (and perhaps no RTCP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from focus.calls.admission import Refusal
from focus.calls.context import SYSTEM, CallContext
from focus.calls.offers import answer_like, is_hold
from focus.calls.participant import Participant, ParticipantInput
from focus.calls.roster import endpoint_entity
from focus.core.commands import UpdateUser
from focus.core.errors import CoreError
from focus.sip.errors import LocalProtocolError
from focus.sip.message import Request
from focus.sip.sdp import Direction, SdpError, SessionDescription, parse_sdp
from focus.sip.uacore import Call, UAError
from focus.xcon.model import Endpoint, EndpointStatus, User

__all__ = ["Hold"]

log = logging.getLogger(__name__)


class Hold:
    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx

    def reinvite(self, call: Call, request: Request) -> None:
        ua = self.ctx.ua
        p = self.ctx.calls.get(call)
        if p is None or p.answer is None or not p.in_conference():
            ua.reject(call, 488, "Not Acceptable Here - no session to modify")
            return
        timer = self.ctx.timers.verdict(request)  # a re-INVITE refreshes (RFC 4028 s9)
        if isinstance(timer, Refusal):
            ua.reject(call, timer.status, timer.reason, headers=timer.headers)
            return
        headers = timer.headers() if timer is not None else ()
        if not request.body:
            # Offerless re-INVITE: offer what we answered last.
            p.answer = p.answer.bump_version()
            ua.accept(call, p.answer.to_bytes(), headers=headers)
            self.ctx.timers.answered(p, timer)
            return
        try:
            offer = parse_sdp(request.body)
        except SdpError as exc:
            ua.reject(call, 488, f"Not Acceptable Here - {exc.reason}")
            return
        answer = answer_like(p.answer, offer)
        if answer is None:
            ua.reject(call, 488, "Not Acceptable Here - the streams changed")
            return
        held = is_hold(offer)
        ua.accept(call, answer.to_bytes(), headers=headers)
        self.ctx.timers.answered(p, timer)
        p.answer = answer
        leg_offer = _leg_reoffer(p.leg.call.local_sdp if p.leg else b"", offer)
        if leg_offer is not None:
            self.ctx.spawn(self._pass_direction(p, leg_offer), f"leg direction {call.call_id}")
        if held != p.held():
            p.move(ParticipantInput.HOLD if held else ParticipantInput.RESUME)
            self.ctx.spawn(self._apply(p), f"hold {call.call_id}")

    async def _apply(self, p: Participant) -> None:
        # The endpoint status on-hold is what the media plan reads (inactive joins).
        ctx = self.ctx
        status = EndpointStatus.ON_HOLD if p.held() else EndpointStatus.CONNECTED
        if p.entity is not None:
            obj = ctx.store.get(p.conference)
            existing = obj.info.user(p.entity) if obj is not None else None
            if existing is not None:
                endpoint = Endpoint(entity=endpoint_entity(existing, p.caller), status=status)
                with contextlib.suppress(CoreError):
                    ctx.apply(
                        UpdateUser(
                            actor=SYSTEM,
                            uri=p.conference,
                            user=User(entity=p.entity, endpoints=(endpoint,)),
                        )
                    )
        await ctx.mix(p)

    async def _pass_direction(self, p: Participant, offer: bytes) -> None:
        """Re-offers the media leg with the phone's direction (RFC 3264 s8.4); a refused or
        crossed re-INVITE leaves the leg as it was (the next re-offer tries again)."""
        leg = p.leg
        if leg is None or not p.in_conference():
            return
        try:
            response = await leg.ua.reinvite(leg.call, offer)
        except (UAError, LocalProtocolError) as exc:
            log.info("media leg of %s keeps its direction: %s", p.caller, exc)
            return
        if response.status >= 300:
            log.info("media leg of %s keeps its direction: %d", p.caller, response.status)


def _leg_reoffer(leg_sdp: bytes, phone: SessionDescription) -> bytes | None:
    """The leg's last offer with its audio direction as the phone's re-offer says (null
    connection, RFC 2543 hold: receives nothing), version bumped; None when it already
    says so, or there is no leg offer to change."""
    if not leg_sdp:
        return None
    try:
        ours = parse_sdp(leg_sdp)
    except SdpError:
        return None
    audio = [i for i, m in enumerate(phone.media) if m.media == "audio" and not m.rejected]
    mine = [i for i, m in enumerate(ours.media) if m.media == "audio" and not m.rejected]
    if not audio or not mine:
        return None
    said = phone.direction_of(audio[0])
    conn = phone.connection_of(audio[0])
    wanted = Direction.of(said.sends, said.receives and not (conn is not None and conn.is_null))
    if ours.direction_of(mine[0]) is wanted:
        return None
    media = list(ours.media)
    media[mine[0]] = media[mine[0]].with_direction(wanted)
    return dataclasses.replace(ours, media=tuple(media)).bump_version().to_bytes()
