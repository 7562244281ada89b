"""The OpenAPI 3.1 document of ``drmaa2 serve`` (``GET /openapi.json``): every path written
here, the dataclasses' schemas derived from their type hints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from ..info import JobInfo, MachineInfo, QueueInfo, ReservationInfo
from ..states import JobState
from ..templates import JobTemplate, ReservationTemplate

__all__ = ["document"]

DATACLASSES: list[type] = [JobTemplate, JobInfo, ReservationTemplate, ReservationInfo,
                           MachineInfo, QueueInfo]


def _schema_of(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _schema_of(args[0]) if len(args) == 1 else {}
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return {"type": "array", "items": _schema_of(inner)}
    if origin is dict:
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return {"type": "string", "enum": [m.value for m in tp]}
        if issubclass(tp, dt.datetime):
            return {"type": "string", "format": "date-time"}
        if issubclass(tp, dt.timedelta):
            return {"type": "number", "description": "seconds"}
        if dataclasses.is_dataclass(tp):
            return {"$ref": f"#/components/schemas/{tp.__name__}"}
        simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
        if tp in simple:
            return {"type": simple[tp]}
    return {}


def _dataclass_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {"type": "object", "additionalProperties": False,
            "description": (cls.__doc__ or "").strip().splitlines()[0],
            "properties": {f.name: _schema_of(hints[f.name])
                           for f in dataclasses.fields(cls)}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    return out


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_IDS = {"type": "array", "items": _STR, "minItems": 1}
_STATE = {"type": "string", "enum": [s.value for s in JobState]}

VIEWS: dict[str, dict[str, Any]] = {
    "Error": _obj({"error": _STR, "message": _STR}, ["error", "message"]),
    "JobView": _obj({"id": _STR, "session": _STR, "state": _STATE, "sub_state": _STR,
                     "array_id": {"type": ["string", "null"]},
                     "task_index": {"type": ["integer", "null"]}}),
    "ArrayView": _obj({"id": _STR, "session": _STR, "job_ids": {"type": "array", "items": _STR},
                       "counts": {"type": "object", "additionalProperties": _INT},
                       "max_parallel": {"type": ["integer", "null"]}}),
    "SessionView": _obj({"name": _STR, "contact": _STR}),
    "SessionRequest": _obj({"name": _STR, "contact": _STR, "exist_ok": _BOOL}, ["name"]),
}

# path -> method -> (summary, request body schema or None, status, response schema or media type)
_JSON = "application/json"
ENDPOINTS: dict[str, dict[str, tuple[str, Any, int, Any]]] = {
    "/v1/info": {"get": ("The server: its user, store, version and contact schemes", None, 200,
                         _obj({"user": _STR, "home": _STR, "version": _STR,
                               "schemes": {"type": "array", "items": _STR}}))},
    "/v1/tracker": {"get": ("A tracker's template fields, capabilities and job categories "
                            "(?contact=C)", None, 200,
                            _obj({"scheme": _STR, "supported_fields": {"type": "array"},
                                  "capabilities": {"type": "array"}, "max_array_tasks": _INT,
                                  "job_categories": {"type": "array"}}))},
    "/v1/sessions": {
        "get": ("Every job session", None, 200, _list("SessionView")),
        "post": ("Create a job session (200 with exist_ok and an existing one)",
                 _ref("SessionRequest"), 201, _ref("SessionView"))},
    "/v1/sessions/{name}": {
        "get": ("A job session", None, 200, _ref("SessionView")),
        "delete": ("Destroy a job session and forget its jobs", None, 204, None)},
    "/v1/sessions/{name}/jobs": {
        "get": ("The session's jobs (?state=S, repeatable)", None, 200, _list("JobView")),
        "post": ("Submit a job", _obj({"template": _ref("JobTemplate")}, ["template"]), 201,
                 _ref("JobView"))},
    "/v1/sessions/{name}/arrays": {
        "get": ("The session's job arrays", None, 200, _list("ArrayView")),
        "post": ("Submit a job array",
                 _obj({"template": _ref("JobTemplate"), "begin": _INT, "end": _INT,
                       "step": _INT, "max_parallel": {"type": ["integer", "null"]}},
                      ["template", "begin", "end"]), 201, _ref("ArrayView"))},
    "/v1/arrays/{id}": {"get": ("A job array", None, 200, _ref("ArrayView"))},
    "/v1/jobs/{id}": {
        "get": ("A job's state", None, 200, _ref("JobView")),
        "delete": ("Reap an ended job", None, 204, None)},
    "/v1/jobs/{id}/info": {"get": ("A job's JobInfo", None, 200, _ref("JobInfo"))},
    "/v1/jobs/{id}/template": {"get": ("A job's JobTemplate", None, 200, _ref("JobTemplate"))},
    "/v1/jobs/{id}/output": {"get": ("A job's stdout (?stderr=1: stderr), ?tail=N lines, "
                                     "?follow=1 streamed to its end", None, 200, "text/plain")},
    "/v1/jobs/{id}/{action}": {"post": ("suspend, resume, hold, release or terminate a job",
                                        None, 204, None)},
    "/v1/states": {"post": ("The states of jobs: {id: [state, sub_state]}, an ended job's JobInfo third",
                            _obj({"ids": _IDS}, ["ids"]), 200,
                            {"type": "object", "additionalProperties": {
                                "type": "array", "items": _STR}})},
    "/v1/control": {"post": ("One action on many jobs; the refused ones with their error",
                             _obj({"ids": _IDS, "action": {"type": "string", "enum": [
                                 "suspend", "resume", "hold", "release", "terminate", "reap"]}},
                                  ["ids", "action"]), 200,
                             _obj({"refused": {"type": "object",
                                               "additionalProperties": _ref("Error")}}))},
    "/v1/wait": {"post": ("Wait for jobs: a long poll answering done: false after at most 25 s",
                          _obj({"ids": _IDS, "mode": {"type": "string", "enum": [
                              "any_started", "any_terminated", "all_started", "all_terminated"]},
                                "timeout": {"type": ["number", "null"], "minimum": 0}},
                               ["ids", "mode"]), 200,
                          _obj({"done": _BOOL, "job": {"oneOf": [_ref("JobView"),
                                                                  {"type": "null"}]}}))},
    "/v1/events": {"get": ("Server-sent events (event: state, data: JobView) of a session "
                           "(?session=NAME) or of jobs (?ids=A,B); ': ping' every 15 s", None,
                           200, "text/event-stream")},
    "/v1/monitor/{what}": {"get": ("Everything the engine of ?contact=C runs: jobs, machines, "
                                   "queues or reservations", None, 200, {"type": "array"})},
    "/v1/reservation-sessions": {"post": ("Create a reservation session",
                                          _ref("SessionRequest"), 201, _ref("SessionView"))},
    "/v1/reservation-sessions/{name}/reservations": {
        "get": ("The session's reservations", None, 200, _list("ReservationInfo")),
        "post": ("Request a reservation",
                 _obj({"template": _ref("ReservationTemplate")}, ["template"]), 201,
                 _ref("ReservationInfo"))},
    "/v1/reservations/{id}": {"delete": ("Cancel a reservation (id: its reservation_id)",
                                         None, 204, None)},
    "/openapi.json": {"get": ("This document", None, 200, {"type": "object"})},
    "/": {"get": ("The dashboard (no token needed; it asks for one)", None, 200, "text/html")},
    "/static/{path}": {"get": ("The dashboard's files", None, 200, "application/octet-stream")},
}

_ERRORS = {"400": "InvalidArgumentError, UnsupportedAttributeError",
           "401": "no or wrong token (DeniedByDrmsError)",
           "403": "a limit over the user's allowance (DeniedByDrmsError)",
           "404": "unknown job, session, array or reservation (InvalidArgumentError)",
           "408": "TimeoutError", "409": "InvalidStateError, InvalidSessionError",
           "413": "body over 1 MiB (InvalidArgumentError)", "422": "UnsupportedOperationError",
           "503": "DrmCommunicationError, TryLaterError, OutOfResourceError",
           "500": "any other Drmaa2Error"}


def _operation(path: str, summary: str, body: Any, status: int, answer: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary}
    params = [{"name": p, "in": "path", "required": True, "schema": _STR}
              for p in ("name", "id", "action", "what", "path") if "{" + p + "}" in path]
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    if answer is None:
        ok: dict[str, Any] = {"description": "done"}
    elif isinstance(answer, str):
        ok = {"description": summary, "content": {answer: {}}}
    else:
        ok = {"description": summary, "content": {_JSON: {"schema": answer}}}
    responses: dict[str, Any] = {str(status): ok}
    if path.startswith("/v1"):
        for code, why in _ERRORS.items():
            responses[code] = {"description": why,
                               "content": {_JSON: {"schema": _ref("Error")}}}
    op["responses"] = responses
    if not path.startswith("/v1") and path != "/openapi.json":
        op["security"] = []
    return op


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API (docs/serve.md)."""
    schemas = {cls.__name__: _dataclass_schema(cls) for cls in DATACLASSES}
    schemas.update(VIEWS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "drmaa2 serve", "version": version,
                 "description": "DRMAA2 job sessions, jobs, arrays, waits, events, monitoring "
                                "and reservations of one user's pydrmaa2 store."},
        "paths": {path: {method: _operation(path, *spec) for method, spec in methods.items()}
                  for path, methods in ENDPOINTS.items()},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
