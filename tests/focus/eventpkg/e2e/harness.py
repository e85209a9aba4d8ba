"""What the end-to-end event package tests share: a focus in-process (real sockets, SQLite
on disk, bundled media server, CCMP over HTTP with an account), a CCMP client speaking
real HTTP, and a subscriber built on the project's SIP stack that validates every NOTIFY
body against its content type's schema and rebuilds the conference from full and partial
documents (RFC 4575 s4.6) or RFC 6502 diffs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxml import etree

from ccmp_server.client import Target, send
from ccmp_server.messages import CcmpRequest, CcmpResponse, MessageType, Operation, ResponseCode
from focus.core.accounts import add_account
from focus.eventpkg.bodies import Outcome, apply_rfc4575
from focus.eventpkg.xmlpatch import apply_patch
from focus.settings import SipProfile
from focus.sip.aio.transport import TransportConfig
from focus.sip.aio.ua import UserAgent
from focus.sip.dialog import Dialog
from focus.sip.message import Response
from focus.sip.uacore import IncomingRequest, UAConfig, UAEvent
from focus.xcon.codec import parse_conference_info, parse_element
from focus.xcon.model import ConferenceInfo
from tests.focus.calls.conftest import Focus, start_focus
from tests.focus.eventpkg.helpers import RFC4575_XSD, RFC6501_RNG, RFC6502_XSD

DOMAIN = "example.org"
CI_NS = "urn:ietf:params:xml:ns:conference-info"
XCON_NS = "urn:ietf:params:xml:ns:xcon-conference-info"
RFC4575 = "application/conference-info+xml"
XCON = "application/xcon-conference-info+xml"
XCON_DIFF = "application/xcon-conference-info-diff+xml"
# RFC 6502 s5.1: a diff subscriber takes the full XCON document first
XCON_AND_DIFF = f"{XCON}, {XCON_DIFF}"
SCHEMAS: dict[str, etree._Validator] = {
    RFC4575: RFC4575_XSD,
    XCON: RFC6501_RNG,
    XCON_DIFF: RFC6502_XSD,
}
_PARSER = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False)


@dataclass
class Ccmp:
    """A CCMP client over HTTP (RFC 6503) as an administrator account; ``password`` is
    sent as the conference password (RFC 6503 s5.1: every request to a protected
    conference needs it, an administrator's too)."""

    target: Target
    password: str | None = None

    async def ask(self, request: CcmpRequest) -> CcmpResponse:
        if self.password is not None:
            request = replace(request, conference_password=self.password)
        _, _, response = await send(self.target, request)
        assert response.code is ResponseCode.SUCCESS, (response.code, response.response_string)
        return response

    async def create(self, info: etree._Element) -> str:
        response = await self.ask(
            CcmpRequest(message_type=MessageType.CONF, operation=Operation.CREATE, info=info)
        )
        assert response.conf_obj_id is not None
        return response.conf_obj_id

    async def update(self, conf: str, info: etree._Element) -> None:
        await self._change(MessageType.CONF, Operation.UPDATE, conf, info)

    async def set_subject(self, conf: str, subject: str) -> None:
        """A conference update that changes only the subject (one partial NOTIFY)."""
        await self.update(
            conf,
            el(
                "confInfo",
                el("ci:conference-description", el("ci:subject", text=subject)),
                entity=conf,
            ),
        )

    async def delete(self, conf: str) -> None:
        await self.ask(
            CcmpRequest(message_type=MessageType.CONF, operation=Operation.DELETE, conf_obj_id=conf)
        )

    async def add_user(self, conf: str, info: etree._Element) -> None:
        await self._change(MessageType.USER, Operation.CREATE, conf, info)

    async def update_user(self, conf: str, info: etree._Element) -> None:
        await self._change(MessageType.USER, Operation.UPDATE, conf, info)

    async def _change(
        self, kind: MessageType, operation: Operation, conf: str, info: etree._Element
    ) -> None:
        await self.ask(
            CcmpRequest(message_type=kind, operation=operation, conf_obj_id=conf, info=info)
        )

    async def retrieve(self, conf: str) -> ConferenceInfo:
        response = await self.ask(
            CcmpRequest(
                message_type=MessageType.CONF, operation=Operation.RETRIEVE, conf_obj_id=conf
            )
        )
        assert response.info is not None
        return parse_element(ConferenceInfo, response.info)


def el(
    tag: str, *children: etree._Element, text: str | None = None, **attrs: str
) -> etree._Element:
    """An element; ``ci:``/``xcon:`` prefixes name the RFC 4575 / RFC 6501 namespaces."""
    ns = {"ci": CI_NS, "xcon": XCON_NS}
    prefix, _, local = tag.rpartition(":")
    node = etree.Element(f"{{{ns[prefix]}}}{local}" if prefix else local, attrs)
    node.text = text
    node.extend(children)
    return node


@dataclass
class Running:
    focus: Focus
    ccmp: Ccmp
    host: str
    port: int

    def sip_uri(self, conf_uri: str) -> str:
        """The SIP URI of a conference named by its XCON-URI."""
        conf_id = conf_uri.removeprefix("xcon:").split("@", 1)[0]
        return f"sip:{conf_id}@{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def running_focus(
    state_dir: Path, profile: SipProfile | None = None
) -> AsyncIterator[Running]:
    add_account(state_dir, "admin", "administrator", "s3cret", domain=DOMAIN, scrypt_n=2**4)
    profile = profile or SipProfile(notify_interval=0.0)
    async with start_focus(state_dir, profile) as focus:
        sip = focus.focus.events.sip.config  # the profile reaches the SIP notifier
        assert (sip.min_expires, sip.default_expires, sip.max_expires) == (
            profile.min_expires,
            profile.default_expires,
            profile.max_expires,
        )
        ccmp = Ccmp(Target(url=focus.running.ccmp.url, user="admin", password="s3cret"))
        yield Running(focus, ccmp, focus.host, focus.port)


