"""The Slurm tracker (contact ``slurm`` or ``slurm://CLUSTER``): jobs are Slurm batch jobs.

It drives Slurm through its commands (``sbatch --parsable``, ``squeue``, ``sacct``, ``scontrol``,
``scancel``, ``scontrol show node|partition|reservation``) with fixed, delimited output fields, and
never builds a shell line: a fixed batch script sets ``JOB_ID``/``TASK_ID`` and ``exec "$@"``s the
job's command and arguments, which reach it as sbatch's positional arguments. The environment is
the submitter's (sbatch exports its own) plus the template's, whose values reach the job unchanged
(commas and newlines included) through a NUL-separated ``--export-file``.

Job arrays are native (``--array=BEGIN-END:STEP%MAX_PARALLEL``, one sbatch). Slurm refuses task
indices of ``MaxArraySize`` or more, so a larger array is split into chunks of at most
``MaxArraySize`` tasks, each an array indexed from 0 that the batch script maps back to DRMAA2's
indices (paths holding ``$DRMAA2_INDEX$`` are then opened by the script). With ``max_parallel``
each chunk carries ``%max_parallel`` and depends (``afterany``) on the previous chunk, so the limit
holds for the whole array, at the price of no overlap between consecutive chunks.

The states of all the jobs a session asks about come from ONE ``squeue`` call (per 100 kB of job
ids), plus ONE ``sacct`` call for the jobs that ended or that ``squeue`` no longer knows. A JobInfo
comes from squeue's record while slurmctld has the job (it is authoritative), with the CPU time
from sacct; the look at a job that ran and ended waits for sacct to record its end, at most
``ACCOUNTING_LAG`` seconds after squeue first showed it ended (then it is reported without CPU
time), and never reports it running meanwhile. Jobs slurmctld forgot (``MinJobAge``) are answered
from sacct alone, once sacct has their end: until then their state is undetermined.
Paths, the working directory and the command are checked on the submitting host, as Slurm
clusters share their file systems.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import getpass
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import (
    DeniedByDrmsError,
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
    OutOfResourceError,
    TryLaterError,
    UnsupportedAttributeError,
)
from ..info import JobInfo, MachineInfo, QueueInfo, ReservationInfo, Version
from ..states import CPU, OS, Capability, JobState
from ..templates import (
    PARAMETRIC_INDEX,
    JobTemplate,
    ReservationTemplate,
    expand_placeholders,
)
from .base import Action, ChangeFeed, Contact, JobTracker, PollFeed, signal_name

__all__ = ["SlurmTracker"]

# -- mapping tables --------------------------------------------------------------------------------

#: Slurm job state words (squeue %T, sacct State) -> DRMAA2 states. PENDING is refined by reason
#: (HELD_REASONS) and by restart count (a pending job that ran before is REQUEUED).
STATES: dict[str, JobState] = {
    "PENDING": JobState.QUEUED,
    "CONFIGURING": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SUSPENDED": JobState.SUSPENDED,
    "STOPPED": JobState.SUSPENDED,
    "REQUEUED": JobState.REQUEUED,
    "REQUEUE_FED": JobState.REQUEUED,
    "REQUEUE_HOLD": JobState.REQUEUED_HELD,
    "SPECIAL_EXIT": JobState.REQUEUED_HELD,
    "RESV_DEL_HOLD": JobState.QUEUED_HELD,
    "COMPLETED": JobState.DONE,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.FAILED,
    "TIMEOUT": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "REVOKED": JobState.FAILED,
}

#: Reasons of a PENDING job that mean it is held (scontrol hold / sbatch -H).
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})

#: DRMAA2 control operations -> the Slurm command (the job id is appended).
CONTROL_COMMANDS: dict[Action, tuple[str, ...]] = {
    Action.SUSPEND: ("scontrol", "suspend"),
    Action.RESUME: ("scontrol", "resume"),
    Action.HOLD: ("scontrol", "hold"),
    Action.RELEASE: ("scontrol", "release"),
    Action.TERMINATE: ("scancel",),
}

#: JobTemplate fields mapped one to one to an sbatch option taking the field's value. (The
#: working directory is --chdir, unless it holds an array's task index: the batch script cd's.)
TEMPLATE_OPTIONS: dict[str, str] = {
    "job_name": "--job-name",
    "queue_name": "--partition",
    "reservation_id": "--reservation",
    "accounting_id": "--account",
}

#: JobTemplate.resource_limits keys. Durations are seconds ("3600") or [D-]HH:MM:SS; sizes are as
#: sbatch takes them (a number of MB, or with a K/M/G/T suffix). cpu_time is applied by the batch
#: script (``ulimit -t``): Slurm has no per-job CPU time limit of its own.
RESOURCE_LIMITS: dict[str, str | None] = {
    "wallclock_time": "--time",
    "cpu_time": None,
    "memory": "--mem",
    "memory_per_cpu": "--mem-per-cpu",
    "tmp": "--tmp",
}
DURATION_LIMITS = frozenset({"wallclock_time", "cpu_time"})

#: sbatch long options that JobTemplate.extensions may name (``{"qos": "high"}`` -> ``--qos=high``;
#: an empty value gives the bare flag). Options the tracker sets from template fields are in
#: RESERVED_OPTIONS instead, with the field to use.
EXTENSION_OPTIONS = frozenset({
    "qos", "constraint", "cluster-constraint", "cpus-per-task", "gres", "gres-flags", "gpus",
    "gpus-per-node", "gpus-per-socket", "gpus-per-task", "cpus-per-gpu", "mem-per-gpu", "gpu-bind",
    "gpu-freq", "licenses", "comment", "exclude", "exclusive", "nodes", "ntasks-per-node",
    "ntasks-per-core", "ntasks-per-socket", "sockets-per-node", "cores-per-socket",
    "threads-per-core", "mincpus", "tmp", "time-min", "signal", "wckey", "dependency",
    "distribution", "oversubscribe", "contiguous", "no-kill", "kill-on-invalid-dep", "profile",
    "propagate", "core-spec", "thread-spec", "spread-job", "use-min-nodes", "switches",
    "delay-boot", "reboot", "cpu-freq", "mcs-label", "overcommit", "bb", "bbf", "container",
    "power", "mem-per-cpu", "priority", "open-mode", "get-user-env", "network",
})
RESERVED_OPTIONS: dict[str, str] = {
    "job-name": "job_name", "chdir": "working_directory", "partition": "queue_name",
    "reservation": "reservation_id", "account": "accounting_id", "nice": "priority",
    "mem": "min_phys_memory", "ntasks": "min_slots", "nodelist": "candidate_machines",
    "begin": "start_time", "deadline": "deadline_time", "mail-user": "email",
    "mail-type": "email_on_started", "requeue": "rerunnable", "no-requeue": "rerunnable",
    "hold": "submit_as_hold", "output": "output_path", "error": "error_path",
    "input": "input_path", "time": "resource_limits", "export": "job_environment",
    "export-file": "job_environment", "array": "run_bulk_jobs", "clusters": "the contact",
    "cluster": "the contact", "parsable": "(set by the tracker)", "wrap": "remote_command",
    "wait": "wait_terminated", "uid": "(not allowed)", "gid": "(not allowed)",
}

#: Errors of the Slurm commands, by a piece of their message (matched in this order, ignoring
#: case) -> the DRMAA2 error raised with Slurm's message kept.
COMMAND_ERRORS: dict[str, type[Drmaa2Error]] = {
    "unable to contact slurm controller": DrmCommunicationError,
    "socket timed out": DrmCommunicationError,
    "zero bytes were transmitted": DrmCommunicationError,
    "communication connection failure": DrmCommunicationError,
    "connection refused": DrmCommunicationError,
    "can't be reached now": DrmCommunicationError,
    "known by database": DrmCommunicationError,
    "could not establish a configuration source": DrmCommunicationError,
    "unable to process configuration file": DrmCommunicationError,
    "munge": DrmCommunicationError,
    "is down": DrmCommunicationError,
    "access/permission denied": DeniedByDrmsError,
    "permission denied": DeniedByDrmsError,
    "access denied": DeniedByDrmsError,
    "not permitted": DeniedByDrmsError,
    "temporarily unable to accept job": TryLaterError,
    "resource temporarily unavailable": TryLaterError,
    "already completing or completed": InvalidStateError,
    "has already finished": InvalidStateError,
    "is pending execution": InvalidStateError,
    "is not suspended": InvalidStateError,
    "already suspended": InvalidStateError,
    "no longer pending": InvalidStateError,
    "job is not pending": InvalidStateError,
    "requested nodes are busy": OutOfResourceError,
    "reservation request overlaps": OutOfResourceError,
    "invalid": InvalidArgumentError,
    "not found": InvalidArgumentError,
    "can not be satisfied": InvalidArgumentError,
    "not available": InvalidArgumentError,
    "unrecognized option": InvalidArgumentError,
    "doesn't allow an argument": InvalidArgumentError,
    "requires an argument": InvalidArgumentError,
}

#: A piece of sbatch's refusal -> the JobTemplate field whose value it is about.
SUBMIT_ERROR_FIELDS: dict[str, str] = {
    "partition": "queue_name",
    "reservation": "reservation_id",
    "account": "accounting_id",
    "memory": "min_phys_memory",
    "node name": "candidate_machines",
    "node configuration": "min_slots",
    "--time": "resource_limits",
    "--mem": "resource_limits",
    "--tmp": "resource_limits",
    "--begin": "start_time",
    "--deadline": "deadline_time",
    "deadline": "deadline_time",
    "nice": "priority",
    "--mail": "email",
    "option": "extensions",
    "qos": "extensions",
}

#: Reservation template fields -> ``scontrol create reservation`` keys (set by reserve()).
RESERVATION_FIELDS = frozenset({"reservation_name", "start_time", "end_time", "duration",
                                "min_slots", "max_slots", "users_acl", "candidate_machines",
                                "extensions"})
#: ``scontrol create reservation`` keys that ReservationTemplate.extensions may set.
RESERVATION_EXTENSIONS = frozenset({"Flags", "PartitionName", "Accounts", "Groups", "Features",
                                    "Licenses", "TRES", "BurstBuffer", "MaxStartDelay", "Watts",
                                    "NodeCnt"})

#: Node states (scontrol show node) in which a machine takes no jobs.
UNAVAILABLE_NODE_STATES = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "POWERED_DOWN",
                           "POWERING_DOWN", "FUTURE", "UNKNOWN", "REBOOT_ISSUED")

#: The fields read from squeue -O and sacct -o, in this order (free text last).
SQUEUE_FIELDS = ("JobArrayID", "ArrayJobID", "JobID", "State", "Reason", "exit_code", "RestartCnt",
                 "SubmitTime", "StartTime", "EndTime", "TimeUsed", "NodeList", "NumCPUs",
                 "Partition", "UserName", "AllocNodes", "WorkDir", "Name")
SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Reason", "Submit", "Start", "End",
                "ElapsedRaw", "TotalCPU", "NodeList", "AllocCPUS", "Partition", "User", "WorkDir",
                "JobName")
#: Field separator of the delimited outputs: a control character no name or path holds.
SEP = "\x1f"

# -- timing ----------------------------------------------------------------------------------------

#: Slurm has no event API for job state changes (no push from slurmctld to a client), so waiters
#: poll squeue; half a second keeps waits snappy at one cheap squeue call per session and poll.
POLL_INTERVAL = 0.5
#: A Slurm command that has not answered after this many seconds means the controller is gone
#: (Slurm's own connection retries take about MessageTimeout, 10 s by default).
COMMAND_TIMEOUT = 60.0
#: slurmdbd records a job's end after squeue shows it: 0.1-0.2 s on an idle cluster, seconds when
#: many jobs end at once. A look at a job squeue shows ended after it ran waits (asking sacct
#: again) until sacct has its end, so its JobInfo has the CPU time, but at most this long after
#: it was first seen ended: then it is reported ended from squeue's record alone, without CPU
#: time. Meanwhile it is never reported as still running.
ACCOUNTING_LAG = 1.0
#: How often sacct is asked again for the end of a job squeue shows ended.
ACCOUNTING_POLL = 0.05
#: The most characters of job ids put in one squeue/sacct -j argument (Linux allows 128 kB).
MAX_ID_LIST = 100_000
#: How far back find_job looks in accounting for a job slurmctld no longer holds.
FIND_JOB_WINDOW = "now-14days"
#: Every state sacct knows: with a time window and no state, sacct lists only the jobs that were
#: eligible in it, never one held from its submission to its end. (The window ends a day from now:
#: sacct leaves out a job that ended in the second the window ends.)
SACCT_STATES = "PD,R,S,CD,CA,F,TO,NF,PR,BF,DL,OOM,RQ,RV,RS"

#: The batch script of every job: JOB_ID and TASK_ID, the CPU time limit, the paths Slurm cannot
#: express (array chunks re-indexed from 0, a working directory holding the task index), then
#: the job's own argument vector. Its settings are its leading arguments, PYDRMAA2_SLURM_NAME=value
#: up to ``--`` (each assigned by export, never evaluated), the job's argv after it: passing them
#: as arguments keeps sbatch's environment the submitter's own, which it need not copy.
BATCH_SCRIPT = r"""#!/bin/sh
# pydrmaa2 Slurm batch script: sets JOB_ID and TASK_ID, then runs the job's argv unchanged.
pydrmaa2_vars='PYDRMAA2_SLURM_KEY PYDRMAA2_SLURM_JOB_ID PYDRMAA2_SLURM_TASK_ID PYDRMAA2_SLURM_FIRST_ID
    PYDRMAA2_SLURM_FIRST_INDEX PYDRMAA2_SLURM_STEP PYDRMAA2_SLURM_REINDEXED
    PYDRMAA2_SLURM_CPU_LIMIT PYDRMAA2_SLURM_WORKDIR PYDRMAA2_SLURM_STDIN
    PYDRMAA2_SLURM_STDOUT PYDRMAA2_SLURM_STDERR PYDRMAA2_SLURM_JOIN'
