"""Applying a partial conference document to a full one.

A CCMP "update" carries a conference-type (or user-type) document holding
only what changes (RFC 6503 s5.3.4, s5.3.6).  ``merge`` applies it:

* a field absent from the patch (``None``, or an empty tuple for a
  repeated element) keeps the base value;
* a field whose element is present but empty (listed in ``cleared``)
  is removed (RFC 6503 s5.3.4, Figure 8);
* a scalar, or a repeated element without a key (conference-time
  entries, controls, media labels, passwords, roles, keywords, ...),
  replaces the base value as a whole;
* a nested element is merged recursively, unless it says
  ``state="full"`` (replaced whole) or ``state="deleted"`` (removed), as
  in RFC 4575 s4.6;
* a keyed repeated element (RFC 4575 s4.5: users and endpoints by
  'entity', media by 'id', URI entries by <uri>, sidebars by 'entity';
  likewise available-media entries by 'label', floors, codecs, mixer
  floors and persistent users by their id, allowed-users targets by
  'uri' and 'method') is merged entry by entry: a new key is appended,
  a known key is merged (or replaced when ``state="full"``), and an
  entry with ``state="deleted"`` is removed.  An entry without a key
  (a user with no 'entity' yet) is appended.
* unknown extension elements of the patch replace the base's extensions
  of the same name; extension attributes are merged by name.

Keys compare exactly (RFC 4575 s4.5: identical UTF-8 representations).
The result carries no 'state' attributes of the patch: it is a full
object, and notification state is the notifier's business.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import fields, replace
from typing import Any, TypeVar

from lxml import etree

from focus.xcon.model import (
    Codec,
    ConferenceInfo,
    ConferenceMedium,
    Endpoint,
    Floor,
    Media,
    MixerFloor,
    PersistentUser,
    State,
    Target,
    UriEntry,
    User,
    XconElement,
)

__all__ = ["merge", "merge_user", "strip_state"]

E = TypeVar("E", bound=XconElement)

_KEYS: dict[type[XconElement], Callable[[Any], Hashable]] = {
    User: lambda u: u.entity,
    Endpoint: lambda e: e.entity,
    Media: lambda m: m.id,
    UriEntry: lambda e: e.uri,
    ConferenceInfo: lambda c: c.entity,
    ConferenceMedium: lambda m: m.label,
    Floor: lambda f: f.id,
    Codec: lambda c: c.name,
    MixerFloor: lambda f: f.id,
    PersistentUser: lambda u: u.id,
    Target: lambda t: (t.uri, t.method),
}

# Fields a patch never overrides: identity and notification bookkeeping.
_NOT_MERGED = frozenset({"state", "version", "extensions", "extension_attributes", "cleared"})


def merge(base: ConferenceInfo, patch: ConferenceInfo) -> ConferenceInfo:
    """``base`` with the partial document ``patch`` applied (see module doc).

    The base keeps its own 'entity', 'state' and 'version'.
    """
    return _merge(base, patch, keep=frozenset({"entity"}))


def merge_user(base: User, patch: User) -> User:
    """``base`` with the partial user-type document ``patch`` applied."""
    return _merge(base, patch, keep=frozenset({"entity"}))


def _state_of(obj: object) -> State | None:
    state: State | None = getattr(obj, "state", None)
    return state


def _merge(base: E, patch: E, keep: frozenset[str] = frozenset()) -> E:
    changes: dict[str, Any] = {}
    cleared = patch.cleared
    for f in fields(patch):
        name = f.name
        if name in _NOT_MERGED or name in keep:
            continue
        new = getattr(patch, name)
        if name in cleared:
            changes[name] = None
            continue
        if new is None:
            continue
        old = getattr(base, name)
        if isinstance(new, XconElement):
            state = _state_of(new)
            if state is State.DELETED:
                changes[name] = None
            elif old is None or state is State.FULL or type(old) is not type(new):
                changes[name] = strip_state(new)
            else:
                changes[name] = _merge(old, new)
        elif isinstance(new, tuple):
            if not new:
                continue
            key = _KEYS.get(type(new[0])) if isinstance(new[0], XconElement) else None
            if key is None or not isinstance(old, tuple):
                changes[name] = tuple(
                    strip_state(x) if isinstance(x, XconElement) else x for x in new
                )
            else:
                changes[name] = _merge_keyed(old, new, key)
        else:
            changes[name] = new
    if patch.extensions:
        changes["extensions"] = _merge_extensions(base.extensions, patch.extensions)
    if patch.extension_attributes:
        merged = dict(base.extension_attributes)
        merged.update(patch.extension_attributes)
        changes["extension_attributes"] = tuple(merged.items())
    remaining = base.cleared - changes.keys()
    if remaining != base.cleared:
        changes["cleared"] = frozenset(remaining)
    return replace(base, **changes) if changes else base


def _merge_keyed(
    old: tuple[XconElement, ...],
    new: tuple[XconElement, ...],
    key: Callable[[Any], Hashable],
) -> tuple[XconElement, ...]:
    result: list[XconElement | None] = list(old)
    index: dict[Hashable, int] = {}
    for i, item in enumerate(old):
        index.setdefault(key(item), i)
    for item in new:
        k = key(item)
        state = _state_of(item)
        at = index.get(k) if k is not None and k != (None, None) else None
        if at is None or result[at] is None:
            if state is not State.DELETED:
                index[k] = len(result)
                result.append(strip_state(item))
            continue
        if state is State.DELETED:
            result[at] = None
        elif state is State.FULL:
            result[at] = strip_state(item)
        else:
            current = result[at]
            assert current is not None
            result[at] = _merge(current, item)
    return tuple(x for x in result if x is not None)


def _extension_name(xml: str) -> str:
    # Extensions are small, self-contained elements written by our codec.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return str(etree.fromstring(xml.encode("utf-8"), parser).tag)


def _merge_extensions(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    replaced = {_extension_name(x) for x in new}
    return tuple(x for x in old if _extension_name(x) not in replaced) + new


def strip_state(obj: E) -> E:
    """``obj`` without 'state' attributes anywhere and without the children
    a "deleted" state marks, as stored in a full conference object."""
    changes: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "state":
            if value is not None:
                changes["state"] = None
        elif isinstance(value, XconElement):
            if _state_of(value) is State.DELETED:
                changes[f.name] = None
            else:
                stripped = strip_state(value)
                if stripped is not value:
                    changes[f.name] = stripped
        elif isinstance(value, tuple) and value and isinstance(value[0], XconElement):
            items = tuple(strip_state(x) for x in value if _state_of(x) is not State.DELETED)
            if len(items) != len(value) or any(
                a is not b for a, b in zip(items, value, strict=False)
            ):
                changes[f.name] = items
    return replace(obj, **changes) if changes else obj