@dataclass
class Notify:
    state: str  # the Subscription-State header
    content_type: str
    body: bytes
    transport: str = "UDP"  # how it arrived


@dataclass
class Subscriber:
    """One conference-package subscription made with the project's UserAgent; every
    NOTIFY is answered 200, validated against the schema of its content type and folded
    into ``document`` (the subscriber's copy)."""

    ua: UserAgent
    accept: str
    notifies: list[Notify] = field(default_factory=list)
    dialog: Dialog | None = None
    # RFC 4575 copy and version (s4.6), or the XCON document rebuilt from diffs
    info: ConferenceInfo | None = None
    version: int | None = None
    xcon: bytes | None = None
    problems: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # schema failures, kept apart

    @classmethod
    async def start(cls, user: str, accept: str) -> Subscriber:
        methods = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "NOTIFY"})
        ua = await UserAgent.start(
            UAConfig(user=user, methods=methods),
            TransportConfig(host="127.0.0.1", udp_port=0, tcp_port=0),
        )
        sub = cls(ua, accept)
        ua.on_event = sub._on_event
        return sub

    @property
    def aor(self) -> str:
        return self.ua.local_uri()

    async def subscribe(self, uri: str, expires: int = 600) -> Response:
        response, dialog = await self.ua.subscribe(
            uri, "conference", expires=expires, accept=self.accept
        )
        self.dialog = dialog
        return response

    async def resubscribe(self, expires: int = 600) -> Response:
        assert self.dialog is not None
        response, _ = await self.ua.subscribe(
            self.dialog, "conference", expires=expires, accept=self.accept
        )
        return response

    def _on_event(self, ua: UserAgent, event: UAEvent) -> None:
        if not isinstance(event, IncomingRequest) or event.request.method != "NOTIFY":
            return
        request = event.request
        notify = Notify(
            request.headers.get("Subscription-State") or "",
            (request.headers.get("Content-Type") or "").split(";")[0].strip(),
            request.body,
            event.source.transport.value,
        )
        ua.respond(request, 200)
        self.notifies.append(notify)
        try:
            self._fold(notify)
        except (AssertionError, ValueError) as exc:
            self.problems.append(f"{type(exc).__name__}: {exc}")

    def _fold(self, notify: Notify) -> None:
        if not notify.body:
            # RFC 6502: a final NOTIFY to an XCON subscriber may be empty
            assert notify.state.startswith("terminated"), notify
            return
        schema = SCHEMAS.get(notify.content_type)
        assert schema is not None, f"unexpected content type {notify.content_type!r}"
        if not schema.validate(etree.fromstring(notify.body, _PARSER)):
            self.invalid.append(
                f"{notify.content_type} body invalid: {schema.error_log}\n{notify.body.decode()}"
            )
        if notify.content_type == RFC4575:
            applied = apply_rfc4575(self.info, self.version, parse_conference_info(notify.body))
            assert applied.outcome in (Outcome.REPLACED, Outcome.UPDATED, Outcome.DELETED), (
                f"{applied.outcome} at version {self.version}"
            )
            self.info, self.version = applied.info, applied.version
        elif notify.content_type == XCON:
            self.xcon = notify.body
        else:
            assert self.xcon is not None, "a diff before any full document"
            self.xcon = apply_patch(self.xcon, notify.body)

    def state(self) -> ConferenceInfo | None:
        """The subscriber's current copy of the conference."""
        if self.accept == RFC4575:
            return self.info
        return parse_conference_info(self.xcon) if self.xcon else None

    async def close(self) -> None:
        await self.ua.close()
