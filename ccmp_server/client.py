"""A command-line CCMP client (RFC 6503 over HTTP(S)).

    python -m ccmp_server.client --url https://host:8443/ccmp --user alice --password ... CMD

Commands: options, blueprints, blueprint URI, confs [--filter XPATH], create [--blueprint URI |
--clone URI | --info FILE] [--title T], show CONF, update CONF (--title T | --info FILE),
delete CONF, users CONF, user CONF [ENTITY], add-user CONF (--dial-out URI | --dial-in URI |
--entity ID) [--name N], mute/unmute CONF ENTITY, remove CONF [ENTITY], sidebars CONF [--by-ref],
sidebar-create CONF [--by-ref] [--info FILE], sidebar-show/sidebar-delete SIDEBAR [--by-ref],
summary CONF.  `--xml` prints the raw request and response.  The password may also come from
the CCMP_PASSWORD environment variable.  Exit status: 0 on CCMP 200, 1 on a CCMP error,
2 on a usage, transport or HTTP error.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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
    """Transport or HTTP failure (not a CCMP error answer)."""


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
            ctx = ssl.create_default_context(cafile=str(target.cafile))
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
        reason = resp.response_string or resp.code.reason
        raise ClientError(f"cannot learn the server's domain: CCMP {int(resp.code)} {reason}")
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
    entity: str, status: str, media_id: str, endpoints: Sequence[tuple[str, str | None]] = ()
) -> etree._Element:
    """A userInfo setting the audio status of the user's ``endpoints`` ((entity, media id or
    None for ``media_id``) as retrieved): naming each endpoint by its entity makes the
    server's merge update it instead of appending a new keyless endpoint."""
    info = _el("userInfo", entity=entity)
    for endpoint_entity, known_id in endpoints or ((None, None),):
        attrs = {"entity": endpoint_entity} if endpoint_entity is not None else {}
        endpoint = etree.SubElement(info, f"{_CI}endpoint", attrs)
        media = etree.SubElement(endpoint, f"{_CI}media", id=known_id or media_id)
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
        raise ClientError(
            f"cannot read user {args.entity}: CCMP {int(resp.code)} "
            f"{resp.response_string or resp.code.reason}"
        )
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
        source = args.blueprint or args.clone
        info = _load_info(args.info) if args.info else None
        if info is None and args.title:
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
            info=_mute_info(args.entity, status, args.media_id or "1", endpoints),
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


def needs_domain(args: argparse.Namespace, conf_user_id: str | None) -> bool:
    """Whether the request will carry a placeholder for an identifier of the server's
    domain that nothing on the command line tells (so ask the server first)."""
    if args.command != "create" or args.info or not args.title:
        return False
    return _domain(args.domain, conf_user_id) is None


def _texts(el: etree._Element, path: str) -> list[str]:
    return [" ".join("".join(str(t) for t in e.itertext()).split()) for e in el.iterfind(path)]


