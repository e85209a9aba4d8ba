"""Real phones: baresip (Debian package baresip) dials the focus. Three phones each send a
tone from a WAV file (aufile source) and record what they decode (the sndfile filter dumps
``dump-*-dec.wav``: baresip 1.0.0's aufile has no player); each must hear the other two
tones and not its own. An auto-answering baresip is rung by a CCMP dial-out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from focus.core.changes import UserAdded
from focus.core.commands import AddUser, CreateConference
from focus.core.policy import Actor
from focus.xcon.model import Endpoint, EndpointStatus, JoiningMethod, User
from tests.focus.calls.conftest import Focus
from tests.mediactrl.media.phones import tone_levels
from tests.waiting import eventually

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed"),
]

RATE = 8000
TONES = (500.0, 900.0, 1300.0)


def module_path() -> str:
    listed = subprocess.run(
        ["dpkg", "-L", "baresip-core"], capture_output=True, text=True, check=False
    ).stdout
    for line in listed.splitlines():
        if line.endswith("baresip/modules"):
            return line
    return "/usr/lib/baresip/modules"


def write_tone(path: Path, hz: float, seconds: float = 20.0) -> None:
    n = np.arange(int(RATE * seconds))
    pcm = (6000 * np.sin(2 * np.pi * hz * n / RATE)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == RATE and wav.getsampwidth() == 2
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        if wav.getnchannels() > 1:
            data = data[:: wav.getnchannels()]
    return data.astype(np.float64)


@dataclass
class Baresip:
    """One baresip process driven over ctrl_tcp (netstring-framed JSON)."""

    home: Path
    sip_port: int
    ctrl_port: int
    proc: asyncio.subprocess.Process | None = None
    events: list[dict[str, object]] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _log: BinaryIO | None = None

    @property
    def uri(self) -> str:
        return f"sip:phone@127.0.0.1:{self.sip_port}"

    async def start(self, tone: float | None, auto_answer: bool = False) -> None:
        self.home.mkdir(parents=True)
        source = self.home / "tone.wav"
        write_tone(source, tone if tone is not None else 0.0)
        rtp = random.randrange(20000, 60000, 100)
        (self.home / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:{self.sip_port}
sip_transports udp
net_interface 127.0.0.1
audio_source aufile,{source}
ausrc_srate 8000
auplay_srate 8000
rtp_ports {rtp}-{rtp + 40}
module_path {module_path()}
module g711.so
module aufile.so
module sndfile.so
snd_path {self.home}
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
""")
        mode = ";answermode=auto" if auto_answer else ""
        (self.home / "accounts").write_text(
            f"<sip:phone@127.0.0.1:{self.sip_port}>;regint=0{mode}\n"
        )
        self._log = (self.home / "baresip.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            "baresip",
            "-f",
            str(self.home),
            "-t",
            "60",
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        # baresip starts in well under a second alone, but a loaded 2-core machine (the whole
        # suite) has taken over 5 s: wait up to 20 s, and say why if it died instead.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if self.proc.returncode is not None or loop.time() > deadline:
                    log = (self.home / "baresip.log").read_text(errors="replace")[-2000:]
                    raise AssertionError(f"baresip ctrl_tcp did not come up:\n{log}") from None
                await asyncio.sleep(0.05)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            length = await self._reader.readuntil(b":")
            payload = await self._reader.readexactly(int(length[:-1]) + 1)
            self.events.append(json.loads(payload[:-1]))

    def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        data = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        self._writer.write(str(len(data)).encode() + b":" + data + b",")

    def saw(self, event_type: str) -> bool:
        return any(e.get("type") == event_type for e in self.events)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.command("hangup")
            self.command("quit")
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()
        if self._log is not None:
            self._log.close()


def free_ports(n: int) -> list[int]:
    """``n`` free loopback ports, each with the port after it free too: baresip listens for
    SIP/TLS on its SIP port + 1 (a taken one fails its start: "Address already in use")."""
    import socket

    ports: list[int] = []
    socks: list[socket.socket] = []
    while len(ports) < n:
        first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        following = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            following.bind(("127.0.0.1", port + 1))
        except OSError:
            first.close()
            following.close()
            continue
        socks += [first, following]
        ports.append(port)
    for s in socks:
        s.close()
    return ports


@pytest.fixture
async def baresips(tmp_path: Path) -> AsyncIterator[list[Baresip]]:
    made: list[Baresip] = []
    ports = free_ports(8)
    for i in range(4):
        made.append(Baresip(tmp_path / f"phone{i}", ports[2 * i], ports[2 * i + 1]))
    yield made
    for phone in made:
        await phone.stop()


async def established(phones: Sequence[Baresip]) -> None:
    await eventually(lambda: all(p.saw("CALL_ESTABLISHED") for p in phones), timeout=20)


async def test_three_baresips_hear_each_other(focus: Focus, baresips: list[Baresip]) -> None:
    phones = baresips[:3]
    for phone, tone in zip(phones, TONES, strict=True):
        await phone.start(tone)
    phones[0].command("dial", focus.factory)
    await established(phones[:1])
    (conf,) = list(focus.focus.ad_hoc)
    local = conf.partition(":")[2].partition("@")[0]
    for phone in phones[1:]:
        phone.command("dial", focus.uri(local))
    await established(phones)
    await focus.settled((3, 3, 3))
    await asyncio.sleep(4.0)
    for phone in phones:  # all at once: a phone gone early would change the others' mix
        phone.command("hangup")
    for phone in phones:
        await phone.stop()
    for i, phone in enumerate(phones):
        (decoded,) = phone.home.glob("dump-*-dec.wav")
        audio = read_wav(decoded)
        # All three were in the call then; the last half second is left out (hang-ups).
        tail = audio[-int(3.0 * RATE) : -int(0.5 * RATE)]
        levels = tone_levels(tail, list(TONES))
        for tone in TONES:
            if tone == TONES[i]:
                assert levels[tone] < 300, f"phone {i} hears itself: {levels}"
            else:  # each is sent at 6000
                assert levels[tone] > 1000, f"phone {i} misses {tone} Hz: {levels}"
    await focus.settled((0, 0, 0))


async def test_ccmp_dial_out_rings_an_auto_answering_baresip(
    focus: Focus, baresips: list[Baresip]
) -> None:
    phone = baresips[3]
    await phone.start(700.0, auto_answer=True)
    store = focus.running.store
    conf = store.apply(CreateConference(actor=Actor.system()))[0].uri
    user = User(
        entity="xcon-userid:AUTO_GENERATE_1@example.org",
        endpoints=(Endpoint(entity=phone.uri, joining_method=JoiningMethod.DIALED_OUT),),
    )
    (added,) = store.apply(AddUser(actor=Actor.system(), uri=conf, user=user))
    assert isinstance(added, UserAdded)
    entity = added.user

    def status() -> str | None:
        obj = store.get(conf)
        found = obj.info.user(entity) if obj is not None else None
        return str(found.endpoints[0].status) if found and found.endpoints else None

    await eventually(lambda: status() == EndpointStatus.CONNECTED, timeout=10)
    await established([phone])
    await focus.settled((1, 1, 1))
