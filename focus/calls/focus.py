"""The conference focus (RFC 4579): SIP calls in and out, the core as the one state.

:class:`ConferenceFocus` is the application of the focus's :class:`~focus.sip.ua.UserAgent`
(its ``on_event``) and a subscriber of the :class:`~focus.core.store.ConferenceStore`:

* INVITE to the factory URI (``sip:conference@DOMAIN``): an ad hoc conference is created
  from the default blueprint (RFC 5239 s9.2, core ``CreateConference``) with the SIP
  conference URI in its conf-uris, and the caller joins it (RFC 4579 s5.2);
* INVITE to a conference URI: the caller joins (s5.3), if :func:`~focus.calls.admission.admit`
  lets her (deny/allowed lists, join-handling, locked, maximum-user-count, the conference
  password in a ``password`` URI parameter or as digest credentials);
* joining means: a media leg to the media server carrying the caller's offer (3PCC), the leg
  joined to the conference's mixer over CFW, the caller added to the core (endpoint status
  connected, joining-method dialed-in), then 200 with the media server's answer and
  Contact = the conference URI with ``;isfocus``;
* INVITE with a Join (RFC 3911) or Replaces (RFC 3891) header naming a participant's dialog
  with the focus: the caller joins that participant's conference (RFC 4579 s5.8); with
  Replaces the named call is then ended with BYE (s5.9, s5.10);
* SUBSCRIBE to a conference URI for the conference package: see :mod:`focus.calls.events`;
* OPTIONS to the factory or a conference URI: 200 with Contact ``;isfocus``, Allow, Accept
  (s5.13), and for a conference its XCON-URI in Call-Info (RFC 7082);
* re-INVITE with a sendonly/inactive offer: on hold (endpoint status on-hold, the join made
  inactive at the mixer); a sendrecv re-offer resumes;
* BYE or CANCEL: the leg is closed, the user removed; an ad hoc conference whose last
  participant left is deleted and its mixer destroyed;
* core changes made by others (CCMP): a user removed gets a BYE, a media status change
  (mute: recvonly) becomes a modifyjoin, a deleted conference ends every call in it;
* dial-out (RFC 4579 s5.5 from CCMP, RFC 6504 s6.1): a user added with an endpoint whose
  joining-method is dialed-out is called: an offerless leg to the media server gives the
  offer, the INVITE to the user carries it with our isfocus Contact, the user's answer goes
  to the media server in the ACK. The endpoint status follows the call (RFC 4575 s5.7.3):
  dialing-out, alerting (180), connected, or disconnected with disconnection-method busy
  (486/600) or failed (s5.7.6);
* REFER to the conference URI, in a participant's dialog or outside one (RFC 4579 s5.5,
  s5.11): Refer-To a user dials her in (progress in message/sipfrag NOTIFYs of the implicit
  subscription, RFC 3515); Refer-To with ``method=BYE`` removes that participant; with
  ``method=REFER`` the focus REFERs that user to the conference (s5.7);
* an allowed-users-list target with method ``refer`` added to an active conference (CCMP)
  makes the focus REFER that user to the conference URI (RFC 4579 s5.6, RFC 6501 s4.6.3);
  one with method ``dial-out`` makes it dial her (RFC 6504 s5.1);
* a lost media leg (the media server restarted, or ended the leg: its BYE, a refused join
  after a resync, an unjoin-notify "connection terminated") does not drop the call: a new
  leg is opened (offerless: the media server offers), the phone is re-INVITEd with that
  offer, its answer goes to the media server in the ACK, and the new leg is joined.

* the media of a conference and its sidebars are one plan (:mod:`focus.sidebar_media`),
  refreshed after every core change of the tree (the focus's own included): joins, SIP
  hold, CCMP mutes, internal/external sidebars, whisper, coaching and floor control;
* RFC 7082: OPTIONS and the 200 to INVITE carry ``Call-Info: <XCON-URI>;purpose=ccmp``;
  conferences get that URI in ``<service-uris>`` and their SIP URI in ``<conf-uris>``;
* MESSAGE to a conference URI or inside a call's dialog: see :mod:`focus.calls.chat`;
* keypad (RFC 4733 digits reported by the media server over msc-ivr, RFC 6231): the
  profile's ``dtmf_mute_toggle`` (``*6``) pressed by a participant flips her audio media
  status between sendrecv and recvonly in the core, as a CCMP mute would
  (:class:`DigitCollector` matches the digits, pure, with ``now`` passed in).

Every failure on the way in undoes what was done (leg BYEd, join dropped, user removed,
ad hoc conference deleted), so no leg is left on the media server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from focus.calls.admission import Refusal, admit, conference_passwords, same_aor
from focus.calls.chat import ChatRelay
from focus.calls.events import ConferenceEvents
from focus.core.changes import (
    Change,
    ConferenceCreated,
    ConferenceDeactivated,
    ConferenceDeleted,
    ConferenceEnded,
    ConferenceUpdated,
    Origin,
    UserAdded,
    UserRemoved,
    UserUpdated,
)
from focus.core.commands import (
    AddUser,
    Command,
    CreateConference,
    DeleteConference,
    DeleteSidebar,
    RemoveUser,
    UpdateConference,
    UpdateSidebar,
    UpdateUser,
)
from focus.core.core import conference_id
from focus.core.errors import CoreError, ErrorKind
from focus.core.policy import Actor
from focus.core.state import ConferenceObject, Lifecycle, ObjectKind
from focus.core.store import ConferenceStore
from focus.settings import SipProfile
from focus.sidebar_media import SidebarMedia, root_uri
from focus.sip.dialog import Dialog
from focus.sip.digest import DigestConfig, DigestServer, check_request
from focus.sip.errors import LocalProtocolError, SipParseError
from focus.sip.headers import NameAddr, parse_name_addr
from focus.sip.message import Request, Response
from focus.sip.refer import SIPFRAG, sipfrag
from focus.sip.sdp import Direction, SdpError, SessionDescription, parse_sdp
from focus.sip.transport import TransportKind
from focus.sip.ua import (
    Call,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallFailedError,
    CallProgress,
    CallState,
    IncomingCall,
    IncomingRequest,
    RequestCompleted,
    UAError,
    UAEvent,
    UserAgent,
)
from focus.sip.uri import Params, SipURI, parse_uri
from focus.xcon.model import (
    CallInfo,
    ConferenceDescription,
    ConferenceInfo,
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    Execution,
    JoiningMethod,
    Media,
    MediaStatus,
    SipDialogId,
    TargetMethod,
    UriEntry,
    Uris,
    User,
)
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.legs import MediaLeg, MediaLegError, MediaLegs

__all__ = [
    "ConferenceFocus",
    "DigitCollector",
    "FocusConfig",
    "Participant",
    "mixer_id",
    "toggled_mute",
]

log = logging.getLogger(__name__)

SYSTEM = Actor.system()

#: display-text of the conf-uris entry of a conference the factory created (RFC 4579 s5.4).
#: The policy itself is ``ConferenceObject.ad_hoc``; state files written before that field
#: existed are recognised by this text.
AD_HOC_MARK = "SIP conference URI (ad hoc, created by the conference factory)"


@dataclass(frozen=True, slots=True)
class FocusConfig:
    """profile: the SIP identity (domain, factory and conference URIs);
    xcon_domain: the core's domain (XCON-URIs ``xcon:confN@xcon_domain``)."""

    profile: SipProfile
    xcon_domain: str


def mixer_id(conference_uri: str) -> str:
    """The media server's conference id for an XCON-URI: its local part, CFW-safe; the
    same id the core puts in the conference's SIP URI (``conference_id``)."""
    return conference_id(conference_uri)


