"""The keypad (asyncio adapter): RFC 4733 digits the media server reports over msc-ivr
(RFC 6231) matched per participant by :class:`~focus.calls.digits.DigitCollector`; the
profile's ``dtmf_mute_toggle`` (``*6``) flips her audio between sendrecv and recvonly in the
core, as a CCMP mute would (RFC 6504 s6.2), so the media plan, CCMP and the conference-package
subscribers all follow. One ``loop.call_at`` timer serves every collector's inter-digit
timeout.
"""

from __future__ import annotations

import asyncio
import logging

from focus.calls.context import SYSTEM, CallContext
from focus.calls.digits import DigitCollector, toggled_mute
from focus.calls.participant import Participant
from focus.calls.roster import endpoint_entity, media_status
from focus.core.commands import UpdateUser
from focus.core.errors import CoreError
from focus.xcon.model import Endpoint, Media, User
from mediactrl.driver import MediaDriverError

__all__ = ["Keypad"]

log = logging.getLogger(__name__)


class Keypad:
    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self._pending: dict[Participant, None] = {}  # collectors holding digits
        self._timer: asyncio.TimerHandle | None = None

    async def watch(self, p: Participant) -> None:
        """Asks the media server for the digits of the participant's (new) leg when the
        profile has a keypad mute toggle. A refusal costs her the keypad, not the call."""
        profile = self.ctx.profile
        sequence = profile.dtmf_mute_toggle
        driver = self.ctx.driver
        if not sequence or driver is None or p.leg is None or p.left():
            return
        if p.keys is None:
            p.keys = DigitCollector(sequence, profile.dtmf_digit_timeout)
        try:
            await driver.watch_dtmf(p.leg.connection)
        except MediaDriverError as exc:
            log.warning("no keypad for %s: %s", p.caller, exc)

    def stop(self, p: Participant) -> None:
        p.keys = None
        if p in self._pending:
            del self._pending[p]
            self._arm()

    def on_dtmf(self, connection: str, digit: str) -> None:
        """A digit the participant on ``connection`` pressed (MediaDriver ``on_dtmf``)."""
        p = self.ctx.calls.by_connection(connection)
        if p is None or p.keys is None or not p.in_conference():
            return
        now = asyncio.get_running_loop().time()
        if p.keys.receive(digit, now):
            self._toggle_mute(p)
        if p.keys.get_timer() is None:
            self._pending.pop(p, None)
        else:
            self._pending[p] = None
        self._arm()

    def _arm(self) -> None:
        deadlines = [d for p in self._pending if p.keys and (d := p.keys.get_timer()) is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines:
            self._timer = asyncio.get_running_loop().call_at(min(deadlines), self._expired)

    def _expired(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        for p in list(self._pending):
            if p.keys is not None:
                p.keys.handle_timer(now)
            if p.keys is None or p.keys.get_timer() is None:
                del self._pending[p]
        self._arm()

    def _toggle_mute(self, p: Participant) -> None:
        obj = self.ctx.store.get(p.conference)
        user = obj.info.user(p.entity) if obj is not None and p.entity is not None else None
        if user is None or p.entity is None:
            return
        status = toggled_mute(media_status(user, p.caller) or p.media_status)
        entity = endpoint_entity(user, p.caller)
        media_id = "1"
        for e in user.endpoints:
            if e.entity == entity:
                media_id = next((m.id for m in e.media if m.type in (None, "audio")), "1")
        endpoint = Endpoint(entity=entity, media=(Media(id=media_id, type="audio", status=status),))
        try:
            self.ctx.apply(
                UpdateUser(
                    actor=SYSTEM,
                    uri=p.conference,
                    user=User(entity=p.entity, endpoints=(endpoint,)),
                )
            )
        except CoreError as exc:
            log.warning("keypad mute of %s not applied: %s", p.caller, exc)
            return
        p.media_status = status.value
        log.info("%s pressed the mute toggle: audio %s", p.caller, status.value)
