"""In the call: hold/resume by re-INVITE, and CCMP changes (mute, remove, delete) reaching
the calls and the mixer."""

from __future__ import annotations

import asyncio

from focus.core.commands import DeleteConference, RemoveUser, UpdateUser
from focus.core.policy import Actor
from focus.sip.aio.ua import UserAgent
from focus.sip.sdp import Direction, parse_sdp
from focus.sip.uacore import Call, CallAnswered, CallState, UAEvent
from focus.sip.uri import SipURI
from focus.xcon.model import Endpoint, EndpointStatus, Media, User
from mediactrl.mixer.model import Direction as MixDirection
from tests.focus.calls.conftest import Focus, PhoneFactory, ended_by_peer, sdp_offer
from tests.focus.core.conftest import vcalendar
from tests.waiting import eventually


def conf_of(call: Call) -> str:
    assert call.dialog is not None
    target = call.dialog.remote_target
    assert isinstance(target, SipURI) and target.user is not None
    return target.user


def the_user(focus: Focus, conf: str, index: int = 0) -> User:
    obj = focus.running.store.get(f"xcon:{conf}@example.org")
    assert obj is not None and obj.info.users is not None
    return obj.info.users.users[index]


def join_direction(focus: Focus, conf: str) -> MixDirection | None:
    """The join's direction as the connection (id1) has it, whether it is one <stream> or
    one per direction (sendonly + recvonly, each with its own volume)."""
    ((spec),) = [s for k, s in focus.media.driver.known.joins.items() if conf in k]
    assert spec.streams is not None
    directions = {s.direction or MixDirection.SENDRECV for s in spec.streams}
    if len(directions) == 1:
        return directions.pop()
    if directions == {MixDirection.SENDONLY, MixDirection.RECVONLY}:
        return MixDirection.SENDRECV
    raise AssertionError(f"unexpected streams {spec.streams}")


async def reinvite(phone: UserAgent, call: Call, body: bytes) -> bytes:
    answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_event(_ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallAnswered) and event.call is call and not answered.done():
            answered.set_result(event.response.body)

    phone.on_event = on_event
    phone.core.reinvite(call, body, phone.now)
    phone.transport.flush()
    return await asyncio.wait_for(answered, 5)


async def test_hold_and_resume(focus: Focus, phones: PhoneFactory) -> None:
    alice = await phones("alice")
    call = await alice.invite(focus.factory, sdp_offer(32000))
    conf = conf_of(call)
    first = parse_sdp(call.answer)
    answer = parse_sdp(await reinvite(alice, call, sdp_offer(32000, "sendonly")))
    assert answer.direction_of(0) is Direction.RECVONLY
    assert answer.origin.version == first.origin.version + 1
    assert answer.media[0].port == first.media[0].port  # same leg, same port
    await eventually(lambda: the_user(focus, conf).endpoints[0].status == EndpointStatus.ON_HOLD)
    await eventually(lambda: join_direction(focus, conf) is MixDirection.INACTIVE)
    answer = parse_sdp(await reinvite(alice, call, sdp_offer(32000, "sendrecv")))
    assert answer.direction_of(0) is Direction.SENDRECV
    await eventually(lambda: the_user(focus, conf).endpoints[0].status == EndpointStatus.CONNECTED)
    await eventually(lambda: join_direction(focus, conf) in (None, MixDirection.SENDRECV))
    await alice.bye(call)
    await focus.settled((0, 0, 0))


async def test_ccmp_mute_becomes_a_modifyjoin(focus: Focus, phones: PhoneFactory) -> None:
    alice = await phones("alice")
    call = await alice.invite(focus.factory, sdp_offer(32010))
    conf = conf_of(call)
    user = the_user(focus, conf)
    assert user.entity is not None
    for status, direction in (("recvonly", MixDirection.RECVONLY), ("sendrecv", None)):
        # As `ccmp_server.client mute` sends it (RFC 6504 s6.2): media by id, no endpoint.
        patch = User(
            entity=user.entity, endpoints=(Endpoint(media=(Media(id="1", status=status),)),)
        )
        focus.running.store.apply(
            UpdateUser(actor=Actor.system(), uri=f"xcon:{conf}@example.org", user=patch)
        )
        await eventually(
            lambda d=direction: (
                join_direction(focus, conf) in ((d,) if d else (None, MixDirection.SENDRECV))
            )
        )
    await alice.bye(call)
    await focus.settled((0, 0, 0))


