"""The process as an operator runs it: `python -m focus` on real sockets and a SQLite file.

These tests start the real server as a subprocess, talk to it with the real CCMP client over
HTTP, and kill it (SIGKILL, no chance to flush anything) to prove that what was acknowledged is
on disk.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve import Serve, run_cli


def user_add(
    state_dir: Path, name: str, role: str, password: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``focus user add`` with the password on stdin."""
    return run_cli(
        "focus",
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        "--state-dir",
        str(state_dir),
        *extra,
        stdin=password,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    done = user_add(tmp_path, "alice", "administrator", "s3cret\n", "--domain", "example.org")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "xcon-userid:alice@example.org"
    return tmp_path


@pytest.fixture
def server(state_dir: Path) -> Iterator[Serve]:
    srv = Serve(state_dir)
    yield srv
    srv.kill()


def test_user_add_rejects_bad_input(tmp_path: Path) -> None:
    no_password = user_add(tmp_path, "bob", "user", "")
    assert no_password.returncode == 2
    assert "no password" in no_password.stderr
    bad_role = user_add(tmp_path, "bob", "king", "pw\n")
    assert bad_role.returncode == 2
    assert "invalid choice" in bad_role.stderr
    twice = [user_add(tmp_path, "carol", "user", "pw\n") for _ in range(2)]
    assert twice[0].returncode == 0
    assert twice[1].returncode == 2 and "carol" in twice[1].stderr
    listed = run_cli("focus", "user", "list", "--state-dir", str(tmp_path))
    assert listed.stdout.split() == ["carol", "user", "xcon-userid:carol@localhost"]


def test_help_documents_every_serve_option() -> None:
    text = run_cli("focus", "serve", "--help").stdout
    for option in (
        "--state-dir",
        "--ccmp-listen",
        "--tls-cert",
        "--tls-key",
        "--blueprint-dir",
        "--log-level",
        "--domain",
        "--rtp-ports",
    ):
        assert option in text


def test_bad_settings_are_refused_clearly(tmp_path: Path) -> None:
    done = run_cli("focus", "serve", "--state-dir", str(tmp_path), "--ccmp-listen", "1.2.3.4:x")
    assert done.returncode == 2 and "invalid port" in done.stderr
    done = run_cli("focus", "serve", "--state-dir", str(tmp_path), "--tls-cert", "/nonexistent")
    assert done.returncode == 2 and "go together" in done.stderr
    done = run_cli("focus", "serve", "--state-dir", str(tmp_path), "--rtp-ports", "5000-80")
    assert done.returncode == 2 and "LOW < HIGH" in done.stderr


def test_sigterm_stops_cleanly_and_logs_each_request(server: Serve) -> None:
    assert server.client("blueprints").returncode == 0
    assert server.stop(signal.SIGTERM) == 0
    log = server.log.decode()
    assert re.search(r"POST /ccmp .*ccmp=200 blueprints", log), log
    assert "stopped" in log


def test_acknowledged_conference_survives_sigkill(server: Serve, state_dir: Path) -> None:
    info = state_dir / "conf.xml"
    info.write_text(
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        'entity="xcon:AUTO_GENERATE_1@example.org">'
        "<conference-description><display-text>Durable</display-text>"
        "</conference-description></conference-info>"
    )
    created = server.client("create", "--info", str(info))
    assert created.returncode == 0, created.stdout + created.stderr
    uri = re.search(r"xcon:[^\s@]+@example\.org", created.stdout)
    assert uri, created.stdout
    server.stop(signal.SIGKILL)  # no clean shutdown: only what was committed survives

    again = Serve(state_dir)
    try:
        shown = again.client("show", uri.group(0))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "Durable" in shown.stdout
    finally:
        again.stop(signal.SIGTERM)
