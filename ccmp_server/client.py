"""A command-line CCMP client (RFC 6503 over HTTP(S)).

    python -m ccmp_server.client --url https://host:8443/ccmp --user alice --password ... CMD

Commands: options, blueprints, blueprint URI, confs [--filter XPATH], create [--blueprint URI |
--clone URI | --info FILE] [--title T] (a clone's title is a second request, an update),
show CONF, update CONF (--title T | --info FILE),
delete CONF, users CONF, user CONF [ENTITY], add-user CONF (--dial-out URI | --dial-in URI |
--entity ID) [--name N], mute/unmute CONF ENTITY, remove CONF [ENTITY], sidebars CONF [--by-ref],
sidebar-create CONF [--by-ref] [--info FILE], sidebar-show/sidebar-delete SIDEBAR [--by-ref],
summary CONF.  `--xml` prints the raw request and response.  The password may also come from
the CCMP_PASSWORD environment variable.  Exit status: 0 on CCMP 200, 1 on a CCMP error,
2 on a usage, transport or HTTP error.

The readable output (:func:`describe`) is one ``key: value`` line per conference property
(title, conf-uri, service-uri, state, media), a line per user and an indented line per
endpoint, in the server's order; text from the server is made terminal-safe.  `show --help`
explains the fields.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import ssl
import sys
import unicodedata
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp
from lxml import etree

from focus.xcon.safexml import XmlError, parse_xml

from .codec import CcmpDecodeError, decode_response, encode_request
from .messages import (
    CCMP_NS,
    INFO_NS,
    MEDIA_TYPE,
    CcmpRequest,
    CcmpResponse,
    MessageType,
    Operation,
    ResponseCode,
    Subject,
)

_CI = f"{{{INFO_NS}}}"
_XCON = "{urn:ietf:params:xml:ns:xcon-conference-info}"


class ClientError(Exception):
    """Transport or HTTP failure, or a command the client cannot build (exit status 2)."""


class CcmpAnswerError(ClientError):
    """The server refused a request the command needed before its own (exit status 1, as
    for the command's own request): ``step`` says which, ``response`` is the answer."""

    def __init__(self, step: str, response: CcmpResponse) -> None:
        self.step = step
        self.response = response
        reason = response.response_string or response.code.reason
        super().__init__(f"CCMP error {int(response.code)}: {reason} (when {step})")


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom to talk CCMP."""

    url: str
    user: str | None = None
    password: str | None = None
    conf_user_id: str | None = None
    basic_auth: bool = False
    cafile: Path | None = None
    insecure: bool = False
    timeout_s: float = 30.0
    namespace: str = CCMP_NS


async def send(target: Target, request: CcmpRequest) -> tuple[bytes, bytes, CcmpResponse]:
    """POST one CCMP request; returns (request bytes, response bytes, decoded response)."""
    if target.user is not None and not target.basic_auth:
        request = _with(request, subject=Subject(target.user, target.password))
    body = encode_request(request)
    headers = {"Content-Type": f"{MEDIA_TYPE}; charset=utf-8", "Accept": MEDIA_TYPE}
    if target.basic_auth and target.user is not None:
        token = base64.b64encode(f"{target.user}:{target.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    ctx: ssl.SSLContext | bool = True
    if target.url.startswith("https:"):
        if target.insecure:
            ctx = False
        elif target.cafile is not None:
            try:
                ctx = ssl.create_default_context(cafile=str(target.cafile))
            except (OSError, ssl.SSLError) as exc:
                raise ClientError(f"cannot use CA file {target.cafile}: {exc}") from exc
    # RFC 6503 s4.4: a client must not wait forever; 30 s is the recommended default.
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(target.url, data=body, headers=headers, ssl=ctx) as resp,
        ):
            data = await resp.read()
            if resp.status != 200:
                text = data.decode("utf-8", "replace").strip()
                raise ClientError(f"HTTP {resp.status} {resp.reason}: {text}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ClientError(f"cannot reach {target.url}: {exc or type(exc).__name__}") from exc
    try:
        return body, data, decode_response(data)
    except CcmpDecodeError as exc:
        raise ClientError(f"the server's answer is not CCMP: {exc}") from exc


def _with(request: CcmpRequest, **changes: object) -> CcmpRequest:
    from dataclasses import replace

    return replace(request, **changes)  # type: ignore[arg-type]


def _el(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.Element(tag, attrs)
    if text is not None:
        el.text = text
    return el


def _load_info(path: Path) -> etree._Element:
    try:
        return parse_xml(path.read_bytes())
    except (OSError, XmlError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc


def _domain(*hints: str | None) -> str | None:
    """The domain for AUTO_GENERATE_X placeholders (RFC 6503 s4.3): it must be the server's
    (else 427), so take it from an identifier that server issued (a conference's XCON-URI,
    our XCON-USERID) or a domain given on the command line; None if there is none."""
    for hint in hints:
        if not hint:
            continue
        if "@" in hint:
            return hint.rsplit("@", 1)[1]
        return hint
    return None


async def server_domain(target: Target) -> str:
    """Ask the server for its domain: every CCMP answer carries the requester's XCON-USERID
    in <confUserID> (RFC 6503 s5.1, s10.2: the server allocates it), and an XCON-USERID's
    host part is the server's domain.  optionsRequest (s5.3.11) is the cheapest request."""
    _, _, resp = await send(target, CcmpRequest(message_type=MessageType.OPTIONS))
    if resp.code is not ResponseCode.SUCCESS:
        raise CcmpAnswerError("asking the server its domain", resp)
    domain = _domain(resp.conf_user_id)
    if domain is None or "@" not in (resp.conf_user_id or ""):
        raise ClientError(
            f"cannot learn the server's domain from confUserID {resp.conf_user_id!r}; give --domain"
        )
    return domain


def _title_patch(conf: str | None, title: str, domain: str) -> etree._Element:
    info = _el("confInfo", entity=conf or f"xcon:AUTO_GENERATE_1@{domain}")
    desc = etree.SubElement(info, f"{_CI}conference-description")
    etree.SubElement(desc, f"{_CI}display-text").text = title
    return info


def _user_info(
    domain: str | None, entity: str | None, uri: str | None, method: str | None, name: str | None
) -> etree._Element:
    if entity is None and domain is None:
        raise ClientError("cannot tell the server's domain for a new XCON-USERID; give --domain")
    info = _el("userInfo", entity=entity or f"xcon-userid:AUTO_GENERATE_1@{domain}")
    if name:
        etree.SubElement(info, f"{_CI}display-text").text = name
    if uri:
        endpoint = etree.SubElement(info, f"{_CI}endpoint", entity=uri)
        if method:
            # RFC 4575 joining-method: dialed-in / dialed-out.
            etree.SubElement(endpoint, f"{_CI}joining-method").text = method
    return info


def _mute_info(
    entity: str,
    status: str,
    media_id: str | None,
    endpoints: Sequence[tuple[str, str | None]] = (),
) -> etree._Element:
    """A userInfo setting the audio status of the user's ``endpoints`` ((entity, media id or
    None for ``media_id``) as retrieved): naming each endpoint by its entity makes the
    server's merge update it instead of appending a new keyless endpoint.  With no id known
    nor given, a new medium "1" is typed audio, so that readers know what was muted."""
    info = _el("userInfo", entity=entity)
    for endpoint_entity, known_id in endpoints or ((None, None),):
        attrs = {"entity": endpoint_entity} if endpoint_entity is not None else {}
        endpoint = etree.SubElement(info, f"{_CI}endpoint", attrs)
        media = etree.SubElement(endpoint, f"{_CI}media", id=known_id or media_id or "1")
        if known_id is None and media_id is None:
            etree.SubElement(media, f"{_CI}type").text = "audio"
        # RFC 6504 s6.2: muting sets the participant's media to recvonly.
        etree.SubElement(media, f"{_CI}status").text = status
    return info


def user_endpoints(resp: CcmpResponse, media_id: str | None) -> list[tuple[str, str | None]]:
    """(endpoint entity, audio media id) of each endpoint of a retrieved userInfo; the id is
    ``media_id`` when given, else the endpoint's own audio media id (None: none known)."""
    info = resp.info
    if info is None:
        return []
    found: list[tuple[str, str | None]] = []
    for endpoint in info.iterfind(f"{_CI}endpoint"):
        entity = endpoint.get("entity")
        if not entity:
            continue
        known = media_id
        if known is None:
            for medium in endpoint.iterfind(f"{_CI}media"):
                if _texts(medium, f"{_CI}type") in ([], ["audio"]) and medium.get("id"):
                    known = medium.get("id")
                    break
        found.append((entity, known))
    return found


async def mute_endpoints(
    target: Target, args: argparse.Namespace, conf_user_id: str | None
) -> list[tuple[str, str | None]]:
    """The endpoints a mute/unmute names: the user is retrieved first (RFC 6503 s5.3.6)."""
    retrieve = CcmpRequest(
        message_type=MessageType.USER,
        conf_user_id=conf_user_id,
        conf_obj_id=args.conf,
        operation=Operation.RETRIEVE,
        conference_password=args.conf_password,
        info=_user_info("", args.entity, None, None, None),
    )
    _, _, resp = await send(target, retrieve)
    if resp.code is not ResponseCode.SUCCESS:
        raise CcmpAnswerError(f"reading user {args.entity} to find its endpoints", resp)
    found = user_endpoints(resp, args.media_id)
    if not found:
        raise ClientError(f"user {args.entity} has no endpoint whose media could be set")
    return found


def build_request(
    args: argparse.Namespace,
    conf_user_id: str | None,
    known_domain: str | None = None,
    endpoints: Sequence[tuple[str, str | None]] = (),
) -> CcmpRequest:
    """The CCMP request a parsed command line asks for; ``known_domain`` is the domain of
    the AUTO_GENERATE_X placeholders of a new conference (see :func:`needs_domain`);
    ``endpoints`` the user's endpoints a mute/unmute names (see :func:`mute_endpoints`)."""
    cmd = args.command
    req = CcmpRequest(message_type=MessageType.OPTIONS, conf_user_id=conf_user_id)
    by_ref = getattr(args, "by_ref", False)
    if cmd == "options":
        return req
    if cmd == "blueprints":
        return _with(req, message_type=MessageType.BLUEPRINTS)
    if cmd == "blueprint":
        return _with(
            req,
            message_type=MessageType.BLUEPRINT,
            conf_obj_id=args.uri,
            operation=Operation.RETRIEVE,
        )
    if cmd == "confs":
        return _with(req, message_type=MessageType.CONFS, xpath_filter=args.filter)
    conf_req = _with(req, message_type=MessageType.CONF, conference_password=args.conf_password)
    if cmd == "create":
        # RFC 6503 s5.3.4: a create carries <confObjID> (a clone) or <confInfo>, never both;
        # a clone's title is set by a second request (see :func:`title_update`).
        source = args.blueprint or args.clone
        info = _load_info(args.info) if args.info else None
        if source is None and info is None and args.title:
            domain = known_domain or _domain(args.domain, conf_user_id)
            if domain is None:
                raise ClientError("cannot tell the server's domain; give --domain")
            info = _title_patch(None, args.title, domain)
        return _with(conf_req, operation=Operation.CREATE, conf_obj_id=source, info=info)
    if cmd == "show":
        return _with(conf_req, operation=Operation.RETRIEVE, conf_obj_id=args.conf)
    if cmd == "update":
        if args.info is None and args.title is None:
            raise ClientError("update needs --title or --info")
        info = _load_info(args.info) if args.info else _title_patch(args.conf, args.title, "")
        return _with(conf_req, operation=Operation.UPDATE, conf_obj_id=args.conf, info=info)
    if cmd == "delete":
        return _with(conf_req, operation=Operation.DELETE, conf_obj_id=args.conf)
    if cmd == "users":
        return _with(
            conf_req,
            message_type=MessageType.USERS,
            operation=Operation.RETRIEVE,
            conf_obj_id=args.conf,
        )
    user_req = _with(
        conf_req, message_type=MessageType.USER, conf_obj_id=getattr(args, "conf", None)
    )
    if cmd == "user":
        info = _user_info("", args.entity, None, None, None) if args.entity else None
        return _with(user_req, operation=Operation.RETRIEVE, info=info)
    if cmd == "add-user":
        uri = args.dial_out or args.dial_in
        method = "dialed-out" if args.dial_out else ("dialed-in" if args.dial_in else None)
        return _with(
            user_req,
            operation=Operation.CREATE,
            info=_user_info(
                _domain(args.conf if "@" in args.conf else None, args.domain, conf_user_id),
                args.entity,
                uri,
                method,
                args.name,
            ),
        )
    if cmd in ("mute", "unmute"):
        status = "recvonly" if cmd == "mute" else "sendrecv"
        return _with(
            user_req,
            operation=Operation.UPDATE,
            info=_mute_info(args.entity, status, args.media_id, endpoints),
        )
    if cmd == "remove":
        info = _user_info("", args.entity, None, None, None) if args.entity else None
        return _with(user_req, operation=Operation.DELETE, info=info)
    if cmd == "sidebars":
        kind = MessageType.SIDEBARS_BY_REF if by_ref else MessageType.SIDEBARS_BY_VAL
        return _with(conf_req, message_type=kind, operation=None, conf_obj_id=args.conf)
    kind = MessageType.SIDEBAR_BY_REF if by_ref else MessageType.SIDEBAR_BY_VAL
    if cmd == "sidebar-create":
        info = _load_info(args.info) if args.info else None
        return _with(
            conf_req,
            message_type=kind,
            operation=Operation.CREATE,
            conf_obj_id=args.conf,
            info=info,
        )
    if cmd == "sidebar-show":
        return _with(
            conf_req, message_type=kind, operation=Operation.RETRIEVE, conf_obj_id=args.sidebar
        )
    if cmd == "sidebar-delete":
        return _with(
            conf_req, message_type=kind, operation=Operation.DELETE, conf_obj_id=args.sidebar
        )
    if cmd == "summary":
        return _with(
            conf_req,
            message_type=MessageType.EXTENDED,
            operation=Operation.RETRIEVE,
            conf_obj_id=args.conf,
            extension_name="confSummaryRequest",
        )
    raise ClientError(f"unknown command {cmd!r}")


def title_update(
    args: argparse.Namespace, conf_user_id: str | None, created: CcmpResponse
) -> CcmpRequest | None:
    """The request that gives the conference ``created`` by ``create --blueprint/--clone``
    its ``--title``: a confRequest/update naming the version the create returned (RFC 6503
    s4.2, so a change made in between is not overwritten but answered 409).  None when the
    command needs no second request."""
    if args.command != "create" or not args.title or not (args.blueprint or args.clone):
        return None
    if created.code is not ResponseCode.SUCCESS or not created.conf_obj_id:
        return None
    info = _title_patch(created.conf_obj_id, args.title, "")
    if created.version is not None:
        info.set("version", str(created.version))
    return CcmpRequest(
        message_type=MessageType.CONF,
        conf_user_id=conf_user_id,
        conf_obj_id=created.conf_obj_id,
        operation=Operation.UPDATE,
        conference_password=args.conf_password,
        info=info,
    )


def needs_domain(args: argparse.Namespace, conf_user_id: str | None) -> bool:
    """Whether the request will carry a placeholder for an identifier of the server's
    domain that nothing on the command line tells (so ask the server first)."""
    if args.command != "create" or args.info or not args.title or args.blueprint or args.clone:
        return False
    return _domain(args.domain, conf_user_id) is None


def _clean(text: str) -> str:
    """Server text made safe for a terminal: whitespace runs become one space and any other
    control or format character (a display name a caller chose may carry escape sequences)
    becomes its \\u escape, so one item stays on one line and cannot restyle the screen; a
    backslash is doubled so that an escape printed is always one made here."""
    return "".join(_safe_char(ch) for ch in " ".join(text.split()))


def _safe_char(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    return f"\\u{ord(ch):04x}" if unicodedata.category(ch)[0] == "C" else ch


def _texts(el: etree._Element, path: str) -> list[str]:
    return [_clean("".join(str(t) for t in e.itertext())) for e in el.iterfind(path)]


def _first(el: etree._Element, path: str) -> str | None:
    found = _texts(el, path)
    return found[0] if found else None


def _quoted(text: str) -> str:
    """``text`` (already :func:`_clean`) in double quotes, its own quotes escaped."""
    return '"' + text.replace('"', '\\"') + '"'


def _uri_lines(kind: str, uris: etree._Element | None) -> list[str]:
    """One line per entry of a uris-type element (RFC 4575 s5.3.1/s5.3.2): the URI, its
    purpose and label; a conference password (RFC 6501 s4.2.6) is a secret, so it is only
    flagged."""
    if uris is None:
        return []
    lines = []
    for entry in uris.iterfind(f"{_CI}entry"):
        line = f"  {kind}: {_first(entry, f'{_CI}uri') or '-'}"
        purpose = _first(entry, f"{_CI}purpose")
        if purpose:
            line += f" {purpose}"
        label = _first(entry, f"{_CI}display-text")
        if label:
            line += f" {_quoted(label)}"
        if entry.find(f"{_XCON}conference-password") is not None:
            line += " password-protected"
        lines.append(line + "\n")
    return lines


def _state_line(info: etree._Element) -> str | None:
    """RFC 4575 s5.5 conference-state: "active"/"inactive", "locked"/"unlocked", users=N."""
    state = info.find(f"{_CI}conference-state")
    if state is None:
        return None
    words = []
    for tag, yes, no in (("active", "active", "inactive"), ("locked", "locked", "unlocked")):
        value = _first(state, f"{_CI}{tag}")
        if value is not None:
            words.append(yes if value in ("true", "1") else no)
    count = _first(state, f"{_CI}user-count")
    if count is not None:
        words.append(f"users={count}")
    return f"  state: {' '.join(words)}\n" if words else None


def _media_word(medium: etree._Element) -> str:
    """An endpoint's medium (RFC 4575 s5.8) as NAME=STATUS: NAME is its <type>, else its
    <label>, else #ID (usersInfo has no available-media to resolve a label with, and show
    and users must print a user alike).  recvonly is flagged as muted: RFC 6504 s6.2 mutes
    a participant by making its media recvonly."""
    name = (
        _first(medium, f"{_CI}type")
        or _first(medium, f"{_CI}label")
        or f"#{_clean(medium.get('id') or '?')}"
    )
    status = _first(medium, f"{_CI}status")
    if status is None:
        return name
    return f"{name}={status}(muted)" if status == "recvonly" else f"{name}={status}"


def _named(word: str, element: etree._Element) -> str:
    """``word``, the element's entity and its display-text in quotes: how a user and an
    endpoint (RFC 4575 s5.6, s5.7) start their line."""
    line = f"{word} {_clean(element.get('entity') or '-')}"
    name = _first(element, f"{_CI}display-text")
    return f"{line} {_quoted(name)}" if name else line


def _user_lines(user: etree._Element) -> list[str]:
    """A line for the user (entity, name, RFC 6501 s4.6.5.2 roles), then one per endpoint
    (RFC 4575 s5.7: entity, name, status with its disconnection-method, joining-method,
    media)."""
    line = _named("  user", user)
    roles = _texts(user, f"{_CI}roles/{_CI}entry")
    if roles:
        line += f" roles={','.join(roles)}"
    lines = [line + "\n"]
    for endpoint in user.iterfind(f"{_CI}endpoint"):
        line = _named("    endpoint", endpoint)
        status = _first(endpoint, f"{_CI}status")
        if status:
            line += f" {status}"
            how = _first(endpoint, f"{_CI}disconnection-method")
            if how:
                line += f"({how})"
        joined = _first(endpoint, f"{_CI}joining-method")
        if joined:
            line += f" {joined}"
        for medium in endpoint.iterfind(f"{_CI}media"):
            line += f" {_media_word(medium)}"
        lines.append(line + "\n")
    return lines


def _users_of(info: etree._Element) -> list[etree._Element]:
    if info.tag == "userInfo":
        return [info]
    if info.tag == "usersInfo":
        return list(info.iterfind(f"{_CI}user"))
    return list(info.iterfind(f"{_CI}users/{_CI}user"))


def describe(resp: CcmpResponse, out: TextIO) -> None:
    """Print a response for people: one ``key: value`` line per conference property, a line
    per user and an indented line per endpoint (see :func:`_user_lines`)."""
    status = f"{int(resp.code)} {_clean(resp.response_string or resp.code.reason)}"
    kind = resp.message_type.value if resp.message_type is not None else "ccmp"
    out.write(f"{kind}: {status}\n")
    if resp.conf_obj_id:
        out.write(f"  object: {_clean(resp.conf_obj_id)}\n")
    if resp.version is not None:
        out.write(f"  version: {resp.version}\n")
    if resp.uris is not None:
        if not resp.uris:
            out.write("  (none)\n")
        for entry in resp.uris:
            label = f"  {_clean(entry.uri)}"
            if entry.display_text:
                label += f"  {_clean(entry.display_text)}"
            out.write(label + "\n")
    if resp.options is not None:
        for cap in (*resp.options.standard, *resp.options.extended):
            ops = ", ".join(op.value for op in cap.operations) or "-"
            out.write(f"  {cap.name}: {ops}\n")
    info = resp.info
    if info is not None:
        desc = f"{_CI}conference-description"
        title = _first(info, f"{desc}/{_CI}display-text")
        if title:
            out.write(f"  title: {title}\n")
        entity = info.get("entity")
        # A userInfo's entity is on its user line already.
        if entity and entity != resp.conf_obj_id and info.tag != "userInfo":
            out.write(f"  entity: {_clean(entity)}\n")
        out.writelines(_uri_lines("conf-uri", info.find(f"{desc}/{_CI}conf-uris")))
        out.writelines(_uri_lines("service-uri", info.find(f"{desc}/{_CI}service-uris")))
        state = _state_line(info)
        if state:
            out.write(state)
        entries = info.findall(f"{desc}/{_CI}available-media/{_CI}entry")
        media = [t for e in entries for t in _texts(e, f"{_CI}type")]
        if media:
            out.write(f"  media: {', '.join(media)}\n")
        for user in _users_of(info):
            out.writelines(_user_lines(user))
        for sidebar in info.iterfind(f"{_CI}entry"):
            out.write(f"  sidebar {_clean(sidebar.get('entity') or '-')}\n")
    for extra in resp.extension_payload:
        for child in extra:
            text = _clean("".join(str(t) for t in child.itertext()))
            out.write(f"  {etree.QName(child).localname}: {text}\n")


_CONF = "the conference's XCON-URI, e.g. xcon:conf1@example.com"
_USER = "a user's XCON-USERID, e.g. xcon-userid:user2@example.com"
_LEGEND = """\
output: a "key: value" line per conference property (title, conf-uri: the URI phones dial,
service-uri, state: active|inactive locked|unlocked users=N, media), then per user
  user XCON-USERID "NAME" roles=ROLE,...
    endpoint URI "NAME" STATUS[(DISCONNECTION-METHOD)] JOINING-METHOD TYPE=MEDIA-STATUS ...
where STATUS is connected, dialing-out, alerting, on-hold, disconnected, ... (RFC 4575 s5.7.3)
and recvonly media is shown as recvonly(muted); missing fields are left out."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ccmp_server.client",
        description="Manage conferences on a CCMP server (RFC 6503 over HTTP(S)).",
        epilog="Exit status: 0 on CCMP 200, 1 on a CCMP error answer, 2 on a usage, transport "
        "or HTTP error.  `COMMAND --help` tells more about a command.",
    )
    p.add_argument("--url", required=True, help="the CCMP server, e.g. https://host:8443/ccmp")
    p.add_argument("--user", help="account name (sent in the CCMP <subject>)")
    p.add_argument(
        "--password",
        help="account password (default: $CCMP_PASSWORD, which other local users cannot "
        "see in the process list)",
    )
    p.add_argument("--basic", action="store_true", help="send credentials as HTTP Basic instead")
    p.add_argument(
        "--conf-user-id",
        metavar="XCON-USERID",
        help="your XCON-USERID to send (default: xcon-userid:USER@DOMAIN with --domain)",
    )
    p.add_argument(
        "--domain",
        default=None,
        help="the server's domain (of your XCON-USERID and of new identifiers); by default "
        "learnt from the server when needed",
    )
    p.add_argument(
        "--conf-password", metavar="PASSWORD", help="conference password for protected ones"
    )
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--cafile", type=Path, help="CA certificate (PEM) to trust for HTTPS")
    tls.add_argument("--insecure", action="store_true", help="do not verify HTTPS certificates")
    p.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="wait at most (default 30)"
    )
    p.add_argument(
        "--xml", action="store_true", help="print the raw CCMP request and response instead"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}."
            + (f"\n\n{details}" if details else ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command("options", "list the requests and operations the server supports")
    command("blueprints", "list the blueprints conferences can be created from")
    command("blueprint", "show a blueprint").add_argument(
        "uri", metavar="BLUEPRINT", help="the blueprint's XCON-URI"
    )
    command("confs", "list the conferences").add_argument(
        "--filter", metavar="XPATH", help="only those matching this xpathFilter (RFC 6503 s5.3.3)"
    )
    c = command(
        "create",
        "create a conference",
        "Without --blueprint, --clone or --info the server's default blueprint is used.\n"
        "With --blueprint or --clone, --title is set by a second request (a confRequest\n"
        "update of the new conference at the version the create returned), because a\n"
        "create carries either the object to clone or a document, not both (RFC 6503\n"
        "s5.3.4). With --info, give the title inside the file.",
    )
    g = c.add_mutually_exclusive_group()
    g.add_argument("--blueprint", metavar="URI", help="from this blueprint")
    g.add_argument("--clone", metavar="CONF", help="as a copy of this conference")
    g.add_argument("--info", type=Path, metavar="FILE", help="from a conference-info XML file")
    c.add_argument("--title", help="its title (display-text)")
    command(
        "show", "show a conference: URIs, state, media, users and endpoints", _LEGEND
    ).add_argument("conf", metavar="CONF", help=_CONF)
    u = command("update", "change a conference (its title, or anything with --info)")
    u.add_argument("conf", metavar="CONF", help=_CONF)
    g = u.add_mutually_exclusive_group(required=True)
    g.add_argument("--title", help="the new title")
    g.add_argument("--info", type=Path, metavar="FILE", help="partial conference-info XML file")
    command("delete", "delete a conference").add_argument("conf", metavar="CONF", help=_CONF)
    command("users", "show the users of a conference and their endpoints", _LEGEND).add_argument(
        "conf", metavar="CONF", help=_CONF
    )
    for name, summary in (("user", "show a user and its endpoints"), ("remove", "remove a user")):
        s = command(name, summary, _LEGEND if name == "user" else "")
        s.add_argument("conf", metavar="CONF", help=_CONF)
        s.add_argument("entity", metavar="USER", nargs="?", help=f"{_USER} (default: yourself)")
    a = command(
        "add-user",
        "add a user to a conference",
        "Without --entity the server allocates a new XCON-USERID.",
    )
    a.add_argument("conf", metavar="CONF", help=_CONF)
    g = a.add_mutually_exclusive_group()
    g.add_argument("--dial-out", metavar="URI", help="the focus calls this SIP URI")
    g.add_argument("--dial-in", metavar="URI", help="this SIP URI will call in")
    a.add_argument("--entity", metavar="XCON-USERID", help="a user the server knows already")
    a.add_argument("--name", help="display name")
    for name, status in (("mute", "recvonly"), ("unmute", "sendrecv")):
        m = command(
            name,
            f"{name} a user: set its endpoints' audio to {status}",
            "The user is read first, so that each of its endpoints is updated.",
        )
        m.add_argument("conf", metavar="CONF", help=_CONF)
        m.add_argument("entity", metavar="USER", help=_USER)
        m.add_argument(
            "--media-id",
            metavar="ID",
            help="the media id to set (default: each endpoint's audio media, else 1)",
        )
    by_ref = "list or address sidebars by reference (sidebarsByRef) rather than by value"
    s = command("sidebars", "list a conference's sidebars")
    s.add_argument("conf", metavar="CONF", help=_CONF)
    s.add_argument("--by-ref", action="store_true", help=by_ref)
    s = command("sidebar-create", "create a sidebar of a conference")
    s.add_argument("conf", metavar="CONF", help=_CONF)
    s.add_argument("--by-ref", action="store_true", help=by_ref)
    s.add_argument("--info", type=Path, metavar="FILE", help="conference-info XML file")
    for name, summary in (
        ("sidebar-show", "show a sidebar"),
        ("sidebar-delete", "delete a sidebar"),
    ):
        s = command(name, summary)
        s.add_argument("sidebar", metavar="SIDEBAR", help="the sidebar's XCON-URI")
        s.add_argument("--by-ref", action="store_true", help=by_ref)
    command("summary", "a conference's summary (confSummaryRequest extension)").add_argument(
        "conf", metavar="CONF", help=_CONF
    )
    return p


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see by itself (parser.error exits with status 2)."""
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        parser.error(f"--url must be an http:// or https:// URL with a host, not {args.url!r}")
    if not args.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if args.command == "create" and args.info is not None and args.title is not None:
        parser.error("create: give the title inside the --info file, not also with --title")


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run one command; the exit status says how it went (see the module docstring)."""
    parser = _parser()
    # argparse prints --help and usage errors to sys.stdout/sys.stderr and exits.
    try:
        with redirect_stdout(out), redirect_stderr(err):
            args = parser.parse_args(argv)
            _check(parser, args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    password = args.password if args.password is not None else os.environ.get("CCMP_PASSWORD")
    conf_user_id = args.conf_user_id
    if conf_user_id is None and args.user and args.domain:
        conf_user_id = f"xcon-userid:{args.user}@{args.domain}"
    target = Target(
        url=args.url,
        user=args.user,
        password=password,
        conf_user_id=conf_user_id,
        basic_auth=args.basic,
        cafile=args.cafile,
        insecure=args.insecure,
        timeout_s=args.timeout,
    )
    try:
        domain = asyncio.run(server_domain(target)) if needs_domain(args, conf_user_id) else None
        endpoints = (
            asyncio.run(mute_endpoints(target, args, conf_user_id))
            if args.command in ("mute", "unmute")
            else []
        )
        request = build_request(args, conf_user_id, domain, endpoints)
        exchanges = [asyncio.run(send(target, request))]
        follow_up = title_update(args, conf_user_id, exchanges[0][2])
        if follow_up is not None:
            exchanges.append(asyncio.run(send(target, follow_up)))
    except CcmpAnswerError as exc:
        err.write(f"{exc}\n")
        return 1
    except ClientError as exc:
        err.write(f"error: {exc}\n")
        return 2
    for sent, received, resp in exchanges:
        if args.xml:
            out.write(sent.decode() + "\n" + received.decode() + "\n")
        else:
            describe(resp, out)
    resp = exchanges[-1][2]
    if resp.code is not ResponseCode.SUCCESS:
        err.write(f"CCMP error {int(resp.code)}: {resp.response_string or resp.code.reason}")
        if len(exchanges) > 1:
            err.write(f" (when setting the title of the new conference {resp.conf_obj_id})")
        err.write("\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
