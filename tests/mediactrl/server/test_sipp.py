"""sipp, a real third-party SIP peer, opens media legs to the bundled media server
(sip_profiles/sipp/mediaserver_leg.xml: offer PCMA/PCMU/telephone-event, the 200's SDP is
checked, ACK, BYE), over UDP and TCP; the server ends with no RTP endpoint left."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mediactrl.server.app import MediaServer
from tests import sipp
from tests.mediactrl.client.test_channel import until
from tests.paths import SIPP_SCENARIOS

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

SCENARIO = SIPP_SCENARIOS / "mediaserver_leg.xml"


async def run_sipp(server: MediaServer, *args: str, cwd: Path) -> tuple[int, str]:
    target = f"127.0.0.1:{server.sip_port}"
    return await sipp.run_async(
        target, "-sf", str(SCENARIO), "-s", "mediaserver", "-m", "6", "-r", "6", *args, cwd=cwd
    )


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_opens_and_closes_media_legs(
    media_server: MediaServer, tmp_path: Path, transport: str
) -> None:
    code, out = await run_sipp(media_server, "-t", transport, "-p", "0", cwd=tmp_path)
    assert code == 0, out
    await until(lambda: not media_server.sip.legs, timeout=5)
    await until(lambda: media_server.engine.stats().endpoints == 0, timeout=5)