@dataclass(slots=True)
class DigitCollector:
    """One participant's keypad digits (RFC 4733, reported by the media server), matched
    against a key ``sequence``; sans-IO: the caller passes ``now`` and arms a timer at
    :meth:`get_timer`.

    Only the longest tail of what was pressed that can still become the sequence is kept,
    so a stray digit costs nothing ("1*6" and "**6" both complete "*6"); a pause longer
    than ``timeout`` between two digits starts over (ConfBridge's inter-digit timeout)."""

    sequence: str
    timeout: float
    pressed: str = ""
    last: float | None = None  # when the last kept digit came

    def receive(self, digit: str, now: float) -> bool:
        """A digit came at ``now``; True when it completes the sequence (then reset)."""
        if not self.sequence:
            return False
        if self.last is not None and now - self.last > self.timeout:
            self.pressed = ""
        pressed = self.pressed + digit.upper()
        while pressed and not self.sequence.startswith(pressed):
            pressed = pressed[1:]
        if pressed == self.sequence:
            self.pressed, self.last = "", None
            return True
        self.pressed = pressed
        self.last = now if pressed else None
        return False

    def get_timer(self) -> float | None:
        """When the digits collected so far go stale, or None when nothing is pending."""
        return None if self.last is None else self.last + self.timeout

    def handle_timer(self, now: float) -> None:
        if self.last is not None and now >= self.last + self.timeout:
            self.pressed, self.last = "", None


#: The keypad mute toggle flips the send half of the audio status (RFC 4575 s5.8's
#: direction words, from the participant's side): the receive half stays as it was.
_MUTE_TOGGLE = {
    MediaStatus.SENDRECV: MediaStatus.RECVONLY,
    MediaStatus.RECVONLY: MediaStatus.SENDRECV,
    MediaStatus.SENDONLY: MediaStatus.INACTIVE,
    MediaStatus.INACTIVE: MediaStatus.SENDONLY,
}


def toggled_mute(status: str) -> MediaStatus:
    """The audio media status after a keypad mute toggle (unknown words count as
    sendrecv)."""
    try:
        current = MediaStatus(status)
    except ValueError:
        current = MediaStatus.SENDRECV
    return _MUTE_TOGGLE.get(current, MediaStatus.RECVONLY)


@dataclass(eq=False, slots=True)
class Participant:
    """One phone's call in one conference, with what it holds on the way."""

    call: Call
    conference: str  # the XCON-URI
    caller: str  # the From AOR (or the dial-out target)
    entity: str | None = None  # the core user, once added
    leg: MediaLeg | None = None
    answer: SessionDescription | None = None  # our last answer to the phone
    held: bool = False
    media_status: str = MediaStatus.SENDRECV.value
    joined: bool = False  # our own 200 sent: BYE/CANCEL now mean departure
    gone: bool = False  # departure handled
    relinking: bool = False  # a new media leg is being set up
    mixed: bool = False  # the leg is established: the media plan may join it
    parent: str | None = None  # a sidebar's parent the caller was added to for this call
    keys: DigitCollector | None = None  # her keypad digits, while the mute toggle is on
    keys_timer: asyncio.TimerHandle | None = None


class _Gone(Exception):
    """The caller went away (CANCEL) while we were setting the call up."""


@dataclass
class _Stats:
    joins: int = 0
    refusals: dict[int, int] = field(default_factory=dict)


