"""Hostile and broken bodies over HTTP: a CCMP 400 with a reason, quickly, and no change."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import CcmpRequest, MessageType, Operation, ResponseCode, Subject
from focus.core.store import ConferenceStore
from tests.ccmp_server.conftest import Client

GOOD = encode_request(
    CcmpRequest(
        MessageType.CONF,
        subject=Subject("admin", "pw-admin"),
        operation=Operation.CREATE,
    )
)
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<ccmp:ccmpRequest xmlns:ccmp="urn:ietf:params:xml:ns:xcon-ccmp"><ccmpRequest>
<confUserID>&x;</confUserID><ccmp:confsRequest/></ccmpRequest></ccmp:ccmpRequest>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><r/>'
)
DEEP = b"<a>" * 5000 + b"</a>" * 5000


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (XXE, "DTD"),
        (LAUGHS, "DTD"),
        (PARAMETER_ENTITY, "DTD"),
        (DEEP, "deep"),
        (b"", "empty"),
        (b"\xff\xfe\x00<\x00a", ""),
        (GOOD.replace(b"UTF-8", b"UTF-16"), "UTF-16"),
        (GOOD.replace(b"UTF-8", b"shift_jis"), "encoding"),
        (GOOD.replace(b"<username>", b"<username>\xc3\x28"), "UTF-8"),
        (GOOD[:-30], "well-formed"),
        (b"<?xml version='1.0'?><ccmp:ccmpRequest xmlns:ccmp='urn:nope'/>", "root element"),
    ],
    ids=[
        "xxe",
        "billion-laughs",
        "parameter-entity",
        "deep",
        "empty",
        "utf16-bom",
        "utf16-declared",
        "unknown-encoding",
        "bad-utf8",
        "truncated",
        "foreign-namespace",
    ],
)
async def test_hostile_bodies_get_400_and_change_nothing(
    client: Client, store: ConferenceStore, body: bytes, reason: str
) -> None:
    before = {o.uri: o.version for o in store.objects()}
    status, answer = await asyncio.wait_for(client.raw(body), timeout=10)
    assert status == 200
    resp = decode_response(answer)
    assert resp.code is ResponseCode.BAD_REQUEST
    assert reason.lower() in (resp.response_string or "").lower()
    assert b"root:" not in answer  # nothing of /etc/passwd
    assert {o.uri: o.version for o in store.objects()} == before


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cut=st.integers(min_value=0, max_value=len(GOOD)),
    junk=st.binary(max_size=40),
)
async def test_mangled_requests_never_crash(client: Client, cut: int, junk: bytes) -> None:
    body = GOOD[:cut] + junk + GOOD[cut:]
    status, answer = await client.raw(body)
    assert status == 200
    assert decode_response(answer).code is not ResponseCode.SERVER_INTERNAL_ERROR
