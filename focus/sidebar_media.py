"""Sidebars, whisper, coaching and floor control realised in the media (RFC 5239 s9.4, RFC 6504
s7 "sidebars", the CCMP call-flow draft s6.5-6.9): a PURE planner and an idempotent reconciler.

:func:`plan_media` reads the core's view of one conference and its sidebars (frozen
:class:`~focus.core.state.ConferenceObject` snapshots, or bare RFC 6501 documents) plus the
focus's map {user entity -> media connection id} and says which mixer conferences must exist and
how each connection is joined to each of them (RFC 6505 s4.2.2 stream directions and
``setgain`` volumes, oriented from the connection as id1).  :class:`SidebarMedia` applies such a
plan through a :class:`~mediactrl.driver.MediaDriver` and removes what an earlier plan of the
same conference had and the new one has not.

The media server is not required to join conferences to conferences (RFC 6505 s4.6 status 427;
the bundled engine refuses them), so a sidebar's link with its parent is realised on the
members' own joins: every member of an audio sidebar is joined to the sidebar's mixer AND to
the parent's mixer, with directions computed from the rules below.

How a conference document says it (standard elements first, one documented extension):

* **A user's media in a conference** (RFC 4575 s5.8.5 ``<media><status>`` of the user's audio
  endpoint media, from the participant's point of view): ``sendrecv`` (default), ``recvonly``
  (muted: hears, is not heard), ``sendonly`` (deaf), ``inactive``.  RFC 6501 s4.6.5.6
  ``<xcon:to-mixer name="AudioIn"><xcon:controls>`` ``<mute>true`` also mutes and ``<gain>``
  sets the speaking volume; ``<xcon:from-mixer name="AudioOut">`` ``<gain>`` the listening
  volume.  An endpoint ``<status>`` of ``on-hold`` (RFC 4575 s5.7.3) makes the join inactive,
  ``muted-via-focus`` makes it recvonly.
* **Whether a conference has audio**: an ``<available-media>`` entry of type ``audio`` whose
  status is not ``inactive`` (RFC 4575 s5.3.4).  A document without ``<available-media>`` has
  audio (the focus's blueprints always carry it); a sidebar with only a text entry (the
  private messages of s6.8) gets no mixer and leaves its members' audio alone.
* **The sidebar's link with its parent** (the only extension, RFC 6501 s6 extensibility, kept
  by the codec as an ``anyAttribute`` of the RFC 4575 media entry): on the sidebar's audio
  ``<available-media>/<entry>``, ``sm:parent-audio`` gives the parent conference's audio as
  seen from the sidebar, with the RFC 4575 direction words, and ``sm:parent-gain`` the gain in
  dB at which the members hear it (``xmlns:sm="urn:xcon-focus:params:xml:ns:sidebar-media"``):

  ================  =====================================================================
  ``recvonly``      INTERNAL sidebar (default, s6.5): members stay in the main conference,
                    hear it (at ``parent-gain``, e.g. ``-12`` for "a reduced volume"), and
                    are heard only in the sidebar.
  ``inactive``      EXTERNAL sidebar (s6.6): members are on hold in the main conference
                    (neither heard nor hearing there); a party dialled into the sidebar only
                    hears the sidebar.
  ``sendrecv``      the sidebar is heard in the main conference and hears it (floor control,
                    s6.7: "all participants in the main conference receive audio from the
                    sidebar conference").
  ``sendonly``      heard in the main conference, not hearing it.
  ================  =====================================================================

  The same attribute on one member's audio ``<media>`` in the SIDEBAR's document overrides
  the link for that member only: coaching (s6.9) puts ``sm:parent-audio="sendrecv"`` on the
  agent, whose "outgoing audio should go to the main conference".

Rules for one connection ``c`` of user ``u``:

* in a sidebar S with audio: ``c`` joins S's mixer with u's media in S.  When u is heard in the
  parent through S and every other member of S hears the parent at full volume, u's upstream
  into S is dropped: they hear u in the parent already, and twice would be an echo (coaching:
  the supervisor hears the agent once).
* in the parent P: ``c`` hears P when u's media in P lets it hear and every audio sidebar of u
  links with ``recv``; the volume is u's own listening gain plus the lowest ``parent-gain`` of
  those sidebars.  ``c`` is heard in P when (u's media in P lets it speak and every audio
  sidebar of u links with ``send``) OR when u speaks in a sidebar linked with ``send`` (the
  sidebar's audio is fed to the parent: a muted analyst granted the floor in s6.7).
  On hold (endpoint status, or any external sidebar) is inactive.
* a user in a sidebar but not in the parent's roster only joins the sidebar.

Floor control (s6.7) as this project does it over CCMP: the analysts are ``recvonly`` in the
main conference; the floor sidebar (chair: the moderator) links ``sendrecv``; an analyst who
asks for the floor is added to the floor sidebar as ``recvonly`` (queued: hears, is not heard);
the chair GRANTS the floor with a CCMP userRequest update on the floor sidebar setting that
analyst's audio ``<media><status>`` to ``sendrecv`` (and revokes it with ``recvonly``), one
analyst at a time; the sidebar carries the floor holder's voice to everyone, queued analysts
and the chair included.  Whisper (s6.8): a sidebar linked ``sendrecv`` (its members stay fully
in the main conference) where the whisperer (a moderator, or a connection playing an
announcement) is ``sendrecv`` with the override ``sm:parent-audio="recvonly"`` (its voice stays
in the sidebar) and the target is ``recvonly``: only the target hears it, and keeps hearing
and being heard in the main conference.  Observe and coach (s6.9): a sidebar linked
``recvonly`` (the supervisor hears the main conference and is heard only in the sidebar) with
the agent overridden ``sendrecv``: the customer hears the agent, never the supervisor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from focus.core.state import ConferenceObject, Lifecycle
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
from mediactrl.driver import ConferenceSpec, MediaDriver, MediaDriverError, participant_streams
from mediactrl.mixer import model as m

__all__ = [
    "SM_NS",
    "Link",
    "MediaPlan",
    "PlannedJoin",
    "SidebarMedia",
    "default_mixer_id",
    "has_audio",
    "link_of",
    "plan_media",
    "plan_tree",
    "root_uri",
    "sidebar_documents",
]

log = logging.getLogger(__name__)

#: Namespace of the sidebar-media extension attributes (see the module doc).
SM_NS = "urn:xcon-focus:params:xml:ns:sidebar-media"
PARENT_AUDIO = f"{{{SM_NS}}}parent-audio"
PARENT_GAIN = f"{{{SM_NS}}}parent-gain"

_SENDS = frozenset({MediaStatus.SENDRECV, MediaStatus.SENDONLY})
_RECVS = frozenset({MediaStatus.SENDRECV, MediaStatus.RECVONLY})


def default_mixer_id(conference_uri: str) -> str:
    """The mixer id the focus uses for an XCON-URI (focus.calls.focus.mixer_id)."""
    from focus.core.core import conference_id as mixer_id

    return mixer_id(conference_uri)


@dataclass(frozen=True, slots=True)
class Link:
    """A sidebar's parent audio as seen from the sidebar (module doc table)."""

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
    """One connection (id1) joined to one mixer conference (id2) with these streams."""

    connection: str
    conference_id: str
    streams: tuple[m.Stream, ...]

    @property
    def hears(self) -> bool:
        """Whether the conference's mix reaches the connection (downstream on)."""
        return any(
            s.direction in (m.Direction.SENDRECV, m.Direction.RECVONLY) for s in self.streams
        )

    @property
    def heard(self) -> bool:
        """Whether the connection's audio reaches the conference (upstream on)."""
        return any(
            s.direction in (m.Direction.SENDRECV, m.Direction.SENDONLY) for s in self.streams
        )


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
    """Whether a conference carries audio (module doc: available-media)."""
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
class _UserMedia:
    """A user's audio in one conference (module doc: standard elements)."""

    sends: bool = True
    receives: bool = True
    speak_gain_db: int | None = None
    listen_gain_db: int | None = None
    held: bool = False


