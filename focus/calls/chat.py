"""Chat in conferences: SIP MESSAGE (RFC 3428) to a conference's URI, relayed by the focus.

RFC 4579 has no MESSAGE rule and the seed's s8 leaves the IM protocol open; this focus acts
as the conference's IM "exploder":

* **Chat conferences** are conferences (and their sidebars) whose conference -- for a
  sidebar, its parent -- offers text media (``<available-media>`` with ``<type>text</type>``,
  as the ChatRoom blueprint does).
* **Members** are the conference's users with a SIP endpoint that is not disconnected. One
  joins over CCMP, as in the seed's s8.1.1.2 (``userRequest`` create with an endpoint whose
  entity is her SIP URI: ``python -m ccmp_server.client add-user CONF --dial-in SIP-URI``);
  a phone dialled in with audio is a member too. No INVITE or SUBSCRIBE is needed, so any
  plain SIP UA that sends and receives MESSAGE can chat.
* **A MESSAGE from a member** (its From matching one of her endpoints or associated AORs) is
  answered 202 Accepted (the focus relays it; RFC 3428 s7) and sent to every other member's
  endpoints with the same body and Content-Type; from anyone else 403; to no conference 404
  (so also once the room is deleted); to a conference without text media 403 (the reason
  phrase says so).
* **The sender is named** by ``From: "<her display name>" <conference URI>`` (a reply goes
  to the room) and ``P-Asserted-Identity: <her AOR>`` (RFC 3325: the identity the focus
  checked, her endpoint entity in the conference document, where her XCON-USERID is).
* **Text sidebars and private messages**: a MESSAGE to a sidebar's URI goes to the sidebar's
  members only; a private chat is a two-party sidebar created over CCMP (RFC 6503 s5.3.8).
* **Deletion**: when a chat conference is deleted (by its creator over CCMP), every member
  gets a last MESSAGE saying so; subscribers of the conference package get the final NOTIFY
  with ``noresource`` from the event package. Later MESSAGEs get 404. A deleted sidebar's
  members get such a last MESSAGE too (from the sidebar's URI).
* **In a call's dialog**: a MESSAGE a participant sends inside her INVITE dialog with the
  focus is relayed to the room of her call, as one sent to the room's URI.

Routing (:func:`members`, :func:`route`) is pure; :class:`ChatRelay` sends.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from focus.calls.admission import same_aor
from focus.core.changes import Change, ConferenceDeleted
from focus.core.state import ConferenceObject, ObjectKind
from focus.core.store import ConferenceStore
from focus.sip.aio.ua import UserAgent
from focus.sip.errors import SipParseError
from focus.sip.flow import Flow
from focus.sip.headers import NameAddr
from focus.sip.message import Request
from focus.sip.transaction import new_request, new_tag
from focus.sip.uacore import UAError, resolve_target
from focus.sip.uri import parse_uri
from focus.xcon.model import EndpointStatus, User

__all__ = ["ChatRefusal", "ChatRelay", "Member", "Relay", "is_chat", "members", "route"]

log = logging.getLogger(__name__)

_GONE = {EndpointStatus.DISCONNECTED, EndpointStatus.DISCONNECTING}


@dataclass(frozen=True, slots=True)
class Member:
    """A user who takes part in a chat: her XCON-USERID, name, AORs and where to send."""

    entity: str
    display_name: str | None
    aors: tuple[str, ...]
    """Every SIP URI she is known by (endpoint entities, associated AORs)."""
    targets: tuple[str, ...]
    """Her endpoints that are not disconnected: where relayed messages go."""


@dataclass(frozen=True, slots=True)
class Relay:
    """What to do with a MESSAGE: send it, as from ``sender``, to ``recipients``."""

    sender: Member
    recipients: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class ChatRefusal:
    """The MESSAGE is refused with ``status`` (the sender's fault: 403 non-member ...)."""

    status: int
    reason: str


def is_chat(obj: ConferenceObject, parent: ConferenceObject | None) -> bool:
    """Whether the conference (for a sidebar: its parent) offers text media."""
    root = parent if obj.kind.is_sidebar and parent is not None else obj
    desc = root.info.conference_description
    if desc is None or desc.available_media is None:
        return False
    return any(str(entry.type or "").lower() == "text" for entry in desc.available_media.entries)


def _sip_uris(user: User) -> tuple[list[str], list[str]]:
    aors: list[str] = []
    targets: list[str] = []
    for e in user.endpoints:
        if e.entity is None or not e.entity.lower().startswith(("sip:", "sips:")):
            continue
        aors.append(e.entity)
        if e.status not in _GONE:
            targets.append(e.entity)
    if user.associated_aors is not None:
        aors.extend(
            a.uri
            for a in user.associated_aors.entries
            if a.uri.lower().startswith(("sip:", "sips:"))
        )
    return aors, targets


def members(obj: ConferenceObject, parent: ConferenceObject | None = None) -> tuple[Member, ...]:
    """The chat members of a conference, or of a sidebar (``parent`` given): a sidebar's
    users are users of its parent, whose entries hold their endpoints (RFC 6503 s5.3.8)."""
    known = {
        u.entity: u
        for u in (parent.info.users.users if parent is not None and parent.info.users else ())
    }
    found: list[Member] = []
    for user in obj.info.users.users if obj.info.users else ():
        if user.entity is None:
            continue
        aors, targets = _sip_uris(user)
        outer = known.get(user.entity)
        if outer is not None:
            more_aors, more_targets = _sip_uris(outer)
            aors += [a for a in more_aors if a not in aors]
            if not targets:
                targets = more_targets
        name = user.display_text or (outer.display_text if outer is not None else None)
        if aors:
            found.append(Member(user.entity, name, tuple(aors), tuple(targets)))
    return tuple(found)


def route(
    obj: ConferenceObject, parent: ConferenceObject | None, sender: str
) -> Relay | ChatRefusal:
    """Who gets a MESSAGE that ``sender`` (its From URI) sent to ``obj``'s URI."""
    if not is_chat(obj, parent):
        return ChatRefusal(403, "Forbidden - this conference has no text media")
    everyone = members(obj, parent)
    for member in everyone:
        if any(same_aor(aor, sender) for aor in member.aors):
            others = tuple(m for m in everyone if m.entity != member.entity and m.targets)
            return Relay(member, others)
    return ChatRefusal(403, "Forbidden - not a member of this chat")


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


Lookup = Callable[[Request], ConferenceObject | None]


class ChatRelay:
    """MESSAGEs to conference URIs relayed to members (see the module docstring).

    ``lookup(request)`` is the conference a request's URI addresses (None: 404);
    ``sip_uri(xcon_uri)`` the conference's SIP URI (the From of what we relay: one that
    routes to us, so a reply goes to the room)."""

    def __init__(
        self, store: ConferenceStore, ua: UserAgent, lookup: Lookup, sip_uri: Callable[[str], str]
    ) -> None:
        self.store = store
        self.ua = ua
        self.lookup = lookup
        self.sip_uri = sip_uri
        self.relayed = 0  # MESSAGEs sent to members (for tests and logs)
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = store.subscribe(self._changed)

    async def close(self) -> None:
        self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def message(self, request: Request, conference: ConferenceObject | None = None) -> None:
        """A MESSAGE addressed to one of our URIs, or sent in a call's dialog with the focus
        (``conference``: the call's conference; relayed alike)."""
        obj = conference if conference is not None else self.lookup(request)
        if obj is None:
            self.ua.respond(request, 404, reason="Not Found - no such conference")
            return
        parent = self.store.get(obj.parent) if obj.kind.is_sidebar and obj.parent else None
        decision = route(obj, parent, str(request.from_.uri))
        if isinstance(decision, ChatRefusal):
            self.ua.respond(request, decision.status, reason=decision.reason)
            return
        self.ua.respond(request, 202)
        content_type = request.headers.get("Content-Type") or "text/plain"
        for member in decision.recipients:
            for target in member.targets:
                self._send(obj.uri, target, request.body, content_type, decision.sender)

    def _changed(self, changes: Sequence[Change]) -> None:
        for change in changes:
            before = change.before
            if not isinstance(change, ConferenceDeleted) or before is None:
                continue
            if before.kind is ObjectKind.CONFERENCE and is_chat(before, None):
                # The room is gone: tell everyone in it (a sidebar's members are in it too).
                text = b"This chat room was deleted."
                parent = None
            elif before.kind.is_sidebar and before.parent:
                # A text sidebar (a private chat) ended: its members learn it; the room
                # (its parent) goes on.
                parent = self.store.get(before.parent)
                if parent is None or not is_chat(before, parent):
                    continue
                text = b"This sidebar was deleted."
            else:
                continue
            for member in members(before, parent):
                for target in member.targets:
                    self._send(before.uri, target, text, "text/plain", None)

    def _send(
        self, conference: str, target: str, body: bytes, content_type: str, sender: Member | None
    ) -> None:
        try:
            uri = parse_uri(target)
            flow = resolve_target(uri)
        except (SipParseError, UAError) as exc:  # a member's URI we cannot reach
            log.info("chat: cannot reach %s: %s", target, exc)
            return
        local = self.ua.local.get(flow.transport)
        if local is None:
            log.info("chat: no %s transport for %s", flow.transport.value, target)
            return
        host, port = local
        sent_by = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        room = self.sip_uri(conference)
        name = _quoted(sender.display_name) + " " if sender and sender.display_name else ""
        request = new_request(
            "MESSAGE",
            uri,
            transport=flow.transport.value,
            sent_by=sent_by,
            from_=f"{name}<{room}>;tag={new_tag()}",
            to=str(NameAddr(uri)),
            call_id=f"{secrets.token_hex(12)}@{host}",
            cseq=1,
        )
        h = request.headers
        if sender is not None:
            h.add("P-Asserted-Identity", f"{name}<{sender.aors[0]}>")
        h.add("Content-Type", content_type)
        request.body = body
        task = asyncio.get_running_loop().create_task(self._deliver(request, flow, target))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.relayed += 1

    async def _deliver(self, request: Request, flow: Flow, target: str) -> None:
        try:
            response = await self.ua.send(request, None, flow=flow)
        except UAError as exc:
            log.info("chat: MESSAGE to %s failed: %s", target, exc)
            return
        if response.status >= 300:
            log.info("chat: %s answered %d to a relayed MESSAGE", target, response.status)