unset $pydrmaa2_vars
while :; do
    case ${1-} in
    --) shift; break ;;
    PYDRMAA2_SLURM_*=*) export "$1" || exit 1; shift ;;
    *) echo "pydrmaa2 batch script: unexpected argument '${1-}' before --" >&2; exit 1 ;;
    esac
done
pydrmaa2_expand() {
    p=$1 r=
    while :; do
        case $p in
        *'$DRMAA2_INDEX$'*) r=$r${p%%'$DRMAA2_INDEX$'*}$TASK_ID; p=${p#*'$DRMAA2_INDEX$'} ;;
        *) break ;;
        esac
    done
    printf '%s' "$r$p"
}
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ] && [ -n "${PYDRMAA2_SLURM_FIRST_INDEX:-}" ]; then
    if [ "${PYDRMAA2_SLURM_REINDEXED:-}" = 1 ]; then
        TASK_ID=$((PYDRMAA2_SLURM_FIRST_INDEX + SLURM_ARRAY_TASK_ID * PYDRMAA2_SLURM_STEP))
    else
        TASK_ID=$SLURM_ARRAY_TASK_ID
    fi
    if [ -n "${PYDRMAA2_SLURM_FIRST_ID:-}" ]; then
        JOB_ID=$((PYDRMAA2_SLURM_FIRST_ID + (TASK_ID - PYDRMAA2_SLURM_FIRST_INDEX) / PYDRMAA2_SLURM_STEP))
    else
        JOB_ID=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
    fi
    export TASK_ID JOB_ID
else
    unset TASK_ID
    if [ -n "${PYDRMAA2_SLURM_TASK_ID:-}" ]; then TASK_ID=$PYDRMAA2_SLURM_TASK_ID; export TASK_ID; fi
    JOB_ID=${PYDRMAA2_SLURM_JOB_ID:-$SLURM_JOB_ID}
    export JOB_ID
fi
if [ -n "${PYDRMAA2_SLURM_CPU_LIMIT:-}" ]; then ulimit -t "$PYDRMAA2_SLURM_CPU_LIMIT" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_WORKDIR:-}" ]; then cd "$(pydrmaa2_expand "$PYDRMAA2_SLURM_WORKDIR")" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_STDIN:-}" ]; then exec <"$(pydrmaa2_expand "$PYDRMAA2_SLURM_STDIN")" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_STDOUT:-}" ]; then exec >"$(pydrmaa2_expand "$PYDRMAA2_SLURM_STDOUT")" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_STDERR:-}" ]; then exec 2>"$(pydrmaa2_expand "$PYDRMAA2_SLURM_STDERR")" || exit 1
elif [ "${PYDRMAA2_SLURM_JOIN:-}" = 1 ]; then exec 2>&1; fi
unset $pydrmaa2_vars pydrmaa2_vars
unset -f pydrmaa2_expand
exec "$@"
"""

# -- pure parsers and builders ---------------------------------------------------------------------

_NO_VALUE = frozenset({"", "N/A", "n/a", "None", "NONE", "Unknown", "(null)", "None assigned",
                       "INVALID"})
_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/\[\]]*)=")
_ARRAY_ID = re.compile(r"^(\d+)_\[([^\]]*)\]$")
_DURATION = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.(\d+))?$")
_SIZE = re.compile(r"^\d+[KMGT]?$")
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
#: The batch script in squeue's Command and sacct's SubmitLine, and its first argument, the job's
#: key (see SlurmTracker.find_job). Only the first match counts: the job's own arguments follow.
_KEY_ARGUMENT = re.compile(r"pydrmaa2-job-[0-9a-f]+\.sh (?:PYDRMAA2_SLURM_KEY=(\S+))?")


def parse_key_values(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value with spaces`` (``scontrol show ... -o``) as a dict."""
    keys = list(_KEY.finditer(line))
    out = {}
    for n, m in enumerate(keys):
        end = keys[n + 1].start() if n + 1 < len(keys) else len(line)
        out[m.group(1)] = line[m.end():end].strip()
    return out


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config`` (``Key = Value`` lines) as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def records(text: str, fields: Sequence[str], trailing: bool) -> list[dict[str, str]]:
    """Delimited records (SEP between fields, after the last one too when ``trailing``); a record
    whose free text held a newline spans several lines and is joined again."""
    want = len(fields) if trailing else len(fields) - 1
    out, pending = [], ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.count(SEP) >= want:
            values = pending.split(SEP, len(fields) - 1)
            if trailing:
                values[-1] = values[-1][:-1] if values[-1].endswith(SEP) else values[-1]
            out.append(dict(zip(fields, values, strict=False)))
            pending = ""
    return out


