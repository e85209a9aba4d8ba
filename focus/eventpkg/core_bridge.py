"""Feeding the core's committed changes to the notification planner.

``store.subscribe(lambda changes: feed_changes(planner, changes, loop.time()))``
is the whole wiring.  Subscribers must be registered under the object's
XCON-URI (``ConferenceObject.uri``; ``store.find`` maps a dialled SIP URI to
it), since that is what a :class:`focus.core.changes.Change` names.
"""

from __future__ import annotations

from collections.abc import Iterable

from focus.core.changes import (
    BlueprintCreated,
    BlueprintDeleted,
    BlueprintUpdated,
    Change,
    ConferenceActivated,
    ConferenceDeactivated,
    ConferenceDeleted,
    ConferenceEnded,
)
from focus.eventpkg.planner import NotifyPlanner
from focus.xcon.model import ConferenceInfo

__all__ = ["feed_changes"]

_BLUEPRINT = (BlueprintCreated, BlueprintUpdated, BlueprintDeleted)


def feed_changes(planner: NotifyPlanner, changes: Iterable[Change], now: float) -> None:
    """Tell ``planner`` about one committed batch of changes.

    A batch may touch one object several times (a user added, then the user
    count updated): only its last snapshot matters, so each object is reported
    once, and its subscribers get one coalesced notification.  A deleted or
    ended conference (RFC 4575 s3.3) ends its subscriptions with
    ``noresource``; one its schedule deactivated (a recurring series between two
    occurrences: back to a reservation) ends them with ``deactivated``, which
    tells subscribers to subscribe again at once (RFC 6665 s4.2.2); blueprints
    have no subscribers.
    """
    first: dict[str, ConferenceInfo | None] = {}
    last: dict[str, ConferenceInfo | None] = {}
    deactivated: dict[str, bool] = {}  # by the batch's last lifecycle change
    for change in changes:
        if isinstance(change, _BLUEPRINT):
            continue
        if isinstance(change, ConferenceDeactivated | ConferenceActivated):
            deactivated[change.uri] = isinstance(change, ConferenceDeactivated)
        if change.uri not in first:
            first[change.uri] = change.before.info if change.before is not None else None
        after = change.after
        ended = isinstance(change, ConferenceDeleted | ConferenceEnded) or after is None
        last[change.uri] = None if ended or after is None else after.info
    for uri, info in last.items():
        if info is None:
            planner.conference_ended(uri, now)
        elif deactivated.get(uri, False):
            planner.conference_deactivated(uri, now)
        else:
            planner.conference_changed(uri, first[uri], info, now)