def describe(resp: CcmpResponse, out: TextIO) -> None:
    """Print a response for people."""
    status = f"{int(resp.code)} {resp.response_string or resp.code.reason}"
    kind = resp.message_type.value if resp.message_type is not None else "ccmp"
    out.write(f"{kind}: {status}\n")
    if resp.conf_obj_id:
        out.write(f"  object: {resp.conf_obj_id}\n")
    if resp.version is not None:
        out.write(f"  version: {resp.version}\n")
    if resp.uris is not None:
        if not resp.uris:
            out.write("  (none)\n")
        for entry in resp.uris:
            label = f"  {entry.uri}"
            if entry.display_text:
                label += f"  {entry.display_text}"
            out.write(label + "\n")
    if resp.options is not None:
        for cap in (*resp.options.standard, *resp.options.extended):
            ops = ", ".join(op.value for op in cap.operations) or "-"
            out.write(f"  {cap.name}: {ops}\n")
    info = resp.info
    if info is not None:
        title = _texts(info, f"{_CI}conference-description/{_CI}display-text")
        if title:
            out.write(f"  title: {title[0]}\n")
        entity = info.get("entity")
        if entity and entity != resp.conf_obj_id:
            out.write(f"  entity: {entity}\n")
        media = _texts(
            info, f"{_CI}conference-description/{_CI}available-media/{_CI}entry/{_CI}type"
        )
        if media:
            out.write(f"  media: {', '.join(media)}\n")
        users = list(info.iter(f"{_CI}user"))
        if info.tag == "userInfo":
            users = [info]
        for user in users:
            name = _texts(user, f"{_CI}display-text")
            line = f"  user {user.get('entity')}"
            if name:
                line += f" ({name[0]})"
            for endpoint in user.iterfind(f"{_CI}endpoint"):
                statuses = _texts(endpoint, f"{_CI}media/{_CI}status")
                line += f" endpoint {endpoint.get('entity') or '-'}"
                if statuses:
                    line += f" [{' '.join(statuses)}]"
            out.write(line + "\n")
        for sidebar in info.iterfind(f"{_CI}entry"):
            out.write(f"  sidebar {sidebar.get('entity')}\n")
    for extra in resp.extension_payload:
        for child in extra:
            out.write(f"  {etree.QName(child).localname}: {' '.join((child.text or '').split())}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ccmp_server.client", description=__doc__.split("\n")[0]
    )
    p.add_argument("--url", required=True, help="the CCMP server, e.g. https://host:8443/ccmp")
    p.add_argument("--user", help="account name (sent in the CCMP <subject>)")
    p.add_argument("--password", help="account password (or set CCMP_PASSWORD)")
    p.add_argument("--basic", action="store_true", help="send credentials as HTTP Basic instead")
    p.add_argument("--conf-user-id", help="XCON-USERID to send (default: from --user/--domain)")
    p.add_argument(
        "--domain",
        default=None,
        help="the server's domain (of your XCON-USERID and of new identifiers); by default "
        "learnt from the server when needed",
    )
    p.add_argument("--conf-password", help="conference password for protected conferences")
    p.add_argument("--cafile", type=Path, help="CA certificate to trust for HTTPS")
    p.add_argument("--insecure", action="store_true", help="do not verify the HTTPS certificate")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    p.add_argument("--xml", action="store_true", help="print the raw CCMP request and response")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("options", help="server capabilities")
    sub.add_parser("blueprints", help="list blueprints")
    sub.add_parser("blueprint", help="show a blueprint").add_argument("uri")
    sub.add_parser("confs", help="list conferences").add_argument("--filter", help="xpathFilter")
    c = sub.add_parser("create", help="create a conference")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--blueprint", help="clone this blueprint")
    g.add_argument("--clone", help="clone this conference")
    g.add_argument("--info", type=Path, help="conference-info XML file")
    c.add_argument("--title")
    sub.add_parser("show", help="show a conference").add_argument("conf")
    u = sub.add_parser("update", help="change a conference")
    u.add_argument("conf")
    u.add_argument("--title")
    u.add_argument("--info", type=Path, help="partial conference-info XML file")
    sub.add_parser("delete", help="delete a conference").add_argument("conf")
    sub.add_parser("users", help="show the users of a conference").add_argument("conf")
    for name, helptext in (
        ("user", "show a user (default: yourself)"),
        ("remove", "remove a user (default: yourself)"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("conf")
        s.add_argument("entity", nargs="?")
    a = sub.add_parser("add-user", help="add a user")
    a.add_argument("conf")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--dial-out", metavar="URI", help="the focus calls this URI")
    g.add_argument("--dial-in", metavar="URI", help="this URI will call in")
    a.add_argument("--entity", help="XCON-USERID of a known user")
    a.add_argument("--name", help="display name")
    for name in ("mute", "unmute"):
        m = sub.add_parser(name, help=f"{name} a user's media")
        m.add_argument("conf")
        m.add_argument("entity")
        m.add_argument("--media-id", help="the media id to set (default: the endpoint's "
                       "audio media, else 1)")
    for name in ("sidebars", "sidebar-create"):
        s = sub.add_parser(name, help=name.replace("-", " "))
        s.add_argument("conf")
        s.add_argument("--by-ref", action="store_true")
        if name == "sidebar-create":
            s.add_argument("--info", type=Path)
    for name in ("sidebar-show", "sidebar-delete"):
        s = sub.add_parser(name, help=name.replace("-", " "))
        s.add_argument("sidebar")
        s.add_argument("--by-ref", action="store_true")
    sub.add_parser("summary", help="conference summary (extension)").add_argument("conf")
    return p


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run one command; the exit status says how it went (see the module docstring)."""
    args = _parser().parse_args(argv)
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
        sent, received, resp = asyncio.run(send(target, request))
    except ClientError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if args.xml:
        out.write(sent.decode() + "\n" + received.decode() + "\n")
    else:
        describe(resp, out)
    if resp.code is not ResponseCode.SUCCESS:
        err.write(f"CCMP error {int(resp.code)}: {resp.response_string or resp.code.reason}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
