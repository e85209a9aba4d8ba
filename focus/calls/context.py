"""What every call flow of the focus shares (asyncio adapter): the core, the user agent, the
media legs and the mixer, the registry of calls, the configuration and the clock, and the
few acts more than one flow performs (apply a command as the SIP front end, record an
endpoint status, re-plan a conference tree's media, build our isfocus Contact).

The flows (:mod:`~focus.calls.dial_in`, :mod:`~focus.calls.dial_out`,
:mod:`~focus.calls.transfer`, :mod:`~focus.calls.hold`, :mod:`~focus.calls.keypad`,
:mod:`~focus.calls.leaving`, :mod:`~focus.calls.recovery`) each get the one
:class:`CallContext`; :class:`~focus.calls.focus.ConferenceFocus` routes SIP events and core
changes to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from focus.authority import Action, Identity, rules_text
from focus.calls.admission import Refusal
from focus.calls.gatekeeper import GateConfig, Gatekeeper
from focus.calls.participant import Participant
from focus.calls.registry import CallRegistry
from focus.calls.timers import SessionTimers
from focus.core.changes import Change, Origin
from focus.core.commands import Command, UpdateUser
from focus.core.core import conference_id
from focus.core.errors import CoreError
from focus.core.policy import Actor
from focus.core.state import ConferenceObject, ObjectKind
from focus.core.store import ConferenceStore
from focus.mediaplan import root_uri
from focus.mediaplan.reconcile import MediaReconciler
from focus.settings import SipProfile
from focus.sip.aio.ua import UserAgent
from focus.sip.flow import TransportKind
from focus.sip.headers import NameAddr
from focus.sip.lockout import LockedOut
from focus.sip.message import Request
from focus.sip.uri import Params, SipURI
from focus.sip.uri_patterns import UriPatterns
from focus.xcon.model import (
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    Execution,
    User,
)
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.legs import MediaLeg, MediaLegs

__all__ = ["SYSTEM", "CallContext", "FocusConfig", "wall_clock"]

log = logging.getLogger(__name__)

#: The focus acts in the core as the system (its own policy checks happened at admission).
SYSTEM = Actor.system()


def wall_clock() -> datetime:
    """Now, to the second, as the conference documents record times (RFC 4575 s5.7.4)."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class FocusConfig:
    """profile: the SIP identity (domain, factory and conference URIs) and call policy;
    xcon_domain: the core's domain (XCON-URIs ``xcon:confN@xcon_domain``);
    clock: the wall clock for joining/disconnection times in the documents (a parameter so
    tests can fix it); shutdown_timeout: how long closing waits for the BYEs of open calls."""

    profile: SipProfile
    xcon_domain: str
    clock: Callable[[], datetime] = wall_clock
    shutdown_timeout: float = 2.0


