"""Errors of the control framework, saying whose fault it is and what to answer.

Modelled on h11: a :class:`LocalProtocolError` is raised when *our* code tries to do something
RFC 6230 forbids (a bug in the caller); a :class:`RemoteProtocolError` describes something the
*peer* sent wrong and carries the framework status code (RFC 6230 s7) to answer it with.
"""

from __future__ import annotations


class CfwError(Exception):
    """Base class of every control-framework error."""


class LocalProtocolError(CfwError):
    """Our side asked for something the framework forbids; nothing was sent."""


class RemoteProtocolError(CfwError):
    """The peer sent something invalid.

    ``status`` is the RFC 6230 s7 code to answer with (400 syntax, 403 forbidden, 405 method
    not allowed, 406 out of sequence, 420 package not valid, 422 no common package, 423 duplicate
    transaction, 481 no such transaction/dialog, 500 not understood); ``trans_id`` is the
    transaction to answer, when it could be read.
    """

    def __init__(self, reason: str, *, status: int = 400, trans_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.trans_id = trans_id
