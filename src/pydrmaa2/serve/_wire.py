"""The wire format of ``drmaa2 serve``: request bodies read and decoded strictly, refusals as
``{"error", "message"}`` with their HTTP status, and the views of jobs, arrays and sessions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import json
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from .. import errors
from .._store import JobRow
from ..errors import Drmaa2Error, InvalidArgumentError
from ..states import JobState
from ..templates import check_text

T = TypeVar("T")

#: The largest request body accepted (bytes); larger ones are refused with 413.
MAX_BODY = 1 << 20


class NotFoundError(InvalidArgumentError):
    """An unknown job, session, array or reservation: InvalidArgumentError on the wire, 404."""


class TokenError(errors.DeniedByDrmsError):
    """No or a wrong bearer token: DeniedByDrmsError on the wire, 401 with WWW-Authenticate (a
    tracker's own DeniedByDrmsError, a limit over the user's allowance, is 403)."""


class BodyTooLargeError(InvalidArgumentError):
    """A request body over MAX_BODY: InvalidArgumentError on the wire, 413."""


# The status of each refusal, most specific class first (docs/serve.md, "Errors").
STATUS: list[tuple[type[Drmaa2Error], int]] = [
    (TokenError, 401),
    (errors.DeniedByDrmsError, 403),
    (NotFoundError, 404),
    (BodyTooLargeError, 413),
    (errors.InvalidArgumentError, 400),
    (errors.UnsupportedAttributeError, 400),
    (errors.InvalidStateError, 409),
    (errors.InvalidSessionError, 409),
    (errors.UnsupportedOperationError, 422),
    (errors.TimeoutError, 408),
    (errors.DrmCommunicationError, 503),
    (errors.TryLaterError, 503),
    (errors.OutOfResourceError, 503),
]

_PUBLIC = frozenset(errors.__all__)


def error_name(e: Drmaa2Error) -> str:
    """The public Drmaa2Error class ``e`` is (internal subclasses travel as their parent)."""
    return next(c.__name__ for c in type(e).__mro__ if c.__name__ in _PUBLIC)


def status_of(e: Drmaa2Error) -> int:
    """The HTTP status of a refusal."""
    return next((s for cls, s in STATUS if isinstance(e, cls)), 500)


def refusal(e: Drmaa2Error) -> JSONResponse:
    """``{"error": name, "message": message}`` with the status of ``e``."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(e, TokenError) else None
    return JSONResponse({"error": error_name(e), "message": str(e)}, status_of(e),
                        headers=headers)


# -- request bodies --------------------------------------------------------------------------------
async def read_json(request: Request, fields: Collection[str], required: Collection[str] = (),
                    optional: bool = False) -> dict[str, Any]:
    """The request's JSON object: at most MAX_BODY bytes (by Content-Length and as read), only
    ``fields``, every one of ``required``; else the Drmaa2Error to answer with. With
    ``optional``, no body at all is an empty object."""
    length = request.headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdecimal()):
            raise InvalidArgumentError(f"Content-Length {length!r} is not a number")
        if int(length) > MAX_BODY:
            raise BodyTooLargeError(f"the request body ({length} bytes) is over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLargeError(f"the request body is over {MAX_BODY} bytes")
    if optional and not body.strip():
        return {}
    try:
        data = json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidArgumentError(f"the request body is not JSON: {e}") from None
    except RecursionError:
        raise InvalidArgumentError("the request body is not JSON this server reads: it nests "
                                   "too deep") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"the request body must be a JSON object, not {type(data).__name__}")
    check_fields(data, fields, "the request body")
    missing = [f for f in required if f not in data]
    if missing:
        raise InvalidArgumentError(f"the request body has no {missing[0]!r}")
    return data


def _no_constant(word: str) -> None:
    raise ValueError(f"{word} is not a JSON value")


def check_fields(data: Mapping[str, Any], fields: Collection[str], where: str) -> None:
    """Refuse a field the API does not know, naming it."""
    for name in data:
        if name not in fields:
            raise InvalidArgumentError(
                f"{where} has an unknown field {name!r} (known: {', '.join(sorted(fields))})")


