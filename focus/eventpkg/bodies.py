"""NOTIFY bodies of the conference event package, built from conference snapshots.

Three formats (RFC 4575 s3.4, RFC 6502 s3):

* ``application/conference-info+xml`` (RFC 4575): :func:`rfc4575_view` keeps
  only what the RFC 4575 schema defines, :func:`rfc4575_full` writes it with
  ``state="full"`` and a version, :func:`rfc4575_partial` computes the
  ``state="partial"`` document that takes a subscriber from one view to the
  next (RFC 4575 s4.4), and :func:`apply_rfc4575` is the subscriber's side,
  the RFC 4575 s4.6 procedure (tests use it to prove partial + old == new).
* ``application/xcon-conference-info+xml`` (RFC 6502 s4): :func:`xcon_full`,
  the RFC 6501 document without 'state'/'version' (RFC 6501 s4.1).
* ``application/xcon-conference-info-diff+xml`` (RFC 6502 s5): see
  :mod:`focus.eventpkg.xmlpatch`, re-exported here as :func:`xcon_diff`.

Every function takes the view a subscriber may see: run
:func:`focus.eventpkg.policy.view_for` first.

How partial documents are chosen (RFC 4575 s4.4 leaves it to the notifier):
the elements RFC 4575 lets carry 'state' (conference-info, users, user,
endpoint, sidebars-by-val, sidebars-by-ref) are sent partially, keyed as s4.5
says; everything else is atomic and is sent whole when it changed.  A change a
partial document cannot express is sent as the full content of the nearest
element that can: an atomic element or a <media> field that disappeared (s4.6
has no way to delete an atomic element), a keyed list whose order changed
(s4.6 appends new keys at the end), a <media> that went away (<media> has no
'state'), or entries without a unique key.  When that element is
<conference-info> itself the "partial" document is a full one, which s4.6
handles the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields, replace
from typing import Any, Final, TypeVar

from focus.xcon.codec import conference_info_to_bytes
from focus.xcon.merge import strip_state
from focus.xcon.model import (
    AvailableMedia,
    CallInfo,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceMedium,
    ConferenceState,
    Endpoint,
    Execution,
    HostInfo,
    Media,
    SidebarsByVal,
    SipDialogId,
    State,
    UriEntry,
    Uris,
    User,
    Users,
    XconElement,
)

__all__ = [
    "CONFERENCE_INFO",
    "XCON_CONFERENCE_INFO",
    "XCON_CONFERENCE_INFO_DIFF",
    "Applied",
    "Outcome",
    "apply_rfc4575",
    "participation_uri",
    "rfc4575_full",
    "rfc4575_partial",
    "rfc4575_partial_info",
    "rfc4575_view",
    "xcon_full",
    "xcon_view",
]

#: RFC 4575 s9.2.
CONFERENCE_INFO: Final = "application/conference-info+xml"
#: RFC 6502 s6.1.
XCON_CONFERENCE_INFO: Final = "application/xcon-conference-info+xml"
#: RFC 6502 s6.2.
XCON_CONFERENCE_INFO_DIFF: Final = "application/xcon-conference-info-diff+xml"

E = TypeVar("E", bound=XconElement)

# --------------------------------------------------------------------------- views

# The RFC 4575 fields of each class that has XCON-only ones (RFC 6501 s4 adds
# them in the xcon namespace); classes not listed are RFC 4575 through and
# through, or (floor information, codecs, mixers, ...) XCON-only and dropped
# with the field that holds them.
_RFC4575_FIELDS: Final[dict[type[XconElement], frozenset[str]]] = {
    ConferenceInfo: frozenset(
        {
            "entity",
            "state",
            "version",
            "conference_description",
            "host_info",
            "conference_state",
            "users",
            "sidebars_by_ref",
            "sidebars_by_val",
        }
    ),
    ConferenceDescription: frozenset(
        {
            "lang",
            "display_text",
            "subject",
            "free_text",
            "keywords",
            "conf_uris",
            "service_uris",
            "maximum_user_count",
            "available_media",
        }
    ),
    UriEntry: frozenset({"uri", "display_text", "purpose", "modified"}),
    ConferenceMedium: frozenset({"label", "display_text", "type", "status"}),
    ConferenceState: frozenset({"user_count", "active", "locked"}),
    Users: frozenset({"state", "users"}),
    User: frozenset(
        {
            "entity",
            "state",
            "display_text",
            "associated_aors",
            "roles",
            "languages",
            "cascaded_focus",
            "endpoints",
        }
    ),
    Media: frozenset({"id", "display_text", "type", "label", "src_id", "status"}),
}
_RFC4575_CLASSES: Final = frozenset(
    {
        ConferenceInfo,
        ConferenceDescription,
        Uris,
        UriEntry,
        Execution,
        AvailableMedia,
        ConferenceMedium,
        HostInfo,
        ConferenceState,
        Users,
        User,
        Endpoint,
        CallInfo,
        SipDialogId,
        Media,
        SidebarsByVal,
    }
)
_BOOKKEEPING: Final = frozenset({"extensions", "extension_attributes", "cleared"})


def rfc4575_view(info: ConferenceInfo, *, entity: str | None = None) -> ConferenceInfo:
    """``info`` with only what RFC 4575 defines: no RFC 6501 elements, no
    extension elements or attributes, no 'state'/'version' (the caller stamps
    those per subscription).  A legacy subscriber gets this.

    ``entity`` is the conference URI the subscriber subscribed to, the SIP URI
    (RFC 4575 s5.1), where ``info.entity`` is the XCON-URI (RFC 6501 s3.3): given,
    it names the conference and each sidebars-by-val entry is named by its own
    :func:`participation_uri` (when it lists one), so the document names
    conferences the way an RFC 4575 client subscribes to them.  None keeps
    ``info``'s names."""
    view = _only_rfc4575(info)
    if entity is None:
        return view
    changes: dict[str, Any] = {}
    if view.entity != entity:
        changes["entity"] = entity
    by_val = view.sidebars_by_val
    if by_val is not None and by_val.entries:
        entries = tuple(_named_by_sip_uri(e) for e in by_val.entries)
        if any(a is not b for a, b in zip(entries, by_val.entries, strict=True)):
            changes["sidebars_by_val"] = replace(by_val, entries=entries)
    return replace(view, **changes) if changes else view


