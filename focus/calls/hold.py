"""A call's re-INVITEs (asyncio adapter): hold and resume (RFC 3264 s8.4).

A sendonly/inactive re-offer (or the RFC 2543 ``c=0.0.0.0``) puts the participant on hold:
her endpoint status becomes on-hold (RFC 4575 s5.7.3), which the media plan reads (her joins
go inactive); a sendrecv re-offer resumes. An offerless re-INVITE gets our last answer again
(version bumped, RFC 3264 s8); a re-offer whose streams do not line up with the session is
refused 488 (a new stream would need a new leg).
"""

from __future__ import annotations

import contextlib

from focus.calls.admission import Refusal
from focus.calls.context import SYSTEM, CallContext
from focus.calls.offers import answer_like, is_hold
from focus.calls.participant import Participant, ParticipantInput
from focus.calls.roster import endpoint_entity
from focus.core.commands import UpdateUser
from focus.core.errors import CoreError
from focus.sip.message import Request
from focus.sip.sdp import SdpError, parse_sdp
from focus.sip.uacore import Call
from focus.xcon.model import Endpoint, EndpointStatus, User

__all__ = ["Hold"]


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
