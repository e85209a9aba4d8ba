"""The CCMP server's HTTP side (RFC 6503 s9): one POST endpoint over aiohttp, nothing else.

HTTP rules live here; what a request means lives in ccmp_server.dispatch. Every CCMP answer,
errors included, is HTTP 200 (s9); HTTP error statuses are used only where s9 names them:
405 for another method, 406 without application/ccmp+xml in Content-Type and Accept, 412 for
conditional requests, 501 for Expect and Range.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from .auth import AuthError, Credentials, parse_basic_authorization
from .codec import CcmpDecodeError, decode_request, encode_response
from .messages import CCMP_NS, MEDIA_TYPE, CcmpRequest, CcmpResponse, MessageType, ResponseCode

if TYPE_CHECKING:
    from focus.core.store import ConferenceStore

    from .dispatch import Dispatcher

log = logging.getLogger("ccmp_server")


@dataclass(frozen=True, slots=True)
class CcmpConfig:
    """How the CCMP server listens and what it accepts.

    host, port, path: where the single POST endpoint is (port 0 picks a free port).
    tls_cert, tls_key: PEM files; when both are set the server speaks HTTPS only (s9, s10).
    max_body_bytes: larger request bodies get CCMP 400 without being read.
    request_timeout_s: time allowed to receive a request body; slower senders get CCMP 510.
    idle_timeout_s: time a connection may take to deliver a complete request head, counted
      from its opening or from the previous answer: connections idling between requests and
      clients trickling their headers (slowloris) alike are closed then.
    max_in_flight: requests handled at once (their bodies being received); beyond, a request
      is answered CCMP 510 with Retry-After at once and its connection closed, so a flood
      of slow senders cannot pile up work (RFC 6503 s10.4).
    max_xml_depth: deepest element nesting accepted in a request.
    allow_basic_auth_without_tls: accept HTTP Basic credentials over plain HTTP (off: they
      are honoured over TLS only, as s10.2 wants credentials protected in transit).
    xpath_max_length, xpath_max_steps: bounds on an <xpathFilter> (length of the expression,
      location steps and predicates); longer or more complex ones get CCMP 400.
    auth_cache_ttl_s: how long verified credentials are remembered (see ccmp_server.auth).
    allow_anonymous_join: admit RFC 6503 s5.3.6's client "who has no XCON-USERID": a
      userRequest/create without credentials and with a void confUserID, into conferences
      whose user-admission-policy is "anonymous" (RFC 6501 s4.6.2) only; the answer's
      confUserID is its new XCON-USERID.  Off: every request must authenticate (s10.4).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    path: str = "/ccmp"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = 256 * 1024
    request_timeout_s: float = 10.0
    idle_timeout_s: float = 15.0
    max_in_flight: int = 64
    max_xml_depth: int = 64
    allow_basic_auth_without_tls: bool = False
    xpath_max_length: int = 512
    xpath_max_steps: int = 16
    auth_cache_ttl_s: float = 30.0
    allow_anonymous_join: bool = False

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/': {self.path!r}")
        if self.max_body_bytes <= 0 or self.request_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError(
                "max_body_bytes, request_timeout_s and idle_timeout_s must be positive"
            )
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


_CACHE_HEADERS: dict[str, str] = {
    hdrs.CACHE_CONTROL: "no-cache, no-store, must-revalidate",
    hdrs.PRAGMA: "no-cache",
    hdrs.EXPIRES: "0",
}
_CONDITIONAL = (
    hdrs.IF_MATCH,
    hdrs.IF_NONE_MATCH,
    hdrs.IF_MODIFIED_SINCE,
    hdrs.IF_UNMODIFIED_SINCE,
    hdrs.IF_RANGE,
)
DISPATCHER_KEY: web.AppKey[Dispatcher] = web.AppKey("ccmp_dispatcher")
CONFIG_KEY: web.AppKey[CcmpConfig] = web.AppKey("ccmp_config")


