"""Digest authentication: RFC worked examples, round trips, nonce expiry and replay."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.digest import (
    ALGORITHMS,
    AuthOutcome,
    DigestChallenge,
    DigestConfig,
    DigestCredentials,
    DigestParseError,
    DigestServer,
    answer_challenge,
    authorize_request,
    challenge,
    check_request,
    compute_response,
    ha1,
    parse_auth_params,
)
from focus.sip.message import Request
from tests.focus.sip.test_transaction_wire import Wire
from tests.paths import VECTORS as TEST_VECTORS

VECTORS = TEST_VECTORS / "digest"


def load(name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (VECTORS / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def independent(alg: str, v: dict[str, str]) -> str:
    """Straight from the RFC formula with hashlib, sharing no code with the module."""

    def h(s: str) -> str:
        return hashlib.new(alg, s.encode()).hexdigest()

    ha1 = h(f"{v['username']}:{v['realm']}:{v['password']}")
    ha2 = h(f"{v['method']}:{v['uri']}")
    return h(f"{ha1}:{v['nonce']}:{v['nc']}:{v['cnonce']}:{v['qop']}:{ha2}")


def compute(v: dict[str, str], algorithm: str) -> str:
    return compute_response(
        algorithm=algorithm,
        username=v["username"],
        realm=v["realm"],
        password=v["password"],
        method=v["method"],
        uri=v["uri"],
        nonce=v["nonce"],
        qop=v["qop"],
        nc=v["nc"],
        cnonce=v["cnonce"],
    )


def test_rfc2617_example() -> None:
    v = load("rfc2617-3.5.txt")
    assert compute(v, "MD5") == v["response"]
    assert independent("md5", v) == v["response"]


@pytest.mark.parametrize(("alg", "hashname"), [("SHA-256", "sha256"), ("MD5", "md5")])
def test_rfc7616_example(alg: str, hashname: str) -> None:
    v = load("rfc7616-3.9.1.txt")
    assert compute(v, alg) == v[f"response.{alg}"]
    assert independent(hashname, v) == v[f"response.{alg}"]


def test_rfc7616_example_through_answer_challenge() -> None:
    v = load("rfc7616-3.9.1.txt")
    header = (
        f'Digest realm="{v["realm"]}", qop="auth, auth-int", algorithm=SHA-256, '
        f'nonce="{v["nonce"]}", opaque="{v["opaque"]}"'
    )
    challenge = DigestChallenge.parse(header)
    assert challenge.algorithm == "SHA-256"
    assert challenge.qop == ("auth", "auth-int")
    creds = answer_challenge(
        challenge,
        method="GET",
        uri=v["uri"],
        username="Mufasa",
        password=v["password"],
        cnonce=v["cnonce"],
    )
    assert creds.response == v["response.SHA-256"]
    again = DigestCredentials.parse(creds.to_header())
    assert again == creds


def test_rfc2069_form_without_qop() -> None:
    v = load("rfc2617-3.5.txt")
    got = compute_response(
        algorithm="MD5",
        username=v["username"],
        realm=v["realm"],
        password=v["password"],
        method=v["method"],
        uri=v["uri"],
        nonce=v["nonce"],
        qop=None,
    )
    ha1 = hashlib.md5(f"{v['username']}:{v['realm']}:{v['password']}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{v['method']}:{v['uri']}".encode()).hexdigest()
    assert got == hashlib.md5(f"{ha1}:{v['nonce']}:{ha2}".encode()).hexdigest()


def test_sess_variant_uses_cnonce() -> None:
    same = {
        "username": "u",
        "realm": "r",
        "password": "p",
        "method": "INVITE",
        "uri": "sip:x@y",
        "nonce": "n",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "c1",
    }
    a, b = compute(same, "SHA-256-sess"), compute(same, "SHA-256")
    assert a != b


USERS = {"alice": "wonderland", "bob": "builder"}


def make_server(**kw: object) -> DigestServer:
    def ha1_for(user: str, algorithm: str) -> str | None:
        password = USERS.get(user)
        return None if password is None else ha1(algorithm, user, "conf.example", password)

    return DigestServer(DigestConfig(realm="conf.example", **kw), ha1_for)  # type: ignore[arg-type]


def login(
    server: DigestServer,
    now: float,
    *,
    alg: str = "SHA-256",
    user: str = "alice",
    password: str = "wonderland",
    nc: int = 1,
    method: str = "INVITE",
    uri: str = "sip:conf@conf.example",
) -> tuple[DigestCredentials, DigestChallenge]:
    challenges = server.challenges(now)
    chosen = next(c for c in challenges if c.algorithm == alg)
    # through the wire format both ways, as a real peer would see it
    parsed = DigestChallenge.parse(chosen.to_header())
    creds = answer_challenge(
        parsed, method=method, uri=uri, username=user, password=password, nc=nc
    )
    return creds, parsed


@pytest.mark.parametrize("alg", ["SHA-256", "MD5"])
def test_server_round_trip(alg: str) -> None:
    server = make_server()
    creds, _ = login(server, 100.0, alg=alg)
    result = server.verify(
        "INVITE", [creds.to_header()], 101.0, request_uri="sip:conf@conf.example"
    )
    assert result.ok, result.detail
    assert result.username == "alice"


def test_sha256_offered_first() -> None:
    server = make_server()
    assert [c.algorithm for c in server.challenges(0.0)] == ["SHA-256", "MD5"]


def test_wrong_password_rejected() -> None:
    server = make_server()
    creds, _ = login(server, 0.0, password="nope")
    result = server.verify("INVITE", [creds.to_header()], 1.0)
    assert result.outcome is AuthOutcome.WRONG


def test_wrong_method_rejected() -> None:
    server = make_server()
    creds, _ = login(server, 0.0, method="INVITE")
    assert server.verify("BYE", [creds.to_header()], 1.0).outcome is AuthOutcome.WRONG


def test_unknown_user_rejected() -> None:
    server = make_server()
    creds, _ = login(server, 0.0, user="mallory")
    assert server.verify("INVITE", [creds.to_header()], 1.0).outcome is AuthOutcome.WRONG


def test_uri_must_match_request_uri() -> None:
    server = make_server()
    creds, _ = login(server, 0.0)
    result = server.verify("INVITE", [creds.to_header()], 1.0, request_uri="sip:other@x")
    assert result.outcome is AuthOutcome.WRONG


def test_expired_nonce_is_stale_and_rechallenge_says_so() -> None:
    server = make_server(nonce_lifetime=30.0)
    creds, _ = login(server, 0.0)
    result = server.verify("INVITE", [creds.to_header()], 31.0)
    assert result.outcome is AuthOutcome.STALE and result.stale
    fresh = server.challenges(31.0, stale=True)
    assert all(c.stale for c in fresh)
    assert "stale=TRUE" in fresh[0].to_header()
    assert DigestChallenge.parse(fresh[0].to_header()).stale


def test_replayed_nonce_count_rejected_and_next_count_accepted() -> None:
    server = make_server()
    creds, parsed = login(server, 0.0)
    assert server.verify("INVITE", [creds.to_header()], 1.0).ok
    assert server.verify("INVITE", [creds.to_header()], 2.0).outcome is AuthOutcome.REPLAY
    second = answer_challenge(
        parsed,
        method="INVITE",
        uri="sip:conf@conf.example",
        username="alice",
        password="wonderland",
        nc=2,
    )
    assert server.verify("INVITE", [second.to_header()], 3.0).ok


def test_forged_nonce_rejected() -> None:
    server = make_server()
    other = make_server()  # different secret
    creds, _ = login(other, 0.0)
    forged = dataclasses.replace(creds, opaque=server.opaque)
    assert server.verify("INVITE", [forged.to_header()], 1.0).outcome is AuthOutcome.BAD_NONCE


def test_credentials_for_other_realm_are_missing() -> None:
    server = make_server()
    creds, _ = login(server, 0.0)
    other = dataclasses.replace(creds, realm="elsewhere")
    assert server.verify("INVITE", [other.to_header()], 1.0).outcome is AuthOutcome.MISSING
    assert server.verify("INVITE", [], 1.0).outcome is AuthOutcome.MISSING


def test_qop_is_required_by_server() -> None:
    server = make_server()
    challenge = DigestChallenge(
        realm="conf.example",
        nonce=server.new_nonce(0.0),
        algorithm="MD5",
        qop=(),
        opaque=server.opaque,
    )
    creds = answer_challenge(
        challenge, method="INVITE", uri="sip:a@b", username="alice", password="wonderland"
    )
    assert creds.qop is None
    assert server.verify("INVITE", [creds.to_header()], 1.0).outcome is AuthOutcome.WRONG


def test_nonce_memory_is_bounded() -> None:
    server = make_server(max_nonces=4)
    first, _ = login(server, 0.0)
    for i in range(10):
        server.challenges(float(i))
    assert len(server._nonces) <= 4
    # a forgotten nonce of ours is stale, not an error
    assert server.verify("INVITE", [first.to_header()], 11.0).outcome is AuthOutcome.STALE


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Digest",  # no params: missing username etc
        'Digest username="a", realm="r"',
        'Digest username="unterminated',
        'Digest username="a" junk, realm="r"',
        "Digest username=, realm=r",
        'Digest username="a", username="b"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", nc=1',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=SHA-1',
        "Basic dXNlcjpwYXNz",
        "Digest " + "a=b, " * 2000,
    ],
)
def test_malformed_credentials_are_specific_errors(header: str) -> None:
    with pytest.raises(DigestParseError):
        DigestCredentials.parse(header)
    server = make_server()
    assert server.verify("INVITE", [header], 0.0).outcome in {AuthOutcome.MALFORMED}


def test_quoted_pair_unescaped() -> None:
    scheme, params = parse_auth_params(r'Digest realm="a\"b\\c", nonce=xyz')
    assert scheme == "Digest"
    assert params == {"realm": 'a"b\\c', "nonce": "xyz"}
    challenge = DigestChallenge(realm='a"b\\c', nonce="n")
    assert DigestChallenge.parse(challenge.to_header()) == challenge


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(DigestParseError):
        DigestCredentials.parse(text)
    with contextlib.suppress(DigestParseError):
        DigestChallenge.parse(text)


# ------------------------------------------------------------------ over SIP transactions


def _auth_round(wire: Wire, server: DigestServer, request: Request) -> list[int]:
    """Send ``request``; the UAS challenges until the credentials verify, then 200."""
    from focus.sip.events import RequestReceived, ResponseReceived
    from focus.sip.message import make_response

    wire.a.send_request(request, wire.b_flow, wire.now)
    statuses: list[int] = []
    seen_a = seen_b = 0
    for _ in range(10):
        wire.pump()
        for e in wire.b_events[seen_b:]:
            seen_b += 1
            if isinstance(e, RequestReceived) and e.transaction is not None:
                result = check_request(e.request, server, wire.now)
                if result.ok:
                    reply = make_response(e.request, 200, to_tag="ok")
                else:
                    reply = challenge(e.request, server, wire.now, stale=result.stale)
                wire.b.send_response(reply, wire.now)
        wire.pump()
        for e in wire.a_events[seen_a:]:
            seen_a += 1
            if isinstance(e, ResponseReceived) and e.response.status >= 200:
                statuses.append(e.response.status)
                if e.response.status in (401, 407) and len(statuses) < 4:
                    retry = authorize_request(
                        e.request, e.response, username="alice", password="wonderland"
                    )
                    wire.a.send_request(retry, wire.b_flow, wire.now)
        if statuses and statuses[-1] == 200:
            break
    return statuses


@pytest.mark.parametrize("method", ["INVITE", "REGISTER"])
def test_challenge_and_retry_over_transactions(method: str) -> None:
    wire = Wire()
    server = make_server()
    statuses = _auth_round(wire, server, wire.request(method))
    assert statuses == [401, 200]
    # the retry was a new transaction: CSeq + 1, new branch, same Call-ID
    sent = [s.message for s in wire.log if s.first_line.startswith(method)]
    first, second = sent[0], sent[-1]
    assert isinstance(first, Request) and isinstance(second, Request)
    assert second.cseq.number == first.cseq.number + 1
    assert second.via[0].branch != first.via[0].branch
    assert second.call_id == first.call_id
    creds = DigestCredentials.parse(second.headers.get("Authorization") or "")
    assert creds.algorithm == "SHA-256"  # the topmost challenge
    assert creds.uri == str(first.uri)


def test_proxy_style_407_uses_proxy_headers() -> None:
    wire = Wire()
    server = make_server()
    req = wire.request("INVITE")
    resp = challenge(req, server, 0.0, proxy=True)
    assert resp.status == 407
    assert len(resp.headers.get_all("Proxy-Authenticate")) == 2
    retry = authorize_request(req, resp, username="alice", password="wonderland")
    assert retry.headers.get("Authorization") is None
    assert check_request(retry, server, 1.0, proxy=True).ok


def test_stale_nonce_rechallenged_then_accepted() -> None:
    wire = Wire()
    server = make_server(nonce_lifetime=10.0)
    req = wire.request("OPTIONS")
    first = challenge(req, server, 0.0)
    late = authorize_request(req, first, username="alice", password="wonderland")
    result = check_request(late, server, 20.0)
    assert result.stale
    again = challenge(late, server, 20.0, stale=True)
    assert all("stale=TRUE" in v for v in again.headers.get_all("WWW-Authenticate"))
    retry = authorize_request(late, again, username="alice", password="wonderland")
    assert check_request(retry, server, 21.0).ok
    assert retry.headers.get_all("Authorization") == [retry.headers.get("Authorization")]


def test_authorize_request_needs_a_usable_challenge() -> None:
    wire = Wire()
    req = wire.request("INVITE")
    from focus.sip.message import make_response

    bare = make_response(req, 401, to_tag="x")
    with pytest.raises(DigestParseError):
        authorize_request(req, bare, username="a", password="b")
    bare.headers.add("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth-int"')
    with pytest.raises(DigestParseError):
        authorize_request(req, bare, username="a", password="b")
    ok = make_response(req, 200, to_tag="x")
    with pytest.raises(DigestParseError):
        authorize_request(req, ok, username="a", password="b")


@pytest.mark.skipif("SHA-512-256" not in ALGORITHMS, reason="no SHA-512/256 in this OpenSSL")
def test_sha512_256_round_trip_and_independent_value() -> None:
    v = load("rfc7616-3.9.1.txt")
    assert compute(v, "SHA-512-256") == independent("sha512_256", v)
    # FIPS 180-4 example: SHA-512/256("abc"), to be sure which hash "sha512_256" is
    assert hashlib.new("sha512_256", b"abc").hexdigest() == (
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    )
    server = make_server(algorithms=("SHA-512-256", "SHA-256", "MD5"))
    creds, _ = login(server, 0.0, alg="SHA-512-256")
    assert server.verify("INVITE", [creds.to_header()], 1.0).ok
