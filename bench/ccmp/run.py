"""CCMP benchmark: requests/s and p50/p99 latency of three operations, against a bare baseline.

Starts, on 127.0.0.1 with a SQLite file in a temporary directory, our CCMP server
(ccmp_server.app.start_ccmp over focus.core's ConferenceStore) and, in the same run, a bare
aiohttp application whose POST handler only reads the body and answers fixed bytes of a
similar size (the floor of any aiohttp CCMP server: no XML, no core, no SQLite). Then, for each
operation, a closed loop of `--concurrency` keep-alive clients sends requests for `--seconds`:

* conf retrieve: confRequest/retrieve of one conference (parse, authorize, serialize);
* conf update:   confRequest/update of its title (plus a durable SQLite commit per request);
* user create:   userRequest/create of a new user with an AUTO_GENERATE_X XCON-USERID and
                 a dial-out endpoint (a fresh conference every 50 users, untimed).

Prints requests/s, p50 and p99 latency for ours and the baseline, and ours/bare ratios.
Client and servers share one process and event loop, so both sides pay the client's cost.

Run: ``python -m bench.ccmp.run`` (from the repository root). Bounded: about
3 x 2 x `--seconds` seconds (default 1.5 s each, well under 15 s in total).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from ccmp_server.app import CcmpConfig, start_ccmp
from ccmp_server.codec import decode_response, encode_request
from ccmp_server.messages import (
    INFO_NS,
    MEDIA_TYPE,
    CcmpRequest,
    MessageType,
    Operation,
    ResponseCode,
    Subject,
)
from focus.core.core import CoreConfig
from focus.core.store import ConferenceStore
from focus.xcon.model import Role

HEADERS = {"Content-Type": f"{MEDIA_TYPE}; charset=utf-8", "Accept": MEDIA_TYPE}
SUBJECT = Subject("bench", "bench-password")
USER_ID = "xcon-userid:bench@example.com"


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


Body = Callable[[int], Awaitable[bytes]]


async def _load(
    session: aiohttp.ClientSession, url: str, body: Body, seconds: float, concurrency: int
) -> Result:
    latencies: list[float] = []
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            data = await body(next(counter))
            started = time.perf_counter()
            async with session.post(url, data=data, headers=HEADERS) as resp:
                answer = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {answer[:200]!r}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(len(latencies), time.perf_counter() - started, latencies)


def _request(**fields: object) -> bytes:
    req = CcmpRequest(subject=SUBJECT, conf_user_id=USER_ID, **fields)  # type: ignore[arg-type]
    return encode_request(req)


async def _bare_server(reply_size: int) -> tuple[web.AppRunner, str]:
    reply = b"x" * reply_size

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=reply, content_type=MEDIA_TYPE)

    app = web.Application()
    app.router.add_post("/ccmp", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/ccmp"


async def main_async(seconds: float, concurrency: int) -> list[tuple[str, Result, Result]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = ConferenceStore.open(Path(tmp), CoreConfig(domain="example.com"))
        store.accounts.add("bench", Role.MODERATOR, "bench-password")
        server = await start_ccmp(store, CcmpConfig(port=0))
        bare_runner, bare_url = await _bare_server(1500)
        rows: list[tuple[str, Result, Result]] = []
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=concurrency)
            ) as session:

                async def call(data: bytes) -> bytes:
                    async with session.post(server.url, data=data, headers=HEADERS) as resp:
                        return await resp.read()

                async def new_conf() -> str:
                    answer = decode_response(
                        await call(
                            _request(message_type=MessageType.CONF, operation=Operation.CREATE)
                        )
                    )
                    if answer.code is not ResponseCode.SUCCESS or answer.conf_obj_id is None:
                        raise RuntimeError(f"cannot create a conference: {answer}")
                    return answer.conf_obj_id

                conf = await new_conf()
                retrieve = _request(
                    message_type=MessageType.CONF, operation=Operation.RETRIEVE, conf_obj_id=conf
                )

                async def retrieve_body(_i: int) -> bytes:
                    return retrieve

                async def update_body(i: int) -> bytes:
                    info = etree.fromstring(
                        f'<confInfo xmlns:ci="{INFO_NS}" entity="{conf}">'
                        f"<ci:conference-description><ci:display-text>title {i}"
                        "</ci:display-text></ci:conference-description></confInfo>".encode()
                    )
                    return _request(
                        message_type=MessageType.CONF,
                        operation=Operation.UPDATE,
                        conf_obj_id=conf,
                        info=info,
                    )

                targets: dict[int, str] = {}

                async def user_body(i: int) -> bytes:
                    batch = i // 50
                    if batch not in targets:
                        targets[batch] = await new_conf()
                    info = etree.fromstring(
                        f'<userInfo xmlns:ci="{INFO_NS}" '
                        'entity="xcon-userid:AUTO_GENERATE_1@example.com">'
                        f'<ci:endpoint entity="sip:user{i}@example.com"/></userInfo>'.encode()
                    )
                    return _request(
                        message_type=MessageType.USER,
                        operation=Operation.CREATE,
                        conf_obj_id=targets[batch],
                        info=info,
                    )

                # Check once that each operation succeeds before timing it.
                for make in (retrieve_body, update_body, user_body):
                    answer = decode_response(await call(await make(10_000_000)))
                    if answer.code is not ResponseCode.SUCCESS:
                        raise RuntimeError(f"{make.__name__}: {answer.response_string}")
                for name, make in (
                    ("conf retrieve", retrieve_body),
                    ("conf update", update_body),
                    ("user create", user_body),
                ):
                    ours = await _load(session, server.url, make, seconds, concurrency)
                    bare = await _load(session, bare_url, make, seconds, concurrency)
                    rows.append((name, ours, bare))
        finally:
            await bare_runner.cleanup()
            await server.close()
            store.close()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per operation and target")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args()
    rows = asyncio.run(main_async(args.seconds, args.concurrency))
    print(f"CCMP over HTTP on 127.0.0.1, {args.concurrency} in flight, {args.seconds}s each")
    print(
        f"{'operation':<14} {'ours req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'bare req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'ours/bare':>9}"
    )
    for name, ours, bare in rows:
        print(
            f"{name:<14} {ours.rate:>10.0f} {ours.pct(0.5):>7.2f} {ours.pct(0.99):>7.2f} | "
            f"{bare.rate:>10.0f} {bare.pct(0.5):>7.2f} {bare.pct(0.99):>7.2f} | "
            f"{ours.rate / bare.rate:>9.2f}"
        )
    median = statistics.median(ours.rate / bare.rate for _, ours, bare in rows)
    print(f"median throughput ratio ours/bare: {median:.2f}")


if __name__ == "__main__":
    main()
