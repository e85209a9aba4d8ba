"""REFER to the focus (asyncio adapter): RFC 4579 s5.5, s5.7, s5.11 with RFC 3515's implicit
subscription.

A REFER to the conference URI, in a participant's dialog or outside one (then only from one
of the conference's users), is answered 202 and its progress reported in ``message/sipfrag``
NOTIFYs (RFC 3515 s2.4.4-2.4.7: 100 Trying at once, the final status at the end):

* Refer-To a user: the focus dials her in (s5.5);
* Refer-To with ``method=BYE``: the focus ends that participant's call (s5.11);
* Refer-To with ``method=REFER``: the focus REFERs that user to the conference (s5.7).

Who may ask is the profile's ``refer_dialout`` rule (dial-in and refer; by default an
authenticated user, and the target must match ``dialout_targets``) and ``refer_remove``
(method=BYE; by default a moderator), checked by :mod:`focus.calls.gatekeeper` before the
202: a REFER in the dialog of a call whose INVITE was authenticated is that user's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from focus.authority import Action
from focus.calls.admission import aor_of, refusal_for, same_aor
from focus.calls.context import SYSTEM, CallContext
from focus.calls.dial_out import DialOut
from focus.calls.leaving import Departures
from focus.calls.roster import user_for
from focus.core.changes import UserAdded
from focus.core.commands import AddUser, UpdateUser
from focus.core.errors import CoreError
from focus.core.state import Lifecycle
from focus.sip.dialog import Dialog
from focus.sip.errors import SipParseError
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request
from focus.sip.refer import SIPFRAG, sipfrag
from focus.sip.uacore import UAError
from focus.sip.uri import Params, SipURI
from focus.xcon.model import Endpoint, EndpointStatus, Execution, JoiningMethod, User

__all__ = ["Transfers"]

log = logging.getLogger(__name__)


class Transfers:
    def __init__(self, ctx: CallContext, dial_out: DialOut, departures: Departures) -> None:
        self.ctx = ctx
        self.dial_out = dial_out
        self.departures = departures

    def refer(self, request: Request, dialog: Dialog | None, source: str) -> None:
        """Answered 202 and reported by NOTIFYs, or refused at once when it cannot be acted
        upon or its sender (at address ``source``) may not ask it."""
        ua = self.ctx.ua
        conference = self._conference(request, dialog)
        if conference is None:
            ua.respond(request, 404, reason="Not Found - no such conference")
            return
        refer_tos = request.headers.get_all("Refer-To")
        try:
            if len(refer_tos) != 1:
                raise SipParseError.bad("exactly one Refer-To required")
            refer_to = parse_name_addr(refer_tos[0], "Refer-To")
        except SipParseError as exc:
            ua.respond(request, 400, reason=f"Bad Request - {exc.reason}")
            return
        uri = refer_to.uri
        if not isinstance(uri, SipURI):
            ua.respond(request, 416, reason="Unsupported URI Scheme")
            return
        method = (uri.params.get("method") or "INVITE").upper()
        if method not in ("INVITE", "BYE", "REFER"):
            ua.respond(request, 403, reason=f"Forbidden - cannot refer with {method}")
            return
        ctx = self.ctx
        action = Action.REFER_REMOVE if method == "BYE" else Action.REFER_DIALOUT
        p = ctx.calls.of_dialog(dialog.id) if dialog is not None else None
        if not ctx.allowed(action, request, source, p, ctx.store.get(conference)):
            return
        target = str(
            SipURI(
                uri.host,
                user=uri.user,
                port=uri.port,
                scheme=uri.scheme,
                params=Params([(k, v) for k, v in uri.params.items() if k.lower() == "transport"]),
            )
        )
        ua.respond(request, 202)
        refer_dialog = dialog or ua.dialog_for(request)
        if refer_dialog is None:
            return
        cseq = request.cseq.number
        self._notify(refer_dialog, cseq, 100)
        job: Awaitable[int]
        if method == "BYE":
            job = self._bye(conference, target)
        elif method == "REFER":
            # RFC 4579 s5.7: the focus REFERs the target to the conference (the escaped
            # Refer-To in the URI names it; we always refer to this conference's URI).
            job = self.dial_out.refer_in(conference, target)
        else:
            job = self._invite(conference, target, request)
        self.ctx.spawn(self._report(job, refer_dialog, cseq), f"refer {target}")

    def _conference(self, request: Request, dialog: Dialog | None) -> str | None:
        if dialog is not None:
            p = self.ctx.calls.of_dialog(dialog.id)
            return p.conference if p is not None else None
        obj = self.ctx.lookup_request(request)
        if obj is None or obj.lifecycle is not Lifecycle.ACTIVE:
            return None
        # Outside a dialog only the conference's own users may invite others in.
        if user_for(obj.info, aor_of(request)) is None:
            return None
        return obj.uri

    async def _report(self, job: Awaitable[int], dialog: Dialog, cseq: int) -> None:
        status = 500
        try:
            status = await job
        finally:
            self._notify(dialog, cseq, status)

    def _notify(self, dialog: Dialog, cseq: int, status: int) -> None:
        """The implicit subscription's NOTIFY (RFC 3515 s2.4.4-2.4.7)."""
        state = "terminated;reason=noresource" if status >= 200 else "active;expires=180"
        try:
            self.ctx.ua.start_request(
                dialog,
                "NOTIFY",
                body=sipfrag(status),
                content_type=SIPFRAG,
                headers=[("Event", f"refer;id={cseq}"), ("Subscription-State", state)],
            )
        except UAError as exc:
            log.info("refer NOTIFY not sent: %s", exc)

    async def _bye(self, conference: str, target: str) -> int:
        """RFC 4579 s5.11: the focus ends the referred participant's call."""
        gone = [p for p in self.ctx.calls.in_conference(conference) if same_aor(p.caller, target)]
        if not gone:
            return 404
        for p in gone:
            await self.departures.hang_up(p, remove_user=True)
        return 200

    async def _invite(self, conference: str, target: str, request: Request) -> int:
        """RFC 4579 s5.5: the focus dials the referred user into the conference."""
        ctx = self.ctx
        obj = ctx.store.get(conference)
        if obj is None:
            return 404
        existing = user_for(obj.info, target)
        endpoint = Endpoint(
            entity=target,
            status=EndpointStatus.PENDING,
            joining_method=JoiningMethod.DIALED_OUT,
            referred=Execution(when=ctx.now(), by=str(request.from_.uri)),
        )
        try:
            if existing is not None and existing.entity is not None:
                entity = existing.entity
                ctx.apply(
                    UpdateUser(
                        actor=SYSTEM,
                        uri=conference,
                        user=User(entity=entity, endpoints=(endpoint,)),
                    )
                )
            else:
                user = User(
                    entity=f"xcon-userid:AUTO_GENERATE_1@{ctx.config.xcon_domain}",
                    endpoints=(endpoint,),
                )
                changes = ctx.apply(AddUser(actor=SYSTEM, uri=conference, user=user))
                entity = next(c.user for c in changes if isinstance(c, UserAdded))
        except CoreError as exc:
            return refusal_for(exc).status
        return await self.dial_out.dial(conference, entity, target)
