"""The OS-process tracker (contact ``process``): jobs are processes of this machine.

drmaa2os's process tracker's mappings, plus what it lacks: jobs are started and reaped by pydrmaa2's per-user
agent, so exit status, rusage and output survive the submitter; suspend/resume/terminate act on
the job's whole process group; resource limits are rlimits, priority is the nice value.
``ProcessTracker`` is the client side, ``ProcessService`` runs in the agent.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import errno
import heapq
import json
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ..database import Database
from ..errors import (
    Drmaa2Error,
    InvalidArgumentError,
    InvalidStateError,
    UnsupportedAttributeError,
)
from ..info import JobInfo, MachineInfo, QueueInfo
from ..states import Capability, JobState
from ..templates import JobTemplate
from . import _forkserver
from ._limits import NICE_MAX, NICE_MIN, RLIMITS, check_limits, job_nice, parse_resource_limits
from .base import KEPT_OUTPUT_DIR, Action, ChangeFeed, Contact, JobTracker, signal_name
from .common import (
    HOSTNAME,
    check_readable,
    check_writable,
    environ,
    local_machine,
    owner,
    timestamp,
)

if TYPE_CHECKING:
    from ..agent import Agent

log = logging.getLogger("pydrmaa2.process")

# As drmaa2os's process tracker, job control: SIGTSTP can be caught or ignored by a job, SIGSTOP cannot.
CONTROL_SIGNALS = {
    Action.SUSPEND: signal.SIGSTOP,
    Action.RESUME: signal.SIGCONT,
    Action.TERMINATE: signal.SIGKILL,
}

# As drmaa2os's process tracker, JobInfo extensions of a finished job, from os.wait4's rusage.
RUSAGE_EXTENSIONS = {
    "max_rss": "ru_maxrss",        # KiB
    "swaps": "ru_nswap",
    "in_blocks": "ru_inblock",
    "out_blocks": "ru_oublock",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS procs (
    tid         TEXT PRIMARY KEY,
    pid         INTEGER,
    state       TEXT NOT NULL,
    sub_state   TEXT,
    exit_status INTEGER,
    signal      TEXT,
    annotation  TEXT,
    job_name    TEXT,
    workdir     TEXT,
    cmdline     TEXT,
    submitted   REAL NOT NULL,
    started     REAL,
    finished    REAL,
    rusage      TEXT,
    wallclock   REAL
);
"""

#: A job the agent has been asked to start and has not recorded yet.
STARTING = (JobState.QUEUED, "starting")


