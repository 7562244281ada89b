"""DRMAA2's infos from Slurm's records: a JobInfo from squeue's or sacct's record of a job, a
MachineInfo from a node, a QueueInfo from a partition, a ReservationInfo from a reservation."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from ...info import JobInfo, MachineInfo, QueueInfo, ReservationInfo, Version
from ...states import CPU, OS
from .parsers import (
    base_id,
    decode_exit_code,
    decode_wait_status,
    expand_hostlist,
    job_state,
    parse_duration,
    parse_int,
    parse_time,
    sub_state,
)
from .tables import (
    NO_VALUE,
    NODE_EXTENSIONS,
    PARTITION_EXTENSIONS,
    RESERVATION_INFO_EXTENSIONS,
    UNAVAILABLE_NODE_STATES,
)


def _job_extensions(slurm_id: str, job_id: str, r: Mapping[str, str]) -> dict[str, str]:
    ext = {"slurm_id": slurm_id, "slurm_job_id": job_id}
    if r["WorkDir"] not in NO_VALUE:
        ext["working_dir"] = r["WorkDir"]
    if r["Reason"] not in NO_VALUE:
        ext["reason"] = r["Reason"]
    return ext


def info_from_squeue(r: Mapping[str, str]) -> JobInfo:
    """A JobInfo from one squeue record (SQUEUE_FIELDS)."""
    state = job_state(r["State"], r["Reason"], parse_int(r["RestartCnt"]) or 0)
    started = state.is_started and r["NodeList"] not in NO_VALUE
    start = parse_time(r["StartTime"]) if started else None
    end = parse_time(r["EndTime"]) if state.is_terminal and started else None
    exit_status, sig = decode_wait_status(r["exit_code"]) if state.is_terminal else (None, None)
    if state.is_terminal and not started:
        exit_status = sig = None
    used = parse_duration(r["TimeUsed"]) if started else None
    ext = _job_extensions(r["JobArrayID"], r["JobID"], r)
    if parse_int(r["RestartCnt"]):
        ext["restarts"] = r["RestartCnt"]
    return JobInfo(
        job_name=r["Name"] or None, exit_status=exit_status, terminating_signal=sig,
        annotation=None if r["Reason"] in NO_VALUE else r["Reason"],
        state=state, sub_state=sub_state(r["State"], r["Reason"]),
        allocated_machines=expand_hostlist(r["NodeList"]) if started else [],
        submission_machine=None if r["AllocNodes"] in NO_VALUE else r["AllocNodes"],
        job_owner=r["UserName"] or None, slots=parse_int(r["NumCPUs"]) if started else None,
        queue_name=r["Partition"] or None,
        wallclock_time=(end - start) if start and end else used,
        submission_time=parse_time(r["SubmitTime"]), dispatch_time=start, finish_time=end,
        extensions=ext)


def info_from_sacct(r: Mapping[str, str]) -> JobInfo:
    """A JobInfo from one sacct allocation record (SACCT_FIELDS)."""
    word = r["State"]
    state = job_state(word, r["Reason"])
    cpus = parse_int(r["AllocCPUS"]) or 0
    started = cpus > 0 and r["NodeList"] not in NO_VALUE
    start = parse_time(r["Start"]) if started else None
    end = parse_time(r["End"]) if state.is_terminal and started else None
    exit_status, sig = decode_exit_code(r["ExitCode"]) if started else (None, None)
    if not state.is_terminal:
        exit_status = sig = None
    elapsed = parse_int(r["ElapsedRaw"])
    return JobInfo(
        job_name=r["JobName"] or None, exit_status=exit_status, terminating_signal=sig,
        annotation=None if r["Reason"] in NO_VALUE else r["Reason"],
        state=state, sub_state=sub_state(word, r["Reason"]),
        allocated_machines=expand_hostlist(r["NodeList"]) if started else [],
        job_owner=r["User"] or None, slots=cpus or None, queue_name=r["Partition"] or None,
        wallclock_time=dt.timedelta(seconds=elapsed) if started and elapsed is not None else None,
        cpu_time=parse_duration(r["TotalCPU"]) if started else None,
        submission_time=parse_time(r["Submit"]), dispatch_time=start, finish_time=end,
        extensions=_job_extensions(r["JobID"], r["JobIDRaw"], r))


def acct_record(acct: Mapping[str, dict[str, str]], tid: str) -> dict[str, str] | None:
    """sacct's record of a job or array task. (slurmdbd may keep an array's pending tasks
    under the bare array job id: a record made from the end message, without the index range.)"""
    return acct.get(tid) or (acct.get(base_id(tid)) if "_" in tid else None)


def accounted(q: Mapping[str, str], a: Mapping[str, str]) -> bool:
    """Whether sacct has recorded the end that squeue shows. (slurmdbd may for seconds hold a
    placeholder, job name "allocation" and no partition, made from the end messages: its state,
    end and CPU time are right, the rest comes from squeue.)"""
    return a["End"] not in NO_VALUE and a["State"].split(" ")[0] == q["State"]


def _kept(record: Mapping[str, str], keys: Mapping[str, str]) -> dict[str, str]:
    """The extensions ``keys`` (extension -> record key) that the record has a value for."""
    return {k: record[v] for k, v in keys.items() if record.get(v) not in (None, *NO_VALUE)}


def machine_from_node(n: Mapping[str, str]) -> MachineInfo:
    """A MachineInfo from one ``scontrol show node -o`` line."""
    state = n.get("State", "")
    os_text = n.get("OS", "")
    release = os_text.split()[1] if len(os_text.split()) > 1 else ""
    parts = re.findall(r"\d+", release)[:2]
    memory = parse_int(n.get("RealMemory"))
    try:
        load: float | None = float(n.get("CPULoad", ""))
    except ValueError:
        load = None
    return MachineInfo(
        name=n.get("NodeName", ""),
        available=not any(s in state for s in UNAVAILABLE_NODE_STATES) and not state.endswith("*"),
        sockets=parse_int(n.get("Sockets")), cores_per_socket=parse_int(n.get("CoresPerSocket")),
        threads_per_core=parse_int(n.get("ThreadsPerCore")), load=load,
        phys_memory=memory * 1024 * 1024 if memory is not None else None,
        machine_os=(OS.LINUX if os_text.startswith("Linux") else OS.OTHER_OS) if os_text else None,
        machine_os_version=Version(parts[0], parts[1] if len(parts) > 1 else "0") if parts else None,
        machine_arch=CPU.from_machine(n["Arch"]) if n.get("Arch") not in (None, *NO_VALUE) else None,
        extensions=_kept(n, NODE_EXTENSIONS))


def queue_from_partition(p: Mapping[str, str]) -> QueueInfo:
    """A QueueInfo from one ``scontrol show partition -o`` line."""
    return QueueInfo(name=p["PartitionName"],
                     extensions=_kept(p, {k.lower(): k for k in PARTITION_EXTENSIONS}))


def reservation_from_scontrol(r: Mapping[str, str]) -> ReservationInfo:
    """A ReservationInfo from one ``scontrol show reservation -o`` line."""
    name = r.get("ReservationName", "")
    cores = parse_int(r.get("CoreCnt"))
    if cores is None:
        m = re.search(r"cpu=(\d+)", r.get("TRES", ""))
        cores = int(m.group(1)) if m else None
    users = r.get("Users", "")
    return ReservationInfo(
        reservation_id=name, reservation_name=name,
        reserved_start_time=parse_time(r.get("StartTime", "")),
        reserved_end_time=parse_time(r.get("EndTime", "")),
        users_acl=[] if users in NO_VALUE else users.split(","),
        reserved_slots=cores, reserved_machines=expand_hostlist(r.get("Nodes", "")),
        extensions=_kept(r, {k: k for k in RESERVATION_INFO_EXTENSIONS}))
