"""sipp, a third-party SIP peer, subscribes to the conference event package of
``python -m focus serve`` (sip_profiles/sipp/eventpkg_*.xml): full NOTIFY (version 1), a
CCMP change -> partial NOTIFY (version 2), unsubscribe -> terminated; 489 for another
package; a MESSAGE from a member of a chat room (chat_message.xml) is accepted (202)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from focus.core import conference_id
from focus.core.accounts import add_account
from tests import sipp as peer
from tests.paths import SIPP_SCENARIOS
from tests.serve import Serve

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]

SCENARIOS = SIPP_SCENARIOS
CONF_URI = re.compile(r"xcon:([^\s@]+)@example\.org")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """A profile without NOTIFY pacing (RFC 4575 s3.9's 5 s would only slow the test)."""
    state = tmp_path / "state"
    state.mkdir()
    add_account(state, "alice", "administrator", "s3cret", domain="example.org", scrypt_n=2**4)
    profile = state / "unpaced.toml"
    profile.write_text("notify_interval = 0.0\n")
    srv = Serve(state, "--profile", str(profile))
    yield srv
    srv.kill()


def sipp(port: int, scenario: str, conf: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return peer.start(
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-s",
        conf,
        "-m",
        "1",
        "-p",
        "0",
        "-trace_msg",
        "-trace_err",
        *args,
        cwd=cwd,
    )


def finished(proc: subprocess.Popen[str], cwd: Path) -> str:
    out, _ = proc.communicate(timeout=90)
    out += peer.error_logs(cwd)
    assert proc.returncode == 0, out[-5000:]
    return out


def created(serve: Serve) -> str:
    conf = CONF_URI.search(serve.ccmp("create", "--title", "Before"))
    assert conf, "no XCON-URI in the create answer"
    return conf.group(1)


@pytest.mark.parametrize(
    ("scenario", "transport", "first"),
    [
        ("eventpkg_subscribe.xml", "u1", 'version="1"'),
        ("eventpkg_subscribe.xml", "t1", 'version="1"'),
        ("eventpkg_xcon_diff.xml", "u1", "application/xcon-conference-info+xml"),
    ],
)
def test_sipp_subscribes_sees_full_then_partial_then_terminated(
    serve: Serve, tmp_path: Path, scenario: str, transport: str, first: str
) -> None:
    conf = created(serve)
    proc = sipp(serve.sip_port, scenario, conf, tmp_path, "-t", transport)
    try:
        deadline = time.monotonic() + 20
        # The change must come after the full state (else it would be in it).
        while first not in peer.messages(tmp_path):
            assert proc.poll() is None, finished(proc, tmp_path)
            assert time.monotonic() < deadline, "no first NOTIFY"
            time.sleep(0.05)
        serve.ccmp("update", f"xcon:{conf}@example.org", "--title", "After")
        finished(proc, tmp_path)
    finally:
        peer.stop(proc)
    blocks = re.split(r"\n-{10,}[^\n]*\n", peer.messages(tmp_path))
    # the partial carries the change
    assert any(re.search(r"^NOTIFY ", b, re.M) and "After" in b for b in blocks)
    assert serve.stop() == 0


def test_sipp_other_event_package_without_accept_is_489(serve: Serve, tmp_path: Path) -> None:
    conf = created(serve)
    finished(sipp(serve.sip_port, "eventpkg_presence_noaccept.xml", conf, tmp_path), tmp_path)


def test_sipp_other_event_package_is_489(serve: Serve, tmp_path: Path) -> None:
    conf = created(serve)
    finished(sipp(serve.sip_port, "eventpkg_presence.xml", conf, tmp_path), tmp_path)


def test_sipp_message_to_a_conference(serve: Serve, tmp_path: Path) -> None:
    """sipp, made a member of a ChatRoom with ``add-user --dial-in``, sends a MESSAGE to
    the room (chat_message.xml): 202 Accepted for relaying (RFC 3428 s7, the seed's s8)."""
    chat = re.search(r"(xcon:ChatRoom@\S+)", serve.ccmp("blueprints"))
    assert chat, "no ChatRoom blueprint"
    conf = re.search(r"object: (\S+)", serve.ccmp("create", "--blueprint", chat.group(1)))
    assert conf, "no conference object in the create answer"
    serve.ccmp("add-user", conf.group(1), "--dial-in", "sip:sipp@127.0.0.1", "--name", "Sipp")
    finished(
        sipp(serve.sip_port, "chat_message.xml", conference_id(conf.group(1)), tmp_path), tmp_path
    )
    assert re.search(r"^SIP/2.0 202 ", peer.messages(tmp_path), re.M)
