"""The process's configuration: documented frozen dataclasses, built from the command line.

Nothing in the project reads configuration from globals or the environment; ``focus.app``
receives a :class:`FocusSettings` and passes the parts on to each front end.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focus.authority import AuthorizationPolicy, RuleError
from focus.sip.flow import IpNetwork, parse_networks
from focus.sip.lockout import LockoutConfig
from focus.sip.overload import OverloadConfig
from focus.sip.parser import ParserConfig
from focus.sip.session_timer import SessionTimerConfig
from focus.sip.uri_patterns import PatternError, UriPatterns

DEFAULT_CCMP_PORT = 8080
DEFAULT_DOMAIN = "localhost"
DEFAULT_SIP_PORT = 5060
#: Where the bundled profiles live (``--profile NAME`` reads ``NAME.toml`` from here).
PROFILE_DIR = Path(__file__).resolve().parent.parent / "sip_profiles"
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_USER_PART = re.compile(r"^[A-Za-z0-9._~+-]{1,64}$")
_DTMF = re.compile(r"[0-9*#A-D]*")


#: 16384-32767, as FreeSWITCH: below the ephemeral range the kernel hands out (Linux: from
#: 32768), so no client socket on the host takes an RTP port away from the media server.
DEFAULT_RTP_PORTS = (16384, 32767)


def parse_port_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH`` (inclusive, 1024 <= LOW < HIGH <= 65535); ValueError saying what is wrong."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"expected LOW-HIGH, got {text!r}")
    first, last = int(low), int(high)
    if not 1024 <= first < last <= 65535:
        raise ValueError(f"need 1024 <= LOW < HIGH <= 65535, got {text!r}")
    return first, last


class SettingsError(ValueError):
    """A setting given by the operator is unusable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class HostPort:
    """A listen address. ``port`` 0 asks the kernel for a free port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_port: int) -> HostPort:
        """Read ``HOST:PORT``, ``HOST``, ``:PORT`` or ``[V6]:PORT``."""
        text = text.strip()
        if not text:
            raise SettingsError("empty listen address")
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise SettingsError(f"unclosed IPv6 reference in {text!r}")
            host, rest = text[1:end], text[end + 1 :]
            if rest and not rest.startswith(":"):
                raise SettingsError(f"junk after IPv6 reference in {text!r}")
            port_text = rest[1:] if rest else ""
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        elif ":" in text:
            raise SettingsError(f"write IPv6 addresses as [ADDR]:PORT, not {text!r}")
        else:
            host, port_text = text, ""
        if not port_text:
            port = default_port
        else:
            if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
                raise SettingsError(f"invalid port {port_text!r} in {text!r}")
            port = int(port_text)
        return cls(host or "127.0.0.1", port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FocusSettings:
    """Everything ``python -m focus serve`` needs.

    state_dir:      where the SQLite file (conferences, accounts, versions) lives.
    domain:         the host part of generated XCON-URIs and XCON-USERIDs.
    ccmp_listen:    the CCMP HTTP(S) listener; CCMP is served at ``ccmp_path``.
    tls_cert/key:   PEM files; when both are given CCMP is served over HTTPS only.
    blueprint_dir:  extra operator blueprints (conference-info XML files) beside the bundled ones.
    log_level:      the logging level name for the whole process.
    profile:        the SIP listener profile (domain, factory URI, timers, transports).
    sip_listen:     overrides the profile's listen address (``--sip-listen``); ``None``
                    serves no SIP at all (CCMP only, as before the focus existed).
    media_server:   SIP URI of an external RFC 6230/6505 media server; ``None`` starts the
                    bundled one inside the process on loopback ports.
    rtp_ports:      the bundled media server's RTP port range (inclusive; a leg takes two;
                    ``--rtp-ports``). The default stays below Linux's ephemeral ports
                    (32768-60999), where any socket of the host may take a port first.
    exempt_administrators_from_passwords: administrators need no conference password
                    (``--exempt-administrators-from-passwords``; off: RFC 6503 s5.1 asks it
                    of every request, see ``focus.core.core.CoreConfig``).
    """

    state_dir: Path
    domain: str = DEFAULT_DOMAIN
    ccmp_listen: HostPort = HostPort("127.0.0.1", DEFAULT_CCMP_PORT)
    ccmp_path: str = "/ccmp"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    blueprint_dir: Path | None = None
    log_level: str = "INFO"
    profile: SipProfile = field(default_factory=lambda: SipProfile())  # noqa: PLW0108 -- defined below
    sip_listen: HostPort | None = None
    media_server: str | None = None
    rtp_ports: tuple[int, int] = DEFAULT_RTP_PORTS
    exempt_administrators_from_passwords: bool = False

    def __post_init__(self) -> None:
        if self.media_server is not None and not re.match(r"^sips?:[^\s<>]+$", self.media_server):
            raise SettingsError(f"--media-server must be a SIP URI, not {self.media_server!r}")
        low, high = self.rtp_ports
        if not 1024 <= low < high <= 65535:
            raise SettingsError(f"bad RTP port range {low}-{high}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("--tls-cert and --tls-key go together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise SettingsError(f"no such file: {path}")
        if self.blueprint_dir is not None and not self.blueprint_dir.is_dir():
            raise SettingsError(f"no such blueprint directory: {self.blueprint_dir}")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise SettingsError(f"unknown log level {self.log_level!r}")
        if not self.ccmp_path.startswith("/"):
            raise SettingsError(f"the CCMP path must start with '/', not {self.ccmp_path!r}")


@dataclass(frozen=True, slots=True)
class SipProfile:
    """A SIP listener profile (``sip_profiles/NAME.toml``, like FreeSWITCH's sip_profiles).

    name:              the profile's name (its file name without ``.toml``).
    domain:            the SIP domain the focus serves; the host part of the factory and
                       conference URIs (RFC 4579 s3).
    factory_user:      user part of the conference factory URI: ``sip:FACTORY_USER@DOMAIN``.
    conference_user:   pattern of a conference URI's user part; ``{id}`` is the conference's
                       local id (``conf7`` for ``xcon:conf7@...``). The same user part is
                       accepted whatever host a request names, so phones may dial the
                       focus by IP address.
    listen:            the SIP listen address (UDP and TCP on the same port); ``--sip-listen``
                       overrides it. Port 0 picks free ports (UDP and TCP then differ).
    transports:        which of ``udp`` and ``tcp`` to serve (RFC 3261 s18 wants both).
    t1, t2, t4:        RFC 3261 timers in seconds (s17.1.1.1 Table 4).
    ad_hoc_blueprint:  the blueprint an INVITE to the factory clones; ``None``: the core's
                       default blueprint (RFC 5239 s9.2 ad hoc creation).
    user_agent:        the Server/User-Agent header value.
    ad_hoc_end:        when an ad hoc (factory) conference ends: ``last-participant`` (when
                       nobody is left) or ``creator`` (when its creator leaves, RFC 4579
                       s5.12's default policy; the others are then sent BYE).
    notify_interval:   seconds between two conference-package NOTIFYs to one subscriber
                       (RFC 4575 s3.9 recommends at least 5; changes in between coalesce).
    min_expires:       shortest conference-package subscription granted, in seconds; a
                       shorter non-zero Expires gets 423 with Min-Expires (RFC 6665
                       s4.2.1.1). 60 in production; tests lower it to see expiry quickly.
    default_expires:   granted when a SUBSCRIBE has no Expires header (RFC 4575 s3.7: 3600).
    max_expires:       longer requested subscriptions are shortened to this (s4.2.1.1).
    dtmf_mute_toggle:  keypad sequence (RFC 4733 digits 0-9 * # A-D) a participant presses
                       to mute or unmute herself, like Asterisk ConfBridge's default user
                       menu: her audio media status in the core flips between sendrecv and
                       recvonly, so the mixer, CCMP and event subscribers all see it. Empty
                       disables it (her digits are then not even collected).
    dtmf_digit_timeout: seconds allowed between two digits of that sequence; a slower
                       press starts over.
    dialout_targets:   SIP URI patterns (``sip:*@example.com``, ``sip:+1555*@gw.example.com``;
                       see focus.sip.uri_patterns) the focus may call, however the call is
                       asked for (REFER, CCMP dial-out, allowed-users-list targets): a focus
                       that calls any URI is an open relay for toll fraud. ``None`` (the
                       default): anyone in the profile's domain or at the focus's own listen
                       addresses; an empty list: nobody.
    session_expires:   RFC 4028 session timers on every call (dial-in, dial-out, the legs to
                       the media server): the interval asked for and the longest granted, in
                       seconds (1800, s4's recommendation); a call not refreshed within its
                       interval is ended with BYE, so a phone that vanished leaves. 0 turns
                       session timers off.
    min_se:            the shortest interval accepted (>= 90, RFC 4028 s5); a request asking
                       less is answered 422 with this Min-SE.
    authorization:     who may do what over SIP (``[authorization]`` table; see
                       focus.authority): one rule per action -- ``factory`` (INVITE to
                       the factory: an ad hoc conference; default ``authenticated``),
                       ``dial_in`` (INVITE to a conference, before its own admission policy;
                       ``anyone``), ``refer_dialout`` (REFER asking the focus to call or
                       refer someone; ``authenticated``, and only to dialout_targets),
                       ``refer_remove`` (REFER with method=BYE; ``moderator``),
                       ``subscribe`` (conference package; ``anyone``: RFC 4575 privacy
                       filtering applies) and ``message`` (chat; ``anyone``: only members
                       may post). A rule is ``anyone``, ``authenticated`` (an account by SIP
                       digest, or an identity asserted by a trusted proxy), ``moderator``
                       (such a user whose RFC 6501 role is moderator or administrator) or a
                       list of domains (the caller's host).
    realm:             the digest realm of SIP accounts (RFC 3261 s22.1); ``None``: the
                       domain. ``python -m focus user add --profile NAME`` stores HA1 hashes
                       for it, so changing it needs the passwords set again. A conference
                       password is asked for in its own realm ``<conference-id>@<domain>``.
    trusted_proxies:   IP addresses or CIDR networks (the Kamailio in front) whose
                       P-Asserted-Identity (RFC 3325) is believed as the authenticated
                       identity, without a challenge; from anyone else PAI is ignored.
                       Their requests are rate-limited per origin (the Via below theirs),
                       not as one source (focus.sip.overload.origin).
    nonce_lifetime:    seconds a digest challenge's nonce stays good; an older one gets a
                       new challenge with stale=true (RFC 7616 s3.3).
    auth_max_failures, auth_failure_window, auth_lockout: a source address that fails
                       authentication auth_max_failures times within auth_failure_window
                       seconds is refused (403) for auth_lockout seconds, logged once.

    Overload (issue 10; every refusal is 503, sent at once, before any media work, with a
    Retry-After drawn from [retry_after_min, retry_after_max] seconds, RFC 3261 s21.5.4 --
    except a refusal for our own load of a call that came through a proxy, which has none,
    RFC 7339 s5.10.2; see focus.sip.overload):

    max_joins_in_progress: new INVITEs are refused while this many calls are still being
                       set up (ringing, opening their media leg, joining).
    max_participants:  new INVITEs are refused while the process has this many calls.
    max_loop_lag:      seconds the event loop may run late, on average over the last few
                       measurements, before new INVITEs are refused (0: never).
    max_call_rate:     new INVITEs taken per second over all sources (0: no limit); joins
                       share the one event loop with CCMP and the calls already up.
    retry_after_min/retry_after_max: the Retry-After range, in seconds.
    source_rate:       new out-of-dialog INVITE, SUBSCRIBE and MESSAGE requests per second
                       one source IP may send on average (0: no limit) ...
    source_burst:      ... and at once.
    max_pending_per_source: unanswered server transactions one source IP may have open;
                       a new out-of-dialog request beyond it gets 503 (0: no limit).
    max_subscriptions_per_conference / max_subscriptions_per_source: conference-package
                       subscriptions one conference / one source IP may have; a SUBSCRIBE
                       beyond either gets 503 with Retry-After and a reason naming the limit.
    max_message_size:  largest SIP message accepted, in octets: a larger UDP datagram gets
                       513 Message Too Large (when a response can be built), a TCP stream
                       announcing one is answered 513 and closed (RFC 3261 s18.3).
    media_timeout:     seconds without RTP and RTCP from a joined call, not on hold, after
                       which the media server tells the focus (a media-timeout event, see
                       mediactrl/README.md) and the call is ended with BYE (60; 0: off).
                       Values below 10 are for tests: a phone's RTCP may come every 5 s.
    """

    name: str = "default"
    domain: str = DEFAULT_DOMAIN
    factory_user: str = "conference"
    conference_user: str = "{id}"
    listen: HostPort = HostPort("127.0.0.1", DEFAULT_SIP_PORT)
    transports: tuple[str, ...] = ("udp", "tcp")
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    ad_hoc_blueprint: str | None = None
    user_agent: str = "xcon-focus"
    ad_hoc_end: str = "last-participant"
    notify_interval: float = 5.0
    min_expires: int = 60
    default_expires: int = 3600
    max_expires: int = 86400
    dtmf_mute_toggle: str = "*6"
    dtmf_digit_timeout: float = 2.0
    dialout_targets: tuple[str, ...] | None = None
    session_expires: int = 1800
    min_se: int = 90
    authorization: AuthorizationPolicy = field(default_factory=AuthorizationPolicy)
    realm: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    nonce_lifetime: float = 300.0
    auth_max_failures: int = 5
    auth_failure_window: float = 60.0
    auth_lockout: float = 300.0
    max_joins_in_progress: int = 16
    max_participants: int = 2000
    max_loop_lag: float = 0.25
    max_call_rate: float = 20.0
    retry_after_min: int = 5
    retry_after_max: int = 15
    source_rate: float = 20.0
    source_burst: int = 40
    max_pending_per_source: int = 64
    max_subscriptions_per_conference: int = 500
    max_subscriptions_per_source: int = 50
    max_message_size: int = 65535
    media_timeout: int = 60

    def __post_init__(self) -> None:
        self._check_authentication()
        try:
            self.overload  # noqa: B018 -- building it is the check
        except ValueError as exc:
            raise SettingsError(f"profile {self.name}: {exc}") from None
        if min(self.max_joins_in_progress, self.max_participants) < 1:
            raise SettingsError(
                f"profile {self.name}: max_joins_in_progress and max_participants must be >= 1"
            )
        if min(self.max_subscriptions_per_conference, self.max_subscriptions_per_source) < 1:
            raise SettingsError(f"profile {self.name}: subscription limits must be >= 1")
        if not 1024 <= self.max_message_size <= 1_048_576:
            raise SettingsError(f"profile {self.name}: max_message_size must be 1024..1048576")
        if self.session_expires and not 90 <= self.min_se <= self.session_expires:
            raise SettingsError(
                f"profile {self.name}: need 90 <= min_se <= session_expires (RFC 4028 s4, s5),"
                " or session_expires = 0 for no session timers"
            )
        if self.media_timeout < 0:
            raise SettingsError(f"profile {self.name}: media_timeout must be >= 0 (0: off)")
        if self.dialout_targets is not None:
            try:
                UriPatterns(self.dialout_targets)
            except PatternError as exc:
                raise SettingsError(f"profile {self.name}: dialout_targets: {exc}") from None
        if len(self.dtmf_mute_toggle) > 8 or not _DTMF.fullmatch(self.dtmf_mute_toggle):
            raise SettingsError(
                f"profile {self.name}: dtmf_mute_toggle must be at most 8 "
                f"keypad digits (0-9 * # A-D), not {self.dtmf_mute_toggle!r}"
            )
        if not self.dtmf_digit_timeout > 0:
            raise SettingsError(f"profile {self.name}: dtmf_digit_timeout must be > 0")
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise SettingsError(
                f"profile {self.name}: need 0 < min_expires <= default_expires <= max_expires"
            )
        if not self.notify_interval >= 0:
            raise SettingsError(f"profile {self.name}: notify_interval must be >= 0")
        if self.ad_hoc_end not in ("last-participant", "creator"):
            raise SettingsError(
                f"profile {self.name}: ad_hoc_end must be last-participant "
                f"or creator, not {self.ad_hoc_end!r}"
            )
        if not _USER_PART.match(self.factory_user):
            raise SettingsError(f"profile {self.name}: bad factory_user {self.factory_user!r}")
        if self.conference_user.count("{id}") != 1:
            raise SettingsError(
                f"profile {self.name}: conference_user must contain {{id}} once, "
                f"not {self.conference_user!r}"
            )
        if not _USER_PART.match(self.conference_user.replace("{id}", "x")):
            raise SettingsError(
                f"profile {self.name}: bad conference_user {self.conference_user!r}"
            )
        if self.conference_user.replace("{id}", "") == self.factory_user:
            raise SettingsError(
                f"profile {self.name}: conference_user may not look like the factory URI"
            )
        if not self.domain or any(c in self.domain for c in ' <>@;"\r\n'):
            raise SettingsError(f"profile {self.name}: bad domain {self.domain!r}")
        if not self.transports or not set(self.transports) <= {"udp", "tcp"}:
            raise SettingsError(
                f"profile {self.name}: transports must be a non-empty subset of udp, tcp"
            )
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0):
            raise SettingsError(f"profile {self.name}: timers need t1 > 0, t2 >= t1, t4 >= 0")

    def _check_authentication(self) -> None:
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"profile {self.name}: trusted_proxies: {exc}") from None
        if self.realm is not None and (not self.realm or any(c in self.realm for c in '"\\\r\n')):
            raise SettingsError(f"profile {self.name}: bad realm {self.realm!r}")
        try:
            LockoutConfig(self.auth_max_failures, self.auth_failure_window, self.auth_lockout)
        except ValueError as exc:
            raise SettingsError(f"profile {self.name}: {exc}") from None
        if not self.nonce_lifetime > 0:
            raise SettingsError(f"profile {self.name}: nonce_lifetime must be > 0")

    @property
    def digest_realm(self) -> str:
        """The realm SIP accounts authenticate in (``realm``, else the domain)."""
        return self.realm or self.domain

    @property
    def lockout(self) -> LockoutConfig:
        """The brute-force lock-out of digest authentication."""
        return LockoutConfig(self.auth_max_failures, self.auth_failure_window, self.auth_lockout)

    @property
    def session_timer(self) -> SessionTimerConfig | None:
        """The RFC 4028 policy of the profile's calls, or None when turned off."""
        if not self.session_expires:
            return None
        return SessionTimerConfig(session_expires=self.session_expires, min_se=self.min_se)

    @property
    def overload(self) -> OverloadConfig:
        """The limits on new requests the SIP stack applies (see the overload keys)."""
        return OverloadConfig(
            max_loop_lag=self.max_loop_lag,
            call_rate=self.max_call_rate,
            retry_after=(self.retry_after_min, self.retry_after_max),
            source_rate=self.source_rate,
            source_burst=self.source_burst,
            max_pending_per_source=self.max_pending_per_source,
            trusted_proxies=self.trusted_networks,
        )

    @property
    def trusted_networks(self) -> tuple[IpNetwork, ...]:
        """``trusted_proxies`` as networks (checked when the profile was made)."""
        return parse_networks(self.trusted_proxies)

    @property
    def parser(self) -> ParserConfig:
        """Size limits of incoming SIP messages (the header block stays within 16 KiB)."""
        return ParserConfig(
            max_message_size=self.max_message_size,
            max_body_size=self.max_message_size,
            max_head_size=min(16384, self.max_message_size),
        )

    @property
    def factory_uri(self) -> str:
        return f"sip:{self.factory_user}@{self.domain}"

    def conference_user_part(self, conference_id: str) -> str:
        return self.conference_user.replace("{id}", conference_id)

    def conference_id_of(self, user_part: str) -> str | None:
        """The conference id a conference URI's user part names, or None."""
        head, _, tail = self.conference_user.partition("{id}")
        if len(user_part) <= len(head) + len(tail):
            return None
        if not (user_part.startswith(head) and user_part.endswith(tail)):
            return None
        return user_part[len(head) : len(user_part) - len(tail)]

    def conference_uri(self, conference_id: str) -> str:
        return f"sip:{self.conference_user_part(conference_id)}@{self.domain}"

    @classmethod
    def from_toml(cls, name: str, text: str) -> SipProfile:
        """A profile from TOML text; unknown keys are refused (a typo must not pass)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"profile {name}: not TOML: {exc}") from None
        known = {
            "domain",
            "factory_user",
            "conference_user",
            "listen",
            "transports",
            "t1",
            "t2",
            "t4",
            "ad_hoc_blueprint",
            "user_agent",
            "ad_hoc_end",
            "notify_interval",
            "min_expires",
            "default_expires",
            "max_expires",
            "dtmf_mute_toggle",
            "dtmf_digit_timeout",
            "dialout_targets",
            "session_expires",
            "min_se",
            "authorization",
            "realm",
            "trusted_proxies",
            "nonce_lifetime",
            "auth_max_failures",
            "auth_failure_window",
            "auth_lockout",
            *_OVERLOAD_INTS,
            *_OVERLOAD_NUMBERS,
            "media_timeout",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"profile {name}: unknown keys {', '.join(unknown)}")
        kwargs: dict[str, Any] = {"name": name}
        for key in (
            "domain",
            "factory_user",
            "conference_user",
            "ad_hoc_blueprint",
            "user_agent",
            "ad_hoc_end",
            "dtmf_mute_toggle",
            "realm",
        ):
            if key in data:
                kwargs[key] = _typed(name, key, data[key], str)
        if "authorization" in data:
            try:
                kwargs["authorization"] = AuthorizationPolicy.from_table(
                    _typed(name, "authorization", data["authorization"], dict)
                )
            except RuleError as exc:
                raise SettingsError(f"profile {name}: {exc}") from None
        if "listen" in data:
            kwargs["listen"] = HostPort.parse(
                _typed(name, "listen", data["listen"], str), default_port=DEFAULT_SIP_PORT
            )
        if "dialout_targets" in data:
            items = _typed(name, "dialout_targets", data["dialout_targets"], list)
            kwargs["dialout_targets"] = tuple(
                _typed(name, "dialout_targets", item, str) for item in items
            )
        if "trusted_proxies" in data:
            items = _typed(name, "trusted_proxies", data["trusted_proxies"], list)
            kwargs["trusted_proxies"] = tuple(
                _typed(name, "trusted_proxies", item, str) for item in items
            )
        if "transports" in data:
            items = _typed(name, "transports", data["transports"], list)
            kwargs["transports"] = tuple(_typed(name, "transports", t, str).lower() for t in items)
        for key in (
            "t1",
            "t2",
            "t4",
            "notify_interval",
            "dtmf_digit_timeout",
            "nonce_lifetime",
            "auth_failure_window",
            "auth_lockout",
        ):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SettingsError(f"profile {name}: {key} must be a number of seconds")
                kwargs[key] = float(value)
        for key in (
            "min_expires",
            "default_expires",
            "max_expires",
            "session_expires",
            "min_se",
            "auth_max_failures",
            "media_timeout",
        ):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise SettingsError(f"profile {name}: {key} must be a whole number of seconds")
                kwargs[key] = value
        for key in (*_OVERLOAD_INTS, *_OVERLOAD_NUMBERS):
            if key in data:
                value = data[key]
                whole = key in _OVERLOAD_INTS
                if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
                    kind = "a whole number" if whole else "a number"
                    raise SettingsError(f"profile {name}: {key} must be {kind}")
                kwargs[key] = value if whole else float(value)
        return cls(**kwargs)

    @classmethod
    def load(cls, name: str, directory: Path = PROFILE_DIR) -> SipProfile:
        """``directory/NAME.toml``; ``name`` may also be a path to a ``.toml`` file."""
        path = Path(name)
        if path.suffix == ".toml":
            stem = path.stem
        elif _PROFILE_NAME.match(name):
            path, stem = directory / f"{name}.toml", name
        else:
            raise SettingsError(f"bad profile name {name!r}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read profile {path}: {exc.strerror}") from None
        return cls.from_toml(stem, text)


#: The overload keys (see SipProfile): whole numbers, and numbers that may have a fraction.
_OVERLOAD_INTS = (
    "max_joins_in_progress",
    "max_participants",
    "retry_after_min",
    "retry_after_max",
    "source_burst",
    "max_pending_per_source",
    "max_subscriptions_per_conference",
    "max_subscriptions_per_source",
    "max_message_size",
)
_OVERLOAD_NUMBERS = ("max_loop_lag", "max_call_rate", "source_rate")


def _typed(profile: str, key: str, value: object, kind: type[Any]) -> Any:
    if not isinstance(value, kind):
        raise SettingsError(f"profile {profile}: {key} must be a {kind.__name__}")
    return value
