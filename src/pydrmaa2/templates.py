"""DRMAA2 templates (what to run, what to reserve) and the path placeholders they may hold."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field

from .errors import InvalidArgumentError
from .states import CPU, OS

__all__ = ["JobTemplate", "ReservationTemplate", "HOME_DIR", "WORKING_DIR", "PARAMETRIC_INDEX"]

HOME_DIR = "$DRMAA2_HOME_DIR$"
WORKING_DIR = "$DRMAA2_WORKING_DIR$"
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

    def validate(self) -> None:
        """Check the generic rules every tracker shares; raise InvalidArgumentError naming the field."""
        if not isinstance(self.args, list) or not all(isinstance(a, str) for a in self.args):
            raise InvalidArgumentError(f"JobTemplate.args must be a list of strings, got {self.args!r}")
        for name in ("job_environment", "extensions", "stage_in_files", "stage_out_files",
                     "resource_limits"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise InvalidArgumentError(f"JobTemplate.{name} must be a dict, got {value!r}")
        for name in ("remote_command", "working_directory", "job_category", "job_name",
                     "input_path", "output_path", "error_path", "reservation_id", "queue_name",
                     "accounting_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(
                    f"JobTemplate.{name} must be a string, got {type(value).__name__} {value!r}")
        for name in ("stage_in_files", "stage_out_files"):
            for k, v in getattr(self, name).items():
                if not isinstance(k, str) or not isinstance(v, str):
                    raise InvalidArgumentError(
                        f"JobTemplate.{name} entry {k!r}: {v!r} must map a path string to a "
                        "path string")
        self._refuse_nul()
        for k, v in self.job_environment.items():
            if not isinstance(k, str) or not k or "=" in k or not isinstance(v, str):
                raise InvalidArgumentError(
                    f"JobTemplate.job_environment entry {k!r}={v!r} is not NAME=string")
        for name in ("min_slots", "max_slots", "min_phys_memory"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InvalidArgumentError(f"JobTemplate.{name} must be a non-negative int, got {value!r}")
        if self.min_slots and self.max_slots and self.min_slots > self.max_slots:
            raise InvalidArgumentError(
                f"JobTemplate.min_slots {self.min_slots} is larger than max_slots {self.max_slots}")

    def _refuse_nul(self) -> None:
        """No engine can pass a NUL byte to a program (argv, environment, paths are C strings)."""
        for name in _JOB_FIELDS:
            value = getattr(self, name)
            items = (value if isinstance(value, list)
                     else [x for kv in value.items() for x in kv] if isinstance(value, dict)
                     else [value])
            for item in items:
                if isinstance(item, str) and "\0" in item:
                    raise InvalidArgumentError(
                        f"JobTemplate.{name} holds a NUL byte ({item!r}): no program can be "
                        "given one")


_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(JobTemplate))


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