def expand_hostlist(hostlist: str) -> list[str]:
    """Slurm's compressed host list (``node[1-3,7],gpu[01-02]``) as host names."""
    if hostlist in _NO_VALUE:
        return []
    names, depth, start = [], 0, 0
    for i, c in enumerate(hostlist + ","):
        depth += (c == "[") - (c == "]")
        if c == "," and depth == 0:
            if hostlist[start:i]:
                names.append(hostlist[start:i])
            start = i + 1
    out: list[str] = []
    for name in names:
        m = re.search(r"\[([^\]]*)\]", name)
        if m is None:
            out.append(name)
            continue
        head, tail = name[:m.start()], name[m.end():]
        for part in m.group(1).split(","):
            lo, _, hi = part.partition("-")
            width = len(lo)
            for k in range(int(lo), int(hi or lo) + 1):
                out.extend(expand_hostlist(f"{head}{k:0{width}d}{tail}"))
    return out


def expand_array_id(job_id: str) -> list[str]:
    """``1234_[1-5:2,9%2]`` (a Slurm array's pending tasks in one record) as task ids."""
    m = _ARRAY_ID.match(job_id)
    if m is None:
        return [job_id]
    base, spec = m.group(1), m.group(2).split("%")[0]
    out = []
    for part in spec.split(","):
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        out.extend(f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1, int(step or 1)))
    return out


def base_id(tracker_id: str) -> str:
    """The Slurm job id to ask squeue/sacct about: an array task's array job id."""
    return tracker_id.split("_", 1)[0]


def job_state(word: str, reason: str = "", restarts: int = 0) -> JobState:
    """A Slurm state word (``CANCELLED by 0`` included) as a DRMAA2 state."""
    state = STATES.get(word.split(" ")[0].rstrip("+"), JobState.UNDETERMINED)
    if state is JobState.QUEUED:
        held = reason in HELD_REASONS
        if restarts > 0:
            return JobState.REQUEUED_HELD if held else JobState.REQUEUED
        return JobState.QUEUED_HELD if held else JobState.QUEUED
    return state


def sub_state(word: str, reason: str = "") -> str:
    """Slurm's own word for the state, with the reason when there is one."""
    return f"{word} ({reason})" if reason and reason not in _NO_VALUE else word


def parse_time(value: str) -> dt.datetime | None:
    """A Slurm timestamp (local time, ``SLURM_TIME_FORMAT=standard``) as an aware datetime."""
    if value in _NO_VALUE:
        return None
    try:
        return dt.datetime.fromisoformat(value).astimezone()
    except ValueError:
        return None


def format_time(when: dt.datetime) -> str:
    """An aware (or local naive) datetime as Slurm's local ``YYYY-MM-DDTHH:MM:SS``."""
    if when.tzinfo is not None:
        when = when.astimezone().replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def parse_duration(value: str) -> dt.timedelta | None:
    """Slurm durations: ``[D-][HH:]MM:SS[.mmm]`` (Elapsed, TotalCPU, TimeUsed)."""
    m = _DURATION.match(value.strip())
    if m is None:
        return None
    days, hours, minutes, seconds, frac = m.groups()
    return dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes),
                        seconds=int(seconds), milliseconds=int((frac or "0")[:3].ljust(3, "0")))


