"""The SIP glue of the authorization rules (focus.calls.gatekeeper, pure): challenges,
digest from stored HA1s, replay, stale nonces, the lock-out and trusted proxies' PAI."""

from __future__ import annotations

from focus.authority import Action, Allowed, AuthorizationPolicy, Identity, Rule, Who
from focus.calls.admission import Refusal
from focus.calls.gatekeeper import GateConfig, Gatekeeper
from focus.sip.digest import DigestChallenge, answer_challenge, ha1
from focus.sip.flow import parse_networks
from focus.sip.lockout import LockedOut, LockoutConfig
from focus.sip.message import Request
from focus.sip.parser import parse_message
from focus.xcon.model import ConferenceInfo, Role, User, Users

REALM = "example.org"
URI = "sip:conference@example.org"
ACCOUNTS = {
    "alice": ("s3cret", Role.USER),
    "mod": ("m0d", Role.MODERATOR),
}


def account(name: str) -> Identity | None:
    if name not in ACCOUNTS:
        return None
    return Identity(f"sip:{name}@{REALM}", name, f"xcon-userid:{name}@{REALM}", ACCOUNTS[name][1])


def ha1_for(name: str, algorithm: str) -> str | None:
    return ha1(algorithm, name, REALM, ACCOUNTS[name][0]) if name in ACCOUNTS else None


def gatekeeper(**kw: object) -> tuple[Gatekeeper, list[LockedOut]]:
    events: list[LockedOut] = []
    config = GateConfig(realm=REALM, domain=REALM, **kw)  # type: ignore[arg-type]
    return Gatekeeper(config, account, ha1_for, events.append), events


def request(method: str = "INVITE", *headers: str, uri: str = URI) -> Request:
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@phone.example>;tag=1\r\n"
        f"To: <{uri}>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n"
        + "".join(h + "\r\n" for h in headers)
        + "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def challenged(refusal: object) -> list[DigestChallenge]:
    assert isinstance(refusal, Refusal) and refusal.status == 401, refusal
    return [DigestChallenge.parse(v) for n, v in refusal.headers if n == "WWW-Authenticate"]


def answered(
    c: DigestChallenge, user: str, password: str, nc: int = 1, method: str = "INVITE"
) -> str:
    creds = answer_challenge(c, method=method, uri=URI, username=user, password=password, nc=nc)
    return f"Authorization: {creds.to_header()}"


def test_anonymous_is_challenged_sha256_first_then_md5() -> None:
    gate, _ = gatekeeper()
    offered = challenged(gate.check(Action.FACTORY, request(), "192.0.2.1", 0.0))
    assert [c.algorithm for c in offered] == ["SHA-256", "MD5"]
    assert {c.realm for c in offered} == {REALM} and not any(c.stale for c in offered)


def test_a_good_account_is_allowed_with_its_identity_from_its_ha1() -> None:
    gate, _ = gatekeeper()
    for n, alg in enumerate(["SHA-256", "MD5"]):
        offered = challenged(gate.check(Action.FACTORY, request(), "192.0.2.1", 0.0))
        c = next(c for c in offered if c.algorithm == alg)
        verdict = gate.check(
            Action.FACTORY, request("INVITE", answered(c, "alice", "s3cret")), "192.0.2.1", 1.0 + n
        )
        assert isinstance(verdict, Allowed) and verdict.identity == account("alice")


def test_wrong_password_replay_and_unknown_user_are_403() -> None:
    gate, _ = gatekeeper()
    (c, _md5) = challenged(gate.check(Action.FACTORY, request(), "s", 0.0))
    wrong = gate.check(Action.FACTORY, request("INVITE", answered(c, "alice", "guess")), "s", 1.0)
    assert (
        isinstance(wrong, Refusal) and wrong.status == 403 and "wrong credentials" in wrong.reason
    )
    nobody = gate.check(Action.FACTORY, request("INVITE", answered(c, "eve", "x")), "s", 1.0)
    assert isinstance(nobody, Refusal) and nobody.status == 403
    good = request("INVITE", answered(c, "alice", "s3cret"))
    assert isinstance(gate.check(Action.FACTORY, good, "s", 2.0), Allowed)
    replay = gate.check(Action.FACTORY, good, "s", 3.0)  # the same nonce and nc again
    assert isinstance(replay, Refusal) and replay.status == 403 and "replayed" in replay.reason


