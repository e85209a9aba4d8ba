"""Issue 10: the focus calls only targets the profile's dialout_targets allow (toll fraud):
however the dial-out is asked for (REFER, RFC 4579 s5.5; CCMP, RFC 6504 s6.1), a target
outside them is refused with 403 before anything is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from focus.settings import SettingsError, SipProfile
from tests.focus.calls.conftest import Focus, PhoneFactory, sdp_offer, start_focus
from tests.focus.calls.test_dial_out import Callee, add_dial_out, new_conference, statuses
from tests.focus.calls.test_in_call import conf_of
from tests.focus.calls.test_refer import Referrer
from tests.waiting import eventually

#: TEST-NET-2 (RFC 5737): never reached, since nothing may be sent there.
PREMIUM = "sip:+19005550100@198.51.100.7"


async def test_a_refer_to_a_target_outside_the_default_is_refused(
    focus: Focus, phones: PhoneFactory
) -> None:
    """Default: the profile's domain and the focus's own addresses only."""
    alice = Referrer(await phones("alice"))
    call = await alice.ua.invite(focus.factory, sdp_offer(35400))
    conf = conf_of(call)
    assert (await alice.ua.refer(call, PREMIUM)).status == 202
    await eventually(lambda: alice.progress[-1:] == [(403, "terminated")], "the final NOTIFY")
    assert alice.progress == [(100, "active"), (403, "terminated")]
    await focus.settled((1, 1, 1))  # no leg was opened for it
    obj = focus.running.store.get(f"xcon:{conf}@example.org")
    assert obj is not None and obj.info.users is not None
    refused = [u for u in obj.info.users.users if any(e.entity == PREMIUM for e in u.endpoints)]
    (endpoint,) = refused[0].endpoints
    assert endpoint.status == "disconnected" and endpoint.disconnection_method == "failed"
    await alice.ua.bye(call)
    await focus.settled((0, 0, 0))


async def test_a_ccmp_dial_out_goes_only_where_the_profile_says(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    profile = SipProfile(dialout_targets=("sip:carol@*",))
    async with start_focus(tmp_path, profile) as focus:
        bob, carol = Callee(await phones("bob")), Callee(await phones("carol"))
        conf = new_conference(focus)
        seen = statuses(focus)
        add_dial_out(focus, conf, bob.uri)
        await eventually(lambda: seen[-1:] == ["disconnected"], "bob refused")
        assert seen == ["disconnected"]  # never dialing-out: nothing was sent
        await asyncio.sleep(0.5)
        assert bob.calls == []
        add_dial_out(focus, conf, carol.uri)
        await eventually(lambda: seen[-1:] == ["connected"], "carol called")
        assert len(carol.calls) == 1 and bob.calls == []
        await focus.settled((1, 1, 1))


def test_the_profile_refuses_a_bad_pattern_and_reads_a_list() -> None:
    with pytest.raises(SettingsError, match="dialout_targets"):
        SipProfile(dialout_targets=("gw.example.com",))
    profile = SipProfile.from_toml("t", 'dialout_targets = ["sip:*@gw.example.com"]')
    assert profile.dialout_targets == ("sip:*@gw.example.com",)
    assert SipProfile.from_toml("t", "dialout_targets = []").dialout_targets == ()
    with pytest.raises(SettingsError, match="dialout_targets"):
        SipProfile.from_toml("t", 'dialout_targets = "sip:*@x"')