class ProcessTracker(JobTracker):
    """Jobs as OS processes of this machine, supervised by the pydrmaa2 agent."""

    scheme = "process"
    supported_fields = frozenset({
        "remote_command", "args", "submit_as_hold", "job_environment", "working_directory",
        "job_name", "input_path", "output_path", "error_path", "join_files", "stage_in_files",
        "stage_out_files", "candidate_machines", "rerunnable", "extensions", "priority",
        "min_phys_memory", "resource_limits",
    })
    capabilities = frozenset({Capability.JOB_ARRAYS, Capability.BULK_JOBS_MAXPARALLEL,
                              Capability.JT_STAGING, Capability.CALLBACK})
    #: The agent's procs rows last until the job is reaped.
    keeps_ended = True

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        if contact.path or contact.host:
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: the process tracker runs on this machine only; "
                "use 'process'")
        self.db = Database(home / "process.sqlite", SCHEMA)
        #: Where the session layer keeps unnamed output: its own, not checked for each job.
        self._kept_dir = os.fspath(Path(home) / KEPT_OUTPUT_DIR)
        from ..agent import AgentClient

        self.agent = AgentClient.for_home(home)

    # -- validation -------------------------------------------------------------------------------
    def validate(self, template: JobTemplate) -> None:
        super().validate(template)
        if not template.remote_command:
            raise InvalidArgumentError("JobTemplate.remote_command is not set: nothing to run")
        local = {HOSTNAME, HOSTNAME.split(".")[0], "localhost"}
        others = [m for m in template.candidate_machines if m not in local]
        if others:
            raise UnsupportedAttributeError(
                f"JobTemplate.candidate_machines {others!r}: the process tracker runs jobs on "
                f"this machine ({HOSTNAME}) only")
        bad = [k for k in template.extensions]
        if bad:
            raise UnsupportedAttributeError(
                f"JobTemplate.extensions {bad!r} are not known to the process tracker")
        check_limits(template)

    def _resolve(self, template: JobTemplate, env: dict[str, str], cwd: str) -> str:
        cmd = template.remote_command or ""
        if "/" in cmd:
            path = cmd if os.path.isabs(cmd) else os.path.join(cwd, cmd)
            if not os.path.isfile(path):
                raise InvalidArgumentError(f"JobTemplate.remote_command {cmd!r} does not exist")
            if not os.access(path, os.X_OK):
                raise InvalidArgumentError(f"JobTemplate.remote_command {cmd!r} is not executable")
            return cmd
        found = shutil.which(cmd, path=env.get("PATH", os.defpath))
        if found is None:
            raise InvalidArgumentError(
                f"JobTemplate.remote_command {cmd!r} is not found in PATH {env.get('PATH', '')!r}")
        return found

    # -- jobs --------------------------------------------------------------------------------------
    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        return self.submit_in_context(job_id, template, task_index, self.submitter_context())

    def submitter_context(self) -> dict[str, Any]:
        """A job gets its submitter's environment and umask, also when the agent starts it."""
        return {"environ": environ(), "umask": current_umask()}

    def submit_in_context(self, job_id: str, template: JobTemplate, task_index: int | None,
                          context: dict[str, Any]) -> str:
        base, request = self._request(job_id, template, task_index, context,
                                      _Checks(self._kept_dir))
        env = job_env(base, request.pop("env_set"), request.pop("env_del"))
        # Asynchronous: the agent records a start failure (a race with the checks made here)
        # as a FAILED job with the reason, so run_job does not wait for fork/exec.
        self.agent.send("proc.spawn", env=env, **request)
        return job_id

    def submit_many(self, jobs: Sequence[tuple[str, JobTemplate, int | None,
                                               dict[str, Any] | None]]
                    ) -> list[str | BaseException]:
        """Checks each job as ``submit_in_context`` does and sends those before the first
        refused in one request, each submitter's environment once."""
        out: list[str | BaseException] = []
        requests: list[dict[str, Any]] = []
        envs: list[dict[str, str]] = []
        env_of: dict[int, int] = {}  # id(the environment) -> its index in envs
        checks = _Checks(self._kept_dir)
        own: dict[str, Any] | None = None
        for job_id, template, task_index, context in jobs:
            if context is None:
                if own is None:
                    own = self.submitter_context()
                context = own
            try:
                base, request = self._request(job_id, template, task_index, context, checks)
            except BaseException as e:  # noqa: BLE001 - the caller's to handle, in order
                out.append(e)
                break
            if id(base) not in env_of:
                env_of[id(base)] = len(envs)
                envs.append(base)
            request["env"] = env_of[id(base)]
            requests.append(request)
            out.append(job_id)
        if requests:
            try:
                self.agent.send("proc.spawn_many", envs=envs, jobs=requests)
            except Drmaa2Error as e:  # nothing of this request is known to have arrived
                return [e]
        return out

    def _request(self, job_id: str, template: JobTemplate, task_index: int | None,
                 context: dict[str, Any], checks: _Checks) -> tuple[dict[str, str], dict[str, Any]]:
        """(the submitter's environment, the spawn request of one job but its environment:
        ``env_set`` and ``env_del`` say how the job's differs), the template checked."""
        submitters, umask = context.get("environ"), context.get("umask")
        base = submitters if isinstance(submitters, dict) else checks.environ()
        if not isinstance(umask, int):
            umask = checks.umask()
        env_set = dict(template.job_environment)
        env_set["JOB_ID"] = job_id
        env_del: list[str] = []
        if task_index is not None:
            env_set["TASK_ID"] = str(task_index)
        else:
            env_set.pop("TASK_ID", None)
            env_del.append("TASK_ID")
        wd = template.working_directory or os.getcwd()
        checks.once(("wd", wd), lambda: _check_dir(wd))
        path = env_set.get("PATH", base.get("PATH"))
        executable = checks.once(
            ("exe", template.remote_command, wd, path),
            lambda: self._resolve(template, {} if path is None else {"PATH": path}, wd))

        def local(p: str | None) -> str | None:
            return None if p is None else os.path.join(wd, p)

        check_readable(local(template.input_path), "input_path")
        checks.writable(local(template.output_path), "output_path")
        if not template.join_files:
            checks.writable(local(template.error_path), "error_path")
        rlimits, wallclock = parse_resource_limits(template.resource_limits)
        request: dict[str, Any] = {}
        if rlimits:
            request["rlimits"] = {name: list(pair) for name, pair in rlimits.items()}
        if wallclock is not None:
            request["wallclock"] = wallclock
        if template.priority is not None:
            request["nice"] = job_nice(template.priority)
        request.update(
            tid=job_id, executable=executable, argv=[template.remote_command, *template.args],
            env_set=env_set, env_del=env_del, cwd=wd,
            stdin=local(template.input_path), stdout=local(template.output_path),
            stderr=local(template.error_path), join=bool(template.join_files),
            stage_in={local(k): local(v) for k, v in template.stage_in_files.items()},
            stage_out={local(k): local(v) for k, v in template.stage_out_files.items()},
            job_name=template.job_name, umask=umask)
        return base, request

    def find_job(self, job_id: str) -> str | None:
        """The agent's record of the job (its tracker id is the job id), or None."""
        return job_id if self.agent.request("proc.find", tid=job_id)["found"] else None

    _INFO_COLUMNS = ("state, sub_state, pid, exit_status, signal, annotation, job_name, workdir, "
                     "cmdline, submitted, started, finished, rusage")

    def _row(self, tracker_id: str) -> tuple[Any, ...] | None:
        rows = self.db.query(f"SELECT {self._INFO_COLUMNS} FROM procs WHERE tid=?", (tracker_id,))
        return rows[0] if rows else None

    def state(self, tracker_id: str) -> tuple[JobState, str]:
        rows = self.db.query("SELECT state, sub_state FROM procs WHERE tid=?", (tracker_id,))
        if not rows:
            return STARTING
        return JobState(rows[0][0]), rows[0][1] or ""

    def _of(self, columns: str, tracker_ids: Sequence[str], where: str = "") -> list[Any]:
        """Rows (tid, columns...) of these jobs' procs rows, 500 jobs a query."""
        rows: list[Any] = []
        ids = list(tracker_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows += self.db.query(f"SELECT tid, {columns} FROM procs WHERE {where}tid IN "
                                  f"({','.join('?' * len(chunk))})", chunk)
        return rows

    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        out: dict[str, tuple[JobState, str]] = {
            tid: (JobState(state), sub or "")
            for tid, state, sub in self._of("state, sub_state", tracker_ids)}
        for tid in tracker_ids:
            out.setdefault(tid, STARTING)
        return out

    def native_ids(self, tracker_ids: Sequence[str]) -> dict[str, str]:
        """The pid of each of these jobs that runs (monitor_jobs lists processes by pid); an
        ended job's pid may be another process's by now."""
        return {tid: str(pid) for tid, pid in self._of(
            "pid", tracker_ids, "pid IS NOT NULL AND state IN ('running','suspended') AND ")}

    def info(self, tracker_id: str) -> JobInfo:
        return self._info_of(self._row(tracker_id))

    def infos(self, tracker_ids: Sequence[str]) -> dict[str, JobInfo]:
        """One query per 500 jobs."""
        rows = {tid: tuple(row) for tid, *row in self._of(self._INFO_COLUMNS, tracker_ids)}
        return {tid: self._info_of(rows.get(tid)) for tid in tracker_ids}

    @staticmethod
    def _info_of(row: tuple[Any, ...] | None) -> JobInfo:
        if row is None:
            return JobInfo(state=STARTING[0], sub_state=STARTING[1])
        (state, sub, pid, exit_status, sig, annotation, job_name, workdir, cmdline, submitted,
         started, finished, rusage) = row
        ru = json.loads(rusage) if rusage else {}
        ext = {"pid": str(pid), "native_id": str(pid)} if pid else {}
        ext.update({k: str(v) for k, v in ru.items()})
        if workdir:
            ext["working_dir"] = workdir
        if cmdline:
            ext["command_line"] = cmdline
        end = finished or (time.time() if started else None)
        return JobInfo(
            job_name=job_name, exit_status=exit_status, terminating_signal=sig,
            annotation=annotation, state=JobState(state), sub_state=sub,
            allocated_machines=[HOSTNAME], submission_machine=HOSTNAME, job_owner=owner(),
            slots=1,
            wallclock_time=dt.timedelta(seconds=end - started) if started and end else None,
            cpu_time=(dt.timedelta(milliseconds=ru["user_time_ms"] + ru["system_time_ms"])
                      if "user_time_ms" in ru else None),
            # submission_time: the store's, fixed once at submission (the session fills it in);
            # the agent's own record of it is later and would differ between two readings.
            dispatch_time=timestamp(started), finish_time=timestamp(finished),
            extensions=ext)

    def control(self, tracker_id: str, action: Action) -> None:
        self.agent.request("proc.control", tid=tracker_id, action=action.value)

    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        """The agent's own feed: it runs the jobs, so it announces their changes."""
        return self.agent.watch(self.agent_keys(tracker_ids))

    def agent_keys(self, tracker_ids: Sequence[str]) -> list[str]:
        """The agent announces a process's changes as its job's (the tracker id is the job
        id), so a session hears of both with the same keys."""
        return [f"job:{t}" for t in tracker_ids]

    def delete(self, tracker_id: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM procs WHERE tid=? AND state IN ('done','failed')",
                       (tracker_id,))

    def list_jobs(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT tid FROM procs ORDER BY rowid")]

    # -- monitoring (as drmaa2os: every OS process is a job) ------------------------------------------
    def monitor_jobs(self) -> list[JobInfo]:
        out = []
        attrs = ["pid", "name", "cmdline", "cwd", "cpu_percent", "cpu_affinity", "memory_info",
                 "create_time", "username", "status"]
        now = time.time()
        for p in psutil.process_iter(attrs):
            i = p.info
            created = i.get("create_time")
            mem = i.get("memory_info")
            state = (JobState.SUSPENDED if i.get("status") == psutil.STATUS_STOPPED
                     else JobState.RUNNING)
            ext = {
                "process_name": i.get("name") or "",
                "command_line": " ".join(i.get("cmdline") or []),
                "working_dir": i.get("cwd") or "",
                "cpu_usage": str(i.get("cpu_percent") or 0.0),
                "cpu_affinity": " ".join(map(str, i.get("cpu_affinity") or [])),
            }
            if mem is not None:
                ext.update(memory_usage=f"rss={mem.rss} vms={mem.vms}",
                           memory_usage_rss=str(mem.rss), memory_usage_vms=str(mem.vms))
            out.append(JobInfo(
                id=str(i["pid"]), state=state, sub_state=i.get("status"),
                dispatch_time=timestamp(created), submission_time=timestamp(created),
                wallclock_time=dt.timedelta(seconds=now - created) if created else None,
                allocated_machines=[HOSTNAME], submission_machine=HOSTNAME,
                job_owner=i.get("username"), slots=1, extensions=ext))
        return out

    def machines(self) -> list[MachineInfo]:
        return [local_machine()]

    def queues(self) -> list[QueueInfo]:
        return []


def job_env(base: dict[str, str], env_set: dict[str, str], env_del: list[str]
            ) -> dict[str, str]:
    """A job's environment: its submitter's (``base``) with ``env_set`` set, ``env_del`` unset."""
    env = dict(base)
    env.update(env_set)
    for name in env_del:
        env.pop(name, None)
    return env


def _entries(encoded: dict[int, dict[Any, bytes] | None], envs: list[Any], index: int,
             env_set: dict[str, str], env_del: list[str]) -> list[bytes] | None:
    """A job's environment encoded for exec from its submitter's, encoded once per request
    (``encoded``); None where it cannot be (exec_args then refuses it, naming the cause)."""
    if index not in encoded:
        try:
            encoded[index] = _forkserver.env_entries(envs[index])
        except (TypeError, ValueError, AttributeError):
            encoded[index] = None
    base = encoded[index]
    if base is None:
        return None
    try:
        own = _forkserver.env_entries(env_set)
    except (TypeError, ValueError, AttributeError):
        return None
    gone = set(env_del)
    return ([e for k, e in base.items() if k not in own and k not in gone]
            + [e for k, e in own.items() if k not in gone])


def _check_dir(wd: str) -> None:
    if not os.path.isdir(wd):
        raise InvalidArgumentError(f"JobTemplate.working_directory {wd!r} is not a directory")


class _Checks:
    """The checks of one submission of several jobs, each made once: a directory, a command
    looked up in PATH, a directory to create output files in; this program's environment.
    ``kept``: the directory of kept output, the store's own, not looked at."""

    def __init__(self, kept: str | None = None) -> None:
        self._done: dict[tuple[Any, ...], Any] = {}
        if kept is not None:
            self._done[("dir", kept)] = (None, None)
        self._environ: dict[str, str] | None = None
        self._umask: int | None = None

    def once(self, key: tuple[Any, ...], check: Callable[[], Any]) -> Any:
        """``check()``'s value, or the error it raised, the first time ``key`` is asked."""
        if key not in self._done:
            try:
                self._done[key] = (check(), None)
            except InvalidArgumentError as e:
                self._done[key] = (None, e)
        value, error = self._done[key]
        if error is not None:
            raise InvalidArgumentError(str(error))
        return value

    def writable(self, path: str | None, field: str) -> None:
        """check_writable of the first file of each directory; the others of a directory that
        passed are not looked at (two stats a task cost the agent's driver a tenth of its time
        with 10,000 tasks writing into one directory): a task whose file then cannot be
        opened still ends FAILED naming the field and the path, when its own process opens
        it."""
        if path is None:
            return
        key = ("dir", os.path.dirname(path))
        if key not in self._done:
            check_writable(path, field)  # a refusal names this field and this path
            self._done[key] = (None, None)

    def environ(self) -> dict[str, str]:
        if self._environ is None:
            self._environ = environ()
        return self._environ

    def umask(self) -> int:
        if self._umask is None:
            self._umask = current_umask()
        return self._umask


def current_umask() -> int:
    """This process's umask, read without changing it (os.umask would, for every thread)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        try:
            status = os.read(fd, 1 << 16)  # one read: the Umask line is near the top
        finally:
            os.close(fd)
        at = status.find(b"\nUmask:")
        if at >= 0:
            return int(status[at + 7:status.index(b"\n", at + 1)].strip(), 8)
    mask = os.umask(0o022)  # a kernel without the Umask line: the racy way
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------------------------------
# agent side
# ----------------------------------------------------------------------------------------------------

INSERT_FAILED = ("INSERT OR REPLACE INTO procs(tid, state, sub_state, annotation, job_name, workdir, "
                 "cmdline, submitted, finished) VALUES (?,?,?,?,?,?,?,?,?)")


class _Server:
    """A running fork server and the spawn requests it has not answered yet (oldest first:
    it answers in order)."""

    __slots__ = ("fs", "in_flight")

    def __init__(self, fs: _forkserver.ForkServer) -> None:
        self.fs = fs
        self.in_flight: collections.deque[dict[str, Any]] = collections.deque()


class _Child:
    __slots__ = ("tid", "pid", "popen", "pidfd", "started", "stage_out", "note")

    def __init__(self, tid: str, pid: int, popen: subprocess.Popen[bytes] | None, pidfd: int | None,
                 started: float, stage_out: dict[str, str]) -> None:
        self.tid = tid
        self.pid = pid
        self.popen = popen  # started without the fork server: Popen must never wait for it
        self.pidfd = pidfd  # None: pidfd_open failed, the child is polled each loop turn
        self.started = started
        self.stage_out = stage_out
        self.note: str | None = None  # why the agent ended it (its annotation)


def _copy(src: str, dst: str, links: bool) -> None:
    """Copy a file or a directory's content; ``links``: symbolic links are copied as links
    (stage-out, as Docker's and Podman's archive API and ``docker cp`` give them), else
    followed (stage-in: what the job sees)."""
    if os.path.isdir(src) and not (links and os.path.islink(src)):
        shutil.copytree(src, dst, symlinks=links, dirs_exist_ok=True)
    else:
        parent = os.path.dirname(dst)
        if parent:
            os.makedirs(parent, exist_ok=True)
        if links and os.path.isdir(dst) and not os.path.islink(dst):
            dst = os.path.join(dst, os.path.basename(src.rstrip("/")))
        if links and os.path.islink(src) and os.path.lexists(dst):
            os.unlink(dst)
        shutil.copy2(src, dst, follow_symlinks=not links)


def _wallclock_of(msg: dict[str, Any]) -> float | None:
    """The wallclock_time limit of a spawn request in seconds (None: none or not a number)."""
    limit = msg.get("wallclock")
    ok = isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0
    return float(limit) if ok and limit is not None else None


def _limits_of(msg: dict[str, Any]) -> tuple[list[tuple[int, int, int]], int | None]:
    """The rlimits (resource, soft, hard) and nice value of a spawn request, checked."""
    rlimits = msg.get("rlimits") or {}
    nice = msg.get("nice")
    if not isinstance(rlimits, dict) or not (nice is None or type(nice) is int):
        raise InvalidArgumentError(f"bad limits in the spawn request: {rlimits!r}, nice {nice!r}")
    out = []
    for name, pair in rlimits.items():
        ok = (name in RLIMITS and isinstance(pair, list) and len(pair) == 2
              and all(type(v) is int and -1 <= v < 2**63 for v in pair))
        if not ok:
            raise InvalidArgumentError(f"bad rlimit in the spawn request: {name!r}={pair!r}")
        out.append((RLIMITS[name], *pair))  # -1 is RLIM_INFINITY, as in the resource module
    return out, None if nice is None else max(NICE_MIN, min(NICE_MAX, nice))


def _apply_limits(limits: list[tuple[int, int, int]], nice: int | None) -> None:
    """In the child of a direct spawn (no fork server), before exec."""
    for res, soft, hard in limits:
        resource.setrlimit(res, (soft, hard))
    if nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def _described(msg: dict[str, Any]) -> tuple[str | None, str, str]:
    """(job name, working directory, command line) of a spawn request as a procs row keeps
    them, whatever types the request holds."""
    argv = msg.get("argv")
    cmdline = " ".join(map(str, argv)) if isinstance(argv, list) else str(argv)
    job_name = msg.get("job_name")
    return (None if job_name is None else str(job_name), str(msg.get("cwd")),
            cmdline.replace("\0", "\\0"))


def _stage(pairs: list[tuple[str, str]], what: str, stop_at_first: bool) -> str | None:
    """Copy each (source, destination) (stage-out: links as links, the others after a
    failure); the failures in words, joined by '; ' as on the container trackers (None: all
    copied)."""
    failures = []
    for src, dst in pairs:
        try:
            _copy(src, dst, links=not stop_at_first)
        except Exception as e:  # noqa: BLE001 - any failed copy fails the job, says why
            failures.append(f"{what} of {src!r} to {dst!r} failed: {_why(e)}")
            if stop_at_first:
                break
    return "; ".join(failures) or None


def _cannot_start(msg: dict[str, Any], e: BaseException) -> InvalidArgumentError:
    """Why a job's process could not be created or exec'd, naming its command."""
    argv = msg.get("argv")
    command = argv[0] if isinstance(argv, list) and argv else msg.get("executable")
    return InvalidArgumentError(f"cannot start JobTemplate.remote_command {command!r}: {_why(e)}")


def _why(e: BaseException) -> str:
    """An exception in a few words for an annotation: OSError's strerror, else type and text."""
    if isinstance(e, _forkserver.SpawnError) and e.step in _LIMIT_STEPS:
        return f"{_LIMIT_STEPS[e.step]} cannot be applied: {e.strerror}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, Drmaa2Error):
        return str(e)
    return f"{type(e).__name__}: {e}"


def decode_wait_status(status: int) -> tuple[int, str | None]:
    """(exit status, signal name) of a wait status; a signal N gives 128+N as shells do, and
    every signal 1-64 has a name (real-time ones as SIGRTMIN+n)."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return 128 + signum, signal_name(signum)
    return os.WEXITSTATUS(status), None


#: Requests sent to a fork server and not answered, at most: more could fill the socket
#: both ways. A job a server died on is sent to a new one this often, then started here;
#: servers are started again this often in an agent's life, then jobs are started here.
MAX_IN_FLIGHT, SERVER_RETRIES, SERVER_RESTARTS = 64, 2, 20
#: Fork servers per agent: two per CPU up to four, of which the first BUSY_SERVERS (one per
#: CPU up to two) take every job until each has SPILL_DEPTH in hand. A server waits for each
#: job it starts until the job has exec'd, so one server starts jobs one at a time: 1,369-1,446
#: a second where each job creates its two output files, two servers 1,975-2,074 (on 2 CPUs).
#: Jobs sent many at once (an array without max_parallel) keep the others busy too: 1,429-
#: 1,942 tasks/s with four, 1,166-1,273 with two; jobs that come a few at a time (run_job, a
#: throttled array) ran slower spread over four (0.53-0.57x against 0.55-0.75x).
FORK_SERVERS = max(1, min(4, 2 * len(os.sched_getaffinity(0))))
BUSY_SERVERS, SPILL_DEPTH = max(1, min(2, len(os.sched_getaffinity(0)))), 8
#: The key marking a spawn request that came in a proc.spawn_many (the agent's own).
_MANY = " many"
#: Internal key of a job of proc.spawn_many: its environment encoded for exec.
_ENTRIES = " entries"
#: The fork server's clone errors that say this system refuses CLONE_PARENT (not a passing
#: shortage): the agent then starts jobs itself.
_NO_CLONE_PARENT = frozenset({errno.EINVAL, errno.EPERM, errno.ENOSYS})
#: The spawn request's keys of a job's stdin, stdout and stderr files.
_STDIO_KEYS = ("stdin", "stdout", "stderr")
#: The fork server's steps of opening them: the template's field, the request's key.
_OPEN_STEPS = {_forkserver.STEP_OPEN_IN: ("input_path", "stdin"),
               _forkserver.STEP_OPEN_OUT: ("output_path", "stdout"),
               _forkserver.STEP_OPEN_ERR: ("error_path", "stderr")}
#: The steps of a start that apply the template's limits, by the fields they come from.
_LIMIT_STEPS = {_forkserver.STEP_RLIMIT: "JobTemplate.resource_limits",
                _forkserver.STEP_NICE: "JobTemplate.priority"}

#: Pending store writes are retried after a failure, waiting this long at first and doubling
#: up to RETRY_MAX between attempts.
RETRY_FIRST, RETRY_MAX = 0.05, 5.0
#: The loop writes the records of starts and ends at most once per GROUP_COMMIT seconds; one
#: transaction per loop turn cost a tenth of the agent's CPU where jobs end one by one (a
#: 10,000-task /bin/true array: 12,042 loop turns). Jobs to start and answers owed are
#: written at once.
GROUP_COMMIT = 0.002


class ProcessService:
    """In the agent: spawns jobs, reaps them with wait4 and records the outcome in process.sqlite.

    Jobs are started by fork servers (``_forkserver``, FORK_SERVERS of them), small C
    processes that make each job a child of the agent: the job's max_rss is then its own.
    Requests go to the server with the fewest in hand without waiting; its answers (in order)
    are taken at the end of a loop turn that started jobs sent one by one, else as they come,
    or when a job they concern is asked for. Where no C compiler can
    build it, the agent starts jobs itself (logged once), and a job's max_rss includes the
    agent's pages (some 25 MB: the kernel counts the forked agent's peak RSS into the job's at
    exec).
    """

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.db = Database(agent.home / "process.sqlite", SCHEMA)
        if "wallclock" not in {row[1] for row in self.db.query("PRAGMA table_info(procs)")}:
            with self.db.transaction() as db:  # a store of a pydrmaa2 before wallclock limits
                db.execute("ALTER TABLE procs ADD COLUMN wallclock REAL")
        self._restarts = 0
        self._server_refused = False  # this system refuses the server's clone: not used
        #: The fork servers (none: the agent starts jobs itself).
        self.servers: list[_Server] = []
        for _ in range(FORK_SERVERS):
            server = self._start_server()
            if server is None:
                break
            self.servers.append(server)
        #: wallclock_time limits: (when, job, its limit in seconds), soonest first.
        self._deadlines: list[tuple[float, str, float]] = []
        #: Why the agent ended an adopted job (a wallclock limit): its annotation.
        self._orphan_notes: dict[str, str] = {}
        self.children: dict[str, _Child] = {}
        #: Children whose pidfd could not be opened: looked at each loop turn instead.
        self.polled: dict[str, _Child] = {}
        #: Jobs of an earlier agent that still run: tid -> pid (their process group).
        self.orphans: dict[str, int] = {}
        self._writes: list[tuple[str, tuple[Any, ...]]] = []
        self._changed: list[str] = []
        #: Spawn requests of this loop turn: started once their 'starting' rows are written, so
        #: an agent killed at any instant leaves a record of every job it may have started.
        self._to_spawn: list[dict[str, Any]] = []
        # Stage-in and stage-out copies run on worker threads, never in the event loop: one
        # large copy must not stall every reap and every client. A finished copy queues its
        # continuation and wakes the loop through a pipe.
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="stage")
        self._done: collections.deque[Callable[[], None]] = collections.deque()
        self._done_r, self._done_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._copying = 0
        self._staging: set[str] = set()   # jobs whose stage-in runs
        self._cancelled: set[str] = set()  # ... and were terminated meanwhile
        agent.add_reader(self._done_r, self._on_copies_done)
        #: The store error that keeps pending writes queued (None: the store takes writes).
        self.write_error: Drmaa2Error | None = None
        self._retry_at = 0.0
        self._backoff = 0.0
        self._committed = 0.0  # when the last transaction of the loop's writes ended
        agent.flush_hooks.append(self._loop_flush)
        agent.handlers["proc.spawn"] = self.spawn
        agent.handlers["proc.spawn_many"] = self.spawn_many
        agent.handlers["proc.control"] = self.control
        agent.handlers["proc.find"] = self.find
        agent.busy_checks.append(
            lambda: bool(self.children or self.orphans or self._writes or self._to_spawn
                         or any(s.in_flight for s in self.servers) or self._copying))
        self._reconcile()

    def _start_server(self) -> _Server | None:
        exe, why = _forkserver.build(self.agent.home)
        if exe is not None:
            try:
                fs = _forkserver.ForkServer(exe)
            except OSError as e:
                why = str(e)
            else:
                server = _Server(fs)
                self.agent.add_reader(fs.fileno(), lambda: self._collect(server))
                return server
        if not self.servers:  # (said once: another server may still take jobs)
            log.warning("jobs are started by the agent itself, not by the fork server (%s); "
                        "their max_rss includes the agent's own pages", why)
        return None

    def _stop_server(self, server: _Server) -> None:
        if server in self.servers:
            self.servers.remove(server)
            self.agent.remove_reader(server.fs.fileno())
            server.fs.close()

    def _in_flight(self) -> list[dict[str, Any]]:
        """The spawn requests the fork servers have not answered yet."""
        return [m for server in self.servers for m in server.in_flight]

    def _collect_all(self) -> None:
        """Every answer the fork servers owe."""
        for server in list(self.servers):
            while server in self.servers and server.in_flight:
                self._collect(server, wait=True)

    def _reconcile(self) -> None:
        """Jobs an earlier agent started and could not see end: record what can be known."""
        rows = self.db.query("SELECT tid, pid, started, wallclock FROM procs WHERE state IN "
                             "('running','suspended','queued')")
        unsure = {tid: wallclock for tid, pid, _, wallclock in rows if pid is None}
        if unsure:
            self._reconcile_starting(unsure)
        for tid, pid, started, wallclock in rows:
            if tid in unsure:
                continue
            alive = False
            # The same pid with a start time a second off is another process (pid reuse).
            with contextlib.suppress(psutil.Error):
                alive = (pid is not None and started is not None
                         and abs(psutil.Process(pid).create_time() - started) < 1)
            if alive:
                self._adopt(tid, pid, started, wallclock)
            else:
                self._finish_lost(tid)

    def _reconcile_starting(self, tids: dict[str, float | None]) -> None:
        """Jobs an earlier agent was starting when it ended: the process that carries the job's
        JOB_ID in its environment (a session leader of ours) is adopted; with none, whether the
        job ran cannot be known, and it ends FAILED saying so."""
        found: dict[str, psutil.Process] = {}
        for p in psutil.process_iter(["pid", "uids"]):
            with contextlib.suppress(psutil.Error, OSError):
                if p.info["uids"] is None or p.info["uids"].real != os.getuid():
                    continue
                if os.getsid(p.pid) != p.pid:
                    continue
                job = p.environ().get("JOB_ID")
                if job in tids:
                    found[job] = p
        for tid in tids:
            proc = found.get(tid)
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    started = proc.create_time()
                    self._write(tid, "UPDATE procs SET pid=?, state='running', sub_state='running', "
                                "started=? WHERE tid=?", (proc.pid, started, tid))
                    self._adopt(tid, proc.pid, started, tids[tid])
                    continue
            self._write(tid, "UPDATE procs SET state='failed', sub_state='lost', finished=?, "
                        "annotation=? WHERE tid=?",
                        (time.time(), "the pydrmaa2 agent ended while it was starting this job; "
                         "whether the job ran is unknown", tid))

    def _adopt(self, tid: str, pid: int, started: float, wallclock: float | None) -> None:
        """Watch a job an earlier agent started: not our child any more, so its pidfd tells
        when it ends, not how. Its wallclock_time limit still holds."""
        if wallclock:
            heapq.heappush(self._deadlines, (started + wallclock, tid, wallclock))
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:  # it ended in this very instant
            self._finish_lost(tid)
            return
        except OSError:  # no pidfd to be had (EMFILE): look at it each loop turn
            self.orphans[tid] = pid
            return
        self.orphans[tid] = pid
        self.agent.add_reader(fd, lambda: self._on_orphan_exit(tid, fd))

    def _finish_lost(self, tid: str) -> None:
        note = self._orphan_notes.pop(tid, None)
        note = f"{note}; " if note else ""
        self._write(tid, "UPDATE procs SET state='failed', sub_state='lost', finished=?, "
                    "annotation=? WHERE tid=?",
                    (time.time(), f"{note}the pydrmaa2 agent supervising this job ended before "
                     "the job did; its exit status is unknown", tid))

    # -- wallclock_time limits: the agent's loop is their timer ------------------------------------
    def _expire(self) -> float | None:
        """Kill the jobs whose wallclock_time is up; seconds until the next one is (None: no
        limit left)."""
        now = time.time()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, tid, limit = heapq.heappop(self._deadlines)
            child = self.children.get(tid)
            pid = child.pid if child is not None else self.orphans.get(tid)
            if pid is None:
                continue  # it ended in time
            note = f"killed at its wallclock_time limit of {limit:g} s"
            if child is not None:
                child.note = note
            else:
                self._orphan_notes[tid] = note
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return max(0.0, self._deadlines[0][0] - now) if self._deadlines else None

    def _on_orphan_exit(self, tid: str, fd: int) -> None:
        self.orphans.pop(tid, None)
        self.agent.remove_reader(fd)
        os.close(fd)
        self._finish_lost(tid)

    # -- batched store writes: one transaction and one round of events per loop turn ----------
    def _write(self, tid: str, sql: str, params: tuple[Any, ...]) -> None:
        self._writes.append((sql, params))
        self._changed.append(f"job:{tid}")  # the tracker id is the job's id

    def flush(self) -> float | None:
        """Write what the last loop turn recorded, in one transaction. A write the store refuses
        (full disk, lock held too long, I/O error) stays queued and is retried with backoff;
        nothing is dropped. Kills the jobs whose wallclock_time is up. Returns when to be
        called again."""
        deadline = self._expire()
        again = self._flush()
        return deadline if again is None else again if deadline is None else min(again, deadline)

    def _loop_flush(self) -> float | None:
        """The loop's hook: ``flush``, but records of starts and ends alone wait for
        GROUP_COMMIT after the last transaction, gathering the next ones into it."""
        if self._writes and not self._to_spawn and not self.polled:
            wait = self._committed + GROUP_COMMIT - time.monotonic()
            if wait > 0:
                deadline = self._expire()
                return wait if deadline is None else min(wait, deadline)
        return self.flush()

    def _flush(self) -> float | None:
        self._poll()
        if not self._writes and not self._to_spawn:
            return 0.05 if self.polled else None
        now = time.monotonic()
        if now < self._retry_at:
            return self._retry_at - now
        spawn = self._to_spawn
        try:
            with self.db.transaction() as db:
                for sql, params in self._writes:
                    db.execute(sql, params)
                # Write-ahead: a job's row exists before its process does. A tid recorded
                # already is a duplicate request and is not started twice.
                spawn = [m for m in spawn if db.execute(
                    "INSERT OR IGNORE INTO procs(tid, state, sub_state, job_name, workdir, "
                    "cmdline, submitted, wallclock) VALUES (?,?,?,?,?,?,?,?)",
                    self._starting_row(m)).rowcount]
        except Drmaa2Error as e:
            if self.write_error is None or str(self.write_error) != str(e):
                log.error("%d store writes kept for a retry: %s", len(self._writes), e)
            self.write_error = e
            self._backoff = min(RETRY_MAX, self._backoff * 2 or RETRY_FIRST)
            self._retry_at = now + self._backoff
            return self._backoff
        if self.write_error is not None:
            log.info("the store takes writes again: %d written", len(self._writes))
        self.write_error, self._backoff, self._retry_at = None, 0.0, 0.0
        self._committed = time.monotonic()
        self._writes, self._to_spawn = [], []
        changed, self._changed = self._changed, []
        self.agent.publish(changed)
        if spawn:
            for msg in spawn:
                self._start(msg)
            # Their answers. A turn that started jobs sent one by one (run_job) waits for every
            # answer the server owes: the jobs that come meanwhile then make one transaction,
            # and the server gets the CPU. Jobs sent many at once (an array's, submit_many) are
            # not waited for: they come to _collect as the server gives them, and the loop
            # reaps and records meanwhile. (1,000 run_job + wait: the last ends seen 0.11-0.19 s
            # after the last submission waiting, 0.35-0.6 s not; a 10,000-task array: 1,136-
            # 1,219 tasks/s not waiting, 838-891 waiting.)
            if not all(msg.get(_MANY) for msg in spawn):
                self._collect_all()
            # Their running rows go with a next turn's writes.
            return 0.0
        return 0.05 if self.polled else None

    @staticmethod
    def _starting_row(msg: dict[str, Any]) -> tuple[Any, ...]:
        return (msg["tid"], "queued", "starting", *_described(msg), time.time(),
                _wallclock_of(msg))

    def _poll(self) -> None:
        """Children and orphans without a pidfd: look whether they ended."""
        for child in list(self.polled.values()):
            self._on_exit(child)
        for tid, pid in list(self.orphans.items()):
            if not psutil.pid_exists(pid):
                self.orphans.pop(tid, None)
                self._finish_lost(tid)

    # -- requests ---------------------------------------------------------------------------------
    def spawn(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Start one job. Whatever keeps it from starting ends it FAILED with the cause, so a
        job accepted by a client is never left without a record."""
        tid = msg.get("tid")
        if not isinstance(tid, str) or not tid:
            raise InvalidArgumentError(f"proc.spawn without a job id: {str(msg)[:200]}")
        self._to_spawn.append(msg)
        if msg.get("noreply"):
            return {}  # started at the end of this loop turn, after its row is written
        self.flush()
        self._wait_answered(tid)
        if self.write_error is not None:
            raise self.write_error
        child = self.children.get(tid)
        return {"tid": tid, "pid": child.pid if child is not None else None}

    def spawn_many(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Start several jobs (``submit_many``): each as ``spawn`` without an answer, its
        environment its submitter's (``envs``) changed as it says."""
        envs = msg.get("envs")
        jobs = msg.get("jobs")
        if not isinstance(envs, list) or not isinstance(jobs, list):
            raise InvalidArgumentError(f"proc.spawn_many without envs and jobs: {str(msg)[:200]}")
        encoded: dict[int, dict[Any, bytes] | None] = {}  # each environment's, encoded once
        for job in jobs:
            try:
                index, env_set, env_del = job.pop("env"), job.pop("env_set"), job.pop("env_del")
                job["env"] = job_env(envs[index], env_set, env_del)
                job[_ENTRIES] = _entries(encoded, envs, index, env_set, env_del)
                job["noreply"] = True
                job[_MANY] = True
                self.spawn(job)
            except (Drmaa2Error, LookupError, TypeError, AttributeError, ValueError) as e:
                # One malformed job must not keep the others from starting; one with an id
                # ends FAILED saying why (never left without a record).
                tid = job.get("tid") if isinstance(job, dict) else None
                log.error("proc.spawn_many: job %s refused: %s", str(tid)[:64], type(e).__name__)
                if isinstance(tid, str) and tid and not self._known(tid):
                    self._record_not_started(
                        tid, job, "not started",
                        f"cannot start the job: a malformed request ({type(e).__name__})")
        return {}

    def _start(self, msg: dict[str, Any]) -> None:
        """Start one job whose row is written, after its stage-in (off the loop)."""
        stage_in = msg.get("stage_in") or {}
        if not stage_in:
            self._launch(msg)
            return
        tid = msg["tid"]
        self._staging.add(tid)
        self._off_loop(lambda: _stage(list(stage_in.items()), "stage-in", True),
                       lambda failure: self._after_stage_in(msg, failure))

    def _after_stage_in(self, msg: dict[str, Any], failure: str | None) -> None:
        tid = msg["tid"]
        self._staging.discard(tid)
        if tid in self._cancelled:
            self._cancelled.discard(tid)
            self._record_not_started(tid, msg, "terminated before start",
                                     "terminated before it started")
        elif failure is not None:
            self._record_not_started(tid, msg, "stage-in failed", failure)
        else:
            self._launch(msg)

    def _launch(self, msg: dict[str, Any]) -> None:
        """Fork and exec one job; a failure ends it FAILED with the cause."""
        try:
            self._spawn(msg)
        except Exception as e:  # noqa: BLE001 - whatever it was, the job records it
            self._record_not_started(msg["tid"], msg, "not started",
                                     f"cannot start the job: {_why(e)}")

    def _off_loop(self, work: Callable[[], str | None],
                  then: Callable[[str | None], None]) -> None:
        """Run ``work`` on a worker thread; ``then(its result)`` runs in the loop afterwards."""
        self._copying += 1

        def run() -> None:
            try:
                result = work()
            except Exception as e:  # noqa: BLE001 - reported to the continuation
                result = _why(e)
            self._done.append(lambda: then(result))
            with contextlib.suppress(BlockingIOError):
                os.write(self._done_w, b"x")

        self._pool.submit(run)

    def _on_copies_done(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._done_r, 4096)
        while self._done:
            continuation = self._done.popleft()
            self._copying -= 1
            continuation()

    def _record_not_started(self, tid: str, msg: dict[str, Any], sub: str, why: str) -> None:
        now = time.time()
        self._write(tid, INSERT_FAILED, (tid, "failed", sub, why, *_described(msg), now, now))

    def _spawn(self, msg: dict[str, Any]) -> None:
        """Fork and exec a job whose 'starting' row is written: asked of the fork server (the
        job's process opens its files; the answer comes to _collect), else done here."""
        try:
            umask = int(msg.get("umask", -1))
            limits, nice = _limits_of(msg)
            if self._ask_server(msg, umask, limits, nice):
                return
        except (OSError, ValueError, TypeError) as e:
            raise _cannot_start(msg, e) from None
        files: list[int] = []
        try:
            stdin = self._open(msg.get("stdin"), os.O_RDONLY, "input_path", files)
            stdout = self._open(msg.get("stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                "output_path", files)
            if msg.get("join"):
                stderr = stdout
            else:
                stderr = self._open(msg.get("stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                    "error_path", files)
            try:
                devnull = subprocess.DEVNULL
                # Every signal as a newly started program has it (the agent's starter may
                # have ignored some: nohup's SIGHUP), then the limits.
                ignored = [s for s in signal.valid_signals()
                           if s not in (signal.SIGKILL, signal.SIGSTOP)
                           and signal.getsignal(s) is signal.SIG_IGN]

                def preexec() -> None:
                    for s in ignored:
                        signal.signal(s, signal.SIG_DFL)
                    if limits or nice is not None:
                        _apply_limits(limits, nice)

                popen = subprocess.Popen(
                    msg["argv"], executable=msg["executable"], cwd=msg["cwd"], env=msg["env"],
                    stdin=devnull if stdin is None else stdin,
                    stdout=devnull if stdout is None else stdout,
                    stderr=devnull if stderr is None else stderr,
                    close_fds=True, start_new_session=True, umask=umask, preexec_fn=preexec)
            except (OSError, ValueError, TypeError, subprocess.SubprocessError) as e:
                raise _cannot_start(msg, e) from None
        finally:
            for fd in files:
                os.close(fd)
        self._started(msg, popen.pid, popen)

    def _ask_server(self, msg: dict[str, Any], umask: int, limits: list[tuple[int, int, int]],
                    nice: int | None) -> bool:
        """Send the job to the fork server with the fewest jobs in hand, its files for its
        process to open; False where there is none to take it."""
        if not self.servers or self._server_refused or msg.get("retries", 0) > SERVER_RETRIES:
            return False
        join = bool(msg.get("join"))
        paths = [msg.get(key) for key in _STDIO_KEYS]
        if join:
            paths[2] = None
        if any(p is not None and (not isinstance(p, str) or not p or "\0" in p) for p in paths):
            return False  # refused as the agent's own open refuses it
        files = [None if p is None else os.fsencode(p) for p in paths]
        args = _forkserver.exec_args(msg["executable"], msg["argv"], msg["env"], msg["cwd"],
                                     msg.get(_ENTRIES))
        while self.servers and not self._server_refused:
            server = self._pick_server()
            if len(server.in_flight) >= MAX_IN_FLIGHT:
                self._make_room()
                continue
            try:
                server.fs.send(*args, umask, nice, limits, files, join)
            except _forkserver.ServerGone as e:
                self._server_gone(server, str(e))
                continue
            server.in_flight.append(msg)
            return True
        return False

    def _pick_server(self) -> _Server:
        """The server with the fewest jobs in hand of the first BUSY_SERVERS, or of all once
        each of those has SPILL_DEPTH."""
        server = min(self.servers[:BUSY_SERVERS], key=lambda s: len(s.in_flight))
        if len(server.in_flight) >= SPILL_DEPTH:
            server = min(self.servers, key=lambda s: len(s.in_flight))
        return server

    def _make_room(self) -> None:
        """Take the answers every fork server has given, and wait for one only if each still
        has MAX_IN_FLIGHT in hand. While a turn sends many jobs the loop reads no answers, so
        the counts in hand go stale: waiting on the one server picked while the others had
        answered all theirs left them idle (sampled in a 10,000-task array without
        max_parallel: 2.6 of 4 servers waiting for requests, the agent waiting on one)."""
        for server in list(self.servers):
            if server.in_flight:
                self._collect(server)
        while self.servers and all(len(s.in_flight) >= MAX_IN_FLIGHT for s in self.servers):
            poll = select.poll()  # (not select(): the agent's descriptors may pass 1024)
            by_fd = {s.fs.fileno(): s for s in self.servers}
            for fd in by_fd:
                poll.register(fd, select.POLLIN)
            for fd, _ in poll.poll():
                self._collect(by_fd[fd])

    def _collect(self, server: _Server, wait: bool = False) -> None:
        """Take a fork server's answers (``wait``: at least one)."""
        if server not in self.servers:
            return
        try:
            replies = server.fs.replies(wait)
        except _forkserver.ServerGone as e:
            self._server_gone(server, str(e))
            return
        for reply in replies:
            self._answered(server.in_flight.popleft(), reply)
        if self._server_refused and not server.in_flight:
            self._stop_server(server)

    def _answered(self, msg: dict[str, Any], reply: _forkserver.Reply) -> None:
        """One answer of the fork server: the job started, or failed with the cause."""
        e = reply.error()
        if e is None:
            self._started(msg, reply.pid, None)
            return
        if e.pid is not None:
            _forkserver.reap_failed(e.pid)
        if e.step in _OPEN_STEPS:  # as the agent's own open refuses it (_open)
            field, key = _OPEN_STEPS[e.step]
            self._record_not_started(
                msg["tid"], msg, "not started", f"cannot start the job: JobTemplate.{field} "
                f"{msg.get(key)!r} cannot be opened: {e.strerror}")
            return
        if e.step == _forkserver.STEP_CLONE and e.errno in _NO_CLONE_PARENT:
            if not self._server_refused:
                log.warning("the fork server cannot create processes here (%s): jobs are "
                            "started by the agent itself", e.strerror)
            self._server_refused = True
            self._launch(msg)
            return
        self._record_not_started(msg["tid"], msg, "not started",
                                 f"cannot start the job: {_cannot_start(msg, e)}")

    def _server_gone(self, server: _Server, why: str) -> None:
        """A fork server ended: the jobs it answered are recorded, the one it was starting
        is adopted if it exists (never started twice), the others go to another server."""
        if server not in self.servers:
            return
        answered: list[_forkserver.Reply] = []
        with contextlib.suppress(_forkserver.ServerGone):
            while True:
                answered += server.fs.replies(wait=True)
        self._stop_server(server)
        log.warning("%s; starting it again", why)
        if self._restarts < SERVER_RESTARTS:
            self._restarts += 1
            new = self._start_server()
            if new is not None:
                self.servers.append(new)
        in_flight, server.in_flight = server.in_flight, collections.deque()
        for reply in answered:
            self._answered(in_flight.popleft(), reply)
        if in_flight:
            # The other servers' jobs become known first, so that none is taken for the one
            # this server was starting (an array's tasks run one program).
            self._collect_all()
        for n, msg in enumerate(in_flight):
            pid = self._created_by(server, msg) if n == 0 else None
            if pid is not None:
                self._started(msg, pid, None)
            else:
                msg["retries"] = msg.get("retries", 0) + 1
                self._launch(msg)

    def _created_by(self, server: _Server, msg: dict[str, Any]) -> int | None:
        """The process a fork server that died while starting a job had created for it, or
        None: a child of ours, not a known job nor a server, that is a copy of that server
        (before exec: it shares the server's memory, so its environment is the server's,
        which names the server), carries the job's JOB_ID (after), or has ended already as
        the job's program (a zombie: its environment cannot be read, its name can)."""
        tid = msg["tid"]
        known = {c.pid for c in self.children.values()}
        known.update(s.fs.proc.pid for s in self.servers)
        program = os.path.basename(str(msg.get("executable")))[:15]  # (the kernel's comm)
        for p in psutil.Process().children():
            with contextlib.suppress(psutil.Error, OSError):
                if p.pid in known:
                    continue
                if p.status() == psutil.STATUS_ZOMBIE:
                    if p.name() == program:
                        return p.pid
                    continue
                env = p.environ()
                if env.get("JOB_ID") == tid or (
                        p.exe() == os.fspath(server.fs.exe)
                        and env.get(_forkserver.SERVER_ENV) == server.fs.name):
                    return p.pid
        return None

    def _started(self, msg: dict[str, Any], pid: int, popen: subprocess.Popen[bytes] | None) -> None:
        """Record a job that has exec'd as running, and watch it."""
        tid = msg["tid"]
        started = time.time()
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except OSError as e:  # our child exists until reaped; a pidfd can still be refused
            log.warning("no pidfd for job %s (pid %s): %s; looking at it each loop turn",
                        tid, pid, e)
            pidfd = None
        child = _Child(tid, pid, popen, pidfd, started, msg.get("stage_out") or {})
        self.children[tid] = child
        self._write(tid, "UPDATE procs SET pid=?, state='running', sub_state='running', "
                    "started=? WHERE tid=?", (pid, started, tid))
        if pidfd is None:
            self.polled[tid] = child
        else:
            self.agent.add_reader(pidfd, lambda: self._on_exit(child))
        wallclock = _wallclock_of(msg)
        if wallclock is not None:
            heapq.heappush(self._deadlines, (started + wallclock, tid, wallclock))

    @staticmethod
    def _open(path: str | None, flags: int, field: str, files: list[int]) -> int | None:
        if path is None:
            return None
        try:
            fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
        except (OSError, ValueError, TypeError) as e:
            raise InvalidArgumentError(
                f"JobTemplate.{field} {path!r} cannot be opened: {_why(e)}") from None
        files.append(fd)
        return fd

    def find(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Whether this agent started (or recorded) job ``tid``: the spawn requests of clients
        that died are read first, so a spawn already sent is never missed."""
        self.agent.read_pending()
        return {"found": self._known(msg["tid"])}

    def _known(self, tid: str) -> bool:
        """Whether job ``tid`` was started or recorded here (or is on its way)."""
        return bool(tid in self.children or tid in self._staging
                    or any(m["tid"] == tid for m in (*self._to_spawn, *self._in_flight()))
                    or any(params and params[0] == tid for _, params in self._writes)
                    or self.db.query("SELECT 1 FROM procs WHERE tid=?", (tid,)))

    def _wait_answered(self, tid: str) -> None:
        """Until the fork server has answered for job ``tid`` (started or not)."""
        for server in list(self.servers):
            while server in self.servers and any(m["tid"] == tid for m in server.in_flight):
                self._collect(server, wait=True)

    def control(self, msg: dict[str, Any]) -> dict[str, Any]:
        tid = msg["tid"]
        action = Action(msg["action"])
        if any(m["tid"] == tid for m in self._to_spawn):
            self.flush()  # a job asked for in the same turn it was sent: start it first
        self._wait_answered(tid)
        child = self.children.get(tid)
        pid = child.pid if child is not None else self.orphans.get(tid)
        if pid is None and tid in self._staging:
            if action is not Action.TERMINATE:
                raise InvalidStateError(f"job {tid} is staging its input files; it has not "
                                        f"started and cannot be {action.value}d yet")
            self._cancelled.add(tid)
            return {}
        if pid is None:
            raise InvalidStateError(f"job {tid} is not running (it has ended)")
        sig = CONTROL_SIGNALS.get(action)
        if sig is None:
            raise InvalidStateError(f"job {tid}: {action.value} is not possible on a running process")
        if action is Action.TERMINATE and child is not None:
            child.note = "terminated"
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return {}
        if action is not Action.TERMINATE:
            new = "suspended" if action is Action.SUSPEND else "running"
            self._write(tid, "UPDATE procs SET state=?, sub_state=? WHERE tid=? AND state IN "
                        "('running','suspended')", (new, new, tid))
            self.flush()  # the caller looks right after we answer
            if self.write_error is not None:  # done, but the store does not show it yet
                raise self.write_error
        return {}

    # -- exits -------------------------------------------------------------------------------------
    def _forget(self, child: _Child) -> None:
        if child.pidfd is not None:
            self.agent.remove_reader(child.pidfd)
            os.close(child.pidfd)
            child.pidfd = None
        self.polled.pop(child.tid, None)
        self.children.pop(child.tid, None)

    def _on_exit(self, child: _Child) -> None:
        try:
            pid, status, ru = os.wait4(child.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: nothing left to learn
            self._forget(child)
            self._finish_lost(child.tid)
            return
        if pid == 0:
            return  # the pidfd woke us before the kernel made the child waitable
        self._forget(child)
        if child.popen is not None:
            child.popen.returncode = status  # keep Popen from ever waiting on this pid
        finished = time.time()
        exit_status, sig_name = decode_wait_status(status)
        annotation = child.note
        rusage = {k: getattr(ru, attr) for k, attr in RUSAGE_EXTENSIONS.items()}
        rusage["user_time_ms"] = int(ru.ru_utime * 1000)
        rusage["system_time_ms"] = int(ru.ru_stime * 1000)

        def record(failure: str | None) -> None:
            note = failure or annotation
            state = "done" if exit_status == 0 and note is None else "failed"
            sub = "exited" if sig_name is None else f"killed by {sig_name}"
            self._write(child.tid,
                        "UPDATE procs SET state=?, sub_state=?, exit_status=?, signal=?, "
                        "annotation=?, finished=?, rusage=? WHERE tid=?",
                        (state, sub, exit_status, sig_name, note, finished, json.dumps(rusage),
                         child.tid))

        if child.stage_out:  # the job has ended once its outputs are staged out (off the loop)
            pairs = [(src, dst) for dst, src in child.stage_out.items()]
            self._off_loop(lambda: _stage(pairs, "stage-out", False), record)
        else:
            record(None)

    def close(self) -> None:
        """Write what is pending (retrying while the store refuses, up to RETRY_MAX * 6 s)."""
        self._collect_all()
        deadline = time.monotonic() + RETRY_MAX * 6
        while self._writes and time.monotonic() < deadline:
            self._retry_at = 0.0
            again = self.flush()
            if self._writes:
                time.sleep(min(again or RETRY_FIRST, RETRY_MAX))
        if self._writes:
            log.error("exiting with %d store writes not written: %s", len(self._writes),
                      self.write_error)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for server in list(self.servers):
            self._stop_server(server)
        self.db.close()
