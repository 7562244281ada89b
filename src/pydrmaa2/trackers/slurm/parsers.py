"""Reading what the Slurm commands print: delimited records, ``Key=Value`` lines, host lists,
array ids, state words, exit codes, times, durations and sizes; and writing times and durations
as Slurm reads them. Pure functions: no command runs here."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from ...states import JobState
from ..base import signal_name
from .tables import HELD, HELD_REASONS, NO_VALUE, SEP, STATES

_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/\[\]]*)=")
_ARRAY_ID = re.compile(r"^(\d+)_\[([^\]]*)\]$")
_DURATION = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.(\d+))?$")
_SIZE = re.compile(r"^\d+[KMGT]?$")


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
    if hostlist in NO_VALUE:
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
    out: list[str] = []
    for part in spec.split(","):
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        out.extend(f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1, int(step or 1)))
    return out


def one_per_task(recs: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """squeue's records (without ``-r``) with an array's pending tasks, which squeue shows as
    one record ``1234_[1-29:2]``, made one record per task (JobArrayID ``1234_29``,
    ArrayTaskID ``29``). (``squeue -r`` would expand them itself, but Slurm 22.05 drops the last
    task of a range with a step: ``1-29:2`` lists 1 to 27.)"""
    out: list[dict[str, str]] = []
    for r in recs:
        tasks = expand_array_id(r.get("JobArrayID", ""))
        if len(tasks) == 1 and tasks[0] == r.get("JobArrayID"):
            out.append(r)
            continue
        for task in tasks:
            out.append({**r, "JobArrayID": task, "ArrayTaskID": task.rpartition("_")[2]})
    return out


def base_id(tracker_id: str) -> str:
    """The Slurm job id to ask squeue/sacct about: an array task's array job id."""
    return tracker_id.split("_", 1)[0]


def job_state(word: str, reason: str = "", restarts: int = 0) -> JobState:
    """A Slurm state word (``CANCELLED by 0`` included) as a DRMAA2 state."""
    state = STATES.get(word.split(" ")[0].rstrip("+"), JobState.UNDETERMINED)
    if state is JobState.QUEUED:
        if restarts > 0:
            state = JobState.REQUEUED
        if reason in HELD_REASONS:
            state = HELD[state]
    return state


def sub_state(word: str, reason: str = "") -> str:
    """Slurm's own word for the state, with the reason when there is one."""
    return f"{word} ({reason})" if reason and reason not in NO_VALUE else word


def decode_exit_code(value: str) -> tuple[int | None, str | None]:
    """sacct's ``EXIT:SIGNAL`` as (exit status, signal name); a signal gives 128+N as shells do."""
    code, _, sig = value.partition(":")
    if not code.isdigit():
        return None, None
    if sig.isdigit() and int(sig):
        return 128 + int(sig), signal_name(int(sig))
    return int(code), None


def decode_wait_status(value: str) -> tuple[int | None, str | None]:
    """squeue's exit_code (a raw wait status) as (exit status, signal name)."""
    if not value.strip().lstrip("-").isdigit():
        return None, None
    status = int(value)
    if status & 0x7F:
        return 128 + (status & 0x7F), signal_name(status & 0x7F)
    return status >> 8 & 0xFF, None


def parse_int(value: str | None) -> int | None:
    """A count Slurm printed (None where it printed none)."""
    return int(value) if value is not None and value.strip().isdigit() else None


def parse_time(value: str) -> dt.datetime | None:
    """A Slurm timestamp (local time, ``SLURM_TIME_FORMAT=standard``) as an aware datetime."""
    if value in NO_VALUE:
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


def is_size(value: str) -> bool:
    """Whether ``value`` is a size as sbatch takes it: MB, or a number with a K/M/G/T suffix."""
    return _SIZE.match(value) is not None
