"""The media plan of one conference tree, PURE (rules: focus/mediaplan/README.md).

:func:`plan_media` reads the core's view of a conference and its sidebars (frozen
:class:`~focus.core.state.ConferenceObject` snapshots, or bare RFC 6501 documents) and the
focus's map {user entity -> media connection id(s)}, and says which mixer conferences must
exist and how each connection is joined to each: heard or not, hearing or not, at which gains.
Every join of the tree comes from here: the conference's own (hold, mutes, gains) and those
of its sidebars (internal, external, whisper, coaching, floor control).

No I/O, no clock, no asyncio: the same documents and map give the same plan.
:mod:`focus.mediaplan.reconcile` applies plans to a media server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeAlias

from focus.core import ConferenceObject, Lifecycle, conference_id
from focus.xcon.model import (
    ConferenceInfo,
    ConferenceMedium,
    EndpointStatus,
    Media,
    MediaStatus,
    Mixer,
    MixerName,
    User,
)

__all__ = [
    "PARENT_AUDIO",
    "PARENT_GAIN",
    "SM_NS",
    "Connections",
    "Link",
    "Lookup",
    "MediaPlan",
    "PlannedJoin",
    "has_audio",
    "link_of",
    "plan_media",
    "plan_tree",
    "root_uri",
    "sidebar_documents",
]

#: Namespace of the sidebar-media extension attributes (README: the sidebar's link).
SM_NS = "urn:xcon-focus:params:xml:ns:sidebar-media"
PARENT_AUDIO = f"{{{SM_NS}}}parent-audio"
PARENT_GAIN = f"{{{SM_NS}}}parent-gain"

#: The focus's map {user entity -> media connection id}; a user with several calls (phones
#: sharing an AOR) has a tuple of ids, each joined alike.
Connections: TypeAlias = Mapping[str, str | tuple[str, ...]]
#: A stored conference by XCON-URI, or None (e.g. ``ConferenceStore.get``).
Lookup: TypeAlias = Callable[[str], ConferenceObject | None]

_SENDS = frozenset({MediaStatus.SENDRECV, MediaStatus.SENDONLY})
_RECVS = frozenset({MediaStatus.SENDRECV, MediaStatus.RECVONLY})


@dataclass(frozen=True, slots=True)
class Link:
    """A sidebar's parent audio as seen from the sidebar (README: the sidebar's link)."""

    status: MediaStatus = MediaStatus.RECVONLY
    gain_db: int | None = None

    @property
    def sends(self) -> bool:
        return self.status in _SENDS

    @property
    def receives(self) -> bool:
        return self.status in _RECVS


@dataclass(frozen=True, slots=True)
class PlannedJoin:
    """One connection joined to one mixer conference, seen from the connection: ``heard``
    (its audio goes into the mix), ``hears`` (the mix comes to it), and the gains in dB of
    those two directions (0: unchanged; always 0 on a closed direction)."""

    connection: str
    conference_id: str
    heard: bool
    hears: bool
    speak_gain_db: int = 0
    listen_gain_db: int = 0

    @property
    def status(self) -> MediaStatus:
        """The join as an RFC 4575 s5.8.5 direction word (``recvonly``: muted)."""
        return _direction_word(self.heard, self.hears)


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """The media of one conference tree: mixers to exist and every planned join (sorted)."""

    conferences: tuple[str, ...] = ()
    joins: tuple[PlannedJoin, ...] = ()

    def join(self, connection: str, conference_id: str) -> PlannedJoin | None:
        """The planned join of a connection to a mixer, or None."""
        for planned in self.joins:
            if planned.connection == connection and planned.conference_id == conference_id:
                return planned
        return None


# --------------------------------------------------------------------- reading the documents
def _status(value: MediaStatus | str | None) -> MediaStatus | None:
    try:
        return None if value is None else MediaStatus(value)
    except ValueError:
        return None  # an extension word we do not know: treated as unsaid


def _audio_entry(info: ConferenceInfo) -> ConferenceMedium | None:
    desc = info.conference_description
    if desc is None or desc.available_media is None:
        return None
    for entry in desc.available_media.entries:
        if (entry.type or "").lower() == "audio":
            return entry
    return None


def has_audio(info: ConferenceInfo) -> bool:
    """Whether a conference carries audio (README: whether a conference has audio)."""
    desc = info.conference_description
    if desc is None or desc.available_media is None:
        return True
    entry = _audio_entry(info)
    return entry is not None and _status(entry.status) is not MediaStatus.INACTIVE


def _attribute(pairs: tuple[tuple[str, str], ...], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def _link_from(pairs: tuple[tuple[str, str], ...], default: Link) -> Link:
    status = _status(_attribute(pairs, PARENT_AUDIO))
    gain_text = _attribute(pairs, PARENT_GAIN)
    gain = default.gain_db
    if gain_text is not None:
        try:
            gain = max(-127, min(127, int(gain_text)))  # RFC 6501 gain-type range
        except ValueError:
            gain = default.gain_db
    return Link(status if status is not None else default.status, gain)


def link_of(sidebar: ConferenceInfo, user: User | None = None) -> Link:
    """The sidebar's link with its parent, for ``user`` when given (its override wins)."""
    entry = _audio_entry(sidebar)
    link = _link_from(entry.extension_attributes, Link()) if entry is not None else Link()
    media = _audio_media(user) if user is not None else None
    return _link_from(media.extension_attributes, link) if media is not None else link


