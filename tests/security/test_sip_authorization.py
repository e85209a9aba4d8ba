"""Issue 10, who may do what over SIP: each rule against a running ``python -m focus serve``
with the default profile's gates, over real UDP sockets.

The peer is a plain SIP UA written out here request by request (digest answers from
:mod:`focus.sip.digest`'s client half), so each test controls exactly what goes on the
wire: a replayed nonce-count, an expired nonce, a wrong password, a P-Asserted-Identity, a
source address (127.0.0.2 plays the trusted proxy, 127.0.0.3 the password guesser)."""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from focus.sip.digest import DigestChallenge, answer_challenge
from focus.sip.headers import parse_name_addr
from focus.sip.message import Request, Response
from focus.sip.parser import parse_message
from tests.serve import Serve, run_cli

#: TEST-NET-2 (RFC 5737): outside the default dialout_targets, never reached.
PREMIUM = "sip:+19005550100@198.51.100.7"
PROXY = "127.0.0.2"  # the profile's trusted proxy
GUESSER = "127.0.0.3"
PASSWORDS = {"alice": "alice-pw-1", "mod": "mod-pw-2"}


def sdp(port: int) -> bytes:
    return (
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


@dataclass
class Dialog:
    call_id: str
    from_tag: str
    to: str  # the To header with the focus's tag
    target: str  # the focus's Contact URI
    cseq: int


@dataclass
class Phone:
    """A UA on its own UDP socket; requests the focus sends it are answered 200 and kept."""

    server: Serve
    user: str
    bind: str = "127.0.0.1"
    received: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.bind, 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.aor = f"sip:{self.user}@{self.bind}"

    def close(self) -> None:
        self.sock.close()

    def uri(self, user: str) -> str:
        return f"sip:{user}@{self.server.sip_host}:{self.server.sip_port}"

    def send(
        self,
        method: str,
        uri: str,
        *,
        call_id: str,
        cseq: int,
        from_tag: str,
        to: str | None = None,
        headers: tuple[str, ...] = (),
        body: bytes = b"",
    ) -> Response | None:
        """Sends one request; its final response (None for ACK)."""
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        text = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.bind}:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <{self.aor}>;tag={from_tag}\r\n"
            f"To: {to or f'<{uri}>'}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{self.user}@{self.bind}:{self.port}>\r\n"
            + "".join(f"{h}\r\n" for h in headers)
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock.sendto(text, (self.server.sip_host, self.server.sip_port))
        if method == "ACK":
            return None
        return self.final(call_id, cseq)

    def final(self, call_id: str, cseq: int, timeout: float = 10.0) -> Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive()
            if (
                isinstance(message, Response)
                and message.status >= 200
                and message.call_id == call_id
                and message.cseq.number == cseq
            ):
                return message
        raise AssertionError(f"no final response to CSeq {cseq} of {call_id}")

    def wait_request(self, method: str, timeout: float = 10.0) -> Request:
        """The next request ``method`` the focus sent (already answered 200)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, request in enumerate(self.received):
                if request.method == method:
                    return self.received.pop(i)
            self._receive()
        raise AssertionError(f"no {method} from the focus")

    def _receive(self) -> Request | Response | None:
        try:
            data, addr = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        message = parse_message(data)
        if isinstance(message, Request) and message.method != "ACK":
            self.received.append(message)
            h = message.headers
            reply = (
                "SIP/2.0 200 OK\r\n"
                + "".join(f"Via: {v}\r\n" for v in h.get_all("Via"))
                + f"From: {h.get('From')}\r\nTo: {h.get('To')};tag=ph\r\n"
                f"Call-ID: {message.call_id}\r\nCSeq: {h.get('CSeq')}\r\nContent-Length: 0\r\n\r\n"
            )
            self.sock.sendto(reply.encode(), addr)
        return message

    # ---- calls

    def invite(
        self,
        uri: str,
        *,
        call_id: str | None = None,
        cseq: int = 1,
        headers: tuple[str, ...] = (),
        media_port: int = 30000,
    ) -> Response:
        call_id = call_id or secrets.token_hex(8)
        response = self.send(
            "INVITE",
            uri,
            call_id=call_id,
            cseq=cseq,
            from_tag=f"t{call_id}",
            headers=headers,
            body=sdp(media_port),
        )
        assert response is not None
        if response.status == 200:  # ACK it, as a phone does
            self.send(
                "ACK",
                self.contact_of(response),
                call_id=call_id,
                cseq=cseq,
                from_tag=f"t{call_id}",
                to=response.headers.get("To"),
            )
        return response

    def login(self, uri: str, user: str, password: str) -> tuple[Response, Response]:
        """INVITE, its 401, the INVITE again with credentials: (challenge, answer)."""
        call_id = secrets.token_hex(8)
        challenge = self.invite(uri, call_id=call_id)
        assert challenge.status == 401, (challenge.status, challenge.reason)
        auth = credentials(challenge, "INVITE", uri, user, password)
        return challenge, self.invite(uri, call_id=call_id, cseq=2, headers=(auth,))

    @staticmethod
    def contact_of(response: Response) -> str:
        return str(parse_name_addr(response.headers.get("Contact") or "", "Contact").uri)

    def dialog(self, response: Response) -> Dialog:
        return Dialog(
            response.call_id,
            response.headers.from_.tag or "",
            response.headers.get("To") or "",
            self.contact_of(response),
            response.cseq.number,
        )

    def in_dialog(
        self, dialog: Dialog, method: str, *headers: str, auth: tuple[str, str] | None = None
    ) -> Response:
        """A request in ``dialog``; with ``auth`` (user, password) a 401 is answered."""
        dialog.cseq += 1
        response = self.send(
            method,
            dialog.target,
            call_id=dialog.call_id,
            cseq=dialog.cseq,
            from_tag=dialog.from_tag,
            to=dialog.to,
            headers=headers,
        )
        assert response is not None
        if response.status == 401 and auth is not None:
            answer = credentials(response, method, dialog.target, *auth)
            return self.in_dialog(dialog, method, *headers, answer)
        return response


def challenges(response: Response) -> list[DigestChallenge]:
    return [DigestChallenge.parse(v) for v in response.headers.get_all("WWW-Authenticate")]


def credentials(
    response: Response, method: str, uri: str, user: str, password: str, *, nc: int = 1
) -> str:
    creds = answer_challenge(
        challenges(response)[0], method=method, uri=uri, username=user, password=password, nc=nc
    )
    return f"Authorization: {creds.to_header()}"


# ---- the server


def add_user(state: Path, profile: Path, name: str, role: str) -> None:
    done = run_cli(
        "focus", "user", "add", name, "--role", role, "--password-stdin",
        "--state-dir", str(state), "--domain", "example.org", "--profile", str(profile),
        stdin=PASSWORDS[name] + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def start(tmp_path: Path, profile_text: str = "") -> Serve:
    """The server with the default profile's rules (plus ``profile_text``), the accounts
    alice (user) and mod (moderator), and the CCMP account the harness uses."""
    state = tmp_path / "state"
    state.mkdir()
    profile = tmp_path / "gated.toml"
    profile.write_text(f'trusted_proxies = ["{PROXY}"]\n{profile_text}')
    add_user(state, profile, "alice", "user")
    add_user(state, profile, "mod", "moderator")
    done = run_cli(
        "focus", "user", "add", "admin", "--role", "administrator", "--password-stdin",
        "--state-dir", str(state), "--domain", "example.org", stdin="s3cret\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Serve(state, "--profile", str(profile))


@contextlib.contextmanager
def started(tmp_path: Path, profile_text: str) -> Iterator[tuple[Serve, list[Phone]]]:
    """The server of :func:`start` and a list for its phones, all gone afterwards."""
    srv = start(tmp_path, profile_text)
    made: list[Phone] = []
    try:
        yield srv, made
    finally:
        srv.kill()
        for p in made:
            p.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Serve]:
    srv = start(tmp_path)
    yield srv
    srv.kill()


@pytest.fixture
def phones(server: Serve) -> Iterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        phone.close()


def phone(server: Serve, made: list[Phone], user: str, bind: str = "127.0.0.1") -> Phone:
    p = Phone(server, user, bind)
    made.append(p)
    return p


def ccmp_conference(server: Serve, tmp_path: Path, password: str | None = None) -> str:
    """A conference made over CCMP; its SIP user part."""
    secret = f"<xcon:conference-password>{password}</xcon:conference-password>" if password else ""
    info = tmp_path / "conf.xml"
    info.write_text(
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        'xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info" '
        'entity="xcon:AUTO_GENERATE_1@example.org"><conference-description>'
        "<display-text>Room</display-text><conf-uris><entry>"
        f"<uri>sip:AUTO_GENERATE_1@localhost</uri><purpose>participation</purpose>{secret}"
        "</entry></conf-uris></conference-description></conference-info>"
    )
    found = re.search(r"xcon:([^\s@]+)@example\.org", ccmp(server, "create", "--info", str(info)))
    assert found
    return found.group(1)


def ccmp(server: Serve, *args: str) -> str:
    """The CCMP client as the administrator; its output (it must succeed)."""
    done = run_cli(
        "ccmp_server.client", "--url", server.url, "--user", "admin", "--password", "s3cret",
        *args,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# ---- the rules


def test_an_anonymous_factory_invite_is_challenged_and_an_account_joins(
    server: Serve, phones: list[Phone]
) -> None:
    alice = phone(server, phones, "alice")
    challenge, answer = alice.login(alice.uri("conference"), "alice", PASSWORDS["alice"])
    offered = challenges(challenge)
    assert [c.algorithm for c in offered] == ["SHA-256", "MD5"]  # RFC 8760 s2.4
    assert {c.realm for c in offered} == {"localhost"}
    assert answer.status == 200, answer.reason
    assert (answer.headers.get("Contact") or "").endswith(";isfocus")
    # Her SIP identity is her XCON user: the roster lists her account's XCON-USERID.
    conf = re.search(r"sip:([^@]+)@", alice.contact_of(answer))
    assert conf
    users = ccmp(server, "users", f"xcon:{conf.group(1)}@example.org")
    assert "xcon-userid:alice@example.org" in users, users
    dialog = alice.dialog(answer)
    assert alice.in_dialog(dialog, "BYE").status == 200


def test_md5_credentials_and_a_wrong_password(server: Serve, phones: list[Phone]) -> None:
    alice = phone(server, phones, "alice")
    factory = alice.uri("conference")
    call_id = secrets.token_hex(8)
    challenge = alice.invite(factory, call_id=call_id)
    md5 = next(c for c in challenges(challenge) if c.algorithm == "MD5")
    creds = answer_challenge(
        md5, method="INVITE", uri=factory, username="alice", password="not-her-password"
    )
    wrong = alice.invite(
        factory, call_id=call_id, cseq=2, headers=(f"Authorization: {creds.to_header()}",)
    )
    assert wrong.status == 403 and "wrong credentials" in wrong.reason
    creds = answer_challenge(
        md5, method="INVITE", uri=factory, username="alice", password=PASSWORDS["alice"], nc=2
    )
    good = alice.invite(
        factory, call_id=call_id, cseq=3, headers=(f"Authorization: {creds.to_header()}",)
    )
    assert good.status == 200, good.reason


def test_an_anonymous_refer_dial_out_is_refused(
    server: Serve, phones: list[Phone], tmp_path: Path
) -> None:
    """Dial-in is the conference's policy (open here), but asking the focus to call
    someone needs a user: the REFER in an anonymous call is challenged, not acted on."""
    bob = phone(server, phones, "bob")
    conf = ccmp_conference(server, tmp_path)
    answer = bob.invite(bob.uri(conf))
    assert answer.status == 200, answer.reason
    refused = bob.in_dialog(bob.dialog(answer), "REFER", "Refer-To: <sip:carol@localhost>")
    assert refused.status == 401 and challenges(refused)
    assert not any(r.method == "NOTIFY" for r in bob.received)


def test_an_authenticated_refer_outside_dialout_targets_is_refused(
    server: Serve, phones: list[Phone]
) -> None:
    alice = phone(server, phones, "alice")
    _, answer = alice.login(alice.uri("conference"), "alice", PASSWORDS["alice"])
    assert answer.status == 200
    dialog = alice.dialog(answer)
    # In a call whose INVITE was authenticated the REFER is hers: no new challenge.
    accepted = alice.in_dialog(dialog, "REFER", f"Refer-To: <{PREMIUM}>")
    assert accepted.status == 202
    final = b""
    while b"terminated" not in final:
        notify = alice.wait_request("NOTIFY")
        final = notify.body + (notify.headers.get("Subscription-State") or "").encode()
    assert notify.body.startswith(b"SIP/2.0 403"), notify.body  # not in dialout_targets
    assert alice.in_dialog(dialog, "BYE").status == 200


def test_refer_remove_needs_a_moderator(server: Serve, phones: list[Phone], tmp_path: Path) -> None:
    """The account's RFC 6501 role applies over SIP: a user may not REFER-remove, a
    moderator may (RFC 4579 s5.11)."""
    conf = ccmp_conference(server, tmp_path)
    bob, alice, mod = (phone(server, phones, n) for n in ("bob", "alice", "mod"))
    assert bob.invite(bob.uri(conf), media_port=30010).status == 200
    kick = f"Refer-To: <{bob.aor};method=BYE>"
    answered = alice.invite(alice.uri(conf), media_port=30020)
    refused = alice.in_dialog(
        alice.dialog(answered), "REFER", kick, auth=("alice", PASSWORDS["alice"])
    )
    assert refused.status == 403 and "refer_remove is for moderators" in refused.reason
    answered = mod.invite(mod.uri(conf), media_port=30030)
    done = mod.in_dialog(mod.dialog(answered), "REFER", kick, auth=("mod", PASSWORDS["mod"]))
    assert done.status == 202, done.reason
    assert bob.wait_request("BYE").call_id  # bob was sent away


SUBSCRIBE_HEADERS = ("Event: conference", "Expires: 60", "Accept: application/conference-info+xml")


def test_a_closed_subscribe_rule_challenges_and_admits_an_account(tmp_path: Path) -> None:
    with started(tmp_path, '[authorization]\nsubscribe = "authenticated"\n') as (server, phones):
        uri = f"sip:{ccmp_conference(server, tmp_path)}@{server.sip_host}:{server.sip_port}"
        alice = phone(server, phones, "alice")
        challenge = alice.send(
            "SUBSCRIBE", uri, call_id="sub1", cseq=1, from_tag="s1", headers=SUBSCRIBE_HEADERS
        )
        assert challenge is not None and challenge.status == 401, challenge
        assert "subscribe needs an authenticated user" in challenge.reason
        auth = credentials(challenge, "SUBSCRIBE", uri, "alice", PASSWORDS["alice"])
        answer = alice.send(
            "SUBSCRIBE", uri, call_id="sub1", cseq=2, from_tag="s1",
            headers=(*SUBSCRIBE_HEADERS, auth),
        )  # fmt: skip
        assert answer is not None
        assert answer.status == 200, answer.reason
        # (Its first NOTIFY, the full state, is too large for UDP: it goes over TCP to
        # a port this phone does not listen on, RFC 3261 s18.1.1. The 200 is the point.)
        assert answer.headers.get("Expires"), answer


def test_a_moderator_message_rule_refuses_a_user_and_passes_a_moderator(tmp_path: Path) -> None:
    with started(tmp_path, '[authorization]\nmessage = "moderator"\n') as (server, phones):
        uri = f"sip:{ccmp_conference(server, tmp_path)}@{server.sip_host}:{server.sip_port}"

        def message(who: Phone, user: str | None) -> Response:
            headers = ("Content-Type: text/plain",)
            first = who.send(
                "MESSAGE", uri, call_id=f"m-{who.user}", cseq=1, from_tag="m1",
                headers=headers, body=b"hello",
            )  # fmt: skip
            assert first is not None and first.status == 401, first
            if user is None:
                return first
            auth = credentials(first, "MESSAGE", uri, user, PASSWORDS[user])
            again = who.send(
                "MESSAGE", uri, call_id=f"m-{who.user}", cseq=2, from_tag="m1",
                headers=(*headers, auth), body=b"hello",
            )  # fmt: skip
            assert again is not None
            return again

        anonymous = message(phone(server, phones, "eve"), None)
        assert "message needs an authenticated user" in anonymous.reason
        user = message(phone(server, phones, "alice"), "alice")
        assert user.status == 403 and "message is for moderators" in user.reason, user.reason
        # Past the rule, the chat's own rules decide (this conference has no text media).
        moderator = message(phone(server, phones, "mod"), "mod")
        assert "profile rule" not in moderator.reason, moderator.reason
        assert moderator.status == 403 and "text media" in moderator.reason, moderator.reason


def test_a_domain_list_rule_admits_its_domains_only(tmp_path: Path) -> None:
    with started(tmp_path, '[authorization]\nfactory = ["example.org"]\n') as (server, phones):
        outsider = phone(server, phones, "bob")
        refused = outsider.invite(outsider.uri("conference"))
        assert refused.status == 403, refused.reason
        assert "factory is allowed from" in refused.reason and "127.0.0.1" in refused.reason
        member = phone(server, phones, "carol")
        member.aor = "sip:carol@example.org"
        answer = member.invite(member.uri("conference"), media_port=30070)
        assert answer.status == 200, answer.reason
        assert member.in_dialog(member.dialog(answer), "BYE").status == 200


def test_a_replayed_digest_is_refused(server: Serve, phones: list[Phone]) -> None:
    alice = phone(server, phones, "alice")
    factory = alice.uri("conference")
    challenge = alice.invite(factory)
    auth = credentials(challenge, "INVITE", factory, "alice", PASSWORDS["alice"])
    assert alice.invite(factory, headers=(auth,), media_port=30040).status == 200
    # The same Authorization (nonce, nc=1) on a new request: an eavesdropper's replay.
    replay = alice.invite(factory, headers=(auth,), media_port=30042)
    assert replay.status == 403 and "replayed" in replay.reason


def test_a_stale_nonce_is_rechallenged_with_stale_true(tmp_path: Path) -> None:
    server = start(tmp_path, "nonce_lifetime = 1\n")
    alice = Phone(server, "alice")
    try:
        factory = alice.uri("conference")
        challenge = alice.invite(factory)
        time.sleep(1.5)  # the nonce's lifetime passes
        auth = credentials(challenge, "INVITE", factory, "alice", PASSWORDS["alice"])
        stale = alice.invite(factory, headers=(auth,))
        assert stale.status == 401
        again = challenges(stale)
        assert again and all(c.stale for c in again), stale.headers.get_all("WWW-Authenticate")
        assert again[0].nonce != challenges(challenge)[0].nonce
        retry = credentials(stale, "INVITE", factory, "alice", PASSWORDS["alice"])
        assert alice.invite(factory, headers=(retry,)).status == 200
    finally:
        alice.close()
        server.kill()


def test_a_source_that_keeps_failing_is_locked_out_and_logged(
    server: Serve, phones: list[Phone]
) -> None:
    guesser = phone(server, phones, "alice", bind=GUESSER)
    factory = guesser.uri("conference")
    call_id = secrets.token_hex(8)
    challenge = guesser.invite(factory, call_id=call_id)
    statuses = []
    for n in range(5):
        guess = credentials(challenge, "INVITE", factory, "alice", f"guess-{n}", nc=n + 1)
        refused = guesser.invite(factory, call_id=call_id, cseq=n + 2, headers=(guess,))
        statuses.append((refused.status, refused.reason))
    assert [s for s, _ in statuses] == [403] * 5
    assert "too many failed authentications" in statuses[-1][1]
    right = credentials(challenge, "INVITE", factory, "alice", PASSWORDS["alice"], nc=9)
    locked = guesser.invite(factory, call_id=call_id, cseq=9, headers=(right,))
    assert locked.status == 403 and "too many" in locked.reason  # even the right password
    # another address is not locked out
    alice = phone(server, phones, "alice")
    assert alice.login(factory, "alice", PASSWORDS["alice"])[1].status == 200
    assert server.stop(signal.SIGTERM) == 0
    log = server.log.decode()
    warnings = [line for line in log.splitlines() if "WARNING" in line and "locked out" in line]
    assert len(warnings) == 1, log[-3000:]
    assert GUESSER in warnings[0] and "'alice'" in warnings[0]
    assert "guess-" not in log and PASSWORDS["alice"] not in log


def test_pai_is_believed_from_the_trusted_proxy_only(server: Serve, phones: list[Phone]) -> None:
    pai = ('P-Asserted-Identity: "Alice" <sip:alice@localhost>',)
    proxy = phone(server, phones, "alice", bind=PROXY)
    assert proxy.invite(proxy.uri("conference"), headers=pai).status == 200
    direct = phone(server, phones, "alice")
    assert direct.invite(direct.uri("conference"), headers=pai).status == 401


def test_a_conference_password_never_reaches_the_log(
    server: Serve, phones: list[Phone], tmp_path: Path
) -> None:
    secret = "Top-" + secrets.token_hex(6)
    conf = ccmp_conference(server, tmp_path, password=secret)
    bob = phone(server, phones, "bob")
    assert bob.invite(bob.uri(conf) + ";password=wrong-" + secret).status == 403
    answer = bob.invite(bob.uri(conf) + ";password=" + secret, media_port=30050)
    assert answer.status == 200, answer.reason
    assert bob.in_dialog(bob.dialog(answer), "BYE").status == 200
    assert server.stop(signal.SIGTERM) == 0
    log = server.log.decode()
    assert secret not in log, [line for line in log.splitlines() if secret in line]


def test_a_malformed_request_with_a_password_never_reaches_the_log(server: Serve) -> None:
    secret = "Pin-" + secrets.token_hex(6)
    uri = f"sip:room@{server.sip_host}:{server.sip_port};password={secret}"
    # A header line without its colon: the parser's error quotes that raw line.
    malformed = (
        f"INVITE {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbad1;rport\r\n"
        f"To <{uri}>\r\nFrom: <sip:eve@127.0.0.1>;tag=1\r\nCall-ID: bad1\r\n"
        "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        sock.sendto(malformed, (server.sip_host, server.sip_port))
        # (No answer: without its header fields the request cannot be answered.) An
        # OPTIONS after it is answered once the focus has been through the bad one.
        options = malformed.replace(b"INVITE", b"OPTIONS").replace(b"To <", b"To: <")
        sock.sendto(options.replace(b"bad1", b"ok1"), (server.sip_host, server.sip_port))
        answer = parse_message(sock.recv(65535))
    assert isinstance(answer, Response) and answer.call_id == "ok1", answer
    assert server.stop(signal.SIGTERM) == 0
    log = server.log.decode()
    bad = [line for line in log.splitlines() if "bad message" in line]
    assert bad and "password=***" in bad[0], bad
    assert secret not in log, [line for line in log.splitlines() if secret in line]


def test_guessing_a_conference_password_locks_out_too(
    server: Serve, phones: list[Phone], tmp_path: Path
) -> None:
    conf = ccmp_conference(server, tmp_path, password="Right-Pin-77")
    guesser = phone(server, phones, "mallory", bind=GUESSER)
    answers = [guesser.invite(guesser.uri(conf) + f";password=pin{n}") for n in range(5)]
    assert [a.status for a in answers] == [403] * 5
    assert "wrong conference password" in answers[0].reason
    assert "too many failed authentications" in answers[4].reason
    locked = guesser.invite(guesser.uri(conf) + ";password=Right-Pin-77")
    assert locked.status == 403 and "too many" in locked.reason
    bob = phone(server, phones, "bob")  # from another address the right one works
    assert bob.invite(bob.uri(conf) + ";password=Right-Pin-77", media_port=30060).status == 200
