"""DRMAA2 templates (what to run, what to reserve) and the path placeholders they may hold.

Also the type and range checks of the public API's arguments (``check_*``), shared by the
templates, filters and session methods.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import operator
import os
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast, overload

from .errors import InvalidArgumentError
from .states import CPU, OS

__all__ = ["JobTemplate", "ReservationTemplate", "HOME_DIR", "WORKING_DIR", "PARAMETRIC_INDEX"]

#: Placeholder for the user's home directory on the execution host, at the start of a path.
HOME_DIR = "$DRMAA2_HOME_DIR$"
#: Placeholder for the job's working directory, at the start of a path.
WORKING_DIR = "$DRMAA2_WORKING_DIR$"
#: Placeholder for an array task's index, anywhere in a path, argument or variable.
PARAMETRIC_INDEX = "$DRMAA2_INDEX$"


@dataclass
class JobTemplate:
    """What to run and how (DRMAA2 JobTemplate); unset fields are ``None`` or empty."""

    remote_command: str | None = None
    args: list[str] = field(default_factory=list)
    submit_as_hold: bool = False
    rerunnable: bool | None = None
    job_environment: dict[str, str] = field(default_factory=dict)
    working_directory: str | None = None
    job_category: str | None = None
    email: list[str] = field(default_factory=list)
    email_on_started: bool | None = None
    email_on_terminated: bool | None = None
    job_name: str | None = None
    input_path: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    join_files: bool | None = None
    reservation_id: str | None = None
    queue_name: str | None = None
    min_slots: int | None = None
    max_slots: int | None = None
    priority: int | None = None
    candidate_machines: list[str] = field(default_factory=list)
    min_phys_memory: int | None = None
    machine_os: OS | None = None
    machine_arch: CPU | None = None
    start_time: dt.datetime | None = None
    deadline_time: dt.datetime | None = None
    stage_in_files: dict[str, str] = field(default_factory=dict)
    stage_out_files: dict[str, str] = field(default_factory=dict)
    resource_limits: dict[str, str] = field(default_factory=dict)
    accounting_id: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def set_fields(self) -> list[str]:
        """Names of the fields that hold a value (not None, not empty, not the False default)."""
        return [name for name in _JOB_FIELDS
                if (v := getattr(self, name)) is not None and v != [] and v != {}
                and not (name == "submit_as_hold" and v is False)]

    def validate(self) -> JobTemplate:
        """Check every field's type and range (the rules every tracker shares) and return the
        template to submit: ``self`` when it is already canonical, else a normalized copy (paths
        given as ``os.PathLike`` turned into ``str``, tuples into lists, mappings into dicts).
        The template the caller holds is never changed. Raises InvalidArgumentError naming the
        field and the value."""
        changes = check_fields(self, "JobTemplate", _JOB_RULES)
        lo = changes.get("min_slots", self.min_slots)
        hi = changes.get("max_slots", self.max_slots)
        if lo and hi and lo > hi:
            raise InvalidArgumentError(f"JobTemplate.min_slots {lo} is larger than max_slots {hi}")
        return dataclasses.replace(self, **changes) if changes else self


_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(JobTemplate))

# -- argument checks -------------------------------------------------------------------------------
# Each check takes where the value sits ("JobTemplate.args[2]", for messages) and the value, and
# returns the canonical value: the same object when it is already canonical, so a template that
# needs no conversion is not copied.

#: The largest integer a template field or task index may hold: a signed 64-bit integer, what the
#: store (SQLite INTEGER) and the engines represent.
MAX_INT = 2**63 - 1

Check = Callable[[str, Any], Any]

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def describe(value: Any) -> str:
    """``value`` for an error message: its type and a repr cut to a readable length."""
    return f"{type(value).__name__} {_repr.repr(value)}"


def check_text(where: str, value: Any) -> str:
    """A string every engine and the store can take: no NUL byte (engines pass C strings to
    programs) and valid Unicode (no lone surrogate: the store and engines speak UTF-8)."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{where} must be a string, got {describe(value)}")
    if "\0" in value:
        raise InvalidArgumentError(
            f"{where} holds a NUL byte ({_repr.repr(value)}): no program can be given one")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as e:
            raise InvalidArgumentError(
                f"{where} {_repr.repr(value)} is not valid Unicode: {e.reason}") from None
    return value


def check_path(where: str, value: Any) -> str:
    """A path: a ``str`` or an ``os.PathLike`` (converted to ``str``)."""
    if isinstance(value, os.PathLike):
        try:
            value = os.fspath(value)
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(f"{where}: {describe(value)} is not a usable path: {e}") from e
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{where} must be a path (str or os.PathLike giving str), got {describe(value)}")
    return check_text(where, value)


