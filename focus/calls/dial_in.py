"""What happens when a phone dials the factory or a conference (asyncio adapter).

* INVITE to the factory URI (``sip:conference@DOMAIN``): an ad hoc conference is created
  from the profile's blueprint (RFC 5239 s9.2, core ``CreateConference``) and the caller
  joins it (RFC 4579 s5.2);
* INVITE to a conference URI: the caller joins (s5.3) if
  :func:`~focus.calls.admission.admit` lets her (deny/allowed lists, join-handling, locked,
  maximum-user-count, the conference password in a ``password`` URI parameter or as digest
  credentials, RFC 3261 s22);
* INVITE with a Join (RFC 3911) or Replaces (RFC 3891) header naming a participant's dialog
  with the focus: the caller joins that participant's conference (RFC 4579 s5.8); with
  Replaces the named call is then ended with BYE (s5.9, s5.10).

Joining means: a media leg to the media server carrying the caller's offer (3PCC, RFC 3725;
an offerless INVITE gets the media server's offer in our 200 and the caller's answer in her
ACK goes on to the media server), the caller added to the core (endpoint status connected,
joining-method dialed-in), the conference tree's media re-planned with her leg, then 200 with
the media server's answer, Contact = the conference URI with ``;isfocus`` (RFC 4579 s3) and
the XCON-URI in Call-Info (RFC 7082). Every failure on the way undoes what was done (leg
closed, join dropped, user removed, ad hoc conference deleted): no leg is left behind.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from focus.authority import Action, Identity
from focus.calls.admission import (
    WRONG_PASSWORD,
    Refusal,
    admit,
    aor_of,
    conference_passwords,
    dialog_header,
    refusal_for,
)
from focus.calls.context import SYSTEM, CallContext
from focus.calls.keypad import Keypad
from focus.calls.leaving import Departures
from focus.calls.participant import Participant, ParticipantInput, ParticipantState
from focus.calls.roster import endpoint_entity, user_for
from focus.core.changes import UserAdded
from focus.core.commands import AddUser, CreateConference, UpdateUser
from focus.core.core import conference_id
from focus.core.errors import CoreError
from focus.core.state import ConferenceObject, Lifecycle
from focus.sip.digest import AuthOutcome, DigestConfig, DigestServer, check_request, ha1
from focus.sip.message import Request
from focus.sip.sdp import SdpError, parse_sdp
from focus.sip.session_timer import TimerAnswer
from focus.sip.uacore import Call, CallState
from focus.sip.uri import SipURI
from focus.xcon.model import (
    CallInfo,
    Endpoint,
    EndpointStatus,
    Execution,
    JoiningMethod,
    Media,
    MediaStatus,
    SipDialogId,
    User,
)
from mediactrl.driver import MediaDriverError
from mediactrl.legs import MediaLegError

__all__ = ["DialIn"]

log = logging.getLogger(__name__)

_MAX_CONFERENCE_REALMS = 256


def _ha1_of(realm: str, password: str) -> Callable[[str, str], str | None]:
    """A conference password as a digest server's HA1 lookup (any username)."""
    return lambda user, algorithm: ha1(algorithm, user, realm, password)


class _Gone(Exception):
    """The caller went away (CANCEL) while we were setting the call up."""