def participation_uri(info: ConferenceInfo, user: str | None = None) -> str | None:
    """The conference's SIP URI: the sip:/sips: entry of its <conf-uris> with purpose
    'participation' (where phones dial it; the core lists its own there), the first
    one whose user part is ``user`` when that is given and one is, else the first;
    None if it lists none."""
    desc = info.conference_description
    uris = desc.conf_uris if desc is not None else None
    found = [
        e.uri
        for e in (uris.entries if uris is not None else ())
        if (e.purpose or "").strip().lower() == "participation"
        and e.uri.lower().startswith(("sip:", "sips:"))
    ]
    if user is not None:
        for uri in found:
            head, at, _ = uri.partition(":")[2].partition("@")
            if at and head == user:
                return uri
    return found[0] if found else None


def _named_by_sip_uri(sidebar: ConferenceInfo) -> ConferenceInfo:
    sip = participation_uri(sidebar)
    return replace(sidebar, entity=sip) if sip is not None and sip != sidebar.entity else sidebar


def _only_rfc4575(obj: E) -> E:
    keep = _RFC4575_FIELDS.get(type(obj))
    changes: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in _BOOKKEEPING:
            if value:
                changes[f.name] = type(value)()
        elif f.name in ("state", "version"):
            if value is not None:
                changes[f.name] = None
        elif keep is not None and f.name not in keep:
            if value is not None and value != ():
                changes[f.name] = f.default  # None or ()
        elif isinstance(value, XconElement) and type(value) not in _RFC4575_CLASSES:
            changes[f.name] = None
        elif (walked := _walk(value, _only_rfc4575)) is not value:
            changes[f.name] = walked
    return replace(obj, **changes) if changes else obj


def xcon_view(info: ConferenceInfo) -> ConferenceInfo:
    """``info`` as an RFC 6501 conference object: no 'state'/'version' anywhere
    (RFC 6501 s4.1 does not use them) and no "cleared" marks (an empty element
    means something only in an update), everything else kept."""
    return _no_state(info)


def _no_state(obj: E) -> E:
    changes: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("state", "version"):
            if value is not None:
                changes[f.name] = None
        elif f.name == "cleared":
            if value:
                changes[f.name] = frozenset()
        elif (walked := _walk(value, _no_state)) is not value:
            changes[f.name] = walked
    return replace(obj, **changes) if changes else obj


def _walk(value: object, clean: Callable[[Any], Any]) -> object:
    """A field's value with ``clean`` applied to the XCON element it is or the elements
    its tuple holds; ``value`` itself when nothing changed (so unchanged parts stay
    shared and the caller rebuilds only what changed)."""
    if isinstance(value, XconElement):
        return clean(value)
    if isinstance(value, tuple) and value and isinstance(value[0], XconElement):
        items = tuple(clean(x) for x in value)
        if any(a is not b for a, b in zip(items, value, strict=True)):
            return items
    return value


# --------------------------------------------------------------------------- full documents


def rfc4575_full(view: ConferenceInfo, version: int) -> bytes:
    """The RFC 4575 full document (``state="full"``, RFC 4575 s4.6) of ``view``."""
    _check_version(version)
    doc = replace(rfc4575_view(view), state=State.FULL, version=version)
    return conference_info_to_bytes(doc)