def check_flag(where: str, value: Any) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{where} must be True or False, got {describe(value)}")
    return value


def check_int(low: int, high: int = MAX_INT) -> Check:
    """A check for an integer (``bool`` refused) in ``low..high``."""
    def check(where: str, value: Any) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise InvalidArgumentError(f"{where} must be an int, got {describe(value)}")
        number = operator.index(value)
        if not low <= number <= high:
            bounds = (f"at least {low}" if high == MAX_INT and low >= 0
                      else f"between {low} and {high}")
            raise InvalidArgumentError(f"{where} must be {bounds}, got {_repr.repr(number)}")
        return number
    return check


def check_instance(kind: type) -> Check:
    """A check for an instance of ``kind`` (an enum: one of its members)."""
    def check(where: str, value: Any) -> Any:
        if not isinstance(value, kind):
            what = (f"one of {', '.join(f'{kind.__name__}.{m.name}' for m in kind)}"
                    if issubclass(kind, enum.Enum) else f"a {kind.__module__}.{kind.__qualname__}")
            raise InvalidArgumentError(f"{where} must be {what}, got {describe(value)}")
        return value
    return check


def check_duration(where: str, value: Any) -> dt.timedelta:
    """A timedelta that is not negative."""
    duration: dt.timedelta = check_instance(dt.timedelta)(where, value)
    if duration < dt.timedelta(0):
        raise InvalidArgumentError(f"{where} must not be negative, got {duration!r}")
    return duration


def optional(check: Check) -> Check:
    """``check`` for a value that may also be None (unset)."""
    return lambda where, value: None if value is None else check(where, value)


def check_list(item: Check) -> Check:
    """A check for a sequence (not a string) of items, as a list; None is the empty list."""
    def check(where: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Sequence):
            raise InvalidArgumentError(
                f"{where} must be a list of strings (not one string), got {describe(value)}")
        out = [item(f"{where}[{i}]", v) for i, v in enumerate(value)]
        if type(value) is list and all(a is b for a, b in zip(out, value, strict=True)):
            return value
        return out
    return check


def check_dict(key: Check, item: Check) -> Check:
    """A check for a mapping, as a dict; None is the empty dict."""
    def check(where: str, value: Any) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise InvalidArgumentError(f"{where} must be a dict, got {describe(value)}")
        out: dict[Any, Any] = {}
        same = type(value) is dict
        for k, v in value.items():
            kk = key(f"{where} key", k)
            if kk in out:
                raise InvalidArgumentError(f"{where} names {kk!r} twice")
            out[kk] = vv = item(f"{where}[{kk!r}]", v)
            same = same and kk is k and vv is v
        # ``same`` holds only for a dict whose every key and item is already canonical.
        return cast("dict[Any, Any]", value) if same else out
    return check


def check_env_name(where: str, value: Any) -> str:
    """An environment variable's name: not empty, no '='."""
    name = check_text(where, value)
    if not name or "=" in name:
        raise InvalidArgumentError(
            f"{where} {name!r} is not a variable name (NAME=string: empty or holds '=')")
    return name


def check_fields(obj: Any, owner: str, rules: Mapping[str, Check]) -> dict[str, Any]:
    """Check each field of dataclass ``obj`` by its rule; return the fields whose canonical
    value differs from the one held."""
    changes = {}
    for name, check in rules.items():
        value = getattr(obj, name)
        canonical = check(f"{owner}.{name}", value)
        if canonical is not value:
            changes[name] = canonical
    return changes


_text, _path, _flag = optional(check_text), optional(check_path), optional(check_flag)
_count, _strings = optional(check_int(0)), check_list(check_text)
_string_map = check_dict(check_text, check_text)
_time = optional(check_instance(dt.datetime))

_JOB_RULES: dict[str, Check] = {
    "remote_command": _path, "args": _strings, "submit_as_hold": _flag, "rerunnable": _flag,
    "job_environment": check_dict(check_env_name, check_text), "working_directory": _path,
    "job_category": _text, "email": _strings, "email_on_started": _flag,
    "email_on_terminated": _flag, "job_name": _text, "input_path": _path, "output_path": _path,
    "error_path": _path, "join_files": _flag, "reservation_id": _text, "queue_name": _text,
    "min_slots": _count, "max_slots": _count, "priority": optional(check_int(-MAX_INT - 1)),
    "candidate_machines": _strings, "min_phys_memory": _count,
    "machine_os": optional(check_instance(OS)), "machine_arch": optional(check_instance(CPU)),
    "start_time": _time, "deadline_time": _time,
    "stage_in_files": check_dict(check_path, check_path),
    "stage_out_files": check_dict(check_path, check_path),
    "resource_limits": _string_map, "accounting_id": _text, "extensions": _string_map,
}


