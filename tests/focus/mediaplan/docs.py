"""RFC 6501 documents for the sidebar flows, written the way a CCMP client would set them."""

from __future__ import annotations

from pathlib import Path

from focus.core.store import ConferenceStore
from focus.mediaplan import PARENT_AUDIO, PARENT_GAIN
from focus.xcon.model import (
    AvailableMedia,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    ConferenceState,
    Controls,
    Endpoint,
    EndpointStatus,
    Media,
    MediaStatus,
    Mixer,
    MixerName,
    User,
    Users,
)

VECTORS = Path(__file__).parent / "vectors"


def vector(name: str, sidebar: str, label: str) -> bytes:
    """A CCMP confInfo vector for ``sidebar`` whose audio entry is labelled ``label``."""
    text = (VECTORS / name).read_text().replace("SIDEBAR-URI", sidebar)
    return text.replace("AUDIO-LABEL", label).encode()


def audio_label(store: ConferenceStore, uri: str) -> str:
    """The label of a stored conference's audio <available-media> entry."""
    obj = store.get(uri)
    assert obj is not None and obj.info.conference_description is not None
    media = obj.info.conference_description.available_media
    assert media is not None
    return next(e.label for e in media.entries if e.type == "audio")


def user(
    entity: str,
    status: str | None = None,
    *,
    held: bool = False,
    parent_audio: str | None = None,
    listen_gain: int | None = None,
    mute_control: bool = False,
    muted_via_focus: bool = False,
) -> User:
    """A user with one audio endpoint media (RFC 4575 s5.8.5 status, RFC 6501 s4.6.5.6)."""
    attributes = ((PARENT_AUDIO, parent_audio),) if parent_audio is not None else ()
    from_mixer = (
        Mixer(name=MixerName.AUDIO_OUT, controls=(Controls(gain=listen_gain),))
        if listen_gain is not None
        else None
    )
    to_mixer = (
        Mixer(name=MixerName.AUDIO_IN, controls=(Controls(mute=True),)) if mute_control else None
    )
    media = Media(
        id="1",
        type="audio",
        label="audio",
        status=MediaStatus(status) if status is not None else None,
        from_mixer=from_mixer,
        to_mixer=to_mixer,
        extension_attributes=attributes,
    )
    endpoint = Endpoint(
        entity=f"sip:{entity.partition(':')[2]}",
        status=EndpointStatus.ON_HOLD
        if held
        else EndpointStatus.MUTED_VIA_FOCUS
        if muted_via_focus
        else EndpointStatus.CONNECTED,
        media=(media,),
    )
    return User(entity=entity, endpoints=(endpoint,))


def conference(
    uri: str,
    users: list[User],
    *,
    link: str | None = None,
    link_gain: int | None = None,
    audio: bool = True,
    active: bool = True,
) -> ConferenceInfo:
    """A conference (or sidebar) document; ``link``/``link_gain`` are the sidebar's
    sm:parent-audio / sm:parent-gain on its audio entry."""
    attributes: list[tuple[str, str]] = []
    if link is not None:
        attributes.append((PARENT_AUDIO, link))
    if link_gain is not None:
        attributes.append((PARENT_GAIN, str(link_gain)))
    entries = [
        ConferenceMedium(label="text", type="text", status=MediaStatus.SENDRECV),
    ]
    if audio:
        entries.insert(
            0,
            ConferenceMedium(
                label="audio",
                type="audio",
                status=MediaStatus.SENDRECV,
                extension_attributes=tuple(attributes),
            ),
        )
    return ConferenceInfo(
        entity=uri,
        conference_description=ConferenceDescription(
            available_media=AvailableMedia(entries=tuple(entries))
        ),
        conference_state=ConferenceState(active=active),
        users=Users(users=tuple(users)),
    )