class DialIn:
    """Incoming INVITEs, admission and joining (see the module docstring)."""

    def __init__(self, ctx: CallContext, departures: Departures, keypad: Keypad) -> None:
        self.ctx = ctx
        self.departures = departures
        self.keypad = keypad
        # Conference passwords are asked for in the conference's own realm
        # "<conference-id>@<domain>", apart from the accounts' (the profile's digest realm).
        self._conference_digest: dict[str, DigestServer] = {}

    # ---- the INVITE

    def incoming(self, call: Call, request: Request) -> None:
        """A new INVITE: refused at once, or a participant whose join runs in the background."""
        ctx = self.ctx
        uri = request.uri
        user = uri.user if isinstance(uri, SipURI) else None
        profile = ctx.profile
        replaces: Participant | None = None
        named = dialog_header(request, "Join") or dialog_header(request, "Replaces")
        if named is not None:
            target = ctx.calls.named_by(*named)
            if target is None:
                # RFC 3911 s4 / RFC 3891 s3: no such dialog.
                self.reject(call, Refusal(481, "Call/Transaction Does Not Exist"))
                return
            if request.headers.get("Replaces") is not None:
                replaces = target
            user = profile.conference_user_part(conference_id(target.conference))
        if user is None:
            self.reject(call, Refusal(404, "Not Found - no such conference"))
            return
        conference = ""
        identity: Identity | None = None
        if user == profile.factory_user:
            gate = ctx.gate.check(Action.FACTORY, request, call.flow.host, ctx.ua.now)
            if isinstance(gate, Refusal):
                self.reject(call, gate)
                return
            identity = gate.identity
        else:
            conf_id = profile.conference_id_of(user)
            obj = ctx.lookup(conf_id, request) if conf_id is not None else None
            if obj is None:
                self.reject(call, Refusal(404, "Not Found - no such conference"))
                return
            if obj.lifecycle is not Lifecycle.ACTIVE:
                self.reject(
                    call,
                    Refusal(
                        480,
                        f"Temporarily Unavailable - the conference is {obj.lifecycle.value}",
                    ),
                )
                return
            gate = ctx.gate.check(
                Action.DIAL_IN, request, call.flow.host, ctx.ua.now, conference=obj.info
            )
            if isinstance(gate, Refusal):
                self.reject(call, gate)
                return
            identity = gate.identity
            refusal = self._admission(obj, request, call.flow.host)
            if refusal is not None:
                self.reject(call, refusal, request)
                return
            conference = obj.uri
        if ctx.legs is None or ctx.driver is None:
            self.reject(call, Refusal(503, "Service Unavailable - no media server"))
            return
        if request.body:
            try:
                offer = parse_sdp(request.body)
            except SdpError as exc:
                self.reject(call, Refusal(488, f"Not Acceptable Here - {exc.reason}"))
                return
            if not any(m.media == "audio" and not m.rejected for m in offer.media):
                self.reject(call, Refusal(488, "Not Acceptable Here - no audio stream offered"))
                return
        timer = ctx.timers.verdict(request)  # RFC 4028 s9
        if isinstance(timer, Refusal):
            self.reject(call, timer)
            return
        p = Participant(
            call, conference, aor_of(request), ParticipantState.INCOMING, identity=identity
        )
        ctx.calls.add(p)
        ctx.spawn(self._join(p, request, replaces, timer), f"join {call.call_id}")

    def confirmed(self, call: Call, body: bytes) -> None:
        """The ACK of our 200. After an offerless INVITE it carries the caller's answer to
        the media server's offer, which completes the leg (RFC 3264 s4, RFC 3725)."""
        p = self.ctx.calls.get(call)
        if p is None or p.leg is None or not p.leg.needs_answer:
            return
        if body:
            p.leg.complete(body)
            return
        log.info("%s sent no answer in its ACK: hanging up", p.caller)
        self.ctx.spawn(self.departures.hang_up(p, remove_user=True), f"no answer {call.call_id}")

    def reject(self, call: Call, refusal: Refusal, request: Request | None = None) -> None:
        if call.state is not CallState.INCOMING:
            return
        log.info("refused %s: %d %s", call.call_id, refusal.status, refusal.reason)
        ua = self.ctx.ua
        if refusal.challenge and request is not None:
            digest = self._conference_realm(request)
            challenges = digest.challenges(ua.now) if digest is not None else []
            headers = [("WWW-Authenticate", c.to_header()) for c in challenges]
            ua.reject(call, 401, refusal.reason, headers=headers)
        else:
            ua.reject(call, refusal.status, refusal.reason, headers=refusal.headers)

    def _conference_realm(self, request: Request) -> DigestServer | None:
        """The digest server of the conference a request names (its realm
        ``<conference-id>@<domain>``); a bounded few are kept, the oldest dropped."""
        uri = request.uri
        user = uri.user if isinstance(uri, SipURI) else None
        conf_id = self.ctx.profile.conference_id_of(user) if user is not None else None
        if conf_id is None:
            return None
        realm = f"{conf_id}@{self.ctx.profile.domain}"
        servers = self._conference_digest
        server = servers.pop(realm, None)
        if server is None:
            server = DigestServer(DigestConfig(realm=realm), lambda _user, _alg: None)
        servers[realm] = server
        while len(servers) > _MAX_CONFERENCE_REALMS:
            del servers[next(iter(servers))]
        return server

    def _admission(self, obj: ConferenceObject, request: Request, source: str) -> Refusal | None:
        """The conference's policy; a wrong conference password counts as a failed
        authentication of ``source`` (focus.sip.lockout), as a wrong account password does."""
        passwords = conference_passwords(obj.info)
        gate, now = self.ctx.gate, self.ctx.ua.now
        locked = gate.locked(source, now) if passwords else None
        if locked is not None:
            return locked
        refusal = self._policy(obj, request, passwords)
        if refusal is not None and refusal.bad_password and gate.failed(source, now):
            return gate.locked(source, now)
        return refusal

    def _policy(
        self, obj: ConferenceObject, request: Request, passwords: tuple[str, ...]
    ) -> Refusal | None:
        uri = request.uri
        given = uri.params.get("password") if isinstance(uri, SipURI) else None
        authenticated = False
        digest = self._conference_realm(request) if passwords else None
        realm = digest.config.realm if digest is not None else ""
        if digest is not None and request.headers.get_all("Authorization"):
            result = None
            for password in passwords:
                lookup = _ha1_of(realm, password)
                result = check_request(request, digest, self.ctx.ua.now, ha1_for=lookup)
                if result.ok or result.outcome is not AuthOutcome.WRONG:
                    break
            if result is not None and result.ok:
                authenticated = True
            elif result is not None and result.outcome is not AuthOutcome.MISSING:
                return WRONG_PASSWORD
        return admit(obj.info, aor_of(request), password=given, authenticated=authenticated)

    # ---- joining

    async def _join(
        self,
        p: Participant,
        request: Request,
        replaces: Participant | None,
        timer: TimerAnswer | None,
    ) -> None:
        ctx = self.ctx
        call = p.call
        assert ctx.legs is not None and ctx.driver is not None
        created = False
        try:
            if not p.conference:
                ctx.calls.set_conference(p, self._create_ad_hoc())
                ctx.calls.creators[p.conference] = p
                created = True
            leg = await ctx.legs.open(request.body)
            ctx.calls.set_leg(p, leg)
            self._check_alive(p)
            p.entity = self._add_user(p, request)
            p.move(ParticipantInput.MEDIA_UP)
            await ctx.mix(p, strict=True)
            self._check_alive(p)
            p.answer = parse_sdp(leg.answer)
            ctx.ua.accept(
                call,
                leg.answer,
                contact=ctx.focus_contact(p.conference, call.flow.transport),
                headers=[ctx.call_info(p.conference), *(timer.headers() if timer else ())],
            )
            ctx.timers.answered(p, timer)
            p.move(ParticipantInput.CONNECTED)
            log.info("%s joined %s (%s)", p.caller, p.conference, call.call_id)
            await self.keypad.watch(p)
            if replaces is not None and not replaces.left():
                # RFC 4579 s5.9: the new UA is in; the replaced one is sent away.
                await self.departures.hang_up(replaces, remove_user=replaces.entity != p.entity)
        except _Gone:
            await self.departures.undo(p, created)
        except MediaLegError as exc:
            await self.departures.undo(p, created)
            self.reject(call, Refusal(exc.status, f"Service Unavailable - {exc}"))
        except MediaDriverError as exc:
            await self.departures.undo(p, created)
            self.reject(call, Refusal(503, f"Service Unavailable - mixer refused: {exc}"))
        except CoreError as exc:
            await self.departures.undo(p, created)
            self.reject(call, refusal_for(exc))
        except (SdpError, ValueError) as exc:
            await self.departures.undo(p, created)
            self.reject(call, Refusal(500, f"Server Internal Error - {exc}"))
        except BaseException:
            await self.departures.undo(p, created)
            if call.state is CallState.INCOMING:
                self.ctx.ua.reject(call, 500, "Server Internal Error")
            raise

    @staticmethod
    def _check_alive(p: Participant) -> None:
        if p.left() or p.call.state is CallState.ENDED:
            raise _Gone

    def _create_ad_hoc(self) -> str:
        """A conference cloned from the ad hoc blueprint; the core lists its SIP URI and
        XCON-URI in the create (``CoreConfig.participation_uri``) and keeps it ad hoc."""
        blueprint = self.ctx.profile.ad_hoc_blueprint
        changes = self.ctx.apply(CreateConference(actor=SYSTEM, clone_from=blueprint, ad_hoc=True))
        return changes[0].uri

    def _endpoint(self, p: Participant, request: Request) -> Endpoint:
        call = p.call
        sip = SipDialogId(
            call_id=call.call_id, from_tag=request.from_.tag or "", to_tag=call.local_tag
        )
        return Endpoint(
            entity=p.caller,
            display_text=request.from_.display_name,
            status=EndpointStatus.CONNECTED,
            joining_method=JoiningMethod.DIALED_IN,
            joining_info=Execution(when=self.ctx.now(), by=self.ctx.profile.factory_uri),
            media=(
                Media(id="1", type="audio", label="main-audio", status=MediaStatus(p.media_status)),
            ),
            call_info=CallInfo(sip=sip),
        )

    def _add_user(self, p: Participant, request: Request) -> str:
        ctx = self.ctx
        endpoint = self._endpoint(p, request)
        obj = ctx.store.get(p.conference)
        existing = user_for(obj.info, p.caller) if obj is not None else None
        # An authenticated caller is her account's XCON user (RFC 6501 s4.6.5): a second
        # phone of hers, or the user CCMP added for her, gets this endpoint.
        account = p.identity.user_id if p.identity is not None else None
        if existing is None and obj is not None and account is not None:
            existing = obj.info.user(account)
        if existing is not None and existing.entity is not None:
            # Invited ahead (CCMP add with a dial-in target): the same user connects now.
            endpoint = dataclasses.replace(endpoint, entity=endpoint_entity(existing, p.caller))
            ctx.apply(
                UpdateUser(
                    actor=SYSTEM,
                    uri=p.conference,
                    user=User(entity=existing.entity, endpoints=(endpoint,)),
                )
            )
            return existing.entity
        user = User(
            entity=account or f"xcon-userid:AUTO_GENERATE_1@{ctx.config.xcon_domain}",
            display_text=request.from_.display_name,
            endpoints=(endpoint,),
        )
        # A party who dials a sidebar's own URI (an external sidebar, RFC 6504 s7.2's Fred)
        # is that sidebar's user only: a sidebar's users are its own (RFC 5239 s9.4.2).
        changes = ctx.apply(AddUser(actor=SYSTEM, uri=p.conference, user=user))
        for change in changes:
            if isinstance(change, UserAdded):
                return change.user
        raise ValueError("the core added no user")
