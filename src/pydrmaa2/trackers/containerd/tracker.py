"""The ContainerdTracker: jobs as containerd containers and their tasks, submitted, looked at,
controlled and reaped over containerd's gRPC API (``api``), every call through the one error
boundary (``tables.rpc_errors``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ...database import private_dir
from ...errors import (
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
    UnsupportedAttributeError,
)
from ...info import JobInfo, MachineInfo
from ...states import Capability, JobState
from ...templates import JobTemplate
from ..base import Action, ChangeFeed, Contact, JobTracker
from ..common import HOSTNAME, check_writable, exit_signal, local_machine, owner, timestamp
from ..containers.staging import stage_out_pairs
from . import api, rootfs, spec
from .api import TaskStatus
from .events import Subscription
from .records import COLUMNS, Row, open_records
from .spec import Image
from .tables import TASK_CALLS, job_state, rpc_errors

__all__ = ["ContainerdTracker", "DEFAULT_SOCKET", "DEFAULT_NAMESPACE", "DEFAULT_SNAPSHOTTER",
           "DEFAULT_RUNTIME", "GRACE_PERIOD", "LABEL"]

log = logging.getLogger("pydrmaa2.containerd")

DEFAULT_SOCKET = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "pydrmaa2"
DEFAULT_SNAPSHOTTER = "overlayfs"
DEFAULT_RUNTIME = "io.containerd.runc.v2"
#: Seconds between SIGTERM and SIGKILL when a job is terminated.
GRACE_PERIOD = 5.0
#: How long a lease may protect a half-created container's snapshot if we die mid-submit.
LEASE_EXPIRY = dt.timedelta(hours=1)
#: The prefix of the labels that make our containers recognisable.
LABEL = "org.pydrmaa2."


def _host_path(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


class ContainerdTracker(JobTracker):
    """Jobs as containerd containers and tasks, over containerd's gRPC API."""

    scheme = "containerd"
    contact_options = frozenset({"namespace", "snapshotter", "runtime"})
    supported_fields = frozenset({
        "remote_command", "args", "submit_as_hold", "job_environment", "working_directory",
        "job_category", "job_name", "input_path", "output_path", "error_path", "join_files",
        "candidate_machines", "stage_in_files", "stage_out_files", "resource_limits",
        "min_phys_memory", "extensions",
    })
    capabilities = frozenset({Capability.JOB_ARRAYS, Capability.BULK_JOBS_MAXPARALLEL,
                              Capability.CALLBACK, Capability.JT_STAGING})
    native_hold = True
    #: A container's create and start are blocking calls to the engine: an array's tasks are
    #: started several at once (the client is thread-safe).
    submit_concurrency = 8
    host_working_directory = False  # a path inside the container

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        #: Our containers carry this label value: the home, spelled the same by every program.
        self.home_label = str(Path(home).resolve())
        if contact.host:
            target = f"{contact.host}:{contact.port}" if contact.port else contact.host
        else:
            target = f"unix://{contact.path or DEFAULT_SOCKET}"
        #: Where containerd is, as error messages name it.
        self.address = target
        self.namespace = contact.options.get("namespace", DEFAULT_NAMESPACE)
        self.snapshotter = contact.options.get("snapshotter", DEFAULT_SNAPSHOTTER)
        self.runtime = contact.options.get("runtime", DEFAULT_RUNTIME)
        self.client = api.ReconnectingClient(target, self.namespace)
        self.db = open_records(home / "containerd.sqlite")
        #: Lock files of jobs whose files are being staged out (see _end_lock).
        self.locks = Path(home) / "containerd.stage-out"
        self._images: dict[str, Image] = {}
        self._events: Subscription | None = None
        self._events_lock = threading.Lock()
        self.version = ""

    # -- calls to containerd ----------------------------------------------------------------------
    def _call(self, method: str, what: str, not_found: type[Drmaa2Error] = InvalidArgumentError,
              timeout: float | None = api.DEFAULT_TIMEOUT, lease: str | None = None,
              **fields: Any) -> api.Msg:
        """One unary call: ``method`` ("tasks.Start") with a request built from ``fields``."""
        _, request_type, _ = api.METHODS[method]
        request = api.msg(request_type, **fields) if request_type else None
        with rpc_errors(what, self.address, not_found):
            return self.client.call(method, request, timeout=timeout, lease=lease)

    def _quiet(self, method: str, **fields: Any) -> bool:
        """A clean-up call whose NOT_FOUND is fine; True when it did something."""
        try:
            self._call(method, method, **fields)
        except InvalidArgumentError:
            return False
        return True

    # -- set-up -----------------------------------------------------------------------------------
    def check(self) -> None:
        r = self._call("version.Version", "asking containerd its version", timeout=10)
        self.version = r.version

    def validate(self, template: JobTemplate) -> None:
        super().validate(template)
        spec.check_template(template, self.namespace)
        stage_out_pairs(template)  # DRMAA2's direction, as on Docker, Podman and processes
        if template.stage_out_files and os.geteuid() != 0:
            raise UnsupportedAttributeError(
                "JobTemplate.stage_out_files: the containerd tracker copies them from the "
                "container's snapshot, which it mounts; that needs root")

    # -- images -----------------------------------------------------------------------------------
    def _image(self, name: str) -> Image:
        """The image ``name`` of the namespace (normalised first, then as given); never pulled."""
        candidates = list(dict.fromkeys([spec.normalize_image(name), name]))
        found = None
        for candidate in candidates:
            try:
                found = self._call("images.Get", f"looking up image {candidate!r}",
                                   name=candidate).image
                break
            except InvalidArgumentError:
                continue
        if found is None:
            raise InvalidArgumentError(
                f"image {name!r} is not present in containerd namespace {self.namespace!r} at "
                f"{self.address} (looked for {' and '.join(map(repr, candidates))}); pydrmaa2 "
                f"does not pull images: pull or import it first, e.g. "
                f"'ctr -n {self.namespace} images pull {candidates[0]}'")
        cached = self._images.get(found.name)
        if cached is not None and cached.digest == found.target.digest:
            return cached
        image = spec.read_image(found.name, found.target.digest, found.target.media_type,
                                self._blob)
        self._images[found.name] = image
        return image

    def _blob(self, digest: str, what: str) -> dict[str, Any]:
        with rpc_errors(what, self.address):
            blob: dict[str, Any] = json.loads(self.client.read_blob(digest))
            return blob

    def job_categories(self) -> list[str]:
        r = self._call("images.List", "listing images")
        return sorted(i.name for i in r.images)

    # -- submission -------------------------------------------------------------------------------
    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        image = self._image(template.job_category or "")
        argv = spec.command(template, image)
        stdin, stdout, stderr = self._stdio(template)
        binds = spec.bind_mounts(template)
        stage_out = stage_out_pairs(template)
        cid = f"pydrmaa2-{job_id}-{secrets.token_hex(3)}"
        with self.db.transaction() as db:
            db.execute("INSERT INTO containers(cid, held, submitted, stage_out) VALUES (?,?,?,?)",
                       (cid, int(hold), time.time(), json.dumps(stage_out) if stage_out else None))
        made: list[str] = []
        try:
            mounts = self._create_container(cid, job_id, template, task_index, image, argv, binds,
                                            made)
            for path in {p for p in (stdout, stderr) if p != os.devnull}:
                open(path, "w").close()  # noqa: SIM115 - truncate; the shim appends
            try:
                self._call("tasks.Create", f"creating the task of container {cid}",
                           container_id=cid, rootfs=api.mounts(mounts), stdin=stdin or "",
                           stdout=stdout, stderr=stderr)
            except ImplementationSpecificError as e:
                if "OCI runtime create failed" not in str(e):
                    raise
                # runc checks the command, the working directory and the mounts here.
                raise InvalidArgumentError(
                    f"cannot run {' '.join(argv)!r} in image {image.name!r}: {e}") from None
            made.append("task")
            if not hold:
                self._start(cid)
        except BaseException:
            self._remove(cid, made)
            raise
        return cid

    def _stdio(self, template: JobTemplate) -> tuple[str | None, str, str]:
        """Host paths of the task's stdin, stdout and stderr; checked before anything exists."""
        stdin = _host_path(template.input_path)
        if stdin is not None and not (os.path.isfile(stdin) and os.access(stdin, os.R_OK)):
            raise InvalidArgumentError(f"JobTemplate.input_path {stdin!r} is not a readable file")
        stdout = _host_path(template.output_path) or os.devnull
        stderr = stdout if template.join_files else _host_path(template.error_path) or os.devnull
        check_writable(stdout, "output_path")
        check_writable(stderr, "error_path")
        if stderr == stdout != os.devnull:
            # containerd 1.6's shim shares one descriptor between equal stdout and stderr paths
            # and closes it when stdout ends, losing stderr's last writes; spelled differently,
            # the file is opened twice, both in append mode.
            stderr = os.path.join(os.path.dirname(stdout), ".", os.path.basename(stdout))
        return stdin, stdout, stderr

    def _create_container(self, cid: str, job_id: str, template: JobTemplate,
                          task_index: int | None, image: Image, argv: list[str],
                          binds: list[dict[str, Any]], made: list[str]) -> list[api.Msg]:
        """The snapshot and the container (under a lease so no GC takes the snapshot between)."""
        expire = (dt.datetime.now(dt.timezone.utc) + LEASE_EXPIRY).strftime("%Y-%m-%dT%H:%M:%SZ")
        lease = self._call("leases.Create", "creating a lease",
                           labels={"containerd.io/gc.expire": expire}).lease.id
        try:
            try:
                mounts = self._call(
                    "snapshots.Prepare", f"preparing the snapshot of container {cid}",
                    lease=lease, snapshotter=self.snapshotter, key=cid,
                    parent=image.chain_id).mounts
            except InvalidArgumentError as e:
                raise InvalidArgumentError(
                    f"image {image.name!r} is not unpacked for snapshotter {self.snapshotter!r} "
                    f"in namespace {self.namespace!r} ({e}); unpack it first, e.g. 'ctr -n "
                    f"{self.namespace} images unpack --snapshotter {self.snapshotter} "
                    f"{image.name}'") from None
            made.append("snapshot")
            oci = spec.runtime_spec(cid, job_id, template, task_index, image, argv, binds, mounts,
                                    self.namespace)
            labels = {f"{LABEL}job-id": job_id, f"{LABEL}home": self.home_label,
                      f"{LABEL}owner": owner(),
                      f"{LABEL}submission-machine": HOSTNAME,
                      f"{LABEL}command": " ".join(argv)[:3000]}
            if template.job_name:
                labels[f"{LABEL}job-name"] = template.job_name[:1000]
            container = api.msg(
                "containerd.services.containers.v1.Container", id=cid, labels=labels,
                image=image.name, snapshotter=self.snapshotter, snapshot_key=cid,
                runtime=api.msg("containerd.services.containers.v1.ContainerRuntime",
                                name=self.runtime))
            container.spec.type_url = api.SPEC_TYPE_URL
            container.spec.value = json.dumps(oci).encode()
            self._call("containers.Create", f"creating container {cid}", lease=lease,
                       container=container)
            made.append("container")
        finally:
            with contextlib.suppress(Drmaa2Error):
                self._call("leases.Delete", "deleting a lease", id=lease)
        return list(mounts)

    def _start(self, cid: str) -> None:
        # Before Start: a fast job may end before Start returns, and finish >= dispatch.
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET started=? WHERE cid=?", (time.time(), cid))
        try:
            self._call(TASK_CALLS[Action.RELEASE], f"starting the task of container {cid}",
                       InvalidStateError, container_id=cid)
        except Drmaa2Error:
            with self.db.transaction() as db:
                db.execute("UPDATE containers SET started=NULL WHERE cid=?", (cid,))
            raise

    def _discard_task(self, cid: str) -> None:
        """Delete a task that may still be alive (created, never started): killed first, since
        the shim waits up to 2 s for a live task's output before it deletes it."""
        with contextlib.suppress(Drmaa2Error):
            self._call("tasks.Kill", "kill", container_id=cid, signal=int(signal.SIGKILL),
                       all=True)
            self._call("tasks.Wait", "wait", timeout=GRACE_PERIOD, container_id=cid)
        self._quiet("tasks.Delete", container_id=cid)

    def _remove(self, cid: str, made: Sequence[str] = ("task", "container", "snapshot")) -> None:
        """Delete what exists of a job in containerd, and its row; quiet about what is gone."""
        with contextlib.suppress(Drmaa2Error):
            if "task" in made:
                self._discard_task(cid)
            if "container" in made:
                self._quiet("containers.Delete", id=cid)
            if "snapshot" in made:
                self._quiet("snapshots.Remove", snapshotter=self.snapshotter, key=cid)
        with self.db.transaction() as db:
            db.execute("DELETE FROM containers WHERE cid=?", (cid,))

    # -- state ------------------------------------------------------------------------------------
    def _row(self, cid: str) -> Row | None:
        rows = self.db.query(f"SELECT {COLUMNS} FROM containers WHERE cid=?", (cid,))
        return Row(*rows[0]) if rows else None

    def _task(self, cid: str) -> api.Msg | None:
        """The task of container ``cid`` (a containerd Process), or None when it has none."""
        try:
            return self._call("tasks.Get", f"looking up the task of container {cid}",
                              container_id=cid).process
        except InvalidArgumentError:
            return None

    def _tasks(self) -> dict[str, api.Msg]:
        """Every task of the namespace by container id (a task's id is its container's)."""
        r = self._call("tasks.List", "listing tasks")
        return {t.id or t.container_id: t for t in r.tasks}

    def _cpu_times(self, cid: str | None = None) -> dict[str, float]:
        """CPU seconds of the task of ``cid`` (None: of every task) by container id, from the
        cgroup metrics of Tasks.Metrics; a task whose metrics cannot be read is left out."""
        filters = [f"id=={json.dumps(cid)}"] if cid is not None else []
        try:
            r = self._call("tasks.Metrics", "reading task metrics", filters=filters)
        except Drmaa2Error as e:
            log.debug("no metrics for %s: %s", cid or "the tasks", e)
            return {}
        out = {}
        for m in r.metrics:
            seconds = api.cpu_seconds(m.data)
            if seconds is not None:
                out[m.id] = seconds
        return out

    def _state(self, cid: str, row: Row | None, task: api.Msg | None) -> tuple[JobState, str]:
        """The job's state from its task (see tables.STATES); a stopped task of ours is
        recorded and deleted (see _finish)."""
        if row is not None and row.finished is not None:
            return self._terminal(row)
        if task is None:
            return self._without_task(cid, row)
        status = TaskStatus.of(task.status)
        if status is TaskStatus.STOPPED and row is not None:
            return self._finish(cid, task.exit_status,
                                api.seconds(task.exited_at))
        state = job_state(status, task.exit_status,
                          row is not None and row.held)
        return state, "created, held" if state is JobState.QUEUED_HELD else status.name.lower()

    @staticmethod
    def _terminal(row: Row) -> tuple[JobState, str]:
        # As the process tracker: DONE is exit status 0 with nothing to note (a stage-out that
        # failed, a termination).
        ok = row.exit_status == 0 and not row.terminated and row.annotation is None
        return (JobState.DONE if ok else JobState.FAILED), row.sub_state or "stopped"

    def _without_task(self, cid: str, row: Row | None) -> tuple[JobState, str]:
        if row is None:
            return JobState.UNDETERMINED, "not a job of this pydrmaa2 home"
        again = self._row(cid)  # another process may have just recorded the end
        if again is not None and again.finished is not None:
            return self._terminal(again)
        if again is not None and again.exited is not None:
            return self._complete(cid)  # its task was deleted: what is left is the stage-out
        if row.started is None:
            return (JobState.QUEUED_HELD if row.held else JobState.QUEUED), "no task yet"
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET finished=?, sub_state=?, annotation=? "
                       "WHERE cid=? AND finished IS NULL",
                       (time.time(), "task lost", "the task was deleted outside pydrmaa2 before "
                        "its end was seen; its exit status is unknown", cid))
        return JobState.FAILED, "task lost"

    def _finish(self, cid: str, exit_status: int, exited_at: float | None) -> tuple[JobState, str]:
        """Keep the end of a stopped task (exit status and time, its CPU time), then delete the
        task: the shim finishes writing the output files before it answers, and containerd
        would forget the exit status anyway. Then _complete (stage-out) makes the job ended."""
        sig = exit_signal(exit_status)
        sub = "stopped" if sig is None else f"stopped, killed by {sig}"
        cpu = self._cpu_times(cid).get(cid)  # the cgroup goes with the task
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET exited=COALESCE(exited, ?), exit_status=?, "
                       "sub_state=?, cpu_time=COALESCE(?, cpu_time) "
                       "WHERE cid=? AND finished IS NULL",
                       (exited_at or time.time(), exit_status, sub, cpu, cid))
        for attempt in (1, 2):
            try:
                self._call("tasks.Delete", f"deleting the stopped task of container {cid}",
                           container_id=cid)
                break
            except (InvalidArgumentError, InvalidStateError):
                break  # already deleted
            except DrmCommunicationError:
                # containerd went away: the task (and its exit status) stays with the shim, and
                # the output may not be complete before the delete. The job ends at a later
                # look, when the delete can be done.
                raise
            except ImplementationSpecificError:
                # Under load the shim may close its ttrpc connection as the task is deleted
                # ("ttrpc: closed"): the exit is recorded above; look once more, then go on.
                if attempt == 2:
                    log.warning("could not delete the stopped task of container %s", cid)
        return self._complete(cid)

    def _complete(self, cid: str) -> tuple[JobState, str]:
        """Copy the stage-out files of a job whose task has exited, then mark the job ended
        (``finished``): from then on it is terminal to everyone, with its files in place. A
        copy that fails makes the job FAILED, the reason in its annotation (as on the process
        tracker). containerd gone away raises DrmCommunicationError: a later look copies."""
        rows = self.db.query("SELECT stage_out FROM containers WHERE cid=? AND finished IS NULL",
                             (cid,))
        pairs = json.loads(rows[0][0]) if rows and rows[0][0] else []
        if pairs:
            with self._end_lock(cid):
                row = self._row(cid)
                if row is not None and row.finished is None:
                    self._mark_ended(cid, self._stage_out(cid, pairs))
        elif rows:
            self._mark_ended(cid, None)
        row = self._row(cid)
        return self._terminal(row) if row else (JobState.FAILED, "stopped")

    def _mark_ended(self, cid: str, failure: str | None) -> None:
        with self.db.transaction() as db:
            rows = db.execute("SELECT terminated, annotation FROM containers "
                              "WHERE cid=? AND finished IS NULL", (cid,)).fetchall()
            if not rows:
                return  # another program ended it
            notes = ["terminated" if rows[0][0] else rows[0][1], failure]
            db.execute("UPDATE containers SET finished=COALESCE(exited, ?), annotation=? "
                       "WHERE cid=?", (time.time(), "; ".join(n for n in notes if n) or None, cid))

    @contextlib.contextmanager
    def _end_lock(self, cid: str) -> Iterator[None]:
        """Held while a job's files are staged out: one program copies them, the others wait
        for it and find the job ended. The kernel drops the lock of a program that dies."""
        private_dir(self.locks)
        fd = os.open(self.locks / cid, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _stage_out(self, cid: str, pairs: Sequence[Sequence[str]]) -> str | None:
        """Copy each (host path, container path) out of the container's snapshot, mounted
        read-only, all of them even after a failure; the failures in words (None: all copied)."""
        what = f"mounting the snapshot of container {cid} for its stage-out"
        try:
            container = self._call("containers.Get", what, id=cid).container
            mounts = self._call("snapshots.Mounts", what,
                                snapshotter=container.snapshotter or self.snapshotter,
                                key=container.snapshot_key or cid).mounts
        except DrmCommunicationError:
            raise
        except Drmaa2Error as e:
            return f"stage-out from container {cid} failed: {e}"
        return rootfs.stage_out(mounts, pairs, cid)

    def state(self, tracker_id: str) -> tuple[JobState, str]:
        row = self._row(tracker_id)
        if row is not None and row.finished is not None:
            return self._terminal(row)
        return self._state(tracker_id, row, self._task(tracker_id))

    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        ids = list(tracker_ids)
        rows: dict[str, Row] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for r in self.db.query(
                    f"SELECT {COLUMNS} FROM containers WHERE cid IN "
                    f"({','.join('?' * len(chunk))})", chunk):
                rows[r[0]] = Row(*r)
        out = {t: self._terminal(rows[t]) for t in ids
               if t in rows and rows[t].finished is not None}
        live = [t for t in ids if t not in out]
        if len(live) == 1:
            out[live[0]] = self._state(live[0], rows.get(live[0]), self._task(live[0]))
        elif live:
            tasks = self._tasks()
            for t in live:
                out[t] = self._state(t, rows.get(t), tasks.get(t))
        return out

    def info(self, tracker_id: str) -> JobInfo:
        cid = tracker_id
        row = self._row(cid)
        task = None if row is not None and row.finished is not None else self._task(cid)
        state, sub = self._state(cid, row, task)
        row = self._row(cid)
        try:
            container = self._call("containers.Get", f"looking up container {cid}",
                                   id=cid).container
        except InvalidArgumentError:
            container = None
        if row is not None and row.finished is not None:
            cpu = row.cpu_time
        else:
            cpu = self._cpu_times(cid).get(cid) if task is not None else None
        return self._info(cid, state, sub, row, task, container, cpu)

    def _info(self, cid: str, state: JobState, sub: str, row: Row | None, task: api.Msg | None,
              container: api.Msg | None, cpu: float | None) -> JobInfo:
        """``cpu``: CPU seconds of the job's task (its cgroup's usage), None when unknown."""
        labels = dict(container.labels) if container is not None else {}
        ext = {"container_id": cid, "namespace": self.namespace}
        if container is not None:
            ext["image"] = container.image
            ext["snapshotter"] = container.snapshotter
            ext["runtime"] = container.runtime.name
            with contextlib.suppress(ValueError, AttributeError):
                oci = json.loads(container.spec.value)
                ext["hostname"] = oci.get("hostname", "")
                ext["working_dir"] = oci["process"].get("cwd", "")
        if labels.get(f"{LABEL}command"):
            ext["command_line"] = labels[f"{LABEL}command"]
        if task is not None and task.pid:
            ext["pid"] = str(task.pid)
        submitted = api.seconds(container.created_at) if container is not None else None
        started = finished = exit_status = None
        annotation = None
        if row is not None:
            submitted = submitted or row.submitted
            started, finished, exit_status, annotation = (row.started, row.finished,
                                                          row.exit_status, row.annotation)
        elif task is not None and TaskStatus.of(task.status) is TaskStatus.STOPPED:
            exit_status = task.exit_status
            finished = api.seconds(task.exited_at)
        end = finished or (time.time() if started else None)
        return JobInfo(
            job_name=labels.get(f"{LABEL}job-name"), exit_status=exit_status,
            terminating_signal=exit_signal(exit_status), annotation=annotation,
            state=state, sub_state=sub, allocated_machines=[HOSTNAME],
            submission_machine=labels.get(f"{LABEL}submission-machine", HOSTNAME),
            job_owner=labels.get(f"{LABEL}owner"), slots=1,
            wallclock_time=(dt.timedelta(seconds=max(0.0, end - started))
                            if started and end else None),
            cpu_time=None if cpu is None else dt.timedelta(seconds=cpu),
            submission_time=timestamp(submitted), dispatch_time=timestamp(started),
            finish_time=timestamp(finished), extensions=ext)

    # -- control ----------------------------------------------------------------------------------
    def control(self, tracker_id: str, action: Action) -> None:
        cid = tracker_id
        task = self._task(cid)
        status = None if task is None else TaskStatus.of(task.status)
        if action is Action.HOLD:
            self._hold(cid, status)
        elif action is Action.RELEASE:
            self._release(cid, status)
        elif task is None or status is TaskStatus.STOPPED:
            raise InvalidStateError(f"container {cid}: the job has ended; it cannot be "
                                    f"{action.value}d")
        elif action is Action.TERMINATE:
            self._terminate(cid, task, status or TaskStatus.UNKNOWN)
        else:
            self._call(TASK_CALLS[action], f"{action.value} of container {cid}",
                       InvalidStateError, container_id=cid)

    def _hold(self, cid: str, status: TaskStatus | None) -> None:
        """Hold calls nothing: a created task that has not started is kept from starting."""
        row = self._row(cid)
        if status is TaskStatus.CREATED and row is not None and row.started is None:
            with self.db.transaction() as db:
                db.execute("UPDATE containers SET held=1 WHERE cid=?", (cid,))
            return
        raise InvalidStateError(
            f"container {cid}: its task is {(status.name if status else 'gone').lower()}; only "
            "a job whose task has not started can be held")

    def _release(self, cid: str, status: TaskStatus | None) -> None:
        with self.db.transaction() as db:
            released = db.execute("UPDATE containers SET held=0 WHERE cid=? AND held=1",
                                  (cid,)).rowcount
        if not released or status is not TaskStatus.CREATED:
            raise InvalidStateError(f"container {cid}: the job is not held")
        self._start(cid)

    def _terminate(self, cid: str, task: api.Msg, status: TaskStatus) -> None:
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET terminated=1 WHERE cid=?", (cid,))
        if status is TaskStatus.CREATED:
            # Never started: it ends without running (and without an exit status).
            with self.db.transaction() as db:
                db.execute("UPDATE containers SET finished=?, sub_state=?, annotation=? "
                           "WHERE cid=? AND finished IS NULL",
                           (time.time(), "deleted before start", "terminated before it started",
                            cid))
            self._discard_task(cid)
            return
        what, kill = f"terminating container {cid}", TASK_CALLS[Action.TERMINATE]
        if self._sigterm_is_lost(cid, getattr(task, "pid", 0)):
            self._call(kill, what, InvalidStateError, container_id=cid,
                       signal=int(signal.SIGKILL), all=True)
        else:
            self._call(kill, what, InvalidStateError, container_id=cid,
                       signal=int(signal.SIGTERM), all=True)
            if status in (TaskStatus.PAUSED, TaskStatus.PAUSING):
                with contextlib.suppress(Drmaa2Error):  # a frozen job gets its signal on thaw
                    self._call(TASK_CALLS[Action.RESUME], what, container_id=cid)
            try:
                self._call("tasks.Wait", what, timeout=GRACE_PERIOD, container_id=cid)
                return
            except DrmCommunicationError:
                pass  # the grace period is over
            self._call(kill, what, InvalidStateError, container_id=cid,
                       signal=int(signal.SIGKILL), all=True)
        if status in (TaskStatus.PAUSED, TaskStatus.PAUSING):
            with contextlib.suppress(Drmaa2Error):
                self._call(TASK_CALLS[Action.RESUME], what, container_id=cid)

    def _sigterm_is_lost(self, cid: str, pid: int) -> bool:
        """True when no process of the task can act on SIGTERM: the task is its init process
        alone, with no handler for it (the kernel drops such signals to a PID namespace's init).
        Then SIGKILL goes at once instead of after the grace period."""
        try:
            pids = self._call("tasks.ListPids", f"listing the processes of container {cid}",
                              InvalidStateError, container_id=cid).processes
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            caught = int(fields["SigCgt"].strip(), 16)
        except (Drmaa2Error, OSError, KeyError, ValueError):
            return False  # not on this host, or gone: use the grace period
        return len(pids) == 1 and not caught & (1 << (signal.SIGTERM - 1))

    # -- events -----------------------------------------------------------------------------------
    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        with self._events_lock:
            if self._events is None or self._events.failed is not None:
                if self._events is not None:
                    self._events.close()
                    if isinstance(self._events.failed, DrmCommunicationError) and \
                            self.client.answers():
                        self.client.renew()  # containerd is back: not the channel in backoff
                self._events = Subscription(self.client)
            return self._events.feed(tracker_ids)

    # -- reap -------------------------------------------------------------------------------------
    def delete(self, tracker_id: str) -> None:
        cid = tracker_id
        row = self._row(cid)
        if row is None:
            raise InvalidArgumentError(f"container {cid} is not a job of this pydrmaa2 home")
        if row.finished is None:
            state, sub = self._state(cid, row, self._task(cid))  # records its end
            if not state.is_terminal:
                raise InvalidStateError(
                    f"container {cid}: its task is {sub}; only an ended job can be reaped")
        try:
            key = self._call("containers.Get", f"looking up container {cid}",
                             id=cid).container.snapshot_key or cid
        except InvalidArgumentError:
            key = cid
        self._discard_task(cid)
        self._quiet("containers.Delete", id=cid)
        self._quiet("snapshots.Remove", snapshotter=self.snapshotter, key=key)
        with self.db.transaction() as db:
            db.execute("DELETE FROM containers WHERE cid=?", (cid,))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.locks / cid)

    def list_jobs(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT cid FROM containers ORDER BY rowid")]

    def find_job(self, job_id: str) -> str | None:
        """The container of this store labelled with pydrmaa2 job id ``job_id``, or None. One
        with no row here is what an interrupted submission left (its submitter dropped the
        row but could not remove it, containerd being away): removed now, as it would have
        been, so that the job is submitted again rather than adopted untracked."""
        containers = self._call("containers.List", "listing containers").containers
        for c in containers:
            if (c.labels.get(f"{LABEL}job-id") == job_id
                    and c.labels.get(f"{LABEL}home") == self.home_label):
                cid: str = c.id
                if self._row(cid) is not None:
                    return cid
                # (not _remove, which is quiet: a container it could not remove is not gone)
                self._discard_task(cid)
                self._quiet("containers.Delete", id=cid)
                self._quiet("snapshots.Remove", snapshotter=self.snapshotter, key=cid)
        return None

    # -- monitoring -------------------------------------------------------------------------------
    def monitor_jobs(self) -> list[JobInfo]:
        """Every container of the namespace, whoever made it (without touching their tasks)."""
        containers = self._call("containers.List", "listing containers").containers
        tasks = self._tasks()
        cpu_times = self._cpu_times()
        out = []
        for c in containers:
            row = self._row(c.id)
            task = tasks.get(c.id)
            if row is not None and row.finished is not None:
                state, sub = self._terminal(row)
            elif task is None:
                state, sub = (JobState.QUEUED, "no task") if row is None else \
                    self._without_task(c.id, row)
                row = self._row(c.id)  # it may have ended just now
            else:
                status = TaskStatus.of(task.status)
                state = job_state(status, task.exit_status, row is not None and row.held)
                sub = status.name.lower()
            cpu = row.cpu_time if row is not None and row.finished is not None else cpu_times.get(c.id)
            info = self._info(c.id, state, sub, row, task, c, cpu)
            info.id = c.id
            out.append(info)
        return out

    def machines(self) -> list[MachineInfo]:
        machine = local_machine()
        machine.extensions["containerd_version"] = self.version
        return [machine]

    def close(self) -> None:
        with self._events_lock:
            if self._events is not None:
                self._events.close()
                self._events = None
        self.client.close()


