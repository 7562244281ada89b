"""The Docker tracker (contact ``docker``): every job is a container of a Docker engine, on the
Docker SDK for Python. The engine's tables (STATES, CONTROL, ERRORS: drmaa2os's Docker tracker
mapping, its README), then the one boundary where the engine's errors become Drmaa2Errors, then
the tracker; waits follow the engine's event stream (``_EventHub``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, cast

import docker
import docker.errors
import docker.utils
import requests.exceptions
import urllib3.exceptions

from ..errors import (
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
    OutOfResourceError,
)
from ..info import JobInfo, MachineInfo, QueueInfo, Version
from ..states import CPU, OS, JobState
from ..templates import JobTemplate
from .base import Action, ChangeFeed, Contact
from .common import HOSTNAME
from .containers import (
    LABELS,
    ChunkReader,
    ContainerSpec,
    ContainerTracker,
    EngineErrors,
    LocalFiles,
    container_spec,
    engine_error,
    extract_archive,
    feed_stdin,
    job_labels,
    local_files,
)
from .containers.errors import HTTP_STATUSES

__all__ = ["CONTROL", "ERRORS", "STATES", "DockerTracker"]

log = logging.getLogger("pydrmaa2.docker")

# -- the engine's tables ------------------------------------------------------------------------------

#: Docker's status word -> DRMAA2 state. ``None``: by exit code (DONE for 0, else FAILED;
#: OOMKilled is always FAILED). Any other word is UNDETERMINED.
STATES: dict[str, JobState | None] = {
    "created": JobState.QUEUED,
    "restarting": JobState.QUEUED,
    "running": JobState.RUNNING,
    "paused": JobState.SUSPENDED,
    "exited": None,
    "dead": None,
}
#: A created container has not started: pydrmaa2 can hold it (QUEUED_HELD) until released.
NOT_STARTED = frozenset({"created"})

#: DRMAA2 job control -> the engine's call on the container (docker-py's APIClient method for
#: POST /containers/{id}/NAME). pause/unpause are the cgroup freezer, which a job cannot catch
#: or see (not rootless on cgroup v1); kill sends SIGKILL. HOLD needs no call: a held
#: container stays created until RELEASE starts it.
CONTROL: dict[Action, str] = {
    Action.SUSPEND: "pause",
    Action.RESUME: "unpause",
    Action.TERMINATE: "kill",
    Action.RELEASE: "start",
}

#: The engine's error answers -> Drmaa2Errors: the HTTP status (``HTTP_STATUSES``), else words
#: of its explanation (the first that matches); any other answer is ImplementationSpecificError,
#: or the class the call gives (a start that fails: InvalidArgumentError). An answer saying that
#: the engine cannot act now (``containers.errors.outage``) is DrmCommunicationError before these.
ERRORS: EngineErrors = {
    **HTTP_STATUSES,
    "no space left": OutOfResourceError,
}
#: What the client raises when the engine is away (down, restarting, a connection or stream cut
#: short), whatever layer notices: all of it is DrmCommunicationError. APIError (an answer) is
#: told apart before these.
UNREACHABLE: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
    docker.errors.DockerException, ConnectionError, TimeoutError, FileNotFoundError)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"

#: Engine events that can change a watched job's state ("update" is our announcement of a
#: change that Docker does not announce: hold, or a terminate before the container started).
WATCHED_EVENTS = ("start", "die", "pause", "unpause", "restart", "destroy", "update")
#: Docker announces these before it records the new state for listings; inspecting the
#: container waits for the record (it takes the container's lock), so a waiter never looks early.
SETTLE_EVENTS = frozenset({"die", "pause", "unpause"})
#: A subscription starts this many seconds in the past: Docker lists a container as running for
#: a moment after announcing its end, so an end announced just before we subscribed must still
#: be settled (see SETTLE_EVENTS) and heard.
REPLAY_SECONDS = 1.0
#: Above this many ids a listing filters by our home label instead of by id (and picks the ids
#: out here): long URLs cost more to build and parse than the extra entries.
MAX_ID_FILTER = 16
#: Threads that start array tasks' containers in the background (see submit).
START_WORKERS = 8
#: Threads that settle ends side by side (each waits for the engine to record an exit).
SETTLE_WORKERS = 4
#: Connections per client: the event subscription holds one, starts and settles run side by side.
POOL_SIZE = 32
#: Seconds between looks for containers the engine lists as running after their end (see
#: DockerTracker._check_running).
STALE_CHECK = 10.0


# -- the one boundary -----------------------------------------------------------------------------------


@contextlib.contextmanager
def engine_errors(doing: str, address: str,
                  default: type[Drmaa2Error] = ImplementationSpecificError) -> Iterator[None]:
    """The engine's errors while ``doing`` something as Drmaa2Errors that keep its words and
    ``address``: an answer through ERRORS (``default`` when none matches), no answer at all
    (UNREACHABLE) as DrmCommunicationError."""
    try:
        yield
    except docker.errors.APIError as e:
        explanation = e.explanation or str(e)
        if isinstance(explanation, bytes):
            explanation = explanation.decode(errors="replace")
        raise engine_error(ERRORS, doing, f"Docker engine at {address}", e.status_code,
                           explanation, default=default) from e
    except UNREACHABLE as e:
        raise DrmCommunicationError(
            f"{doing}: cannot reach the Docker engine at {address}: {e}") from e


# -- the engine's side of a job -------------------------------------------------------------------------


def _starter() -> str:
    """This program, as the starter of containers it starts in the background."""
    return f"{HOSTNAME}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _base_url(contact: Contact) -> tuple[str, dict[str, Any]]:
    """The engine's URL and client options: the contact's socket or host, else DOCKER_HOST."""
    if contact.host:
        return f"tcp://{contact.host}:{contact.port or 2375}", {}
    if contact.path:
        return f"unix://{contact.path}", {}
    options = cast("dict[str, Any]", docker.utils.kwargs_from_env())  # a TypedDict; popped below
    return options.pop("base_url", None) or DEFAULT_SOCKET, options


def _create_config(spec: ContainerSpec) -> dict[str, Any]:
    """The body of Docker's POST /containers/create for a spec (only what is set)."""
    host: dict[str, Any] = {"AutoRemove": False}
    config: dict[str, Any] = {
        "Image": spec.image, "Cmd": spec.command, "Labels": spec.labels, "Tty": False,
        "Env": [f"{k}={v}" for k, v in spec.environment.items()],
        "AttachStdin": spec.stdin, "OpenStdin": spec.stdin, "StdinOnce": spec.stdin,
        "AttachStdout": False, "AttachStderr": False, "HostConfig": host,
    }
    for key, value in (("WorkingDir", spec.working_dir), ("Hostname", spec.hostname),
                       ("User", spec.user)):
        if value:
            config[key] = value
    if spec.ports:
        config["ExposedPorts"] = {f"{p.container_port}/{p.protocol}": {} for p in spec.ports}
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in spec.ports:
            bindings.setdefault(f"{p.container_port}/{p.protocol}", []).append(
                {"HostIp": p.host_ip or "", "HostPort": "" if p.host_port is None else str(p.host_port)})
        host["PortBindings"] = bindings
    if spec.binds:
        # Structured mounts, never "host:container[:options]" strings: a path may hold ':'
        # (and a container path ending in ':Z' or ':ro' must not become a mount option).
        host["Mounts"] = [{"Type": "bind", "Source": b.host_path, "Target": b.container_path,
                           "ReadOnly": b.read_only} for b in spec.binds]
    if spec.network_mode:
        host["NetworkMode"] = spec.network_mode
    if spec.privileged:
        host["Privileged"] = True
    if spec.restart:
        host["RestartPolicy"] = {"Name": spec.restart.name,
                                 "MaximumRetryCount": spec.restart.maximum_retry_count}
    for key, value in (("IpcMode", spec.ipc_mode), ("UTSMode", spec.uts_mode),
                       ("PidMode", spec.pid_mode)):
        if value:
            host[key] = value
    if spec.gpus is not None:
        host["DeviceRequests"] = [{"Driver": "nvidia", "Count": spec.gpus,
                                   "Capabilities": [["gpu"]]}]
    if spec.shm_size is not None:
        host["ShmSize"] = spec.shm_size
    if spec.ulimits:
        host["Ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits]
    if spec.memory is not None:
        host["Memory"] = spec.memory
        host["MemorySwap"] = spec.memory  # no swap on top of the limit
    if spec.memory_reservation is not None:
        host["MemoryReservation"] = spec.memory_reservation
    if spec.nano_cpus is not None:
        host["NanoCpus"] = spec.nano_cpus
    if spec.pids_limit is not None:
        host["PidsLimit"] = spec.pids_limit
    return config


# -- the tracker ------------------------------------------------------------------------------------------


class DockerTracker(ContainerTracker):
    """Jobs as containers of one Docker engine (contact ``docker``, ``docker:///sock``,
    ``docker://host:port``).

    Array tasks after the first start in background threads, so a throttled array keeps
    max_parallel containers starting side by side; a start whose program died is adopted by the
    next look at its state (``starter`` in the tracker's records).
    """

    scheme = "docker"
    engine_name = "the Docker engine"
    STATES = STATES
    NOT_STARTED = NOT_STARTED

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        self.address, options = _base_url(contact)
        with self._engine("connecting"):
            self.api = docker.APIClient(base_url=self.address, version="auto",
                                        max_pool_size=POOL_SIZE, **options)
        if self.address.startswith("unix://"):
            self.api.trust_env = False  # no HTTP proxy applies to a socket; spares an env scan
        #: Our containers carry this label value: the home, spelled the same by every program.
        self.home_label = str(Path(home).resolve())
        # Inspect records taken by event feeds right after a container ended, for finalize.
        self._seen: dict[str, dict[str, Any]] = {}
        self._seen_lock = threading.Lock()
        self._started_shapes: set[str] = set()
        self._hub = _EventHub(self)
        self._pool: ThreadPoolExecutor | None = None
        #: Containers whose background start is queued or under way in this program.
        self._starting: set[str] = set()
        #: Stale "running" records (see _check_running): the pids of running containers, the
        #: containers the engine was asked to look at again, when to look next.
        self._pids: dict[str, int] = {}
        self._nudged: set[str] = set()
        self._stale_check_at = 0.0

    def _engine(self, doing: str, default: type[Drmaa2Error] = ImplementationSpecificError,
                ) -> contextlib.AbstractContextManager[None]:
        """The boundary (``engine_errors``) for this engine."""
        return engine_errors(doing, self.address, default)

    def _call(self, cid: str, action: Action, doing: str | None = None,
              default: type[Drmaa2Error] = ImplementationSpecificError) -> None:
        """The engine's call for ``action`` (CONTROL) on one container."""
        with self._engine(doing or f"{action.value} of container {cid[:12]}", default):
            getattr(self.api, CONTROL[action])(cid)

    def _missing_image(self, image: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"image {image!r} is not present in the Docker engine at {self.address}; "
            "pydrmaa2 does not pull images: docker pull it first")

    # -- set-up ----------------------------------------------------------------------------------------
    def check(self) -> None:
        with self._engine("checking the engine"):
            self.api.ping()

    def validate(self, template: JobTemplate) -> None:
        super().validate(template)
        image = container_spec(template, engine="Docker").image  # the job category, checked
        try:
            with self._engine(f"looking up image {image!r}"):
                self.api.inspect_image(image)
        except InvalidArgumentError as e:
            if isinstance(e.__cause__, docker.errors.NotFound):
                raise self._missing_image(image) from None
            raise

    # -- jobs ------------------------------------------------------------------------------------------
    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        spec = container_spec(template, engine="Docker", job_id=job_id, task_index=task_index,
                              labels=job_labels(job_id, task_index, self.home_label, template))
        files = local_files(template, spec)
        config = _create_config(spec)
        # Array tasks start in the background once a task of the same shape started here, so a
        # throttled array keeps max_parallel containers starting at once; the first one starts
        # in the foreground so that a template that cannot run fails here.
        shape = json.dumps({k: v for k, v in config.items() if k not in ("Env", "Labels")},
                           sort_keys=True)
        background = task_index is not None and not hold and shape in self._started_shapes
        try:
            with self._engine(f"creating a container of image {spec.image!r}"):
                cid: str = self.api.create_container_from_config(config)["Id"]
        except InvalidArgumentError as e:
            if isinstance(e.__cause__, docker.errors.ImageNotFound):
                raise self._missing_image(spec.image) from None
            raise
        try:
            self.records.add(cid, job_id, hold, spec.remove, files,
                             starter=_starter() if background else None)
            files.create_outputs()
            if background:
                self._start_later(cid, files.input_path)
            elif not hold:
                self.start_container(cid, files.input_path)
                if task_index is not None:
                    self._started_shapes.add(shape)
        except BaseException:
            with contextlib.suppress(Drmaa2Error):  # the engine may be away: the job's error counts
                self.remove_container(cid, force=True)
            self.records.forget(cid)
            raise
        return cid

    def start_container(self, cid: str, input_path: str | None) -> None:
        """Start a created container, feeding input_path to its stdin. A container the engine
        cannot start (its command or user missing) is InvalidArgumentError: the template cannot
        run."""
        attached = None
        try:
            if input_path is not None:
                with self._engine("attaching to the container's stdin"):
                    attached = self.api.attach_socket(cid, params={"stdin": 1, "stream": 1})
            self._call(cid, Action.RELEASE, "starting the job's container", InvalidArgumentError)
        except BaseException:
            if attached is not None:
                with contextlib.suppress(OSError):
                    attached.close()
            raise
        if attached is not None:
            # Not a daemon: a program that submits and exits still delivers the whole input.
            threading.Thread(target=feed_stdin, args=(attached, input_path),
                             name=f"pydrmaa2-stdin-{cid[:12]}").start()

    def _starters(self) -> ThreadPoolExecutor:
        """The tracker's background threads (started on first use; close() waits for them)."""
        with self._seen_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(START_WORKERS, thread_name_prefix="pydrmaa2-start")
            return self._pool

    def _start_later(self, cid: str, input_path: str | None) -> None:
        """Start a container in the background, unless this program is starting it already."""
        with self._seen_lock:
            if cid in self._starting:
                return
            self._starting.add(cid)
        try:
            self._starters().submit(self._start_in_background, cid, input_path)
        except BaseException:
            with self._seen_lock:
                self._starting.discard(cid)
            raise

    def _start_in_background(self, cid: str, input_path: str | None) -> None:
        """Start an array task's container unless it was held or ended meanwhile; a start that
        fails ends the job FAILED with the engine's reason. A start the engine was away for
        leaves the job queued, with this program as its starter: the next look at its state
        after the engine is back starts it (``states``)."""
        try:
            row = self.records.row(cid)
            if row is None or row.held or row.state is not None:
                return
            try:
                self.start_container(cid, input_path)
            except DrmCommunicationError as e:
                log.info("container %s not started yet, the engine is away: %s", cid[:12], e)
                return
            except Drmaa2Error as e:
                self.finalize(cid, None, JobState.FAILED, f"not started: {e}")
                self.announce_change(cid)
                return
            self.records.clear_starter(cid)
            row = self.records.row(cid)
            if row is not None and row.state is not None:  # terminated while it was starting
                with contextlib.suppress(Drmaa2Error):
                    self._call(cid, Action.TERMINATE, "killing a terminated job")
        except Exception:  # noqa: BLE001 - a background thread has nobody to raise to
            log.exception("starting container %s failed", cid[:12])
        finally:
            with self._seen_lock:
                self._starting.discard(cid)

    def _adopt(self, cid: str, starter: str) -> None:
        """Start a container whose background start died with its program (same machine only),
        or failed in this program while the engine was away."""
        if starter == _starter():
            with self._seen_lock:
                if cid in self._starting:
                    return
            row = self.records.row(cid)
            if row is not None and row.starter == starter and not row.held and row.state is None:
                self._start_later(cid, row.files.input_path)
            return
        host, _, pid = starter.rpartition(":")
        if host != HOSTNAME or not pid.isdigit() or _alive(int(pid)):
            return
        claimed = self.records.claim_start(cid, starter, _starter())
        row = self.records.row(cid)
        if claimed and row is not None:
            self._start_later(cid, row.files.input_path)

    # -- the engine's hooks ----------------------------------------------------------------------------
    def inspect_container(self, cid: str) -> dict[str, Any] | None:
        try:
            with self._engine(f"inspecting container {cid[:12]}"):
                record: dict[str, Any] = self.api.inspect_container(cid)
                return record
        except InvalidArgumentError as e:
            if isinstance(e.__cause__, docker.errors.NotFound):
                return None
            raise

    def control_container(self, cid: str, action: Action) -> None:
        self._call(cid, action)

    def remove_container(self, cid: str, force: bool = False) -> None:
        """Remove a container; one that is already gone is fine."""
        try:
            with self._engine(f"removing container {cid[:12]}"):
                self.api.remove_container(cid, force=force)
        except InvalidArgumentError as e:
            if not isinstance(e.__cause__, docker.errors.NotFound):
                raise

    def write_outputs(self, cid: str, files: LocalFiles) -> str | None:
        """Copy the container's log into output_path / error_path; a problem becomes the
        job's annotation (the job has ended; its files are what failed)."""
        streams: list[tuple[str, bool, bool]] = []
        same = files.output_path is not None and files.output_path == files.error_path
        if files.output_path is not None:
            both = files.join_files or same
            streams.append((files.output_path, True, both))
        if files.error_path is not None and not files.join_files and not same:
            streams.append((files.error_path, False, True))
        for path, stdout, stderr in streams:
            try:
                with open(path, "wb") as f, self._engine("reading the container's log"):
                    for chunk in self.api.logs(cid, stdout=stdout, stderr=stderr, stream=True,
                                               follow=False):
                        f.write(chunk)
            except DrmCommunicationError:
                raise  # the engine went away: the end is recorded at a later look
            except (OSError, Drmaa2Error) as e:
                return f"the job's output could not be written to {path}: {e}"
        return None

    def stream_log(self, cid: str, stdout: bool, stderr: bool, follow: bool,
                   tail: int | None) -> Iterator[bytes]:
        with self._engine("reading the container's log"):
            chunks = self.api.logs(cid, stdout=stdout, stderr=stderr, stream=True, follow=follow,
                                   tail="all" if tail is None else tail)
        while True:
            with self._engine("reading the container's log"):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def copy_out(self, cid: str, path: str, destination: str) -> None:
        with self._engine("reading the container's files"):
            chunks, _ = self.api.get_archive(cid, path)
            # A RawIOBase, a binary file for tarfile (typeshed's read may give None: not this one).
            extract_archive(cast("IO[bytes]", ChunkReader(chunks)), destination)

    def announce_change(self, cid: str) -> None:
        """An empty update of the container: the engine emits an "update" event."""
        with contextlib.suppress(Drmaa2Error), self._engine("announcing a change"):
            self.api.update_container(cid)

    def ended_record(self, cid: str) -> dict[str, Any] | None:
        """The record an event feed took right after the container ended (see _settle)."""
        with self._seen_lock:
            cached = self._seen.pop(cid, None)
        return cached if cached is not None and self.has_ended(cached) else None

    def _settle(self, cid: str) -> None:
        """After an event: wait until the engine has recorded the change (see SETTLE_EVENTS)."""
        with contextlib.suppress(Drmaa2Error):
            data = self.inspect_container(cid)
            if data is not None and self.has_ended(data):
                with self._seen_lock:
                    if len(self._seen) > 1000:
                        self._seen.clear()
                    self._seen[cid] = data

    # -- states ----------------------------------------------------------------------------------------
    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        rows, out, live = self.recorded_states(tracker_ids)
        listed: dict[str, str] = {}
        created: dict[str, float] = {}
        if live:
            by = ({"id": live} if len(live) <= MAX_ID_FILTER
                  else {"label": f"{LABELS['home']}={self.home_label}"})
            with self._engine("listing containers"):
                for c in self.api.containers(all=True, filters=by):
                    listed[c["Id"]] = c.get("State") or ""
                    created[c["Id"]] = c.get("Created") or 0
                missing = [cid for cid in live if cid not in listed]
                if missing and "label" in by:  # not labelled as ours: ask for them by id
                    for c in self.api.containers(all=True, filters={"id": missing}):
                        listed[c["Id"]] = c.get("State") or ""
                        created[c["Id"]] = c.get("Created") or 0
        finals = self.finalize_many([
            cid for cid in live
            if listed.get(cid) is None or STATES.get(listed[cid], JobState.UNDETERMINED) is None])
        for cid in live:
            status = listed.get(cid)
            final = finals.get(cid)
            if final is not None:
                out[cid] = final
            elif status is None:
                out[cid] = (JobState.FAILED, "removed")
            else:
                row = rows.get(cid)
                if status == "created" and row is not None and row.starter:
                    self._adopt(cid, row.starter)
                out[cid] = (self.job_state(status, held=row is not None and row.held), status)
        old = time.time() - STALE_CHECK  # younger containers are not looked at yet
        self._check_running([cid for cid in live
                             if listed.get(cid) == "running" and created.get(cid, 0) < old])
        return out

    def _check_running(self, cids: Sequence[str]) -> None:
        """Make dockerd see the end of containers it calls running although no process of
        theirs is left. Dockerd (20.10) misses the exit of a container that ends while
        containerd is down or restarting (the shim's exit event reaches containerd before
        dockerd subscribes again) and reports it running until it restarts. A kill makes it
        look: it finds the task ended and records the true exit status after the container's
        stop timeout (10 s), with a "die" event. Looked for at most every STALE_CHECK seconds,
        and only for an engine on this host, whose pids are ours to see; a pid absent here is
        confirmed by the engine (``top``: no process) before the kill (a harmless SIGCONT)."""
        now = time.monotonic()
        with self._seen_lock:
            if not cids or now < self._stale_check_at or not self.address.startswith("unix://"):
                return
            self._stale_check_at = now + STALE_CHECK
            if len(self._pids) > 10_000:
                self._pids.clear()
        for cid in cids:
            if cid in self._nudged:
                continue
            with contextlib.suppress(InvalidArgumentError, InvalidStateError):
                pid = self._pids.get(cid)
                if pid is None:
                    data = self.inspect_container(cid)
                    if data is None or (data.get("State") or {}).get("Status") != "running":
                        continue
                    pid = self._pids[cid] = int(data["State"].get("Pid") or 0)
                if pid > 0 and os.path.exists(f"/proc/{pid}"):
                    continue
                with self._engine(f"listing the processes of container {cid[:12]}"):
                    if (self.api.top(cid) or {}).get("Processes"):
                        continue  # alive, in a pid namespace other than ours
                log.warning("container %s is running for the Docker engine at %s but has no "
                            "process left: asking it to look again", cid[:12], self.address)
                self._nudged.add(cid)
                with self._engine(f"making the engine look at container {cid[:12]}"):
                    self.api.kill(cid, signal="SIGCONT")


    # -- the engine's views ------------------------------------------------------------------------------
    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        return _EventFeed(self._hub, tracker_ids)

    def find_job(self, job_id: str) -> str | None:
        """The container of this store labelled with pydrmaa2 job id ``job_id``, or None."""
        with self._engine("looking up a job"):
            found = self.api.containers(all=True, filters={"label": [
                f"{LABELS['home']}={self.home_label}", f"{LABELS['job_id']}={job_id}"]})
        return self.adoptable([(c["Id"], c.get("State") or "") for c in found])

    def list_jobs(self) -> list[str]:
        with self._engine("listing containers"):
            found = self.api.containers(
                all=True, filters={"label": f"{LABELS['home']}={self.home_label}"})
        return [c["Id"] for c in found]

    def job_categories(self) -> list[str]:
        with self._engine("listing images"):
            images = self.api.images()
        return sorted({t for i in images for t in (i.get("RepoTags") or []) if t != "<none>:<none>"})

    def monitor_jobs(self) -> list[JobInfo]:
        with self._engine("listing containers"):
            ids = [c["Id"] for c in self.api.containers(all=True)]
        return self.container_infos(ids)

    def machines(self) -> list[MachineInfo]:
        with self._engine("asking the engine about its host"):
            i = self.api.info()
        kernel = (i.get("KernelVersion") or "0.0").split("-")[0].split(".")
        os_type = (i.get("OSType") or "").lower()
        return [MachineInfo(
            name=i.get("Name") or self.address, available=True, sockets=1,
            cores_per_socket=i.get("NCPU"), threads_per_core=1,  # Docker counts logical CPUs
            phys_memory=i.get("MemTotal"),
            machine_os=OS.LINUX if os_type == "linux" else OS.WINNT if os_type == "windows"
            else OS.OTHER_OS,
            machine_os_version=Version(kernel[0], kernel[1] if len(kernel) > 1 else "0"),
            machine_arch=CPU.from_machine(i.get("Architecture") or ""),
            extensions={"cpus": str(i.get("NCPU", "")), "os": i.get("OperatingSystem") or "",
                        "kernel": i.get("KernelVersion") or "",
                        "docker_version": i.get("ServerVersion") or "",
                        "containers_running": str(i.get("ContainersRunning", ""))})]

    def queues(self) -> list[QueueInfo]:
        return []

    def close(self) -> None:
        self._hub.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # containers being started are started
        with contextlib.suppress(Exception):
            self.api.close()


class _EventHub:
    """One subscription to the engine's events about our containers, shared by a tracker's feeds.

    Opened on the first watch and kept while the tracker lives, so a watch costs no request. A
    container's end is settled (see SETTLE_EVENTS) whether or not anyone watches it yet, and
    feeds hear of it only afterwards: a waiter that subscribed during the settle is woken when
    the end is visible, one that subscribed later sees it at its first look.
    """

    def __init__(self, tracker: DockerTracker) -> None:
        self.tracker = tracker
        self.lock = threading.Lock()
        self.feeds: dict[str, set[_EventFeed]] = {}
        self.stream: Any = None
        self.last_event: float | None = None
        self.closed = False
        self.settlers = ThreadPoolExecutor(SETTLE_WORKERS, thread_name_prefix="pydrmaa2-settle")

    def register(self, feed: _EventFeed) -> None:
        with self.lock:
            for cid in feed.ids:
                self.feeds.setdefault(cid, set()).add(feed)
        try:
            self.ensure_open()
        except BaseException:
            self.unregister(feed)
            raise

    def unregister(self, feed: _EventFeed) -> None:
        with self.lock:
            for cid in feed.ids:
                watchers = self.feeds.get(cid)
                if watchers is not None:
                    watchers.discard(feed)
                    if not watchers:
                        del self.feeds[cid]

    def ensure_open(self) -> None:
        """Subscribe unless subscribed; returns once the engine streams (no event is missed)."""
        with self.lock:
            if self.stream is not None or self.closed:
                return
            # Replay a little of the past: what ended just before we subscribed (or while a
            # broken subscription was down) is settled and heard too.
            since = time.time() - REPLAY_SECONDS
            if self.last_event is not None:
                since = min(since, self.last_event)
            with self.tracker._engine("subscribing to the engine's events"):
                # docker-py passes ``since`` on as it is: a str keeps its fraction of a second
                # (its stubs take a datetime or int only).
                self.stream = self.tracker.api.events(  # type: ignore[call-overload]
                    decode=True, since=f"{since:.6f}",
                    filters={"type": "container", "event": list(WATCHED_EVENTS),
                             "label": f"{LABELS['home']}={self.tracker.home_label}"})
            threading.Thread(target=self._pump, args=(self.stream,), daemon=True,
                             name="pydrmaa2-docker-events").start()

    def _pump(self, stream: Any) -> None:
        try:
            for event in stream:
                cid = event.get("id") or (event.get("Actor") or {}).get("ID")
                if event.get("timeNano"):
                    self.last_event = event["timeNano"] / 1e9
                if not cid:
                    continue  # no container named (never so with the filters asked for)
                if (event.get("Action") or event.get("status")) in SETTLE_EVENTS:
                    # A settle waits for the engine to finish the container's exit;
                    # ends of several containers are settled side by side.
                    self.settlers.submit(self._settle_and_tell, cid)
                else:
                    self._tell(cid)
        except Exception as e:  # noqa: BLE001 - any end of the stream is handled below
            log.debug("docker event stream ended: %s", e)
        finally:
            with self.lock:
                if self.stream is stream:
                    self.stream = None
                everyone = {f for watchers in self.feeds.values() for f in watchers}
            if not self.closed:
                for feed in everyone:  # they look again, and resubscribe on their next wait
                    feed.fired.set()

    def _tell(self, cid: str) -> None:
        with self.lock:
            watchers = list(self.feeds.get(cid, ()))
        for feed in watchers:
            feed.fired.set()

    def _settle_and_tell(self, cid: str) -> None:
        self.tracker._settle(cid)
        self._tell(cid)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        self.settlers.shutdown(wait=False)


class _EventFeed(ChangeFeed):
    """Fires when the engine reports an event for a watched container (through the hub)."""

    def __init__(self, hub: _EventHub, ids: Sequence[str]) -> None:
        self.hub = hub
        self.ids = frozenset(ids)
        self.fired = threading.Event()
        hub.register(self)

    def wait(self, timeout: float | None) -> bool:
        self.hub.ensure_open()  # after an engine restart: subscribe again (or raise)
        fired = self.fired.wait(timeout)
        self.fired.clear()
        return fired

    def close(self) -> None:
        self.hub.unregister(self)
        self.fired.set()  # a wait still pending returns at once
