"""Hypothesis strategies for the XCON model (shared with other packages' tests).

Generated values stay inside what the XML codec represents exactly, so
``parse(serialize(x)) == x`` must hold for all of them:

* texts are non-empty, free of characters XML can not carry and of
  leading/trailing whitespace (identifier-like fields are trimmed on
  decode; free texts keep whitespace, which test_codec checks on its own);
* list items (keywords, languages) contain no whitespace;
* ``cleared`` only names optional simple fields that are ``None``;
* extensions are canonical (exclusive C14N) elements of a vendor namespace.

Entry points: :func:`conference_infos`, :func:`users`, :func:`elements`
(any model class), and the building blocks ``texts``, ``tokens``, ``uris``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, Field, fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, TypeVar

from hypothesis import strategies as st

from focus.xcon import model
from focus.xcon.model import ConferenceInfo, User, XconElement

E = TypeVar("E", bound=XconElement)

EXT_NS = "urn:example:xcon-extension"

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r"),
    min_size=1,
    max_size=12,
).filter(lambda s: s == s.strip())

tokens = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~+-]{0,10}", fullmatch=True)

uris = st.builds(
    "{}:{}@{}.example.com".format,
    st.sampled_from(["sip", "sips", "xcon", "xcon-userid", "mailto"]),
    tokens,
    st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True),
)

datetimes = st.builds(
    lambda dt, offset: dt if offset is None else dt.replace(tzinfo=offset),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.none()
    | st.just(UTC)
    | st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)

uint32 = st.integers(0, 2**32 - 1)

_UINT_FIELDS = {
    "maximum_user_count",
    "user_count",
    "version",
    "conference_id",
    "max_floor_users",
    "moderator_id",
    "notify_end_of_conference",
}
# Optional fields written as attributes: an attribute can not be "present but empty".
_ATTRIBUTE_FIELDS = {"state", "entity", "version", "lang", "method"}
_BOOKKEEPING = {"extensions", "extension_attributes", "cleared"}

extension_elements = st.builds(
    lambda local, attr, text: (
        f'<v:{local} xmlns:v="{EXT_NS}"'
        + (f' v:a="{attr}"' if attr else "")
        + f">{text}</v:{local}>"
    ),
    st.sampled_from(["colour", "rank", "note"]),
    st.none() | st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True),
    st.from_regex(r"[a-z0-9 ]{0,8}", fullmatch=True),
)

extension_attributes = st.lists(
    st.tuples(st.sampled_from([f"{{{EXT_NS}}}x", f"{{{EXT_NS}}}y", "vendor-flag"]), tokens),
    max_size=2,
    unique_by=lambda pair: pair[0],
).map(tuple)


def _optional(hint: Any) -> tuple[bool, Any]:
    """(whether None is allowed, the hint without None; a tuple for unions)."""
    if not isinstance(hint, types.UnionType):
        return False, hint
    args = typing.get_args(hint)
    rest = tuple(a for a in args if a is not type(None))
    return len(rest) != len(args), rest[0] if len(rest) == 1 else rest


def _enum_or_text(enum: type[StrEnum]) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(enum)) | tokens


def _value(cls: type[Any], name: str, hint: Any, depth: int) -> st.SearchStrategy[Any]:
    if name == "gain":
        return st.integers(-127, 127)
    if name in _UINT_FIELDS:
        return uint32
    if name in {"keywords", "languages"}:
        return st.lists(tokens, min_size=1, max_size=3).map(tuple)
    if name in {"entity", "uri", "by", "web_page", "cascaded_focus"}:
        return uris
    if hint is str:
        return texts
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**31), 2**31 - 1)
    if hint is datetime:
        return datetimes
    if isinstance(hint, tuple):  # SomeEnum | str
        enum = next(h for h in hint if isinstance(h, type) and issubclass(h, StrEnum))
        if cls is model.Uris or name == "state":
            return st.sampled_from(list(enum))
        return _enum_or_text(enum)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return st.sampled_from(list(hint))
    if isinstance(hint, type) and is_dataclass(hint):
        return elements(hint, depth)
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if item is ConferenceInfo:
            if depth <= 0:
                return st.just(())
            return st.lists(elements(ConferenceInfo, depth - 1), max_size=1).map(tuple)
        if isinstance(item, types.UnionType):  # roles: tuple[Role | str, ...]
            return st.lists(_enum_or_text(model.Role), min_size=1, max_size=3).map(tuple)
        if item is str:
            return st.lists(tokens, max_size=2).map(tuple)
        return st.lists(_value(cls, name, item, depth), max_size=2).map(tuple)
    raise TypeError(f"no strategy for {cls.__name__}.{name}: {hint!r}")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, vars(model))
    return hints


def elements(cls: type[E], depth: int = 1) -> st.SearchStrategy[E]:
    """Any instance of the model class ``cls`` (sidebars nest ``depth`` deep)."""
    hints = _hints(cls)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    simple_optional: list[str] = []
    for f in fields(cls):
        if f.name in _BOOKKEEPING:
            continue
        optional, hint = _optional(hints[f.name])
        value = _value(cls, f.name, hint, depth)
        if _is_required(f):
            kwargs[f.name] = value
        elif optional:
            kwargs[f.name] = st.none() | value
            nested = isinstance(hint, type) and is_dataclass(hint)
            if not nested and f.name not in _ATTRIBUTE_FIELDS:
                simple_optional.append(f.name)
        else:
            kwargs[f.name] = value
    # MixingOffset and MixerFloor hold only text (RFC 6501 s5): no child elements.
    text_only = cls in (model.MixingOffset, model.MixerFloor)
    kwargs["extensions"] = (
        st.just(()) if text_only else st.lists(extension_elements, max_size=1).map(tuple)
    )
    kwargs["extension_attributes"] = extension_attributes
    base = st.builds(cls, **kwargs)
    if not simple_optional:
        return base
    return base.flatmap(lambda obj: _with_cleared(obj, simple_optional))


def _is_required(f: Field[Any]) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _with_cleared(obj: E, candidates: list[str]) -> st.SearchStrategy[E]:
    empty = [name for name in candidates if getattr(obj, name) is None]
    if not empty:
        return st.just(obj)
    return st.sets(st.sampled_from(empty)).map(lambda names: replace(obj, cleared=frozenset(names)))


def conference_infos(depth: int = 1) -> st.SearchStrategy[ConferenceInfo]:
    """Conference objects, full or partial, with sidebars-by-val ``depth`` deep."""
    return elements(ConferenceInfo, depth)


def users() -> st.SearchStrategy[User]:
    """User-type values (CCMP userInfo)."""
    return elements(User)
