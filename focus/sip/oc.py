"""RFC 7339 overload control Via parameters, loss-based scheme only (s4, s5, s7). Pure.

As a server (:func:`server_feedback`): a request whose top Via offered ``oc`` (with
``loss`` in its ``oc-algo``, or no ``oc-algo`` at all: loss is every client's default, s4.2)
gets, in the top Via of each of our responses, ``oc`` = the percentage of new requests the
client should not send us (0 when we are not overloaded), ``oc-algo=loss`` (the one class we
implement, s5.1), ``oc-validity`` (ms; 0 with ``oc=0``, s5.7) and an increasing ``oc-seq``
(s4.4: our clock, in seconds with milliseconds, as the RFC's s6 example).

As a client (:class:`OcClient`): every out-of-dialog request we originate offers ``oc`` with
``oc-algo=loss`` (:func:`offer`, s4.1/s4.2). A response carrying a value stores it for the
server it came from, newest ``oc-seq`` wins (s5.4), until its validity runs out (s5.7); while
it lasts, :meth:`OcClient.admit` sends only 100-oc percent of new out-of-dialog requests to that
server (s7.2's default algorithm: drop each with probability oc/100); the rest are refused
locally with 503 without Retry-After (s5.10). In-dialog requests are never reduced: they keep
established calls alive, which is what the reduction is meant to protect (s5.10.1 lets local
policy prefer them).

Note: ``oc-algo`` is written as a token (``oc-algo=loss``) where s9's grammar quotes it;
our parser and the common ones accept both, and a quoted single token adds nothing.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass

from focus.sip.headers import Via

__all__ = ["LOSS", "OcClient", "OcState", "offer", "offers_loss", "server_feedback"]

LOSS = "loss"
#: s4.3: the validity a client assumes when a response gives none, in milliseconds.
DEFAULT_VALIDITY_MS = 500


def offers_loss(via: Via) -> bool:
    """Whether a request's top Via asks for overload feedback we can give (s5.1)."""
    if "oc" not in via.params:
        return False
    algos = via.params.get("oc-algo")
    if algos is None:
        return True  # s4.2: "loss" is the default every client supports
    return LOSS in (a.strip().lower() for a in algos.split(","))


def server_feedback(via: Via, loss: int, now: float, validity_ms: int) -> Via:
    """The top Via of a response to a request that offered ``oc`` (:func:`offers_loss`),
    carrying our feedback: reduce by ``loss`` percent for ``validity_ms``, or, with
    ``loss`` 0, overload control supported but not in effect (s5.1, s5.7)."""
    loss = max(0, min(100, loss))
    return via.with_params(
        oc=str(loss),
        **{
            "oc-algo": LOSS,
            "oc-validity": str(validity_ms if loss else 0),
            "oc-seq": f"{max(0.0, now):.3f}",
        },
    )


def offer(via: Via) -> Via:
    """Our top Via of a request, offering overload control (s4.1, s4.2)."""
    return via.with_params(oc=None, **{"oc-algo": LOSS})


@dataclass(frozen=True, slots=True)
class OcState:
    """What one server told us last: reduce by ``loss`` percent until ``until``."""

    loss: int
    seq: float
    until: float


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class OcClient:
    """Per-server overload state we keep as an RFC 7339 client (module docstring).

    Servers are ``(host, port)`` keys; at most ``max_servers`` are remembered (the least
    recently updated forgotten first: for a forgotten one control is simply off, s5).
    """

    def __init__(self, *, rng: random.Random | None = None, max_servers: int = 1024) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._servers: OrderedDict[tuple[str, int], OcState] = OrderedDict()
        self._max = max_servers

    def state(self, server: tuple[str, int], now: float) -> OcState | None:
        """The reduction in effect towards ``server`` at ``now``, if any."""
        state = self._servers.get(server)
        if state is None or state.until <= now or state.loss <= 0:
            return None
        return state

    def receive(self, server: tuple[str, int], via: Via, now: float) -> None:
        """Note the feedback in a response's top Via from ``server`` (s5.4, s5.7)."""
        params = via.params
        loss = _number(params.get("oc"))
        if loss is None:
            return  # no value: the server does not do overload control (s5.1)
        algo = (params.get("oc-algo") or LOSS).strip().lower()
        if algo != LOSS:
            return  # a class we never offered: ignore rather than guess
        seq = _number(params.get("oc-seq")) or 0.0
        validity = _number(params.get("oc-validity"))
        if validity is None:
            validity = DEFAULT_VALIDITY_MS
        old = self._servers.get(server)
        if old is not None and seq < old.seq and old.seq - seq < 3600:
            return  # a tardy response (s4.4); a far smaller seq is the server's reset
        # s5.7: validity 0 (or oc 0) ends control; the seq is kept so that a tardy older
        # response cannot switch it on again.
        ends = validity == 0 or loss <= 0
        until = now if ends else now + validity / 1000
        self._servers[server] = OcState(0 if ends else min(100, round(loss)), seq, until)
        self._servers.move_to_end(server)
        while len(self._servers) > self._max:
            self._servers.popitem(last=False)

    def admit(self, server: tuple[str, int], now: float) -> bool:
        """Whether a new out-of-dialog request may go to ``server`` now (s7.2)."""
        state = self.state(server, now)
        if state is None:
            return True
        return self._rng.random() * 100 >= state.loss