def limit_seconds(value: str) -> int:
    """A resource limit duration: seconds (``3600``) or ``[D-]HH:MM:SS``; ValueError otherwise."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    d = parse_duration(value)
    if d is None or "." in value:
        raise ValueError(value)
    return int(d.total_seconds())


def format_duration(seconds: float) -> str:
    """Seconds as Slurm's ``D-HH:MM:SS``."""
    s = max(0, int(-(-seconds // 1)))
    return f"{s // 86400}-{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


_signal_name = signal_name


def decode_exit_code(value: str) -> tuple[int | None, str | None]:
    """sacct's ``EXIT:SIGNAL`` as (exit status, signal name); a signal gives 128+N as shells do."""
    code, _, sig = value.partition(":")
    if not code.isdigit():
        return None, None
    if sig.isdigit() and int(sig):
        return 128 + int(sig), _signal_name(int(sig))
    return int(code), None


def decode_wait_status(value: str) -> tuple[int | None, str | None]:
    """squeue's exit_code (a raw wait status) as (exit status, signal name)."""
    if not value.strip().lstrip("-").isdigit():
        return None, None
    status = int(value)
    if status & 0x7F:
        return 128 + (status & 0x7F), _signal_name(status & 0x7F)
    return status >> 8 & 0xFF, None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def info_from_squeue(r: Mapping[str, str]) -> JobInfo:
    """A JobInfo from one squeue record (SQUEUE_FIELDS)."""
    state = job_state(r["State"], r["Reason"], _int(r["RestartCnt"]) or 0)
    started = state.is_started and r["NodeList"] not in _NO_VALUE
    start = parse_time(r["StartTime"]) if started else None
    end = parse_time(r["EndTime"]) if state.is_terminal and started else None
    exit_status, sig = decode_wait_status(r["exit_code"]) if state.is_terminal else (None, None)
    if state.is_terminal and not started:
        exit_status = sig = None
    used = parse_duration(r["TimeUsed"]) if started else None
    ext = {"slurm_id": r["JobArrayID"], "slurm_job_id": r["JobID"]}
    if r["WorkDir"] not in _NO_VALUE:
        ext["working_dir"] = r["WorkDir"]
    if r["Reason"] not in _NO_VALUE:
        ext["reason"] = r["Reason"]
    if _int(r["RestartCnt"]):
        ext["restarts"] = r["RestartCnt"]
    return JobInfo(
        job_name=r["Name"] or None, exit_status=exit_status, terminating_signal=sig,
        annotation=None if r["Reason"] in _NO_VALUE else r["Reason"],
        state=state, sub_state=sub_state(r["State"], r["Reason"]),
        allocated_machines=expand_hostlist(r["NodeList"]) if started else [],
        submission_machine=None if r["AllocNodes"] in _NO_VALUE else r["AllocNodes"],
        job_owner=r["UserName"] or None, slots=_int(r["NumCPUs"]) if started else None,
        queue_name=r["Partition"] or None,
        wallclock_time=(end - start) if start and end else used,
        submission_time=parse_time(r["SubmitTime"]), dispatch_time=start, finish_time=end,
        extensions=ext)


def info_from_sacct(r: Mapping[str, str]) -> JobInfo:
    """A JobInfo from one sacct allocation record (SACCT_FIELDS)."""
    word = r["State"]
    state = job_state(word, r["Reason"])
    cpus = _int(r["AllocCPUS"]) or 0
    started = cpus > 0 and r["NodeList"] not in _NO_VALUE
    start = parse_time(r["Start"]) if started else None
    end = parse_time(r["End"]) if state.is_terminal and started else None
    exit_status, sig = decode_exit_code(r["ExitCode"]) if started else (None, None)
    if not state.is_terminal:
        exit_status = sig = None
    elapsed = _int(r["ElapsedRaw"])
    ext = {"slurm_id": r["JobID"], "slurm_job_id": r["JobIDRaw"]}
    if r["WorkDir"] not in _NO_VALUE:
        ext["working_dir"] = r["WorkDir"]
    if r["Reason"] not in _NO_VALUE:
        ext["reason"] = r["Reason"]
    return JobInfo(
        job_name=r["JobName"] or None, exit_status=exit_status, terminating_signal=sig,
        annotation=None if r["Reason"] in _NO_VALUE else r["Reason"],
        state=state, sub_state=sub_state(word, r["Reason"]),
        allocated_machines=expand_hostlist(r["NodeList"]) if started else [],
        job_owner=r["User"] or None, slots=cpus or None, queue_name=r["Partition"] or None,
        wallclock_time=dt.timedelta(seconds=elapsed) if started and elapsed is not None else None,
        cpu_time=parse_duration(r["TotalCPU"]) if started else None,
        submission_time=parse_time(r["Submit"]), dispatch_time=start, finish_time=end,
        extensions=ext)


def _acct_record(acct: Mapping[str, dict[str, str]], tid: str) -> dict[str, str] | None:
    """sacct's record of a job or array task. (slurmdbd may keep an array's pending tasks
    under the bare array job id: a record made from the end message, without the index range.)"""
    return acct.get(tid) or (acct.get(base_id(tid)) if "_" in tid else None)


def accounted(q: Mapping[str, str], a: Mapping[str, str]) -> bool:
    """Whether sacct has recorded the end that squeue shows. (slurmdbd may for seconds hold a
    placeholder, job name "allocation" and no partition, made from the end messages: its state,
    end and CPU time are right, the rest comes from squeue.)"""
    return a["End"] not in _NO_VALUE and a["State"].split(" ")[0] == q["State"]


def machine_from_node(n: Mapping[str, str]) -> MachineInfo:
    """A MachineInfo from one ``scontrol show node -o`` line."""
    state = n.get("State", "")
    os_text = n.get("OS", "")
    release = os_text.split()[1] if len(os_text.split()) > 1 else ""
    parts = re.findall(r"\d+", release)[:2]
    memory = _int(n.get("RealMemory"))
    try:
        load: float | None = float(n.get("CPULoad", ""))
    except ValueError:
        load = None
    ext = {k: n[v] for k, v in (("cpus", "CPUTot"), ("cpus_allocated", "CPUAlloc"),
                                ("state", "State"), ("partitions", "Partitions"),
                                ("features", "AvailableFeatures"), ("gres", "Gres"),
                                ("free_memory_mb", "FreeMem"), ("os", "OS"))
           if n.get(v) not in (None, *_NO_VALUE)}
    return MachineInfo(
        name=n.get("NodeName", ""),
        available=not any(s in state for s in UNAVAILABLE_NODE_STATES) and not state.endswith("*"),
        sockets=_int(n.get("Sockets")), cores_per_socket=_int(n.get("CoresPerSocket")),
        threads_per_core=_int(n.get("ThreadsPerCore")), load=load,
        phys_memory=memory * 1024 * 1024 if memory is not None else None,
        machine_os=(OS.LINUX if os_text.startswith("Linux") else OS.OTHER_OS) if os_text else None,
        machine_os_version=Version(parts[0], parts[1] if len(parts) > 1 else "0") if parts else None,
        machine_arch=CPU.from_machine(n["Arch"]) if n.get("Arch") not in (None, *_NO_VALUE) else None,
        extensions=ext)


def reservation_from_scontrol(r: Mapping[str, str]) -> ReservationInfo:
    """A ReservationInfo from one ``scontrol show reservation -o`` line."""
    name = r.get("ReservationName", "")
    cores = _int(r.get("CoreCnt"))
    if cores is None:
        m = re.search(r"cpu=(\d+)", r.get("TRES", ""))
        cores = int(m.group(1)) if m else None
    users = r.get("Users", "")
    ext = {k: r[k] for k in ("State", "Flags", "PartitionName", "Duration", "Accounts", "TRES",
                             "NodeCnt", "Features") if r.get(k) not in (None, *_NO_VALUE)}
    return ReservationInfo(
        reservation_id=name, reservation_name=name,
        reserved_start_time=parse_time(r.get("StartTime", "")),
        reserved_end_time=parse_time(r.get("EndTime", "")),
        users_acl=[] if users in _NO_VALUE else users.split(","),
        reserved_slots=cores, reserved_machines=expand_hostlist(r.get("Nodes", "")),
        extensions=ext)


def environment_file(env: Mapping[str, str]) -> bytes:
    """The job's environment as ``sbatch --export-file`` reads it: NAME=value, NUL-separated."""
    return b"".join(os.fsencode(k) + b"=" + os.fsencode(v) + b"\0" for k, v in env.items())


def slurm_path(path: str) -> str:
    """A literal path as an sbatch --output/--error/--input pattern (``%`` is special there)."""
    return path.replace("%", "%%")


def _expand_dirs(path: str, working_dir: str | None) -> str:
    """Expand $DRMAA2_HOME_DIR$ and $DRMAA2_WORKING_DIR$ but keep $DRMAA2_INDEX$ in place."""
    return PARAMETRIC_INDEX.join(expand_placeholders(p, index=None, working_dir=working_dir) or ""
                                 for p in path.split(PARAMETRIC_INDEX))


def _check_readable(path: str, field: str) -> None:
    if not os.access(path, os.R_OK):
        why = "does not exist" if not os.path.exists(path) else "is not readable"
        raise InvalidArgumentError(f"JobTemplate.{field} {path!r} {why}")


def _check_writable(path: str, field: str) -> None:
    if path == "/dev/null":
        return
    if os.path.exists(path):
        ok, why = os.access(path, os.W_OK) and not os.path.isdir(path), "is not a writable file"
    else:
        parent = os.path.dirname(path) or "."
        ok = os.path.isdir(parent) and os.access(parent, os.W_OK)
        why = f"cannot be created (directory {parent!r} is missing or not writable)"
    if not ok:
        raise InvalidArgumentError(f"JobTemplate.{field} {path!r} {why}")


@dataclasses.dataclass
class _Chunk:
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


def array_chunks(job_ids: Sequence[str], indices: Sequence[int], max_array_size: int) -> list[_Chunk]:
    """Split an array for Slurm: as it is when every index is below MaxArraySize, else in chunks
    of at most MaxArraySize tasks, each indexed from 0 (the batch script maps the index back)."""
    if indices[-1] < max_array_size:
        return [_Chunk(list(indices), list(job_ids), False)]
    return [_Chunk(list(indices[i:i + max_array_size]), list(job_ids[i:i + max_array_size]), True)
            for i in range(0, len(indices), max_array_size)]


def _done(action: Action, state: JobState) -> bool:
    """Whether a job in ``state`` needs ``action`` no more (a batch that failed for another)."""
    if action is Action.SUSPEND:
        return state is JobState.SUSPENDED
    if action is Action.RESUME:
        return state is JobState.RUNNING
    if action is Action.HOLD:
        return state in (JobState.QUEUED_HELD, JobState.REQUEUED_HELD)
    if action is Action.RELEASE:
        return state in (JobState.QUEUED, JobState.REQUEUED, JobState.RUNNING)
    return state.is_terminal  # TERMINATE


def _id_lists(ids: Iterable[str]) -> list[str]:
    """Comma-joined job id lists, each short enough for one argument."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for i in ids:
        if current and size + len(i) + 1 > MAX_ID_LIST:
            out.append(",".join(current))
            current, size = [], 0
        current.append(i)
        size += len(i) + 1
    if current:
        out.append(",".join(current))
    return out


# -- the tracker -----------------------------------------------------------------------------------

class _Inherit:
    """The type of INHERIT."""


#: ``SlurmTracker._run(env=INHERIT)``: the command inherits this process's environment as it is.
INHERIT = _Inherit()


class _Watchdog:
    """Kills the Slurm commands that outlive COMMAND_TIMEOUT: one thread for all the commands of
    a tracker. (A threading.Timer per command costs 0.2 ms, 4% of an sbatch; communicate()'s own
    timeout makes Popen.wait poll with sleeps, which costs more.) Every command gets the same
    timeout, so the commands are watched in the order of their deadlines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, subprocess.Popen]] = {}
        self._killed: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._watched[id(proc)] = (time.monotonic() + COMMAND_TIMEOUT, proc)
            if self._thread is None or self._stop.is_set():
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True,
                                                name="pydrmaa2-slurm-watchdog")
                self._thread.start()

    def done(self, proc: subprocess.Popen) -> bool:
        """Stop watching ``proc``; True when the watchdog killed it."""
        with self._lock:
            self._watched.pop(id(proc), None)
            if id(proc) in self._killed:
                self._killed.discard(id(proc))
                return True
            return False

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                now = time.monotonic()
                while self._watched:
                    key, (deadline, proc) = next(iter(self._watched.items()))
                    if deadline > now:
                        break
                    del self._watched[key]
                    self._killed.add(key)
                    proc.kill()
                # A command watched from now on has its deadline COMMAND_TIMEOUT away or more.
                wait = (next(iter(self._watched.values()))[0] - now if self._watched
                        else COMMAND_TIMEOUT)
            stop.wait(wait)

    def close(self) -> None:
        self._stop.set()



@dataclasses.dataclass
class _Seen:
    """What the last look at one job found: squeue's and sacct's records."""

    queue: dict[str, str] | None = None
    acct: dict[str, str] | None = None
    note: str | None = None