@overload
def expand_placeholders(path: str, *, index: int | None, working_dir: str | None) -> str: ...
@overload
def expand_placeholders(path: None, *, index: int | None, working_dir: str | None) -> None: ...
@overload
def expand_placeholders(path: str | None, *, index: int | None, working_dir: str | None) -> str | None: ...
def expand_placeholders(path: str | None, *, index: int | None, working_dir: str | None) -> str | None:
    """Replace DRMAA2's placeholders in a path: the task index, the home and working directories."""
    if path is None:
        return None
    if PARAMETRIC_INDEX in path:
        path = path.replace(PARAMETRIC_INDEX, str(index if index is not None else 1))
    if HOME_DIR in path:
        path = path.replace(HOME_DIR, os.path.expanduser("~"))
    if WORKING_DIR in path:
        path = path.replace(WORKING_DIR, working_dir or os.getcwd())
    return path


def anchored(template: JobTemplate, cwd: str, host_working_directory: bool) -> JobTemplate:
    """``template`` as its submitter, working in directory ``cwd``, meant it, for a start by
    another program (the agent, a release from elsewhere): an unset or relative working
    directory of this host is taken from ``cwd``; where the working directory is not this
    host's (a container's), the relative host paths (input, output, error, staged files) are."""
    @overload
    def host(path: str) -> str: ...
    @overload
    def host(path: str | None) -> str | None: ...
    def host(path: str | None) -> str | None:
        return path if path is None or path.startswith(("/", "$")) else os.path.join(cwd, path)

    if host_working_directory:
        wd = template.working_directory
        return dataclasses.replace(template, working_directory=cwd if wd is None else host(wd))
    return dataclasses.replace(
        template, input_path=host(template.input_path), output_path=host(template.output_path),
        error_path=host(template.error_path),
        stage_in_files={host(k): v for k, v in template.stage_in_files.items()},
        stage_out_files={host(k): v for k, v in template.stage_out_files.items()})


def for_task(template: JobTemplate, index: int | None) -> JobTemplate:
    """``template`` with every placeholder expanded for one task (or a single job): a copy when
    a path holds a placeholder, else ``template`` itself (submission reads it and keeps nothing)."""
    if not (template.stage_in_files or template.stage_out_files) and not any(
            p is not None and "$DRMAA2_" in p for p in (
                template.working_directory, template.input_path, template.output_path,
                template.error_path)):
        return template
    wd = expand_placeholders(template.working_directory, index=index, working_dir=None)
    return dataclasses.replace(
        template,
        working_directory=wd,
        input_path=expand_placeholders(template.input_path, index=index, working_dir=wd),
        output_path=expand_placeholders(template.output_path, index=index, working_dir=wd),
        error_path=expand_placeholders(template.error_path, index=index, working_dir=wd),
        stage_in_files={
            expand_placeholders(k, index=index, working_dir=wd): expand_placeholders(
                v, index=index, working_dir=wd)
            for k, v in template.stage_in_files.items()
        },
        stage_out_files={
            expand_placeholders(k, index=index, working_dir=wd): expand_placeholders(
                v, index=index, working_dir=wd)
            for k, v in template.stage_out_files.items()
        },
    )


@dataclass
class ReservationTemplate:
    """What to reserve (DRMAA2 ReservationTemplate)."""

    reservation_name: str | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    duration: dt.timedelta | None = None
    min_slots: int | None = None
    max_slots: int | None = None
    job_category: str | None = None
    users_acl: list[str] = field(default_factory=list)
    candidate_machines: list[str] = field(default_factory=list)
    min_phys_memory: int | None = None
    machine_os: OS | None = None
    machine_arch: CPU | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def validate(self) -> ReservationTemplate:
        """Check every field's type and range; return ``self``, or a normalized copy (tuples as
        lists, mappings as dicts) when a field needed converting. Raises InvalidArgumentError
        naming the field and the value."""
        changes = check_fields(self, "ReservationTemplate", _RESERVATION_RULES)
        lo = changes.get("min_slots", self.min_slots)
        hi = changes.get("max_slots", self.max_slots)
        if lo and hi and lo > hi:
            raise InvalidArgumentError(
                f"ReservationTemplate.min_slots {lo} is larger than max_slots {hi}")
        return dataclasses.replace(self, **changes) if changes else self


_RESERVATION_RULES: dict[str, Check] = {
    "reservation_name": _text, "start_time": _time, "end_time": _time,
    "duration": optional(check_duration), "min_slots": _count, "max_slots": _count,
    "job_category": _text, "users_acl": _strings, "candidate_machines": _strings,
    "min_phys_memory": _count, "machine_os": optional(check_instance(OS)),
    "machine_arch": optional(check_instance(CPU)), "extensions": _string_map,
}
