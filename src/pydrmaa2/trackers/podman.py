"""The Podman tracker (contact ``podman``): every job is a container of a Podman service, on
podman-py and the service's libpod REST API. The service's tables (STATES, CONTROL, ERRORS:
drmaa2os's Podman tracker mapping, its README, in Podman's own words), then the one boundary
where the service's errors become Drmaa2Errors, then the tracker; waits follow the service's
event stream.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import podman
import podman.errors
import requests.exceptions
import urllib3.exceptions

from ..errors import (
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
    OutOfResourceError,
    UnsupportedAttributeError,
    UnsupportedOperationError,
)
from ..info import JobInfo, MachineInfo, QueueInfo, Version
from ..states import CPU, OS, JobState
from ..templates import JobTemplate
from .base import Action, ChangeFeed, Contact
from .common import HOSTNAME, local_machine
from .containers import (
    LABELS,
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
from .containers.spec import Ulimit

__all__ = ["CONTROL", "ERRORS", "STATES", "PodmanTracker"]

log = logging.getLogger("pydrmaa2.podman")

# -- the service's tables ---------------------------------------------------------------------------

#: Podman's status word -> DRMAA2 state. ``None``: the container has ended, DONE for exit code
#: 0, else FAILED. "restarting" is a stopped container that its restart policy will start again
#: (Podman says "stopped" until its clean-up restarts it: see ``PodmanTracker.status_word``).
#: Any other word is UNDETERMINED.
STATES: dict[str, JobState | None] = {
    "configured": JobState.QUEUED,     # created (Podman's list says "created")
    "created": JobState.QUEUED,
    "initialized": JobState.QUEUED,    # prepared to start (e.g. stdin attached)
    "running": JobState.RUNNING,
    "restarting": JobState.RUNNING,
    "stopping": JobState.RUNNING,
    "paused": JobState.SUSPENDED,
    "stopped": None,                   # exited, clean-up to run
    "exited": None,
    "removing": None,
}
#: The words of a container not started yet: pydrmaa2 can hold it (QUEUED_HELD) until released.
NOT_STARTED = frozenset({"configured", "created", "initialized"})

#: DRMAA2 job control -> the libpod request POSTed for it (``/containers/{id}/REQUEST``).
#: pause/unpause are the cgroup freezer (a job cannot catch or see it; not rootless on cgroup
#: v1). HOLD needs no call: a held container stays created until RELEASE starts it.
CONTROL: dict[Action, str] = {
    Action.SUSPEND: "pause",
    Action.RESUME: "unpause",
    Action.TERMINATE: "kill?signal=SIGKILL",
    Action.RELEASE: "start",
}

#: The service's error answers -> Drmaa2Errors: the cause it gives (its Go error value), else the
#: HTTP status (``HTTP_STATUSES``), the first that matches; any other answer is
#: ImplementationSpecificError, or the class the call gives (create and start:
#: InvalidArgumentError). An answer saying that the service cannot act now
#: (``containers.errors.outage``) is DrmCommunicationError before these.
ERRORS: EngineErrors = {
    "container state improper": InvalidStateError,
    "no such container": InvalidArgumentError,
    "image not known": InvalidArgumentError,
    "network not found": InvalidArgumentError,
    "invalid argument": InvalidArgumentError,
    "no space left on device": OutOfResourceError,
    "this container does not have a cgroup": UnsupportedOperationError,  # pause, rootless v1
    "unresolvable CDI devices": UnsupportedAttributeError,  # gpus: the service has no CDI spec
    **HTTP_STATUSES,
}
#: What the client raises when the service is away (down, restarting, a connection or stream
#: cut short), whatever layer notices: all of it is DrmCommunicationError. APIError (an answer,
#: or podman-py's word for no connection) is told apart before these.
UNREACHABLE: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
    podman.errors.PodmanError, ConnectionError, TimeoutError, FileNotFoundError)

#: The rootful service's socket; other users talk to their own (see ``_default_socket``).
ROOT_SOCKET = "/run/podman/podman.sock"
#: Namespace extensions (and net) -> the SpecGenerator field that takes them.
NAMESPACES: dict[str, str] = {"ipc": "ipcns", "uts": "utsns", "pid": "pidns", "net": "netns"}
#: Network modes Podman knows by name; any other value of ``net`` names a network.
NETWORK_MODES = frozenset({"host", "bridge", "none", "private", "slirp4netns", "pasta"})
#: The ``gpus`` extension as Container Device Interface names (Podman has no device requests).
CDI_GPU = "nvidia.com/gpu"
RLIM_INFINITY = 2**64 - 1
#: The stream number of stdout in a multiplexed log (2 is stderr).
STDOUT = 1
#: Service events that can change a watched job's state ("rename" is our announcement: a
#: container renamed to its own name, after a change Podman does not announce, such as hold).
WATCHED_EVENTS = ("start", "died", "cleanup", "pause", "unpause", "restart", "remove", "rename")
#: Above this many ids an event subscription filters by our home label instead of by id.
MAX_ID_FILTER = 200
#: Podman starts tailing its event log just after it answers a subscription, so an event of
#: that instant could be missed: a feed also reports a possible change this often (seconds).
RESYNC_INTERVAL = 5.0
#: Connections per client: each event subscription holds one while it lasts.
POOL_SIZE = 64


# -- the one boundary -----------------------------------------------------------------------------------


@contextlib.contextmanager
def engine_errors(doing: str, address: str,
                  default: type[Drmaa2Error] = ImplementationSpecificError) -> Iterator[None]:
    """The service's errors while ``doing`` something as Drmaa2Errors that keep its words and
    ``address``: an answer through ERRORS (``default`` when none matches), no answer at all
    (UNREACHABLE, or an APIError without a status) as DrmCommunicationError."""
    try:
        yield
    except podman.errors.APIError as e:
        if e.status_code is None:  # podman-py's word for "no connection"
            raise DrmCommunicationError(
                f"{doing}: cannot reach the Podman service at {address}: "
                f"{e.__cause__ or e}") from e
        cause = str(e.args[0]) if e.args else ""
        raise engine_error(ERRORS, doing, f"Podman service at {address}", e.status_code,
                           e.explanation or cause or str(e), words=cause, default=default) from e
    except UNREACHABLE as e:
        raise DrmCommunicationError(
            f"{doing}: cannot reach the Podman service at {address}: {e}") from e


# -- the contact ------------------------------------------------------------------------------------


def _default_socket() -> str:
    """Root's service socket, else the user's own (``$XDG_RUNTIME_DIR/podman/podman.sock``)."""
    if os.geteuid() == 0:
        return ROOT_SOCKET
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return f"{runtime}/podman/podman.sock"


def _base_url(contact: Contact) -> str:
    """The service's URL: the contact's socket or host:port, else the default socket."""
    if contact.host:
        return f"tcp://{contact.host}:{contact.port or 8080}"
    return f"unix://{contact.path or _default_socket()}"


# -- the mapping as a libpod SpecGenerator ---------------------------------------------------------


def _namespace(value: str) -> dict[str, str]:
    """An extension's namespace mode (host, private, container:NAME, ...) as a Namespace."""
    mode, _, target = value.partition(":")
    if mode == "container":
        return {"nsmode": "container", "value": target}
    if mode == "ns":
        return {"nsmode": "path", "value": target}
    return {"nsmode": mode}