class ConferenceFocus:
    """The focus's transaction user. ``legs``/``driver`` ``None``: no media server, every
    INVITE is answered 503."""

    shutdown_timeout = 2.0  # seconds :meth:`close` waits for the BYEs of open calls

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
        self.legs = legs
        self.driver = driver
        # One media plan per conference tree: the conference's own joins and its sidebars'
        # (whisper, coaching, floor control) come from the same planner, never overwrite.
        self.sidebar_media = SidebarMedia(driver) if driver is not None else None
        self.config = config
        self.participants: dict[int, Participant] = {}  # by id(call)
        self.creators: dict[str, int] = {}  # ad hoc XCON-URI -> id() of its creator's call
        self.stats = _Stats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._digest_password: str | None = None
        self._digest = DigestServer(
            DigestConfig(realm=config.profile.domain), lambda _user: self._digest_password
        )
        self.recover()
        self._unsubscribe = store.subscribe(self._on_changes)
        ua.on_event = self.on_event
        self.events = ConferenceEvents(
            store,
            ua,
            self._subscribe_lookup,
            min_interval=config.profile.notify_interval,
            contact_for=lambda obj, kind: self._focus_contact(obj.uri, kind),
            min_expires=config.profile.min_expires,
            default_expires=config.profile.default_expires,
            max_expires=config.profile.max_expires,
        )
        # The room's URI at our address (as in our isfocus Contacts): a reply reaches it.
        self.chat = ChatRelay(
            store,
            ua,
            self._subscribe_lookup,
            lambda uri: str(self._focus_contact(uri, TransportKind.UDP).uri),
        )
        if driver is not None:
            driver.on_refused = self._joins_refused
            driver.on_unjoined = self._unjoined
            driver.on_dtmf = self.on_dtmf

    @property
    def ad_hoc(self) -> frozenset[str]:
        """XCON-URIs of the conferences the factory created (core state, so a restart keeps
        them)."""
        return frozenset(o.uri for o in self.store.objects() if _is_ad_hoc(o))

    def recover(self) -> None:
        """No call survives a restart of the process: what the core still says about calls
        of a previous run is made true again.

        * Live endpoints (connected, on hold, dialing, alerting, ...) become disconnected
          with disconnection-method failed: their calls died with the process.
        * In an ad hoc conference a user whose every endpoint was live is removed: her call
          was her whole presence, so she left; then the ad hoc rule applies as if she had
          hung up: a conference nobody is left in is deleted (no orphan conferences), one
          that still holds users CCMP added (invited, pending) is kept and stays ad hoc.
          With ``ad_hoc_end = "creator"`` the creator's call died too, so it is deleted.
        RFC 4579 has no rule for this; this is the careful operator's choice."""
        live = {
            EndpointStatus.CONNECTED,
            EndpointStatus.ON_HOLD,
            EndpointStatus.DIALING_IN,
            EndpointStatus.DIALING_OUT,
            EndpointStatus.ALERTING,
            EndpointStatus.MUTED_VIA_FOCUS,
            EndpointStatus.DISCONNECTING,
        }
        for obj in self.store.objects():
            self.advertise(obj)
            if obj.kind is not ObjectKind.CONFERENCE:
                continue
            try:
                users = obj.info.users.users if obj.info.users else ()
                if _is_ad_hoc(obj):
                    called = [
                        u
                        for u in users
                        if u.entity is not None
                        and u.endpoints
                        and all(e.status in live for e in u.endpoints)
                    ]
                    if len(called) == len(users) or self.config.profile.ad_hoc_end == "creator":
                        self._apply(DeleteConference(actor=SYSTEM, uri=obj.uri))
                        log.info("ad hoc conference %s of a previous run deleted", obj.uri)
                        continue
                    for user in called:
                        assert user.entity is not None
                        self._apply(RemoveUser(actor=SYSTEM, uri=obj.uri, entity=user.entity))
                    users = tuple(u for u in users if u not in called)
                for user in users:
                    for e in user.endpoints:
                        if e.entity is not None and user.entity is not None and e.status in live:
                            self._record_status(
                                obj.uri,
                                user.entity,
                                e.entity,
                                EndpointStatus.DISCONNECTED,
                                DisconnectionMethod.FAILED,
                            )
            except CoreError as exc:
                log.warning("could not tidy %s after a restart: %s", obj.uri, exc)

    async def close(self) -> None:
        """Ends every call, removes their users, closes every leg."""
        self._unsubscribe()
        self.events.close()
        await self.chat.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Concurrent and bounded: a phone that vanished must not hold the shutdown up for a
        # whole BYE transaction timeout.
        hangups = [self._hang_up(p, remove_user=True) for p in self.participants.values()]
        if hangups:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*hangups, return_exceptions=True), self.shutdown_timeout
                )
        if self.legs is not None:
            await self.legs.close_all()

    # ------------------------------------------------------------------ helpers

    def _spawn(self, job: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await job
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _apply(self, command: Command) -> list[Change]:
        return self.store.apply(command, origin=Origin.SIP)

    def _reject(self, call: Call, refusal: Refusal, request: Request | None = None) -> None:
        self.stats.refusals[refusal.status] = self.stats.refusals.get(refusal.status, 0) + 1
        if call.state is not CallState.INCOMING:
            return
        log.info("refused %s: %d %s", call.call_id, refusal.status, refusal.reason)
        reason = refusal.reason
        if refusal.challenge and request is not None:
            headers = [
                ("WWW-Authenticate", c.to_header()) for c in self._digest.challenges(self.ua.now)
            ]
            self.ua.reject(call, 401, reason, headers=headers)
        else:
            self.ua.reject(call, refusal.status, reason)

    def _focus_contact(self, conference_uri: str, transport: TransportKind) -> NameAddr:
        """``<sip:CONF@our-address>;isfocus`` (RFC 4579 s3): the conference URI, routable."""
        kind = transport if transport in self.ua.local else next(iter(self.ua.local))
        host, port = self.ua.local[kind]
        user = self.config.profile.conference_user_part(mixer_id(conference_uri))
        params = Params([("transport", "tcp")]) if kind is TransportKind.TCP else Params()
        uri = SipURI(host, user=user, port=port, params=params)
        return NameAddr(uri, params=Params([("isfocus", None)]))

    def sip_uri(self, conference_uri: str) -> str:
        """The SIP conference URI (in the profile's domain) of an XCON-URI."""
        return self.config.profile.conference_uri(mixer_id(conference_uri))

    @staticmethod
    def call_info(conference_uri: str) -> tuple[str, str]:
        """RFC 7082 s3: the conference's XCON-URI, where CCMP clients manipulate it."""
        return ("Call-Info", f"<{conference_uri}>;purpose=ccmp")

    def advertise(self, obj: ConferenceObject) -> None:
        """Puts the conference's SIP URI in its ``<conf-uris>`` (purpose participation: where
        phones dial) and its XCON-URI in ``<service-uris>`` (purpose ccmp, RFC 7082 s3),
        through the core, unless they are there already.

        A repair for state written before the core listed both in every create
        (``CoreConfig.participation_uri``), run by :meth:`recover`: on a store opened with
        the profile's pattern it finds them there and changes nothing."""
        if obj.kind not in (
            ObjectKind.CONFERENCE,
            ObjectKind.SIDEBAR_BY_REF,
            ObjectKind.SIDEBAR_BY_VAL,
        ):
            return
        desc = obj.info.conference_description
        sip = self.sip_uri(obj.uri)
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
                actor=SYSTEM, uri=obj.uri, patch=patch, by_ref=obj.kind is ObjectKind.SIDEBAR_BY_REF
            )
        try:
            self._apply(command)
        except CoreError as exc:
            log.info("conf-uris/service-uris of %s not set: %s", obj.uri, exc)

    # ------------------------------------------------------------------ UA events

    def on_event(self, _ua: UserAgent, event: UAEvent) -> None:
        match event:
            case IncomingCall(call=call, request=request, reinvite=False):
                self._incoming(call, request)
            case IncomingCall(call=call, request=request, reinvite=True):
                self._reinvite(call, request)
            case CallEnded(call=call, by_peer=by_peer):
                leg = self.legs.forget(call) if self.legs is not None else None
                if leg is not None:
                    log.warning("media server ended leg %s", leg.connection)
                    self._leg_lost(leg.connection)
                    return
                p = self.participants.get(id(call))
                if p is not None and by_peer:
                    self._spawn(self._departed(p), f"departure {call.call_id}")
            case IncomingRequest(request=request, dialog=dialog) if request.method == "REFER":
                self._refer(request, dialog)
            case IncomingRequest(request=request) if request.method == "NOTIFY":
                # Progress of a REFER we sent (RFC 3515 s2.4.4): noted, always accepted.
                log.info("refer progress from %s: %r", request.from_.uri, request.body[:40])
                self.ua.respond(request, 200)
            case IncomingRequest(request=request) if request.method == "SUBSCRIBE":
                self.events.subscribe(request)
            case IncomingRequest(request=request, dialog=dialog) if request.method == "MESSAGE":
                self.chat.message(request, self._dialog_conference(dialog))
            case RequestCompleted(key=key, response=response):
                self.events.completed(key, response)
            case IncomingRequest(request=request) if request.method == "OPTIONS":
                self._options(request)
            case IncomingRequest(request=request):
                self.ua.respond(request, 405)
            case CallProgress(call=call, response=response, reinvite=False):
                self._provisional(call, response)
            case CallConfirmed(call=call, body=body):
                self._confirmed(call, body)
            case CallFailed(call=call):
                p = self.participants.get(id(call))
                if p is not None and not call.outgoing and not p.joined:
                    log.info("caller gave up on %s (%s)", call.call_id, event.reason)
            case _:
                pass

    def _incoming(self, call: Call, request: Request) -> None:
        uri = request.uri
        user = uri.user if isinstance(uri, SipURI) else None
        profile = self.config.profile
        replaces: Participant | None = None
        named = _dialog_header(request, "Join") or _dialog_header(request, "Replaces")
        if named is not None:
            target = self._participant_by_dialog(*named)
            if target is None:
                # RFC 3911 s4 / RFC 3891 s3: no such dialog.
                self._reject(call, Refusal(481, "Call/Transaction Does Not Exist"))
                return
            if request.headers.get("Replaces") is not None:
                replaces = target
            user = profile.conference_user_part(mixer_id(target.conference))
        if user is None:
            self._reject(call, Refusal(404, "Not Found - no such conference"))
            return
        if user == profile.factory_user:
            conference: str | None = None
        else:
            conf_id = profile.conference_id_of(user)
            obj = self._lookup(conf_id, request) if conf_id is not None else None
            if obj is None:
                self._reject(call, Refusal(404, "Not Found - no such conference"))
                return
            if obj.lifecycle is not Lifecycle.ACTIVE:
                self._reject(
                    call,
                    Refusal(
                        480, f"Temporarily Unavailable - the conference is {obj.lifecycle.value}"
                    ),
                )
                return
            refusal = self._admission(obj, request)
            if refusal is not None:
                self._reject(call, refusal, request)
                return
            conference = obj.uri
        if self.legs is None or self.driver is None:
            self._reject(call, Refusal(503, "Service Unavailable - no media server"))
            return
        if request.body:
            # (An offerless INVITE gets the media server's offer in our 200; the caller's
            # answer in the ACK goes on to the media server.)
            try:
                offer = parse_sdp(request.body)
            except SdpError as exc:
                self._reject(call, Refusal(488, f"Not Acceptable Here - {exc.reason}"))
                return
            if not any(m.media == "audio" and not m.rejected for m in offer.media):
                self._reject(call, Refusal(488, "Not Acceptable Here - no audio stream offered"))
                return
        p = Participant(call, conference or "", _aor(request))
        self.participants[id(call)] = p
        self._spawn(self._join(p, request, replaces), f"join {call.call_id}")

    def _dialog_conference(self, dialog: Dialog | None) -> ConferenceObject | None:
        """The conference of the call whose dialog a request came in (None outside one)."""
        if dialog is None:
            return None
        for p in self.participants.values():
            if p.call.dialog is not None and p.call.dialog.id == dialog.id:
                return self.store.get(p.conference)
        return None

    def _options(self, request: Request) -> None:
        """RFC 4579 s5.13: OPTIONS tells whether a URI is a conference URI (Contact with
        ;isfocus) and which call control extensions the focus supports."""
        uri = request.uri
        user = uri.user if isinstance(uri, SipURI) else None
        profile = self.config.profile
        headers = [
            ("Allow", self.ua.allow),
            ("Accept", "application/sdp, message/sipfrag"),
            ("Supported", "join, replaces"),
        ]
        conference: str | None = None
        if user is not None and user != profile.factory_user:
            conf_id = profile.conference_id_of(user)
            obj = self._lookup(conf_id, request) if conf_id is not None else None
            if obj is None:
                self.ua.respond(request, 404, reason="Not Found - no such conference")
                return
            conference = obj.uri
        if user is not None:
            kind = TransportKind.TCP if request.via[0].transport == "TCP" else TransportKind.UDP
            contact = (
                self._focus_contact(conference, kind)
                if conference is not None
                else self._factory_contact(kind)
            )
            headers.append(("Contact", str(contact)))
        if conference is not None:
            headers.append(self.call_info(conference))
        self.ua.respond(request, 200, headers=headers)

    def _factory_contact(self, transport: TransportKind) -> NameAddr:
        kind = transport if transport in self.ua.local else next(iter(self.ua.local))
        host, port = self.ua.local[kind]
        return NameAddr(SipURI(host, user=self.config.profile.factory_user, port=port))

    def _subscribe_lookup(self, request: Request) -> ConferenceObject | None:
        uri = request.uri
        if not isinstance(uri, SipURI) or uri.user is None:
            return None
        conf_id = self.config.profile.conference_id_of(uri.user)
        return self._lookup(conf_id, request) if conf_id is not None else None

    def _lookup(self, conf_id: str, request: Request) -> ConferenceObject | None:
        obj = self.store.get(f"xcon:{conf_id}@{self.config.xcon_domain}")
        if obj is None:
            uri = request.uri
            if isinstance(uri, SipURI):
                obj = self.store.find(str(SipURI(uri.host, user=uri.user, port=uri.port)))
        if obj is None or obj.kind not in (
            ObjectKind.CONFERENCE,
            ObjectKind.SIDEBAR_BY_REF,
            ObjectKind.SIDEBAR_BY_VAL,
        ):
            return None
        return obj

    def _admission(self, obj: ConferenceObject, request: Request) -> Refusal | None:
        uri = request.uri
        given = uri.params.get("password") if isinstance(uri, SipURI) else None
        authenticated = False
        passwords = conference_passwords(obj.info)
        if passwords and request.headers.get_all("Authorization"):
            for password in passwords:
                self._digest_password = password
                try:
                    result = check_request(request, self._digest, self.ua.now)
                finally:
                    self._digest_password = None
                if result.ok:
                    authenticated = True
                    break
            else:
                return Refusal(403, "Forbidden - wrong conference password")
        return admit(obj.info, _aor(request), password=given, authenticated=authenticated)

    # ------------------------------------------------------------------ joining

    def _create_ad_hoc(self) -> str:
        """A conference cloned from the ad hoc blueprint; the core lists its SIP URI and
        XCON-URI in the create (``CoreConfig.participation_uri``) and keeps it ad hoc."""
        blueprint = self.config.profile.ad_hoc_blueprint
        changes = self._apply(CreateConference(actor=SYSTEM, clone_from=blueprint, ad_hoc=True))
        return changes[0].uri

    def _confirmed(self, call: Call, body: bytes) -> None:
        """The ACK of our 200. After an offerless INVITE it carries the caller's answer to
        the media server's offer, which completes the leg (RFC 3264 s4, RFC 3725)."""
        p = self.participants.get(id(call))
        if p is None or p.leg is None or not p.leg.needs_answer:
            return
        if body:
            p.leg.complete(body)
            return
        log.info("%s sent no answer in its ACK: hanging up", p.caller)
        self._spawn(self._hang_up(p, remove_user=True), f"no answer {call.call_id}")

    def _participant_by_dialog(
        self, call_id: str, to_tag: str, from_tag: str
    ) -> Participant | None:
        """The participant whose dialog with us a Join/Replaces header names. The tags are
        the named dialog's as its other end sees it (RFC 3891 s3: to-tag is the recipient's
        local tag); the reverse is accepted too, as some UAs send it so."""
        for p in self.participants.values():
            dialog = p.call.dialog
            if dialog is None or dialog.id.call_id != call_id or not p.joined:
                continue
            tags = {
                (dialog.id.local_tag, dialog.id.remote_tag),
                (dialog.id.remote_tag, dialog.id.local_tag),
            }
            if (to_tag, from_tag) in tags:
                return p
        return None

    async def _join(
        self, p: Participant, request: Request, replaces: Participant | None = None
    ) -> None:
        call = p.call
        assert self.legs is not None and self.driver is not None
        created = False
        try:
            if not p.conference:
                p.conference = self._create_ad_hoc()
                self.creators[p.conference] = id(call)
                created = True
            p.leg = await self.legs.open(request.body)
            self._check_alive(p)
            p.entity = self._add_user(p, request)
            p.mixed = True
            await self._mix(p, strict=True)
            self._check_alive(p)
            p.answer = parse_sdp(p.leg.answer)
            self.ua.accept(
                call,
                p.leg.answer,
                contact=self._focus_contact(p.conference, call.flow.transport),
                headers=[self.call_info(p.conference)],
            )
            p.joined = True
            self.stats.joins += 1
            log.info("%s joined %s (%s)", p.caller, p.conference, call.call_id)
            await self._watch_keys(p)
            if replaces is not None and not replaces.gone:
                # RFC 4579 s5.9: the new UA is in; the replaced one is sent away.
                await self._hang_up(replaces, remove_user=replaces.entity != p.entity)
        except _Gone:
            await self._undo(p, created)
        except MediaLegError as exc:
            await self._undo(p, created)
            self._reject(call, Refusal(exc.status, f"Service Unavailable - {exc}"))
        except MediaDriverError as exc:
            await self._undo(p, created)
            self._reject(call, Refusal(503, f"Service Unavailable - mixer refused: {exc}"))
        except CoreError as exc:
            await self._undo(p, created)
            self._reject(call, _refusal_for(exc))
        except (SdpError, ValueError) as exc:
            await self._undo(p, created)
            self._reject(call, Refusal(500, f"Server Internal Error - {exc}"))
        except BaseException:
            await self._undo(p, created)
            if call.state is CallState.INCOMING:
                self.ua.reject(call, 500, "Server Internal Error")
            raise

    def _check_alive(self, p: Participant) -> None:
        if p.call.state is CallState.ENDED:
            raise _Gone

    def _endpoint(
        self, p: Participant, request: Request | None, status: EndpointStatus, method: JoiningMethod
    ) -> Endpoint:
        call = p.call
        sip = None
        if request is not None:
            sip = SipDialogId(
                call_id=call.call_id, from_tag=request.from_.tag or "", to_tag=call.local_tag
            )
        return Endpoint(
            entity=p.caller,
            display_text=request.from_.display_name if request is not None else None,
            status=status,
            joining_method=method,
            joining_info=Execution(
                when=datetime.now(UTC).replace(microsecond=0), by=self.config.profile.factory_uri
            ),
            media=(
                Media(id="1", type="audio", label="main-audio", status=MediaStatus(p.media_status)),
            ),
            call_info=CallInfo(sip=sip) if sip is not None else None,
        )

    def _add_user(self, p: Participant, request: Request) -> str:
        endpoint = self._endpoint(p, request, EndpointStatus.CONNECTED, JoiningMethod.DIALED_IN)
        obj = self.store.get(p.conference)
        existing = _user_for(obj.info, p.caller) if obj is not None else None
        if existing is not None and existing.entity is not None:
            # Invited ahead (CCMP add with a dial-in target): the same user connects now.
            endpoint = dataclasses.replace(endpoint, entity=_endpoint_entity(existing, p.caller))
            self._apply(
                UpdateUser(
                    actor=SYSTEM,
                    uri=p.conference,
                    user=User(entity=existing.entity, endpoints=(endpoint,)),
                )
            )
            return existing.entity
        user = User(
            entity=f"xcon-userid:AUTO_GENERATE_1@{self.config.xcon_domain}",
            display_text=request.from_.display_name,
            endpoints=(endpoint,),
        )
        if obj is not None and obj.kind.is_sidebar and obj.parent:
            # A party dialled into a sidebar (an external one, s6.6): the core keeps
            # sidebar users in the parent's roster, so she joins the parent's roster too
            # (the media plan then keeps her out of the parent's audio).
            parent = self.store.get(obj.parent)
            known = _user_for(parent.info, p.caller) if parent is not None else None
            if known is not None and known.entity is not None:
                entity = known.entity
            else:
                added = self._apply(AddUser(actor=SYSTEM, uri=obj.parent, user=user))
                entity = next(c.user for c in added if isinstance(c, UserAdded))
                p.parent = obj.parent
            self._apply(
                AddUser(
                    actor=SYSTEM, uri=p.conference, user=dataclasses.replace(user, entity=entity)
                )
            )
            return entity
        changes = self._apply(AddUser(actor=SYSTEM, uri=p.conference, user=user))
        for change in changes:
            added_user = getattr(change, "user", None)
            if isinstance(added_user, str):
                return added_user
        raise ValueError("the core added no user")

    async def _undo(self, p: Participant, created: bool) -> None:
        """Leaves nothing behind of a join that did not complete."""
        self.participants.pop(id(p.call), None)
        await self._release_media(p)
        if p.entity is not None:
            self._remove_user(p)
        if created:
            await self._end_conference(p.conference)

    async def _release_media(self, p: Participant) -> None:
        self._stop_keys(p)
        leg, p.leg = p.leg, None
        if leg is None:
            return
        assert self.driver is not None and self.legs is not None
        # Re-planned without this leg: its joins (the conference's and its sidebars') go
        # before the leg does.
        await self._mix(p)
        await self._abandon(leg)  # ACKs an offerless leg first, then BYE

    def _remove_user(self, p: Participant) -> None:
        entity, p.entity = p.entity, None
        if entity is None:
            return
        parent, p.parent = p.parent, None
        for uri in (p.conference, parent) if parent else (p.conference,):
            try:
                self._apply(RemoveUser(actor=SYSTEM, uri=uri, entity=entity))
            except CoreError as exc:
                if exc.kind not in (ErrorKind.USER_NOT_FOUND, ErrorKind.NOT_FOUND):
                    log.warning("could not remove %s from %s: %s", entity, uri, exc)

    async def _end_conference(self, uri: str) -> None:
        """Deletes an ad hoc conference and destroys its mixer."""
        self.creators.pop(uri, None)
        if self.store.get(uri) is not None:
            try:
                # Sidebars end with their parent (the core refuses to delete a parent).
                for sidebar in self._sidebars_of(uri):
                    self._apply(
                        DeleteSidebar(
                            actor=SYSTEM,
                            uri=sidebar.uri,
                            by_ref=sidebar.kind is ObjectKind.SIDEBAR_BY_REF,
                        )
                    )
                self._apply(DeleteConference(actor=SYSTEM, uri=uri))
            except CoreError as exc:
                log.warning("ad hoc conference %s not deleted: %s", uri, exc)
        if self.sidebar_media is not None:
            with contextlib.suppress(MediaDriverError):
                await self.sidebar_media.drop(uri)

    # ------------------------------------------------------------------ in the call

    def _reinvite(self, call: Call, request: Request) -> None:
        p = self.participants.get(id(call))
        if p is None or p.answer is None or not p.joined:
            self.ua.reject(call, 488, "Not Acceptable Here - no session to modify")
            return
        if not request.body:
            # Offerless re-INVITE: offer what we answered last.
            self.ua.accept(call, p.answer.bump_version().to_bytes())
            p.answer = p.answer.bump_version()
            return
        try:
            offer = parse_sdp(request.body)
        except SdpError as exc:
            self.ua.reject(call, 488, f"Not Acceptable Here - {exc.reason}")
            return
        answer = _answer_like(p.answer, offer)
        if answer is None:
            self.ua.reject(call, 488, "Not Acceptable Here - the streams changed")
            return
        held = _is_hold(offer)
        self.ua.accept(call, answer.to_bytes())
        p.answer = answer
        if held != p.held:
            p.held = held
            self._spawn(self._apply_hold(p), f"hold {call.call_id}")

    async def _apply_hold(self, p: Participant) -> None:
        # The endpoint status on-hold is what the media plan reads (inactive joins).
        status = EndpointStatus.ON_HOLD if p.held else EndpointStatus.CONNECTED
        if p.entity is not None:
            obj = self.store.get(p.conference)
            existing = obj.info.user(p.entity) if obj is not None else None
            if existing is not None:
                endpoint = Endpoint(entity=_endpoint_entity(existing, p.caller), status=status)
                with contextlib.suppress(CoreError):
                    self._apply(
                        UpdateUser(
                            actor=SYSTEM,
                            uri=p.conference,
                            user=User(entity=p.entity, endpoints=(endpoint,)),
                        )
                    )
        await self._mix(p)

    def _sidebars_of(self, uri: str) -> list[ConferenceObject]:
        """Sidebars under ``uri``, deepest first (their own sidebars before them)."""
        found: list[ConferenceObject] = []
        for obj in self.store.objects():
            if obj.kind.is_sidebar and obj.parent == uri:
                found.extend(self._sidebars_of(obj.uri))
                found.append(obj)
        return found

    def connections(self, root: str) -> dict[str, str | tuple[str, ...]]:
        """{user entity -> media connection ids} of the calls in the conference ``root`` and
        its sidebars (people who dialled a sidebar's own URI included; a user may have
        several calls, e.g. phones sharing an AOR)."""
        found: dict[str, tuple[str, ...]] = {}
        for p in self.participants.values():
            if (
                p.entity is not None
                and p.leg is not None
                and p.mixed
                and not p.gone
                and root_uri(p.conference, self.store.get) == root
            ):
                found[p.entity] = (*found.get(p.entity, ()), p.leg.connection)
        return dict(found)

    async def refresh_media(self, uri: str) -> None:
        """Makes the media server match the core for the tree holding ``uri`` (raises
        MediaDriverError when the media server refused part of it)."""
        if self.sidebar_media is None:
            return
        root = root_uri(uri, self.store.get)
        await self.sidebar_media.refresh(
            uri, self.store.get, lambda: self.connections(root), mixer_id=mixer_id
        )

    def _spawn_refresh(self, uri: str) -> None:
        async def run() -> None:
            try:
                await self.refresh_media(uri)
            except MediaDriverError as exc:
                log.warning("media of %s not fully applied: %s", uri, exc)

        self._spawn(run(), f"media {uri}")

    async def _mix(self, p: Participant, *, strict: bool = False) -> None:
        """The participant's conference tree re-planned (hold, media status, sidebars).
        ``strict``: a refusal concerning this participant's own joins is raised."""
        try:
            await self.refresh_media(p.conference)
        except MediaDriverError as exc:
            mine = p.leg.connection if p.leg is not None else None
            if strict and (
                mine is None
                or any(
                    mine in (key if isinstance(key, tuple) else (key,))
                    or key == mixer_id(p.conference)
                    for key in exc.failures
                )
            ):
                raise
            log.warning("media of %s not fully applied: %s", p.caller, exc)

    async def _departed(self, p: Participant) -> None:
        """The phone hung up (BYE): leg closed, user removed, ad hoc conference ended when
        nobody is left."""
        if p.gone:
            return
        p.gone = True
        self.participants.pop(id(p.call), None)
        await self._release_media(p)
        self._remove_user(p)
        if self.config.profile.ad_hoc_end == "creator" and self.creators.get(p.conference) == id(
            p.call
        ):
            # RFC 4579 s5.12: the creator left, the ad hoc conference goes with her.
            for other in [q for q in self.participants.values() if q.conference == p.conference]:
                await self._hang_up(other, remove_user=False)
            await self._end_conference(p.conference)
            return
        await self._maybe_end(p.conference)

    async def _maybe_end(self, uri: str) -> None:
        uri = root_uri(uri, self.store.get)  # a sidebar's callers keep its parent alive
        obj = self.store.get(uri)
        if obj is None or not _is_ad_hoc(obj):
            return
        if any(root_uri(q.conference, self.store.get) == uri for q in self.participants.values()):
            return
        await self._end_conference(uri)

    async def _hang_up(self, p: Participant, *, remove_user: bool) -> None:
        """We end the call (CCMP delete, conference deleted, shutdown)."""
        if p.gone:
            return
        p.gone = True
        self.participants.pop(id(p.call), None)
        if p.call.state is CallState.INCOMING:
            self.ua.reject(p.call, 480, "Temporarily Unavailable - the conference ended")
        elif p.call.state is not CallState.ENDED:
            # Not awaited: the call is over for us whatever the phone answers to the BYE.
            self.ua.hang_up(p.call)
        await self._release_media(p)
        if remove_user:
            self._remove_user(p)

    # ------------------------------------------------------------------ dial-out

    def _provisional(self, call: Call, response: Response) -> None:
        p = self.participants.get(id(call))
        if p is not None and call.outgoing and response.status in (180, 183) and not p.joined:
            self._set_status(p, EndpointStatus.ALERTING)

    def _set_status(
        self, p: Participant, status: EndpointStatus, method: DisconnectionMethod | None = None
    ) -> None:
        if p.entity is not None:
            self._record_status(p.conference, p.entity, p.caller, status, method)

    def _record_status(
        self,
        conference: str,
        entity: str,
        endpoint_uri: str,
        status: EndpointStatus,
        method: DisconnectionMethod | None = None,
    ) -> None:
        """The endpoint status of a call (RFC 4575 s5.7.3) and how it ended (s5.7.6)."""
        endpoint = Endpoint(entity=endpoint_uri, status=status, disconnection_method=method)
        if method is not None:
            endpoint = dataclasses.replace(
                endpoint,
                disconnection_info=Execution(
                    when=datetime.now(UTC).replace(microsecond=0),
                    by=self.config.profile.factory_uri,
                ),
            )
        try:
            self._apply(
                UpdateUser(
                    actor=SYSTEM, uri=conference, user=User(entity=entity, endpoints=(endpoint,))
                )
            )
        except CoreError as exc:
            log.info("status %s for %s not recorded: %s", status, entity, exc)

    def dial_out(self, conference: str, entity: str, target: str) -> None:
        """Calls ``target`` for the user ``entity`` of ``conference`` (in the background)."""

        async def run() -> None:
            await self._dial_out(conference, entity, target)

        self._spawn(run(), f"dial-out {target}")

    async def _dial_out(self, conference: str, entity: str, target: str) -> int:
        """Calls ``target``; returns the final status (200 when she is in)."""
        if self.legs is None or self.driver is None:
            log.warning("cannot dial %s: no media server", target)
            return 503
        if any(
            q.entity == entity and q.conference == conference for q in self.participants.values()
        ):
            return 200  # already in a call
        try:
            parse_target(target)
        except ValueError as exc:
            log.warning("cannot dial %s: %s", target, exc)
            self._record_status(
                conference, entity, target, EndpointStatus.DISCONNECTED, DisconnectionMethod.FAILED
            )
            return 416
        try:
            leg = await self.legs.open(b"")
        except MediaLegError as exc:
            log.warning("dial-out to %s: no media leg: %s", target, exc)
            self._record_status(
                conference, entity, target, EndpointStatus.DISCONNECTED, DisconnectionMethod.FAILED
            )
            return 503
        try:
            # RFC 4579 s5.5: our Contact is the conference URI with isfocus, and From names
            # the conference as the calling party (as in s5.2's example).
            contact = self._focus_contact(conference, TransportKind.UDP)
            call = self.ua.dial(
                target,
                leg.answer,
                contact=contact,
                from_user=getattr(contact.uri, "user", None),
            )
        except UAError as exc:
            await self._abandon(leg)
            log.warning("cannot dial %s: %s", target, exc)
            self._record_status(
                conference, entity, target, EndpointStatus.DISCONNECTED, DisconnectionMethod.FAILED
            )
            return exc.status or 503
        except Exception:
            await self._abandon(leg)
            raise
        p = Participant(call, conference, target, entity=entity, leg=leg)
        self.participants[id(call)] = p
        self._set_status(p, EndpointStatus.DIALING_OUT)
        try:
            await self.ua.answered(call)
            result: int | bytes = call.remote_sdp
        except CallFailedError as exc:
            result = exc.status
        if isinstance(result, int):
            self.participants.pop(id(call), None)
            p.leg = None
            await self._abandon(leg)
            busy = result in (486, 600)
            log.info("dial-out to %s failed: %d", target, result)
            if not p.gone:
                self._set_status(
                    p,
                    EndpointStatus.DISCONNECTED,
                    DisconnectionMethod.BUSY if busy else DisconnectionMethod.FAILED,
                )
            return result
        try:
            leg.complete(result)
            p.mixed = True
            await self._mix(p, strict=True)
        except (MediaDriverError, ValueError) as exc:
            log.warning("dial-out to %s: mixer refused: %s", target, exc)
            await self._hang_up(p, remove_user=False)
            self._set_status(p, EndpointStatus.DISCONNECTED, DisconnectionMethod.FAILED)
            return 500
        if p.gone:
            return 487
        p.answer = parse_sdp(leg.answer)
        p.joined = True
        self.stats.joins += 1
        self._set_status(p, EndpointStatus.CONNECTED)
        log.info("%s dialed out into %s", target, conference)
        await self._watch_keys(p)
        return 200

    async def _abandon(self, leg: MediaLeg) -> None:
        """An offerless leg whose callee never answered: ACK it rejecting every stream
        (RFC 3264 s6: port 0), then BYE."""
        assert self.legs is not None
        if leg.needs_answer:
            with contextlib.suppress(Exception):
                offer = parse_sdp(leg.answer)
                leg.complete(
                    dataclasses.replace(
                        offer, media=tuple(dataclasses.replace(m, port=0) for m in offer.media)
                    ).to_bytes()
                )
        await self.legs.close(leg)

    def _dial_outs_in(self, changes: Sequence[Change]) -> None:
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

    # ------------------------------------------------------------------ lost legs

    def _joins_refused(self, error: MediaDriverError) -> None:
        """After a resync the media server refused joins: their connections are gone (a
        restarted media server has lost its SIP legs: 412)."""
        for item in error.failures:
            if isinstance(item, tuple):
                for entity in item:
                    if ":" in entity:
                        self._leg_lost(entity)

    def _unjoined(self, id1: str, id2: str, status: int) -> None:
        # RFC 6505 s4.2.4.2: status 2 = the connection was terminated.
        if status == 2:
            for entity in (id1, id2):
                if ":" in entity:
                    self._leg_lost(entity)

    def _leg_lost(self, connection: str) -> None:
        for p in list(self.participants.values()):
            if (
                p.leg is not None
                and p.leg.connection == connection
                and p.joined
                and not p.gone
                and not p.relinking
            ):
                p.relinking = True
                self._spawn(self._relink(p), f"relink {p.caller}")

    async def _relink(self, p: Participant, attempts: int = 20) -> None:
        """A new media leg for a call whose leg was lost (see the module docstring)."""
        assert self.legs is not None and self.driver is not None
        try:
            old, p.leg = p.leg, None
            if old is not None:
                await self.driver.forget_connection(old.connection)
                self.legs.forget(old.call)
                if old.call.state is not CallState.ENDED:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.legs.close(old), 2.0)
            delay = 0.1
            for _ in range(attempts):
                if p.gone:
                    return
                try:
                    leg = await self.legs.open(b"", timeout=2.0)
                    break
                except MediaLegError as exc:
                    log.info("no new leg for %s yet: %s", p.caller, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            else:
                log.warning("media for %s could not be restored: hanging up", p.caller)
                await self._hang_up(p, remove_user=True)
                return
            if p.gone or p.call.state is not CallState.CONFIRMED:
                await self._abandon(leg)
                return
            try:
                response = await self.ua.reinvite(p.call, leg.answer)
            except (UAError, LocalProtocolError) as exc:
                log.warning("cannot re-INVITE %s: %s", p.caller, exc)
                await self._abandon(leg)
                await self._hang_up(p, remove_user=True)
                return
            if not 200 <= response.status < 300 or not response.body:
                log.warning("%s refused the new media (%d)", p.caller, response.status)
                await self._abandon(leg)
                await self._hang_up(p, remove_user=True)
                return
            leg.complete(response.body)
            p.leg = leg
            p.answer = parse_sdp(leg.answer)
            await self._mix(p)
            log.info("media of %s restored on %s", p.caller, leg.connection)
            await self._watch_keys(p)
        finally:
            p.relinking = False

    # ------------------------------------------------------------------ keypad (DTMF)

    async def _watch_keys(self, p: Participant) -> None:
        """Asks the media server for the digits of the participant's (new) leg when the
        profile has a keypad mute toggle. A refusal costs her the keypad, not the call."""
        sequence = self.config.profile.dtmf_mute_toggle
        if not sequence or self.driver is None or p.leg is None or p.gone:
            return
        if p.keys is None:
            p.keys = DigitCollector(sequence, self.config.profile.dtmf_digit_timeout)
        try:
            await self.driver.watch_dtmf(p.leg.connection)
        except MediaDriverError as exc:
            log.warning("no keypad for %s: %s", p.caller, exc)

    def _stop_keys(self, p: Participant) -> None:
        if p.keys_timer is not None:
            p.keys_timer.cancel()
            p.keys_timer = None
        p.keys = None

    def on_dtmf(self, connection: str, digit: str) -> None:
        """A digit the participant on ``connection`` pressed (MediaDriver ``on_dtmf``)."""
        p = next(
            (
                q
                for q in self.participants.values()
                if q.leg is not None and q.leg.connection == connection
            ),
            None,
        )
        if p is None or p.keys is None or p.gone or not p.joined:
            return
        loop = asyncio.get_running_loop()
        if p.keys.receive(digit, loop.time()):
            self._toggle_mute(p)
        if p.keys_timer is not None:
            p.keys_timer.cancel()
            p.keys_timer = None
        deadline = p.keys.get_timer()
        if deadline is not None:
            p.keys_timer = loop.call_at(deadline, self._keys_expired, p)

    def _keys_expired(self, p: Participant) -> None:
        p.keys_timer = None
        if p.keys is not None:
            p.keys.handle_timer(asyncio.get_running_loop().time())

    def _toggle_mute(self, p: Participant) -> None:
        """Flips her audio between sendrecv and recvonly in the core (as a CCMP mute would,
        RFC 6504 s6.2): the media plan follows the change, and so do CCMP and the
        conference-package subscribers."""
        obj = self.store.get(p.conference)
        user = obj.info.user(p.entity) if obj is not None and p.entity is not None else None
        if user is None or p.entity is None:
            return
        status = toggled_mute(_media_status(user, p.caller) or p.media_status)
        entity = _endpoint_entity(user, p.caller)
        media_id = "1"
        for e in user.endpoints:
            if e.entity == entity:
                media_id = next((m.id for m in e.media if m.type in (None, "audio")), "1")
        endpoint = Endpoint(entity=entity, media=(Media(id=media_id, type="audio", status=status),))
        try:
            self._apply(
                UpdateUser(
                    actor=SYSTEM,
                    uri=p.conference,
                    user=User(entity=p.entity, endpoints=(endpoint,)),
                )
            )
        except CoreError as exc:
            log.warning("keypad mute of %s not applied: %s", p.caller, exc)
            return
        p.media_status = status.value
        log.info("%s pressed the mute toggle: audio %s", p.caller, status.value)

    # ------------------------------------------------------------------ REFER

    def _refer(self, request: Request, dialog: Dialog | None) -> None:
        """A REFER to the focus (RFC 4579 s5.5, s5.11); answered 202 and reported by
        NOTIFYs, or refused at once when it cannot be acted upon."""
        conference = self._refer_conference(request, dialog)
        if conference is None:
            self.ua.respond(request, 404, reason="Not Found - no such conference")
            return
        refer_tos = request.headers.get_all("Refer-To")
        try:
            if len(refer_tos) != 1:
                raise SipParseError.bad("exactly one Refer-To required")
            refer_to = parse_name_addr(refer_tos[0], "Refer-To")
        except SipParseError as exc:
            self.ua.respond(request, 400, reason=f"Bad Request - {exc.reason}")
            return
        uri = refer_to.uri
        if not isinstance(uri, SipURI):
            self.ua.respond(request, 416, reason="Unsupported URI Scheme")
            return
        method = (uri.params.get("method") or "INVITE").upper()
        if method not in ("INVITE", "BYE", "REFER"):
            self.ua.respond(request, 403, reason=f"Forbidden - cannot refer with {method}")
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
        self.ua.respond(request, 202)
        refer_dialog = dialog or self.ua.dialog_for(request)
        if refer_dialog is None:
            return
        cseq = request.cseq.number
        self._refer_notify(refer_dialog, cseq, 100)
        job: Awaitable[int]
        if method == "BYE":
            job = self._refer_bye(conference, target)
        elif method == "REFER":
            # RFC 4579 s5.7: the focus REFERs the target to the conference (the escaped
            # Refer-To in the URI names it; we always refer to this conference's URI).
            job = self.refer_in(conference, target)
        else:
            job = self._refer_invite(conference, target, request)
        self._spawn(self._report(job, refer_dialog, cseq), f"refer {target}")

    def _refer_conference(self, request: Request, dialog: Dialog | None) -> str | None:
        if dialog is not None:
            for p in self.participants.values():
                if p.call.dialog is not None and p.call.dialog.id == dialog.id:
                    return p.conference
            return None
        uri = request.uri
        if not isinstance(uri, SipURI) or uri.user is None:
            return None
        conf_id = self.config.profile.conference_id_of(uri.user)
        obj = self._lookup(conf_id, request) if conf_id is not None else None
        if obj is None or obj.lifecycle is not Lifecycle.ACTIVE:
            return None
        # Outside a dialog only the conference's own users may invite others in.
        if _user_for(obj.info, _aor(request)) is None:
            return None
        return obj.uri

    async def _report(self, job: Awaitable[int], dialog: Dialog, cseq: int) -> None:
        status = 500
        try:
            status = await job
        finally:
            self._refer_notify(dialog, cseq, status)

    def _refer_notify(self, dialog: Dialog, cseq: int, status: int) -> None:
        """The implicit subscription's NOTIFY (RFC 3515 s2.4.4-2.4.7)."""
        state = "terminated;reason=noresource" if status >= 200 else "active;expires=180"
        try:
            self.ua.start_request(
                dialog,
                "NOTIFY",
                body=sipfrag(status),
                content_type=SIPFRAG,
                headers=[("Event", f"refer;id={cseq}"), ("Subscription-State", state)],
            )
        except UAError as exc:
            log.info("refer NOTIFY not sent: %s", exc)

    async def _refer_bye(self, conference: str, target: str) -> int:
        """RFC 4579 s5.11: the focus ends the referred participant's call."""
        gone = [
            p
            for p in self.participants.values()
            if p.conference == conference and same_aor(p.caller, target)
        ]
        if not gone:
            return 404
        for p in gone:
            await self._hang_up(p, remove_user=True)
        return 200

    async def _refer_invite(self, conference: str, target: str, request: Request) -> int:
        """RFC 4579 s5.5: the focus dials the referred user into the conference."""
        obj = self.store.get(conference)
        if obj is None:
            return 404
        existing = _user_for(obj.info, target)
        endpoint = Endpoint(
            entity=target,
            status=EndpointStatus.PENDING,
            joining_method=JoiningMethod.DIALED_OUT,
            referred=Execution(
                when=datetime.now(UTC).replace(microsecond=0), by=str(request.from_.uri)
            ),
        )
        try:
            if existing is not None and existing.entity is not None:
                entity = existing.entity
                self._apply(
                    UpdateUser(
                        actor=SYSTEM,
                        uri=conference,
                        user=User(entity=entity, endpoints=(endpoint,)),
                    )
                )
            else:
                user = User(
                    entity=f"xcon-userid:AUTO_GENERATE_1@{self.config.xcon_domain}",
                    endpoints=(endpoint,),
                )
                changes = self._apply(AddUser(actor=SYSTEM, uri=conference, user=user))
                entity = next(c.user for c in changes if isinstance(c, UserAdded))
        except CoreError as exc:
            return _refusal_for(exc).status
        return await self._dial_out(conference, entity, target)

    async def refer_in(self, conference: str, target: str) -> int:
        """RFC 4579 s5.6: asks ``target`` (by REFER) to join ``conference``; returns the
        status of the REFER (202 when accepted)."""
        host, port = (
            self.ua.local[TransportKind.UDP]
            if TransportKind.UDP in self.ua.local
            else next(iter(self.ua.local.values()))
        )
        conf_uri = SipURI(
            host, user=self.config.profile.conference_user_part(mixer_id(conference)), port=port
        )
        try:
            response = await self.ua.request(
                target, "REFER", headers=[("Refer-To", f"<{conf_uri}>")]
            )
        except UAError as exc:
            log.warning("cannot REFER %s: %s", target, exc)
            return exc.status or 503
        return response.status

    def _targets_in(self, changes: Sequence[Change]) -> None:
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
            old = _targets(change.before.info) if change.before is not None else set()
            for uri, method in _targets(after.info) - old:
                if not uri.startswith(("sip:", "sips:")):
                    continue
                if method == TargetMethod.REFER:
                    self._spawn(self._log_refer(change.uri, uri), f"refer-in {uri}")
                elif method == TargetMethod.DIAL_OUT and _user_for(after.info, uri) is None:
                    self._spawn(self._dial_target(change.uri, uri), f"dial-out {uri}")

    async def _log_refer(self, conference: str, target: str) -> None:
        status = await self.refer_in(conference, target)
        log.info("REFER %s to %s: %d", target, conference, status)

    async def _dial_target(self, conference: str, target: str) -> None:
        user = User(
            entity=f"xcon-userid:AUTO_GENERATE_1@{self.config.xcon_domain}",
            endpoints=(
                Endpoint(
                    entity=target,
                    status=EndpointStatus.PENDING,
                    joining_method=JoiningMethod.DIALED_OUT,
                ),
            ),
        )
        try:
            changes = self._apply(AddUser(actor=SYSTEM, uri=conference, user=user))
        except CoreError as exc:
            log.warning("dial-out target %s not added: %s", target, exc)
            return
        entity = next(c.user for c in changes if isinstance(c, UserAdded))
        await self._dial_out(conference, entity, target)

    # ------------------------------------------------------------------ core changes

    def _on_changes(self, changes: Sequence[Change]) -> None:
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
            self._spawn_refresh(uri)
        # What the focus did itself it has acted on already; the rest came from CCMP or
        # the clock.
        changes = [c for c in changes if c.origin is not Origin.SIP]
        self._dial_outs_in(changes)
        self._targets_in(changes)
        for change in changes:
            if isinstance(change, (ConferenceDeleted, ConferenceEnded, ConferenceDeactivated)):
                # Deleted, or its (scheduled) time is over (RFC 5239 s7.3): calls end.
                deleted = isinstance(change, ConferenceDeleted)
                for p in [
                    q
                    for q in self.participants.values()
                    if q.conference == change.uri
                    or root_uri(q.conference, self.store.get) == change.uri
                ]:
                    if deleted:
                        p.entity = None  # gone with the conference
                    self._spawn(self._ended(p, record=not deleted), f"end {change.uri}")
                if self.sidebar_media is not None:
                    self._spawn(self._drop(self.sidebar_media, change.uri), f"drop {change.uri}")
            elif isinstance(change, UserRemoved):
                for p in self._of(change.uri, change.user):
                    p.entity = None
                    self._spawn(self._removed(p), f"remove {change.user}")
            elif isinstance(change, UserUpdated) and change.after is not None:
                user = change.after.info.user(change.user)
                for p in self._of(change.uri, change.user):
                    status = _media_status(user, p.caller) if user is not None else None
                    if status is not None:
                        p.media_status = status  # (the refresh above applies it)

    async def _ended(self, p: Participant, *, record: bool) -> None:
        """The conference ended under the call: BYE; the user stays, disconnected (booted:
        the focus ended it, RFC 4575 s5.7.6)."""
        await self._hang_up(p, remove_user=False)
        if record:
            self._set_status(p, EndpointStatus.DISCONNECTED, DisconnectionMethod.BOOTED)

    @staticmethod
    async def _drop(media: SidebarMedia, uri: str) -> None:
        with contextlib.suppress(MediaDriverError):
            await media.drop(uri)

    async def _removed(self, p: Participant) -> None:
        await self._hang_up(p, remove_user=False)
        await self._maybe_end(p.conference)

    def _of(self, conference: str, entity: str) -> list[Participant]:
        return [
            p
            for p in self.participants.values()
            if p.conference == conference and p.entity == entity
        ]


# ---------------------------------------------------------------------- pure helpers


def _aor(request: Request) -> str:
    uri = request.from_.uri
    if isinstance(uri, SipURI):
        return str(SipURI(uri.host, user=uri.user, port=uri.port, scheme=uri.scheme))
    return str(uri)


def _user_for(info: ConferenceInfo, caller: str) -> User | None:
    if info.users is None:
        return None
    for user in info.users.users:
        if any(e.entity is not None and same_aor(e.entity, caller) for e in user.endpoints):
            return user
    return None


def _dialog_header(request: Request, name: str) -> tuple[str, str, str] | None:
    """(call-id, to-tag, from-tag) of a Join (RFC 3911) or Replaces (RFC 3891) header."""
    value = request.headers.get(name)
    if value is None:
        return None
    call_id, _, rest = value.strip().partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        key, _, val = item.strip().partition("=")
        params[key.strip().lower()] = val.strip()
    return call_id.strip(), params.get("to-tag", ""), params.get("from-tag", "")


def _is_ad_hoc(obj: ConferenceObject) -> bool:
    if obj.ad_hoc:
        return True
    desc = obj.info.conference_description
    return (
        desc is not None
        and desc.conf_uris is not None
        and any(e.display_text == AD_HOC_MARK for e in desc.conf_uris.entries)
    )


def _targets(info: ConferenceInfo) -> set[tuple[str, str]]:
    users = info.users
    if users is None or users.allowed_users_list is None:
        return set()
    return {
        (t.uri, str(t.method or TargetMethod.DIAL_IN)) for t in users.allowed_users_list.targets
    }


def _endpoint_entity(user: User, caller: str) -> str:
    for e in user.endpoints:
        if e.entity is not None and same_aor(e.entity, caller):
            return e.entity
    return caller


def _media_status(user: User, caller: str) -> str | None:
    """The audio status asked for the caller's endpoint. A patch naming no endpoint entity
    (what other CCMP clients may send) is appended by the core's merge as a keyless
    endpoint, so the last mention wins."""
    found: str | None = None
    for e in user.endpoints:
        if e.entity is None or same_aor(e.entity, caller):
            for medium in e.media:
                if medium.type in (None, "audio") and medium.status is not None:
                    found = str(medium.status)
    return found


def _is_hold(offer: SessionDescription) -> bool:
    """RFC 3264 s8.4: sendonly or inactive (or the RFC 2543 c=0.0.0.0) puts us on hold."""
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.rejected:
            continue
        conn = offer.connection_of(index)
        if conn is not None and conn.is_null:
            return True
        return not offer.direction_of(index).receives
    return False


def _answer_like(
    previous: SessionDescription, offer: SessionDescription
) -> SessionDescription | None:
    """Our answer to a re-offer: the previous answer with each stream's direction the
    mirror of the offered one (RFC 3264 s6.1), the version bumped (s8). ``None`` when the
    streams do not line up with the previous session (a new stream needs a new leg)."""
    if len(offer.media) != len(previous.media):
        return None
    media = []
    for index, ours in enumerate(previous.media):
        if offer.media[index].media != ours.media:
            return None
        mirrored = offer.direction_of(index).mirror()
        if offer.media[index].rejected:
            media.append(dataclasses.replace(ours, port=0))
        else:
            media.append(ours.with_direction(_narrow(mirrored)))
    return dataclasses.replace(previous, media=tuple(media)).bump_version()


def _narrow(direction: Direction) -> Direction:
    return direction


def _refusal_for(exc: CoreError) -> Refusal:
    kind = exc.kind
    if kind is ErrorKind.RESOURCES_EXHAUSTED:
        return Refusal(486, f"Busy Here - {exc}")
    if kind in (ErrorKind.FORBIDDEN,):
        return Refusal(403, f"Forbidden - {exc}")
    if kind in (ErrorKind.NOT_FOUND,):
        return Refusal(404, f"Not Found - {exc}")
    return Refusal(500, f"Server Internal Error - {exc}")


def parse_target(text: str) -> SipURI:
    """A dial-out target as a SIP URI (raises ValueError otherwise)."""
    uri = parse_uri(text)
    if not isinstance(uri, SipURI):
        raise ValueError(f"not a SIP URI: {text}")
    return uri
