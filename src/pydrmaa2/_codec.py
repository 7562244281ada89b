"""JSON encoding of the DRMAA2 dataclasses, for the store and the command line's ``--json``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar

from . import states

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


#: Values that are their own JSON.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def encode(value: Any) -> Any:
    """Turn a dataclass (or a value inside one) into JSON-compatible data."""
    kind: type = type(value)
    if kind in _PLAIN:
        return value
    names = _field_names(kind)
    if names is not None:
        out = {}
        for name in names:
            v = getattr(value, name)
            if v is None:
                continue
            k = type(v)
            if k in _PLAIN:
                out[name] = v
            elif k is list or k is dict:
                if v:  # empty lists and mappings are left out
                    out[name] = encode(v)
            else:
                leaf = _LEAVES.get(k)
                if leaf is not None:
                    out[name] = leaf(v)
                elif v != [] and v != {}:  # (an empty OrderedDict too)
                    out[name] = encode(v)
        return out
    leaf = _LEAVES.get(kind)
    if leaf is not None:
        return leaf(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        if kind is list and all(type(v) is str for v in value):
            return list(value)
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if kind is dict and all(type(k) is str and type(v) is str for k, v in value.items()):
            return dict(value)
        return {str(k): encode(v) for k, v in value.items()}
    return value


def _leaves() -> dict[type, Any]:
    """How the leaf types of the DRMAA2 dataclasses encode, by exact type (subclasses take
    the isinstance way): the enums of ``states`` by their value, datetimes as ISO 8601,
    timedeltas as seconds."""
    out: dict[type, Any] = {dt.datetime: dt.datetime.isoformat,
                            dt.timedelta: dt.timedelta.total_seconds}
    for obj in vars(states).values():
        if isinstance(obj, type) and issubclass(obj, enum.Enum):
            out[obj] = _enum_value
    return out


def _enum_value(value: enum.Enum) -> Any:
    return value.value


#: Leaf types encoded without a look at what they are.
_LEAVES: dict[type, Any] = _leaves()


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names (None: not a dataclass), looked up once per class
    (dataclasses.fields and is_dataclass are slow on hot paths)."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode_value(tp: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode_value(args[0], raw) if len(args) == 1 else raw
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return [_decode_value(inner, r) for r in raw]
    if origin is dict:
        return dict(raw)
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return tp(raw)
        if issubclass(tp, dt.datetime):
            return dt.datetime.fromisoformat(raw)
        if issubclass(tp, dt.timedelta):
            return dt.timedelta(seconds=raw)
        if dataclasses.is_dataclass(tp):
            return decode(tp, raw)
    return raw


def decode(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass of type ``cls`` from ``encode``'s output; unknown keys are ignored."""
    hints = _hints(cls)
    kwargs = {
        f.name: _decode_value(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)
        if f.name in data
    }
    return cls(**kwargs)