def _rlimits(ulimits: Sequence[Ulimit]) -> list[dict[str, Any]]:
    def n(v: int) -> int:
        return RLIM_INFINITY if v == -1 else v

    return [{"type": u.name, "soft": n(u.soft), "hard": n(u.hard)} for u in ulimits]


def _cdi_devices(gpus: int) -> list[dict[str, str]]:
    """The ``gpus`` extension as CDI devices: all of them, or the first ``gpus``."""
    names = ["all"] if gpus == -1 else [str(i) for i in range(gpus)]
    return [{"path": f"{CDI_GPU}={n}"} for n in names]


def _spec_generator(spec: ContainerSpec) -> dict[str, Any]:
    """The body of libpod's POST /containers/create for a spec (drmaa2os's table, and more)."""
    body: dict[str, Any] = {
        "image": spec.image, "command": spec.command, "env": spec.environment,
        "labels": spec.labels, "work_dir": spec.working_dir or "/", "terminal": False,
        "stdin": spec.stdin, "remove": False,  # the rm extension is ours (see the module doc)
    }
    for key, value in (("hostname", spec.hostname), ("user", spec.user)):
        if value:
            body[key] = value
    if spec.ports:
        body["portmappings"] = [
            {"container_port": p.container_port, "protocol": p.protocol,
             **({"host_port": p.host_port} if p.host_port else {}),
             **({"host_ip": p.host_ip} if p.host_ip else {})}
            for p in spec.ports]
    if spec.binds:
        body["mounts"] = [{"type": "bind", "source": b.host_path, "destination": b.container_path,
                           "options": ["rbind", "ro" if b.read_only else "rw"]} for b in spec.binds]
    if spec.network_mode:
        mode = spec.network_mode
        if mode in NETWORK_MODES or mode.startswith(("container:", "ns:")):
            body["netns"] = _namespace(mode)
        else:
            body["netns"] = {"nsmode": "bridge"}
            body["Networks"] = {mode: {}}
    if spec.privileged:
        body["privileged"] = True
    if spec.restart:
        body["restart_policy"] = spec.restart.name
        if spec.restart.maximum_retry_count:
            body["restart_tries"] = spec.restart.maximum_retry_count
    for key, value in (("ipc", spec.ipc_mode), ("uts", spec.uts_mode), ("pid", spec.pid_mode)):
        if value:
            body[NAMESPACES[key]] = _namespace(value)
    if spec.gpus is not None:
        body["devices"] = _cdi_devices(spec.gpus)
    if spec.shm_size is not None:
        body["shm_size"] = spec.shm_size
    if spec.ulimits:
        body["r_limits"] = _rlimits(spec.ulimits)
    limits: dict[str, Any] = {}
    if spec.memory is not None:
        limits["memory"] = {"limit": spec.memory, "swap": spec.memory}  # no swap on top
    if spec.memory_reservation is not None:
        limits.setdefault("memory", {})["reservation"] = spec.memory_reservation
    if spec.nano_cpus is not None:
        limits["cpu"] = {"period": 100_000, "quota": spec.nano_cpus * 100_000 // 1_000_000_000}
    if spec.pids_limit is not None:
        limits["pids"] = {"limit": spec.pids_limit}
    if limits:
        body["resource_limits"] = limits
    return body



# -- the service's answers ----------------------------------------------------------------------------


def _will_restart(record: Mapping[str, Any]) -> bool:
    """Whether the restart policy starts this stopped container again."""
    policy = (record.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        retries = policy.get("MaximumRetryCount") or 0
        return (record.get("State") or {}).get("ExitCode") != 0 and (
            retries == 0 or (record.get("RestartCount") or 0) < retries)
    return False


def _socket_of(response: Any) -> socket.socket | None:
    """The socket under a streamed response (to cut a blocking read short from another thread)."""
    for path in (("raw", "_fp", "fp", "raw", "_sock"), ("raw", "_connection", "sock")):
        obj = response
        for name in path:
            obj = getattr(obj, name, None)
        if isinstance(obj, socket.socket):
            return obj
    return None


def _frames(raw: Any) -> Iterator[tuple[int, bytes]]:
    """The (stream, payload) frames of a multiplexed log: an 8-byte header (stream, 3 bytes of
    padding, big-endian length), then the payload."""
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n and (chunk := raw.read(n - len(data))):
            data += chunk
        return data

    while len(header := exactly(8)) == 8:
        stream, size = struct.unpack(">BxxxL", header)
        yield stream, exactly(size)


# -- the tracker ------------------------------------------------------------------------------------------


class PodmanTracker(ContainerTracker):
    """Jobs as containers of one Podman service (contact ``podman``, ``podman:///sock``,
    ``podman://host:port``)."""

    scheme = "podman"
    engine_name = "the Podman service"
    STATES = STATES
    NOT_STARTED = NOT_STARTED
    unrunnable: ClassVar[tuple[type[Drmaa2Error], ...]] = (InvalidArgumentError,
                                                           UnsupportedAttributeError)

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        self.address = _base_url(contact)
        with self._engine("connecting"):
            self.client = podman.PodmanClient(base_url=self.address, max_pool_size=POOL_SIZE)
        self.api = self.client.api
        self._default_ulimits: list[Ulimit] | None = None

    def _engine(self, doing: str, default: type[Drmaa2Error] = ImplementationSpecificError,
                ) -> contextlib.AbstractContextManager[None]:
        """The boundary (``engine_errors``) for this service."""
        return engine_errors(doing, self.address, default)

    def _request(self, method: str, path: str, doing: str, *,
                 default: type[Drmaa2Error] = ImplementationSpecificError, **kwargs: Any) -> Any:
        """One request to the libpod API; its JSON answer (None when it has none)."""
        with self._engine(doing, default):
            response = getattr(self.api, method)(path, **kwargs)
            response.raise_for_status()
            if "json" not in response.headers.get("Content-Type", ""):
                return None
            return response.json()

    def _control(self, cid: str, action: Action, doing: str | None = None,
                 default: type[Drmaa2Error] = ImplementationSpecificError) -> None:
        """The service's call for ``action`` (CONTROL) on one container."""
        self._request("post", f"/containers/{cid}/{CONTROL[action]}",
                      doing or f"{action.value} of container {cid[:12]}", default=default)

    def _missing_image(self, image: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"image {image!r} is not present in the Podman service at {self.address}; "
            "pydrmaa2 does not pull images: podman pull it first")

    # -- set-up ----------------------------------------------------------------------------------------
    def check(self) -> None:
        self._request("get", "/_ping", "checking the service")

    def validate(self, template: JobTemplate) -> None:
        super().validate(template)
        image = container_spec(template, engine="Podman").image  # the job category, checked
        with self._engine(f"looking up image {image!r}"):
            response = self.api.get(f"/images/{image}/exists")
            if response.status_code == 404:
                raise self._missing_image(image)
            response.raise_for_status()

    # -- jobs ------------------------------------------------------------------------------------------
    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        spec = container_spec(template, engine="Podman", job_id=job_id, task_index=task_index,
                              labels=job_labels(job_id, task_index, str(self.home), template))
        files = local_files(template, spec)
        if spec.ulimits:
            spec.ulimits = self._with_default_ulimits(spec.ulimits, spec.image)
        cid = self._create(spec)
        try:
            self.records.add(cid, job_id, hold, spec.remove, files)
            files.create_outputs()
            if not hold:
                self.start_container(cid, files.input_path)
        except BaseException:
            with contextlib.suppress(Drmaa2Error):  # the service may be away: the job's error counts
                self.remove_container(cid, force=True)
            self.records.forget(cid)
            raise
        return cid

    def _create(self, spec: ContainerSpec) -> str:
        try:
            answer = self._request("post", "/containers/create",
                                   f"creating a container of image {spec.image!r}",
                                   default=InvalidArgumentError,
                                   data=json.dumps(_spec_generator(spec)),
                                   headers={"Content-Type": "application/json"})
        except InvalidArgumentError as e:
            cause = getattr(e.__cause__, "args", ("",))[0]
            if cause == "image not known":
                raise self._missing_image(spec.image) from None
            raise
        cid: str = answer["Id"]
        return cid

    def _with_default_ulimits(self, ulimits: list[Ulimit], image: str) -> list[Ulimit]:
        """The service's default ulimits (containers.conf) under the job's own: Podman applies
        its defaults only to a container that asks for none, Docker merges them."""
        if self._default_ulimits is None:
            cid = self._create(ContainerSpec(image=image, command=["/bin/true"],
                                             labels={LABELS["home"]: str(self.home)}))
            try:
                data = self.inspect_container(cid) or {}
            finally:
                self.remove_container(cid, force=True)
            self._default_ulimits = [
                Ulimit(u["Name"].lower().removeprefix("rlimit_"),
                       -1 if u["Soft"] == RLIM_INFINITY else u["Soft"],
                       -1 if u["Hard"] == RLIM_INFINITY else u["Hard"])
                for u in (data.get("HostConfig") or {}).get("Ulimits") or []]
        own = {u.name for u in ulimits}
        return [u for u in self._default_ulimits if u.name not in own] + list(ulimits)

    def _attach_stdin(self, cid: str) -> socket.socket:
        """Attach to a created container's stdin (podman-py has no attach): an HTTP upgrade
        on a connection of our own, as ``podman start --attach`` does."""
        if self.contact.host:
            sock = socket.create_connection((self.contact.host, self.contact.port or 8080))
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.address.removeprefix("unix://"))
            except OSError:  # the service is away
                sock.close()
                raise
        try:
            # Empty detachKeys: the input may hold ctrl-p ctrl-q, Podman's default detach keys.
            sock.sendall(
                f"POST {self.api.path_prefix}containers/{cid}/attach?stdin=true&stdout=false"
                f"&stderr=false&stream=true&detachKeys= HTTP/1.1\r\nHost: podman\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            status, _, rest = head.partition(b"\r\n")
            if b" 101 " not in status + b" ":
                why = rest.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
                raise InvalidArgumentError(
                    f"attaching to the stdin of container {cid[:12]}: {why or status.decode()} "
                    f"(Podman service at {self.address})")
        except BaseException:
            sock.close()
            raise
        return sock

    # -- the engine's hooks ----------------------------------------------------------------------------
    def start_container(self, cid: str, input_path: str | None) -> None:
        """Start a created container, feeding input_path to its stdin. A container that
        cannot start (its command, user or GPUs missing) is InvalidArgumentError (the
        template cannot run) or UnsupportedAttributeError (the service cannot give GPUs)."""
        attached = None
        try:
            if input_path is not None:
                with self._engine("attaching to the container's stdin"):
                    attached = self._attach_stdin(cid)
            try:
                self._control(cid, Action.RELEASE, "starting the job's container",
                              InvalidArgumentError)
            except UnsupportedAttributeError as e:  # ERRORS: no CDI device for the GPUs
                raise UnsupportedAttributeError(
                    f"extension gpus: the Podman service at {self.address} has no CDI device "
                    f"{CDI_GPU} (generate its CDI spec, e.g. with nvidia-ctk cdi generate): "
                    f"{e}") from e
        except BaseException:
            if attached is not None:
                attached.close()
            raise
        if attached is not None:
            # Not a daemon: a program that submits and exits still delivers the whole input.
            threading.Thread(target=feed_stdin, args=(attached, input_path),
                             name=f"pydrmaa2-stdin-{cid[:12]}").start()

    def inspect_container(self, cid: str) -> dict[str, Any] | None:
        """The container's inspect record, None when the service no longer has it (a 404, or
        a container removed while the service looked it up: its cause 'no such container')."""
        try:
            record: dict[str, Any] = self._request("get", f"/containers/{cid}/json",
                                                   f"inspecting container {cid[:12]}")
            return record
        except InvalidArgumentError as e:
            cause = e.__cause__
            if getattr(cause, "status_code", None) == 404 or (
                    isinstance(cause, podman.errors.APIError) and cause.args
                    and cause.args[0] == "no such container"):
                return None
            raise

    def status_word(self, record: Mapping[str, Any], terminated: bool) -> str:
        """Podman's status word, but for "stopped" (exited, clean-up still to run):
        "restarting" when its restart policy will start it again, else "exited"."""
        status = (record.get("State") or {}).get("Status") or ""
        if status == "stopped":
            return "restarting" if not terminated and _will_restart(record) else "exited"
        return status

    def control_container(self, cid: str, action: Action) -> None:
        self._control(cid, action)
        if action is Action.TERMINATE:
            # A frozen process dies of SIGKILL only once thawed (the cgroup v1 freezer).
            with contextlib.suppress(Drmaa2Error):
                record = self.inspect_container(cid)
                if record is not None and self.status_word(record, True) == "paused":
                    self._control(cid, Action.RESUME, "unpausing a killed container")

    def remove_container(self, cid: str, force: bool = False) -> None:
        """Remove a container; one that is already gone is fine."""
        try:
            self._request("delete", f"/containers/{cid}", f"removing container {cid[:12]}",
                          params={"force": force} if force else None)
        except InvalidArgumentError as e:
            if getattr(e.__cause__, "status_code", None) != 404:
                raise

    def write_outputs(self, cid: str, files: LocalFiles) -> str | None:
        """Copy the container's log into output_path / error_path (one read of both streams);
        a problem becomes the job's annotation (the job has ended; its files are what failed)."""
        out_path, err_path = files.output_path, files.error_path
        if files.join_files or out_path == err_path:
            err_path = out_path
        if out_path is None and err_path is None:
            return None
        targets: dict[str, Any] = {}
        try:
            with contextlib.ExitStack() as stack:
                for path in {p for p in (out_path, err_path) if p is not None}:
                    targets[path] = stack.enter_context(open(path, "wb"))
                with self._engine("reading the container's log"):
                    response = self.api.get(f"/containers/{cid}/logs", stream=True,
                                            params={"stdout": out_path is not None,
                                                    "stderr": err_path is not None})
                    response.raise_for_status()
                    for stream, payload in _frames(response.raw):
                        target = out_path if stream == STDOUT else err_path
                        if target is not None:
                            targets[target].write(payload)
        except DrmCommunicationError:
            raise  # the service went away: the end is recorded at a later look
        except (OSError, Drmaa2Error) as e:
            return f"the job's output could not be written to {out_path or err_path}: {e}"
        return None

    def stream_log(self, cid: str, stdout: bool, stderr: bool, follow: bool,
                   tail: int | None) -> Iterator[bytes]:
        with self._engine("reading the container's log"):
            response = self.api.get(f"/containers/{cid}/logs", stream=True,
                                    params={"stdout": stdout, "stderr": stderr, "follow": follow,
                                            "tail": "all" if tail is None else str(tail)})
            response.raise_for_status()
        try:
            frames = _frames(response.raw)
            while True:
                with self._engine("reading the container's log"):
                    frame = next(frames, None)
                if frame is None:
                    return
                yield frame[1]
        finally:
            response.close()

    def copy_out(self, cid: str, path: str, destination: str) -> None:
        with self._engine("reading the container's files"):
            response = self.api.get(f"/containers/{cid}/archive", params={"path": path},
                                    stream=True)
            try:
                response.raise_for_status()
                extract_archive(response.raw, destination)
            finally:
                response.close()

    def announce_change(self, cid: str) -> None:
        """Renaming a container to its own name changes nothing but emits an event."""
        with contextlib.suppress(Drmaa2Error):
            record = self.inspect_container(cid)
            if record is not None:
                self._request("post", f"/containers/{cid}/rename", "announcing a change",
                              params={"name": record.get("Name", "")})

    # -- states ----------------------------------------------------------------------------------------
    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        rows, out, live = self.recorded_states(tracker_ids)
        listed: dict[str, str] = {}
        for i in range(0, len(live), MAX_ID_FILTER):
            found = self._request("get", "/containers/json", "listing containers", params={
                "all": True, "filters": json.dumps({"id": live[i:i + MAX_ID_FILTER]})})
            listed.update({c["Id"]: c.get("State") or "" for c in found or []})
        finals = self.finalize_many([
            cid for cid in live
            if listed.get(cid) is None or STATES.get(listed[cid], JobState.UNDETERMINED) is None])
        for cid in live:
            status = listed.get(cid)
            row = rows.get(cid)
            if status is None or STATES.get(status, JobState.UNDETERMINED) is None:
                final = finals[cid]
                if final is not None:
                    out[cid] = final
                elif status is None:
                    out[cid] = (JobState.FAILED, "removed")
                else:
                    out[cid] = (JobState.RUNNING, "restarting")
            else:
                out[cid] = (self.job_state(status, held=row is not None and row.held), status)
        return out

    # -- the service's views -----------------------------------------------------------------------------
    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        return _EventFeed(self, list(tracker_ids))

    def find_job(self, job_id: str) -> str | None:
        """The container of this store labelled with pydrmaa2 job id ``job_id``, or None."""
        found = self._request("get", "/containers/json", "looking up a job", params={
            "all": True, "filters": json.dumps({"label": [
                f"{LABELS['home']}={self.home}", f"{LABELS['job_id']}={job_id}"]})})
        return self.adoptable([(c["Id"], c.get("State") or "") for c in found or []])

    def list_jobs(self) -> list[str]:
        found = self._request("get", "/containers/json", "listing containers", params={
            "all": True, "filters": json.dumps({"label": [f"{LABELS['home']}={self.home}"]})})
        return [c["Id"] for c in found or []]

    def job_categories(self) -> list[str]:
        images = self._request("get", "/images/json", "listing images") or []
        return sorted({t for i in images for t in (i.get("RepoTags") or []) if t != "<none>:<none>"})

    def monitor_jobs(self) -> list[JobInfo]:
        found = self._request("get", "/containers/json", "listing containers", params={"all": True})
        return self.container_infos([c["Id"] for c in found or []])

    def machines(self) -> list[MachineInfo]:
        i = self._request("get", "/info", "asking the service about its host")
        host = i.get("host") or {}
        if not host.get("serviceIsRemote") and host.get("hostname") == HOSTNAME:
            machine = local_machine()  # this very host: its real sockets, cores and load
        else:
            kernel = (host.get("kernel") or "0.0").split("-")[0].split(".")
            machine = MachineInfo(
                name=host.get("hostname") or self.address, available=True, sockets=1,
                cores_per_socket=host.get("cpus"), threads_per_core=1,  # Podman counts logical CPUs
                phys_memory=host.get("memTotal"),
                virt_memory=(host.get("memTotal") or 0) + (host.get("swapTotal") or 0) or None,
                machine_os=OS.LINUX if host.get("os") == "linux" else OS.OTHER_OS,
                machine_os_version=Version(kernel[0], kernel[1] if len(kernel) > 1 else "0"),
                machine_arch=CPU.from_machine(host.get("arch") or ""))
        dist = host.get("distribution") or {}
        store = (i.get("store") or {}).get("containerStore") or {}
        machine.extensions.update({
            "cpus": str(host.get("cpus", "")), "kernel": host.get("kernel") or "",
            "os": " ".join(filter(None, (dist.get("distribution"), dist.get("version")))),
            "podman_version": (i.get("version") or {}).get("Version") or "",
            "cgroup_version": host.get("cgroupVersion") or "",
            "containers_running": str(store.get("running", "")),
        })
        return [machine]

    def queues(self) -> list[QueueInfo]:
        return []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class _EventFeed(ChangeFeed):
    """Fires when the service reports an event for a watched container (its event stream)."""

    def __init__(self, tracker: PodmanTracker, ids: list[str]) -> None:
        self.tracker = tracker
        self.ids = set(ids)
        self.filters: dict[str, list[str]] = {"type": ["container"], "event": list(WATCHED_EVENTS)}
        if len(ids) <= MAX_ID_FILTER:
            self.filters["container"] = ids
        else:
            self.filters["label"] = [f"{LABELS['home']}={tracker.home}"]
        self.fired = threading.Event()
        self.closed = False
        self.broken = False
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        # Returns once the service has answered (see RESYNC_INTERVAL for the instant after).
        with self.tracker._engine("subscribing to the service's events"):
            response = self.tracker.api.get(
                "/events", params={"stream": True, "filters": json.dumps(self.filters)},
                stream=True)
            response.raise_for_status()
        self.response = response
        self.sock = _socket_of(response)
        self.broken = False
        self.thread = threading.Thread(target=self._pump, args=(response,), daemon=True,
                                       name="pydrmaa2-podman-events")
        self.thread.start()

    def _pump(self, response: Any) -> None:
        try:
            for line in response.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                cid = event.get("id") or (event.get("Actor") or {}).get("ID")
                if cid in self.ids:
                    self.fired.set()
        except Exception as e:  # noqa: BLE001 - any end of the stream is handled below
            log.debug("podman event stream ended: %s", e)
        finally:
            if not self.closed:
                self.broken = True
                self.fired.set()

    def _cut(self) -> None:
        """End the stream; shutting the socket down wakes the pump's blocking read."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.response.close()

    def wait(self, timeout: float | None) -> bool:
        if self.broken and not self.closed:
            # The service went away (or restarted): subscribe again, then let the waiter look.
            with self._lock:
                if self.broken:
                    self._cut()
                    self._open()
            return True
        step = RESYNC_INTERVAL if timeout is None else min(timeout, RESYNC_INTERVAL)
        fired = self.fired.wait(step)
        self.fired.clear()
        return fired or timeout is None or step < timeout

    def close(self) -> None:
        self.closed = True
        self._cut()
        if self.sock is not None:  # else the pump ends with the next event (a daemon thread)
            self.thread.join(timeout=5)
