"""RFC 7082 s3 (the conference's XCON-URI for CCMP clients) and the SIP conference URI of a
conference made over CCMP, on real sockets: a phone's OPTIONS and INVITE, a real HTTP CCMP
client reading the conference back."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from ccmp_server.messages import (
    CcmpRequest,
    CcmpResponse,
    MessageType,
    Operation,
    ResponseCode,
)
from focus.core.changes import ConferenceCreated
from focus.core.commands import CreateConference
from focus.core.core import CoreConfig
from focus.core.policy import Actor
from focus.core.store import ConferenceStore
from focus.sip.message import Response
from focus.xcon.codec import parse_conference_info, serialize_conference_info
from focus.xcon.model import ConferenceDescription, ConferenceInfo, Role
from tests.focus.calls.conftest import (
    Focus,
    PhoneFactory,
    answers_of,
    ccmp_as,
    sdp_offer,
    start_focus,
)

CI = "urn:ietf:params:xml:ns:conference-info"
CALL_INFO = re.compile(r"<(xcon:[^>]+)>\s*;\s*purpose=ccmp")


def ccmp_uri(response: Response) -> str | None:
    for value in response.headers.get_all("Call-Info"):
        match = CALL_INFO.search(value)
        if match:
            return match.group(1)
    return None


def service_and_conf_uris(
    focus: Focus, uri: str
) -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    obj = focus.running.store.get(uri)
    assert obj is not None and obj.info.conference_description is not None
    desc = obj.info.conference_description
    service = [(e.uri, e.purpose) for e in desc.service_uris.entries] if desc.service_uris else []
    conf = [(e.uri, e.purpose) for e in desc.conf_uris.entries] if desc.conf_uris else []
    return service, conf


async def test_options_and_the_200_carry_the_xcon_uri(focus: Focus, phones: PhoneFactory) -> None:
    alice = await phones("alice")
    answers = answers_of(alice)
    call = await alice.invite(focus.factory, sdp_offer(30200))
    (answer,) = answers
    conf = ccmp_uri(answer)
    assert conf is not None and conf.endswith("@example.org"), answer.headers.get_all("Call-Info")
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


async def test_a_conference_created_over_ccmp_lists_its_sip_uri(
    focus: Focus, phones: PhoneFactory
) -> None:
    """RFC 6503 confRequest create, then retrieve: conf-uris has the SIP URI a phone dials
    (and the phone gets in), service-uris the XCON-URI with purpose ccmp."""
    focus.running.store.accounts.add("admin", Role.ADMINISTRATOR, "pw-admin")
    async with aiohttp.ClientSession() as session:
        made = await ccmp_as(
            "admin", session, focus, CcmpRequest(MessageType.CONF, operation=Operation.CREATE)
        )
        assert made.code is ResponseCode.SUCCESS, made.response_string
        assert made.conf_obj_id
        got = await retrieve(session, focus, made.conf_obj_id)
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
    assert [(e.uri, e.purpose) for e in desc.service_uris.entries if e.purpose == "ccmp"] == [
        (made.conf_obj_id, "ccmp")
    ]
    # Where a CCMP client tells a phone to dial: the user part at the focus's address.
    bob = await phones("bob")
    user = sips[0].removeprefix("sip:").partition("@")[0]
    call = await bob.invite(focus.uri(user), sdp_offer(30210))
    assert call.state.value == "confirmed"
    await bob.bye(call)


def uris_of(info: etree._Element) -> tuple[list[str], list[str]]:
    """(participation conf-uris, ccmp service-uris) of a CCMP <confInfo>."""
    desc = parse_conference_info(info).conference_description
    assert desc is not None
    sips = (
        [e.uri for e in desc.conf_uris.entries if e.purpose == "participation"]
        if desc.conf_uris
        else []
    )
    ccmps = (
        [e.uri for e in desc.service_uris.entries if e.purpose == "ccmp"]
        if desc.service_uris
        else []
    )
    return sips, ccmps


def title_patch(uri: str, version: int | None, title: str) -> etree._Element:
    return serialize_conference_info(
        ConferenceInfo(
            entity=uri,
            version=version,
            conference_description=ConferenceDescription(display_text=title),
        )
    )


async def retrieve(session: aiohttp.ClientSession, focus: Focus, uri: str | None) -> CcmpResponse:
    """RFC 6503 confRequest retrieve of ``uri`` as the administrator."""
    return await ccmp_as(
        "admin",
        session,
        focus,
        CcmpRequest(MessageType.CONF, operation=Operation.RETRIEVE, conf_obj_id=uri),
    )


async def retitle(
    session: aiohttp.ClientSession,
    focus: Focus,
    message_type: MessageType,
    made: CcmpResponse,
    title: str,
) -> CcmpResponse:
    """An update of ``made``'s title as the administrator, naming the version it was made with."""
    assert made.conf_obj_id is not None
    return await ccmp_as(
        "admin",
        session,
        focus,
        CcmpRequest(
            message_type,
            operation=Operation.UPDATE,
            conf_obj_id=made.conf_obj_id,
            info=title_patch(made.conf_obj_id, made.version, title),
        ),
    )


