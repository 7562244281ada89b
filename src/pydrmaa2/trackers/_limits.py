"""JobTemplate.resource_limits, priority and min_phys_memory for the process tracker: the
rlimits and nice value a job's process starts with, parsed and checked before any job exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
from collections.abc import Mapping

from ..errors import DeniedByDrmsError, InvalidArgumentError, UnsupportedAttributeError
from ..templates import JobTemplate
from .containers.spec import parse_size

#: JobTemplate.resource_limits keys (GFD.194's names, in any case, and the container trackers'
#: aliases) -> the rlimit the job starts with (setrlimit before exec), or WALLCLOCK: the agent
#: kills the job's process group (SIGKILL) once it has run that long. A value is SOFT[:HARD]
#: (HARD defaults to SOFT, as Docker's --ulimit), each a number or 'unlimited'/-1: bytes with an
#: optional unit k, m, g, t (powers of 1024) for sizes, seconds for times; a wallclock_time is
#: seconds or [D-]HH:MM:SS, as Slurm's.
WALLCLOCK = "wallclock"
RESOURCE_LIMITS: dict[str, str] = {
    "core_file_size": "core",
    "cpu_time": "cpu",
    "data_size": "data",
    "file_size": "fsize",
    "open_files": "nofile",
    "nofile": "nofile",
    "nproc": "nproc",
    "stack_size": "stack",
    "virtual_memory": "as",
    "wallclock_time": WALLCLOCK,
}
#: The rlimits above as the kernel numbers them.
RLIMITS: dict[str, int] = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "stack": resource.RLIMIT_STACK,
    "as": resource.RLIMIT_AS,
}
#: The rlimits counted in bytes, whose values may carry a unit.
SIZE_RLIMITS = frozenset({"core", "data", "fsize", "stack", "as"})

#: JobTemplate.priority -> the job's nice value. DRMAA2's priority is larger for more important
#: jobs, nice smaller, so nice = -priority, as Slurm's --nice=-priority; clamped to the kernel's
#: range. A nice value below the submitter's own needs privilege (CAP_SYS_NICE or RLIMIT_NICE)
#: and is refused without it.
NICE_MIN, NICE_MAX = -20, 19
CAP_SYS_NICE, CAP_SYS_RESOURCE = 23, 24


def job_nice(priority: int) -> int:
    """The nice value of a job of this DRMAA2 priority (see NICE_MIN)."""
    return max(NICE_MIN, min(NICE_MAX, -priority))


def physical_memory() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


_DURATION = re.compile(r"(?:(\d+)-)?(\d+):(\d+):(\d+)")


def _count(text: str, name: str, what: str, value: object) -> int:
    """One side of SOFT[:HARD]: -1 for unlimited."""
    text = text.strip()
    if text.lower() in ("-1", "unlimited", "infinity"):
        return -1
    if name in SIZE_RLIMITS:
        return parse_size(text, what)
    if not text.isdigit():
        unit = "seconds" if name == "cpu" else "a count"
        raise InvalidArgumentError(
            f"{what} {value!r} is not SOFT[:HARD] in {unit} (a whole number, or 'unlimited')")
    return int(text)


def _seconds(value: object, what: str) -> int:
    """A duration: whole seconds or [D-]HH:MM:SS."""
    text = str(value).strip()
    m = _DURATION.fullmatch(text)
    if m is not None:
        days, hours, minutes, secs = (int(g or 0) for g in m.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if not text.isdigit():
        raise InvalidArgumentError(f"{what} {value!r} is not seconds or [D-]HH:MM:SS")
    return int(text)


def parse_resource_limits(limits: Mapping[str, str],
                          ) -> tuple[dict[str, tuple[int, int]], int | None]:
    """JobTemplate.resource_limits as (rlimit name -> (soft, hard), -1 for unlimited) and the
    wallclock_time in seconds (None: no limit). Unknown keys are UnsupportedAttributeErrors (as
    on the other trackers), bad values InvalidArgumentErrors naming key and value."""
    rlimits: dict[str, tuple[int, int]] = {}
    wallclock = None
    for key, value in limits.items():
        name = RESOURCE_LIMITS.get(str(key).lower())
        if name is None:
            raise UnsupportedAttributeError(
                f"JobTemplate.resource_limits key {key!r} is not known to the process tracker; "
                f"known (in any case): {', '.join(RESOURCE_LIMITS)}")
        what = f"JobTemplate.resource_limits[{key!r}]"
        if name == WALLCLOCK:
            wallclock = _seconds(value, what)
            if not 1 <= wallclock < 2**40:
                raise InvalidArgumentError(f"{what} {value!r} must be one second or more, "
                                           "and less than 30,000 years")
            continue
        if name in rlimits:
            raise InvalidArgumentError(f"{what}: the {name} limit is set twice (by another key)")
        text = str(value).strip()
        m = _DURATION.fullmatch(text) if name == "cpu" else None
        if m is not None:
            soft = hard = _seconds(text, what)
        else:
            soft_text, _, hard_text = text.partition(":")
            soft = _count(soft_text, name, what, value)
            hard = _count(hard_text or soft_text, name, what, value)
        if max(soft, hard) >= 2**63:
            raise InvalidArgumentError(f"{what} {value!r} is too large; say 'unlimited'")
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidArgumentError(f"{what} {value!r}: the soft limit is above the hard one")
        rlimits[name] = (soft, hard)
    return rlimits, wallclock


def _capable(cap: int) -> bool:
    """Whether this process has capability ``cap`` (effective)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return os.geteuid() == 0


