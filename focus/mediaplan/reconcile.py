"""The asyncio adapter of the media plan: :class:`MediaReconciler` makes a media server match
the plans of :mod:`focus.mediaplan.plan` through a :class:`~mediactrl.driver.MediaDriver`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from focus.mediaplan.plan import Connections, Lookup, MediaPlan, PlannedJoin, plan_tree, root_uri
from mediactrl.driver import MediaDriver, MediaDriverError
from mediactrl.mixer import model as m
from mediactrl.plan import ConferenceSpec, participant_streams

__all__ = ["MediaReconciler", "join_streams"]

log = logging.getLogger(__name__)


def join_streams(planned: PlannedJoin) -> tuple[m.Stream, ...]:
    """The RFC 6505 s4.2.2 streams of a planned join, the connection as id1.

    Gains are explicit on every open direction: a <modifyjoin> without <volume> keeps the
    previous one (s4.2.2.2), so leaving -12 dB needs an explicit 0 dB.
    """
    return participant_streams(
        muted=not planned.heard,
        deaf=not planned.hears,
        speak_gain_db=planned.speak_gain_db if planned.heard else None,
        listen_gain_db=planned.listen_gain_db if planned.hears else None,
    )


class MediaReconciler:
    """Applies media plans through a driver, one plan per conference tree (its root's URI).

    ``update`` is idempotent: re-applying the same plan sends nothing (the driver's own plan
    is empty when desired equals known).  It first ensures the mixers, then sets every planned
    join, then unjoins what the previous plan of the same tree had and this one has not, and
    destroys mixers no longer planned (an ended sidebar).  A refusal of the media server is
    logged and re-raised as the driver's :class:`MediaDriverError` after the rest was applied.
    Updates run one at a time (a lock), so an older plan never lands after a newer one when
    :meth:`refresh` is used: it plans from the documents as they are once it holds the lock.
    """

    def __init__(self, driver: MediaDriver) -> None:
        self.driver = driver
        self._applied: dict[str, MediaPlan] = {}
        self._lock = asyncio.Lock()

    def applied(self, root_uri: str) -> MediaPlan | None:
        """The last plan applied for a tree."""
        return self._applied.get(root_uri)

    async def update(self, root_uri: str, plan: MediaPlan) -> None:
        """Makes the media server match ``plan`` for the tree rooted at ``root_uri``."""
        async with self._lock:
            await self._update(root_uri, plan)

    async def refresh(
        self, uri: str, lookup: Lookup, connections: Connections | Callable[[], Connections]
    ) -> MediaPlan:
        """Re-plans and applies the tree holding ``uri`` (a conference or one of its
        sidebars) from ``lookup`` (``store.get``) and the focus's current connections; the
        call to make after every committed core change of that tree."""
        async with self._lock:
            root = root_uri(uri, lookup)
            current = connections() if callable(connections) else connections
            plan = plan_tree(root, lookup, current)
            await self._update(root, plan)
            if not plan.conferences:
                self._applied.pop(root, None)
            return plan

    async def drop(self, root_uri: str) -> None:
        """The tree ended: its mixers go (their joins with them)."""
        async with self._lock:
            await self._update(root_uri, MediaPlan())
            self._applied.pop(root_uri, None)

    async def _update(self, root_uri: str, plan: MediaPlan) -> None:
        previous = self._applied.get(root_uri, MediaPlan())
        self._applied[root_uri] = plan
        failures: dict[str | tuple[str, str], str] = {}
        for conference in plan.conferences:
            if conference not in self.driver.desired.conferences:
                await self._try(self.driver.ensure_conference(ConferenceSpec(conference)), failures)
        for planned in plan.joins:
            if planned.conference_id not in self.driver.desired.conferences:
                continue  # its mixer was refused: reported with the failures
            await self._try(
                self.driver.set_join(
                    planned.connection, planned.conference_id, join_streams(planned)
                ),
                failures,
            )
        wanted = {(j.connection, j.conference_id) for j in plan.joins}
        for old in previous.joins:
            key = (old.connection, old.conference_id)
            if key not in wanted and old.conference_id in plan.conferences:
                await self._try(self.driver.unjoin(*key), failures)
        for conference in previous.conferences:
            if conference not in plan.conferences:
                await self._try(self.driver.destroy_conference(conference), failures)
        if failures:
            raise MediaDriverError(failures)

    @staticmethod
    async def _try(call: Awaitable[None], failures: dict[str | tuple[str, str], str]) -> None:
        try:
            await call
        except MediaDriverError as exc:
            log.warning("media server refused part of a media plan: %s", exc)
            failures.update(exc.failures)