async def test_ccmp_remove_sends_bye_and_unjoins(focus: Focus, phones: PhoneFactory) -> None:
    alice, bob = await phones("alice"), await phones("bob")
    ended = ended_by_peer(alice)
    call = await alice.invite(focus.factory, sdp_offer(32020))
    conf = conf_of(call)
    other = await bob.invite(focus.uri(conf), sdp_offer(32022))
    user = the_user(focus, conf)
    assert user.entity is not None
    focus.running.store.apply(
        RemoveUser(actor=Actor.system(), uri=f"xcon:{conf}@example.org", entity=user.entity)
    )
    await eventually(lambda: ended == [call])
    await focus.settled((1, 1, 1))
    assert other.state is CallState.CONFIRMED
    await bob.bye(other)
    await focus.settled((0, 0, 0))


async def test_ccmp_delete_ends_every_call(focus: Focus, phones: PhoneFactory) -> None:
    alice, bob = await phones("alice"), await phones("bob")
    first = await alice.invite(focus.factory, sdp_offer(32030))
    conf = conf_of(first)
    second = await bob.invite(focus.uri(conf), sdp_offer(32032))
    await focus.settled((2, 2, 2))
    focus.running.store.apply(
        DeleteConference(actor=Actor.system(), uri=f"xcon:{conf}@example.org")
    )
    await eventually(lambda: first.state is CallState.ENDED and second.state is CallState.ENDED)
    await focus.settled((0, 0, 0))
    await eventually(lambda: conf not in focus.media.driver.known.conferences)
    assert focus.server.engine.stats().conferences == 0


async def test_control_channel_loss_keeps_calls(focus: Focus, phones: PhoneFactory) -> None:
    """The CFW channel dies: SIP calls stay up, the client reconnects, the driver re-audits,
    and the conference and joins are there again; new callers still get in."""
    alice, bob = await phones("alice"), await phones("bob")
    call = await alice.invite(focus.factory, sdp_offer(32040))
    conf = conf_of(call)
    resyncs = focus.media.driver.resyncs
    connections = focus.media.client.connections_made
    focus.server.control.drop_channels()
    await eventually(
        lambda: (
            focus.media.client.connections_made > connections
            and focus.media.driver.resyncs > resyncs
            and focus.media.driver.in_sync
        )
    )
    assert call.state is CallState.CONFIRMED
    assert conf in focus.media.driver.known.conferences
    assert join_direction(focus, conf) in (None, MixDirection.SENDRECV)
    other = await bob.invite(focus.uri(conf), sdp_offer(32042))
    await focus.settled((2, 2, 2))
    await alice.bye(call)
    await bob.bye(other)
    await focus.settled((0, 0, 0))


async def test_scheduled_end_ends_the_calls(focus: Focus, phones: PhoneFactory) -> None:
    """RFC 5239 s7.3: when a reservation's time is over the focus hangs up; the user stays,
    disconnected (booted)."""
    from datetime import UTC, datetime, timedelta

    from focus.core.commands import CreateConference, Tick
    from focus.xcon.model import (
        ConferenceDescription,
        ConferenceInfo,
        ConferenceTime,
        ConferenceTimeEntry,
    )

    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    ical = vcalendar(
        f"DTSTAMP:{start}",
        f"DTSTART:{start}",
        "DURATION:PT1H",
    )
    info = ConferenceInfo(
        entity="xcon:AUTO_GENERATE_1@example.org",
        conference_description=ConferenceDescription(
            conference_time=ConferenceTime(entries=(ConferenceTimeEntry(base=ical),))
        ),
    )
    store = focus.running.store
    uri = store.apply(CreateConference(actor=Actor.system(), info=info))[0].uri
    store.apply(Tick(now=now))
    alice = await phones("alice")
    ended = ended_by_peer(alice)
    conf = uri.partition(":")[2].partition("@")[0]
    call = await alice.invite(focus.uri(conf), sdp_offer(32050))
    store.apply(Tick(now=now + timedelta(hours=2)))
    await eventually(lambda: ended == [call])
    await focus.settled((0, 0, 0))
    await eventually(
        lambda: the_user(focus, conf).endpoints[0].status == EndpointStatus.DISCONNECTED
    )
    assert the_user(focus, conf).endpoints[0].disconnection_method == "booted"
