"""Frozen dataclasses <-> JSON-able values, driven by their type hints.

The core persists its conference objects (the core's own bookkeeping and the XCON model of
focus/xcon/model.py inside) as JSON in SQLite.  Walking the declared types, instead of a
hand-written mapper per class, means a field added to the model is persisted without
anyone remembering to: restart equality is tested on random models.

Supported: dataclasses, str/int/bool/float, None, datetime (ISO 8601), enums (by value;
``Enum | str`` unions keep unregistered values as strings), tuples (homogeneous or fixed),
frozensets, and unions of those with at most one dataclass member.  Fields equal to their
default are omitted.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


class SerialError(ValueError):
    """Stored data does not fit the declared types (a corrupt or foreign row)."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _defaults(cls: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
    return found


_NO_DEFAULT: Any = object()


@functools.cache
def _layout(cls: type) -> tuple[tuple[str, Any], ...]:
    """(field name, default or _NO_DEFAULT) of a dataclass: computed once per class, as
    every committed change serialises whole objects (dataclasses.fields per call shows)."""
    defaults = _defaults(cls)
    return tuple((f.name, defaults.get(f.name, _NO_DEFAULT)) for f in dataclasses.fields(cls))


def to_jsonable(value: object) -> Any:
    """A JSON-serialisable form of ``value`` (see the module doc for what is supported)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for name, default in _layout(type(value)):
            item = getattr(value, name)
            if default is not _NO_DEFAULT and item == default:
                continue
            out[name] = to_jsonable(item)
        return out
    if isinstance(value, frozenset):
        return sorted((to_jsonable(v) for v in value), key=repr)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def from_jsonable(tp: type[T], data: Any) -> T:
    """Rebuild a value of type ``tp`` from :func:`to_jsonable` output."""
    result: T = _decode(tp, data, tp.__name__)
    return result


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _decode_union(typing.get_args(tp), data, where)
    if tp is Any:
        return data
    if tp is type(None):
        if data is not None:
            raise SerialError(f"{where}: expected null")
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise SerialError(f"{where}: expected an object for {tp.__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        unknown = set(data) - {f.name for f in dataclasses.fields(tp)}
        if unknown:
            raise SerialError(f"{where}: unknown fields {sorted(unknown)}")
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise SerialError(f"{where}: {exc}") from exc
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list):
            raise SerialError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise SerialError(f"{where}: expected {len(args)} items")
        return tuple(
            _decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True))
        )
    if origin is frozenset:
        (arg,) = typing.get_args(tp)
        if not isinstance(data, list):
            raise SerialError(f"{where}: expected a list")
        return frozenset(_decode(arg, v, where) for v in data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            raise SerialError(f"{where}: {data!r} is not a {tp.__name__}") from None
    if tp is datetime:
        if not isinstance(data, str):
            raise SerialError(f"{where}: expected a date-time string")
        try:
            return datetime.fromisoformat(data)
        except ValueError as exc:
            raise SerialError(f"{where}: {exc}") from exc
    if tp is bool:
        if not isinstance(data, bool):
            raise SerialError(f"{where}: expected a boolean")
        return data
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise SerialError(f"{where}: expected an integer")
        return data
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise SerialError(f"{where}: expected a number")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise SerialError(f"{where}: expected a string")
        return data
    raise TypeError(f"{where}: unsupported type {tp!r}")


def _decode_union(args: tuple[Any, ...], data: Any, where: str) -> Any:
    if data is None:
        if type(None) in args:
            return None
        raise SerialError(f"{where}: null not allowed")
    candidates = [a for a in args if a is not type(None)]
    # Enums before str, so a registered value comes back as its member.
    candidates.sort(key=lambda a: 0 if isinstance(a, type) and issubclass(a, enum.Enum) else 1)
    errors = []
    for candidate in candidates:
        try:
            return _decode(candidate, data, where)
        except SerialError as exc:
            errors.append(str(exc))
    raise SerialError(f"{where}: no alternative fits ({'; '.join(errors)})")
