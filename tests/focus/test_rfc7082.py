"""RFC 7082 s3 (the conference's XCON-URI for CCMP clients) and the SIP conference URI of a
conference made over CCMP, on real sockets: a phone's OPTIONS and INVITE, a real HTTP CCMP
client reading the conference back."""

from __future__ import annotations

import re

import aiohttp
from lxml import etree

from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import (
    MEDIA_TYPE,
    CcmpRequest,
    CcmpResponse,
    MessageType,
    Operation,
    ResponseCode,
    Subject,
)
from focus.core.commands import CreateConference
from focus.core.policy import Actor, Role
from focus.sip.message import Response
from focus.sip.ua import CallAnswered, UAEvent, UserAgent
from focus.xcon.codec import parse_conference_info
from tests.focus.conftest import Focus, PhoneFactory, sdp_offer

CI = "urn:ietf:params:xml:ns:conference-info"
CALL_INFO = re.compile(r"<(xcon:[^>]+)>\s*;\s*purpose=ccmp")


def ccmp_uri(response: Response) -> str | None:
    for value in response.headers.get_all("Call-Info"):
        match = CALL_INFO.search(value)
        if match:
            return match.group(1)
    return None


def service_and_conf_uris(focus: Focus, uri: str) -> tuple[list[tuple[str, str | None]],
                                                           list[tuple[str, str | None]]]:
    obj = focus.running.store.get(uri)
    assert obj is not None and obj.info.conference_description is not None
    desc = obj.info.conference_description
    service = [(e.uri, e.purpose) for e in desc.service_uris.entries] \
        if desc.service_uris else []
    conf = [(e.uri, e.purpose) for e in desc.conf_uris.entries] if desc.conf_uris else []
    return service, conf


async def test_options_and_the_200_carry_the_xcon_uri(focus: Focus,
                                                      phones: PhoneFactory) -> None:
    alice = await phones("alice")
    answers: list[Response] = []

    def on_event(_ua: UserAgent, event: UAEvent) -> None:
        if isinstance(event, CallAnswered):
            answers.append(event.response)

    alice.on_event = on_event
    call = await alice.invite(focus.factory, sdp_offer(30200))
    (answer,) = answers
    conf = ccmp_uri(answer)
    assert conf is not None and conf.endswith("@example.org"), answer.headers.get_all(
        "Call-Info")
    local = conf.removeprefix("xcon:").partition("@")[0]
    options = await alice.request(focus.uri(local), "OPTIONS")
    assert options.status == 200
    assert ccmp_uri(options) == conf
    service, _ = service_and_conf_uris(focus, conf)
    assert (conf, "ccmp") in service
    # The factory is no conference: no XCON-URI to give.
    factory = await alice.request(focus.factory, "OPTIONS")
    assert factory.status == 200 and ccmp_uri(factory) is None
    await alice.bye(call)


async def test_a_conference_of_the_core_gets_both_uris_at_once(focus: Focus) -> None:
    """Created by another core client (here a core command as CCMP sends it): the focus
    adds the SIP URI (participation) and the XCON-URI (ccmp) before apply returns."""
    store = focus.running.store
    uri = store.apply(CreateConference(actor=Actor.system()))[0].uri
    service, conf = service_and_conf_uris(focus, uri)
    assert (uri, "ccmp") in service
    local = uri.removeprefix("xcon:").partition("@")[0]
    assert (f"sip:{local}@localhost", "participation") in conf


async def ccmp(session: aiohttp.ClientSession, focus: Focus, req: CcmpRequest) -> CcmpResponse:
    signed = CcmpRequest(
        req.message_type, subject=Subject("admin", "pw-admin"),
        conf_user_id="xcon-userid:admin@example.org", conf_obj_id=req.conf_obj_id,
        operation=req.operation, info=req.info)
    async with session.post(focus.running.ccmp.url, data=encode_request(signed), headers={
            "Content-Type": f"{MEDIA_TYPE}; charset=utf-8", "Accept": MEDIA_TYPE}) as resp:
        assert resp.status == 200, await resp.text()
        return decode_response(await resp.read())


async def test_a_conference_created_over_ccmp_lists_its_sip_uri(
        focus: Focus, phones: PhoneFactory) -> None:
    """RFC 6503 confRequest create, then retrieve: conf-uris has the SIP URI a phone dials
    (and the phone gets in), service-uris the XCON-URI with purpose ccmp."""
    focus.running.store.accounts.add("admin", Role.ADMINISTRATOR, "pw-admin")
    async with aiohttp.ClientSession() as session:
        made = await ccmp(session, focus, CcmpRequest(MessageType.CONF,
                                                      operation=Operation.CREATE))
        assert made.code is ResponseCode.SUCCESS, made.response_string
        assert made.conf_obj_id
        got = await ccmp(session, focus, CcmpRequest(
            MessageType.CONF, operation=Operation.RETRIEVE, conf_obj_id=made.conf_obj_id))
        assert got.code is ResponseCode.SUCCESS and got.info is not None
    # CCMP carries the document as <confInfo>; the codec reads it as <conference-info>.
    root = etree.Element(f"{{{CI}}}conference-info", nsmap={"ci": CI})
    for key, value in got.info.attrib.items():
        root.set(key, value)
    root.extend(list(got.info))
    info = parse_conference_info(etree.tostring(root))
    desc = info.conference_description
    assert desc is not None and desc.conf_uris is not None and desc.service_uris is not None
    sips = [e.uri for e in desc.conf_uris.entries if e.purpose == "participation"]
    assert len(sips) == 1 and sips[0].startswith("sip:conf")
    assert [(e.uri, e.purpose) for e in desc.service_uris.entries
            if e.purpose == "ccmp"] == [(made.conf_obj_id, "ccmp")]
    # Where a CCMP client tells a phone to dial: the user part at the focus's address.
    bob = await phones("bob")
    user = sips[0].removeprefix("sip:").partition("@")[0]
    call = await bob.invite(focus.uri(user), sdp_offer(30210))
    assert call.state.value == "confirmed"
    await bob.bye(call)