def _audio_media(user: User) -> Media | None:
    """The user's audio media, the last mention of each setting winning: a CCMP patch that
    names no endpoint entity (a mute by another client) is appended by the core's merge as
    a keyless endpoint after the call's own."""
    found: Media | None = None
    for endpoint in user.endpoints:
        for media in endpoint.media:
            if (media.type or "audio").lower() != "audio":
                continue
            if found is None:
                found = media
                continue
            found = replace(
                found,
                status=media.status if media.status is not None else found.status,
                to_mixer=media.to_mixer if media.to_mixer is not None else found.to_mixer,
                from_mixer=media.from_mixer if media.from_mixer is not None else found.from_mixer,
                # later first: _attribute takes the first match
                extension_attributes=media.extension_attributes + found.extension_attributes,
            )
    return found


def _mixer_gain(mixer: Mixer | None) -> tuple[int | None, bool]:
    if mixer is None:
        return None, False
    gain: int | None = None
    muted = False
    for controls in mixer.controls:
        if controls.gain is not None:
            gain = controls.gain
        if controls.mute:
            muted = True
    return gain, muted


@dataclass(frozen=True, slots=True)
class _Flow:
    """A user's audio in one conference, or how her connection is joined to one mixer."""

    sends: bool = True
    receives: bool = True
    speak_gain_db: int | None = None
    listen_gain_db: int | None = None
    held: bool = False

    @property
    def hears_at_full_volume(self) -> bool:
        return self.receives and self.listen_gain_db in (None, 0)


def _user_media(user: User) -> _Flow:
    """What a user's entry in one conference document says (README: a user's media)."""
    status = MediaStatus.SENDRECV
    held = False
    for endpoint in user.endpoints:
        if endpoint.status == EndpointStatus.ON_HOLD:
            held = True
        elif endpoint.status == EndpointStatus.MUTED_VIA_FOCUS:
            status = MediaStatus.RECVONLY
    media = _audio_media(user)
    speak = listen = None
    muted = False
    if media is not None:
        said = _status(media.status)
        if said is not None:
            status = said if status is MediaStatus.SENDRECV else _narrow(status, said)
        to_mixer = media.to_mixer if _is(media.to_mixer, MixerName.AUDIO_IN) else None
        from_mixer = media.from_mixer if _is(media.from_mixer, MixerName.AUDIO_OUT) else None
        speak, muted = _mixer_gain(to_mixer)
        listen, _ = _mixer_gain(from_mixer)
    return _Flow(
        sends=status in _SENDS and not muted and not held,
        receives=status in _RECVS and not held,
        speak_gain_db=speak,
        listen_gain_db=listen,
        held=held,
    )


