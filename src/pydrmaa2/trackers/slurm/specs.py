"""What a template becomes on Slurm's command line: the checks of a JobTemplate, its sbatch
options, paths and environment file, the batch script's settings, the chunks of an array, and
the ``scontrol create reservation`` arguments of a ReservationTemplate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from importlib import resources

from ...errors import InvalidArgumentError, UnsupportedAttributeError
from ...templates import PARAMETRIC_INDEX, JobTemplate, ReservationTemplate, expand_placeholders
from ..common import check_readable, check_writable, owner
from .parsers import format_duration, format_time, is_size, limit_seconds
from .tables import (
    DURATION_LIMITS,
    EXTENSION_OPTIONS,
    NODE_SELECTION,
    RESERVATION_EXTENSIONS,
    RESERVATION_FIELDS,
    RESERVED_OPTIONS,
    RESOURCE_LIMITS,
    TEMPLATE_OPTIONS,
)

#: The batch script of every job: JOB_ID and TASK_ID, the CPU time limit, the paths Slurm cannot
#: express (array chunks re-indexed from 0, a working directory holding the task index), then
#: the job's own argument vector. Its settings are its leading arguments, PYDRMAA2_SLURM_NAME=value
#: up to ``--`` (each assigned by export, never evaluated), the job's argv after it: passing them
#: as arguments keeps sbatch's environment the submitter's own, which it need not copy.
BATCH_SCRIPT = resources.files(__package__).joinpath("batch.sh").read_text()

_OPTION_NAME = re.compile(r"^[a-z][a-z0-9-]*$")

# -- checks ----------------------------------------------------------------------------------------


def check_node_selection(template: JobTemplate) -> None:
    """Refuse the fields Slurm selects no node by (NODE_SELECTION), naming what to use."""
    for name, how in NODE_SELECTION.items():
        if getattr(template, name) is not None:
            raise UnsupportedAttributeError(
                f"JobTemplate.{name} {getattr(template, name)!r}: Slurm selects nodes by "
                f"features, not by {how}; use extensions={{'constraint': 'FEATURE'}}")


def check_template(template: JobTemplate) -> None:
    """Refuse what sbatch would refuse, or take as something else: a missing command, an
    extension that is no sbatch option the tracker passes on, an unknown or malformed resource
    limit, two fields that both set --mem."""
    if not template.remote_command:
        raise InvalidArgumentError("JobTemplate.remote_command is not set: nothing to run")
    for name, value in template.extensions.items():
        if name in RESERVED_OPTIONS:
            raise UnsupportedAttributeError(
                f"JobTemplate.extensions {name!r}: the sbatch option --{name} is set by the "
                f"Slurm tracker from {RESERVED_OPTIONS[name]}")
        if not _OPTION_NAME.match(name) or name not in EXTENSION_OPTIONS:
            raise UnsupportedAttributeError(
                f"JobTemplate.extensions {name!r} is not an sbatch option the Slurm tracker "
                f"passes on; known: {', '.join(sorted(EXTENSION_OPTIONS))}")
        if not isinstance(value, str) or "\n" in value or "\0" in value:
            raise InvalidArgumentError(
                f"JobTemplate.extensions {name!r} value {value!r} is not a one-line string")
    for key, value in template.resource_limits.items():
        if key not in RESOURCE_LIMITS:
            raise UnsupportedAttributeError(
                f"JobTemplate.resource_limits key {key!r} is not known to the Slurm tracker; "
                f"known: {', '.join(RESOURCE_LIMITS)}")
        try:
            if key in DURATION_LIMITS:
                limit_seconds(value)
            elif not is_size(value):
                raise ValueError(value)
        except (ValueError, AttributeError, TypeError):
            form = ("seconds or [D-]HH:MM:SS" if key in DURATION_LIMITS
                    else "a size like 2048, 512M or 4G")
            raise InvalidArgumentError(
                f"JobTemplate.resource_limits {key!r} value {value!r} is not {form}") from None
    if "memory" in template.resource_limits and template.min_phys_memory is not None:
        raise InvalidArgumentError(
            "JobTemplate.min_phys_memory and resource_limits['memory'] both set --mem; set one")
    if template.priority is not None and not isinstance(template.priority, int):
        raise InvalidArgumentError(f"JobTemplate.priority {template.priority!r} is not an int")


def check_files(template: JobTemplate, index: int | None) -> None:
    """The command, working directory and paths as the job will see them, checked on this host
    (Slurm clusters share their file systems)."""
    wd = expand_placeholders(template.working_directory, index=index, working_dir=None)
    cwd = wd or os.getcwd()
    if wd is not None and not os.path.isdir(wd):
        raise InvalidArgumentError(f"JobTemplate.working_directory {wd!r} is not a directory")

    def local(p: str | None) -> str | None:
        p = expand_placeholders(p, index=index, working_dir=cwd)
        return None if p is None else os.path.join(cwd, p)

    cmd = template.remote_command or ""
    env_path = template.job_environment.get("PATH", os.environ.get("PATH", os.defpath))
    if "/" in cmd:
        path = os.path.join(cwd, cmd)
        if not os.path.isfile(path):
            raise InvalidArgumentError(f"JobTemplate.remote_command {cmd!r} does not exist")
        if not os.access(path, os.X_OK):
            raise InvalidArgumentError(f"JobTemplate.remote_command {cmd!r} is not executable")
    elif shutil.which(cmd, path=env_path) is None:
        raise InvalidArgumentError(
            f"JobTemplate.remote_command {cmd!r} is not found in PATH {env_path!r}")
    if template.input_path is not None:
        check_readable(local(template.input_path), "input_path")
    check_writable(local(template.output_path), "output_path")
    if not template.join_files:
        check_writable(local(template.error_path), "error_path")


def field_hint(template: JobTemplate | ReservationTemplate, fields: Mapping[str, str],
               message: str) -> str | None:
    """The template field (and its value) that a refusal is about: the first of ``fields``
    (a piece of the message -> a field) whose piece is in ``message`` and whose field is set."""
    for piece, field in fields.items():
        value = getattr(template, field)
        if piece in message and value not in (None, [], {}):
            return f"{type(template).__name__}.{field} = {value!r}"
    return None


# -- sbatch ----------------------------------------------------------------------------------------


def options(template: JobTemplate, hold: bool, candidates: Sequence[str]) -> list[str]:
    """sbatch options for every template field but the paths and the environment;
    ``candidates``: the options that select the candidate machines."""
    t = template
    opts = ["--parsable"]
    for name, option in TEMPLATE_OPTIONS.items():
        value = getattr(t, name)
        if value is not None:
            opts.append(f"{option}={value}")
    if t.job_name is None:
        opts.append(f"--job-name={os.path.basename(t.remote_command or 'job')}")
    if hold:
        opts.append("--hold")
    if t.rerunnable is not None:
        opts.append("--requeue" if t.rerunnable else "--no-requeue")
    slots = t.min_slots or t.max_slots
    if slots:
        # Slurm gives a job exactly what it asks: the minimum satisfies min..max.
        opts.append(f"--ntasks={slots}")
    if t.min_phys_memory is not None:
        opts.append(f"--mem={max(1, t.min_phys_memory)}K")  # DRMAA2: KiB
    if t.priority is not None:
        # DRMAA2: larger is more urgent; Slurm's nice: larger is less urgent.
        opts.append(f"--nice={-t.priority}")
    opts += candidates
    if t.start_time is not None:
        opts.append(f"--begin={format_time(t.start_time)}")
    if t.deadline_time is not None:
        opts.append(f"--deadline={format_time(t.deadline_time)}")
    if t.email:
        opts.append(f"--mail-user={','.join(t.email)}")
    mail = [w for flag, w in ((t.email_on_started, "BEGIN"), (t.email_on_terminated, "END,FAIL"))
            if flag]
    if mail:
        opts.append(f"--mail-type={','.join(mail)}")
    for key, value in t.resource_limits.items():
        limit = RESOURCE_LIMITS[key]
        if limit is not None:
            duration = key in DURATION_LIMITS
            opts.append(f"{limit}={format_duration(limit_seconds(value)) if duration else value}")
    for name, value in t.extensions.items():
        opts.append(f"--{name}={value}" if value else f"--{name}")
    return opts


def path_options(template: JobTemplate, pattern: Callable[[str], str]) -> list[str]:
    """--input/--output/--error, each path as ``pattern`` writes it; unset output and error go
    to /dev/null (not slurm-N.out)."""
    t = template
    out = ["--output=" + (pattern(t.output_path) if t.output_path is not None else "/dev/null")]
    if not t.join_files:
        out.append("--error=" + (pattern(t.error_path) if t.error_path is not None
                                 else "/dev/null"))
    if t.input_path is not None:
        out.append("--input=" + pattern(t.input_path))
    return out


def slurm_path(path: str) -> str:
    """A literal path as an sbatch --output/--error/--input pattern (``%`` is special there)."""
    return path.replace("%", "%%")


def indexed_path(path: str) -> str:
    """A path holding $DRMAA2_INDEX$ as an sbatch pattern: the index is the array task's (%a)."""
    return slurm_path(path).replace(slurm_path(PARAMETRIC_INDEX), "%a")