def _nr_open() -> int:
    """The most open files any process may have (no rlimit above it, even for root)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/sys/fs/nr_open") as f:
        return int(f.read())
    return 2**63 - 1


def _check_permitted(template: JobTemplate, rlimits: Mapping[str, tuple[int, int]],
                     nice: int | None) -> None:
    """What only privilege allows is refused here when we lack it, never failed silently: a
    hard limit above ours, a nice value below ours (the kernel's rules, setrlimit(2) and
    setpriority(2); the agent that starts the job is a process of the same user)."""
    for key, value in template.resource_limits.items():
        name = RESOURCE_LIMITS[str(key).lower()]
        if name == WALLCLOCK:
            continue
        hard = rlimits[name][1]
        what = f"JobTemplate.resource_limits[{key!r}] {value!r}"
        if name == "nofile" and hard > _nr_open():
            raise InvalidArgumentError(
                f"{what}: the kernel allows at most {_nr_open()} open files (fs.nr_open)")
        ours = resource.getrlimit(RLIMITS[name])[1]
        above = hard == -1 or hard > ours
        if ours != resource.RLIM_INFINITY and above and not _capable(CAP_SYS_RESOURCE):
            raise DeniedByDrmsError(
                f"{what}: the hard limit is above this user's ({ours}); raising it needs "
                "privilege (CAP_SYS_RESOURCE)")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    if nice is not None and nice < own:
        allowed = resource.getrlimit(resource.RLIMIT_NICE)[0]  # nice down to 20 - RLIMIT_NICE
        if not (allowed == resource.RLIM_INFINITY or 20 - nice <= allowed
                or _capable(CAP_SYS_NICE)):
            raise DeniedByDrmsError(
                f"JobTemplate.priority {template.priority} is nice value {nice}, below this "
                f"process's {own}: a priority above {-own} needs privilege (CAP_SYS_NICE or "
                "RLIMIT_NICE)")


def check_limits(template: JobTemplate) -> None:
    """Refuse, before any job exists, the limits, priority and memory of ``template`` that no
    process of this machine started by us can have."""
    if template.min_phys_memory is not None and \
            template.min_phys_memory * 1024 > physical_memory():
        raise InvalidArgumentError(
            f"JobTemplate.min_phys_memory {template.min_phys_memory} KiB is more than the "
            f"physical memory of this machine ({physical_memory() // 1024} KiB)")
    rlimits, _ = parse_resource_limits(template.resource_limits)
    nice = None if template.priority is None else job_nice(template.priority)
    _check_permitted(template, rlimits, nice)
