"""The focus's calls: every :class:`~focus.calls.participant.Participant`, keyed by its call
object and indexed by Call-ID (for dialogs), by conference and by media connection (pure).

The indexes change only through this class (:meth:`add`, :meth:`remove`,
:meth:`set_conference`, :meth:`set_leg`), so they cannot drift from the participants.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from focus.calls.participant import Participant

if TYPE_CHECKING:  # type-only: the call and the leg are the asyncio adapters' objects
    from focus.sip.dialog import DialogId
    from focus.sip.uacore import Call
    from mediactrl.legs import MediaLeg

__all__ = ["CallRegistry"]


class CallRegistry:
    """Participants by call; a call is in at most one conference."""

    def __init__(self) -> None:
        self._by_call: dict[Call, Participant] = {}
        self._by_call_id: dict[str, list[Participant]] = {}
        self._by_conference: dict[str, dict[Participant, None]] = {}  # insertion-ordered set
        self._by_connection: dict[str, Participant] = {}
        #: the call that created each ad hoc conference (RFC 4579 s5.12 "creator" policy)
        self.creators: dict[str, Participant] = {}

    def __len__(self) -> int:
        return len(self._by_call)

    def __iter__(self) -> Iterator[Participant]:
        return iter(list(self._by_call.values()))

    def __contains__(self, p: object) -> bool:
        return isinstance(p, Participant) and self._by_call.get(p.call) is p

    def add(self, p: Participant) -> None:
        if p.call in self._by_call:
            raise ValueError(f"{p.call!r} is registered already")
        self._by_call[p.call] = p
        self._by_call_id.setdefault(p.call.call_id, []).append(p)
        if p.conference:
            self._by_conference.setdefault(p.conference, {})[p] = None
        if p.leg is not None:
            self._by_connection[p.leg.connection] = p

    def remove(self, p: Participant) -> bool:
        """Forget ``p``; False when it was not registered (removed already)."""
        if self._by_call.get(p.call) is not p:
            return False
        del self._by_call[p.call]
        same_id = self._by_call_id.get(p.call.call_id, [])
        if p in same_id:
            same_id.remove(p)
        if not same_id:
            self._by_call_id.pop(p.call.call_id, None)
        self._unindex_conference(p)
        if p.leg is not None and self._by_connection.get(p.leg.connection) is p:
            del self._by_connection[p.leg.connection]
        if p.conference and self.creators.get(p.conference) is p:
            del self.creators[p.conference]  # a call creates only its own conference
        return True

    def set_conference(self, p: Participant, uri: str) -> None:
        """The participant's conference is known now (the factory created it)."""
        registered = p in self
        if registered:
            self._unindex_conference(p)
        p.conference = uri
        if registered and uri:
            self._by_conference.setdefault(uri, {})[p] = None

    def set_leg(self, p: Participant, leg: MediaLeg | None) -> None:
        """The participant's media leg changed (opened, lost, replaced, released)."""
        if p.leg is not None and self._by_connection.get(p.leg.connection) is p:
            del self._by_connection[p.leg.connection]
        p.leg = leg
        if leg is not None and p in self:
            self._by_connection[leg.connection] = p

    def _unindex_conference(self, p: Participant) -> None:
        members = self._by_conference.get(p.conference)
        if members is not None:
            members.pop(p, None)
            if not members:
                del self._by_conference[p.conference]

    # ---- lookups

    def get(self, call: Call) -> Participant | None:
        return self._by_call.get(call)

    def of_dialog(self, dialog: DialogId) -> Participant | None:
        """The participant whose call has exactly this dialog (our view of its tags)."""
        for p in self._by_call_id.get(dialog.call_id, ()):
            if p.call.dialog is not None and p.call.dialog.id == dialog:
                return p
        return None

    def named_by(self, call_id: str, to_tag: str, from_tag: str) -> Participant | None:
        """The joined participant whose dialog a Join (RFC 3911) or Replaces (RFC 3891)
        header names. The tags are as the named dialog's other end sees them (RFC 3891 s3:
        to-tag is the recipient's local tag); the reverse is accepted too, as some UAs send
        it so."""
        for p in self._by_call_id.get(call_id, ()):
            dialog = p.call.dialog
            if dialog is None or not p.in_conference():
                continue
            tags = {
                (dialog.id.local_tag, dialog.id.remote_tag),
                (dialog.id.remote_tag, dialog.id.local_tag),
            }
            if (to_tag, from_tag) in tags:
                return p
        return None

    def in_conference(self, uri: str) -> list[Participant]:
        return list(self._by_conference.get(uri, ()))

    def of_user(self, uri: str, entity: str) -> list[Participant]:
        """The calls of the core user ``entity`` in the conference ``uri``."""
        return [p for p in self._by_conference.get(uri, ()) if p.entity == entity]

    def by_connection(self, connection: str) -> Participant | None:
        return self._by_connection.get(connection)

    def joining(self) -> int:
        """Calls not in their conference yet (ringing, opening media, joining): the joins in
        progress the overload gate bounds."""
        return sum(1 for p in self._by_call.values() if not p.in_conference())

    def conferences(self) -> list[str]:
        """Every conference (or sidebar) at least one call is in."""
        return list(self._by_conference)