def xcon_full(view: ConferenceInfo) -> bytes:
    """The ``application/xcon-conference-info+xml`` document of ``view`` (RFC 6502 s4)."""
    return conference_info_to_bytes(xcon_view(view))


def _check_version(version: int) -> None:
    # RFC 4575 s5.2: xs:unsignedInt
    if not 0 <= version <= 0xFFFFFFFF:
        raise ValueError(f"version {version} is outside xs:unsignedInt")


# --------------------------------------------------------------------------- partial documents


class _Full(Exception):
    """The change can not be told partially: send this element whole."""


# (class, field) -> key of the repeated element (RFC 4575 s4.5)
_KEYED: Final[dict[tuple[type[XconElement], str], Callable[[Any], Hashable]]] = {
    (Users, "users"): lambda u: u.entity,
    (User, "endpoints"): lambda e: e.entity,
    (Endpoint, "media"): lambda m: m.id,
    (Uris, "entries"): lambda e: e.uri,
    (SidebarsByVal, "entries"): lambda c: c.entity,
}
# Where a child element is sent with 'state' (RFC 4575 s4.4 lists the elements);
# the keyed rows with 'state' are users, endpoints and sidebars-by-val entries.
_STATEFUL_CHILDREN: Final = frozenset(
    {
        (ConferenceInfo, "users"),
        (ConferenceInfo, "sidebars_by_ref"),
        (ConferenceInfo, "sidebars_by_val"),
    }
)
_STATEFUL_ROWS: Final = frozenset({ConferenceInfo, User, Endpoint})
_IDENTITY: Final = frozenset({"entity", "state", "version"})


def rfc4575_partial_info(old: ConferenceInfo, new: ConferenceInfo) -> ConferenceInfo | None:
    """The partial notification (as a model, without version) taking a subscriber
    holding ``old`` to ``new``; both are RFC 4575 views.  None if they are equal.
    The result says ``state="full"`` when no partial document can express the
    change (see the module doc)."""
    old, new = rfc4575_view(old), rfc4575_view(new)
    if old == new:
        return None
    if old.entity != new.entity:
        return replace(new, state=State.FULL)
    try:
        partial: ConferenceInfo = _diff_node(old, new)
    except _Full:
        return replace(new, state=State.FULL)
    return partial


def rfc4575_partial(old: ConferenceInfo, new: ConferenceInfo, version: int) -> bytes | None:
    """The RFC 4575 document with ``version`` taking a subscriber from view ``old``
    to view ``new`` (``state="partial"``, or ``"full"`` when a partial one can not
    say it); None when there is nothing to tell."""
    _check_version(version)
    info = rfc4575_partial_info(old, new)
    if info is None:
        return None
    return conference_info_to_bytes(replace(info, version=version))


def _diff_node(old: Any, new: Any) -> Any:
    """``new`` as a "partial" element relative to ``old`` (same class, same key)."""
    changes: dict[str, Any] = {}
    for f in fields(new):
        name = f.name
        if name in _BOOKKEEPING or name in _IDENTITY:
            continue
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        key = _KEYED.get((type(new), name))
        if key is not None:
            changes[name] = _diff_keyed(before, after, key)
        elif (type(new), name) in _STATEFUL_CHILDREN:
            changes[name] = (
                type(before)(state=State.DELETED) if after is None else _diff_child(before, after)
            )
        elif after is None or after == ():
            raise _Full  # an atomic element went away: s4.6 can not delete it
        else:
            changes[name] = after  # atomic: sent whole (s4.6 step 3.2)
    ident = {f.name: getattr(new, f.name) for f in fields(new) if f.name in _IDENTITY}
    ident.pop("state", None)
    ident.pop("version", None)
    return replace(type(new)(**ident), state=State.PARTIAL, **changes)


def _diff_child(before: Any, after: Any) -> Any:
    """A state-bearing element that changed: partial if possible, else whole."""
    if before is None:
        return replace(after, state=State.FULL)
    try:
        return _diff_node(before, after)
    except _Full:
        return replace(after, state=State.FULL)


