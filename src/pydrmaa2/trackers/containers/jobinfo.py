"""An engine's inspect record of a container as a DRMAA2 JobInfo: drmaa2os's Docker tracker
mapping (its README), read from Docker's inspect layout, which Podman's shares. The state and
the engine's status word come from the engine's own STATES table (see ``ContainerTracker``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from ...info import JobInfo
from ...states import JobState
from ..common import exit_signal, timestamp
from .labels import LABELS

__all__ = ["job_info", "parse_time"]

_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?")


def parse_time(value: str | int | float | None) -> dt.datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds, or epoch seconds) as an aware datetime;
    Go's zero time ('0001-01-01T00:00:00Z') means unknown: None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return timestamp(value) if value > 0 else None
    m = _TIME.match(value)
    if m is None or m.group(1).startswith("0001-"):
        return None
    frac = (m.group(2) or "")[:6].ljust(6, "0")
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}").astimezone(dt.timezone.utc)


def job_info(record: Mapping[str, Any], state: JobState, sub_state: str, ended: bool, *,
             terminated: bool = False, annotation: str | None = None,
             now: dt.datetime | None = None) -> JobInfo:
    """The JobInfo of one inspect record, in the state the engine's table gave it.

    ``ended``: the container has ended for good (its exit code and finish time count).
    ``terminated``: pydrmaa2 killed the container (so an exit of 128+N means signal N).
    """
    st = record.get("State") or {}
    config = record.get("Config") or {}
    exit_code = st.get("ExitCode") if ended else None
    oom = bool(st.get("OOMKilled"))
    started = parse_time(st.get("StartedAt"))
    finished = parse_time(st.get("FinishedAt")) if ended else None
    if started and finished and started > finished:
        # Docker stamps StartedAt once its start call returns, FinishedAt at the process's exit:
        # a job briefer than that gap would seem to end before it began.
        started = finished
    notes = [annotation] if annotation else []
    if oom:
        notes.append("out of memory: the container's processes were killed by the OOM killer")
    elif terminated and ended:
        notes.append("terminated")
    if st.get("Error") and st.get("Error") not in notes:
        notes.append(str(st["Error"]))
    end = finished or (None if ended else now or dt.datetime.now(dt.timezone.utc))
    labels = config.get("Labels") or {}
    cmd = config.get("Cmd") or []
    ext = {
        "container_id": str(record.get("Id", "")),
        "container_name": str(record.get("Name", "")).lstrip("/"),
        "workingdir": config.get("WorkingDir") or "",
        "commandline": " ".join(cmd) if isinstance(cmd, list) else str(cmd),
        "category": config.get("Image") or "",
    }
    if oom:
        ext["oom_killed"] = "true"
    hostname = config.get("Hostname")
    return JobInfo(
        job_name=labels.get(LABELS["job_name"]),
        exit_status=exit_code,
        terminating_signal=exit_signal(exit_code) if ended and (terminated or oom) else None,
        annotation="; ".join(notes) or None,
        state=state,
        sub_state=sub_state,
        allocated_machines=[hostname] if hostname else [],
        submission_machine=labels.get(LABELS["submission_machine"]),
        job_owner=config.get("User") or "root",
        slots=1,
        wallclock_time=(end - started) if started and end and end >= started else None,
        submission_time=parse_time(record.get("Created")),
        dispatch_time=started,
        finish_time=finished,
        extensions=ext,
    )
