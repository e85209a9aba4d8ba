"""A media server that refuses part of a plan: the rest is applied, the refusal reported
(the real control server with its control-only backend, a real CFW channel)."""

from __future__ import annotations

import pytest

from focus.mediaplan import plan_media
from focus.mediaplan.reconcile import MediaReconciler, join_streams
from mediactrl.client import MediaControlClient, direct_opener
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.server.control import ControlServer, ControlServerConfig
from mediactrl.server.mixer_service import ControlOnlyBackend, MixerService
from tests.focus.mediaplan.docs import conference, user
from tests.mediactrl.client.conftest import FAST

MAIN, SIDE = "xcon:main@example.com", "xcon:side@example.com"
ALICE, BOB, GHOST = "xcon-userid:alice@x", "xcon-userid:bob@x", "xcon-userid:ghost@x"


async def test_a_refused_join_is_reported_and_the_rest_applied() -> None:
    backend = ControlOnlyBackend()
    backend.add_connection("ma:fa")  # the media server's names for the legs it has
    backend.add_connection("mb:fb")
    server = ControlServer(MixerService(backend), ControlServerConfig())
    server.expect_channel("refusecfw001")
    host, port = await server.start()
    client = MediaControlClient(direct_opener(host, port, "refusecfw001"), FAST)
    driver = MediaDriver(client)
    await client.start()
    try:
        media = MediaReconciler(driver)
        connections = {ALICE: "fa:ma", BOB: "fb:mb", GHOST: "fg:mg"}  # no leg for the ghost
        main = conference(MAIN, [user(ALICE), user(BOB), user(GHOST)])
        side = conference(SIDE, [user(ALICE), user(GHOST)], link="inactive")
        planned = plan_media(main, [side], connections)
        with pytest.raises(MediaDriverError) as refused:
            await media.update(MAIN, planned)
        assert set(refused.value.failures) == {("fg:mg", "main"), ("fg:mg", "side")}
        assert set(backend.conferences) == {"main", "side"}
        assert set(backend.joins) == {("fa:ma", "main"), ("fb:mb", "main"), ("fa:ma", "side")}
        assert driver.in_sync
        # The sidebar ends: its mixer is destroyed, alice is back in the main room.
        after = plan_media(main, [], {ALICE: "fa:ma", BOB: "fb:mb"})
        await media.update(MAIN, after)
        assert set(backend.conferences) == {"main"}
        back = after.join("fa:ma", "main")
        assert back is not None and back.heard and back.hears
        assert planned.join("fa:ma", "main") != back  # it was on hold (external sidebar)
        assert backend.joins[("fa:ma", "main")] == join_streams(back)
        assert media.applied(MAIN) == after
    finally:
        await client.close()
        await server.close()