def _user_media(user: User) -> _UserMedia:
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
    return _UserMedia(
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
    parent: ConferenceObject | ConferenceInfo,
    lookup: Callable[[str], ConferenceObject | None],
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
def plan_media(
    parent: ConferenceObject | ConferenceInfo,
    sidebars: Iterable[ConferenceObject | ConferenceInfo],
    connections: Mapping[str, str | tuple[str, ...]],
    *,
    mixer_id: Callable[[str], str] = default_mixer_id,
) -> MediaPlan:
    """The media plan of ``parent`` and its ``sidebars`` for the users in ``connections``
    (one connection id, or several when a user has several calls: each is joined alike).

    Pure and deterministic: the same documents and map give the same plan.  Users without a
    connection are not planned; conferences that are not active get no mixer.
    """
    parent_info, parent_active = _info(parent)
    if not parent_active or not has_audio(parent_info):
        return MediaPlan()
    parent_mixer = mixer_id(parent_info.entity)
    parent_users = _users(parent_info)

    audio_sidebars: list[tuple[str, ConferenceInfo, dict[str, User]]] = []
    for sidebar in sidebars:
        info, active = _info(sidebar)
        if active and has_audio(info) and info.entity != parent_info.entity:
            audio_sidebars.append((mixer_id(info.entity), info, _users(info)))
    audio_sidebars.sort(key=lambda s: s[0])

    # The parent first: whether a member is heard and hears there decides its sidebar joins.
    parent_joins: dict[str, PlannedJoin] = {}
    listen_full: dict[str, bool] = {}
    for entity in sorted(parent_users):
        if entity not in connections:
            continue
        own = _user_media(parent_users[entity])
        mine_links = [
            (link_of(info, members[entity]), _user_media(members[entity]).sends)
            for _, info, members in audio_sidebars
            if entity in members
        ]
        if own.held or any(link.status is MediaStatus.INACTIVE for link, _ in mine_links):
            parent_joins[entity] = PlannedJoin(
                _ids(connections, entity)[0], parent_mixer, _streams(False, False)
            )
            continue
        receives = own.receives and all(link.receives for link, _ in mine_links)
        sends = (own.sends and all(link.sends for link, _ in mine_links)) or any(
            link.sends and speaks for link, speaks in mine_links
        )
        gains = [link.gain_db for link, _ in mine_links if link.gain_db is not None]
        listen = own.listen_gain_db
        if gains:
            listen = max(-127, (listen or 0) + min(gains))
        listen_full[entity] = receives and listen in (None, 0)
        parent_joins[entity] = PlannedJoin(
            _ids(connections, entity)[0],
            parent_mixer,
            _streams(sends, receives, own.speak_gain_db, listen),
        )

    joins = [
        PlannedJoin(connection, j.conference_id, j.streams)
        for entity, j in parent_joins.items()
        for connection in _ids(connections, entity)
    ]
    conferences = {parent_mixer}
    for mixer, _, members in audio_sidebars:
        present = sorted(e for e in members if e in connections)
        if not present:
            continue
        conferences.add(mixer)
        media = {e: _user_media(members[e]) for e in present}
        for entity in present:
            mine = media[entity]
            sends = mine.sends
            in_parent = parent_joins.get(entity)
            if sends and in_parent is not None and in_parent.heard:
                listeners = [e for e in present if e != entity and media[e].receives]
                if listeners and all(listen_full.get(e, False) for e in listeners):
                    sends = False  # they hear this member in the parent already
            streams = _streams(sends, mine.receives, mine.speak_gain_db, mine.listen_gain_db)
            joins.extend(
                PlannedJoin(connection, mixer, streams) for connection in _ids(connections, entity)
            )
    return MediaPlan(
        tuple(sorted(conferences)),
        tuple(sorted(joins, key=lambda j: (j.connection, j.conference_id))),
    )


def _ids(connections: Mapping[str, str | tuple[str, ...]], entity: str) -> tuple[str, ...]:
    found = connections[entity]
    return (found,) if isinstance(found, str) else found


def _streams(
    sends: bool, receives: bool, speak: int | None = None, listen: int | None = None
) -> tuple[m.Stream, ...]:
    # Gains are always explicit on an open direction: a <modifyjoin> without <volume> keeps
    # the previous one (RFC 6505 s4.2.2.2), so leaving -12 dB needs an explicit 0 dB.
    return participant_streams(
        muted=not sends,
        deaf=not receives,
        speak_gain_db=(speak or 0) if sends else None,
        listen_gain_db=(listen or 0) if receives else None,
    )


def root_uri(uri: str, lookup: Callable[[str], ConferenceObject | None]) -> str:
    """The conference whose tree holds ``uri``: a sidebar's parent (sidebars of sidebars
    climb further), else ``uri`` itself.  ``lookup`` is e.g. ``store.get``."""
    seen = {uri}
    obj = lookup(uri)
    while obj is not None and obj.kind.is_sidebar and obj.parent and obj.parent not in seen:
        seen.add(obj.parent)
        uri = obj.parent
        obj = lookup(uri)
    return uri


def plan_tree(
    root: str,
    lookup: Callable[[str], ConferenceObject | None],
    connections: Mapping[str, str | tuple[str, ...]],
    *,
    mixer_id: Callable[[str], str] = default_mixer_id,
) -> MediaPlan:
    """:func:`plan_media` of the conference ``root`` and its sidebars as ``lookup`` (e.g.
    ``store.get``) has them now; an empty plan when the conference is gone."""
    parent = lookup(root)
    if parent is None:
        return MediaPlan()
    return plan_media(parent, sidebar_documents(parent, lookup), connections, mixer_id=mixer_id)


# --------------------------------------------------------------------- the reconciler
class SidebarMedia:
    """Applies media plans through a driver, one plan per conference tree (its root's URI).

    ``update`` is idempotent: re-applying the same plan sends nothing (the driver's own plan
    is empty when desired equals known).  It first ensures the mixers, then sets every planned
    join, then unjoins what the previous plan of the same tree had and this one has not, and
    destroys mixers no longer planned (an ended sidebar).  A refusal of the media server is
    logged and re-raised as the driver's :class:`MediaDriverError` after the rest was applied.
    Updates run one at a time (a lock), so an older plan never lands after a newer one when
    :meth:`refresh` is used: it plans from the documents as they are once it holds the lock.
    """

    def __init__(self, driver: MediaDriver) -> None:
        self.driver = driver
        self._applied: dict[str, MediaPlan] = {}
        self._lock = asyncio.Lock()

    def applied(self, root_uri: str) -> MediaPlan | None:
        """The last plan applied for a tree."""
        return self._applied.get(root_uri)

    async def update(self, root_uri: str, plan: MediaPlan) -> None:
        """Makes the media server match ``plan`` for the tree rooted at ``root_uri``."""
        async with self._lock:
            await self._update(root_uri, plan)

    async def refresh(
        self,
        uri: str,
        lookup: Callable[[str], ConferenceObject | None],
        connections: Mapping[str, str | tuple[str, ...]]
        | Callable[[], Mapping[str, str | tuple[str, ...]]],
        *,
        mixer_id: Callable[[str], str] = default_mixer_id,
    ) -> MediaPlan:
        """Re-plans and applies the tree holding ``uri`` (a conference or one of its
        sidebars) from ``lookup`` (``store.get``) and the focus's current connections; the
        call to make after every committed core change of that tree."""
        async with self._lock:
            root = root_uri(uri, lookup)
            current = connections() if callable(connections) else connections
            plan = plan_tree(root, lookup, current, mixer_id=mixer_id)
            await self._update(root, plan)
            if not plan.conferences:
                self._applied.pop(root, None)
            return plan

    async def drop(self, root_uri: str) -> None:
        """The tree ended: its mixers go (their joins with them)."""
        async with self._lock:
            await self._update(root_uri, MediaPlan())
            self._applied.pop(root_uri, None)

    async def _update(self, root_uri: str, plan: MediaPlan) -> None:
        previous = self._applied.get(root_uri, MediaPlan())
        self._applied[root_uri] = plan
        failures: dict[str | tuple[str, str], str] = {}
        for conference in plan.conferences:
            if conference not in self.driver.desired.conferences:
                await self._try(self.driver.ensure_conference(ConferenceSpec(conference)), failures)
        for planned in plan.joins:
            if planned.conference_id not in self.driver.desired.conferences:
                continue  # its mixer was refused: reported with the failures
            await self._try(
                self.driver.set_join(planned.connection, planned.conference_id, planned.streams),
                failures,
            )
        wanted = {(j.connection, j.conference_id) for j in plan.joins}
        for old in previous.joins:
            key = (old.connection, old.conference_id)
            if key not in wanted and old.conference_id in plan.conferences:
                await self._try(self.driver.unjoin(*key), failures)
        for conference in previous.conferences:
            if conference not in plan.conferences:
                await self._try(self.driver.destroy_conference(conference), failures)
        if failures:
            raise MediaDriverError(failures)

    @staticmethod
    async def _try(call: Awaitable[None], failures: dict[str | tuple[str, str], str]) -> None:
        try:
            await call
        except MediaDriverError as exc:
            log.warning("media server refused part of a sidebar plan: %s", exc)
            failures.update(exc.failures)
