"""The profile's rule per SIP action and its verdict (focus.authority, pure)."""

from __future__ import annotations

import pytest

from focus.authority import (
    OPEN,
    Action,
    Allowed,
    AuthorizationPolicy,
    Forbidden,
    Identity,
    NeedsAuthentication,
    Rule,
    RuleError,
    Who,
    decide,
)
from focus.settings import SettingsError, SipProfile
from focus.xcon.model import Role

ALICE = Identity("sip:alice@example.org", "alice", "xcon-userid:alice@example.org", Role.USER)
MOD = Identity("sip:mod@example.org", "mod", "xcon-userid:mod@example.org", Role.MODERATOR)


def test_the_defaults_are_the_safe_ones() -> None:
    p = AuthorizationPolicy()
    assert p.factory == p.refer_dialout == Rule(Who.AUTHENTICATED)
    assert p.refer_remove == Rule(Who.MODERATOR)
    assert p.dial_in == p.subscribe == p.message == Rule(Who.ANYONE)
    assert SipProfile().authorization == p == SipProfile.load("default").authorization
    assert all(OPEN.rule(a) == Rule(Who.ANYONE) for a in Action)


@pytest.mark.parametrize(
    ("rule", "identity", "expected"),
    [
        ("anyone", None, Allowed),
        ("authenticated", None, NeedsAuthentication),
        ("authenticated", ALICE, Allowed),
        ("moderator", None, NeedsAuthentication),
        ("moderator", ALICE, Forbidden),
        ("moderator", MOD, Allowed),
        (["example.org"], None, Forbidden),  # the From below is elsewhere
        (["example.org"], ALICE, Allowed),  # her identity's host counts, not From's
        (["example.com"], ALICE, Forbidden),
    ],
)
def test_decide(rule: object, identity: Identity | None, expected: type) -> None:
    verdict = decide(Action.FACTORY, Rule.parse(rule), identity, caller="sip:x@elsewhere.net")
    assert isinstance(verdict, expected)
    if isinstance(verdict, Allowed):
        assert verdict.identity == identity


def test_a_moderator_role_in_the_conference_counts() -> None:
    """effective_role ranks her account's role with her roles in the conference."""
    rule = Rule(Who.MODERATOR)
    assert isinstance(decide(Action.REFER_REMOVE, rule, ALICE, caller=""), Forbidden)
    allowed = decide(Action.REFER_REMOVE, rule, ALICE, caller="", roles=("moderator",))
    assert isinstance(allowed, Allowed)
    verdict = decide(Action.REFER_REMOVE, rule, ALICE, caller="", roles=("participant",))
    assert isinstance(verdict, Forbidden)
    assert "refer_remove is for moderators" in verdict.reason and "alice is user" in verdict.reason


def test_the_domain_of_an_anonymous_caller_is_her_from_host() -> None:
    rule = Rule.parse(["Example.COM"])
    assert isinstance(decide(Action.MESSAGE, rule, None, caller="sip:bob@example.com"), Allowed)
    verdict = decide(Action.MESSAGE, rule, None, caller="sip:bob@evil.example")
    assert isinstance(verdict, Forbidden) and "from example.com only" in verdict.reason


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("everyone", "unknown rule"),
        ("domains", "unknown rule"),
        ([], "non-empty list"),
        (["a b"], "host names only"),
        (["sip:x@y"], "host names only"),
        (3, "a string or"),
    ],
)
def test_bad_rules_are_refused(value: object, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        Rule.parse(value)


def test_the_profile_reads_the_authorization_table() -> None:
    profile = SipProfile.from_toml(
        "t",
        '[authorization]\nfactory = "anyone"\nmessage = ["example.com"]\n'
        'refer_remove = "authenticated"\n',
    )
    a = profile.authorization
    assert a.factory == Rule(Who.ANYONE) and a.message == Rule(Who.DOMAINS, ("example.com",))
    assert a.refer_remove == Rule(Who.AUTHENTICATED) and a.refer_dialout == Rule(Who.AUTHENTICATED)
    with pytest.raises(SettingsError, match="unknown \\[authorization\\] keys factry"):
        SipProfile.from_toml("t", '[authorization]\nfactry = "anyone"\n')
    with pytest.raises(SettingsError, match="subscribe: unknown rule 'nobody'"):
        SipProfile.from_toml("t", '[authorization]\nsubscribe = "nobody"\n')
    with pytest.raises(SettingsError, match="authorization must be a dict"):
        SipProfile.from_toml("t", 'authorization = "anyone"\n')


def test_the_profile_reads_the_digest_settings() -> None:
    profile = SipProfile.from_toml(
        "t",
        'trusted_proxies = ["192.0.2.10", "10.0.0.0/8"]\nnonce_lifetime = 30\n'
        "auth_max_failures = 3\nauth_failure_window = 10\nauth_lockout = 20\n"
        'realm = "sip.example.net"\n',
    )
    assert profile.trusted_proxies == ("192.0.2.10", "10.0.0.0/8")
    assert profile.nonce_lifetime == 30.0 and profile.digest_realm == "sip.example.net"
    lock = profile.lockout
    assert (lock.max_failures, lock.window, lock.duration) == (3, 10.0, 20.0)
    assert SipProfile().digest_realm == "localhost"  # the domain
    with pytest.raises(SettingsError, match="is not an IP"):
        SipProfile(trusted_proxies=("proxy.example",))
    with pytest.raises(SettingsError, match="max_failures"):
        SipProfile(auth_max_failures=0)
    with pytest.raises(SettingsError, match="nonce_lifetime"):
        SipProfile(nonce_lifetime=0)