async def test_a_ccmp_create_answers_with_both_uris_and_the_stored_version(focus: Focus) -> None:
    """The create's own <confInfo> lists the SIP URI and the XCON-URI (no later update by
    the focus), and its version is the stored one: an update naming it is accepted."""
    focus.running.store.accounts.add("admin", Role.ADMINISTRATOR, "pw-admin")
    async with aiohttp.ClientSession() as session:
        made = await ccmp_as(
            "admin", session, focus, CcmpRequest(MessageType.CONF, operation=Operation.CREATE)
        )
        assert made.code is ResponseCode.SUCCESS, made.response_string
        assert made.conf_obj_id and made.info is not None and made.version is not None
        assert uris_of(made.info) == ([focus.focus.sip_uri(made.conf_obj_id)], [made.conf_obj_id])
        stored = focus.running.store.get(made.conf_obj_id)
        assert stored is not None and stored.version == made.version
        updated = await retitle(session, focus, MessageType.CONF, made, "renamed")
        assert updated.code is ResponseCode.SUCCESS, updated.response_string
        assert updated.version == made.version + 1
        # A stale version is still refused: the check above could fail.
        stale = await retitle(session, focus, MessageType.CONF, made, "again")
        assert stale.code is ResponseCode.CONFLICT


@pytest.mark.parametrize("message_type", [MessageType.SIDEBAR_BY_REF, MessageType.SIDEBAR_BY_VAL])
async def test_a_ccmp_sidebar_create_answers_with_its_own_uris(
    focus: Focus, phones: PhoneFactory, message_type: MessageType
) -> None:
    focus.running.store.accounts.add("admin", Role.ADMINISTRATOR, "pw-admin")
    async with aiohttp.ClientSession() as session:
        parent = await ccmp_as(
            "admin", session, focus, CcmpRequest(MessageType.CONF, operation=Operation.CREATE)
        )
        assert parent.conf_obj_id is not None
        made = await ccmp_as(
            "admin",
            session,
            focus,
            CcmpRequest(message_type, operation=Operation.CREATE, conf_obj_id=parent.conf_obj_id),
        )
        assert made.code is ResponseCode.SUCCESS, made.response_string
        assert made.conf_obj_id and made.info is not None and made.version is not None
        assert made.conf_obj_id != parent.conf_obj_id
        assert uris_of(made.info) == ([focus.focus.sip_uri(made.conf_obj_id)], [made.conf_obj_id])
        updated = await retitle(session, focus, message_type, made, "side")
        assert updated.code is ResponseCode.SUCCESS, updated.response_string
        assert updated.version == made.version + 1
        # The parent still lists its own SIP URI, not the sidebar's.
        got = await retrieve(session, focus, parent.conf_obj_id)
        assert got.info is not None
        assert uris_of(got.info) == (
            [focus.focus.sip_uri(parent.conf_obj_id)],
            [parent.conf_obj_id],
        )


async def test_the_factory_conference_has_both_uris_from_its_create(
    focus: Focus, phones: PhoneFactory
) -> None:
    created: list[ConferenceCreated] = []
    unsubscribe = focus.running.store.subscribe(
        lambda changes: created.extend(c for c in changes if isinstance(c, ConferenceCreated))
    )
    try:
        alice = await phones("alice")
        call = await alice.invite(focus.factory, sdp_offer(30220))
    finally:
        unsubscribe()
    (uri,) = focus.focus.ad_hoc
    # The create itself carries both: nothing writes them afterwards.
    (first,) = created
    assert first.uri == uri and first.after is not None and first.after.ad_hoc
    desc = first.after.info.conference_description
    assert desc is not None and desc.conf_uris is not None and desc.service_uris is not None
    assert [(e.uri, e.purpose) for e in desc.conf_uris.entries] == [
        (focus.focus.sip_uri(uri), "participation")
    ]
    assert [(e.uri, e.purpose) for e in desc.service_uris.entries] == [(uri, "ccmp")]
    service, conf = service_and_conf_uris(focus, uri)
    assert service == [(uri, "ccmp")]
    assert conf == [(focus.focus.sip_uri(uri), "participation")]
    await alice.bye(call)


async def test_a_restart_keeps_the_uris_and_repairs_older_state(tmp_path: Path) -> None:
    # State written before the core listed the URIs: a store without the SIP pattern.
    old = ConferenceStore.open(tmp_path, CoreConfig(domain="example.org"))
    try:
        (before,) = old.apply(CreateConference(actor=Actor.system()))
    finally:
        old.close()
    async with start_focus(tmp_path) as focus:
        service, conf = service_and_conf_uris(focus, before.uri)
        assert (before.uri, "ccmp") in service
        assert (focus.focus.sip_uri(before.uri), "participation") in conf
        (made,) = focus.running.store.apply(CreateConference(actor=Actor.system()))
        kept = focus.running.store.get(made.uri)
    async with start_focus(tmp_path) as focus:
        assert focus.running.store.get(made.uri) == kept
        service, conf = service_and_conf_uris(focus, made.uri)
        assert service == [(made.uri, "ccmp")]
        assert conf == [(focus.focus.sip_uri(made.uri), "participation")]