def _is(mixer: Mixer | None, name: MixerName) -> bool:
    return mixer is not None and str(mixer.name) == name.value


def _narrow(a: MediaStatus, b: MediaStatus) -> MediaStatus:
    sends = a in _SENDS and b in _SENDS
    receives = a in _RECVS and b in _RECVS
    return _direction_word(sends, receives)


def _direction_word(sends: bool, receives: bool) -> MediaStatus:
    if sends and receives:
        return MediaStatus.SENDRECV
    if sends:
        return MediaStatus.SENDONLY
    if receives:
        return MediaStatus.RECVONLY
    return MediaStatus.INACTIVE


def _users(info: ConferenceInfo) -> dict[str, User]:
    if info.users is None:
        return {}
    return {u.entity: u for u in info.users.users if u.entity}


def _info(obj: ConferenceObject | ConferenceInfo) -> tuple[ConferenceInfo, bool]:
    if isinstance(obj, ConferenceObject):
        return obj.info, obj.lifecycle is Lifecycle.ACTIVE
    active = obj.conference_state.active if obj.conference_state is not None else None
    return obj, active is not False


def sidebar_documents(
    parent: ConferenceObject | ConferenceInfo, lookup: Lookup
) -> list[ConferenceObject | ConferenceInfo]:
    """The parent's sidebars: by-val ones from its document, by-ref ones through ``lookup``
    (e.g. ``store.get``), in document order.  Pass the result to :func:`plan_media`."""
    info, _ = _info(parent)
    found: list[ConferenceObject | ConferenceInfo] = []
    if info.sidebars_by_val is not None:
        for entry in info.sidebars_by_val.entries:
            obj = lookup(entry.entity)
            found.append(obj if obj is not None else entry)
    if info.sidebars_by_ref is not None:
        for ref in info.sidebars_by_ref.entries:
            obj = lookup(ref.uri)
            if obj is not None:
                found.append(obj)
    return found


# --------------------------------------------------------------------- the planner
_Sidebar: TypeAlias = tuple[str, ConferenceInfo, dict[str, User]]  # mixer, document, users


def plan_media(
    parent: ConferenceObject | ConferenceInfo,
    sidebars: Iterable[ConferenceObject | ConferenceInfo],
    connections: Connections,
) -> MediaPlan:
    """The media plan of ``parent`` and its ``sidebars`` for the users in ``connections``.

    Pure and deterministic: the same documents and map give the same plan.  Users without a
    connection are not planned; conferences that are not active get no mixer.  A mixer's id
    is the conference's :func:`~focus.core.conference_id` (the user part of its SIP URI).
    """
    parent_info, parent_active = _info(parent)
    if not parent_active or not has_audio(parent_info):
        return MediaPlan()
    parent_mixer = conference_id(parent_info.entity)
    parent_users = _users(parent_info)
    audio_sidebars: list[_Sidebar] = []
    for sidebar in sidebars:
        info, active = _info(sidebar)
        if active and has_audio(info) and info.entity != parent_info.entity:
            audio_sidebars.append((conference_id(info.entity), info, _users(info)))
    audio_sidebars.sort(key=lambda s: s[0])

    # The parent first: whether a user is heard and hears there decides her sidebar joins.
    everyone = set(parent_users).union(*(members for _, _, members in audio_sidebars))
    in_parent: dict[str, _Flow] = {}
    for entity in sorted(e for e in everyone if e in connections):
        own = _user_media(parent_users[entity]) if entity in parent_users else None
        mine = [
            (link_of(info, members[entity]), _user_media(members[entity]))
            for _, info, members in audio_sidebars
            if entity in members
        ]
        flow = _parent_flow(own, mine)
        if flow is not None:
            in_parent[entity] = flow

    joins = [j for e, flow in in_parent.items() for j in _joins(connections, e, parent_mixer, flow)]
    conferences = {parent_mixer}
    for mixer, _, members in audio_sidebars:
        present = sorted(e for e in members if e in connections)
        if not present:
            continue
        conferences.add(mixer)
        media = {e: _user_media(members[e]) for e in present}
        for entity in present:
            flow = media[entity]
            there = in_parent.get(entity)
            if flow.sends and there is not None and there.sends:
                listeners = [e for e in present if e != entity and media[e].receives]
                if listeners and all(
                    e in in_parent and in_parent[e].hears_at_full_volume for e in listeners
                ):
                    flow = replace(flow, sends=False)  # they hear her in the parent already
            joins.extend(_joins(connections, entity, mixer, flow))
    return MediaPlan(
        tuple(sorted(conferences)),
        tuple(sorted(joins, key=lambda j: (j.connection, j.conference_id))),
    )


