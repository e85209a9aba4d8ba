"""A CCMP exchange with curl, an HTTP client that is not ours (skipped where curl is absent)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from ccmp_server.app import CcmpConfig, CcmpServer, start_ccmp
from ccmp_server.codec import decode_response
from ccmp_server.messages import MessageType, ResponseCode
from focus.core.store import ConferenceStore
from tests.ccmp_server.vectors import load
from tests.certs import self_signed

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


async def curl(*args: str) -> tuple[int, bytes, bytes]:
    assert CURL is not None
    proc = await asyncio.create_subprocess_exec(
        CURL,
        "-sS",
        "--max-time",
        "10",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err


async def test_rfc6504_request_with_curl_over_https_and_basic_auth(
    store: ConferenceStore, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server: CcmpServer = await start_ccmp(store, CcmpConfig(port=0, tls_cert=cert, tls_key=key))
    body = tmp_path / "req.xml"
    # RFC 6504 s4.2's own request, sent as printed except for the XCON-USERID of our account.
    body.write_bytes(
        load("rfc6504/4.2-01-request.xml").replace(b"Alice@example.com", b"alice@example.com")
    )
    try:
        code, out, err = await curl(
            "--cacert",
            str(cert),
            "-u",
            "alice:pw-alice",
            "-H",
            "Content-Type: application/ccmp+xml",
            "-H",
            "Accept: application/ccmp+xml",
            "--data-binary",
            f"@{body}",
            "-D",
            str(tmp_path / "headers"),
            server.url,
        )
        assert code == 0, err
        resp = decode_response(out)
        assert resp.code is ResponseCode.SUCCESS
        assert resp.message_type is MessageType.BLUEPRINT
        headers = (tmp_path / "headers").read_text().lower()
        assert headers.startswith("http/1.1 200")
        assert "content-type: application/ccmp+xml" in headers
        assert "no-store" in headers
        code, out, _ = await curl(
            "--cacert", str(cert), "-o", "/dev/null", "-w", "%{http_code}", server.url
        )
        assert out == b"405"
    finally:
        await server.close()
