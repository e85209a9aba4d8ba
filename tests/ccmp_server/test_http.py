"""HTTP rules of RFC 6503 s9 on a real server: methods, media types, caching, limits, TLS."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from pathlib import Path

import aiohttp
import pytest

from ccmp_server.app import CcmpConfig, CcmpServer, start_ccmp
from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import (
    CCMP_NS,
    CCMP_NS_DRAFT,
    MEDIA_TYPE,
    CcmpRequest,
    MessageType,
    ResponseCode,
    Subject,
)
from focus.core.store import ConferenceStore
from tests.ccmp_server.conftest import HEADERS, Client, user_id
from tests.certs import self_signed

BLUEPRINTS = CcmpRequest(
    MessageType.BLUEPRINTS,
    subject=Subject("alice", "pw-alice"),
    conf_user_id=user_id("alice"),
)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "PATCH"])
async def test_only_post_is_served(client: Client, method: str) -> None:
    async with client.session.request(method, client.url) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept": MEDIA_TYPE},  # no Content-Type
        {"Content-Type": "application/xml", "Accept": MEDIA_TYPE},
        {"Content-Type": "text/plain", "Accept": MEDIA_TYPE},
        {"Content-Type": MEDIA_TYPE},  # no Accept
        {"Content-Type": MEDIA_TYPE, "Accept": "application/xml"},
        {"Content-Type": MEDIA_TYPE, "Accept": "*/*"},
        {"Content-Type": MEDIA_TYPE, "Accept": f"{MEDIA_TYPE};q=0"},
    ],
)
async def test_wrong_or_missing_media_types_get_406(
    client: Client, store: ConferenceStore, headers: dict[str, str]
) -> None:
    before = len(store.objects())
    status, _ = await client.raw(encode_request(BLUEPRINTS), headers)
    assert status == 406
    assert len(store.objects()) == before


async def test_accept_among_others_and_charset_parameter_are_fine(client: Client) -> None:
    headers = {
        "Content-Type": f"{MEDIA_TYPE}; charset=UTF-8",
        "Accept": f"text/html, {MEDIA_TYPE};q=0.9",
    }
    status, body = await client.raw(encode_request(BLUEPRINTS), headers)
    assert status == 200
    assert decode_response(body).code is ResponseCode.SUCCESS


async def test_answers_are_ccmp_with_caching_disabled(client: Client) -> None:
    async with client.session.post(
        client.url, data=encode_request(BLUEPRINTS), headers=HEADERS
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == MEDIA_TYPE
        assert resp.charset == "utf-8"
        assert "no-store" in resp.headers["Cache-Control"]
        assert "no-cache" in resp.headers["Cache-Control"]
        assert resp.headers["Content-Length"] == str(len(await resp.read()))


async def test_ccmp_errors_are_http_200(client: Client) -> None:
    status, body = await client.raw(b"<not-ccmp/>")
    assert status == 200
    assert decode_response(body).code is ResponseCode.BAD_REQUEST


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match", "If-Modified-Since"])
async def test_conditional_requests_get_412(client: Client, header: str) -> None:
    status, _ = await client.raw(encode_request(BLUEPRINTS), {**HEADERS, header: "*"})
    assert status == 412


async def test_range_gets_501(client: Client) -> None:
    status, _ = await client.raw(encode_request(BLUEPRINTS), {**HEADERS, "Range": "bytes=0-1"})
    assert status == 501


async def test_non_utf8_charset_is_a_ccmp_400(client: Client) -> None:
    headers = {"Content-Type": f"{MEDIA_TYPE}; charset=iso-8859-1", "Accept": MEDIA_TYPE}
    status, body = await client.raw(encode_request(BLUEPRINTS), headers)
    assert status == 200
    resp = decode_response(body)
    assert resp.code is ResponseCode.BAD_REQUEST
    assert "UTF-8" in (resp.response_string or "")


@pytest.mark.parametrize("ns", [CCMP_NS, CCMP_NS_DRAFT])
async def test_answer_uses_the_request_namespace(client: Client, ns: str) -> None:
    resp = await client.send(CcmpRequest(MessageType.BLUEPRINTS, namespace=ns))
    assert resp.namespace == ns
    assert resp.code is ResponseCode.SUCCESS


async def _read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await asyncio.wait_for(reader.readexactly(length), timeout=5)


@pytest.mark.parametrize(
    "config", [CcmpConfig(port=0, max_body_bytes=2048)], ids=["max_body_bytes=2048"]
)
async def test_oversized_body_is_refused_unread(
    server: CcmpServer, session: aiohttp.ClientSession
) -> None:
    body = encode_request(BLUEPRINTS).replace(b"</ccmpRequest>", b" " * 4096 + b"</ccmpRequest>")
    async with session.post(server.url, data=body, headers=HEADERS) as resp:
        assert resp.status == 200
        answer = decode_response(await resp.read())
    assert answer.code is ResponseCode.BAD_REQUEST
    assert "exceeds 2048 bytes" in (answer.response_string or "")


@pytest.mark.parametrize(
    "config", [CcmpConfig(port=0, request_timeout_s=0.2)], ids=["request_timeout_s=0.2"]
)
async def test_slow_sender_gets_510(server: CcmpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /ccmp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ccmp+xml\r\n"
        b"Accept: application/ccmp+xml\r\nContent-Length: 1000\r\n\r\n<ccmp"
    )
    await writer.drain()
    head, body = await _read_answer(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert decode_response(body).code is ResponseCode.REQUEST_TIMEOUT


async def test_one_log_line_per_request(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ccmp_server"):
        await client.send(CcmpRequest(MessageType.BLUEPRINTS))
        await client.raw(b"junk")
    lines = [r for r in caplog.records if r.name == "ccmp_server"]
    assert len(lines) == 2
    assert "ccmp=200 blueprints" in lines[0].getMessage()
    assert "user=xcon-userid:alice@example.com" in lines[0].getMessage()
    assert "ccmp=400" in lines[1].getMessage()
    assert "pw-alice" not in caplog.text


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_https_with_basic_auth(store: ConferenceStore, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = await start_ccmp(store, CcmpConfig(port=0, tls_cert=cert, tls_key=key))
    assert server.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(cert))
    body = encode_request(CcmpRequest(MessageType.BLUEPRINTS))
    try:
        async with aiohttp.ClientSession() as session:
            # No credentials: 424; Basic credentials over TLS: accepted.
            async with session.post(server.url, data=body, headers=HEADERS, ssl=ctx) as resp:
                assert (
                    decode_response(await resp.read()).code is ResponseCode.AUTHENTICATION_REQUIRED
                )
            auth = {**HEADERS, "Authorization": _basic("alice", "pw-alice")}
            async with session.post(server.url, data=body, headers=auth, ssl=ctx) as resp:
                answer = decode_response(await resp.read())
            assert answer.code is ResponseCode.SUCCESS
            assert answer.conf_user_id == user_id("alice")
            bad = {**HEADERS, "Authorization": _basic("alice", "nope")}
            async with session.post(server.url, data=body, headers=bad, ssl=ctx) as resp:
                assert (
                    decode_response(await resp.read()).code is ResponseCode.AUTHENTICATION_REQUIRED
                )
            # Plain HTTP to a TLS port does not get an answer.
            with pytest.raises(aiohttp.ClientError):
                async with session.post(
                    server.url.replace("https:", "http:"), data=body, headers=HEADERS
                ) as resp:
                    await resp.read()
    finally:
        await server.close()


async def test_basic_auth_is_ignored_over_plain_http(client: Client) -> None:
    body = encode_request(CcmpRequest(MessageType.BLUEPRINTS))
    headers = {**HEADERS, "Authorization": _basic("alice", "pw-alice")}
    async with client.session.post(client.url, data=body, headers=headers) as resp:
        answer = decode_response(await resp.read())
    assert answer.code is ResponseCode.AUTHENTICATION_REQUIRED


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="together"):
        CcmpConfig(tls_cert=Path("x.pem"))
    with pytest.raises(ValueError, match="start with"):
        CcmpConfig(path="ccmp")


async def test_answer_to_an_untyped_request_has_no_specialized_part(client: Client) -> None:
    body = (
        f'<ccmp:ccmpRequest xmlns:ccmp="{CCMP_NS_DRAFT}"><ccmpRequest>'
        "<confUserID>xcon-userid:alice@example.com</confUserID>"
        "</ccmpRequest></ccmp:ccmpRequest>"
    ).encode()
    status, answer = await client.raw(body)
    assert status == 200
    resp = decode_response(answer)
    assert resp.code is ResponseCode.BAD_REQUEST
    assert resp.message_type is None
    assert resp.namespace == CCMP_NS_DRAFT
    assert resp.conf_user_id == "xcon-userid:alice@example.com"
    assert b"Response>" not in answer.replace(b"ccmpResponse>", b"")


@pytest.mark.parametrize(
    "config", [CcmpConfig(port=0, idle_timeout_s=0.3)], ids=["idle_timeout_s=0.3"]
)
async def test_slow_headers_do_not_hold_a_connection(server: CcmpServer) -> None:
    # A client trickling its request head byte by byte (slowloris) is cut off once the
    # head has not been completed within idle_timeout_s, however steadily it sends.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = b"POST /ccmp HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
    closed = False
    for byte in head:
        writer.write(bytes([byte]))
        try:
            await writer.drain()
            got = await asyncio.wait_for(reader.read(1), timeout=0.02)
        except TimeoutError:
            continue
        except ConnectionError:
            closed = True
            break
        if got == b"":
            closed = True
            break
    writer.close()
    assert closed, "the server still waits for the head after 30 s of trickling"


@pytest.mark.parametrize(
    "config", [CcmpConfig(port=0, idle_timeout_s=0.2)], ids=["idle_timeout_s=0.2"]
)
async def test_idle_keep_alive_connection_is_closed(server: CcmpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    body = encode_request(BLUEPRINTS)
    head = (
        f"POST /ccmp HTTP/1.1\r\nHost: x\r\nContent-Type: {MEDIA_TYPE}\r\n"
        f"Accept: {MEDIA_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    _, answer = await _read_answer(reader)
    assert decode_response(answer).code is ResponseCode.SUCCESS
    # kept alive, then closed when no next request comes
    assert await asyncio.wait_for(reader.read(1), timeout=10) == b""
    writer.close()


async def test_requests_beyond_the_in_flight_limit_get_510(
    store: ConferenceStore, session: aiohttp.ClientSession
) -> None:
    server = await start_ccmp(store, CcmpConfig(port=0, max_in_flight=2, request_timeout_s=30))
    slow = []
    try:
        for _ in range(2):  # two requests whose bodies never finish occupy both slots
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                f"POST /ccmp HTTP/1.1\r\nHost: x\r\nContent-Type: {MEDIA_TYPE}\r\n"
                f"Accept: {MEDIA_TYPE}\r\nContent-Length: 1000\r\n\r\n<ccmp".encode()
            )
            await writer.drain()
            slow.append((reader, writer))
        answer = None
        for _ in range(100):  # until the server has taken both slow requests in
            async with session.post(
                server.url, data=encode_request(BLUEPRINTS), headers=HEADERS
            ) as resp:
                assert resp.status == 200
                answer = decode_response(await resp.read())
                if answer.code is ResponseCode.REQUEST_TIMEOUT:
                    assert resp.headers["Retry-After"] == "1"
                    break
            await asyncio.sleep(0.05)
        assert answer is not None and answer.code is ResponseCode.REQUEST_TIMEOUT
        assert "busy" in (answer.response_string or "")
        # finishing one slow request frees its slot
        reader, writer = slow.pop()
        writer.close()
        for _ in range(100):
            async with session.post(
                server.url, data=encode_request(BLUEPRINTS), headers=HEADERS
            ) as resp:
                answer = decode_response(await resp.read())
            if answer.code is ResponseCode.SUCCESS:
                break
            await asyncio.sleep(0.05)
        assert answer.code is ResponseCode.SUCCESS
    finally:
        for _, writer in slow:
            writer.close()
        await server.close()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="idle_timeout_s"):
        CcmpConfig(idle_timeout_s=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        CcmpConfig(max_in_flight=0)