class CallContext:
    """The services and shared acts of the focus's call flows (see the module docstring).
    ``legs``/``driver`` ``None``: no media server (every INVITE is answered 503)."""

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
        self.config = config
        self.profile = config.profile
        self.calls = CallRegistry()
        # Where the focus may call (toll fraud: never anywhere it is asked to).
        targets = self.profile.dialout_targets
        self.dialout_targets = (
            UriPatterns(targets)
            if targets is not None
            else UriPatterns.anyone_at([self.profile.domain, *(h for h, _ in ua.local.values())])
        )
        # One media plan per conference tree: the conference's own joins and its sidebars'
        # (whisper, coaching, floor control) come from the same planner, never overwrite.
        self.media = MediaReconciler(driver) if driver is not None else None
        self.timers = SessionTimers(ua, self.profile.session_timer, self.spawn)
        self.gate = self._gatekeeper()
        self._tasks: set[asyncio.Task[None]] = set()

    def _gatekeeper(self) -> Gatekeeper:
        """Who may do what over SIP: the profile's rules, accounts' HA1s, the lock-out."""
        profile, accounts = self.profile, self.store.accounts
        realm = profile.digest_realm

        def account(name: str) -> Identity | None:
            found = accounts.get(name)
            if found is None:
                return None
            aor = f"sip:{found.name}@{profile.domain}"
            return Identity(aor, found.name, found.user_id, found.role)

        def locked_out(event: LockedOut) -> None:
            # fail2ban-style: source and username only, never a password or a response
            log.warning(
                "SIP authentication locked out %s for %.0f s after %d failures (last user %r)",
                event.source,
                event.until - self.ua.now,
                event.failures,
                event.username,
            )

        config = GateConfig(
            realm=realm,
            domain=profile.domain,
            policy=profile.authorization,
            trusted_proxies=profile.trusted_networks,
            nonce_lifetime=profile.nonce_lifetime,
            lockout=profile.lockout,
        )
        log.info("SIP authorization: %s (digest realm %r)", rules_text(config.policy), realm)
        return Gatekeeper(
            config, account, lambda name, alg: accounts.sip_ha1(name, alg, realm), locked_out
        )

    def allowed(
        self,
        action: Action,
        request: Request,
        source: str,
        participant: Participant | None = None,
        conference: ConferenceObject | None = None,
    ) -> bool:
        """Whether the profile lets ``request`` (not an INVITE; from address ``source``, in
        ``participant``'s dialog if any) do ``action``; a refusal (401 challenge, 403) is
        answered here. An identity proven in a call's dialog is kept for the call."""
        gate = self.gate.check(
            action,
            request,
            source,
            self.ua.now,
            known=participant.identity if participant is not None else None,
            conference=conference.info if conference is not None else None,
        )
        if isinstance(gate, Refusal):
            log.info(
                "refused %s %s: %d %s", request.method, request.call_id, gate.status, gate.reason
            )
            self.ua.respond(request, gate.status, reason=gate.reason, headers=gate.headers)
            return False
        if participant is not None and participant.identity is None:
            participant.identity = gate.identity
        return True

    # ---- the core, as the SIP front end

    def apply(self, command: Command) -> list[Change]:
        return self.store.apply(command, origin=Origin.SIP)

    def now(self) -> datetime:
        return self.config.clock()

    def record_status(
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
                endpoint, disconnection_info=Execution(when=self.now(), by=self.profile.factory_uri)
            )
        try:
            self.apply(
                UpdateUser(
                    actor=SYSTEM, uri=conference, user=User(entity=entity, endpoints=(endpoint,))
                )
            )
        except CoreError as exc:
            log.info("status %s for %s not recorded: %s", status, entity, exc)

    def set_status(
        self, p: Participant, status: EndpointStatus, method: DisconnectionMethod | None = None
    ) -> None:
        if p.entity is not None:
            self.record_status(p.conference, p.entity, p.caller, status, method)

    def lookup(self, conf_id: str, request: Request) -> ConferenceObject | None:
        """The conference or sidebar a Request-URI's user part names."""
        obj = self.store.get(f"xcon:{conf_id}@{self.config.xcon_domain}")
        if obj is None:
            uri = request.uri
            if isinstance(uri, SipURI):
                obj = self.store.find(str(SipURI(uri.host, user=uri.user, port=uri.port)))
        if obj is None or obj.kind not in _CONFERENCE_KINDS:
            return None
        return obj

    def lookup_request(self, request: Request) -> ConferenceObject | None:
        uri = request.uri
        if not isinstance(uri, SipURI) or uri.user is None:
            return None
        conf_id = self.profile.conference_id_of(uri.user)
        return self.lookup(conf_id, request) if conf_id is not None else None

    def root(self, uri: str) -> str:
        """The conference at the top of ``uri``'s tree (itself unless a sidebar)."""
        return root_uri(uri, self.store.get)

    # ---- SIP identity

    def focus_contact(self, conference_uri: str, transport: TransportKind) -> NameAddr:
        """``<sip:CONF@our-address>;isfocus`` (RFC 4579 s3): the conference URI, routable."""
        kind = self._kind(transport)
        host, port = self.ua.local[kind]
        user = self.profile.conference_user_part(conference_id(conference_uri))
        params = Params([("transport", "tcp")]) if kind is TransportKind.TCP else Params()
        uri = SipURI(host, user=user, port=port, params=params)
        return NameAddr(uri, params=Params([("isfocus", None)]))

    def factory_contact(self, transport: TransportKind) -> NameAddr:
        host, port = self._local(transport)
        return NameAddr(SipURI(host, user=self.profile.factory_user, port=port))

    def conference_target(self, conference_uri: str) -> SipURI:
        """The conference URI at our UDP address (what a REFERred user is sent to)."""
        host, port = self._local(TransportKind.UDP)
        return SipURI(
            host, user=self.profile.conference_user_part(conference_id(conference_uri)), port=port
        )

    def _local(self, transport: TransportKind) -> tuple[str, int]:
        return self.ua.local[self._kind(transport)]

    def _kind(self, transport: TransportKind) -> TransportKind:
        """``transport`` if we listen on it, else any transport we listen on."""
        local = self.ua.local
        return transport if transport in local else next(iter(local))

    def sip_uri(self, conference_uri: str) -> str:
        """The SIP conference URI (in the profile's domain) of an XCON-URI."""
        return self.profile.conference_uri(conference_id(conference_uri))

    @staticmethod
    def call_info(conference_uri: str) -> tuple[str, str]:
        """RFC 7082 s3: the conference's XCON-URI, where CCMP clients manipulate it."""
        return ("Call-Info", f"<{conference_uri}>;purpose=ccmp")

    # ---- media

    def connections(self, root: str) -> dict[str, str | tuple[str, ...]]:
        """{user entity -> media connection ids} of the calls in the conference ``root`` and
        its sidebars (people who dialled a sidebar's own URI included; a user may have
        several calls, e.g. phones sharing an AOR)."""
        found: dict[str, tuple[str, ...]] = {}
        for uri in self.calls.conferences():
            if self.root(uri) != root:
                continue
            for p in self.calls.in_conference(uri):
                if p.entity is not None and p.leg is not None and p.mixable():
                    found[p.entity] = (*found.get(p.entity, ()), p.leg.connection)
        return dict(found)

    async def refresh_media(self, uri: str) -> None:
        """Makes the media server match the core for the tree holding ``uri`` (raises
        MediaDriverError when the media server refused part of it)."""
        if self.media is None:
            return
        root = self.root(uri)
        await self.media.refresh(uri, self.store.get, lambda: self.connections(root))

    async def mix(self, p: Participant, *, strict: bool = False) -> None:
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
                    or key == conference_id(p.conference)
                    for key in exc.failures
                )
            ):
                raise
            log.warning("media of %s not fully applied: %s", p.caller, exc)

    def spawn_refresh(self, uri: str) -> None:
        async def run() -> None:
            try:
                await self.refresh_media(uri)
            except MediaDriverError as exc:
                log.warning("media of %s not fully applied: %s", uri, exc)

        self.spawn(run(), f"media {uri}")

    async def abandon(self, leg: MediaLeg) -> None:
        """Close a leg; an offerless one whose callee never answered is first ACKed
        rejecting every stream (RFC 3264 s6: port 0)."""
        assert self.legs is not None
        await self.legs.abandon(leg)

    async def drop_media(self, uri: str) -> None:
        """The tree rooted at ``uri`` ended: its mixers go."""
        if self.media is not None:
            with contextlib.suppress(MediaDriverError):
                await self.media.drop(uri)

    # ---- background work

    def spawn(self, job: Awaitable[None], name: str) -> None:
        """Run ``job`` in the background; a failure is logged, never lost silently."""

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

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


_CONFERENCE_KINDS = (ObjectKind.CONFERENCE, ObjectKind.SIDEBAR_BY_REF, ObjectKind.SIDEBAR_BY_VAL)
