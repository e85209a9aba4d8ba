"""The focus end to end on real sockets: phones (SIP UAs) call the factory and conference
URIs of the running process; the bundled media server answers the 3PCC legs; the core is
read back as CCMP would read it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from focus.settings import SipProfile
from focus.sip.headers import parse_name_addr
from focus.sip.sdp import parse_sdp
from focus.sip.uacore import CallFailedError
from focus.sip.uri import SipURI
from focus.xcon.model import EndpointStatus, JoiningMethod
from tests.focus.calls.conftest import Focus, PhoneFactory, answers_of, sdp_offer, start_focus


async def test_factory_invite_creates_an_ad_hoc_conference(
    focus: Focus, phones: PhoneFactory
) -> None:
    alice = await phones("alice")
    answers = answers_of(alice)
    call = await alice.invite(focus.factory, sdp_offer(30000))
    (response,) = answers
    # RFC 4579 s3: Contact is the conference URI, flagged as a focus.
    contact = parse_name_addr(response.headers.get("Contact") or "")
    assert "isfocus" in contact.params
    assert isinstance(contact.uri, SipURI)
    conf_user = contact.uri.user
    assert call.dialog is not None and call.dialog.remote_target == contact.uri
    assert conf_user is not None and conf_user.startswith("conf")
    answer = parse_sdp(call.answer)
    assert answer.media[0].media == "audio" and answer.media[0].port != 0
    # The caller is in the core at once: connected, dialed-in.
    conf_uri = f"xcon:{conf_user}@example.org"
    obj = focus.running.store.get(conf_uri)
    assert obj is not None and obj.info.users is not None
    (user,) = obj.info.users.users
    (endpoint,) = user.endpoints
    assert endpoint.status == EndpointStatus.CONNECTED
    assert endpoint.joining_method == JoiningMethod.DIALED_IN
    assert endpoint.entity is not None and "alice@127.0.0.1" in endpoint.entity
    desc = obj.info.conference_description
    assert desc is not None and desc.conf_uris is not None
    assert [e.uri for e in desc.conf_uris.entries] == [f"sip:{conf_user}@localhost"]
    await focus.settled((1, 1, 1))
    # The last one leaving ends the ad hoc conference and its mixer; no leg stays.
    await alice.bye(call)
    await focus.settled((0, 0, 0))
    for _ in range(100):
        if focus.running.store.get(conf_uri) is None:
            break
        await asyncio.sleep(0.02)
    assert focus.running.store.get(conf_uri) is None
    assert not focus.media.driver.desired.conferences


async def test_second_caller_joins_the_conference_uri(focus: Focus, phones: PhoneFactory) -> None:
    alice, bob = await phones("alice"), await phones("bob")
    first = await alice.invite(focus.factory, sdp_offer(30010))
    assert first.dialog is not None
    target = first.dialog.remote_target
    assert isinstance(target, SipURI) and target.user is not None
    second = await bob.invite(focus.uri(target.user), sdp_offer(30020))
    assert second.dialog is not None
    obj = focus.running.store.get(f"xcon:{target.user}@example.org")
    assert obj is not None and obj.info.users is not None
    assert len(obj.info.users.users) == 2
    await focus.settled((2, 2, 2))
    mixer = target.user
    joins = focus.media.driver.known.joins
    assert sum(1 for key in joins if mixer in key) == 2
    await alice.bye(first)
    await focus.settled((1, 1, 1))
    obj = focus.running.store.get(f"xcon:{target.user}@example.org")
    assert obj is not None and obj.info.users is not None and len(obj.info.users.users) == 1
    await bob.bye(second)
    await focus.settled((0, 0, 0))


async def test_unknown_conference_is_404(focus: Focus, phones: PhoneFactory) -> None:
    alice = await phones("alice")
    with pytest.raises(CallFailedError) as err:
        await alice.invite(focus.uri("conf999"), sdp_offer(30030))
    assert err.value.status == 404
    assert focus.audit() == (0, 0, 0)


async def test_profile_chooses_the_ad_hoc_blueprint(tmp_path: Path, phones: PhoneFactory) -> None:
    profile = SipProfile(ad_hoc_blueprint="xcon:AudioRoom@example.org")
    async with start_focus(tmp_path, profile) as focus:
        alice = await phones("alice")
        call = await alice.invite(focus.factory, sdp_offer(30040))
        assert call.dialog is not None
        target = call.dialog.remote_target
        assert isinstance(target, SipURI)
        obj = focus.running.store.get(f"xcon:{target.user}@example.org")
        assert obj is not None and obj.info.conference_description is not None
        assert obj.info.conference_description.display_text == "AudioRoom"  # its clone
        await alice.bye(call)
        await focus.settled((0, 0, 0))


async def test_offerless_invite_gets_the_media_servers_offer(
    focus: Focus, phones: PhoneFactory
) -> None:
    """RFC 3261 s13.2.1: no offer in the INVITE; the 200 carries the media server's offer and
    the ACK the caller's answer, which the focus passes on to the media server's leg."""
    alice = await phones("alice")
    call = await alice.invite(focus.factory, b"")
    offer = parse_sdp(call.remote_sdp)
    assert offer.media[0].media == "audio" and offer.media[0].port != 0
    alice.ack(call, sdp_offer(30050))
    for _ in range(100):
        legs = list(focus.media.legs.open_legs.values())
        if legs and not legs[0].needs_answer:
            break
        await asyncio.sleep(0.02)
    (leg,) = focus.media.legs.open_legs.values()
    assert not leg.needs_answer and leg.call.state.value == "confirmed"
    await focus.settled((1, 1, 1))
    await alice.bye(call)
    await focus.settled((0, 0, 0))
