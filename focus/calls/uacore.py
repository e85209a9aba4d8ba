"""What the focus needs from the UA core beyond :class:`focus.sip.ua.UACore`.

* The 2xx to a conference INVITE carries Contact = the conference URI with ``;isfocus``
  (RFC 4579 s3, s5.2), not the UA's own Contact; the dialog's local target is then that URI.
* A 401 carries ``WWW-Authenticate`` challenges (RFC 3261 s22.1).
* A response built by another sans-IO part (the subscription notifier's 200 to SUBSCRIBE)
  is sent and recorded as the request's answer.
* A dial-out INVITE carries the same isfocus Contact (RFC 4579 s5.5), and its 180 Ringing
  is reported (RFC 4575 s5.7.3 endpoint status ``alerting``).

``UACore.accept``/``reject`` take neither, so :func:`adopt` turns the running UA's core into a
:class:`FocusUACore` (the same object and state, two hooks more). A ``contact`` argument on
``UACore.accept`` and ``headers`` on ``UACore.reject`` would make this module unnecessary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from focus.sip.events import TransactionKey
from focus.sip.headers import NameAddr
from focus.sip.message import Request, Response
from focus.sip.transport import TransportKind
from focus.sip.ua import Call, UACore, UserAgent
from focus.sip.uri import URI

__all__ = ["FocusUACore", "adopt"]


class FocusUACore(UACore):
    """A :class:`UACore` that can answer with a given Contact and extra headers."""

    _contact_override: NameAddr | None = None
    _extra_headers: tuple[tuple[str, str], ...] = ()
    on_provisional: Callable[[Call, Response], None] | None = None

    def invite_as(self, target: str | URI, body: bytes, now: float, contact: NameAddr) -> Call:
        """:meth:`invite` with ``contact`` as our Contact, and its user part in From (the
        conference URI as the calling party, as in RFC 4579 s5.2's example)."""
        config = self.config
        user = getattr(contact.uri, "user", None)
        self._contact_override = contact
        if user:
            self.config = dataclasses.replace(config, user=user)
        try:
            return self.invite(target, body, now)
        finally:
            self._contact_override = None
            self.config = config

    def _invite_response(self, call: Call, key: TransactionKey, response: Response,
                         now: float) -> None:
        if 100 < response.status < 200 and self.on_provisional is not None:
            self.on_provisional(call, response)
        super()._invite_response(call, key, response, now)

    def _contact(self, transport: TransportKind) -> NameAddr:
        if self._contact_override is not None:
            return self._contact_override
        return super()._contact(transport)

    def _finish_response(self, response: Response, body: bytes, content_type: str | None,
                         headers: Iterable[tuple[str, str]]) -> None:
        super()._finish_response(response, body, content_type,
                                 (*headers, *self._extra_headers))

    def accept_as(self, call: Call, body: bytes, now: float, contact: NameAddr, *,
                  headers: Iterable[tuple[str, str]] = ()) -> None:
        """:meth:`accept` with ``contact`` as our Contact (and dialog local target)."""
        self._contact_override = contact
        try:
            self.accept(call, body, now, headers=headers)
        finally:
            self._contact_override = None

    def answer_with(self, request: Request, response: Response, now: float) -> None:
        """Send a response built elsewhere (a SUBSCRIBE's, by the subscription notifier)
        to a request delivered as ``IncomingRequest``, and note it as answered so the core
        does not answer it again after ``answer_timeout``."""
        finals = getattr(self, "_finals_given", None)
        if isinstance(finals, set) and response.status >= 200:
            finals.add(id(request))
        self.send_response(response, now)

    def reject_with(self, call: Call, status: int, now: float, reason: str | None,
                    headers: Iterable[tuple[str, str]]) -> None:
        """:meth:`reject` with extra header fields (a 401's challenges)."""
        self._extra_headers = tuple(headers)
        try:
            self.reject(call, status, now, reason)
        finally:
            self._extra_headers = ()


def adopt(ua: UserAgent) -> FocusUACore:
    """The UA's core as a :class:`FocusUACore` (same object: no state is copied)."""
    core = ua.core
    if not isinstance(core, FocusUACore):
        core.__class__ = FocusUACore
    assert isinstance(core, FocusUACore)
    return core
