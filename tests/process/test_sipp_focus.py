"""sipp, a real third-party SIP peer, against `python -m focus serve` (with its bundled media
server): factory INVITE, join by conference URI, hold/resume, over UDP and TCP. The
scenarios (sip_profiles/sipp/focus_*.xml) check the isfocus Contact, SDP and CSeqs; this
test also reads sipp's message trace: every response of a call carries the same To-tag."""

from __future__ import annotations

import re
import shutil
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests import sipp as peer
from tests.focus.sip.conftest import free_port
from tests.paths import SIPP_SCENARIOS
from tests.serve import Serve

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

SCENARIOS = SIPP_SCENARIOS


def run_sipp(port: int, scenario: str, service: str, cwd: Path, *args: str, calls: int = 4) -> str:
    done = peer.run(
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-s",
        service,
        "-m",
        str(calls),
        "-r",
        str(calls),
        "-p",
        "0",
        "-trace_msg",
        "-trace_err",
        *args,
        cwd=cwd,
    )
    out = done.stdout[-3000:] + done.stderr[-2000:] + peer.error_logs(cwd)
    assert done.returncode == 0, out
    return out


def to_tags_per_call(cwd: Path) -> dict[str, set[str]]:
    """Call-ID -> the To-tags of every response sipp received in a call sipp itself made.
    Only sipp's own Call-IDs count: stray traffic to sipp's port (another process of a
    concurrent test run) is not the focus's answer to sipp."""
    tags: dict[str, set[str]] = defaultdict(set)
    own: set[str] = set()
    (log,) = cwd.glob("*_messages.log")
    for block in re.split(r"\n-{10,}[^\n]*\n", log.read_text(errors="replace")):
        message = block.split("\n\n", 1)[-1] if "\n\n" in block else block
        call_id = re.search(r"^Call-ID:\s*(\S+)", message, re.M | re.I)
        if call_id is None:
            continue
        if "message sent" in block and not message.lstrip().startswith("SIP/2.0"):
            own.add(call_id.group(1))  # a request sipp sent: its own call
            continue
        if "message received" not in block or not message.lstrip().startswith("SIP/2.0"):
            continue
        to_tag = re.search(r"^To:.*;tag=([^;>\s]+)", message, re.M | re.I)
        status = re.match(r"\s*SIP/2.0 (\d+)", message)
        if to_tag and status and status.group(1) != "100":
            tags[call_id.group(1)].add(to_tag.group(1))
    return {call_id: found for call_id, found in tags.items() if call_id in own}


@pytest.mark.parametrize(
    ("scenario", "transport"),
    [("focus_factory.xml", "u1"), ("focus_factory.xml", "t1"), ("focus_hold.xml", "u1")],
)
def test_sipp_against_the_focus(
    server: Serve, tmp_path: Path, scenario: str, transport: str
) -> None:
    run_sipp(server.sip_port, scenario, "conference", tmp_path, "-t", transport)
    tags = to_tags_per_call(tmp_path)
    assert len(tags) == 4
    assert all(len(t) == 1 for t in tags.values()), tags
    assert server.stop(signal.SIGTERM) == 0


def test_sipp_joins_a_ccmp_created_conference(
    server: Serve, tmp_path: Path, state_dir: Path
) -> None:
    created = server.client("create")
    assert created.returncode == 0, created.stdout + created.stderr
    conf = re.search(r"xcon:([^\s@]+)@example\.org", created.stdout)
    assert conf, created.stdout
    run_sipp(server.sip_port, "focus_factory.xml", conf.group(1), tmp_path)
    assert all(len(t) == 1 for t in to_tags_per_call(tmp_path).values())
    # The conference was made over CCMP: it stays when its callers have left.
    shown = server.client("show", conf.group(0))
    assert shown.returncode == 0, shown.stdout + shown.stderr


def test_sipp_refer_dial_out_then_refer_bye(server: Serve, tmp_path: Path) -> None:
    """s5.5 then s5.11: sipp REFERs the focus to a sipp UAS (bob), who gets called into the
    conference; a second sipp participant then REFERs bob with method=BYE and bob gets BYE."""
    port = server.sip_port
    bob_port = free_port()
    bob = peer.start("-sn", "uas", "-p", str(bob_port), "-m", "1", cwd=tmp_path)
    try:
        bob_uri = f"sip:bob@127.0.0.1:{bob_port}"
        dial = tmp_path / "dial"
        dial.mkdir()
        time.sleep(0.3)  # let bob bind
        run_sipp(
            port, "focus_refer_dialout.xml", "conference", dial, "-set", "referto", bob_uri, calls=1
        )
        listed = server.client("confs")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        confs = re.findall(r"xcon:([^\s@]+)@example\.org", listed.stdout)
        assert len(set(confs)) == 1, listed.stdout  # bob keeps the ad hoc conference alive
        kick = tmp_path / "kick"
        kick.mkdir()
        run_sipp(
            port,
            "focus_refer_bye.xml",
            confs[0],
            kick,
            "-set",
            "referto",
            f"{bob_uri};method=BYE",
            calls=1,
        )
        out, _ = bob.communicate(timeout=15)  # bob got his BYE: his one call is done
        assert bob.returncode == 0, out[-2000:]
    finally:
        peer.stop(bob)
