"""A real CCMP server on 127.0.0.1 (port 0) over a SQLite file in tmp_path, and a client."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from ccmp_server.app import CcmpConfig, CcmpServer, start_ccmp
from ccmp_server.client import main
from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import MEDIA_TYPE, CcmpRequest, CcmpResponse, Subject
from focus.core.core import CoreConfig
from focus.core.store import ConferenceStore
from focus.xcon.model import Role
from tests.paths import ROOT

DOMAIN = "example.com"
# One account per RFC 6501 role; the password is "pw-" + name.
ACCOUNTS: Mapping[str, Role] = {
    "admin": Role.ADMINISTRATOR,
    "mod": Role.MODERATOR,
    "alice": Role.USER,
    "bob": Role.PARTICIPANT,
    "olga": Role.OBSERVER,
    "nobody": Role.NONE,
    "carol": Role.PARTICIPANT,  # the "other user" of third-party operations
}
HEADERS = {"Content-Type": f"{MEDIA_TYPE}; charset=utf-8", "Accept": MEDIA_TYPE}


def user_id(name: str) -> str:
    return f"xcon-userid:{name}@{DOMAIN}"


def open_store(state: Path) -> ConferenceStore:
    # A low scrypt cost keeps the tests fast; the production default is much higher.
    return ConferenceStore.open(state, CoreConfig(domain=DOMAIN), scrypt_n=2**4)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> Iterator[ConferenceStore]:
    store = open_store(state_dir)
    for name, role in ACCOUNTS.items():
        store.accounts.add(name, role, f"pw-{name}")
    yield store
    store.close()


@pytest.fixture
def config() -> CcmpConfig:
    return CcmpConfig(port=0)


@pytest.fixture
async def server(store: ConferenceStore, config: CcmpConfig) -> AsyncIterator[CcmpServer]:
    srv = await start_ccmp(store, config)
    yield srv
    await srv.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass
class Client:
    """Sends CCMP requests as one account and decodes the answers."""

    session: aiohttp.ClientSession
    url: str
    name: str | None

    def sign(self, req: CcmpRequest) -> CcmpRequest:
        if self.name is None:
            return req
        return replace(
            req,
            subject=Subject(self.name, f"pw-{self.name}"),
            conf_user_id=req.conf_user_id or user_id(self.name),
        )

    async def raw(self, body: bytes, headers: Mapping[str, str] = HEADERS) -> tuple[int, bytes]:
        async with self.session.post(self.url, data=body, headers=dict(headers)) as resp:
            return resp.status, await resp.read()

    async def send(self, req: CcmpRequest) -> CcmpResponse:
        status, body = await self.raw(encode_request(self.sign(req)))
        assert status == 200, body
        return decode_response(body)

    def as_(self, name: str | None) -> Client:
        return Client(self.session, self.url, name)


@pytest.fixture
def client(server: CcmpServer, session: aiohttp.ClientSession) -> Client:
    return Client(session, server.url, "alice")


async def cli(server: CcmpServer | str, *args: str, user: str = "alice") -> tuple[int, str, str]:
    """Run the client's main() (in a thread: it runs its own event loop)."""
    url = server if isinstance(server, str) else server.url
    argv = ["--url", url, "--user", user, "--password", f"pw-{user}", "--timeout", "10", *args]
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(main, argv, out, err)
    return code, out.getvalue(), err.getvalue()


async def run_client_module(
    *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """``python -m ccmp_server.client ARGS`` as a process from the checkout (30 s at most)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccmp_server.client",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out, err
