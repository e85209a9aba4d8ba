"""Join and Replaces (RFC 4579 s5.8-5.10) and OPTIONS discovery (s5.13)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from focus.settings import SipProfile
from focus.sip.headers import parse_name_addr
from focus.sip.message import Response
from focus.sip.uacore import (
    Call,
    CallFailedError,
)
from tests.focus.calls.conftest import (
    Focus,
    PhoneFactory,
    answers_of,
    ended_by_peer,
    headers_of,
    sdp_offer,
    start_focus,
)
from tests.focus.calls.test_in_call import conf_of, the_user
from tests.waiting import eventually


def dialog_header(call: Call) -> str:
    """The Join/Replaces value naming ``call`` as its peer (the focus) sees it: to-tag is
    the focus's tag (RFC 3891 s3)."""
    assert call.dialog is not None
    d = call.dialog.id
    return f"{d.call_id};to-tag={d.remote_tag};from-tag={d.local_tag}"


async def test_join_header_adds_the_caller_to_that_conference(
    focus: Focus, phones: PhoneFactory
) -> None:
    alice, bob = await phones("alice"), await phones("bob")
    first = await alice.invite(focus.factory, sdp_offer(37000))
    conf = conf_of(first)
    # Bob only knows Alice's dialog with the focus; he calls the focus's factory address.
    second = await bob.invite(
        focus.factory, sdp_offer(37002), headers=[("Join", dialog_header(first))]
    )
    assert conf_of(second) == conf
    await focus.settled((2, 2, 2))
    with_unknown = "nosuch;to-tag=x;from-tag=y"
    try:
        await bob.invite(focus.factory, sdp_offer(37004), headers=[("Join", with_unknown)])
        raise AssertionError("a Join naming no dialog must fail")
    except CallFailedError as err:
        assert err.status == 481
    await alice.bye(first)
    await bob.bye(second)
    await focus.settled((0, 0, 0))


async def test_replaces_switches_the_user_agent(focus: Focus, phones: PhoneFactory) -> None:
    desk, mobile, bob = await phones("alice"), await phones("alice"), await phones("bob")
    ended = ended_by_peer(desk)
    first = await desk.invite(focus.factory, sdp_offer(37010))
    conf = conf_of(first)
    keep = await bob.invite(focus.uri(conf), sdp_offer(37012))
    entity = the_user(focus, conf).entity
    switched = await mobile.invite(
        focus.uri(conf), sdp_offer(37014), headers=[("Replaces", dialog_header(first))]
    )
    await eventually(lambda: ended == [first])
    await focus.settled((2, 2, 2))
    # Same user (same AOR), now on the other device; Bob never noticed.
    assert the_user(focus, conf).entity == entity
    assert keep.state.value == "confirmed"
    await mobile.bye(switched)
    await bob.bye(keep)
    await focus.settled((0, 0, 0))


async def test_options_discovers_a_conference_uri(focus: Focus, phones: PhoneFactory) -> None:
    alice, probe = await phones("alice"), await phones("probe")
    call = await alice.invite(focus.factory, sdp_offer(37020))
    conf = conf_of(call)
    answer = await probe.options(focus.uri(conf))
    assert answer.status == 200
    contact = parse_name_addr(answer.headers.get("Contact") or "")
    assert "isfocus" in contact.params and getattr(contact.uri, "user", None) == conf
    assert "REFER" in (answer.headers.get("Allow") or "")
    assert (await probe.options(focus.uri("conf999"))).status == 404
    assert (await probe.options(focus.factory)).status == 200
    await alice.bye(call)
    await asyncio.sleep(0)
    await focus.settled((0, 0, 0))


FOCUS_METHODS = {
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "MESSAGE",
}


def allowed(response: Response) -> set[str]:
    return {m.strip() for m in (response.headers.get("Allow") or "").split(",") if m.strip()}


async def test_rfc3261_s20_5_allow_lists_every_method_the_focus_accepts(
    focus: Focus, phones: PhoneFactory
) -> None:
    """OPTIONS (s11.2), the 200 to INVITE (s13.3.1.4) and a 405 (s20.5) carry one Allow:
    every method the focus handles, MESSAGE and SUBSCRIBE included."""
    alice, probe = await phones("alice"), await phones("probe")
    answers = answers_of(alice)
    call = await alice.invite(focus.factory, sdp_offer(37030))
    conf = conf_of(call)
    assert [allowed(a) for a in answers] == [FOCUS_METHODS]
    assert allowed(await probe.options(focus.uri(conf))) == FOCUS_METHODS
    assert allowed(await probe.options(focus.factory)) == FOCUS_METHODS
    refused = await probe.request(focus.uri(conf), "PUBLISH")
    assert refused.status == 405 and allowed(refused) == FOCUS_METHODS
    await alice.bye(call)
    await focus.settled((0, 0, 0))


async def test_creator_policy_ends_the_conference_with_its_creator(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    """Profile ad_hoc_end = "creator" (RFC 4579 s5.12): the others get BYE."""
    async with start_focus(tmp_path, SipProfile(ad_hoc_end="creator")) as focus:
        alice, bob = await phones("alice"), await phones("bob")
        ended = ended_by_peer(bob)
        first = await alice.invite(focus.factory, sdp_offer(37030))
        conf = conf_of(first)
        second = await bob.invite(focus.uri(conf), sdp_offer(37032))
        await alice.bye(first)
        await eventually(lambda: ended == [second])
        await focus.settled((0, 0, 0))
        assert focus.running.store.get(f"xcon:{conf}@example.org") is None


async def test_refer_with_refer(focus: Focus, phones: PhoneFactory) -> None:
    """RFC 4579 s5.7: Refer-To carol;method=REFER makes the focus REFER carol in."""
    alice, carol = await phones("alice"), await phones("carol")
    refers = headers_of(carol, "REFER", "Refer-To", 202)
    call = await alice.invite(focus.factory, sdp_offer(37040))
    conf = conf_of(call)
    answer = await alice.refer(call, carol.local_uri() + ";method=REFER")
    assert answer.status == 202
    await eventually(lambda: len(refers) == 1)
    assert f"sip:{conf}@" in refers[0]
    await alice.bye(call)
    await focus.settled((0, 0, 0))
