"""Authentication (RFC 6503 s10.2, 424/421/401) and every cell of the core's role matrix,
exercised with the CCMP request that needs it, over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from ccmp_server.messages import (
    INFO_NS,
    XCON_NS,
    CcmpRequest,
    CcmpResponse,
    MessageType,
    Operation,
    ResponseCode,
    Subject,
)
from focus.core.policy import MATRIX
from focus.core.policy import Operation as P
from focus.core.store import ConferenceStore
from tests.ccmp_server.conftest import ACCOUNTS, Client, user_id

R = ResponseCode
MT = MessageType


def info(tag: str, entity: str | None, body: str = "") -> etree._Element:
    ent = f' entity="{entity}"' if entity else ""
    return etree.fromstring(
        f'<{tag} xmlns:ci="{INFO_NS}" xmlns:xcon="{XCON_NS}"{ent}>{body}</{tag}>'.encode()
    )


TITLE = (
    "<ci:conference-description><ci:display-text>t</ci:display-text></ci:conference-description>"
)
MEDIA = (
    '<ci:endpoint entity="sip:carol@example.com"><ci:media id="1">'
    "<ci:status>{}</ci:status></ci:media></ci:endpoint>"
)


class World:
    """Objects the admin sets up for one cell of the matrix."""

    def __init__(self, admin: Client, actor: str) -> None:
        self.admin = admin
        self.actor = actor
        self.conf = ""
        self.sidebar = ""
        self.blueprint = ""

    async def must(self, req: CcmpRequest) -> CcmpResponse:
        resp = await self.admin.send(req)
        assert resp.code is R.SUCCESS, (req, resp.response_string)
        return resp

    async def setup(
        self, *, actor_in: bool, carol_in: bool, sidebar: bool, blueprint: bool = False
    ) -> None:
        if blueprint:  # a blueprint created over CCMP (files cannot be changed: 403)
            made = await self.must(
                CcmpRequest(
                    MT.BLUEPRINT,
                    operation=Operation.CREATE,
                    conf_obj_id="xcon:AudioRoom@example.com",
                )
            )
            assert made.conf_obj_id
            self.blueprint = made.conf_obj_id
        made = await self.must(CcmpRequest(MT.CONF, operation=Operation.CREATE))
        assert made.conf_obj_id
        self.conf = made.conf_obj_id
        for name, wanted in ((self.actor, actor_in), ("carol", carol_in)):
            if wanted:
                body = MEDIA.format("sendrecv") if name == "carol" else ""
                await self.must(
                    CcmpRequest(
                        MT.USER,
                        operation=Operation.CREATE,
                        conf_obj_id=self.conf,
                        info=info("userInfo", user_id(name), body),
                    )
                )
        if sidebar:
            side = await self.must(
                CcmpRequest(MT.SIDEBAR_BY_VAL, operation=Operation.CREATE, conf_obj_id=self.conf)
            )
            assert side.conf_obj_id
            self.sidebar = side.conf_obj_id


def _requests(w: World) -> dict[P, tuple[dict[str, bool], Callable[[], CcmpRequest]]]:
    def c() -> str:
        return w.conf

    carol = user_id("carol")
    me = user_id(w.actor)
    plain = {"actor_in": False, "carol_in": False, "sidebar": False}
    return {
        P.LIST_BLUEPRINTS: (plain, lambda: CcmpRequest(MT.BLUEPRINTS)),
        P.READ_BLUEPRINT: (
            plain,
            lambda: CcmpRequest(
                MT.BLUEPRINT, operation=Operation.RETRIEVE, conf_obj_id="xcon:AudioRoom@example.com"
            ),
        ),
        P.LIST_CONFERENCES: (plain, lambda: CcmpRequest(MT.CONFS)),
        P.CREATE_CONFERENCE: (plain, lambda: CcmpRequest(MT.CONF, operation=Operation.CREATE)),
        P.READ_CONFERENCE: (
            plain,
            lambda: CcmpRequest(MT.CONF, operation=Operation.RETRIEVE, conf_obj_id=c()),
        ),
        P.UPDATE_CONFERENCE: (
            plain,
            lambda: CcmpRequest(
                MT.CONF,
                operation=Operation.UPDATE,
                conf_obj_id=c(),
                info=info("confInfo", c(), TITLE),
            ),
        ),
        P.DELETE_CONFERENCE: (
            plain,
            lambda: CcmpRequest(MT.CONF, operation=Operation.DELETE, conf_obj_id=c()),
        ),
        P.READ_USERS: (
            plain,
            lambda: CcmpRequest(MT.USERS, operation=Operation.RETRIEVE, conf_obj_id=c()),
        ),
        P.UPDATE_USERS: (
            plain,
            lambda: CcmpRequest(
                MT.USERS,
                operation=Operation.UPDATE,
                conf_obj_id=c(),
                info=info("usersInfo", None, "<xcon:join-handling>block</xcon:join-handling>"),
            ),
        ),
        P.ADD_SELF: (
            plain,
            lambda: CcmpRequest(MT.USER, operation=Operation.CREATE, conf_obj_id=c()),
        ),
        P.ADD_USER: (
            plain,
            lambda: CcmpRequest(
                MT.USER, operation=Operation.CREATE, conf_obj_id=c(), info=info("userInfo", carol)
            ),
        ),
        P.READ_SELF: (
            {**plain, "actor_in": True},
            lambda: CcmpRequest(MT.USER, operation=Operation.RETRIEVE, conf_obj_id=c()),
        ),
        P.READ_USER: (
            {**plain, "carol_in": True},
            lambda: CcmpRequest(
                MT.USER, operation=Operation.RETRIEVE, conf_obj_id=c(), info=info("userInfo", carol)
            ),
        ),
        P.UPDATE_SELF: (
            {**plain, "actor_in": True},
            lambda: CcmpRequest(
                MT.USER,
                operation=Operation.UPDATE,
                conf_obj_id=c(),
                info=info("userInfo", me, "<ci:display-text>me</ci:display-text>"),
            ),
        ),
        P.UPDATE_USER: (
            {**plain, "carol_in": True},
            lambda: CcmpRequest(
                MT.USER,
                operation=Operation.UPDATE,
                conf_obj_id=c(),
                info=info("userInfo", carol, MEDIA.format("recvonly")),
            ),
        ),
        P.REMOVE_SELF: (
            {**plain, "actor_in": True},
            lambda: CcmpRequest(MT.USER, operation=Operation.DELETE, conf_obj_id=c()),
        ),
        P.REMOVE_USER: (
            {**plain, "carol_in": True},
            lambda: CcmpRequest(
                MT.USER, operation=Operation.DELETE, conf_obj_id=c(), info=info("userInfo", carol)
            ),
        ),
        P.READ_SIDEBARS: (
            {**plain, "sidebar": True},
            lambda: CcmpRequest(MT.SIDEBARS_BY_VAL, conf_obj_id=c()),
        ),
        P.CREATE_SIDEBAR: (
            plain,
            lambda: CcmpRequest(MT.SIDEBAR_BY_VAL, operation=Operation.CREATE, conf_obj_id=c()),
        ),
        P.UPDATE_SIDEBAR: (
            {**plain, "sidebar": True},
            lambda: CcmpRequest(
                MT.SIDEBAR_BY_VAL,
                operation=Operation.UPDATE,
                conf_obj_id=w.sidebar,
                info=info("sidebarByValInfo", w.sidebar, TITLE),
            ),
        ),
        P.DELETE_SIDEBAR: (
            {**plain, "sidebar": True},
            lambda: CcmpRequest(
                MT.SIDEBAR_BY_VAL, operation=Operation.DELETE, conf_obj_id=w.sidebar
            ),
        ),
        P.CREATE_BLUEPRINT: (
            plain,
            lambda: CcmpRequest(
                MT.BLUEPRINT,
                operation=Operation.CREATE,
                info=info("blueprintInfo", "xcon:AUTO_GENERATE_1@example.com", TITLE),
            ),
        ),
        P.UPDATE_BLUEPRINT: (
            {**plain, "blueprint": True},
            lambda: CcmpRequest(
                MT.BLUEPRINT,
                operation=Operation.UPDATE,
                conf_obj_id=w.blueprint,
                info=info("blueprintInfo", w.blueprint, TITLE),
            ),
        ),
        P.DELETE_BLUEPRINT: (
            {**plain, "blueprint": True},
            lambda: CcmpRequest(MT.BLUEPRINT, operation=Operation.DELETE, conf_obj_id=w.blueprint),
        ),
    }


@pytest.mark.parametrize("name", ["admin", "mod", "alice", "bob", "olga", "nobody"])
async def test_every_cell_of_the_role_matrix(client: Client, name: str) -> None:
    role = ACCOUNTS[name]
    admin = client.as_("admin")
    actor = client.as_(name)
    cells = _requests(World(admin, name))
    assert set(cells) == set(P), "every policy operation has a CCMP request here"
    failures = []
    for op, (needs, _) in cells.items():
        world = World(admin, name)
        await world.setup(**needs)
        resp = await actor.send(_requests(world)[op][1]())
        allowed = op in MATRIX[role]
        expected = R.SUCCESS if allowed else R.UNAUTHORIZED
        if resp.code is not expected:
            failures.append(f"{role.value} {op.value}: {int(resp.code)} {resp.response_string}")
    assert not failures, "\n".join(failures)


async def _send_raw(client: Client, req: CcmpRequest) -> CcmpResponse:
    from ccmp_server.codec import decode_response, encode_request

    status, body = await client.raw(encode_request(req))
    assert status == 200
    return decode_response(body)


async def test_no_credentials_is_424(client: Client) -> None:
    resp = await _send_raw(client, CcmpRequest(MT.BLUEPRINTS, conf_user_id=user_id("alice")))
    assert resp.code is R.AUTHENTICATION_REQUIRED


@pytest.mark.parametrize(
    "subject", [Subject("alice", "wrong"), Subject("alice", None), Subject("mallory", "x")]
)
async def test_bad_credentials_are_424(client: Client, subject: Subject) -> None:
    resp = await _send_raw(client, CcmpRequest(MT.BLUEPRINTS, subject=subject))
    assert resp.code is R.AUTHENTICATION_REQUIRED


async def test_unknown_conf_user_id_is_421(client: Client) -> None:
    req = CcmpRequest(
        MT.BLUEPRINTS, subject=Subject("alice", "pw-alice"), conf_user_id=user_id("ghost")
    )
    assert (await _send_raw(client, req)).code is R.INVALID_CONF_USER_ID


async def test_someone_elses_conf_user_id_is_401(client: Client) -> None:
    req = CcmpRequest(
        MT.BLUEPRINTS, subject=Subject("alice", "pw-alice"), conf_user_id=user_id("admin")
    )
    assert (await _send_raw(client, req)).code is R.UNAUTHORIZED


async def test_missing_conf_user_id_is_taken_from_the_account(client: Client) -> None:
    req = CcmpRequest(MT.BLUEPRINTS, subject=Subject("bob", "pw-bob"))
    resp = await _send_raw(client, req)
    assert resp.code is R.SUCCESS and resp.conf_user_id == user_id("bob")


async def test_refused_requests_change_nothing(client: Client, store: ConferenceStore) -> None:
    made = await client.as_("admin").send(CcmpRequest(MT.CONF, operation=Operation.CREATE))
    before = {o.uri: o.version for o in store.objects()}
    for name in ("bob", "olga", "nobody"):
        resp = await client.as_(name).send(
            CcmpRequest(MT.CONF, operation=Operation.DELETE, conf_obj_id=made.conf_obj_id)
        )
        assert resp.code is R.UNAUTHORIZED
    anonymous = await _send_raw(
        client, CcmpRequest(MT.CONF, operation=Operation.DELETE, conf_obj_id=made.conf_obj_id)
    )
    assert anonymous.code is R.AUTHENTICATION_REQUIRED
    assert {o.uri: o.version for o in store.objects()} == before