def expand_dirs(path: str, working_dir: str | None) -> str:
    """Expand $DRMAA2_HOME_DIR$ and $DRMAA2_WORKING_DIR$ but keep $DRMAA2_INDEX$ in place."""
    return PARAMETRIC_INDEX.join(expand_placeholders(p, index=None, working_dir=working_dir) or ""
                                 for p in path.split(PARAMETRIC_INDEX))


def environment_file(env: Mapping[str, str]) -> bytes:
    """The job's environment as ``sbatch --export-file`` reads it: NAME=value, NUL-separated."""
    return b"".join(os.fsencode(k) + b"=" + os.fsencode(v) + b"\0" for k, v in env.items())


def script_settings(template: JobTemplate, settings: Mapping[str, str]) -> dict[str, str]:
    """The batch script's PYDRMAA2_SLURM_* settings: ``settings`` and the CPU time limit."""
    own = dict(settings)
    if "cpu_time" in template.resource_limits:
        own["PYDRMAA2_SLURM_CPU_LIMIT"] = str(limit_seconds(template.resource_limits["cpu_time"]))
    return own


@dataclasses.dataclass
class Chunk:
    """One sbatch of an array: DRMAA2 indices ``indices`` as Slurm indices ``slurm_indices``."""

    indices: list[int]
    job_ids: list[str]
    reindexed: bool

    @property
    def slurm_indices(self) -> list[int]:
        return list(range(len(self.indices))) if self.reindexed else self.indices

    def array_spec(self, max_parallel: int | None) -> str:
        first, last = self.slurm_indices[0], self.slurm_indices[-1]
        step = 1 if self.reindexed or len(self.indices) < 2 else self.indices[1] - self.indices[0]
        spec = f"{first}-{last}" + (f":{step}" if step != 1 else "")
        return spec + (f"%{max_parallel}" if max_parallel else "")


