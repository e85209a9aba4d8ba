"""Fan-out (issue 6): a thousand subscribers of one conference, raw SIP over a few UDP
sockets, all get a change made over CCMP; a subscriber that stopped answering and one whose
socket is gone are dropped after their NOTIFY transactions fail, and nobody waits for them:
every live subscriber has its NOTIFY before the dead one's transaction could even time out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from focus.settings import SipProfile
from tests.focus.eventpkg.e2e.harness import DOMAIN, el, running_focus
from tests.focus.eventpkg.e2e.swarm import Swarm

SUBSCRIBERS = 1000
T1 = 0.1  # RFC 3261 Timer F = 64*T1 = 6.4 s, the time a dead subscriber can cost


async def test_a_change_reaches_a_thousand_subscribers_past_a_dead_one(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    # A thousand subscribers from one address: that address's overload limits are lifted.
    profile = SipProfile(
        notify_interval=0.0,
        t1=T1,
        source_rate=0.0,
        max_pending_per_source=0,
        max_subscriptions_per_source=2 * SUBSCRIBERS,
        max_subscriptions_per_conference=2 * SUBSCRIBERS,
    )
    async with running_focus(tmp_path, profile) as running:
        conf = await running.ccmp.create(
            el(
                "confInfo",
                el("ci:conference-description", el("ci:subject", text="v1")),
                entity=f"xcon:AUTO_GENERATE_1@{DOMAIN}",
            )
        )
        conf_id = conf.removeprefix("xcon:").split("@", 1)[0]
        events = running.focus.focus.events
        live, dead = await Swarm.open(sockets=4), await Swarm.open(sockets=2)
        try:
            # Half the dead go first, half last: their place in the fan-out must not matter.
            (silent,) = await dead.subscribe(running.host, running.port, conf_id, 1)
            subs = await live.subscribe(running.host, running.port, conf_id, SUBSCRIBERS)
            (gone,) = await dead.subscribe(running.host, running.port, conf_id, 1, socket=1)
            assert gone.socket == 1 and silent.socket == 0
            assert all(s.status == 200 and s.version() == 1 for s in [*subs, silent, gone])
            assert len(events.subs) == SUBSCRIBERS + 2
            silent.dead = True
            dead.close_socket(gone.socket)

            changed = loop.time()
            await running.ccmp.set_subject(conf, "v2")
            reached = await live.wait_until(
                lambda: all(s.version() == 2 for s in subs), timeout=64 * T1
            )
            assert reached, sum(s.version() == 2 for s in subs)
            last = max(s.notifies[-1].at for s in subs)
            # Nobody waited for the dead: all arrived before a NOTIFY to them could time out,
            # while the silent one's subscription was still there.
            assert last - changed < 64 * T1
            assert len(events.subs) >= SUBSCRIBERS + 1  # the silent one was not dropped yet
            assert silent.unanswered >= 1  # it was sent its NOTIFY (and retransmissions)
            assert all(s.notifies[-1].state == "partial" for s in subs)
            assert all(s.notifies[-1].subscription_state.startswith("active") for s in subs)

            # The dead are dropped once their transactions fail (Timer F for the silent one).
            deadline = loop.time() + 64 * T1 + 5
            while len(events.subs) > SUBSCRIBERS:
                assert loop.time() < deadline, len(events.subs)
                await asyncio.sleep(0.05)
            assert len(events.subs) == SUBSCRIBERS
            await asyncio.sleep(0.5)  # its retransmissions have stopped
            silent_count = silent.unanswered

            # The next change goes to the live ones only.
            await running.ccmp.set_subject(conf, "v3")
            assert await live.wait_until(lambda: all(s.version() == 3 for s in subs), 64 * T1)
            await asyncio.sleep(0.3)
            assert silent.unanswered == silent_count
            assert all(len({r.cseq for r in s.notifies}) == 3 for s in subs)
        finally:
            live.close()
            dead.close()
