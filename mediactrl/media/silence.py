"""Media timeout of one endpoint, without I/O: has its peer gone quiet?

A phone that vanished (crashed, unplugged, lost its network) sends no BYE, but its RTP and
RTCP stop.  :class:`SilenceWatch` notices when an endpoint has received neither for
``timeout`` seconds while media is expected from it, and says so once per silence.  Media is
not expected while the leg is on hold or inactive (its SDP direction, or every join of it
inactive): a held phone may rightly send nothing.  Time is a parameter (the engine's clock).
"""

from __future__ import annotations

__all__ = ["SilenceWatch"]


class SilenceWatch:
    """The silence of one endpoint; ``timeout`` None: never reported."""

    __slots__ = ("_fired", "_since", "expecting", "timeout")

    def __init__(self, timeout: float | None, now: float) -> None:
        self.timeout = timeout
        self.expecting = True
        self._since = now  # the last packet, or when media became expected
        self._fired = False

    def heard(self, now: float) -> None:
        """An RTP or RTCP packet arrived at ``now``."""
        self._since = now
        self._fired = False

    def expect(self, expecting: bool, now: float) -> None:
        """Whether media is expected now (not on hold); a resume counts from ``now``."""
        if expecting and not self.expecting:
            self.heard(now)
        self.expecting = expecting

    def set_timeout(self, timeout: float | None, now: float) -> None:
        """A new timeout, counted from ``now`` at the earliest (a fresh request is not
        answered by an old silence)."""
        if timeout != self.timeout:
            self.timeout = timeout
            self.heard(max(now, self._since))

    @property
    def deadline(self) -> float | None:
        """When the silence will be reported, if nothing arrives (None: never)."""
        if self.timeout is None or not self.expecting or self._fired:
            return None
        return self._since + self.timeout

    def check(self, now: float) -> float | None:
        """How long the endpoint has been silent, the first time it passes the timeout;
        else None."""
        deadline = self.deadline
        if deadline is None or now <= deadline:
            return None
        self._fired = True
        return now - self._since
