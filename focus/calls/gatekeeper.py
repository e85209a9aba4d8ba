"""The SIP side of :mod:`focus.authority`: who a request is from, and its answer (pure).

:meth:`Gatekeeper.check` takes a request, the address it came from and ``now``, and returns
either :class:`~focus.authority.Allowed` (with the identity found) or the
:class:`~focus.calls.admission.Refusal` to answer:

* the identity is, in this order: the one the call already has (an in-dialog request of a
  call whose INVITE was authenticated is not challenged again); a P-Asserted-Identity
  (RFC 3325 s9.1) when the request came from one of the profile's ``trusted_proxies``
  (from anyone else the header is ignored); the account whose digest credentials
  (RFC 3261 s22, username = account name, realm = the profile's ``digest_realm``) verify
  against its stored HA1;
* a rule that needs a user and found none: 401 with one challenge per algorithm, SHA-256
  first (RFC 8760 s2.4), ``stale=true`` when the nonce had expired (RFC 7616 s3.3);
* wrong credentials or a replayed nonce-count: 403, counted as a failure of the source
  address; :mod:`focus.sip.lockout` then refuses a source that failed too often (403
  without a look at its credentials) and reports it once through ``on_lockout``;
* an identity the rule does not allow: 403 with the rule's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from focus.authority import (
    Action,
    Allowed,
    AuthorizationPolicy,
    Forbidden,
    Identity,
    Who,
    decide,
)
from focus.calls.admission import Refusal, aor_of, same_aor
from focus.sip.digest import AuthOutcome, DigestConfig, DigestServer, check_request
from focus.sip.errors import SipParseError
from focus.sip.flow import IpNetwork, in_networks
from focus.sip.headers import parse_name_addr
from focus.sip.lockout import LockedOut, Lockout, LockoutConfig
from focus.sip.message import Request
from focus.sip.uri import SipURI
from focus.xcon.model import ConferenceInfo, Role

__all__ = ["GateConfig", "Gatekeeper"]


@dataclass(frozen=True, slots=True)
class GateConfig:
    """realm: the digest realm of accounts (the profile's domain unless set);
    domain: the SIP domain (an asserted identity ``sip:NAME@DOMAIN`` is account NAME);
    policy: the rule per action; trusted_proxies: whose P-Asserted-Identity is believed;
    nonce_lifetime: seconds a challenge's nonce is good for; lockout: brute-force limits."""

    realm: str
    domain: str
    policy: AuthorizationPolicy = field(default_factory=AuthorizationPolicy)
    trusted_proxies: tuple[IpNetwork, ...] = ()
    nonce_lifetime: float = 300.0
    lockout: LockoutConfig = field(default_factory=LockoutConfig)


class Gatekeeper:
    """Authentication and authorization of SIP requests (see the module docstring).

    ``account(name)`` is the identity of account ``name`` (None: no such account);
    ``ha1_for(name, algorithm)`` its stored HA1 for the realm (None: no SIP credentials)."""

    def __init__(
        self,
        config: GateConfig,
        account: Callable[[str], Identity | None],
        ha1_for: Callable[[str, str], str | None],
        on_lockout: Callable[[LockedOut], None] = lambda _event: None,
    ) -> None:
        self.config = config
        self._account = account
        self.digest = DigestServer(
            DigestConfig(realm=config.realm, nonce_lifetime=config.nonce_lifetime), ha1_for
        )
        self.lockout = Lockout(config.lockout)
        self._on_lockout = on_lockout

    def trusted(self, source: str) -> bool:
        """Whether ``source`` (an IP address) is one of the trusted proxies."""
        return in_networks(source, self.config.trusted_proxies)

    def check(
        self,
        action: Action,
        request: Request,
        source: str,
        now: float,
        *,
        known: Identity | None = None,
        conference: ConferenceInfo | None = None,
    ) -> Allowed | Refusal:
        """May ``request`` (from address ``source``) do ``action``? ``known``: the identity
        of the call it belongs to; ``conference``: the conference concerned (the caller's
        ``<roles>`` there rank with her account's role)."""
        rule = self.config.policy.rule(action)
        identity = known or self._asserted(request, source)
        if identity is None and request.headers.get_all("Authorization"):
            found = self._digest(request, source, now)
            if isinstance(found, Refusal):
                if found.status == 401 and not _needs_user(action, self.config.policy):
                    found = None  # a stale or foreign nonce: anonymous where that is enough
                else:
                    return found
            identity = found
        roles = _roles_in(conference, identity) if conference is not None else ()
        verdict = decide(action, rule, identity, caller=aor_of(request), roles=roles)
        if isinstance(verdict, Allowed):
            return verdict
        if isinstance(verdict, Forbidden):
            return Refusal(403, f"Forbidden - {verdict.reason}")
        return self.locked(source, now) or self._challenge(
            f"Unauthorized - {verdict.reason}", now, stale=False
        )

    # ---- identities

    def _asserted(self, request: Request, source: str) -> Identity | None:
        """The first SIP URI of P-Asserted-Identity, from a trusted proxy only."""
        values = request.headers.get_all("P-Asserted-Identity")
        if not values or not self.trusted(source):
            return None
        for value in values:
            for part in value.split(","):
                try:
                    uri = parse_name_addr(part.strip(), "P-Asserted-Identity").uri
                except SipParseError:
                    continue
                if not isinstance(uri, SipURI):
                    continue  # a tel: URI names no account (RFC 3325 s9.1 allows both)
                aor = str(SipURI(uri.host, user=uri.user, scheme=uri.scheme))
                if uri.user and uri.host.lower() == self.config.domain.lower():
                    account = self._account(uri.user)
                    if account is not None:
                        return Identity(
                            aor, account.account, account.user_id, account.role, asserted=True
                        )
                return Identity(aor, asserted=True)
        return None

    def _digest(self, request: Request, source: str, now: float) -> Identity | Refusal | None:
        """The account whose credentials verify; a Refusal for bad ones; None if the
        request has none for our realm (e.g. only a conference password's)."""
        locked = self.locked(source, now)
        if locked is not None:
            return locked
        result = check_request(request, self.digest, now)
        outcome = result.outcome
        if outcome is AuthOutcome.MISSING:
            return None
        if outcome is AuthOutcome.OK and result.username is not None:
            account = self._account(result.username)
            if account is not None:
                self.lockout.succeeded(source)
                return account
            outcome = AuthOutcome.WRONG  # removed since its HA1 was looked up
        if outcome is AuthOutcome.STALE:
            return self._challenge("Unauthorized - the nonce has expired", now, stale=True)
        if outcome in (AuthOutcome.MALFORMED, AuthOutcome.BAD_NONCE):
            return self._challenge(f"Unauthorized - {result.detail}", now, stale=False)
        if self.failed(source, now, result.username):
            return _locked(source)
        what = "replayed credentials" if outcome is AuthOutcome.REPLAY else "wrong credentials"
        return Refusal(403, f"Forbidden - {what} for {result.username!r}")

    def failed(self, source: str, now: float, username: str | None = None) -> bool:
        """One failed authentication from ``source`` (also a wrong conference password);
        True when it locks the source out (reported through ``on_lockout``)."""
        event = self.lockout.failed(source, now, username)
        if event is not None:
            self._on_lockout(event)
        return event is not None

    def locked(self, source: str, now: float) -> Refusal | None:
        """The 403 for a source that is locked out, else None."""
        return _locked(source) if self.lockout.locked(source, now) else None

    def _challenge(self, reason: str, now: float, *, stale: bool) -> Refusal:
        headers = tuple(
            ("WWW-Authenticate", c.to_header()) for c in self.digest.challenges(now, stale=stale)
        )
        return Refusal(401, reason, headers=headers)


def _roles_in(info: ConferenceInfo, identity: Identity | None) -> tuple[Role | str, ...]:
    """Her ``<roles>`` in the conference: the user that is her account (XCON-USERID) or has
    her authenticated address as an endpoint (RFC 6501 s4.6.5)."""
    if identity is None or info.users is None:
        return ()
    for user in info.users.users:
        mine = identity.user_id is not None and user.entity == identity.user_id
        if mine or any(e.entity and same_aor(e.entity, identity.aor) for e in user.endpoints):
            return user.roles or ()
    return ()


def _needs_user(action: Action, policy: AuthorizationPolicy) -> bool:
    return policy.rule(action).who in (Who.AUTHENTICATED, Who.MODERATOR)


def _locked(source: str) -> Refusal:
    return Refusal(
        403, f"Forbidden - too many failed authentications from {source}; try again later"
    )
