"""A participant's life: one call in one conference, as a transition table (pure).

The focus's call flows (:mod:`focus.calls.dial_in`, :mod:`focus.calls.dial_out`, ...) move a
:class:`Participant` only through :meth:`Participant.move`; a move the table does not list is
the focus's own bug and raises :class:`ParticipantError`, like the SIP transaction tables of
:mod:`focus.sip.transaction`.

States (RFC 4575 s5.7.3 endpoint statuses are what the roster shows; these are what the focus
is doing with the call)::

    INCOMING --MEDIA_UP--> JOINING --CONNECTED--> JOINED <--HOLD/RESUME--> HELD
    DIALING  --MEDIA_UP--> JOINING
    JOINED --MEDIA_LOST--> RELINKING      --RELINKED--> JOINED
    HELD   --MEDIA_LOST--> RELINKING_HELD --RELINKED--> HELD
    any but LEAVING/GONE --LEAVE--> LEAVING --RELEASED--> GONE

* INCOMING: a dial-in INVITE passed admission; its media leg is being opened (RFC 4579 s5.3).
* DIALING: the focus's INVITE to a dial-out target is out (RFC 4579 s5.5, RFC 6504 s6.1).
* JOINING: the media leg is up and the user is in the core: the media plan may mix her; the
  200 (dial-in) or the mixer's join (dial-out) is still to come. An IVR dialog (passcode,
  name recording) will sit between JOINING and JOINED.
* JOINED / HELD: in the conference; HELD after a sendonly/inactive re-offer (RFC 3264 s8.4).
* RELINKING(_HELD): the media leg was lost (media server restart) and a new one is being set
  up by re-INVITE (the call itself stays up); the hold survives it.
* LEAVING: departure under way (media released, user removed); GONE: nothing is left.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from focus.authority import Identity
from focus.calls.digits import DigitCollector

if TYPE_CHECKING:  # type-only: the call and the leg are the asyncio adapters' objects
    from focus.sip.sdp import SessionDescription
    from focus.sip.uacore import Call
    from mediactrl.legs import MediaLeg

__all__ = [
    "TRANSITIONS",
    "Participant",
    "ParticipantError",
    "ParticipantInput",
    "ParticipantState",
]


class ParticipantState(enum.Enum):
    """What the focus is doing with one call in one conference (see the module docstring)."""

    INCOMING = "incoming"
    DIALING = "dialing"
    JOINING = "joining"
    JOINED = "joined"
    HELD = "held"
    RELINKING = "relinking"
    RELINKING_HELD = "relinking-held"
    LEAVING = "leaving"
    GONE = "gone"


class ParticipantInput(enum.Enum):
    """What happened to the call."""

    MEDIA_UP = "media-up"  # a media leg is up and the user is in the core
    CONNECTED = "connected"  # our 200 went out (dial-in) / she answered and is mixed (dial-out)
    HOLD = "hold"  # sendonly/inactive re-offer (RFC 3264 s8.4)
    RESUME = "resume"  # sendrecv re-offer after a hold
    MEDIA_LOST = "media-lost"  # the media server lost or ended the leg
    RELINKED = "relinked"  # the new leg is up and joined
    LEAVE = "leave"  # BYE, CANCEL, hang-up by the focus, a failed join
    RELEASED = "released"  # media, user and conference tidied


S, In = ParticipantState, ParticipantInput

#: (state, input) -> next state. A pair not listed is a protocol error of the focus.
TRANSITIONS: dict[tuple[ParticipantState, ParticipantInput], ParticipantState] = {
    (S.INCOMING, In.MEDIA_UP): S.JOINING,
    (S.DIALING, In.MEDIA_UP): S.JOINING,
    (S.JOINING, In.CONNECTED): S.JOINED,
    (S.JOINED, In.HOLD): S.HELD,
    (S.HELD, In.RESUME): S.JOINED,
    (S.JOINED, In.MEDIA_LOST): S.RELINKING,
    (S.HELD, In.MEDIA_LOST): S.RELINKING_HELD,
    # The phone may re-offer while its media moves: the hold is kept for after.
    (S.RELINKING, In.HOLD): S.RELINKING_HELD,
    (S.RELINKING_HELD, In.RESUME): S.RELINKING,
    (S.RELINKING, In.RELINKED): S.JOINED,
    (S.RELINKING_HELD, In.RELINKED): S.HELD,
    **{(state, In.LEAVE): S.LEAVING for state in S if state not in (S.LEAVING, S.GONE)},
    (S.LEAVING, In.RELEASED): S.GONE,
}

del S, In

_IN_CONFERENCE = frozenset(
    {
        ParticipantState.JOINED,
        ParticipantState.HELD,
        ParticipantState.RELINKING,
        ParticipantState.RELINKING_HELD,
    }
)
_MIXABLE = _IN_CONFERENCE | {ParticipantState.JOINING}
_HELD = frozenset({ParticipantState.HELD, ParticipantState.RELINKING_HELD})
_RELINKING = frozenset({ParticipantState.RELINKING, ParticipantState.RELINKING_HELD})
_LEFT = frozenset({ParticipantState.LEAVING, ParticipantState.GONE})


class ParticipantError(Exception):
    """The focus moved a participant in a way its table does not allow (our bug, not the
    phone's): the flow that did it is wrong."""

    def __init__(self, state: ParticipantState, event: ParticipantInput) -> None:
        super().__init__(f"no transition from {state.value} on {event.value}")
        self.state = state
        self.event = event


@dataclass(eq=False, slots=True)
class Participant:
    """One phone's call in one conference, with what it holds on the way.

    ``conference`` is the XCON-URI ("" until the factory created the ad hoc conference);
    ``caller`` the From AOR (or the dial-out target); ``entity`` the core user, once added;
    ``answer`` our last SDP to the phone; ``media_status`` the audio status the core last
    asked for (RFC 4575 s5.8); ``identity`` who the INVITE proved she is (digest or a
    trusted proxy's P-Asserted-Identity): her in-dialog requests are not challenged again."""

    call: Call
    conference: str
    caller: str
    state: ParticipantState
    entity: str | None = None
    leg: MediaLeg | None = None
    answer: SessionDescription | None = None
    media_status: str = "sendrecv"
    keys: DigitCollector | None = None
    identity: Identity | None = None

    def move(self, event: ParticipantInput) -> ParticipantState:
        """Take ``event``; returns the new state (raises :class:`ParticipantError`)."""
        after = TRANSITIONS.get((self.state, event))
        if after is None:
            raise ParticipantError(self.state, event)
        self.state = after
        return after

    def can(self, event: ParticipantInput) -> bool:
        return (self.state, event) in TRANSITIONS

    def in_conference(self) -> bool:
        """Joined (held or relinking included): BYE and CANCEL now mean departure."""
        return self.state in _IN_CONFERENCE

    def mixable(self) -> bool:
        """The media plan may join her leg (when she has one)."""
        return self.state in _MIXABLE

    def held(self) -> bool:
        return self.state in _HELD

    def relinking(self) -> bool:
        return self.state in _RELINKING

    def left(self) -> bool:
        """Departure handled or under way: nothing more is done for her."""
        return self.state in _LEFT