def array_chunks(job_ids: Sequence[str], indices: Sequence[int], max_array_size: int) -> list[Chunk]:
    """Split an array for Slurm: as it is when every index is below MaxArraySize, else in chunks
    of at most MaxArraySize tasks, each indexed from 0 (the batch script maps the index back)."""
    if indices[-1] < max_array_size:
        return [Chunk(list(indices), list(job_ids), False)]
    return [Chunk(list(indices[i:i + max_array_size]), list(job_ids[i:i + max_array_size]), True)
            for i in range(0, len(indices), max_array_size)]


# -- scontrol create reservation -------------------------------------------------------------------


def reservation_args(template: ReservationTemplate, start: dt.datetime) -> list[str]:
    """The ``scontrol create reservation`` arguments of ``template``, starting at ``start`` (now
    when the template has no start_time); refuses what scontrol cannot express."""
    t = template
    extra = [f.name for f in dataclasses.fields(t)
             if getattr(t, f.name) not in (None, [], {}) and f.name not in RESERVATION_FIELDS]
    if extra:
        raise UnsupportedAttributeError(
            f"ReservationTemplate field(s) {', '.join(extra)} not supported by the Slurm tracker")
    bad = sorted(set(t.extensions) - RESERVATION_EXTENSIONS)
    if bad:
        raise UnsupportedAttributeError(
            f"ReservationTemplate.extensions {bad!r} are not scontrol reservation keys the "
            f"Slurm tracker passes on; known: {', '.join(sorted(RESERVATION_EXTENSIONS))}")
    if t.duration is None and t.end_time is None:
        raise InvalidArgumentError("ReservationTemplate needs a duration or an end_time")
    args = []
    if t.reservation_name:
        args.append(f"ReservationName={t.reservation_name}")
    args.append("StartTime=now" if t.start_time is None else f"StartTime={format_time(start)}")
    if t.duration is not None:
        if t.end_time is not None and start + t.duration > t.end_time.astimezone():
            raise InvalidArgumentError(
                f"ReservationTemplate.duration {t.duration} does not fit between start "
                f"{start} and end_time {t.end_time}")
        if t.duration.total_seconds() <= 0:
            raise InvalidArgumentError(f"ReservationTemplate.duration {t.duration} is not positive")
        args.append(f"Duration={format_duration(t.duration.total_seconds())}")
    elif t.end_time is not None:  # one of the two is set (checked above)
        args.append(f"EndTime={format_time(t.end_time)}")
    args.append(f"CoreCnt={reservation_slots(t)}")
    if t.candidate_machines:
        args.append(f"Nodes={','.join(t.candidate_machines)}")
    args.append(f"Users={','.join(t.users_acl or [owner()])}")
    args += [f"{k}={v}" for k, v in t.extensions.items()]
    return args


def reservation_slots(template: ReservationTemplate) -> int:
    """The cores a reservation asks for (Slurm reserves exactly that many)."""
    return template.min_slots or template.max_slots or 1
