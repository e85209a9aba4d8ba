"""A CCMP 200 means durable: stop the server, open a new store on the same state, look."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from lxml import etree

from ccmp_server.app import CcmpConfig, start_ccmp
from ccmp_server.messages import CcmpRequest, MessageType, Operation, ResponseCode
from focus.xcon.model import Role
from tests.ccmp_server.conftest import Client, open_store
from tests.ccmp_server.test_operations import conf_info, title, user_info


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = open_store(state)
    store.accounts.add("alice", Role.USER, "pw-alice")
    store.accounts.add("bob", Role.PARTICIPANT, "pw-bob")
    server = await start_ccmp(store, CcmpConfig(port=0))
    async with aiohttp.ClientSession() as session:
        alice = Client(session, server.url, "alice")
        made = await alice.send(CcmpRequest(MessageType.CONF, operation=Operation.CREATE))
        uri = made.conf_obj_id
        assert uri is not None
        await alice.send(
            CcmpRequest(
                MessageType.CONF,
                operation=Operation.UPDATE,
                conf_obj_id=uri,
                info=conf_info(title("Durable"), uri),
            )
        )
        added = await alice.send(
            CcmpRequest(
                MessageType.USER,
                operation=Operation.CREATE,
                conf_obj_id=uri,
                info=user_info("xcon-userid:bob@example.com"),
            )
        )
        assert added.code is ResponseCode.SUCCESS
        before = await alice.send(
            CcmpRequest(MessageType.CONF, operation=Operation.RETRIEVE, conf_obj_id=uri)
        )
    await server.close()
    store.close()

    store = open_store(state)
    server = await start_ccmp(store, CcmpConfig(port=0))
    try:
        async with aiohttp.ClientSession() as session:
            alice = Client(session, server.url, "alice")
            after = await alice.send(
                CcmpRequest(MessageType.CONF, operation=Operation.RETRIEVE, conf_obj_id=uri)
            )
            assert after.code is ResponseCode.SUCCESS
            assert after.version == before.version == 3
            assert before.info is not None and after.info is not None
            assert etree.tostring(after.info, method="c14n") == etree.tostring(
                before.info, method="c14n"
            )
            bob = await Client(session, server.url, "bob").send(
                CcmpRequest(MessageType.USER, operation=Operation.RETRIEVE, conf_obj_id=uri)
            )
            assert bob.code is ResponseCode.SUCCESS
            again = await alice.send(CcmpRequest(MessageType.CONF, operation=Operation.CREATE))
            assert again.conf_obj_id not in (None, uri)
    finally:
        await server.close()
        store.close()
