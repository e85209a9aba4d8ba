"""Joining a conference URI over SIP: who is refused with which status, CANCEL, failures;
after each, the leg audit shows nothing left on the media server."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from focus.core import conference_id
from focus.core.commands import CreateConference
from focus.core.policy import Actor
from focus.sip.digest import DigestChallenge, answer_challenge
from focus.sip.message import Response
from focus.sip.parser import parse_message
from focus.sip.uacore import CallFailedError, CallState
from focus.xcon.model import (
    ConferenceDescription,
    ConferenceInfo,
    DenyUsersList,
    Target,
    UriEntry,
    Uris,
    Users,
)
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer


def make_conference(
    focus: Focus,
    *,
    limit: int | None = None,
    password: str | None = None,
    deny: tuple[str, ...] = (),
) -> str:
    """A conference created as CCMP would create it; returns its SIP user part."""
    entry = UriEntry(
        uri="sip:AUTO_GENERATE_1@localhost", conference_passwords=(password,) if password else ()
    )
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.org",
        conference_description=ConferenceDescription(
            conf_uris=Uris(entries=(entry,)), maximum_user_count=limit
        ),
        users=Users(deny_users_list=DenyUsersList(targets=tuple(Target(uri=u) for u in deny)))
        if deny
        else None,
    )
    changes = focus.running.store.apply(CreateConference(actor=Actor.system(), info=info))
    return conference_id(changes[0].uri)


async def refused(call: object) -> int:
    with pytest.raises(CallFailedError) as err:
        await call  # type: ignore[misc]
    return err.value.status


async def test_deny_list_is_403(focus: Focus, phones: PhoneFactory) -> None:
    conf = make_conference(focus, deny=("sip:mallory@127.0.0.1",))
    mallory = await phones("mallory")
    assert await refused(mallory.invite(focus.uri(conf), sdp_offer(31000))) == 403
    alice = await phones("alice")
    call = await alice.invite(focus.uri(conf), sdp_offer(31002))
    await alice.bye(call)
    await focus.settled((0, 0, 0))


async def test_full_conference_is_486(focus: Focus, phones: PhoneFactory) -> None:
    conf = make_conference(focus, limit=1)
    alice, bob = await phones("alice"), await phones("bob")
    call = await alice.invite(focus.uri(conf), sdp_offer(31010))
    assert await refused(bob.invite(focus.uri(conf), sdp_offer(31012))) == 486
    await focus.settled((1, 1, 1))
    await alice.bye(call)
    await focus.settled((0, 0, 0))
    # A conference created over CCMP outlives its last participant (not ad hoc).
    assert focus.running.store.get(f"xcon:{conf}@example.org") is not None


async def test_password_in_the_uri_parameter(focus: Focus, phones: PhoneFactory) -> None:
    conf = make_conference(focus, password="s3cret")
    alice = await phones("alice")
    assert await refused(alice.invite(focus.uri(conf), sdp_offer(31020))) == 401
    assert await refused(alice.invite(focus.uri(conf) + ";password=wrong", sdp_offer(31020))) == 403
    call = await alice.invite(focus.uri(conf) + ";password=s3cret", sdp_offer(31020))
    await alice.bye(call)
    await focus.settled((0, 0, 0))


async def udp_exchange(host: str, port: int, data: bytes) -> Response:
    """Sends one request from a fresh socket; returns the first final response."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
            got.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
    try:
        local_port = transport.get_extra_info("sockname")[1]
        transport.sendto(data.replace(b"LOCALPORT", str(local_port).encode()), (host, port))
        while True:
            message = parse_message(await asyncio.wait_for(got.get(), 5))
            if isinstance(message, Response) and message.status >= 200:
                return message
    finally:
        transport.close()


def invite_text(uri: str, cseq: int, call_id: str, extra: str = "") -> bytes:
    body = sdp_offer(31030)
    return (
        f"INVITE {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:LOCALPORT;branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:carol@127.0.0.1>;tag=carol1\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        "Contact: <sip:carol@127.0.0.1:LOCALPORT>\r\n"
        f"{extra}"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_password_by_digest_challenge(focus: Focus) -> None:
    conf = make_conference(focus, password="s3cret")
    uri = focus.uri(conf)
    call_id = secrets.token_hex(8)
    challenge = await udp_exchange(focus.host, focus.port, invite_text(uri, 1, call_id))
    assert challenge.status == 401
    offered = [DigestChallenge.parse(v) for v in challenge.headers.get_all("WWW-Authenticate")]
    assert offered and offered[0].realm == f"{conf}@localhost"  # the conference's own realm
    for password, status in (("wrong", 403), ("s3cret", 200)):
        creds = answer_challenge(
            offered[0],
            method="INVITE",
            uri=uri,
            username="carol",
            password=password,
            nc=1 if status == 403 else 2,
        )
        answer = await udp_exchange(
            focus.host,
            focus.port,
            invite_text(
                uri, 2 if status == 403 else 3, call_id, f"Authorization: {creds.to_header()}\r\n"
            ),
        )
        assert answer.status == status
    contact = answer.headers.get("Contact") or ""
    assert contact.endswith(";isfocus")
    # No ACK/BYE from this raw client: the focus ends the call by itself (s13.3.1.4) later;
    # the leg is there meanwhile.
    await focus.settled((1, 1, 1))


async def test_cancel_leaves_nothing_behind(focus: Focus, phones: PhoneFactory) -> None:
    conf = make_conference(focus)
    alice = await phones("alice")
    cancelled = 0
    for n in range(3):
        call = alice.core.invite(focus.uri(conf), sdp_offer(31040 + 2 * n), alice.now)
        alice.transport.flush()
        # CANCEL at once: the focus may be anywhere in setting the call up.
        await asyncio.sleep(0.002 * n)
        alice.core.bye(call, alice.now)
        alice.transport.flush()
        for _ in range(200):
            if call.state is CallState.ENDED or call.state is CallState.CONFIRMED:
                break
            await asyncio.sleep(0.01)
        if call.state is CallState.CONFIRMED:  # the 200 crossed our CANCEL: hang up
            await alice.bye(call)
        else:
            cancelled += call.final_status == 487
    # The focus needs a media server round trip before it can answer: a CANCEL sent right
    # behind the INVITE wins that race.
    assert cancelled >= 1
    await focus.settled((0, 0, 0))
    obj = focus.running.store.get(f"xcon:{conf}@example.org")
    assert obj is not None and not (obj.info.users and obj.info.users.users)


async def test_media_server_refusing_the_offer_is_488(focus: Focus, phones: PhoneFactory) -> None:
    alice = await phones("alice")
    video_only_codec = (
        sdp_offer(31050)
        .replace(b"RTP/AVP 0 101", b"RTP/AVP 99")
        .replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:99 H264/90000")
    )
    status = await refused(alice.invite(focus.factory, video_only_codec))
    assert status == 488
    await focus.settled((0, 0, 0))
    # The ad hoc conference made for it is gone again.
    assert not focus.focus.ad_hoc
    assert not focus.media.driver.desired.conferences
