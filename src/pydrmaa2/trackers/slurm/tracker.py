"""SlurmTracker: submission through sbatch, the states of many jobs from one squeue (and sacct
for the jobs that ended or that squeue forgot), control through scontrol and scancel,
monitoring and reservations through scontrol."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ...errors import (
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
)
from ...info import JobInfo, MachineInfo, QueueInfo, ReservationInfo
from ...states import Capability, JobState
from ...templates import PARAMETRIC_INDEX, JobTemplate, ReservationTemplate
from ..base import Action, ChangeFeed, Contact, JobTracker, PollFeed
from ..common import owner
from . import specs
from .commands import INHERIT, SlurmCommands, id_lists
from .infos import (
    accounted,
    acct_record,
    info_from_sacct,
    info_from_squeue,
    machine_from_node,
    queue_from_partition,
    reservation_from_scontrol,
)
from .parsers import (
    base_id,
    expand_array_id,
    job_state,
    one_per_task,
    parse_config,
    parse_duration,
    parse_int,
    parse_key_values,
    records,
    sub_state,
)
from .shared import Look, SharedLook
from .tables import (
    CONTROL,
    CONTROL_DONE,
    CONTROL_FROM,
    NO_VALUE,
    RESERVATION_ERROR_FIELDS,
    SACCT_FIELDS,
    SACCT_STATES,
    SEP,
    SQUEUE_FIELDS,
    SUBMIT_ERROR_FIELDS,
)

#: Slurm has no event API for job state changes (no push from slurmctld to a client), so waiters
#: poll squeue; half a second keeps waits snappy at one cheap squeue call per session and poll.
POLL_INTERVAL = 0.5
#: slurmdbd records a job's end after squeue shows it: a fraction of a second on an idle
#: cluster, seconds when many jobs end at once. A look at a job squeue shows ended after it ran
#: waits (asking sacct again) until sacct has its end, so its JobInfo has the CPU time, but at
#: most this long after it was first seen ended: then it is reported ended from squeue's record
#: alone, without CPU time. Meanwhile it is never reported as still running.
ACCOUNTING_LAG = 1.0
#: How often sacct is asked again for the end of a job squeue shows ended.
ACCOUNTING_POLL = 0.05
#: How far back find_job looks in accounting for a job slurmctld no longer holds.
FIND_JOB_WINDOW = "now-14days"

#: The batch script in squeue's Command and sacct's SubmitLine, and its first argument, the job's
#: key (see SlurmTracker.find_job). Only the first match counts: the job's own arguments follow.
_KEY_ARGUMENT = re.compile(r"pydrmaa2-job-[0-9a-f]+\.sh (?:PYDRMAA2_SLURM_KEY=(\S+))?")


@dataclasses.dataclass
class _Seen:
    """What the last look at one job found: squeue's and sacct's records."""

    queue: dict[str, str] | None = None
    acct: dict[str, str] | None = None
    note: str | None = None
    looked_at: float | None = None  # when the look began (the store's shared look)


class SlurmTracker(JobTracker):
    """Jobs as Slurm batch jobs, through the Slurm commands on PATH."""

    scheme = "slurm"
    #: Contact options (``slurm?max_array_size=5``): a smaller MaxArraySize than the cluster's.
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

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        if contact.path or contact.port:
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: use 'slurm' (the default cluster) or 'slurm://CLUSTER'")
        limit = contact.options.get("max_array_size")
        if limit is not None and (not limit.isdigit() or int(limit) < 1):
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: max_array_size {limit!r} is not a positive integer")
        self._max_array_size = int(limit) if limit else None
        self.cluster = contact.host
        self.commands = SlurmCommands(self.cluster)
        self.where = self.commands.where
        #: Every Slurm command of this tracker runs through this (SlurmCommands.run).
        self._run = self.commands.run
        self._lock = threading.Lock()
        self._config: dict[str, str] | None = None
        self._script: Path | None = None
        self._seen: dict[str, _Seen] = {}
        self._final: dict[str, JobInfo] = {}
        self._lagging: dict[str, float] = {}
        self.store_key = hashlib.sha256(os.fsencode(Path(home).resolve())).hexdigest()[:16]
        self.shared = SharedLook(home, self.cluster)

    # -- the cluster -----------------------------------------------------------------------------
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
        configured = parse_int(self.config.get("MaxArraySize")) or 1001
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

    # -- submission ------------------------------------------------------------------------------
    def validate(self, template: JobTemplate) -> None:
        specs.check_node_selection(template)
        super().validate(template)
        specs.check_template(template)

    def _script_path(self) -> Path:
        """The batch script, written once under the store's home, named by its content: a
        program of another pydrmaa2 version sharing the home keeps its own script."""
        if self._script is None:
            digest = hashlib.sha256(specs.BATCH_SCRIPT.encode()).hexdigest()[:12]
            path = self.home / "slurm" / f"pydrmaa2-job-{digest}.sh"
            if not path.exists() or path.read_text() != specs.BATCH_SCRIPT:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(specs.BATCH_SCRIPT)
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
        return specs.options(template, hold, self._candidate_options(template.candidate_machines))

    def _sbatch(self, options: list[str], settings: Mapping[str, str], template: JobTemplate,
                what: str) -> str:
        """Run sbatch with the batch script, its ``settings`` and the job's argv; return the
        Slurm job id.

        The job's environment is ours, as sbatch exports its own by default, and sbatch inherits
        it unchanged (an explicit --export=ALL,NAME=value makes slurmd launch jobs several times
        slower). The template's variables must not configure sbatch itself (SBATCH_*, TZ, LD_*):
        they go to the job alone, in a NUL-separated --export-file that holds any value (commas,
        quotes, newlines)."""
        script = [str(self._script_path()),
                  *(f"{k}={v}" for k, v in specs.script_settings(template, settings).items()),
                  "--", template.remote_command or "", *template.args]
        hint = functools.partial(specs.field_hint, template, SUBMIT_ERROR_FIELDS)
        if not template.job_environment:
            out = self._run(["sbatch", *options, *script], what, hint=hint, env=INHERIT)
        else:
            own = template.job_environment
            skip = {os.fsencode(k) for k in own}
            env = b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items() if k not in skip)
            fd = os.memfd_create("pydrmaa2-env")
            try:
                os.write(fd, env + specs.environment_file(own))
                os.lseek(fd, 0, os.SEEK_SET)
                out = self._run(["sbatch", *options, f"--export-file={fd}", *script], what,
                                fds=[fd], hint=hint, env=INHERIT)
            finally:
                os.close(fd)
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise DrmCommunicationError(f"{what}: sbatch answered {out.strip()!r}, not a job id")
        return job_id

    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        specs.check_files(template, task_index)
        opts = self._options(template, hold)
        if template.working_directory is not None:
            opts.append(f"--chdir={template.working_directory}")
        opts += specs.path_options(template, specs.slurm_path)
        settings = {"PYDRMAA2_SLURM_KEY": f"{self.store_key}:{job_id}",
                    "PYDRMAA2_SLURM_JOB_ID": job_id}
        if task_index is not None:  # a task started one by one (not by this tracker's arrays)
            settings["PYDRMAA2_SLURM_TASK_ID"] = str(task_index)
        tid = self._sbatch(opts, settings, template, f"submitting job {job_id} to {self.where}")
        self.shared.add([tid])
        return tid

    def submit_array(self, job_ids: Sequence[str], template: JobTemplate,
                     indices: Sequence[int], max_parallel: int | None,
                     hold: bool = False) -> list[str]:
        specs.check_files(template, indices[0])
        base_opts = self._options(template, hold)
        ids_consecutive = all(i.isdigit() for i in job_ids) and all(
            int(job_ids[k]) == int(job_ids[0]) + k for k in range(len(job_ids)))
        step = indices[1] - indices[0] if len(indices) > 1 else 1
        # The working directory and paths with their placeholders, $DRMAA2_INDEX$ left in.
        wd = (specs.expand_dirs(template.working_directory, None)
              if template.working_directory is not None else None)
        wd_indexed = wd is not None and PARAMETRIC_INDEX in wd
        paths = {}
        for name in ("input_path", "output_path", "error_path"):
            p = getattr(template, name)
            if p is not None:
                p = specs.expand_dirs(p, wd or os.getcwd())
                if wd is not None and wd_indexed and not os.path.isabs(p):
                    p = os.path.join(wd, p)
                paths[name] = p
        chunks = specs.array_chunks(job_ids, indices, self.max_array_size)
        tids: list[str] = []
        submitted: list[str] = []
        try:
            for chunk in chunks:
                opts = list(base_opts)
                ids = (f"{chunk.job_ids[0]}+{len(chunk.job_ids)}" if ids_consecutive
                       else ",".join(chunk.job_ids))
                slurm_step = 1 if chunk.reindexed else step
                settings = {"PYDRMAA2_SLURM_KEY":
                            f"{self.store_key}:{ids}:{chunk.slurm_indices[0]}:{slurm_step}",
                            "PYDRMAA2_SLURM_FIRST_INDEX": str(chunk.indices[0]),
                            "PYDRMAA2_SLURM_STEP": str(step)}
                if ids_consecutive:
                    settings["PYDRMAA2_SLURM_FIRST_ID"] = chunk.job_ids[0]
                if chunk.reindexed:
                    settings["PYDRMAA2_SLURM_REINDEXED"] = "1"
                if wd is not None and not wd_indexed:
                    opts.append(f"--chdir={wd}")
                elif wd is not None:  # indexed: the script changes to each task's own
                    settings["PYDRMAA2_SLURM_WORKDIR"] = wd
                slurm_paths = dict(paths)
                if chunk.reindexed:
                    # Slurm's %a is the chunk's own index: the script opens indexed paths.
                    for name, var in (("input_path", "STDIN"), ("output_path", "STDOUT"),
                                      ("error_path", "STDERR")):
                        if PARAMETRIC_INDEX in slurm_paths.get(name, ""):
                            settings[f"PYDRMAA2_SLURM_{var}"] = slurm_paths.pop(name)
                    if template.join_files and "PYDRMAA2_SLURM_STDOUT" in settings:
                        settings["PYDRMAA2_SLURM_JOIN"] = "1"
                t = dataclasses.replace(template, input_path=slurm_paths.get("input_path"),
                                        output_path=slurm_paths.get("output_path"),
                                        error_path=slurm_paths.get("error_path"))
                opts += specs.path_options(t, specs.indexed_path)
                opts.append(f"--array={chunk.array_spec(max_parallel)}")
                if submitted and max_parallel:
                    opts.append(f"--dependency=afterany:{submitted[-1]}")
                first, last = chunk.job_ids[0], chunk.job_ids[-1]
                slurm_id = self._sbatch(opts, settings, template,
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
        self.shared.add(tids)
        return tids

    # -- states ----------------------------------------------------------------------------------
    def _squeue(self, bases: Iterable[str], each_task: bool = True) -> list[dict[str, str]]:
        """squeue's records of these jobs, one per array task (``-r``); without ``each_task``,
        as squeue groups an array's pending tasks, made one per task here (``one_per_task``)."""
        fmt = ",".join(f"{f}:{SEP}" for f in SQUEUE_FIELDS)
        out = []
        for ids in id_lists(bases):
            text = self._run(["squeue", "-h", *(["-r"] if each_task else []), "-t", "all",
                              "-j", ids, "-O", fmt],
                             f"asking squeue about jobs {ids[:60]}",
                             ok=lambda m: "invalid job id" in m.lower())
            got = records(text, SQUEUE_FIELDS, trailing=True)
            out += got if each_task else one_per_task(got)
        return out

    def _sacct(self, bases: Iterable[str]) -> list[dict[str, str]]:
        out = []
        for ids in id_lists(bases):
            text = self._run(["sacct", "-n", "-P", "-X", f"--delimiter={SEP}", "-o",
                              ",".join(SACCT_FIELDS), "-j", ids],
                             f"asking sacct about jobs {ids[:60]}")
            out += records(text, SACCT_FIELDS, trailing=False)
        return out

    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        """The jobs' states from the store's last look at Slurm where it is fresh (see
        ``shared``: one squeue and one sacct per interval for every program of the store)."""
        ids = list(dict.fromkeys(tracker_ids))
        if not ids:
            return {}
        looks, at = self.shared.looks(ids, self._look_now)
        out: dict[str, tuple[JobState, str]] = {}
        for tid in ids:
            lk = looks.get(tid)
            if lk is None:  # a job the look could not place (never happens: it answers all)
                lk = Look(JobState.UNDETERMINED, "unknown to Slurm", None, None, None)
            self._seen[tid] = _Seen(queue=lk.queue, acct=lk.acct, note=lk.note, looked_at=at)
            out[tid] = (lk.state, lk.sub)
            if lk.state.is_terminal and tid not in self._final:
                self._final[tid] = self._build_info(tid, lk.state, lk.sub)
        return out

    def _look_now(self, ids: Sequence[str]) -> dict[str, Look]:
        """Ask squeue (and sacct) about these jobs now: what ``shared`` records."""
        out = self._ask(ids)
        looks = {}
        for tid, (state, sub) in out.items():
            seen = self._seen.pop(tid, _Seen())
            looks[tid] = Look(state, sub, seen.queue, seen.acct, seen.note)
        return looks

    def _ask(self, ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        queue: dict[str, dict[str, str]] = {}
        queue_bases: set[str] = set()
        for rec in self._squeue(dict.fromkeys(base_id(t) for t in ids)):
            queue[rec["JobArrayID"]] = rec
            queue_bases.add(rec["ArrayJobID"])
        # Slurm 22.05's squeue -r drops the last pending task of a range with a step (1-29:2
        # lists 1 to 27): a task missing from a live array is looked for in squeue's own
        # grouping of the pending tasks before it is taken for cancelled.
        missing = [t for t in ids if t not in queue and "_" in t and base_id(t) in queue_bases]
        if missing:
            for rec in self._squeue(dict.fromkeys(base_id(t) for t in missing), each_task=False):
                if rec["JobArrayID"] in missing:
                    queue[rec["JobArrayID"]] = rec
        out: dict[str, tuple[JobState, str]] = {}
        ask: list[str] = []
        for tid in ids:
            r = queue.get(tid)
            if r is None:
                ask.append(tid)
                continue
            state = job_state(r["State"], r["Reason"], parse_int(r["RestartCnt"]) or 0)
            self._seen[tid] = _Seen(queue=r)
            if state.is_terminal and r["NodeList"] not in NO_VALUE and self.accounting:
                ask.append(tid)  # it ran: sacct has its CPU time
            else:
                out[tid] = (state, sub_state(r["State"], r["Reason"]))
        if ask:
            acct, acct_bases = self._accounting(ask, queue)
            for tid in ask:
                out[tid] = self._settle(tid, queue.get(tid), acct_record(acct, tid),
                                        base_id(tid) in queue_bases | acct_bases)
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
                                                               acct_record(acct, t), now)]
            if todo:
                time.sleep(ACCOUNTING_POLL)
        return acct, bases

    def _awaits_accounting(self, tid: str, q: Mapping[str, str] | None,
                           a: Mapping[str, str] | None, now: float) -> bool:
        """Whether squeue shows the job ended after it ran, sacct has not recorded that end
        yet, and ACCOUNTING_LAG has not passed since it was first seen so."""
        if q is None or q["NodeList"] in NO_VALUE or not job_state(q["State"]).is_terminal:
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
        if seen.looked_at and not state.is_terminal:  # how old the look is (shared: see states)
            info.extensions["slurm_looked_at"] = dt.datetime.fromtimestamp(
                seen.looked_at, dt.timezone.utc).isoformat(timespec="milliseconds")
        return info

    # -- control ---------------------------------------------------------------------------------
    def control(self, tracker_id: str, action: Action) -> None:
        refused = self.control_many([tracker_id], action)
        if refused:
            raise refused[tracker_id]

    def control_many(self, tracker_ids: Sequence[str], action: Action) -> dict[str, Drmaa2Error]:
        """One command for all the jobs (per 100 kB of ids): ``scontrol ACTION id,id,...`` or
        ``scancel id id ...``; only when it fails are the jobs asked one by one, to tell which
        refused. An operation with states it applies from (CONTROL_FROM) is checked against one
        squeue of all the jobs first."""
        ids = list(dict.fromkeys(tracker_ids))
        try:
            return self._control_many(ids, action)
        finally:  # what the jobs are now is looked at afresh by the next read
            self.shared.stale(ids)

    def _control_many(self, ids: list[str], action: Action) -> dict[str, Drmaa2Error]:
        refused: dict[str, Drmaa2Error] = {}
        if action in CONTROL_FROM:
            allowed, only = CONTROL_FROM[action]
            self.shared.stale(ids)  # checked against what Slurm says now
            states = self.states(ids)
            todo = []
            for t in ids:
                state, sub = states[t]
                if state not in allowed:
                    refused[t] = InvalidStateError(f"Slurm job {t} is {state.name} ({sub}); {only}")
                elif state not in CONTROL_DONE[action]:
                    todo.append(t)
            ids = todo
        tasks_of: dict[str, list[str]] = {}
        if action is Action.HOLD:
            ids, tasks_of = self._whole_arrays(ids)
        command = CONTROL[action]
        name = " ".join(command)

        def run(chunk: list[str]) -> None:
            # scontrol takes a comma-separated job list, scancel the ids as arguments.
            args = [",".join(chunk)] if command[0] == "scontrol" else chunk
            what = f"{name} of Slurm job{'s' if len(chunk) > 1 else ''} {chunk[0]}" + (
                f" .. {chunk[-1]} ({len(chunk)} jobs)" if len(chunk) > 1 else "")
            self._run([*command, *args], what)

        for joined in id_lists(ids):
            chunk = joined.split(",")
            try:
                run(chunk)
            except InvalidStateError as e:
                # Slurm acted on the others: look at them all, ask one by one for the rest.
                tasks = [t for c in chunk for t in tasks_of.get(c, [c])]
                if len(tasks) == 1:
                    refused[tasks[0]] = e
                    continue
                self.shared.stale(tasks)
                states = self.states(tasks)
                for t in tasks:
                    if states[t][0] in CONTROL_DONE[action]:
                        continue
                    try:
                        run([t])
                    except InvalidStateError as one:
                        refused[t] = one
        return refused

    def _whole_arrays(self, ids: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        """``ids`` to hold, with the tasks of an array replaced by the array's own id where
        every task slurmctld still has of it is among them or already held (holding tasks one
        by one splits each off the array's record, a slow step per task; holding the array is
        one step); and the tasks each such array id stands for."""
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
            if state not in CONTROL_DONE[Action.HOLD]:
                others[b].add(r["JobArrayID"])
        whole = {b: tasks[b] for b in arrays if live[b] and others[b] <= set(tasks[b])}
        return [t for t in ids if base_id(t) not in whole] + sorted(whole), whole

    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        return PollFeed(POLL_INTERVAL)

    def close(self) -> None:
        self.commands.close()

    def delete(self, tracker_id: str) -> None:
        # Slurm forgets ended jobs itself (MinJobAge; accounting keeps them): only our caches.
        self.shared.forget([tracker_id])
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
        user = owner()
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
        # The window ends a day from now: sacct leaves out a job that ended in its last second.
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
        text = self._run(["squeue", "-h", "-r", "-t", "all", "-u", owner(), "-O",
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
        partitions = (parse_key_values(line) for line in text.splitlines())
        return [queue_from_partition(p) for p in partitions if "PartitionName" in p]

    # -- reservations ----------------------------------------------------------------------------
    def reserve(self, template: ReservationTemplate) -> ReservationInfo:
        t = template
        start = t.start_time or dt.datetime.now().astimezone()
        args = specs.reservation_args(t, start)

        def hint(message: str) -> str:
            return (specs.field_hint(t, RESERVATION_ERROR_FIELDS, message) or
                    f"{specs.reservation_slots(t)} cores from {start:%Y-%m-%d %H:%M:%S}")

        name = t.reservation_name or "(unnamed)"
        out = self._run(["scontrol", "create", "reservation", *args],
                        f"creating reservation {name} on {self.where}", hint=hint)
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
