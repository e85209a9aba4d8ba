"""The msc-mixer executor's backend over the real media engine (mediactrl.media).

:class:`EngineBackend` adapts :class:`~mediactrl.media.engine.MediaEngine` to the
:class:`~mediactrl.server.mixer_service.MixerBackend` protocol.  The engine mixes audio only and
joins connections to conferences only, so its capabilities say so (422 for other media, 426 and
427 for connection-connection and conference-conference joins, RFC 6505 s4.6).

Connection ids: the media server's SIP side creates one engine endpoint per media leg, named
by the dialog's connection id as the media server sees it (``local:remote``); the application
server names the same dialog ``remote:local`` (RFC 6230 A.1).  Both are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mediactrl.media.engine import MediaEngine
from mediactrl.media.errors import MediaUsageError
from mediactrl.media.mixer import JoinSettings
from mediactrl.mixer import model as m
from mediactrl.server.mixer_service import (
    BackendCapabilities,
    BackendError,
    ConferenceSettings,
    is_connection_id,
    swapped_connection_id,
)

__all__ = ["ENGINE_CAPABILITIES", "EngineBackend"]

ENGINE_CAPABILITIES = BackendCapabilities(
    codecs=(
        m.Codec("audio", "PCMU"),
        m.Codec("audio", "PCMA"),
        m.Codec("audio", "telephone-event"),
    ),
    media=frozenset({"audio"}),
    video_layouts=False,
    video_switch=False,
    controller_mixing=False,
    connection_joins=False,
    conference_joins=False,
)


class EngineBackend:
    """Drives a :class:`MediaEngine` for the executor; engine refusals become BackendError."""

    def __init__(self, engine: MediaEngine, capabilities: BackendCapabilities | None = None):
        self.engine = engine
        self._capabilities = capabilities or ENGINE_CAPABILITIES

    @property
    def capabilities(self) -> BackendCapabilities:
        return self._capabilities

    def endpoint_id(self, connection_id: str) -> str | None:
        """The engine endpoint of a connection id in either orientation, or None."""
        for candidate in (connection_id, swapped_connection_id(connection_id)):
            try:
                self.engine.endpoint(candidate)
            except MediaUsageError:
                continue
            return candidate
        return None

    def connection_exists(self, connection_id: str) -> bool:
        return self.endpoint_id(connection_id) is not None

    def create_conference(self, conference_id: str, settings: ConferenceSettings) -> None:
        with _mapped():
            self.engine.create_conference(
                conference_id, active_talkers_interval=settings.active_talkers_interval
            )

    def modify_conference(self, conference_id: str, settings: ConferenceSettings) -> None:
        with _mapped():
            self.engine.set_active_talkers(conference_id, settings.active_talkers_interval)

    def destroy_conference(self, conference_id: str) -> None:
        with _mapped():
            self.engine.destroy_conference(conference_id)

    def _pair(self, id1: str, id2: str) -> tuple[str, str, bool]:
        """(endpoint, conference, connection_is_id1) of a connection-conference pair."""
        first, second = is_connection_id(id1), is_connection_id(id2)
        if first == second:
            status = 426 if first else 427
            raise BackendError("the engine joins connections to conferences only", status)
        connection, conference = (id1, id2) if first else (id2, id1)
        endpoint = self.endpoint_id(connection)
        if endpoint is None:
            raise BackendError(f"no connection {connection}", 412)
        return endpoint, conference, first

    def join(self, id1: str, id2: str, streams: tuple[m.Stream, ...]) -> None:
        endpoint, conference, connection_first = self._pair(id1, id2)
        with _mapped():
            settings = JoinSettings.from_streams(streams, connection_first)
            self.engine.join(endpoint, conference, settings)

    def modify_join(self, id1: str, id2: str, streams: tuple[m.Stream, ...]) -> None:
        endpoint, conference, connection_first = self._pair(id1, id2)
        with _mapped():
            previous = self.engine.members(conference).get(endpoint)
            settings = JoinSettings.from_streams(streams, connection_first, previous)
            self.engine.modify_join(endpoint, conference, settings)

    def unjoin(self, id1: str, id2: str) -> None:
        endpoint, conference, _ = self._pair(id1, id2)
        with _mapped():
            self.engine.unjoin(endpoint, conference)

    def watch_media(self, connection_id: str, timeout: float | None) -> None:
        endpoint = self.endpoint_id(connection_id)
        if endpoint is None:
            raise BackendError(f"no connection {connection_id}", 412)
        self.engine.set_media_timeout(endpoint, timeout)


@contextmanager
def _mapped() -> Iterator[None]:
    """Turns a MediaUsageError (which carries its RFC 6505 status) into a BackendError."""
    try:
        yield
    except MediaUsageError as exc:
        raise BackendError(str(exc), exc.status) from exc