def test_an_expired_nonce_is_rechallenged_with_stale_true() -> None:
    gate, _ = gatekeeper(nonce_lifetime=30.0)
    (c, _md5) = challenged(gate.check(Action.FACTORY, request(), "s", 0.0))
    late = request("INVITE", answered(c, "alice", "s3cret"))
    again = challenged(gate.check(Action.FACTORY, late, "s", 31.0))
    assert again and all(a.stale for a in again) and again[0].nonce != c.nonce


def test_five_failures_lock_the_source_out_and_report_once() -> None:
    gate, events = gatekeeper(lockout=LockoutConfig(max_failures=5, window=60, duration=300))
    (c, _md5) = challenged(gate.check(Action.FACTORY, request(), "198.51.100.9", 0.0))
    answers = []
    for n in range(6):
        bad = request("INVITE", answered(c, "alice", f"guess{n}", nc=n + 1))
        answers.append(gate.check(Action.FACTORY, bad, "198.51.100.9", 1.0 + n))
    assert all(isinstance(a, Refusal) and a.status == 403 for a in answers)
    assert "too many failed authentications" in answers[4].reason  # type: ignore[union-attr]
    assert events == [LockedOut("198.51.100.9", "alice", 5, 305.0)]
    # locked: even the right password is refused, and no challenge is offered either
    good = request("INVITE", answered(c, "alice", "s3cret", nc=99))
    refused = gate.check(Action.FACTORY, good, "198.51.100.9", 10.0)
    assert isinstance(refused, Refusal) and refused.status == 403
    anonymous = gate.check(Action.FACTORY, request(), "198.51.100.9", 10.0)
    assert isinstance(anonymous, Refusal) and anonymous.status == 403
    # another source is not affected
    assert challenged(gate.check(Action.FACTORY, request(), "198.51.100.10", 10.0))


def test_pai_is_believed_from_a_trusted_proxy_only() -> None:
    gate, _ = gatekeeper(trusted_proxies=parse_networks(["10.0.0.0/8"]))
    pai = request("INVITE", 'P-Asserted-Identity: "Mod" <sip:mod@example.org>')
    verdict = gate.check(Action.REFER_REMOVE, pai, "10.1.2.3", 0.0)
    assert isinstance(verdict, Allowed) and verdict.identity is not None
    assert verdict.identity.account == "mod" and verdict.identity.asserted
    stranger = gate.check(Action.REFER_REMOVE, pai, "192.0.2.1", 0.0)
    assert challenged(stranger)  # ignored: anonymous
    outsider = request("INVITE", "P-Asserted-Identity: <sip:bob@carrier.example>")
    verdict = gate.check(Action.FACTORY, outsider, "10.1.2.3", 0.0)
    assert isinstance(verdict, Allowed) and verdict.identity is not None
    assert verdict.identity.account is None and verdict.identity.aor == "sip:bob@carrier.example"
    assert isinstance(gate.check(Action.REFER_REMOVE, outsider, "10.1.2.3", 0.0), Refusal)


def test_a_known_identity_is_not_challenged_and_roles_in_the_conference_count() -> None:
    gate, _ = gatekeeper()
    alice = account("alice")
    refer = request("REFER")
    assert isinstance(gate.check(Action.REFER_DIALOUT, refer, "s", 0.0, known=alice), Allowed)
    refused = gate.check(Action.REFER_REMOVE, refer, "s", 0.0, known=alice)
    assert isinstance(refused, Refusal) and refused.status == 403
    assert "refer_remove is for moderators" in refused.reason
    info = ConferenceInfo(
        entity="xcon:c@example.org",
        users=Users(users=(User(entity="xcon-userid:alice@example.org", roles=("moderator",)),)),
    )
    verdict = gate.check(Action.REFER_REMOVE, refer, "s", 0.0, known=alice, conference=info)
    assert isinstance(verdict, Allowed)


def test_an_open_rule_lets_anonymous_through_and_a_domain_rule_checks_the_host() -> None:
    policy = AuthorizationPolicy(
        factory=Rule(Who.ANYONE), message=Rule(Who.DOMAINS, ("phone.example",))
    )
    gate, _ = gatekeeper(policy=policy)
    assert gate.check(Action.FACTORY, request(), "s", 0.0) == Allowed(None)
    assert gate.check(Action.MESSAGE, request("MESSAGE"), "s", 0.0) == Allowed(None)
