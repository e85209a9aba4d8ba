"""Errors of the sans-IO SIP layer.

Every error says whose fault it is and what to answer, in the spirit of h11:

* :class:`RemoteProtocolError` -- the peer sent something we cannot accept. It carries the
  status code and reason phrase to put in the response (RFC 3261 s8.2, s16.3) when the bad
  message was a request; for a bad response the caller simply drops it (RFC 3261 s18.1.2).
* :class:`SipParseError` -- the subclass of :class:`RemoteProtocolError` (and of
  :class:`ValueError`) raised by the parser and the typed header accessors. When the start line
  and header block could still be split, ``message`` holds that raw message so that a UAS can
  build its error response (it needs Via, From, To, Call-ID and CSeq) with
  :func:`focus.sip.message.make_response`.
* :class:`LocalProtocolError` -- our own code misused the API (e.g. asked to serialize a
  message that cannot be valid). Never caused by network input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from focus.sip.message import Message

__all__ = [
    "BadExtensionError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "SipError",
    "SipParseError",
]


class SipError(Exception):
    """Base class of all errors raised by :mod:`focus.sip`."""


class RemoteProtocolError(SipError):
    """The peer violated the protocol.

    ``status``/``reason`` are the response to send if the offending message was a request.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class LocalProtocolError(SipError):
    """We violated the protocol or misused the API; a bug on our side, not the peer's.

    ``status`` hints at what an upstream peer should be told if a request can no longer be
    served because of it (500 by default).
    """

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SipParseError(RemoteProtocolError, ValueError):
    """A SIP message (or one of its header fields) could not be parsed or is invalid.

    ``status`` is the response code to answer with (400 unless the fault calls for a more
    specific one: 413, 416, 505, 513 ...); ``reason`` is the full reason phrase naming the
    fault, e.g. ``"Bad Request - Malformed Via"``. ``message`` is the partially parsed message
    when the start line and header fields could be split, else ``None``.
    """

    def __init__(
        self,
        reason: str,
        status: int = 400,
        *,
        message: Message | None = None,
    ) -> None:
        super().__init__(reason, status)
        self.message = message

    @classmethod
    def bad(cls, fault: str) -> SipParseError:
        """A 400 whose reason phrase names ``fault``: ``Bad Request - <fault>``."""
        return cls(f"Bad Request - {fault}", 400)


class BadExtensionError(RemoteProtocolError):
    """The request requires option tags we do not support (RFC 3261 s8.2.2.3, s20.32).

    Answer 420 Bad Extension with an ``Unsupported`` header listing :attr:`unsupported`.
    """

    def __init__(self, unsupported: tuple[str, ...]) -> None:
        super().__init__("Bad Extension", 420)
        self.unsupported = unsupported
