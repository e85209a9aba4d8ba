"""The bundled media server's media engine: RTP/RTCP, G.711, RFC 4733 DTMF, N-1 mixing.

Pure parts (no sockets, no clock): :mod:`.rtp`, :mod:`.rtcp`, :mod:`.g711`, :mod:`.jitter`,
:mod:`.dtmf`, :mod:`.talkers`, :mod:`.mixer`, :mod:`.clock`.  The asyncio layer is
:mod:`.engine` (:class:`MediaEngine`); its docstring documents the API, and :mod:`.mixer`'s
the mapping of RFC 6505 stream directions onto mixing.  The package re-exports only pure
names, so importing a pure module never pulls in asyncio: import the engine from
:mod:`mediactrl.media.engine`.
"""

from .errors import MalformedPacket, MediaUsageError
from .events import ActiveTalkers, DtmfReceived, EndpointBye, EndpointTimedOut, MediaEvent
from .g711 import Law
from .mixer import Flow, JoinSettings

__all__ = [
    "ActiveTalkers",
    "DtmfReceived",
    "EndpointBye",
    "EndpointTimedOut",
    "Flow",
    "JoinSettings",
    "Law",
    "MalformedPacket",
    "MediaEvent",
    "MediaUsageError",
]