class SlurmTracker(JobTracker):
    """Jobs as Slurm batch jobs, through the Slurm commands on PATH."""

    scheme = "slurm"
    contact_options = frozenset({"max_array_size"})
    supported_fields = frozenset({
        "remote_command", "args", "submit_as_hold", "rerunnable", "job_environment",
        "working_directory", "email", "email_on_started", "email_on_terminated", "job_name",
        "input_path", "output_path", "error_path", "join_files", "reservation_id", "queue_name",
        "min_slots", "max_slots", "priority", "candidate_machines", "min_phys_memory",
        "start_time", "deadline_time", "resource_limits", "accounting_id", "extensions",
    })
    capabilities = frozenset({
        Capability.JOB_ARRAYS, Capability.BULK_JOBS_MAXPARALLEL, Capability.CALLBACK,
        Capability.JT_EMAIL, Capability.JT_DEADLINE, Capability.JT_MAXSLOTS,
        Capability.JT_ACCOUNTINGID, Capability.ADVANCE_RESERVATION, Capability.RESERVE_SLOTS,
        Capability.RT_STARTNOW, Capability.RT_DURATION,
    })
    native_hold = True
    native_arrays = True

    #: Contact options (``slurm?max_array_size=5``): a smaller MaxArraySize than the cluster's.
    OPTIONS = frozenset({"max_array_size"})

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        if contact.path or contact.port:
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: use 'slurm' (the default cluster) or 'slurm://CLUSTER'")
        unknown = sorted(set(contact.options) - self.OPTIONS)
        if unknown:
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.OPTIONS))}")
        limit = contact.options.get("max_array_size")
        if limit is not None and (not limit.isdigit() or int(limit) < 1):
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: max_array_size {limit!r} is not a positive integer")
        self._max_array_size = int(limit) if limit else None
        self.cluster = contact.host
        self.where = (f"Slurm cluster {self.cluster!r}" if self.cluster else
                      f"the Slurm cluster of {os.environ.get('SLURM_CONF', '/etc/slurm/slurm.conf')}")
        self._lock = threading.Lock()
        self._config: dict[str, str] | None = None
        self._script: Path | None = None
        self._seen: dict[str, _Seen] = {}
        self._final: dict[str, JobInfo] = {}
        self._lagging: dict[str, float] = {}
        self._watchdog = _Watchdog()
        self.store_key = hashlib.sha256(os.fsencode(Path(home).resolve())).hexdigest()[:16]

    # -- the command runner ----------------------------------------------------------------------
    def _run(self, argv: Sequence[str], what: str, *, fds: Sequence[int] = (),
             hint: Callable[[str], str | None] | None = None,
             ok: Callable[[str], bool] | None = None,
             env: Mapping[bytes, bytes] | None | _Inherit = None) -> str:
        """Run one Slurm command (an argv, never a shell line) on this tracker's cluster; return
        its output or raise the DRMAA2 error its message means, naming ``what`` and the cluster.
        ``ok(message)`` may accept a failure (e.g. squeue on ids it no longer knows). ``env``:
        None is ours with ISO times, INHERIT ours as it is (no copy)."""
        args = [argv[0], *(["-M", self.cluster] if self.cluster else []), *argv[1:]]
        if isinstance(env, _Inherit):
            env = None
        elif env is None:
            env = {**os.environb, b"SLURM_TIME_FORMAT": b"standard"}  # ISO times, whatever is set
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env, pass_fds=tuple(fds))
        except FileNotFoundError:
            raise DrmCommunicationError(
                f"{what}: the Slurm command {argv[0]!r} is not installed (not in PATH "
                f"{os.environ.get('PATH', '')!r}); cannot reach {self.where}") from None
        self._watchdog.watch(proc)
        try:
            stdout, stderr = proc.communicate()
        finally:
            killed = self._watchdog.done(proc)
        if killed:
            raise DrmCommunicationError(
                f"{what}: {argv[0]} did not answer within {COMMAND_TIMEOUT:.0f} s; "
                f"is the controller of {self.where} running?")
        message = " ".join(line.strip() for line in stderr.splitlines() if line.strip("* \t"))
        # With -M, scontrol reports an unknown cluster on stderr and still exits 0.
        failed = proc.returncode != 0 or (not stdout.strip() and "error" in message.lower())
        if not failed:
            return stdout
        message = message or " ".join(
            line.strip() for line in stdout.splitlines() if line.strip("* \t")) or \
            f"exit status {proc.returncode}"
        if ok is not None and ok(message):
            return stdout
        low = message.lower()
        cls = next((c for k, c in COMMAND_ERRORS.items() if k in low), ImplementationSpecificError)
        extra = hint(low) if hint is not None else None
        text = f"{what}: {message}" + (f" ({extra})" if extra else "")
        if cls is DrmCommunicationError:
            text = f"{what}: cannot reach {self.where}: {message}"
        raise cls(text)

    @property
    def config(self) -> dict[str, str]:
        """``scontrol show config``, read once."""
        with self._lock:
            if self._config is None:
                self._config = parse_config(self._run(["scontrol", "show", "config"],
                                                      "reading the Slurm configuration"))
            return self._config

    @property
    def max_array_size(self) -> int:
        """The cluster's MaxArraySize (the contact's max_array_size when smaller)."""
        configured = _int(self.config.get("MaxArraySize")) or 1001
        return min(configured, self._max_array_size or configured)

    @property
    def accounting(self) -> bool:
        """Whether sacct can answer (accounting storage is configured)."""
        return self.config.get("AccountingStorageType", "accounting_storage/none") not in (
            "accounting_storage/none", "(null)", "")

    def check(self) -> None:
        out = self._run(["scontrol", "ping"], "checking the Slurm controller")
        if " is UP" not in out:
            raise DrmCommunicationError(f"the controller of {self.where} is not up: {out.strip()}")

    # -- validation ------------------------------------------------------------------------------
    def validate(self, template: JobTemplate) -> None:
        for name, how in (("machine_os", "operating system"), ("machine_arch", "architecture")):
            if getattr(template, name) is not None:
                raise UnsupportedAttributeError(
                    f"JobTemplate.{name} {getattr(template, name)!r}: Slurm selects nodes by "
                    f"features, not by {how}; use extensions={{'constraint': 'FEATURE'}}")
        super().validate(template)
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
                elif not _SIZE.match(value):
                    raise ValueError(value)
            except (ValueError, AttributeError):
                form = ("seconds or [D-]HH:MM:SS" if key in DURATION_LIMITS
                        else "a size like 2048, 512M or 4G")
                raise InvalidArgumentError(
                    f"JobTemplate.resource_limits {key!r} value {value!r} is not {form}") from None
        if "memory" in template.resource_limits and template.min_phys_memory is not None:
            raise InvalidArgumentError(
                "JobTemplate.min_phys_memory and resource_limits['memory'] both set --mem; set one")
        if template.priority is not None and not isinstance(template.priority, int):
            raise InvalidArgumentError(f"JobTemplate.priority {template.priority!r} is not an int")

    def _check_files(self, template: JobTemplate, index: int | None) -> None:
        """The command, working directory and paths as the job will see them (on this host)."""
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
            _check_readable(local(template.input_path), "input_path")  # type: ignore[arg-type]
        if template.output_path is not None:
            _check_writable(local(template.output_path), "output_path")  # type: ignore[arg-type]
        if template.error_path is not None and not template.join_files:
            _check_writable(local(template.error_path), "error_path")  # type: ignore[arg-type]

    # -- submission ------------------------------------------------------------------------------
    def _script_path(self) -> Path:
        """The batch script, written once under the store's home, named by its content: a
        program of another pydrmaa2 version sharing the home keeps its own script."""
        if self._script is None:
            digest = hashlib.sha256(BATCH_SCRIPT.encode()).hexdigest()[:12]
            path = self.home / "slurm" / f"pydrmaa2-job-{digest}.sh"
            if not path.exists() or path.read_text() != BATCH_SCRIPT:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(BATCH_SCRIPT)
                tmp.chmod(0o755)
                os.replace(tmp, path)
            self._script = path
        return self._script

    def _candidate_options(self, machines: Sequence[str]) -> list[str]:
        """One candidate: --nodelist. Several: Slurm's --nodelist would take them all, so the
        other nodes are excluded instead."""
        if not machines:
            return []
        if len(machines) == 1:
            return [f"--nodelist={machines[0]}"]
        nodes = [parse_key_values(line).get("NodeName", "") for line in
                 self._run(["scontrol", "show", "node", "-o"], "listing nodes").splitlines()]
        unknown = sorted(set(machines) - set(nodes))
        if unknown:
            raise InvalidArgumentError(
                f"JobTemplate.candidate_machines {unknown!r} are not nodes of {self.where}")
        others = [n for n in nodes if n and n not in machines]
        return [f"--exclude={','.join(others)}"] if others else []

    def _options(self, template: JobTemplate, hold: bool) -> list[str]:
        """sbatch options for every template field but the paths and the environment."""
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
        opts += self._candidate_options(t.candidate_machines)
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
            option = RESOURCE_LIMITS[key]
            if option == "--time":
                opts.append(f"--time={format_duration(limit_seconds(value))}")
            elif option is not None:
                opts.append(f"{option}={value}")
        for name, value in t.extensions.items():
            opts.append(f"--{name}={value}" if value else f"--{name}")
        return opts

    @staticmethod
    def _variables(template: JobTemplate, extra: Mapping[str, str]) -> dict[str, str]:
        """The batch script's PYDRMAA2_SLURM_* variables."""
        own = dict(extra)
        if "cpu_time" in template.resource_limits:
            own["PYDRMAA2_SLURM_CPU_LIMIT"] = str(limit_seconds(template.resource_limits["cpu_time"]))
        return own

    def _sbatch(self, options: list[str], variables: Mapping[str, str], template: JobTemplate,
                what: str) -> str:
        """Run sbatch with the batch script, its ``variables`` and the job's argv; return the
        Slurm job id.

        The job's environment is ours, as sbatch exports its own by default, and sbatch inherits
        it unchanged (an explicit --export=ALL,NAME=value makes slurmd launch jobs several times
        slower). The template's variables must not configure sbatch itself (SBATCH_*, TZ, LD_*):
        they go to the job alone, in a NUL-separated --export-file that holds any value (commas,
        quotes, newlines)."""
        script = [str(self._script_path()), *(f"{k}={v}" for k, v in variables.items()), "--",
                  template.remote_command or "", *template.args]
        hint = functools.partial(self._field_hint, template=template)
        if not template.job_environment:
            out = self._run(["sbatch", *options, *script], what, hint=hint, env=INHERIT)
        else:
            own = template.job_environment
            skip = {os.fsencode(k) for k in own}
            env = b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items() if k not in skip)
            fd = os.memfd_create("pydrmaa2-env")
            try:
                os.write(fd, env + environment_file(own))
                os.lseek(fd, 0, os.SEEK_SET)
                out = self._run(["sbatch", *options, f"--export-file={fd}", *script], what,
                                fds=[fd], hint=hint, env=INHERIT)
            finally:
                os.close(fd)
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise DrmCommunicationError(f"{what}: sbatch answered {out.strip()!r}, not a job id")
        return job_id

    @staticmethod
    def _field_hint(message: str, template: JobTemplate) -> str | None:
        for piece, field in SUBMIT_ERROR_FIELDS.items():
            value = getattr(template, field)
            if piece in message and value not in (None, [], {}):
                return f"JobTemplate.{field} = {value!r}"
        return None

    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        self._check_files(template, task_index)
        opts = self._options(template, hold)
        if template.working_directory is not None:
            opts.append(f"--chdir={template.working_directory}")
        opts += self._path_options(template, lambda p: slurm_path(p))
        extra = {"PYDRMAA2_SLURM_KEY": f"{self.store_key}:{job_id}",
                 "PYDRMAA2_SLURM_JOB_ID": job_id}
        if task_index is not None:  # a task started one by one (not by this tracker's arrays)
            extra["PYDRMAA2_SLURM_TASK_ID"] = str(task_index)
        return self._sbatch(opts, self._variables(template, extra), template,
                            f"submitting job {job_id} to {self.where}")

    @staticmethod
    def _path_options(template: JobTemplate, pattern: Callable[[str], str]) -> list[str]:
        """--input/--output/--error; unset output and error go to /dev/null (not slurm-N.out)."""
        t = template
        out = ["--output=" + (pattern(t.output_path) if t.output_path is not None else "/dev/null")]
        if not t.join_files:
            out.append("--error=" + (pattern(t.error_path) if t.error_path is not None
                                     else "/dev/null"))
        if t.input_path is not None:
            out.append("--input=" + pattern(t.input_path))
        return out

    def submit_array(self, job_ids: Sequence[str], template: JobTemplate,
                     indices: Sequence[int], max_parallel: int | None,
                     hold: bool = False) -> list[str]:
        self._check_files(template, indices[0])
        base_opts = self._options(template, hold)
        ids_consecutive = all(i.isdigit() for i in job_ids) and all(
            int(job_ids[k]) == int(job_ids[0]) + k for k in range(len(job_ids)))
        step = indices[1] - indices[0] if len(indices) > 1 else 1
        # The working directory and paths with their placeholders, $DRMAA2_INDEX$ left in.
        wd = (_expand_dirs(template.working_directory, None)
              if template.working_directory is not None else None)
        wd_indexed = wd is not None and PARAMETRIC_INDEX in wd
        paths = {}
        for name in ("input_path", "output_path", "error_path"):
            p = getattr(template, name)
            if p is not None:
                p = _expand_dirs(p, wd or os.getcwd())
                if wd_indexed and not os.path.isabs(p):
                    p = os.path.join(wd, p)  # type: ignore[arg-type]
                paths[name] = p
        chunks = array_chunks(job_ids, indices, self.max_array_size)
        tids: list[str] = []
        submitted: list[str] = []
        try:
            for chunk in chunks:
                opts = list(base_opts)
                ids = (f"{chunk.job_ids[0]}+{len(chunk.job_ids)}" if ids_consecutive
                       else ",".join(chunk.job_ids))
                slurm_step = 1 if chunk.reindexed else step
                extra = {"PYDRMAA2_SLURM_KEY":
                         f"{self.store_key}:{ids}:{chunk.slurm_indices[0]}:{slurm_step}",
                         "PYDRMAA2_SLURM_FIRST_INDEX": str(chunk.indices[0]),
                         "PYDRMAA2_SLURM_STEP": str(step)}
                if ids_consecutive:
                    extra["PYDRMAA2_SLURM_FIRST_ID"] = chunk.job_ids[0]
                if chunk.reindexed:
                    extra["PYDRMAA2_SLURM_REINDEXED"] = "1"
                if wd is not None and not wd_indexed:
                    opts.append(f"--chdir={wd}")
                elif wd_indexed:
                    extra["PYDRMAA2_SLURM_WORKDIR"] = wd  # type: ignore[assignment]
                slurm_paths = dict(paths)
                if chunk.reindexed:
                    # Slurm's %a is the chunk's own index: the script opens indexed paths.
                    for name, var in (("input_path", "STDIN"), ("output_path", "STDOUT"),
                                      ("error_path", "STDERR")):
                        if PARAMETRIC_INDEX in slurm_paths.get(name, ""):
                            extra[f"PYDRMAA2_SLURM_{var}"] = slurm_paths.pop(name)
                    if template.join_files and "PYDRMAA2_SLURM_STDOUT" in extra:
                        extra["PYDRMAA2_SLURM_JOIN"] = "1"
                t = dataclasses.replace(template, **{k: slurm_paths.get(k) for k in
                                                     ("input_path", "output_path", "error_path")})
                opts += self._path_options(
                    t, lambda p: slurm_path(p).replace(slurm_path(PARAMETRIC_INDEX), "%a"))
                opts.append(f"--array={chunk.array_spec(max_parallel)}")
                if submitted and max_parallel:
                    opts.append(f"--dependency=afterany:{submitted[-1]}")
                first, last = chunk.job_ids[0], chunk.job_ids[-1]
                slurm_id = self._sbatch(opts, self._variables(template, extra), template,
                                        f"submitting jobs {first}..{last} (array tasks "
                                        f"{chunk.indices[0]}..{chunk.indices[-1]}) to {self.where}")
                submitted.append(slurm_id)
                tids += [f"{slurm_id}_{i}" for i in chunk.slurm_indices]
        except BaseException:
            for slurm_id in submitted:  # nothing may remain of a failed submission
                try:
                    self._run(["scancel", slurm_id], f"cancelling array {slurm_id}")
                except Drmaa2Error:
                    pass
            raise
        return tids

    # -- states ----------------------------------------------------------------------------------
    def _squeue(self, bases: Iterable[str]) -> list[dict[str, str]]:
        fmt = ",".join(f"{f}:{SEP}" for f in SQUEUE_FIELDS)
        out = []
        for ids in _id_lists(bases):
            text = self._run(["squeue", "-h", "-r", "-t", "all", "-j", ids, "-O", fmt],
                             f"asking squeue about jobs {ids[:60]}",
                             ok=lambda m: "invalid job id" in m.lower())
            out += records(text, SQUEUE_FIELDS, trailing=True)
        return out

    def _sacct(self, bases: Iterable[str]) -> list[dict[str, str]]:
        out = []
        for ids in _id_lists(bases):
            text = self._run(["sacct", "-n", "-P", "-X", f"--delimiter={SEP}", "-o",
                              ",".join(SACCT_FIELDS), "-j", ids],
                             f"asking sacct about jobs {ids[:60]}")
            out += records(text, SACCT_FIELDS, trailing=False)
        return out

    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        ids = list(dict.fromkeys(tracker_ids))
        if not ids:
            return {}
        queue: dict[str, dict[str, str]] = {}
        queue_bases: set[str] = set()
        for r in self._squeue(dict.fromkeys(base_id(t) for t in ids)):
            queue[r["JobArrayID"]] = r
            queue_bases.add(r["ArrayJobID"])
        out: dict[str, tuple[JobState, str]] = {}
        ask: list[str] = []
        for tid in ids:
            r = queue.get(tid)
            if r is None:
                ask.append(tid)
                continue
            state = job_state(r["State"], r["Reason"], _int(r["RestartCnt"]) or 0)
            self._seen[tid] = _Seen(queue=r)
            if state.is_terminal and r["NodeList"] not in _NO_VALUE and self.accounting:
                ask.append(tid)  # it ran: sacct has its CPU time
            else:
                out[tid] = (state, sub_state(r["State"], r["Reason"]))
        if ask:
            acct, acct_bases = self._accounting(ask, queue)
            for tid in ask:
                out[tid] = self._settle(tid, queue.get(tid), _acct_record(acct, tid),
                                        base_id(tid) in queue_bases | acct_bases)
        for tid, (state, _) in out.items():
            if state.is_terminal and tid not in self._final:
                self._final[tid] = self._build_info(tid, *out[tid])
        return out

    def _accounting(self, ask: Sequence[str], queue: Mapping[str, dict[str, str]]
                    ) -> tuple[dict[str, dict[str, str]], set[str]]:
        """sacct's records of the jobs ``ask`` (by task id) and the array job ids it knows.

        A job squeue shows ended after it ran, whose end sacct has not recorded yet, is asked
        again every ACCOUNTING_POLL seconds until sacct has it (for its CPU time) or until
        ACCOUNTING_LAG seconds have passed since it was first seen so: its state is never
        reported before then, and never as running once slurmctld has it ended."""
        acct: dict[str, dict[str, str]] = {}
        bases: set[str] = set()
        if not self.accounting:
            return acct, bases
        todo = list(ask)
        while todo:
            for r in self._sacct(dict.fromkeys(base_id(t) for t in todo)):
                bases.add(base_id(r["JobID"]))
                for task in expand_array_id(r["JobID"]):
                    acct[task] = r
            now = time.monotonic()
            todo = [t for t in todo if self._awaits_accounting(t, queue.get(t),
                                                               _acct_record(acct, t), now)]
            if todo:
                time.sleep(ACCOUNTING_POLL)
        return acct, bases

    def _awaits_accounting(self, tid: str, q: Mapping[str, str] | None,
                           a: Mapping[str, str] | None, now: float) -> bool:
        """Whether squeue shows the job ended after it ran, sacct has not recorded that end
        yet, and ACCOUNTING_LAG has not passed since it was first seen so."""
        if q is None or q["NodeList"] in _NO_VALUE or not job_state(q["State"]).is_terminal:
            return False
        if a is not None and accounted(q, a):
            self._lagging.pop(tid, None)
            return False
        return now - self._lagging.setdefault(tid, now) <= ACCOUNTING_LAG

    def _settle(self, tid: str, q: dict[str, str] | None, a: dict[str, str] | None,
                array_known: bool) -> tuple[JobState, str]:
        """The state of a job squeue does not know, or knows as ended: squeue's record decides
        while slurmctld has the job, else sacct's, which is not believed where it still has the
        job queued or running: slurmctld would hold it."""
        if q is not None:
            # slurmctld's record is authoritative; sacct adds the CPU time once it has the end.
            recorded = a is not None and accounted(q, a)
            self._seen[tid] = _Seen(queue=q, acct=a if recorded else None)
            if recorded:
                self._lagging.pop(tid, None)
            return job_state(q["State"], q["Reason"]), sub_state(q["State"], q["Reason"])
        if a is not None:
            state = job_state(a["State"], a["Reason"])
            if state.is_terminal:  # squeue forgot the job: accounting is all there is
                self._seen[tid] = _Seen(acct=a)
                return state, sub_state(a["State"], a["Reason"])
        if "_" in tid and array_known:
            # Slurm drops a pending array task it cancels from the array without a trace.
            self._seen[tid] = _Seen(note="cancelled before it started")
            return JobState.FAILED, "CANCELLED (before it started)"
        if a is not None:
            # Neither ended nor live: slurmctld lost it (its state was reset), or purged it
            # (MinJobAge) before slurmdbd recorded its end. Only that end can tell.
            note = (f"Slurm job {tid} is no longer known to slurmctld; accounting has not "
                    f"recorded its end (last recorded: {sub_state(a['State'], a['Reason'])})")
            self._seen[tid] = _Seen(acct=a, note=note)
            return JobState.UNDETERMINED, f"{sub_state(a['State'], a['Reason'])}, unknown to slurmctld"
        self._seen[tid] = _Seen(note=f"Slurm job {tid} is unknown to squeue" +
                                (" and sacct" if self.accounting else " (accounting is off)"))
        return JobState.UNDETERMINED, "unknown to Slurm"

    def state(self, tracker_id: str) -> tuple[JobState, str]:
        return self.states([tracker_id])[tracker_id]

    def info(self, tracker_id: str) -> JobInfo:
        if tracker_id not in self._final:
            state, sub = self.state(tracker_id)
            if tracker_id not in self._final:
                return self._build_info(tracker_id, state, sub)
        # An ended job's record never changes: states() built it when it saw the end.
        return copy.deepcopy(self._final[tracker_id])

    def _build_info(self, tracker_id: str, state: JobState, sub: str) -> JobInfo:
        """The JobInfo of what the last look (states()) saw of this job."""
        seen = self._seen.get(tracker_id, _Seen())
        if seen.queue is not None:
            # slurmctld's record is authoritative while squeue has it; accounting adds CPU time.
            info = info_from_squeue(seen.queue)
            if seen.acct is not None and info.dispatch_time is not None:
                info.cpu_time = parse_duration(seen.acct["TotalCPU"])
        elif seen.acct is not None:
            info = info_from_sacct(seen.acct)
        else:
            info = JobInfo(extensions={"slurm_id": tracker_id})
        info.annotation = seen.note or info.annotation
        info.state, info.sub_state = state, sub
        return info

    # -- control ---------------------------------------------------------------------------------
    def control(self, tracker_id: str, action: Action) -> None:
        refused = self.control_many([tracker_id], action)
        if refused:
            raise refused[tracker_id]

    def control_many(self, tracker_ids: Sequence[str], action: Action) -> dict[str, Drmaa2Error]:
        """One command for all the jobs (per 100 kB of ids): ``scontrol ACTION id,id,...`` or
        ``scancel id id ...``; only when it fails are the jobs asked one by one, to tell which
        refused. Hold and release are checked against one squeue of all the jobs first, as
        scontrol accepts hold on a running job and release of a job that is not held."""
        ids = list(dict.fromkeys(tracker_ids))
        refused: dict[str, Drmaa2Error] = {}
        if action in (Action.HOLD, Action.RELEASE):
            queued = (JobState.QUEUED, JobState.REQUEUED)
            held = (JobState.QUEUED_HELD, JobState.REQUEUED_HELD)
            states = self.states(ids)
            todo = []
            for t in ids:
                state, sub = states[t]
                if action is Action.HOLD and state not in queued + held:
                    refused[t] = InvalidStateError(
                        f"Slurm job {t} is {state.name} ({sub}); only a queued job can be held")
                elif action is Action.RELEASE and state not in held:
                    refused[t] = InvalidStateError(
                        f"Slurm job {t} is {state.name} ({sub}); only a held job can be released")
                elif not (action is Action.HOLD and state in held):
                    todo.append(t)
            ids = todo
        tasks_of: dict[str, list[str]] = {}
        if action is Action.HOLD:
            ids, tasks_of = self._whole_arrays(ids)
        command = CONTROL_COMMANDS[action]
        name = " ".join(command)

        def run(chunk: list[str]) -> None:
            # scontrol takes a comma-separated job list, scancel the ids as arguments.
            args = [",".join(chunk)] if command[0] == "scontrol" else chunk
            what = f"{name} of Slurm job{'s' if len(chunk) > 1 else ''} {chunk[0]}" + (
                f" .. {chunk[-1]} ({len(chunk)} jobs)" if len(chunk) > 1 else "")
            self._run([*command, *args], what)

        for joined in _id_lists(ids):
            chunk = joined.split(",")
            try:
                run(chunk)
            except InvalidStateError as e:
                # Slurm acted on the others: look at them all, ask one by one for the rest.
                tasks = [t for c in chunk for t in tasks_of.get(c, [c])]
                if len(tasks) == 1:
                    refused[tasks[0]] = e
                    continue
                states = self.states(tasks)
                for t in tasks:
                    if _done(action, states[t][0]):
                        continue
                    try:
                        run([t])
                    except InvalidStateError as one:
                        refused[t] = one
        return refused

    def _whole_arrays(self, ids: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        """``ids`` to hold, with the tasks of an array replaced by the array's own id where
        every task slurmctld still has of it is among them or already held (holding tasks one
        by one splits each off the array's record, 0.17 s a task here, 53 s for 300; holding
        the array takes 9 ms); and the tasks each such array id stands for."""
        tasks: dict[str, list[str]] = {}
        for t in ids:
            if "_" in t:
                tasks.setdefault(base_id(t), []).append(t)
        arrays = [b for b, ts in tasks.items() if len(ts) > 1]
        if not arrays:
            return ids, {}
        others: dict[str, set[str]] = {b: set() for b in arrays}  # live, not held, not in ids
        live: dict[str, int] = dict.fromkeys(arrays, 0)
        for r in self._squeue(arrays):
            b = r["ArrayJobID"]
            state = job_state(r["State"], r["Reason"])
            if b not in others or state.is_terminal:
                continue
            live[b] += 1
            if state not in (JobState.QUEUED_HELD, JobState.REQUEUED_HELD):
                others[b].add(r["JobArrayID"])
        whole = {b: tasks[b] for b in arrays if live[b] and others[b] <= set(tasks[b])}
        return [t for t in ids if base_id(t) not in whole] + sorted(whole), whole

    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        return PollFeed(POLL_INTERVAL)

    def close(self) -> None:
        self._watchdog.close()

    def delete(self, tracker_id: str) -> None:
        # Slurm forgets ended jobs itself (MinJobAge; accounting keeps them): only our caches.
        self._final.pop(tracker_id, None)
        self._seen.pop(tracker_id, None)
        self._lagging.pop(tracker_id, None)

    # -- finding a job by its pydrmaa2 id -------------------------------------------------------
    def find_job(self, job_id: str) -> str | None:
        """The Slurm id (``N``, or ``N_INDEX`` for an array task) of the job of this store that
        carries pydrmaa2 job id ``job_id``, or None: slurmctld's jobs of this user first
        (squeue), then accounting's of the last FIND_JOB_WINDOW (sacct), as a job slurmctld
        forgot (MinJobAge) may still be one that a submitter never recorded.

        Every submission's batch script has the job's key as its first argument
        (``PYDRMAA2_SLURM_KEY=STORE:ID`` or, for an array, ``STORE:FIRST+COUNT:INDEX:STEP``):
        squeue shows it in the job's Command, sacct in its SubmitLine. The key is pydrmaa2's
        own argument, so no template field (a comment, a name) can clobber it, and STORE (a
        hash of the store's home) keeps apart the equal job ids of different stores. (sacct
        lists no job that is still held from its submission on; slurmctld keeps those.)"""
        user = getpass.getuser()
        fields = ("JobID", "ArrayJobID", "Command")
        text = self._run(["squeue", "-h", "-t", "all", "-u", user, "-O",
                          ",".join(f"{f}:{SEP}" for f in fields)],
                         f"looking for pydrmaa2 job {job_id} in squeue")
        for r in records(text, fields, trailing=True):
            found = self.key_tracker_id(r["Command"], r["JobID"], r["ArrayJobID"], job_id)
            if found is not None:
                return found
        if not self.accounting:
            return None
        fields = ("JobID", "JobIDRaw", "SubmitLine")
        text = self._run(["sacct", "-n", "-P", "-X", f"--delimiter={SEP}", "-u", user,
                          "-S", FIND_JOB_WINDOW, "-E", "now+1days", "-s", SACCT_STATES,
                          "-o", ",".join(fields)],
                         f"looking for pydrmaa2 job {job_id} in sacct")
        for r in reversed(records(text, fields, trailing=False)):  # the newest first
            found = self.key_tracker_id(r["SubmitLine"], r["JobIDRaw"], base_id(r["JobID"]),
                                        job_id)
            if found is not None:
                return found
        return None

    def key_tracker_id(self, command: str, slurm_id: str, array_id: str,
                       job_id: str) -> str | None:
        """The Slurm id of pydrmaa2 job ``job_id`` when the job whose command (or submit line)
        is ``command`` carries it in its key (an array: one of its tasks), else None.
        ``slurm_id`` is the Slurm job's own id, ``array_id`` its array's (for an array task)."""
        m = _KEY_ARGUMENT.search(command)
        if m is None or m.group(1) is None:
            return None
        store, _, rest = m.group(1).partition(":")
        if store != self.store_key:
            return None
        parts = rest.split(":")
        if len(parts) == 1:
            return slurm_id.strip() if parts[0] == job_id else None
        if len(parts) != 3:
            return None
        spec, first_index, step = parts
        try:
            if "+" in spec:  # consecutive ids FIRST..FIRST+COUNT-1
                first, _, count = spec.partition("+")
                k = int(job_id) - int(first) if job_id.isdigit() else -1
                if not 0 <= k < int(count):
                    return None
            else:
                ids = spec.split(",")
                if job_id not in ids:
                    return None
                k = ids.index(job_id)
            return f"{array_id.strip()}_{int(first_index) + k * int(step)}"
        except ValueError:  # not a key this tracker wrote
            return None

    def list_jobs(self) -> list[str]:
        text = self._run(["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-O",
                          f"JobArrayID:{SEP}"], "listing jobs")
        return [line.rstrip(SEP) for line in text.splitlines() if line.strip()]

    # -- monitoring ------------------------------------------------------------------------------
    def monitor_jobs(self) -> list[JobInfo]:
        fmt = ",".join(f"{f}:{SEP}" for f in SQUEUE_FIELDS)
        text = self._run(["squeue", "-h", "-r", "-a", "-t", "all", "-O", fmt], "listing all jobs")
        out = []
        for r in records(text, SQUEUE_FIELDS, trailing=True):
            info = info_from_squeue(r)
            info.id = r["JobArrayID"]
            out.append(info)
        return out

    def machines(self) -> list[MachineInfo]:
        text = self._run(["scontrol", "show", "node", "-o"], "listing nodes")
        return [machine_from_node(parse_key_values(line)) for line in text.splitlines()
                if line.startswith("NodeName=")]

    def queues(self) -> list[QueueInfo]:
        text = self._run(["scontrol", "show", "partition", "-o"], "listing partitions")
        out = []
        for line in text.splitlines():
            p = parse_key_values(line)
            if "PartitionName" not in p:
                continue
            ext = {k.lower(): p[k] for k in ("State", "MaxTime", "TotalCPUs", "TotalNodes", "Nodes",
                                             "Default", "DefaultTime", "MaxNodes", "PriorityTier")
                   if p.get(k) not in (None, *_NO_VALUE)}
            out.append(QueueInfo(name=p["PartitionName"], extensions=ext))
        return out

    # -- reservations ----------------------------------------------------------------------------
    def reserve(self, template: ReservationTemplate) -> ReservationInfo:
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
        start = t.start_time or dt.datetime.now().astimezone()
        args = ["scontrol", "create", "reservation"]
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
        else:
            args.append(f"EndTime={format_time(t.end_time)}")  # type: ignore[arg-type]
        slots = t.min_slots or t.max_slots or 1
        args.append(f"CoreCnt={slots}")
        if t.candidate_machines:
            args.append(f"Nodes={','.join(t.candidate_machines)}")
        args.append(f"Users={','.join(t.users_acl or [getpass.getuser()])}")
        args += [f"{k}={v}" for k, v in t.extensions.items()]

        def hint(message: str) -> str | None:
            if "user" in message:
                return f"ReservationTemplate.users_acl = {t.users_acl!r}"
            if "node" in message and t.candidate_machines:
                return f"ReservationTemplate.candidate_machines = {t.candidate_machines!r}"
            return f"{slots} cores from {start:%Y-%m-%d %H:%M:%S}"

        name = t.reservation_name or "(unnamed)"
        out = self._run(args, f"creating reservation {name} on {self.where}", hint=hint)
        m = re.search(r"Reservation created:\s*(\S+)", out)
        created = m.group(1) if m else t.reservation_name
        if not created:
            raise ImplementationSpecificError(
                f"creating reservation {name}: scontrol answered {out.strip()!r}")
        return self.reservation_info(created)

    def reservation_info(self, reservation_id: str) -> ReservationInfo:
        text = self._run(["scontrol", "show", "reservation", reservation_id, "-o"],
                         f"reading reservation {reservation_id!r}")
        for line in text.splitlines():
            r = parse_key_values(line)
            if r.get("ReservationName") == reservation_id:
                return reservation_from_scontrol(r)
        raise InvalidArgumentError(f"reservation {reservation_id!r} is not known to {self.where}")

    def reservations(self) -> list[ReservationInfo]:
        text = self._run(["scontrol", "show", "reservation", "-o"], "listing reservations")
        return [reservation_from_scontrol(parse_key_values(line)) for line in text.splitlines()
                if line.startswith("ReservationName=")]

    def cancel_reservation(self, reservation_id: str) -> None:
        self._run(["scontrol", "delete", f"ReservationName={reservation_id}"],
                  f"deleting reservation {reservation_id!r}")
