"""DRMAA2 information records: jobs, machines, queues, reservations, versions, notifications.

``matches`` implements DRMAA2's filter rules for ``get_jobs(filter=JobInfo(...))``;
``check_filter`` refuses a filter it could not compare.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidArgumentError
from .states import CPU, OS, Event, JobState
from .templates import (
    Check,
    check_dict,
    check_duration,
    check_fields,
    check_instance,
    check_int,
    check_list,
    check_text,
    describe,
    optional,
)

__all__ = ["JobInfo", "MachineInfo", "QueueInfo", "ReservationInfo", "Version", "Notification",
           "matches", "check_filter"]


@dataclass
class JobInfo:
    """What is known about a job (DRMAA2 JobInfo); unknown is ``None``."""

    id: str | None = None
    job_name: str | None = None
    exit_status: int | None = None
    terminating_signal: str | None = None
    annotation: str | None = None
    state: JobState | None = None
    sub_state: str | None = None
    allocated_machines: list[str] = field(default_factory=list)
    submission_machine: str | None = None
    job_owner: str | None = None
    slots: int | None = None
    queue_name: str | None = None
    wallclock_time: dt.timedelta | None = None
    cpu_time: dt.timedelta | None = None
    submission_time: dt.datetime | None = None
    dispatch_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    extensions: dict[str, str] = field(default_factory=dict)


def matches(info: JobInfo, flt: JobInfo | None) -> bool:
    """DRMAA2 filter rules: set fields must be equal, machines a superset, durations at least,
    timestamps not before; an unset field never filters."""
    if flt is None:
        return True
    for f in dataclasses.fields(JobInfo):
        want = getattr(flt, f.name)
        if want is None or want == [] or want == {}:
            continue
        have = getattr(info, f.name)
        if f.name == "allocated_machines":
            if not set(want) <= set(have or []):
                return False
        elif f.name == "extensions":
            if any((have or {}).get(k) != v for k, v in want.items()):
                return False
        elif f.name in ("wallclock_time", "cpu_time", "submission_time", "dispatch_time",
                        "finish_time"):
            if have is None or have < want:
                return False
        elif have != want:
            return False
    return True


def _aware(where: str, value: Any) -> dt.datetime:
    """A timezone-aware datetime (JobInfo's times are; a naive one cannot be compared)."""
    when: dt.datetime = check_instance(dt.datetime)(where, value)
    if when.utcoffset() is None:
        raise InvalidArgumentError(
            f"{where} must be timezone-aware (e.g. datetime.now(timezone.utc)), got {when!r}")
    return when


_text = optional(check_text)
_FILTER_RULES: dict[str, Check] = {
    "id": _text, "job_name": _text, "exit_status": optional(check_int(-2**63)),
    "terminating_signal": _text, "annotation": _text, "state": optional(check_instance(JobState)),
    "sub_state": _text, "allocated_machines": check_list(check_text),
    "submission_machine": _text, "job_owner": _text, "slots": optional(check_int(0)),
    "queue_name": _text, "wallclock_time": optional(check_duration),
    "cpu_time": optional(check_duration), "submission_time": optional(_aware),
    "dispatch_time": optional(_aware), "finish_time": optional(_aware),
    "extensions": check_dict(check_text, check_text),
}


def check_filter(flt: Any, where: str = "filter") -> JobInfo | None:
    """``flt`` as a DRMAA2 filter: None, or a JobInfo whose set fields have the types
    ``matches`` compares (a normalized copy where a list was given as a tuple); anything else
    is an InvalidArgumentError naming the field and the value."""
    if flt is None:
        return None
    if not isinstance(flt, JobInfo):
        raise InvalidArgumentError(
            f"{where} must be a JobInfo or None, got {describe(flt)}")
    changes = check_fields(flt, where, _FILTER_RULES)
    return dataclasses.replace(flt, **changes) if changes else flt


@dataclass
class Version:
    """A DRMAA2 version: major and minor as strings."""

    major: str
    minor: str

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass
class MachineInfo:
    """A machine an engine runs jobs on (DRMAA2 MachineInfo); memory in bytes."""

    name: str
    available: bool | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    load: float | None = None
    phys_memory: int | None = None
    virt_memory: int | None = None
    machine_os: OS | None = None
    machine_os_version: Version | None = None
    machine_arch: CPU | None = None
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass
class QueueInfo:
    """A queue (Slurm partition, engine) jobs can be sent to."""

    name: str
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass
class ReservationInfo:
    """A granted advance reservation (DRMAA2 ReservationInfo)."""

    reservation_id: str
    reservation_name: str | None = None
    reserved_start_time: dt.datetime | None = None
    reserved_end_time: dt.datetime | None = None
    users_acl: list[str] = field(default_factory=list)
    reserved_slots: int | None = None
    reserved_machines: list[str] = field(default_factory=list)
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass
class Notification:
    """One event delivered to a ``register_event_notification`` callback."""

    event: Event
    job_id: str
    session_name: str
    state: JobState
