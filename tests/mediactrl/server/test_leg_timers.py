"""RFC 4028 on the media server's legs (its SIP side as UAS), over real sockets: a leg INVITE
asking too short an interval gets 422 with Min-SE, a malformed one 400; MediaLegs with a
policy retries a 422 with its Min-SE (s7.4); the 2xx leaves refreshing to the leg's opener;
a leg whose refreshes stop is BYEd when its session expires (s10), on the timers' fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from focus.sip.aio.ua import UserAgent
from focus.sip.session_timer import SessionTimerConfig, parse_session_expires
from focus.sip.uacore import CallFailedError, CallState
from mediactrl.legs import MediaLegs
from mediactrl.server.app import MediaServer
from mediactrl.server.leg_timers import LEG_TIMER_POLICY
from tests.mediactrl.client.test_channel import until
from tests.mediactrl.server.test_sip_side import phone_sdp


@pytest.mark.parametrize(
    ("header", "status"), [("Session-Expires: 60", 422), ("Session-Expires: soon", 400)]
)
async def test_a_leg_asking_too_little_or_garbage_is_refused(
    media_server: MediaServer, ua: UserAgent, header: str, status: int
) -> None:
    name, value = header.split(": ")
    with pytest.raises(CallFailedError) as refused:
        await ua.invite(media_server.sip_uri, phone_sdp(31500), headers=[(name, value)])
    assert refused.value.status == status
    response = refused.value.call.response
    assert response is not None
    if status == 422:
        assert response.headers.get("Min-SE") == "90"
    assert not media_server.sip.legs


async def test_media_legs_retry_a_422_with_the_media_servers_min_se(
    media_server: MediaServer, ua: UserAgent
) -> None:
    media_server.sip.timers.config = dataclasses.replace(
        LEG_TIMER_POLICY, min_se=2000, session_expires=3600
    )
    legs = MediaLegs(ua, media_server.sip_uri, session_timer=SessionTimerConfig())
    leg = await legs.open(phone_sdp(31510))
    try:
        assert leg.timer is not None and leg.timer.min_se == 2000
        response = leg.call.response
        assert response is not None and response.status == 200
        granted = parse_session_expires(response.headers.get("Session-Expires") or "")
        assert granted.interval == 2000 and granted.refresher is not None
        assert granted.refresher.value == "uac"  # the leg's opener refreshes
    finally:
        await legs.close_all()


async def test_a_leg_not_refreshed_is_byed_when_its_session_expires(
    media_server: MediaServer, ua: UserAgent
) -> None:
    legs = MediaLegs(ua, media_server.sip_uri, session_timer=SessionTimerConfig())
    leg = await legs.open(phone_sdp(31520))
    timers = media_server.sip.timers
    deadline = timers.next_deadline
    assert deadline is not None and 1767 < deadline - ua.now <= 1768  # 1800 - 32 (s10)
    timers.handle_timer(deadline - 1)
    assert len(media_server.sip.legs) == 1, "not before the expiry"
    timers.handle_timer(deadline)
    await until(lambda: leg.call.state is CallState.ENDED)
    await until(lambda: not media_server.sip.legs)
    assert media_server.engine.stats().endpoints == 0
    await legs.close_all()
