"""Who may do what over SIP: the profile's rule per action, and the verdict (pure).

Each :class:`Action` the focus performs for a SIP request has a :class:`Rule` in the
profile (``[authorization]`` in ``sip_profiles/*.toml``, :class:`AuthorizationPolicy`):

* ``anyone``: this gate lets everybody through; the flow's own rules still apply (a
  conference's admission policy for dial-in, chat membership for MESSAGE, RFC 4575
  privacy filtering for SUBSCRIBE, ``dialout_targets`` for dial-outs);
* ``authenticated``: a user who signed in (SIP digest with her account, RFC 3261 s22, or a
  P-Asserted-Identity from a trusted proxy, RFC 3325); an anonymous request is challenged;
* ``moderator``: an authenticated user whose role, as
  :func:`focus.xcon.model.effective_role` ranks her account's role and her roles in the
  conference, is moderator or administrator (RFC 5239 s5.2, RFC 6501 s4.6.5.2);
* a list of domains: the caller's host (her authenticated identity's, else her From
  URI's) is one of them.  From is the caller's claim: a domain list is meant for requests
  through a trusted proxy, whose P-Asserted-Identity is believed.

:func:`decide` gives the verdict for one request; the SIP glue is
:mod:`focus.calls.gatekeeper`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from focus.xcon.model import Role, effective_role

__all__ = [
    "OPEN",
    "Action",
    "Allowed",
    "AuthorizationPolicy",
    "Forbidden",
    "Identity",
    "NeedsAuthentication",
    "Rule",
    "RuleError",
    "Verdict",
    "Who",
    "decide",
    "rules_text",
]


class RuleError(ValueError):
    """An ``[authorization]`` setting of the operator's profile is unusable (the message
    says which value and what is allowed)."""


class Action(enum.Enum):
    """What a SIP request asks the focus to do (the profile's ``[authorization]`` keys)."""

    FACTORY = "factory"  # INVITE to the factory URI: an ad hoc conference (RFC 4579 s5.2)
    DIAL_IN = "dial_in"  # INVITE to a conference URI (RFC 4579 s5.3), before its policy
    REFER_DIALOUT = "refer_dialout"  # REFER: the focus calls or refers someone (s5.5, s5.7)
    REFER_REMOVE = "refer_remove"  # REFER with method=BYE: a participant removed (s5.11)
    SUBSCRIBE = "subscribe"  # the conference event package (RFC 4575 s3)
    MESSAGE = "message"  # chat MESSAGE to a conference or in a call (RFC 3428)


class Who(enum.Enum):
    """The kinds of rule (see the module docstring)."""

    ANYONE = "anyone"
    AUTHENTICATED = "authenticated"
    MODERATOR = "moderator"
    DOMAINS = "domains"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may do one action; ``domains`` only for :attr:`Who.DOMAINS` (lower case)."""

    who: Who
    domains: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object) -> Rule:
        """``"anyone"``, ``"authenticated"``, ``"moderator"`` or a list of domain names."""
        if isinstance(value, str):
            try:
                who = Who(value.strip().lower())
            except ValueError:
                who = Who.DOMAINS
            if who is not Who.DOMAINS:
                return cls(who)
            raise RuleError(
                f"unknown rule {value!r}: use anyone, authenticated, moderator or a list of domains"
            )
        if isinstance(value, list | tuple) and value and all(isinstance(d, str) for d in value):
            domains = tuple(str(d).strip().lower() for d in value)
            if any(not d or any(c in d for c in " @:;<>\"'") for d in domains):
                raise RuleError(f"a domain list holds host names only, not {list(value)!r}")
            return cls(Who.DOMAINS, domains)
        raise RuleError(f"a rule is a string or a non-empty list of domains, not {value!r}")

    def __str__(self) -> str:
        return ", ".join(self.domains) if self.who is Who.DOMAINS else self.who.value


ANYONE = Rule(Who.ANYONE)
AUTHENTICATED = Rule(Who.AUTHENTICATED)
MODERATOR = Rule(Who.MODERATOR)


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    """The rule of each :class:`Action`; the defaults are safe on an open network.

    factory:        authenticated: an anonymous INVITE must not create conferences (and
                    mixers) at will.
    dial_in:        anyone: each conference's own admission policy decides (RFC 6501 s4.6).
    refer_dialout:  authenticated: the focus calls out only for a known user (toll fraud),
                    and only to ``dialout_targets``.
    refer_remove:   moderator: removing someone is a moderator's act (RFC 4579 s5.11).
    subscribe:      anyone: RFC 4575 privacy filtering already hides what a stranger may
                    not see, and participants' phones subscribe without credentials.
    message:        anyone: only the chat's members may post anyway (focus.calls.chat).
    """

    factory: Rule = AUTHENTICATED
    dial_in: Rule = ANYONE
    refer_dialout: Rule = AUTHENTICATED
    refer_remove: Rule = MODERATOR
    subscribe: Rule = ANYONE
    message: Rule = ANYONE

    def rule(self, action: Action) -> Rule:
        rule: Rule = getattr(self, action.value)
        return rule

    @classmethod
    def from_table(cls, table: dict[str, object]) -> AuthorizationPolicy:
        """The ``[authorization]`` table of a profile; unknown keys are refused."""
        known = {a.value for a in Action}
        unknown = sorted(set(table) - known)
        if unknown:
            raise RuleError(
                f"unknown [authorization] keys {', '.join(unknown)}; known: "
                + ", ".join(sorted(known))
            )
        rules: dict[str, Rule] = {}
        for key, value in table.items():
            try:
                rules[key] = Rule.parse(value)
            except RuleError as exc:
                raise RuleError(f"[authorization] {key}: {exc}") from None
        return cls(**rules)


#: Everybody may do everything at the gates (the flows' own rules still apply).
OPEN = AuthorizationPolicy(*(ANYONE,) * len(Action))


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is from, as the focus established it.

    ``aor``: her SIP address of record; ``account``: the account name when she is one of
    ours (digest username, or an asserted identity in our domain naming an account);
    ``user_id``: that account's XCON-USERID; ``role``: that account's RFC 6501 role (NONE
    for an asserted identity that is not an account); ``asserted``: believed from a
    trusted proxy's P-Asserted-Identity rather than proven by digest."""

    aor: str
    account: str | None = None
    user_id: str | None = None
    role: Role = Role.NONE
    asserted: bool = False

    @property
    def host(self) -> str:
        return _host_of(self.aor)

    def __str__(self) -> str:
        return self.account or self.aor


@dataclass(frozen=True, slots=True)
class Allowed:
    """Go ahead; ``identity`` is who asked, when known."""

    identity: Identity | None


@dataclass(frozen=True, slots=True)
class NeedsAuthentication:
    """Anonymous, and the rule wants to know who she is: challenge (401, RFC 3261 s22.1)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Forbidden:
    """Known (or from a host) the rule does not allow: 403 with ``reason`` (s21.4.4)."""

    reason: str


Verdict = Allowed | NeedsAuthentication | Forbidden


def _host_of(uri: str) -> str:
    text = uri.strip().strip("<>").split(";", 1)[0].split("?", 1)[0]
    host = text.partition(":")[2].rpartition("@")[2]
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0].lower()


def decide(
    action: Action,
    rule: Rule,
    identity: Identity | None,
    *,
    caller: str,
    roles: Iterable[Role | str] = (),
) -> Verdict:
    """The verdict of ``rule`` on a request to do ``action``.

    ``caller`` is the From AOR (its host is used by a domain list when ``identity`` is
    unknown); ``roles`` are her roles in the conference concerned (``<roles>`` entries),
    ranked with her account's role."""
    name = action.value
    if rule.who is Who.ANYONE:
        return Allowed(identity)
    if rule.who is Who.DOMAINS:
        host = identity.host if identity is not None else _host_of(caller)
        if host in rule.domains:
            return Allowed(identity)
        return Forbidden(f"{name} is allowed from {rule} only (profile rule), not from {host}")
    if identity is None:
        return NeedsAuthentication(f"{name} needs an authenticated user (profile rule)")
    if rule.who is Who.AUTHENTICATED:
        return Allowed(identity)
    role = effective_role([identity.role, *roles])
    if role.rank >= Role.MODERATOR.rank:
        return Allowed(identity)
    return Forbidden(f"{name} is for moderators (profile rule); {identity} is {role.value}")


def rules_text(policy: AuthorizationPolicy, actions: Sequence[Action] = tuple(Action)) -> str:
    """``factory=authenticated, ...``: the policy in one line, for the start-up log."""
    return ", ".join(f"{a.value}={policy.rule(a)}" for a in actions)