class _Load:
    """Requests being handled now (one event loop: no lock needed)."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = 0


LOAD_KEY: web.AppKey[_Load] = web.AppKey("ccmp_load")


def _media_types(header: str) -> list[tuple[str, dict[str, str]]]:
    """Media ranges of a Content-Type/Accept value, lower-cased, with their parameters."""
    out = []
    for item in header.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        values = {}
        for param in params:
            name, _, value = param.partition("=")
            values[name.strip().lower()] = value.strip().strip('"').lower()
        if kind:
            out.append((kind.lower(), values))
    return out


def _accepts_ccmp(accept: str | None) -> bool:
    # s9: the client MUST list application/ccmp+xml; a bare */* does not say it reads CCMP.
    if accept is None:
        return False
    for kind, params in _media_types(accept):
        if kind == MEDIA_TYPE:
            try:
                return float(params.get("q", "1")) > 0
            except ValueError:
                return False
    return False


def _plain(status: int, text: str, **extra: str) -> web.Response:
    headers: dict[str, str] = dict(_CACHE_HEADERS)
    headers.update(extra)
    return web.Response(status=status, text=text + "\n", headers=headers)


def _ccmp(resp: CcmpResponse) -> web.Response:
    return web.Response(
        status=200,
        body=encode_response(resp),
        headers={hdrs.CONTENT_TYPE: f"{MEDIA_TYPE}; charset=utf-8", **_CACHE_HEADERS},
    )


def _error(
    code: ResponseCode,
    text: str,
    *,
    namespace: str = CCMP_NS,
    message_type: MessageType | None = None,
    echo: CcmpRequest | CcmpDecodeError | None = None,
) -> CcmpResponse:
    """An error response; ``echo`` (the request, or what the decoder read of it) lends
    it the namespace, message type, confUserID, confObjID and operation it answers."""
    if echo is not None:
        return CcmpResponse(
            message_type=echo.message_type,
            code=code,
            conf_user_id=echo.conf_user_id or "",
            namespace=echo.namespace,
            conf_obj_id=echo.conf_obj_id,
            operation=echo.operation,
            response_string=text,
        )
    return CcmpResponse(
        message_type=message_type,
        code=code,
        namespace=namespace,
        response_string=text,
    )


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit` (reading stops there)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


async def _handle(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    config = request.app[CONFIG_KEY]
    outcome = "-"
    resp: web.StreamResponse
    user = "-"
    load = request.app[LOAD_KEY]
    if load.active >= config.max_in_flight:
        busy = _error(
            ResponseCode.REQUEST_TIMEOUT,
            f"server busy ({load.active} requests in progress); retry later",
        )
        resp = _ccmp(busy)
        resp.headers[hdrs.RETRY_AFTER] = "1"
        resp.force_close()  # the body is not read
        outcome = "510 busy"
    else:
        load.active += 1
        try:
            resp, outcome, user = await _answer(request, config)
        except Exception:
            log.exception("CCMP request failed inside the server")
            resp = _ccmp(
                _error(ResponseCode.SERVER_INTERNAL_ERROR, "internal error, see server log")
            )
            outcome = "500"
        finally:
            load.active -= 1
    log.info(
        "%s %s %s user=%s http=%d ccmp=%s %.1fms",
        request.remote or "-",
        request.method,
        request.path,
        user,
        resp.status,
        outcome,
        (time.perf_counter() - started) * 1000,
    )
    return resp


async def _answer(request: web.Request, config: CcmpConfig) -> tuple[web.Response, str, str]:
    if request.method != hdrs.METH_POST:
        return (
            _plain(405, "this is a CCMP server; it answers only POST", Allow="POST"),
            "-",
            "-",
        )
    if any(h in request.headers for h in _CONDITIONAL):
        return _plain(412, "CCMP does not support conditional requests"), "-", "-"
    if hdrs.RANGE in request.headers:
        return _plain(501, "CCMP does not support Range requests"), "-", "-"
    content_type = _media_types(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if len(content_type) != 1 or content_type[0][0] != MEDIA_TYPE:
        return _plain(406, f"Content-Type must be {MEDIA_TYPE}"), "-", "-"
    if not _accepts_ccmp(request.headers.get(hdrs.ACCEPT)):
        return _plain(406, f"Accept must list {MEDIA_TYPE}"), "-", "-"

    charset = content_type[0][1].get("charset", "utf-8")
    if charset not in ("utf-8", "utf8"):
        body_error = _error(ResponseCode.BAD_REQUEST, f"CCMP bodies are UTF-8, not {charset}")
        return _ccmp(body_error), "400", "-"

    try:
        async with asyncio.timeout(config.request_timeout_s):
            body = await _read_body(request, config.max_body_bytes)
    except TimeoutError:
        timeout = _error(ResponseCode.REQUEST_TIMEOUT, "request body not received in time")
        resp = _ccmp(timeout)
        resp.force_close()
        return resp, "510", "-"
    if body is None:
        too_big = _error(
            ResponseCode.BAD_REQUEST, f"request body exceeds {config.max_body_bytes} bytes"
        )
        resp = _ccmp(too_big)
        resp.force_close()  # the rest of the body is not read
        return resp, "400", "-"

    try:
        ccmp_request = decode_request(
            body, max_bytes=config.max_body_bytes, max_depth=config.max_xml_depth
        )
    except CcmpDecodeError as exc:
        return _ccmp(_error(exc.code, str(exc), echo=exc)), str(int(exc.code)), "-"

    basic: Credentials | None = None
    try:
        basic = parse_basic_authorization(request.headers.get(hdrs.AUTHORIZATION))
    except AuthError as exc:
        refused = _error(ResponseCode.AUTHENTICATION_REQUIRED, str(exc), echo=ccmp_request)
        return _ccmp(refused), "424", "-"
    if basic is not None and not (request.secure or config.allow_basic_auth_without_tls):
        # s10.2: credentials travel protected; over plain HTTP, Basic is not honoured.
        basic = None

    dispatcher = request.app[DISPATCHER_KEY]
    answer = dispatcher.handle(ccmp_request, basic)
    outcome = f"{int(answer.code)} {ccmp_request.message_type.value}"
    if ccmp_request.operation is not None:
        outcome += f"/{ccmp_request.operation.value}"
    return _ccmp(answer), outcome, answer.conf_user_id or "-"


def make_app(store: ConferenceStore, config: CcmpConfig) -> web.Application:
    """The aiohttp application serving CCMP at `config.path`, backed by `store`."""
    from .dispatch import Dispatcher

    # client_max_size only backs up _read_body's own limit (it guards request.read()).
    app = web.Application(client_max_size=config.max_body_bytes)
    app[CONFIG_KEY] = config
    app[DISPATCHER_KEY] = Dispatcher(store, config)
    app[LOAD_KEY] = _Load()
    app.router.add_route("*", config.path, _handle)
    return app


def _ssl_context(config: CcmpConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    return ctx


class CcmpServer:
    """A running CCMP server: `port` is the port actually bound, `url` the endpoint."""

    def __init__(self, runner: web.AppRunner, config: CcmpConfig, port: int) -> None:
        self._runner = runner
        self.config = config
        self.port = port
        scheme = "https" if config.tls else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.url = f"{scheme}://{host}:{port}{config.path}"

    async def close(self) -> None:
        """Stop listening and finish in-flight requests."""
        await self._runner.cleanup()


async def start_ccmp(store: ConferenceStore, config: CcmpConfig) -> CcmpServer:
    """Start serving CCMP for `store` as `config` says; returns once the socket listens."""
    app = make_app(store, config)
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=False,
        # An unread (oversized or abandoned) body is drained for at most a second, and
        # shutdown does not wait on stragglers for long.
        lingering_time=1.0,
        shutdown_timeout=5.0,
        # aiohttp closes a connection whose request head is not complete this long after
        # it opened or after the previous answer: that bounds slow headers as well as idling.
        keepalive_timeout=config.idle_timeout_s,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=_ssl_context(config))
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    log.info("CCMP server listening on %s", CcmpServer(runner, config, port).url)
    return CcmpServer(runner, config, port)
