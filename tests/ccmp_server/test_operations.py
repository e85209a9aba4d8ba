"""Every RFC 6503 s5.3 message pair and operation over real HTTP, with s5.4 response codes."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from lxml import etree

from ccmp_server.app import CcmpConfig, start_ccmp
from ccmp_server.dispatch import CONF_SUMMARY_NS
from ccmp_server.messages import (
    INFO_NS,
    XCON_NS,
    CcmpRequest,
    CcmpResponse,
    MessageType,
    Operation,
    ResponseCode,
)
from focus.core.core import CoreConfig
from focus.core.store import ConferenceStore
from tests.ccmp_server.conftest import ACCOUNTS, Client, user_id

CI = f"{{{INFO_NS}}}"
R = ResponseCode


def conf_info(
    body: str, entity: str = "xcon:AUTO_GENERATE_1@example.com", **attrs: str
) -> etree._Element:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return etree.fromstring(
        f'<confInfo xmlns:ci="{INFO_NS}" xmlns:xcon="{XCON_NS}" '
        f'entity="{entity}"{extra}>{body}</confInfo>'.encode()
    )


def user_info(entity: str, body: str = "") -> etree._Element:
    return etree.fromstring(
        f'<userInfo xmlns:ci="{INFO_NS}" entity="{entity}">{body}</userInfo>'.encode()
    )


def title(text: str) -> str:
    return (
        f"<ci:conference-description><ci:display-text>{text}</ci:display-text>"
        "</ci:conference-description>"
    )


def conf(op: Operation, obj: str | None = None, **kw: object) -> CcmpRequest:
    return CcmpRequest(MessageType.CONF, operation=op, conf_obj_id=obj, **kw)  # type: ignore[arg-type]


def display_text(resp: CcmpResponse) -> str | None:
    assert resp.info is not None
    found = resp.info.find(f"{CI}conference-description/{CI}display-text")
    return None if found is None else (found.text or "").strip()


async def create(client: Client, source: str | None = None, **kw: object) -> CcmpResponse:
    resp = await client.send(conf(Operation.CREATE, source, **kw))
    assert resp.code is R.SUCCESS, resp.response_string
    return resp


# ---------------------------------------------------------------- blueprints


async def test_blueprints_list_and_retrieve(client: Client) -> None:
    resp = await client.send(CcmpRequest(MessageType.BLUEPRINTS))
    assert resp.code is R.SUCCESS
    assert resp.operation is None and resp.conf_obj_id is None
    uris = {u.uri for u in resp.uris or ()}
    assert {"xcon:AudioRoom@example.com", "xcon:VideoRoom@example.com"} <= uris
    one = await client.send(
        CcmpRequest(
            MessageType.BLUEPRINT,
            operation=Operation.RETRIEVE,
            conf_obj_id="xcon:AudioRoom@example.com",
        )
    )
    assert one.code is R.SUCCESS
    assert one.operation is Operation.RETRIEVE
    assert one.info is not None and one.info.get("entity") == "xcon:AudioRoom@example.com"
    assert one.version is not None


def blueprint(op: Operation, obj: str | None = None, **kw: object) -> CcmpRequest:
    return CcmpRequest(MessageType.BLUEPRINT, operation=op, conf_obj_id=obj, **kw)  # type: ignore[arg-type]


def blueprint_info(body: str, entity: str = "xcon:AUTO_GENERATE_1@example.com") -> etree._Element:
    el = conf_info(body, entity)
    el.tag = "blueprintInfo"
    return el


async def test_administrators_write_blueprints(client: Client) -> None:
    # RFC 6503 s5.3.3: create/update/delete are for privileged users only.
    admin = client.as_("admin")
    made = await admin.send(blueprint(Operation.CREATE, info=blueprint_info(title("Lecture"))))
    assert made.code is R.SUCCESS, made.response_string
    uri = made.conf_obj_id
    assert uri and uri.startswith("xcon:") and made.version == 1
    assert made.info is not None and made.info.get("entity") == uri
    listed = await client.send(CcmpRequest(MessageType.BLUEPRINTS))
    assert listed.uris is not None and uri in [e.uri for e in listed.uris]
    # a conference created from it, by an ordinary user
    made_conf = await create(client, uri)
    got = await client.send(conf(Operation.RETRIEVE, made_conf.conf_obj_id))
    assert display_text(got) == "Lecture"

    updated = await admin.send(
        blueprint(Operation.UPDATE, uri, info=blueprint_info(title("Seminar"), uri))
    )
    assert updated.code is R.SUCCESS and updated.version == 2
    stale = blueprint_info(title("Old"), uri)
    stale.set("version", "1")
    refused = await admin.send(blueprint(Operation.UPDATE, uri, info=stale))
    assert refused.code is R.CONFLICT and refused.version == 2
    copy = await admin.send(blueprint(Operation.CREATE, uri))
    assert copy.code is R.SUCCESS and copy.conf_obj_id not in (uri, None)

    for op in (Operation.UPDATE, Operation.DELETE):  # ordinary users: 401
        resp = await client.as_("mod").send(
            blueprint(op, uri, info=blueprint_info(title("x"), uri))
            if op is Operation.UPDATE
            else blueprint(op, uri)
        )
        assert resp.code is R.UNAUTHORIZED, resp.response_string
    gone = await admin.send(blueprint(Operation.DELETE, uri))
    assert gone.code is R.SUCCESS
    again = await client.send(blueprint(Operation.RETRIEVE, uri))
    assert again.code is R.OBJECT_NOT_FOUND


async def test_blueprint_files_cannot_be_changed_over_ccmp(client: Client) -> None:
    audio = "xcon:AudioRoom@example.com"
    for req in (
        blueprint(Operation.UPDATE, audio, info=blueprint_info(title("x"), audio)),
        blueprint(Operation.DELETE, audio),  # s5.4: 403 "e.g., cancellation of a blueprint"
    ):
        resp = await client.as_("admin").send(req)
        assert resp.code is R.FORBIDDEN, resp.response_string
    both = await client.as_("admin").send(
        blueprint(Operation.CREATE, audio, info=blueprint_info(title("x")))
    )
    assert both.code is R.BAD_REQUEST
    secret = blueprint_info(
        "<ci:conference-description><ci:conf-uris><ci:entry><ci:uri>sip:x@example.com</ci:uri>"
        "<xcon:conference-password>s</xcon:conference-password></ci:entry></ci:conf-uris>"
        "</ci:conference-description>"
    )
    resp = await client.as_("admin").send(blueprint(Operation.CREATE, info=secret))
    assert resp.code is R.BAD_REQUEST


async def test_blueprint_retrieve_of_a_conference_is_404(client: Client) -> None:
    made = await create(client)
    resp = await client.send(
        CcmpRequest(
            MessageType.BLUEPRINT, operation=Operation.RETRIEVE, conf_obj_id=made.conf_obj_id
        )
    )
    assert resp.code is R.OBJECT_NOT_FOUND


async def test_blueprints_xpath_filter(client: Client) -> None:
    video = "/conference-info[conference-description/available-media/entry/type='video']"
    resp = await client.send(CcmpRequest(MessageType.BLUEPRINTS, xpath_filter=video))
    uris = {u.uri for u in resp.uris or ()}
    assert "xcon:VideoRoom@example.com" in uris
    assert "xcon:AudioRoom@example.com" not in uris
    bad = await client.send(CcmpRequest(MessageType.BLUEPRINTS, xpath_filter="//entry"))
    assert bad.code is R.BAD_REQUEST


# ---------------------------------------------------------------- conf


async def test_conf_create_default_retrieve_update_delete(
    client: Client, store: ConferenceStore
) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    assert uri is not None and uri.startswith("xcon:") and uri.endswith("@example.com")
    assert made.version == 1
    assert made.info is not None and made.info.get("entity") == uri
    got = await client.send(conf(Operation.RETRIEVE, uri))
    assert got.code is R.SUCCESS and got.version == 1
    upd = await client.send(conf(Operation.UPDATE, uri, info=conf_info(title("New title"), uri)))
    assert upd.code is R.SUCCESS and upd.version == 2
    got = await client.send(conf(Operation.RETRIEVE, uri))
    assert display_text(got) == "New title" and got.version == 2
    listed = await client.send(CcmpRequest(MessageType.CONFS))
    assert uri in {u.uri for u in listed.uris or ()}
    gone = await client.send(conf(Operation.DELETE, uri))
    assert gone.code is R.SUCCESS and gone.conf_obj_id == uri and gone.info is None
    assert store.get(uri) is None
    again = await client.send(conf(Operation.RETRIEVE, uri))
    assert again.code is R.OBJECT_NOT_FOUND


async def test_conf_create_by_cloning_a_blueprint_and_a_conference(client: Client) -> None:
    made = await create(client, "xcon:VideoRoom@example.com")
    assert made.info is not None
    types = {e.text for e in made.info.iter(f"{CI}type")}
    assert "video" in types
    clone = await create(client, made.conf_obj_id)
    assert clone.conf_obj_id not in (None, made.conf_obj_id)


async def test_conf_create_from_conf_info_with_auto_generate(client: Client) -> None:
    made = await create(client, info=conf_info(title("Mine")))
    assert made.conf_obj_id is not None and "AUTO_GENERATE" not in made.conf_obj_id
    assert display_text(made) == "Mine"


async def test_auto_generate_outside_our_domain_is_427(client: Client) -> None:
    resp = await client.send(
        conf(Operation.CREATE, info=conf_info(title("x"), "xcon:AUTO_GENERATE_1@elsewhere.org"))
    )
    assert resp.code is R.INVALID_DOMAIN_NAME


async def test_auto_generate_outside_a_value_is_400(client: Client) -> None:
    info = conf_info("<AUTO_GENERATE_1/>")
    resp = await client.send(conf(Operation.CREATE, info=info))
    assert resp.code is R.BAD_REQUEST


async def test_create_with_both_clone_source_and_info_is_400(client: Client) -> None:
    resp = await client.send(
        conf(Operation.CREATE, "xcon:AudioRoom@example.com", info=conf_info(title("x")))
    )
    assert resp.code is R.BAD_REQUEST


async def test_stale_update_is_409_with_current_version(client: Client) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    assert uri is not None
    ok = await client.send(
        conf(Operation.UPDATE, uri, info=conf_info(title("a"), uri, version="1"))
    )
    assert ok.code is R.SUCCESS and ok.version == 2
    stale = await client.send(
        conf(Operation.UPDATE, uri, info=conf_info(title("b"), uri, version="1"))
    )
    assert stale.code is R.CONFLICT
    assert stale.version == 2
    got = await client.send(conf(Operation.RETRIEVE, uri))
    assert display_text(got) == "a"


async def test_conf_operations_on_wrong_kinds_are_404(client: Client) -> None:
    for op in (Operation.RETRIEVE, Operation.UPDATE, Operation.DELETE):
        resp = await client.send(
            conf(
                op,
                "xcon:AudioRoom@example.com",
                info=conf_info(title("x"), "xcon:AudioRoom@example.com"),
            )
        )
        assert resp.code is R.OBJECT_NOT_FOUND, op
    resp = await client.send(conf(Operation.RETRIEVE, "xcon:nothing@example.com"))
    assert resp.code is R.OBJECT_NOT_FOUND


async def test_missing_parameters_are_400(client: Client) -> None:
    for req in (
        CcmpRequest(MessageType.CONF),  # no operation
        conf(Operation.RETRIEVE),  # no confObjID
        conf(Operation.UPDATE, "xcon:x@example.com"),  # no confInfo
        CcmpRequest(MessageType.CONFS, operation=Operation.RETRIEVE),
        CcmpRequest(MessageType.CONFS, conf_obj_id="xcon:x@example.com"),
        CcmpRequest(MessageType.USERS, operation=Operation.RETRIEVE),
    ):
        resp = await client.send(req)
        assert resp.code is R.BAD_REQUEST, req
        assert resp.message_type is req.message_type


# ---------------------------------------------------------------- passwords


async def test_password_protected_conference(client: Client) -> None:
    body = (
        "<ci:conference-description><ci:display-text>Secret</ci:display-text>"
        "<ci:conf-uris><ci:entry><ci:uri>sip:secret@example.com</ci:uri>"
        "<xcon:conference-password>1234</xcon:conference-password></ci:entry></ci:conf-uris>"
        "</ci:conference-description>"
    )
    made = await create(client, info=conf_info(body))
    uri = made.conf_obj_id
    bob = client.as_("bob")
    missing = await bob.send(conf(Operation.RETRIEVE, uri))
    assert missing.code is R.CONFERENCE_PASSWORD_REQUIRED
    wrong = await bob.send(conf(Operation.RETRIEVE, uri, conference_password="0000"))
    assert wrong.code is R.INVALID_CONFERENCE_PASSWORD
    right = await bob.send(conf(Operation.RETRIEVE, uri, conference_password="1234"))
    assert right.code is R.SUCCESS
    # A participant does not get the password back in the document.
    assert right.info is not None and b"1234" not in etree.tostring(right.info)
    join = await bob.send(
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id=uri)
    )
    assert join.code is R.CONFERENCE_PASSWORD_REQUIRED
    join = await bob.send(
        CcmpRequest(
            MessageType.USER,
            operation=Operation.CREATE,
            conf_obj_id=uri,
            conference_password="1234",
        )
    )
    assert join.code is R.SUCCESS
    # Whoever runs the conference gets the password back (she may hand it out).
    own = await client.send(conf(Operation.RETRIEVE, uri, conference_password="1234"))
    assert own.info is not None and b"1234" in etree.tostring(own.info)


SECRET = (
    "<ci:conference-description><ci:conf-uris><ci:entry><ci:uri>sip:s@example.com</ci:uri>"
    "<xcon:conference-password>1234</xcon:conference-password></ci:entry></ci:conf-uris>"
    "</ci:conference-description>"
)


async def test_rfc6503_s5_1_the_creator_too_must_give_the_password(client: Client) -> None:
    # "MUST be inserted in all requests whose target conference object is password-
    # protected": 423 for the creator and for an administrator as well.
    uri = (await create(client, info=conf_info(SECRET))).conf_obj_id
    assert uri is not None
    sidebar = await client.send(
        CcmpRequest(
            MessageType.SIDEBAR_BY_REF,
            operation=Operation.CREATE,
            conf_obj_id=uri,
            conference_password="1234",
        )
    )
    assert sidebar.code is R.SUCCESS and sidebar.conf_obj_id is not None
    requests = [
        conf(Operation.RETRIEVE, uri),
        conf(Operation.UPDATE, uri, info=conf_info(title("T"), entity=uri)),
        conf(Operation.DELETE, uri),
        CcmpRequest(MessageType.USERS, operation=Operation.RETRIEVE, conf_obj_id=uri),
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id=uri),
        CcmpRequest(MessageType.SIDEBARS_BY_REF, conf_obj_id=uri),
        CcmpRequest(
            MessageType.SIDEBAR_BY_REF, operation=Operation.DELETE, conf_obj_id=sidebar.conf_obj_id
        ),
    ]
    for who in ("alice", "admin"):
        for req in requests:
            answer = await client.as_(who).send(req)
            assert answer.code is R.CONFERENCE_PASSWORD_REQUIRED, (who, req, answer)
    deleted = await client.send(
        CcmpRequest(
            MessageType.SIDEBAR_BY_REF,
            operation=Operation.DELETE,
            conf_obj_id=sidebar.conf_obj_id,
            conference_password="1234",
        )
    )
    assert deleted.code is R.SUCCESS
    delete = await client.send(conf(Operation.DELETE, uri, conference_password="1234"))
    assert delete.code is R.SUCCESS


async def test_rfc6503_s5_1_administrators_exempt_only_by_the_server_option(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    store = ConferenceStore.open(
        tmp_path / "exempt",
        CoreConfig(domain="example.com", exempt_administrators_from_passwords=True),
        scrypt_n=2**4,
    )
    for name, role in ACCOUNTS.items():
        store.accounts.add(name, role, f"pw-{name}")
    server = await start_ccmp(store, CcmpConfig(port=0))
    try:
        alice = Client(session, server.url, "alice")
        uri = (await create(alice, info=conf_info(SECRET))).conf_obj_id
        admin = await alice.as_("admin").send(conf(Operation.RETRIEVE, uri))
        assert admin.code is R.SUCCESS
        creator = await alice.send(conf(Operation.RETRIEVE, uri))
        assert creator.code is R.CONFERENCE_PASSWORD_REQUIRED
    finally:
        await server.close()
        store.close()


# ---------------------------------------------------------------- users / user


async def test_users_retrieve_and_update(client: Client) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    got = await client.send(
        CcmpRequest(MessageType.USERS, operation=Operation.RETRIEVE, conf_obj_id=uri)
    )
    assert got.code is R.SUCCESS and got.info is not None and got.version == 1
    patch = etree.fromstring(
        b'<usersInfo xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info">'
        b"<xcon:join-handling>block</xcon:join-handling></usersInfo>"
    )
    upd = await client.send(
        CcmpRequest(MessageType.USERS, operation=Operation.UPDATE, conf_obj_id=uri, info=patch)
    )
    assert upd.code is R.SUCCESS and upd.version == 2
    for op in (Operation.CREATE, Operation.DELETE):
        resp = await client.send(CcmpRequest(MessageType.USERS, operation=op, conf_obj_id=uri))
        assert resp.code is R.FORBIDDEN


async def test_user_lifecycle_third_party_mute_and_remove(client: Client) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    add = await client.send(
        CcmpRequest(
            MessageType.USER,
            operation=Operation.CREATE,
            conf_obj_id=uri,
            info=user_info(
                "xcon-userid:AUTO_GENERATE_1@example.com",
                "<ci:display-text>Ciccio</ci:display-text>"
                '<ci:endpoint entity="sip:ciccio@example.com"><ci:media id="1">'
                "<ci:type>audio</ci:type><ci:status>sendrecv</ci:status></ci:media></ci:endpoint>",
            ),
        )
    )
    assert add.code is R.SUCCESS, add.response_string
    assert add.info is not None
    new_id = add.info.get("entity")
    assert new_id and "AUTO_GENERATE" not in new_id
    assert add.version == 2
    got = await client.send(
        CcmpRequest(
            MessageType.USER, operation=Operation.RETRIEVE, conf_obj_id=uri, info=user_info(new_id)
        )
    )
    assert got.code is R.SUCCESS
    mute = await client.send(
        CcmpRequest(
            MessageType.USER,
            operation=Operation.UPDATE,
            conf_obj_id=uri,
            info=user_info(
                new_id,
                '<ci:endpoint entity="sip:ciccio@example.com"><ci:media id="1">'
                "<ci:status>recvonly</ci:status></ci:media></ci:endpoint>",
            ),
        )
    )
    assert mute.code is R.SUCCESS and mute.version == 3
    got = await client.send(
        CcmpRequest(
            MessageType.USER, operation=Operation.RETRIEVE, conf_obj_id=uri, info=user_info(new_id)
        )
    )
    assert got.info is not None
    assert [s.text for s in got.info.iter(f"{CI}status")] == ["recvonly"]
    gone = await client.send(
        CcmpRequest(
            MessageType.USER, operation=Operation.DELETE, conf_obj_id=uri, info=user_info(new_id)
        )
    )
    assert gone.code is R.SUCCESS and gone.info is None
    missing = await client.send(
        CcmpRequest(
            MessageType.USER, operation=Operation.RETRIEVE, conf_obj_id=uri, info=user_info(new_id)
        )
    )
    assert missing.code is R.USER_NOT_FOUND


async def test_self_join_and_leave(client: Client) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    bob = client.as_("bob")
    join = await bob.send(
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id=uri)
    )
    assert join.code is R.SUCCESS
    again = await bob.send(
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id=uri)
    )
    assert again.code is R.CONFLICT
    me = await bob.send(
        CcmpRequest(MessageType.USER, operation=Operation.RETRIEVE, conf_obj_id=uri)
    )
    assert me.code is R.SUCCESS and me.info is not None
    assert me.info.get("entity") == user_id("bob")
    leave = await bob.send(
        CcmpRequest(MessageType.USER, operation=Operation.DELETE, conf_obj_id=uri)
    )
    assert leave.code is R.SUCCESS


# ---------------------------------------------------------------- sidebars


async def test_sidebars_by_val_and_by_ref(client: Client, store: ConferenceStore) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    assert uri is not None
    for by_ref in (False, True):
        one = MessageType.SIDEBAR_BY_REF if by_ref else MessageType.SIDEBAR_BY_VAL
        many = MessageType.SIDEBARS_BY_REF if by_ref else MessageType.SIDEBARS_BY_VAL
        side = await client.send(CcmpRequest(one, operation=Operation.CREATE, conf_obj_id=uri))
        assert side.code is R.SUCCESS, side.response_string
        side_uri = side.conf_obj_id
        assert side_uri and side_uri != uri and side.version == 1
        listed = await client.send(CcmpRequest(many, conf_obj_id=uri))
        assert listed.code is R.SUCCESS and listed.version is not None
        if by_ref:
            assert side_uri in {u.uri for u in listed.uris or ()}
        else:
            assert listed.info is not None
            assert side_uri in {e.get("entity") for e in listed.info}
        got = await client.send(
            CcmpRequest(one, operation=Operation.RETRIEVE, conf_obj_id=side_uri)
        )
        assert got.code is R.SUCCESS
        upd = await client.send(
            CcmpRequest(
                one,
                operation=Operation.UPDATE,
                conf_obj_id=side_uri,
                info=conf_info(title("side"), side_uri),
            )
        )
        assert upd.code is R.SUCCESS and upd.version == 2
        other = MessageType.SIDEBAR_BY_VAL if by_ref else MessageType.SIDEBAR_BY_REF
        wrong = await client.send(
            CcmpRequest(other, operation=Operation.RETRIEVE, conf_obj_id=side_uri)
        )
        assert wrong.code is R.OBJECT_NOT_FOUND
        parent_delete = await client.send(conf(Operation.DELETE, uri))
        assert parent_delete.code is R.FORBIDDEN_DELETE_PARENT
        gone = await client.send(CcmpRequest(one, operation=Operation.DELETE, conf_obj_id=side_uri))
        assert gone.code is R.SUCCESS
        assert store.get(side_uri) is None


# ---------------------------------------------------------------- options, extended


async def test_options_lists_every_pair_and_the_extension(client: Client) -> None:
    resp = await client.send(CcmpRequest(MessageType.OPTIONS))
    assert resp.code is R.SUCCESS and resp.options is not None
    names = {m.name for m in resp.options.standard}
    assert len(names) == 10 and "sidebarByRefRequest" in names
    blueprints = next(m for m in resp.options.standard if m.name == "blueprintRequest")
    assert blueprints.operations == (Operation.RETRIEVE,)  # alice may not write them
    resp = await client.as_("admin").send(CcmpRequest(MessageType.OPTIONS))
    assert resp.options is not None
    blueprints = next(m for m in resp.options.standard if m.name == "blueprintRequest")
    assert set(blueprints.operations) == set(Operation)
    assert [m.name for m in resp.options.extended] == ["confSummaryRequest"]


async def test_conf_summary_extension(client: Client) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    await client.send(
        conf(Operation.UPDATE, uri, info=conf_info(title("Alice's conference"), uri or ""))
    )
    resp = await client.send(
        CcmpRequest(
            MessageType.EXTENDED,
            operation=Operation.RETRIEVE,
            conf_obj_id=made.conf_obj_id,
            extension_name="confRequestSummary",
        )
    )
    assert resp.code is R.SUCCESS
    assert resp.extension_name == "confSummaryRequest"
    (summary,) = resp.extension_payload
    assert summary.tag == f"{{{CONF_SUMMARY_NS}}}confSummary"
    fields = {c.tag: c.text for c in summary}
    assert fields["title"] == "Alice's conference"
    assert fields["status"] == "active"
    assert fields["media"] == "audio"
    unknown = await client.send(
        CcmpRequest(
            MessageType.EXTENDED,
            operation=Operation.RETRIEVE,
            conf_obj_id=made.conf_obj_id,
            extension_name="frob",
        )
    )
    assert unknown.code is R.NOT_IMPLEMENTED


# ---------------------------------------------------------------- more of Table 2


async def test_third_party_add_of_an_unknown_user_is_420(client: Client) -> None:
    made = await create(client)
    resp = await client.send(
        CcmpRequest(
            MessageType.USER,
            operation=Operation.CREATE,
            conf_obj_id=made.conf_obj_id,
            info=user_info("xcon-userid:ghost@example.com"),
        )
    )
    assert resp.code is R.USER_NOT_FOUND


async def test_user_request_on_a_missing_conference_is_404(client: Client) -> None:
    resp = await client.send(
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id="xcon:no@example.com")
    )
    assert resp.code is R.OBJECT_NOT_FOUND


async def test_changing_a_parent_enforced_element_in_a_sidebar_is_426(client: Client) -> None:
    made = await create(client)
    side = await client.send(
        CcmpRequest(
            MessageType.SIDEBAR_BY_REF, operation=Operation.CREATE, conf_obj_id=made.conf_obj_id
        )
    )
    assert side.conf_obj_id
    body = (
        "<ci:conference-description><ci:maximum-user-count>3</ci:maximum-user-count>"
        "</ci:conference-description>"
    )
    resp = await client.send(
        CcmpRequest(
            MessageType.SIDEBAR_BY_REF,
            operation=Operation.UPDATE,
            conf_obj_id=side.conf_obj_id,
            info=conf_info(body, side.conf_obj_id),
        )
    )
    assert resp.code is R.FORBIDDEN_CHANGE_PROTECTED


async def test_a_full_conference_is_511(client: Client) -> None:
    body = (
        "<ci:conference-description><ci:display-text>tiny</ci:display-text>"
        "<ci:maximum-user-count>1</ci:maximum-user-count></ci:conference-description>"
    )
    made = await create(client, info=conf_info(body))
    first = await client.as_("bob").send(
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id=made.conf_obj_id)
    )
    assert first.code is R.SUCCESS
    second = await client.as_("olga").send(
        CcmpRequest(MessageType.USER, operation=Operation.CREATE, conf_obj_id=made.conf_obj_id)
    )
    assert second.code is R.RESOURCES_NOT_AVAILABLE


async def test_an_update_applies_wholly_or_not_at_all(client: Client) -> None:
    made = await create(client)
    uri = made.conf_obj_id
    assert uri is not None
    body = (
        "<ci:conference-description><ci:display-text>half</ci:display-text>"
        "<ci:maximum-user-count>-5</ci:maximum-user-count></ci:conference-description>"
    )
    resp = await client.send(conf(Operation.UPDATE, uri, info=conf_info(body, uri)))
    assert resp.code in (R.BAD_REQUEST, R.CONFLICT)
    got = await client.send(conf(Operation.RETRIEVE, uri))
    assert got.version == 1
    assert display_text(got) != "half"


async def test_concurrent_updates_of_one_version_exactly_one_wins(client: Client) -> None:
    import asyncio

    made = await create(client)
    uri = made.conf_obj_id
    assert uri is not None
    answers = await asyncio.gather(
        *(
            client.send(
                conf(Operation.UPDATE, uri, info=conf_info(title(f"t{i}"), uri, version="1"))
            )
            for i in range(8)
        )
    )
    codes = sorted(int(a.code) for a in answers)
    assert codes == [200] + [409] * 7
    assert all(a.version == 2 for a in answers)


async def test_sidebar_create_in_a_missing_conference_is_404(client: Client) -> None:
    for kind in (MessageType.SIDEBAR_BY_VAL, MessageType.SIDEBAR_BY_REF):
        resp = await client.send(
            CcmpRequest(kind, operation=Operation.CREATE, conf_obj_id="xcon:gone@example.com")
        )
        assert resp.code is R.OBJECT_NOT_FOUND


async def test_invalid_conf_user_id_is_421_for_every_operation(client: Client) -> None:
    made = await create(client)
    for op in Operation:
        resp = await client.send(
            conf(op, made.conf_obj_id, conf_user_id="xcon-userid:nobody-here@example.com")
        )
        assert resp.code is R.INVALID_CONF_USER_ID, op


# ---------------------------------------------------------------- s5.3.6 without XCON-USERID


def _guest(conf_obj_id: str | None, contact: str = "sip:guest@192.0.2.9") -> CcmpRequest:
    body = f'<ci:endpoint entity="{contact}"/>'
    return CcmpRequest(
        MessageType.USER,
        operation=Operation.CREATE,
        conf_obj_id=conf_obj_id,
        info=user_info("xcon-userid:AUTO_GENERATE_1@example.com", body),
    )


async def test_a_client_without_xcon_userid_joins_and_gets_one(
    store: ConferenceStore, session: aiohttp.ClientSession
) -> None:
    server = await start_ccmp(store, CcmpConfig(port=0, allow_anonymous_join=True))
    try:
        alice = Client(session, server.url, "alice")
        guest = alice.as_(None)  # no <subject>, no confUserID, no HTTP auth
        public = (await create(alice)).conf_obj_id  # AudioRoom: admission "anonymous"
        closed = (await create(alice)).conf_obj_id
        patch = etree.fromstring(
            f'<usersInfo xmlns:xcon="{XCON_NS}">'
            "<xcon:user-admission-policy>openAuthenticated</xcon:user-admission-policy>"
            "</usersInfo>".encode()
        )
        changed = await alice.send(
            CcmpRequest(
                MessageType.USERS, operation=Operation.UPDATE, conf_obj_id=closed, info=patch
            )
        )
        assert changed.code is R.SUCCESS, changed.response_string

        joined = await guest.send(_guest(public))
        assert joined.code is R.SUCCESS, joined.response_string
        new_id = joined.conf_user_id
        assert new_id.startswith("xcon-userid:") and new_id.endswith("@example.com")
        assert "AUTO_GENERATE" not in new_id
        assert joined.info is not None and joined.info.get("entity") == new_id
        users = await alice.send(
            CcmpRequest(MessageType.USERS, operation=Operation.RETRIEVE, conf_obj_id=public)
        )
        assert users.info is not None and new_id.encode() in etree.tostring(users.info)

        refused = await guest.send(_guest(closed))  # authenticated users only there
        assert refused.code is R.AUTHENTICATION_REQUIRED
        anything_else = await guest.send(CcmpRequest(MessageType.CONFS))
        assert anything_else.code is R.AUTHENTICATION_REQUIRED
        no_contact = await guest.send(
            CcmpRequest(
                MessageType.USER,
                operation=Operation.CREATE,
                conf_obj_id=public,
                info=user_info("xcon-userid:AUTO_GENERATE_1@example.com"),
            )
        )
        assert no_contact.code is R.BAD_REQUEST
    finally:
        await server.close()


async def test_without_the_option_every_request_authenticates(client: Client) -> None:
    public = (await create(client)).conf_obj_id
    resp = await client.as_(None).send(_guest(public))
    assert resp.code is R.AUTHENTICATION_REQUIRED


def test_rfc6503_s5_1_the_exemption_is_a_serve_flag_off_by_default(tmp_path: Path) -> None:
    from focus.__main__ import build_parser
    from focus.app import core_config
    from focus.settings import FocusSettings

    parser = build_parser()
    assert parser.parse_args(["serve"]).exempt_administrators_from_passwords is False
    args = parser.parse_args(["serve", "--exempt-administrators-from-passwords"])
    assert args.exempt_administrators_from_passwords is True
    settings = FocusSettings(state_dir=tmp_path, exempt_administrators_from_passwords=True)
    assert core_config(settings).exempt_administrators_from_passwords is True
    assert (
        core_config(FocusSettings(state_dir=tmp_path)).exempt_administrators_from_passwords is False
    )


async def test_rfc6503_s5_3_7_s5_3_9_both_sidebar_lists_filter_alike(client: Client) -> None:
    # One handler serves sidebarsByVal and sidebarsByRef: the same sidebars pass the same
    # xpathFilter; by value they come as documents, by reference as URIs with their titles.
    uri = (await create(client)).conf_obj_id
    assert uri is not None
    for by_ref in (False, True):
        one = MessageType.SIDEBAR_BY_REF if by_ref else MessageType.SIDEBAR_BY_VAL
        many = MessageType.SIDEBARS_BY_REF if by_ref else MessageType.SIDEBARS_BY_VAL
        made = {}
        for text in ("whisper", "coaching"):
            side = await client.send(
                CcmpRequest(
                    one,
                    operation=Operation.CREATE,
                    conf_obj_id=uri,
                    info=conf_info(title(text)),
                )
            )
            assert side.code is R.SUCCESS and side.conf_obj_id, side.response_string
            made[text] = side.conf_obj_id
        wanted = "/conference-info[conference-description/display-text='coaching']"
        listed = await client.send(CcmpRequest(many, conf_obj_id=uri, xpath_filter=wanted))
        assert listed.code is R.SUCCESS, listed.response_string
        if by_ref:
            assert [(u.uri, u.display_text) for u in listed.uris or ()] == [
                (made["coaching"], "coaching")
            ]
        else:
            assert listed.info is not None
            assert [e.get("entity") for e in listed.info] == [made["coaching"]]
        everything = await client.send(CcmpRequest(many, conf_obj_id=uri))
        docs = everything.info if everything.info is not None else ()
        found = (
            {u.uri for u in everything.uris or ()} if by_ref else {e.get("entity") for e in docs}
        )
        assert found == set(made.values())
        for side_uri in made.values():
            gone = await client.send(
                CcmpRequest(one, operation=Operation.DELETE, conf_obj_id=side_uri)
            )
            assert gone.code is R.SUCCESS
