"""Keypad digits (RFC 4733, reported by the media server over msc-ivr, RFC 6231) matched
against the profile's key sequences, and what the mute toggle does (pure; ``now`` is passed in)."""

from __future__ import annotations

from dataclasses import dataclass

from focus.xcon.model import MediaStatus

__all__ = ["DigitCollector", "toggled_mute"]


@dataclass(slots=True)
class DigitCollector:
    """One participant's keypad digits (RFC 4733, reported by the media server), matched
    against a key ``sequence``; sans-IO: the caller passes ``now`` and arms a timer at
    :meth:`get_timer`.

    Only the longest tail of what was pressed that can still become the sequence is kept,
    so a stray digit costs nothing ("1*6" and "**6" both complete "*6"); a pause longer
    than ``timeout`` between two digits starts over (ConfBridge's inter-digit timeout)."""

    sequence: str
    timeout: float
    pressed: str = ""
    last: float | None = None  # when the last kept digit came

    def receive(self, digit: str, now: float) -> bool:
        """A digit came at ``now``; True when it completes the sequence (then reset)."""
        if not self.sequence:
            return False
        if self.last is not None and now - self.last > self.timeout:
            self.pressed = ""
        pressed = self.pressed + digit.upper()
        while pressed and not self.sequence.startswith(pressed):
            pressed = pressed[1:]
        if pressed == self.sequence:
            self.pressed, self.last = "", None
            return True
        self.pressed = pressed
        self.last = now if pressed else None
        return False

    def get_timer(self) -> float | None:
        """When the digits collected so far go stale, or None when nothing is pending."""
        return None if self.last is None else self.last + self.timeout

    def handle_timer(self, now: float) -> None:
        if self.last is not None and now >= self.last + self.timeout:
            self.pressed, self.last = "", None


#: The keypad mute toggle flips the send half of the audio status (RFC 4575 s5.8's
#: direction words, from the participant's side): the receive half stays as it was.
_MUTE_TOGGLE = {
    MediaStatus.SENDRECV: MediaStatus.RECVONLY,
    MediaStatus.RECVONLY: MediaStatus.SENDRECV,
    MediaStatus.SENDONLY: MediaStatus.INACTIVE,
    MediaStatus.INACTIVE: MediaStatus.SENDONLY,
}


def toggled_mute(status: str) -> MediaStatus:
    """The audio media status after a keypad mute toggle (unknown words count as
    sendrecv)."""
    try:
        current = MediaStatus(status)
    except ValueError:
        current = MediaStatus.SENDRECV
    return _MUTE_TOGGLE.get(current, MediaStatus.RECVONLY)
