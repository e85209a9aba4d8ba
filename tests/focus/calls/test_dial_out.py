"""CCMP adds a user with a dialed-out endpoint: the focus calls her (RFC 4579 s5.5, RFC 6504
s6.1) and the endpoint status shows the way (RFC 4575 s5.7.3, s5.7.6)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from focus.core import conference_id
from focus.core.changes import Change
from focus.core.commands import AddUser, CreateConference, RemoveUser
from focus.core.policy import Actor
from focus.sip.aio.ua import UserAgent
from focus.sip.headers import parse_name_addr
from focus.sip.message import make_response
from focus.sip.uacore import Call, CallEnded, CallState, IncomingCall, UAEvent
from focus.xcon.model import Endpoint, JoiningMethod, User
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer
from tests.waiting import eventually


class Callee:
    """A phone that rings, then answers (or refuses with ``status``)."""

    def __init__(self, ua: UserAgent, status: int = 200, port: int = 34000) -> None:
        self.ua = ua
        self.status = status
        self.port = port
        self.calls: list[Call] = []
        self.contacts: list[str] = []
        self.froms: list[str] = []
        self.ended = asyncio.Event()
        ua.on_event = self.on_event

    @property
    def uri(self) -> str:
        return self.ua.local_uri()

    def on_event(self, ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, IncomingCall) and not event.reinvite:
            self.calls.append(event.call)
            self.contacts.append(event.request.headers.get("Contact") or "")
            self.froms.append(str(event.request.from_.uri))
            ringing = make_response(event.request, 180, to_tag=event.call.local_tag)
            ua.core.layer.send_response(ringing, ua.now)
            ua.transport.flush()
            asyncio.get_running_loop().call_later(0.1, self.answer, event.call)
        elif isinstance(event, CallEnded):
            self.ended.set()

    def answer(self, call: Call) -> None:
        if self.status == 200:
            self.ua.accept(call, sdp_offer(self.port))
        else:
            self.ua.reject(call, self.status)


def statuses(focus: Focus) -> list[str]:
    seen: list[str] = []

    def changed(changes: Sequence[Change]) -> None:
        for change in changes:
            if change.after is None or change.after.info.users is None:
                continue
            for user in change.after.info.users.users:
                for e in user.endpoints:
                    if e.status is not None and (not seen or seen[-1] != e.status):
                        seen.append(str(e.status))

    focus.running.store.subscribe(changed)
    return seen


def add_dial_out(focus: Focus, conf: str, target: str) -> str:
    user = User(
        entity="xcon-userid:AUTO_GENERATE_1@example.org",
        endpoints=(Endpoint(entity=target, joining_method=JoiningMethod.DIALED_OUT),),
    )
    changes = focus.running.store.apply(AddUser(actor=Actor.system(), uri=conf, user=user))
    entity = getattr(changes[0], "user", None)
    assert isinstance(entity, str)
    return entity


def new_conference(focus: Focus) -> str:
    return focus.running.store.apply(CreateConference(actor=Actor.system()))[0].uri


async def test_dial_out_connects_and_ccmp_delete_hangs_up(
    focus: Focus, phones: PhoneFactory
) -> None:
    callee = Callee(await phones("bob"))
    conf = new_conference(focus)
    seen = statuses(focus)
    entity = add_dial_out(focus, conf, callee.uri)
    await eventually(lambda: seen[-1:] == ["connected"])
    assert seen == ["dialing-out", "alerting", "connected"]
    (call,) = callee.calls
    contact = parse_name_addr(callee.contacts[0])
    assert "isfocus" in contact.params
    assert getattr(contact.uri, "user", None) == conference_id(conf)
    assert callee.froms[0].startswith(f"sip:{conference_id(conf)}@")  # the conference calls
    await focus.settled((1, 1, 1))
    assert call.state is CallState.CONFIRMED
    # userRequest delete: BYE to the phone, the leg unjoined and closed.
    focus.running.store.apply(RemoveUser(actor=Actor.system(), uri=conf, entity=entity))
    await asyncio.wait_for(callee.ended.wait(), 5)
    await focus.settled((0, 0, 0))


async def test_busy_and_failed_dial_outs_are_disconnected(
    focus: Focus, phones: PhoneFactory
) -> None:
    for status, method in ((486, "busy"), (404, "failed")):
        callee = Callee(await phones(f"p{status}"), status=status)
        conf = new_conference(focus)
        seen = statuses(focus)
        entity = add_dial_out(focus, conf, callee.uri)
        await eventually(lambda s=seen: s[-1:] == ["disconnected"])
        assert seen == ["dialing-out", "alerting", "disconnected"]
        obj = focus.running.store.get(conf)
        assert obj is not None
        user = obj.info.user(entity)
        assert user is not None
        (endpoint,) = user.endpoints
        assert endpoint.disconnection_method == method
        await focus.settled((0, 0, 0))