def _parent_flow(own: _Flow | None, mine: list[tuple[Link, _Flow]]) -> _Flow | None:
    """How a user's connection is joined to the parent's mixer (README: rules), from her
    media in the parent (None: she is in no roster of the parent, only in sidebars) and the
    link and her media of each audio sidebar she is in; None: not joined to it at all."""
    links = [link for link, _ in mine]
    external = any(link.status is MediaStatus.INACTIVE for link in links)
    speaks_through = any(link.sends and flow.sends for link, flow in mine)
    gains = [link.gain_db for link in links if link.gain_db is not None]
    if own is None:  # RFC 6504 s7.2 / s7.4: hears the parent only if every link says so
        if external or any(flow.held for _, flow in mine):
            return None
        sends, receives = speaks_through, all(link.receives for link in links)
        if not sends and not receives:
            return None
        speak = listen = None
    else:
        if own.held or external:
            return _Flow(sends=False, receives=False)
        receives = own.receives and all(link.receives for link in links)
        sends = (own.sends and all(link.sends for link in links)) or speaks_through
        speak, listen = own.speak_gain_db, own.listen_gain_db
    if gains:
        listen = max(-127, (listen or 0) + min(gains))
    return _Flow(sends=sends, receives=receives, speak_gain_db=speak, listen_gain_db=listen)


def _joins(connections: Connections, entity: str, mixer: str, flow: _Flow) -> list[PlannedJoin]:
    found = connections[entity]
    return [
        PlannedJoin(
            connection,
            mixer,
            heard=flow.sends,
            hears=flow.receives,
            speak_gain_db=(flow.speak_gain_db or 0) if flow.sends else 0,
            listen_gain_db=(flow.listen_gain_db or 0) if flow.receives else 0,
        )
        for connection in ((found,) if isinstance(found, str) else found)
    ]


def root_uri(uri: str, lookup: Lookup) -> str:
    """The conference whose tree holds ``uri``: a sidebar's parent (sidebars of sidebars
    climb further), else ``uri`` itself.  ``lookup`` is e.g. ``store.get``."""
    seen = {uri}
    obj = lookup(uri)
    while obj is not None and obj.kind.is_sidebar and obj.parent and obj.parent not in seen:
        seen.add(obj.parent)
        uri = obj.parent
        obj = lookup(uri)
    return uri


def plan_tree(root: str, lookup: Lookup, connections: Connections) -> MediaPlan:
    """:func:`plan_media` of the conference ``root`` and its sidebars as ``lookup`` (e.g.
    ``store.get``) has them now; an empty plan when the conference is gone."""
    parent = lookup(root)
    if parent is None:
        return MediaPlan()
    return plan_media(parent, sidebar_documents(parent, lookup), connections)
