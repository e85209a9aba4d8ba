"""The published CCMP call flows replayed against the running server over real HTTP.

Each flow sends the example requests of RFC 6503 s6, RFC 6504 s4-s8 and the seed draft s5 as
printed (vectors under tests/vectors/ccmp/), with only the identifiers the example server
generated (conference URIs, XCON-USERIDs) swapped for the ones ours generated. Each answer is
checked against the published one: response code, message type, operation (always the
request's: RFC 6503 s5.3), version, and the data the client supplied coming back.

Preconditions the examples take for granted (a conference that exists, a participant in it, a
password) are set up with ordinary CCMP requests first; where the RFC prints the conference
(RFC 6504 s7.1's main conference, s7.4's Figure 24), it is created from that document.
Credentials travel as HTTP Basic (the examples carry none); the config allows that over
plain HTTP for this test only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from ccmp_server.app import CcmpConfig, CcmpServer, start_ccmp
from ccmp_server.codec import decode_request, decode_response, encode_request
from ccmp_server.messages import (
    INFO_NS,
    XCON_NS,
    CcmpRequest,
    CcmpResponse,
    MessageType,
    Operation,
    ResponseCode,
)
from focus.core.store import ConferenceStore
from focus.xcon.model import Role
from tests.ccmp_server.conftest import HEADERS, open_store
from tests.ccmp_server.vectors import load
from tests.paths import VECTORS as TEST_VECTORS

DOMAIN = "example.com"
CI = f"{{{INFO_NS}}}"
FLOW_ACCOUNTS = {
    "alice": Role.USER,
    "Alice": Role.USER,
    "Bob": Role.PARTICIPANT,
    "bob": Role.PARTICIPANT,
    "Carol": Role.PARTICIPANT,
    "David": Role.PARTICIPANT,
    "Ethel": Role.PARTICIPANT,
    "admin": Role.ADMINISTRATOR,
}
# The conference documents RFC 6504 prints (s7.1's main conference, s7.4's Figure 24).
DOCUMENTS = TEST_VECTORS / "xcon"


@dataclass
class Replay:
    """One flow's server, identifier map and HTTP session."""

    server: CcmpServer
    session: aiohttp.ClientSession
    store: ConferenceStore
    ids: dict[str, str] = field(default_factory=dict)
    as_user: str = "Alice"
    answers: dict[str, CcmpResponse] = field(default_factory=dict)

    def swap(self, data: bytes) -> bytes:
        text = data.decode("utf-8")
        # Longest first, so "xcon-userid:Alice" never clobbers "xcon-userid:Alice@example.com".
        for published in sorted(self.ids, key=len, reverse=True):
            text = re.sub(re.escape(published) + r"(?![\w@.-])", self.ids[published], text)
        return text.encode("utf-8")

    async def post(self, body: bytes, user: str) -> CcmpResponse:
        headers = dict(HEADERS)
        if user:  # "" sends no credentials at all (RFC 6504 s6.3's client has none)
            token = base64.b64encode(f"{user}:pw-{user}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with self.session.post(self.server.url, data=body, headers=headers) as resp:
            assert resp.status == 200
            return decode_response(await resp.read())

    async def ccmp(
        self, req: CcmpRequest, user: str = "admin", code: ResponseCode = ResponseCode.SUCCESS
    ) -> CcmpResponse:
        resp = await self.post(encode_request(req), user)
        assert resp.code is code, (req, resp.response_string)
        return resp

    async def retrieve(self, mt: MessageType, published: str, user: str) -> etree._Element:
        """The document of the object the example calls `published`, as `user` reads it."""
        req = CcmpRequest(mt, operation=Operation.RETRIEVE, conf_obj_id=self.ids[published])
        resp = await self.ccmp(req, user)
        assert resp.info is not None
        return resp.info

    async def published_conf(
        self, published: str, document: str, user: str, extra_users: tuple[str, ...]
    ) -> None:
        """Create the conference the example takes for granted from the document the RFC
        prints for it (its description and users), plus `extra_users`."""
        root = etree.fromstring((DOCUMENTS / document).read_bytes())
        parts = [root.find(f"{CI}conference-description"), root.find(f"{CI}users")]
        users = parts[1]
        assert parts[0] is not None and users is not None
        for extra in extra_users:
            etree.SubElement(users, f"{CI}user", entity=extra)
        info = "".join(etree.tostring(p).decode() for p in parts if p is not None)
        await self.new_conf(published, user, info)

    async def new_conf(self, published: str, user: str = "Alice", info: str = "") -> str:
        req = CcmpRequest(MessageType.CONF, operation=Operation.CREATE)
        if info:
            req = CcmpRequest(
                MessageType.CONF,
                operation=Operation.CREATE,
                info=etree.fromstring(
                    f'<confInfo xmlns:ci="{INFO_NS}" xmlns:xcon="{XCON_NS}" '
                    f'entity="xcon:AUTO_GENERATE_1@{DOMAIN}">{info}</confInfo>'.encode()
                ),
            )
        made = await self.ccmp(req, user)
        assert made.conf_obj_id is not None
        self.ids[published] = made.conf_obj_id
        return made.conf_obj_id

    async def add_user(self, conf: str, user_id: str, by: str = "Alice") -> None:
        await self.ccmp(
            CcmpRequest(
                MessageType.USER,
                operation=Operation.CREATE,
                conf_obj_id=self.ids.get(conf, conf),
                info=etree.fromstring(f'<userInfo entity="{user_id}"/>'.encode()),
            ),
            by,
        )

    async def step(
        self, name: str, *, exact_version: bool = False, user: str | None = None
    ) -> None:
        """Send the request vector `name` (doc/section-NN-request.xml) and check the answer
        against the next vector, the published response."""
        raw_request = load(name)
        published = decode_response(load(_response_of(name)))
        body = self.swap(raw_request)
        req = decode_request(body)
        who = user or _account_of(req.conf_user_id) or self.as_user
        ours = await self.post(body, who)
        where = f"{name}: {int(ours.code)} {ours.response_string}"
        assert ours.code is published.code, where
        assert ours.message_type is published.message_type, where
        assert ours.operation is req.operation, where
        assert ours.namespace == req.namespace, where
        self.answers[name] = ours
        if published.code is not ResponseCode.SUCCESS:
            return
        if not who and req.conf_user_id is None:
            # RFC 6503 s5.3.6 Figure 11: the new XCON-USERID comes back in <confUserID>.
            assert ours.conf_user_id.startswith("xcon-userid:"), where
            assert "AUTO_GENERATE" not in ours.conf_user_id, where
            assert ours.conf_user_id not in {f"xcon-userid:{a}@{DOMAIN}" for a in FLOW_ACCOUNTS}
        if published.version is not None:
            assert ours.version is not None, where
            if exact_version:
                assert ours.version == published.version, where
        if req.operation is Operation.CREATE and published.conf_obj_id:
            assert ours.conf_obj_id and "AUTO_GENERATE" not in ours.conf_obj_id, where
            if req.message_type is not MessageType.USER:
                self.ids[published.conf_obj_id] = ours.conf_obj_id
                if ours.version is not None:
                    assert ours.version == 1, where
        elif published.conf_obj_id:
            assert ours.conf_obj_id == self.ids.get(published.conf_obj_id, published.conf_obj_id)
        self._check_data(name, req, published, ours)

    def _check_data(
        self, name: str, req: CcmpRequest, published: CcmpResponse, ours: CcmpResponse
    ) -> None:
        if published.uris is not None:
            assert ours.uris is not None, name
            assert {u.uri for u in published.uris} <= {u.uri for u in ours.uris}, name
        if published.info is not None and req.message_type in _SIDEBAR_TYPES and req.info is None:
            assert ours.info is not None, name
            _same_media_and_parent(name, published.info, ours.info, self.ids)
        if published.info is not None and req.message_type is not MessageType.BLUEPRINT:
            assert ours.info is not None, name
            sent = etree.tostring(req.info) if req.info is not None else b""
            ours_xml = etree.tostring(ours.info)
            for value in _echoed_values(published.info):
                if value.encode() in sent:
                    assert value.encode() in ours_xml, f"{name}: {value} not returned"
            entity = published.info.get("entity")
            got = ours.info.get("entity")
            if entity and got and entity.startswith("xcon-userid:"):
                assert "AUTO_GENERATE" not in got, name
                self.ids[entity] = got
        if req.message_type is MessageType.BLUEPRINT and published.info is not None:
            assert ours.info is not None and ours.info.get("entity") == req.conf_obj_id, name
        if published.options is not None:
            assert ours.options is not None, name
            ours_names = {m.name for m in ours.options.standard}
            assert {m.name for m in published.options.standard} <= ours_names, name
        if published.extension_payload:
            assert [etree.QName(e).localname for e in ours.extension_payload] == [
                etree.QName(e).localname for e in published.extension_payload
            ], name


_SIDEBAR_TYPES = frozenset({MessageType.SIDEBAR_BY_REF, MessageType.SIDEBAR_BY_VAL})


def _same_media_and_parent(
    name: str, published: etree._Element, ours: etree._Element, ids: dict[str, str]
) -> None:
    """A created sidebar as the example shows it: the parent's media (label, type, status)
    and the parent named in <sidebar-parent> (printed in <users> or in the description)."""
    assert _media(published) <= _media(ours), f"{name}: {_media(ours)}"
    parents = {(e.text or "").strip() for e in published.iter(f"{{{XCON_NS}}}sidebar-parent")}
    ours_parent = {(e.text or "").strip() for e in ours.iter(f"{{{XCON_NS}}}sidebar-parent")}
    # RFC 6504 s7.4 prints the sidebar's own URI there; s7.1 and s7.2 the parent's.
    mapped = {ids.get(p, p) for p in parents} - {ours.get("entity")}
    assert not mapped or ours_parent == mapped, f"{name}: {ours_parent} != {mapped}"


def _media(info: etree._Element) -> set[tuple[str, str, str]]:
    found = set()
    for entry in info.iter(f"{CI}entry"):
        kind, status = entry.find(f"{CI}type"), entry.find(f"{CI}status")
        if entry.get("label") and kind is not None and status is not None:
            found.add((entry.get("label", ""), (kind.text or "").strip(), status.text or ""))
    return found


def _named(info: etree._Element) -> set[str]:
    """Everyone a document names: its users and its allowed-users-list targets."""
    users = {u.get("entity", "") for u in info.iter(f"{CI}user")}
    return users | {t.get("uri", "") for t in info.iter(f"{{{XCON_NS}}}target")}


def _allowed(info: etree._Element) -> set[str]:
    return {t.get("uri", "") for t in info.iter(f"{{{XCON_NS}}}target")}


def _response_of(name: str) -> str:
    doc, file = name.split("/")
    section, number, _ = file.split("-", 2)
    nxt = f"{doc}/{section}-{int(number) + 1:02d}-response.xml"
    repaired = nxt.replace(".xml", ".repaired.xml")
    try:
        load(repaired)
    except FileNotFoundError:
        return nxt
    return repaired


def _account_of(user_id: str | None) -> str | None:
    if user_id is None:
        return None
    m = re.fullmatch(r"xcon-userid:([^@]+)@" + re.escape(DOMAIN), user_id)
    return m.group(1) if m and m.group(1) in FLOW_ACCOUNTS else None


def _echoed_values(info: etree._Element) -> list[str]:
    values = [e.get("entity") or "" for e in info.iter(f"{CI}endpoint")]
    values += [(u.text or "").strip() for u in info.iter(f"{CI}uri")]
    return [v for v in values if v and "AUTO_GENERATE" not in v]


@pytest.fixture
async def replay(tmp_path: Path) -> AsyncIterator[Replay]:
    store: ConferenceStore = open_store(tmp_path / "flow")
    for name, role in FLOW_ACCOUNTS.items():
        store.accounts.add(name, role, f"pw-{name}")
    server = await start_ccmp(
        store, CcmpConfig(port=0, allow_basic_auth_without_tls=True, allow_anonymous_join=True)
    )
    try:
        async with aiohttp.ClientSession() as session:
            yield Replay(server, session, store)
    finally:
        await server.close()
        store.close()


Setup = Callable[[Replay], Awaitable[None]]
SEED = "seed-draft-xcon-examples-00"


def conf(published: str, user: str = "Alice", info: str = "") -> Setup:
    async def setup(r: Replay) -> None:
        await r.new_conf(published, user, info)

    return setup


def member(published: str, user_id: str, by: str = "Alice") -> Setup:
    async def setup(r: Replay) -> None:
        await r.add_user(published, user_id, by)

    return setup


def published_conf(
    published: str, document: str, user: str = "Alice", extra_users: tuple[str, ...] = ()
) -> Setup:
    async def setup(r: Replay) -> None:
        await r.published_conf(published, document, user, extra_users)

    return setup


def account_role(name: str, role: Role) -> Setup:
    async def setup(r: Replay) -> None:
        r.store.accounts.set_role(name, role)

    return setup


def acting_as(name: str) -> Setup:
    async def setup(r: Replay) -> None:
        r.as_user = name

    return setup


async def seed_ids(r: Replay) -> None:
    # The draft's XCON-USERID has no domain.
    r.ids["xcon-userid:Alice"] = "xcon-userid:Alice@example.com"


SECRET = (
    "<ci:conference-description><ci:conf-uris><ci:entry><ci:uri>sip:8601@example.com"
    "</ci:uri><xcon:conference-password>8601</xcon:conference-password></ci:entry>"
    "</ci:conf-uris></ci:conference-description>"
)
C78 = "xcon:8977878@example.com"
C94 = "xcon:8977794@example.com"
C83 = "xcon:8978383@example.com"
S12 = "xcon:8971212@example.com"  # s7.2's sidebar
S13 = "xcon:8971313@example.com"  # s7.4's sidebar
DAVID = "xcon-userid:David@example.com"
ETHEL = "xcon-userid:Ethel@example.com"
FRED = "sip:fred@example.com"


async def check_s7_2(r: Replay) -> None:
    """After s7.2: the created sidebar named the parent's parties, Fred is the sidebar's
    (its allowed-users-list, with Alice and Bob) and in no roster of the main conference;
    the main conference cannot be deleted while its sidebar lives (RFC 5239 s9.4)."""
    created = r.answers["rfc6504/7.2-01-request.xml"].info
    published = decode_response(load("rfc6504/7.2-02-response.xml")).info
    assert created is not None and published is not None
    assert _named(published) <= _named(created)
    sidebar = await r.retrieve(MessageType.SIDEBAR_BY_REF, S12, "Alice")
    wanted = {"xcon-userid:Alice@example.com", "xcon-userid:Bob@example.com", FRED}
    assert wanted <= _allowed(sidebar)
    assert b"sidebar with Alice, Bob, Ethel and Fred" in etree.tostring(sidebar)
    main = await r.retrieve(MessageType.CONF, C78, "Alice")
    assert FRED not in _named(main) and FRED not in etree.tostring(main).decode()
    delete = CcmpRequest(MessageType.CONF, operation=Operation.DELETE, conf_obj_id=r.ids[C78])
    await r.ccmp(delete, "Alice", ResponseCode.FORBIDDEN_DELETE_PARENT)


async def check_s7_4(r: Replay) -> None:
    """After s7.4: the sidebar is Alice's and Bob's (users and allowed-users-list), its
    new audio has a real label in both their media; Carol is no longer invited; the call's
    roster does not show Alice (Carol must not learn of the coach)."""
    alice, bob, carol = (f"xcon-userid:{n}@{DOMAIN}" for n in ("alice", "bob", "carol"))
    created = r.answers["rfc6504/7.4-01-request.xml"].info
    assert created is not None and {bob, carol} <= _named(created)
    sidebar = await r.retrieve(MessageType.SIDEBAR_BY_REF, S13, "alice")
    assert _allowed(sidebar) == {alice, bob}
    assert {alice, bob} <= {u.get("entity") for u in sidebar.iter(f"{CI}user")}
    text = etree.tostring(sidebar).decode()
    assert "AUTO_GENERATE" not in text and "Alice-to-Bob audio" in text
    labels = {(m.text or "").strip() for m in sidebar.iter(f"{CI}label")}
    audio = {label for label, kind, _ in _media(sidebar) if kind == "audio"} & labels
    assert audio, "the coaching audio's label is not in the users' media"
    call = await r.retrieve(MessageType.CONF, C83, "admin")
    assert alice not in _named(call)


# Each flow: setup steps (ordinary CCMP requests for what the example takes for granted) and
# request vectors, replayed in order. The RFC 6503 s6 story starts from nothing, so its
# published versions (1..5) must match exactly.
FLOWS: dict[str, tuple[Setup | str, ...]] = {
    "rfc6503-s6": (
        acting_as("alice"),
        *(f"rfc6503/{n}-01-request.xml" for n in ("6.1", "6.2", "6.3", "6.4", "6.5")),
        *(f"rfc6503/{n}-01-request.xml" for n in ("6.6", "6.7", "6.8", "6.9")),
    ),
    "rfc6504-s4.2-s5-creation": (
        "rfc6504/4.2-01-request.xml",
        "rfc6504/5.1-01-request.xml",
        "rfc6504/5.2-01-request.xml",
        "rfc6504/5.2-03-request.xml",
        "rfc6504/5.2-05-request.xml",
        "rfc6504/5.3-01-request.xml",
        "rfc6504/5.4-01-request.xml",
    ),
    "rfc6504-s6.1-s6.2-add-and-mute": (
        conf(C78),
        "rfc6504/6.1-01-request.xml",
        "rfc6504/6.2-01-request.xml",
    ),
    "rfc6504-s6.3-join-without-userid": (
        conf("xcon:bobConf@example.com"),
        "rfc6504/6.3-01-request.xml",
    ),
    # The same request from a client with no credentials at all (s5.3.6, third case): the
    # default blueprint's user-admission-policy is "anonymous", so it is let in.
    "rfc6504-s6.3-join-unauthenticated": (
        conf("xcon:bobConf@example.com"),
        acting_as(""),
        "rfc6504/6.3-01-request.xml",
    ),
    "rfc6504-s6.5-password": (
        conf(C94, user="admin", info=SECRET),
        "rfc6504/6.5-01-request.xml",
        "rfc6504/6.5-03-request.xml",
    ),
    "rfc6504-s7.1-internal-sidebar": (
        published_conf(C78, "rfc6504-25.xml"),
        "rfc6504/7.1-01-request.xml",
        "rfc6504/7.1-03-request.xml",
        # The sidebar is a clone of the main conference, so Bob is in it already.
        "rfc6504/7.1-05-request.xml",
    ),
    # Fred, the customer, is in no roster of the main conference: he joins only the
    # sidebar (RFC 5239 s9.4.2).
    "rfc6504-s7.2-external-sidebar": (
        published_conf(C78, "rfc6504-25.xml", extra_users=(DAVID, ETHEL)),
        "rfc6504/7.2-01-request.xml",
        "rfc6504/7.2-03-request.xml",
        check_s7_2,
    ),
    "rfc6504-s7.3-private-messages": (
        conf(C78),
        member(C78, "xcon-userid:Alice@example.com"),
        member(C78, "xcon-userid:Bob@example.com"),
        "rfc6504/7.3-01-request.xml",
    ),
    # Alice the supervisor is not in Bob's call with Carol (Figure 24, set up by the
    # service's administrator); she creates the sidebar as a moderator by her account.
    "rfc6504-s7.4-coaching": (
        published_conf(C83, "rfc6504-38.xml", user="admin"),
        account_role("alice", Role.MODERATOR),
        "rfc6504/7.4-01-request.xml",
        "rfc6504/7.4-03-request.xml",
        check_s7_4,
    ),
    "rfc6504-s8-removal": (
        conf(C94),
        member(C94, "xcon-userid:Bob@example.com"),
        "rfc6504/8.1-01-request.xml",
        "rfc6504/8.2-01-request.xml",
    ),
    "seed-s5.1-default": (seed_ids, f"{SEED}/5.1-01-request.xml"),
    # The draft's s5.2 names its new conference xcon:8977794 and s5.1 created one by that
    # name too, so s5.2 runs on its own server.
    "seed-s5.2-s5.3-info-then-clone": (
        seed_ids,
        f"{SEED}/5.2-01-request.repaired.xml",
        f"{SEED}/5.3-01-request.xml",
    ),
    "seed-s5.4-blueprints": (
        seed_ids,
        f"{SEED}/5.4-01-request.xml",
        f"{SEED}/5.4-03-request.xml",
        f"{SEED}/5.4-05-request.xml",
    ),
}


@pytest.mark.parametrize("flow", list(FLOWS))
async def test_published_flow(replay: Replay, flow: str) -> None:
    exact = flow == "rfc6503-s6"
    for item in FLOWS[flow]:
        if isinstance(item, str):
            await replay.step(item, exact_version=exact)
        else:
            await item(replay)


def test_every_request_vector_is_replayed() -> None:
    from tests.ccmp_server.vectors import vector_files

    replayed = {item for flow in FLOWS.values() for item in flow if isinstance(item, str)}
    for path in vector_files("request"):
        assert f"{path.parent.name}/{path.name}" in replayed, f"{path} is in no flow"
