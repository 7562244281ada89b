"""What Slurm's words mean in DRMAA2's, as data the tracker dispatches through: job states,
control commands, error messages, and the template fields, sbatch options and record fields
that map to each other."""

from __future__ import annotations

from ...errors import (
    DeniedByDrmsError,
    Drmaa2Error,
    DrmCommunicationError,
    InvalidArgumentError,
    InvalidStateError,
    OutOfResourceError,
    TryLaterError,
)
from ...states import JobState
from ..base import Action

# -- states ----------------------------------------------------------------------------------------

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

#: A queued state -> the same state held (a PENDING job whose reason is in HELD_REASONS).
HELD: dict[JobState, JobState] = {
    JobState.QUEUED: JobState.QUEUED_HELD,
    JobState.REQUEUED: JobState.REQUEUED_HELD,
}

#: The values Slurm prints for a field that has none.
NO_VALUE = frozenset({"", "N/A", "n/a", "None", "NONE", "Unknown", "(null)", "None assigned",
                      "INVALID"})

# -- control ---------------------------------------------------------------------------------------

#: DRMAA2 control operations -> the Slurm command (the job id is appended).
CONTROL: dict[Action, tuple[str, ...]] = {
    Action.SUSPEND: ("scontrol", "suspend"),
    Action.RESUME: ("scontrol", "resume"),
    Action.HOLD: ("scontrol", "hold"),
    Action.RELEASE: ("scontrol", "release"),
    Action.TERMINATE: ("scancel",),
}

#: The states a job may be in for the operation, and the refusal of any other: scontrol itself
#: accepts hold on a running job and release of a job that is not held.
CONTROL_FROM: dict[Action, tuple[frozenset[JobState], str]] = {
    Action.HOLD: (frozenset({JobState.QUEUED, JobState.REQUEUED, JobState.QUEUED_HELD,
                             JobState.REQUEUED_HELD}), "only a queued job can be held"),
    Action.RELEASE: (frozenset({JobState.QUEUED_HELD, JobState.REQUEUED_HELD}),
                     "only a held job can be released"),
}

#: The states in which a job needs the operation no more (it is not asked again when the
#: command for a list of jobs failed for another).
CONTROL_DONE: dict[Action, frozenset[JobState]] = {
    Action.SUSPEND: frozenset({JobState.SUSPENDED}),
    Action.RESUME: frozenset({JobState.RUNNING}),
    Action.HOLD: frozenset({JobState.QUEUED_HELD, JobState.REQUEUED_HELD}),
    Action.RELEASE: frozenset({JobState.QUEUED, JobState.REQUEUED, JobState.RUNNING}),
    Action.TERMINATE: frozenset({JobState.DONE, JobState.FAILED}),
}

# -- errors ----------------------------------------------------------------------------------------

#: Errors of the Slurm commands, by a piece of their message (matched in this order, ignoring
#: case) -> the DRMAA2 error raised with Slurm's message kept. (Slurm's commands exit 1 for
#: every error: only the message tells them apart.)
ERRORS: dict[str, type[Drmaa2Error]] = {
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

#: A piece of ``scontrol create reservation``'s refusal -> the ReservationTemplate field it is
#: about (else the refusal names the cores and the start asked for).
RESERVATION_ERROR_FIELDS: dict[str, str] = {
    "user": "users_acl",
    "node": "candidate_machines",
}

# -- job templates and sbatch options --------------------------------------------------------------

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
#: The resource_limits keys that are durations (the others are sizes).
DURATION_LIMITS = frozenset({"wallclock_time", "cpu_time"})

#: JobTemplate fields Slurm has no option for: it selects nodes by features (--constraint).
NODE_SELECTION: dict[str, str] = {
    "machine_os": "operating system",
    "machine_arch": "architecture",
}

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
#: sbatch options the tracker sets itself -> the template field (or who) they come from.
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

# -- reservation templates -------------------------------------------------------------------------

#: Reservation template fields -> ``scontrol create reservation`` keys (set by reserve()).
RESERVATION_FIELDS = frozenset({"reservation_name", "start_time", "end_time", "duration",
                                "min_slots", "max_slots", "users_acl", "candidate_machines",
                                "extensions"})
#: ``scontrol create reservation`` keys that ReservationTemplate.extensions may set.
RESERVATION_EXTENSIONS = frozenset({"Flags", "PartitionName", "Accounts", "Groups", "Features",
                                    "Licenses", "TRES", "BurstBuffer", "MaxStartDelay", "Watts",
                                    "NodeCnt"})

# -- records read ----------------------------------------------------------------------------------

#: The fields read from squeue -O and sacct -o, in this order (free text last).
SQUEUE_FIELDS = ("JobArrayID", "ArrayJobID", "JobID", "State", "Reason", "exit_code", "RestartCnt",
                 "SubmitTime", "StartTime", "EndTime", "TimeUsed", "NodeList", "NumCPUs",
                 "Partition", "UserName", "AllocNodes", "WorkDir", "Name")
SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Reason", "Submit", "Start", "End",
                "ElapsedRaw", "TotalCPU", "NodeList", "AllocCPUS", "Partition", "User", "WorkDir",
                "JobName")
#: Field separator of the delimited outputs: a control character no name or path holds.
SEP = "\x1f"
#: Every state sacct knows: with a time window and no state, sacct lists only the jobs that were
#: eligible in it, never one held from its submission to its end.
SACCT_STATES = "PD,R,S,CD,CA,F,TO,NF,PR,BF,DL,OOM,RQ,RV,RS"

#: Node states (scontrol show node) in which a machine takes no jobs.
UNAVAILABLE_NODE_STATES = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "POWERED_DOWN",
                           "POWERING_DOWN", "FUTURE", "UNKNOWN", "REBOOT_ISSUED")
#: MachineInfo.extensions keys -> the ``scontrol show node`` keys they come from.
NODE_EXTENSIONS: dict[str, str] = {
    "cpus": "CPUTot", "cpus_allocated": "CPUAlloc", "state": "State", "partitions": "Partitions",
    "features": "AvailableFeatures", "gres": "Gres", "free_memory_mb": "FreeMem", "os": "OS",
}
#: ``scontrol show partition`` keys kept in QueueInfo.extensions (lower-cased).
PARTITION_EXTENSIONS = ("State", "MaxTime", "TotalCPUs", "TotalNodes", "Nodes", "Default",
                        "DefaultTime", "MaxNodes", "PriorityTier")
#: ``scontrol show reservation`` keys kept in ReservationInfo.extensions.
RESERVATION_INFO_EXTENSIONS = ("State", "Flags", "PartitionName", "Duration", "Accounts", "TRES",
                               "NodeCnt", "Features")