def field(data: Mapping[str, Any], name: str, kind: type[T] | tuple[type, ...],
          default: Any = None) -> Any:
    """``data[name]`` checked to be of ``kind`` (None allowed), or ``default``."""
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise InvalidArgumentError(f"{name} {value!r} is not {_kind_name(kind)}")
    if isinstance(value, str):
        check_text(name, value)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def ids_of(data: Mapping[str, Any]) -> list[str]:
    """The body's ``ids``: a non-empty list of job ids (strings)."""
    ids = field(data, "ids", list)
    if not ids:
        raise InvalidArgumentError("ids must be a non-empty list of job ids")
    for i in ids:
        if not isinstance(i, str):
            raise InvalidArgumentError(f"ids: {i!r} is not a job id (a string)")
        check_text("ids", i)
    return list(dict.fromkeys(ids))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types, worked out once (get_type_hints costs about 2.5 ms a
    call for JobTemplate: it evaluates every annotation's string)."""
    return typing.get_type_hints(cls)


def decode_strict(cls: type[T], data: Any, where: str) -> T:
    """A dataclass (JobTemplate, ReservationTemplate) from JSON as ``_codec.encode`` writes it,
    refusing unknown fields and values that do not convert (InvalidArgumentError naming the
    field and the value); the dataclass's own ``validate`` checks the rest."""
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{where} must be a JSON object, not {type(data).__name__}")
    assert dataclasses.is_dataclass(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for name in data:
        if name not in names:
            raise InvalidArgumentError(f"{cls.__name__} has no field {name!r}")
    hints = _hints(cls)
    kwargs = {}
    for name, raw in data.items():
        try:
            kwargs[name] = _decode(hints[name], raw)
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgumentError(
                f"{cls.__name__}.{name} {raw!r} is not {_type_name(hints[name])} ({e})") from None
    return cls(**kwargs)


def _decode(tp: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], raw) if len(args) == 1 else raw
    if origin is list:
        if not isinstance(raw, list):
            raise TypeError("a list is expected")
        (inner,) = typing.get_args(tp) or (Any,)
        return [_decode(inner, r) for r in raw]
    if origin is dict:
        if not isinstance(raw, dict):
            raise TypeError("an object is expected")
        return dict(raw)
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            if not isinstance(raw, str):
                raise TypeError("a string is expected")
            return tp(raw)
        if issubclass(tp, dt.datetime):
            if not isinstance(raw, str):
                raise TypeError("an ISO 8601 string is expected")
            return dt.datetime.fromisoformat(raw)
        if issubclass(tp, dt.timedelta):
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise TypeError("a number of seconds is expected")
            return dt.timedelta(seconds=raw)
    return raw  # str, int, bool: the template's validate() checks them


def _type_name(tp: Any) -> str:
    base = tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None: X
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        base = args[0] if len(args) == 1 else tp
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in base)
    if isinstance(base, type) and issubclass(base, dt.datetime):
        return "an ISO 8601 date and time"
    if isinstance(base, type) and issubclass(base, dt.timedelta):
        return "a number of seconds"
    origin = typing.get_origin(base)
    if origin is list:
        (inner,) = typing.get_args(base) or (Any,)
        return "a list" if inner is Any else f"a list of {_type_name(inner).removeprefix('a ')}s"
    if origin is dict:
        return "an object"
    if isinstance(base, type):
        return {bool: "true or false", int: "an integer", float: "a number",
                str: "a string"}.get(base, base.__name__)
    return str(base)


# -- views ----------------------------------------------------------------------------------------
def job_view(row: JobRow, state: JobState, sub_state: str | None) -> dict[str, Any]:
    """A JobView: ``{"id", "session", "state", "sub_state", "array_id", "task_index"}``."""
    return {"id": row.id, "session": row.session, "state": state.value,
            "sub_state": sub_state or "", "array_id": row.array_id,
            "task_index": row.task_index}


def parse_state(word: str) -> JobState:
    """A JobState by its name or value, in any case (``DONE``, ``done``)."""
    try:
        return JobState[word.upper()]
    except KeyError:
        raise InvalidArgumentError(
            f"state {word!r} is not a job state ({', '.join(s.name for s in JobState)})") from None
