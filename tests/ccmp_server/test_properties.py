"""Random request sequences over HTTP: a refused request changes nothing, an accepted
mutation moves its object's version by exactly one (RFC 6503 s4.2), reads change nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ccmp_server.messages import (
    INFO_NS,
    CcmpRequest,
    MessageType,
    Operation,
    ResponseCode,
)
from focus.core.store import ConferenceStore
from tests.ccmp_server.conftest import ACCOUNTS, Client, user_id

ACTORS = st.sampled_from(sorted(ACCOUNTS))
STEP = st.tuples(
    ACTORS,
    st.sampled_from(
        [
            "create",
            "retrieve",
            "update",
            "stale-update",
            "delete",
            "join",
            "leave",
            "add-carol",
            "mute-carol",
            "sidebar",
            "users",
        ]
    ),
    st.integers(min_value=0, max_value=3),
)


def _request(kind: str, target: str | None, actor: str) -> CcmpRequest:
    def info(tag: str, entity: str, body: str = "", version: str = "") -> etree._Element:
        v = f' version="{version}"' if version else ""
        return etree.fromstring(
            f'<{tag} xmlns:ci="{INFO_NS}" entity="{entity}"{v}>{body}</{tag}>'.encode()
        )

    title = (
        "<ci:conference-description><ci:display-text>t</ci:display-text>"
        "</ci:conference-description>"
    )
    media = (
        '<ci:endpoint entity="sip:carol@example.com"><ci:media id="1">'
        "<ci:status>recvonly</ci:status></ci:media></ci:endpoint>"
    )
    u, c = MessageType.USER, MessageType.CONF
    t = target or "xcon:none@example.com"
    return {
        "create": lambda: CcmpRequest(c, operation=Operation.CREATE),
        "retrieve": lambda: CcmpRequest(c, operation=Operation.RETRIEVE, conf_obj_id=t),
        "update": lambda: CcmpRequest(
            c, operation=Operation.UPDATE, conf_obj_id=t, info=info("confInfo", t, title)
        ),
        "stale-update": lambda: CcmpRequest(
            c,
            operation=Operation.UPDATE,
            conf_obj_id=t,
            info=info("confInfo", t, title, version="1"),
        ),
        "delete": lambda: CcmpRequest(c, operation=Operation.DELETE, conf_obj_id=t),
        "join": lambda: CcmpRequest(u, operation=Operation.CREATE, conf_obj_id=t),
        "leave": lambda: CcmpRequest(u, operation=Operation.DELETE, conf_obj_id=t),
        "add-carol": lambda: CcmpRequest(
            u, operation=Operation.CREATE, conf_obj_id=t, info=info("userInfo", user_id("carol"))
        ),
        "mute-carol": lambda: CcmpRequest(
            u,
            operation=Operation.UPDATE,
            conf_obj_id=t,
            info=info("userInfo", user_id("carol"), media),
        ),
        "sidebar": lambda: CcmpRequest(
            MessageType.SIDEBAR_BY_VAL, operation=Operation.CREATE, conf_obj_id=t
        ),
        "users": lambda: CcmpRequest(
            MessageType.USERS, operation=Operation.RETRIEVE, conf_obj_id=t
        ),
    }[kind]()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=12))
async def test_versions_and_refusals(
    client: Client, store: ConferenceStore, steps: list[tuple[str, str, int]]
) -> None:
    for actor, kind, pick in steps:
        confs = sorted(o.uri for o in store.objects() if o.kind.value == "conference")
        target = confs[pick % len(confs)] if confs else None
        before = {o.uri: o.version for o in store.objects()}
        req = _request(kind, target, actor)
        resp = await client.as_(actor).send(req)
        after = {o.uri: o.version for o in store.objects()}
        if resp.code is not ResponseCode.SUCCESS or req.operation is Operation.RETRIEVE:
            assert after == before, (actor, kind, resp.code, resp.response_string)
            continue
        if kind == "create" or kind == "sidebar":
            assert resp.conf_obj_id in after and resp.conf_obj_id not in before
            assert after[resp.conf_obj_id] == 1
        elif kind == "delete":
            assert target not in after
        else:
            assert target is not None
            assert after[target] == before[target] + 1, (kind, resp.version)
            assert resp.version == after[target]
