"""Errors of the media engine, each saying whose fault it is.

``MalformedPacket`` is the remote peer's fault: the packet is dropped and counted, never
answered (RTP has no error replies).  ``MediaUsageError`` is the caller's fault (a control
layer asked for something impossible); it carries the msc-mixer status (RFC 6505 s4.6) the
control layer should answer with, so the CFW side can map it without a second table.
"""

from __future__ import annotations

__all__ = ["MalformedPacket", "MediaUsageError"]


class MalformedPacket(ValueError):
    """A datagram from the network is not valid RTP/RTCP/RFC 4733: drop it and count it."""


class MediaUsageError(Exception):
    """The local caller misused the engine; ``status`` is the RFC 6505 code to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
