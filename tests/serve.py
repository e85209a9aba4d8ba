"""`python -m focus serve` as a subprocess for tests: on loopback ports it picks, state in a
folder the caller made (with the account ``alice``/``s3cret`` the CCMP calls use), its
stderr log kept, and its CCMP URL and SIP UDP address read from what it announces.

Unless told otherwise it runs the profile tests/open_sip.toml, which opens every SIP action
to anyone: the process tests are about calls, not about who may make them;
tests/security/ passes ``profile=None`` to test the default profile's gates."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
#: The default profile with every SIP action open (see the module docstring).
OPEN_SIP = Path(__file__).resolve().parent / "open_sip.toml"


def open_profile(text: str) -> str:
    """A profile's text with every SIP action opened as in ``OPEN_SIP`` (its
    ``[authorization]`` table goes last: every TOML key after a table header is the table's)."""
    return text + "\n" + OPEN_SIP.read_text()


CCMP_LISTEN = re.compile(rb"CCMP server listening on (?:http|https)://[^:]+:(\d+)/ccmp")
SIP_UDP = re.compile(rb"SIP focus listening on UDP ([\d.]+):(\d+)")


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m ARGS``, bounded, output captured."""
    return subprocess.run(
        [PY, "-m", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


class Serve:
    """The server for ``state_dir``; ``extra``: further ``serve`` options (``--profile``:
    then ``profile`` is not used); ``profile``: the profile file, ``None`` for the default."""

    def __init__(self, state_dir: Path, *extra: str, profile: Path | None = OPEN_SIP) -> None:
        if profile is not None and "--profile" not in extra:
            extra = (*extra, "--profile", str(profile))
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "focus",
                "serve",
                "--state-dir",
                str(state_dir),
                "--ccmp-listen",
                "127.0.0.1:0",
                "--sip-listen",
                "127.0.0.1:0",
                "--domain",
                "example.org",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log = b""
        self.url = ""
        self.sip_host = ""
        self.sip_port = 0
        try:
            self._wait_listening()
        except BaseException:
            self.kill()
            raise

    def _wait_listening(self) -> None:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (self.url and self.sip_port):
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError(f"server exited early: {self.log.decode()}")
            self.log += line
            if match := CCMP_LISTEN.search(line):
                self.url = f"http://127.0.0.1:{int(match.group(1))}/ccmp"
            if match := SIP_UDP.search(line):
                self.sip_host, self.sip_port = match.group(1).decode(), int(match.group(2))
        assert self.url and self.sip_port, f"server did not announce its ports: {self.log!r}"

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CCMP client as alice, whatever it answers."""
        return run_cli(
            "ccmp_server.client",
            "--url",
            self.url,
            "--user",
            "alice",
            "--password",
            "s3cret",
            *args,
        )

    def ccmp(self, *args: str) -> str:
        """The CCMP client as alice, which must succeed; its output."""
        done = self.client(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        self.log += err
        return self.proc.returncode

    def kill(self) -> None:
        """Gone, if it is not already (a test's teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)