def _diff_keyed(
    before: tuple[Any, ...], after: tuple[Any, ...], key: Callable[[Any], Hashable]
) -> tuple[Any, ...]:
    old_keys = [key(x) for x in before]
    new_keys = [key(x) for x in after]
    if (
        None in old_keys
        or None in new_keys
        or len(set(old_keys)) != len(old_keys)
        or len(set(new_keys)) != len(new_keys)
    ):
        raise _Full
    kept = set(new_keys)
    survivors = [k for k in old_keys if k in kept]
    added = [k for k in new_keys if k not in set(old_keys)]
    if new_keys != survivors + added:
        raise _Full  # s4.6 appends new rows: any other order needs the whole list
    old_by_key = dict(zip(old_keys, before, strict=True))
    out: list[Any] = []
    for k, item in zip(old_keys, before, strict=True):
        if k not in kept:
            if type(item) not in _STATEFUL_ROWS:
                raise _Full  # <media> and <entry> have no 'state': no way to delete
            out.append(type(item)(entity=k, state=State.DELETED))
    for k, item in zip(new_keys, after, strict=True):
        was = old_by_key.get(k)
        if was is None:
            out.append(replace(item, state=State.FULL) if type(item) in _STATEFUL_ROWS else item)
        elif was != item:
            if type(item) in _STATEFUL_ROWS:
                out.append(_diff_child(was, item))
            else:
                # s4.6 step 3.1.2: the received sub-elements replace the old
                # ones one by one, so the whole new entry works unless a
                # sub-element disappeared.
                for f in fields(item):
                    if getattr(was, f.name) not in (None, ()) and getattr(item, f.name) in (
                        None,
                        (),
                    ):
                        raise _Full
                out.append(item)
    return tuple(out)


# --------------------------------------------------------------------------- subscriber side


class Outcome(enum.Enum):
    """What :func:`apply_rfc4575` did with a received document (RFC 4575 s4.6)."""

    REPLACED = "full state replaced the local copy"
    UPDATED = "partial state applied"
    STALE = "version not newer than the local one: discarded"
    DELETED = "the conference ceased to exist: unsubscribe"
    REFRESH = "version gap or no full state yet: refresh the subscription"


@dataclass(frozen=True, slots=True)
class Applied:
    """Result of :func:`apply_rfc4575`: the new local copy and version."""

    outcome: Outcome
    info: ConferenceInfo | None
    version: int | None


def apply_rfc4575(
    local: ConferenceInfo | None, local_version: int | None, doc: ConferenceInfo
) -> Applied:
    """The RFC 4575 s4.6 procedure: combine the received ``doc`` with the local
    copy ``local`` (None before the first full state) at ``local_version``.

    Raises ValueError when ``doc`` has no 'version' (RFC 4575 s4.3: MUST).
    """
    if doc.version is None:
        raise ValueError("conference-info without 'version' (RFC 4575 s4.3 requires it)")
    state = doc.state or State.FULL
    if local_version is not None and doc.version <= local_version:
        return Applied(Outcome.STALE, local, local_version)
    if state is State.DELETED:
        return Applied(Outcome.DELETED, None, doc.version)
    if state is State.FULL:
        return Applied(Outcome.REPLACED, _stored(doc), doc.version)
    if local is None or local_version is None or doc.version != local_version + 1:
        return Applied(Outcome.REFRESH, local, local_version)
    return Applied(Outcome.UPDATED, _apply_node(local, doc), doc.version)


def _stored(obj: E) -> E:
    """A received element as kept locally: no 'state'/'version' on it."""
    stripped = strip_state(obj)
    if isinstance(stripped, ConferenceInfo) and stripped.version is not None:
        stripped = replace(stripped, version=None)
    return stripped


def _apply_node(local: E, update: E) -> E:
    """s4.6 step 3 for one element with "partial" state (or a stateless keyed row)."""
    changes: dict[str, Any] = {}
    for f in fields(update):
        name = f.name
        if name in _BOOKKEEPING or name in ("state", "version", "entity"):
            continue
        value = getattr(update, name)
        if value is None or value == ():
            continue  # not received: unchanged
        key = _KEYED.get((type(update), name))
        if key is not None:
            changes[name] = _apply_keyed(getattr(local, name), value, key)
        elif isinstance(value, XconElement):
            # s4.6 3.2/3.3: no 'state' or "full" replaces, "partial" recurses
            state = getattr(value, "state", None) or State.FULL
            current = getattr(local, name)
            if state is State.DELETED:
                changes[name] = None
            elif state is State.FULL or current is None:
                changes[name] = _stored(value)
            else:
                changes[name] = _apply_node(current, value)
        else:
            changes[name] = value
    return replace(local, **changes) if changes else local


def _apply_keyed(
    rows: tuple[Any, ...], received: tuple[Any, ...], key: Callable[[Any], Hashable]
) -> tuple[Any, ...]:
    result: list[Any] = list(rows)
    for item in received:
        k = key(item)
        at = next((i for i, row in enumerate(result) if key(row) == k), None)
        # rows without a 'state' attribute (<media>, uri <entry>) merge field by field
        state = (getattr(item, "state", None) or State.FULL) if hasattr(item, "state") else None
        if at is None:
            if state is not State.DELETED:  # s4.6 3.1.1
                result.append(_stored(item))
        elif state is State.DELETED:
            del result[at]
        elif state is State.FULL:
            result[at] = _stored(item)
        else:  # partial, or a row without 'state' (s4.6 3.1.2)
            result[at] = _apply_node(result[at], item)
    return tuple(result)
