"""Ad hoc conferences after a restart (the policy is core state, ConferenceObject.ad_hoc):
calls of the previous run are gone, conferences left empty by them are deleted, ad hoc ones
that keep CCMP-added users stay ad hoc and end when the next caller hangs up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from focus.core.commands import AddUser, CreateConference
from focus.core.core import CoreConfig
from focus.core.policy import Actor
from focus.core.store import ConferenceStore
from focus.sip.uacore import CallState
from focus.xcon.model import DisconnectionMethod, Endpoint, EndpointStatus, User
from tests.focus.calls.conftest import PhoneFactory, sdp_offer, start_focus

SYSTEM = Actor.system()


def _user(n: int, status: EndpointStatus) -> User:
    return User(
        entity=f"xcon-userid:AUTO_GENERATE_{n}@example.org",
        endpoints=(Endpoint(entity=f"sip:u{n}@127.0.0.1", status=status),),
    )


def _prepare(state_dir: Path) -> tuple[str, str, str]:
    """A previous run's state: an ad hoc conference with only a call, an ad hoc one with a
    call and an invited (pending) user, an ordinary one with a call."""
    store = ConferenceStore.open(state_dir, CoreConfig(domain="example.org"))
    try:
        uris = []
        for ad_hoc, users in (
            (True, [_user(1, EndpointStatus.CONNECTED)]),
            (True, [_user(2, EndpointStatus.CONNECTED), _user(3, EndpointStatus.PENDING)]),
            (False, [_user(4, EndpointStatus.ON_HOLD)]),
        ):
            (created,) = store.apply(CreateConference(actor=SYSTEM, ad_hoc=ad_hoc))
            for user in users:
                store.apply(AddUser(actor=SYSTEM, uri=created.uri, user=user))
            uris.append(created.uri)
        return uris[0], uris[1], uris[2]
    finally:
        store.close()


async def test_restart_ends_empty_ad_hoc_conferences_and_keeps_the_policy(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    empty, invited, plain = _prepare(tmp_path)
    async with start_focus(tmp_path) as focus:
        store = focus.focus.store
        assert store.get(empty) is None
        kept = store.get(invited)
        assert kept is not None and kept.ad_hoc and focus.focus.ad_hoc == {invited}
        assert [
            e.status
            for u in kept.info.users.users  # type: ignore[union-attr]
            for e in u.endpoints
        ] == [EndpointStatus.PENDING]
        ordinary = store.get(plain)
        assert ordinary is not None and not ordinary.ad_hoc
        (user,) = ordinary.info.users.users  # type: ignore[union-attr]
        assert user.endpoints[0].status is EndpointStatus.DISCONNECTED
        assert user.endpoints[0].disconnection_method is DisconnectionMethod.FAILED

        # Still ad hoc: a caller joins and hangs up, and the conference ends with her.
        phone = await phones("dora")
        conf_user = invited.removeprefix("xcon:").split("@")[0]
        call = await phone.invite(focus.uri(conf_user), sdp_offer(41000))
        assert call.state is CallState.CONFIRMED
        await phone.bye(call)
        for _ in range(250):
            if store.get(invited) is None:
                break
            await asyncio.sleep(0.02)
        assert store.get(invited) is None
        assert store.get(plain) is not None
