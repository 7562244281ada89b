"""The one JobTemplate -> container mapping, shared by the Docker and Podman trackers.

Pure data and functions: the seed-001 extensions and our resource limits as tables, a validated,
engine-neutral ``ContainerSpec`` built from a template, local file checks, the safe unpacking of
an engine's archive of stage-out files, and the mapping of an engine's container record
(Docker's inspect format, which Podman's compat API shares) to DRMAA2 states and JobInfo.
Nothing here talks to an engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import logging
import os
import re
import secrets
import socket
import stat
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import InvalidArgumentError, UnsupportedAttributeError
from ..info import JobInfo
from ..states import JobState
from ..templates import JobTemplate
from .base import signal_name

__all__ = [
    "CONTAINER_STATES", "EXTENSIONS", "LABELS", "RESOURCE_LIMITS", "BindMount", "ChunkReader",
    "ContainerSpec", "LocalFiles", "PortMapping", "RestartPolicy", "StageOutError", "Ulimit",
    "container_spec", "container_state", "ended", "extract_archive", "inspect_state", "job_info",
    "job_labels", "local_files", "parse_gpus", "parse_ports", "parse_size", "parse_time",
    "parse_ulimits", "stage_out_pairs",
]

# -- the tables ---------------------------------------------------------------------------------------

#: Seed 001: JobTemplate.extensions a container job may set, and what each becomes.
EXTENSIONS: dict[str, str] = {
    "user": "User: a name or uid[:gid] that exists in the image",
    "exposedPorts": "-p: [[HOST_IP:]HOST_PORT:]PORT[/PROTO], several separated by ','",
    "net": "--net: host, bridge, none, container:NAME or a network's name",
    "privileged": "--privileged: 'true' or 'false' (the default)",
    "restart": "--restart: no (the default), always, unless-stopped or on-failure[:N]",
    "ipc": "--ipc: host, private, shareable, none or container:NAME",
    "uts": "--uts: host",
    "pid": "--pid: host or container:NAME",
    "rm": "--rm: 'true' removes the container once pydrmaa2 has recorded how the job ended",
    "gpus": "--gpus: 'all' or a number of GPUs (an nvidia device request)",
    "shm-size": "--shm-size: bytes, with an optional unit b, k, m, g or t (powers of 1024)",
    "ulimit": "--ulimit: NAME=SOFT[:HARD], several separated by ','",
    "stage_in_mode": "how stage_in_files are mounted: 'rw' (the default, seeds 000/001) or 'ro'",
}


def stage_in_read_only(extensions: Mapping[str, str]) -> bool:
    """Whether the template asks for read-only stage-in mounts: ``extensions["stage_in_mode"]``
    is 'rw' (the default: a writable bind mount, as seeds 000 and 001 define stage_in_files) or
    'ro'. One meaning on Docker, Podman and containerd."""
    mode = extensions.get("stage_in_mode", "rw")
    if mode not in ("rw", "ro"):
        raise InvalidArgumentError(
            f"JobTemplate.extensions['stage_in_mode'] {mode!r} must be 'rw' or 'ro'")
    return mode == "ro"

#: JobTemplate.resource_limits keys (case-insensitive) -> the container limit they set.
#: DRMAA2's own names (GFD.231 resourceLimits) become ulimits; WALLCLOCK_TIME has no equivalent.
RESOURCE_LIMITS: dict[str, str] = {
    "memory": "memory",             # hard limit in bytes (units as shm-size); no swap on top
    "cpus": "cpus",                 # CPUs the job may use, fractional: "1.5"
    "cpu": "cpus",                  # alias of cpus (the CPU-time ulimit is cpu_time)
    "pids": "pids",                 # at most this many processes
    "core_file_size": "ulimit:core",
    "cpu_time": "ulimit:cpu",       # seconds
    "data_size": "ulimit:data",
    "file_size": "ulimit:fsize",
    "open_files": "ulimit:nofile",
    "nofile": "ulimit:nofile",
    "nproc": "ulimit:nproc",
    "stack_size": "ulimit:stack",
    "virtual_memory": "ulimit:as",
}

#: Seed 001's state mapping: the engine's status word -> DRMAA2 state. ``None``: by exit code
#: (DONE for 0, else FAILED; OOMKilled is always FAILED). A created container is QUEUED_HELD
#: while pydrmaa2 holds it. Any other word is UNDETERMINED.
CONTAINER_STATES: dict[str, JobState | None] = {
    "created": JobState.QUEUED,
    "restarting": JobState.QUEUED,
    "running": JobState.RUNNING,
    "paused": JobState.SUSPENDED,
    "exited": None,
    "dead": None,
}

#: Labels that make pydrmaa2's containers recognisable in the engine.
LABELS: dict[str, str] = {
    "job_id": "org.pydrmaa2.job_id",
    "task_id": "org.pydrmaa2.task_id",
    "home": "org.pydrmaa2.home",
    "job_name": "org.pydrmaa2.job_name",
    "submission_machine": "org.pydrmaa2.submission_machine",
    "rm": "org.pydrmaa2.rm",
}

ULIMIT_NAMES = frozenset({
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
})
#: ulimits measured in bytes, which may be written with a unit.
_BYTE_ULIMITS = frozenset({"as", "core", "data", "fsize", "memlock", "msgqueue", "rss", "stack"})
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
_MODES = {
    "ipc": ("host", "private", "shareable", "none"),
    "uts": ("host",),
    "pid": ("host",),
}

# -- the spec ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortMapping:
    """One published port: ``container_port/protocol`` on ``host_ip:host_port`` (None: any)."""

    container_port: int
    protocol: str = "tcp"
    host_port: int | None = None
    host_ip: str | None = None


@dataclass(frozen=True)
class Ulimit:
    """A resource limit of the container's processes."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class RestartPolicy:
    """What the engine does when the container exits."""

    name: str
    maximum_retry_count: int = 0


@dataclass(frozen=True)
class BindMount:
    """A host path visible inside the container (stage_in_files). Engines get it as a
    structured mount (source, target, read-only flag), never a "host:container[:options]"
    string, so either path may contain ':'."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass
class ContainerSpec:
    """Everything a container engine needs to create one job's container."""

    image: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    hostname: str | None = None
    user: str | None = None
    ports: list[PortMapping] = field(default_factory=list)
    network_mode: str | None = None
    privileged: bool = False
    restart: RestartPolicy | None = None
    ipc_mode: str | None = None
    uts_mode: str | None = None
    pid_mode: str | None = None
    remove: bool = False
    gpus: int | None = None  # -1: all
    shm_size: int | None = None
    ulimits: list[Ulimit] = field(default_factory=list)
    binds: list[BindMount] = field(default_factory=list)
    memory: int | None = None
    memory_reservation: int | None = None
    nano_cpus: int | None = None
    pids_limit: int | None = None
    stdin: bool = False


# -- parsers ------------------------------------------------------------------------------------------


def parse_bool(value: str, what: str) -> bool:
    """'true'/'false' (any case, also yes/no/1/0) as a bool."""
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidArgumentError(f"{what} {value!r} is not 'true' or 'false'")


def parse_size(value: str | int, what: str) -> int:
    """A byte count like ``67108864``, ``64m`` or ``1.5g`` (units are powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidArgumentError(f"{what} {value!r} is negative")
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
    if m is None:
        raise InvalidArgumentError(
            f"{what} {value!r} is not a size: a number of bytes with an optional unit b, k, m, g, t")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _parse_int(value: str, what: str, minimum: int = 0) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InvalidArgumentError(f"{what} {value!r} is not a whole number") from None
    if n < minimum:
        raise InvalidArgumentError(f"{what} {value!r} must be at least {minimum}")
    return n


def parse_ports(value: str) -> list[PortMapping]:
    """The ``exposedPorts`` extension: ``[[HOST_IP:]HOST_PORT:]PORT[/PROTO]``, ','-separated."""
    out = []
    for entry in (e.strip() for e in str(value).split(",")):
        if not entry:
            continue
        spec, _, proto = entry.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgumentError(
                f"extension exposedPorts entry {entry!r}: protocol {proto!r} is not tcp, udp or sctp")
        parts = spec.rsplit(":", 2)
        host_ip = parts[0].strip("[]") if len(parts) == 3 else None
        host_port = parts[-2] if len(parts) >= 2 else None
        try:
            cport = int(parts[-1])
            hport = int(host_port) if host_port else None
        except ValueError:
            raise InvalidArgumentError(
                f"extension exposedPorts entry {entry!r} is not [[HOST_IP:]HOST_PORT:]PORT[/PROTO]"
            ) from None
        if not 0 < cport < 65536 or (hport is not None and not 0 <= hport < 65536):
            raise InvalidArgumentError(f"extension exposedPorts entry {entry!r}: port out of range")
        out.append(PortMapping(cport, proto, hport, host_ip or None))
    if not out:
        raise InvalidArgumentError(f"extension exposedPorts {value!r} names no port")
    return out


def _ulimit(name: str, value: str, what: str) -> Ulimit:
    if name not in ULIMIT_NAMES:
        raise InvalidArgumentError(
            f"{what}: {name!r} is not a ulimit; known: {', '.join(sorted(ULIMIT_NAMES))}")
    soft_s, _, hard_s = str(value).strip().partition(":")
    hard_s = hard_s or soft_s

    def num(s: str) -> int:
        s = s.strip()
        if s in ("-1", "unlimited"):
            return -1
        if name in _BYTE_ULIMITS:
            return parse_size(s, f"{what} {name}")
        return _parse_int(s, f"{what} {name}")

    soft, hard = num(soft_s), num(hard_s)
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgumentError(f"{what} {name}={value}: the soft limit exceeds the hard one")
    return Ulimit(name, soft, hard)


def parse_ulimits(value: str) -> list[Ulimit]:
    """The ``ulimit`` extension: ``NAME=SOFT[:HARD]``, ','-separated (e.g. memlock=-1)."""
    out = []
    for entry in (e.strip() for e in str(value).split(",")):
        if not entry:
            continue
        name, eq, limit = entry.partition("=")
        if not eq or not limit.strip():
            raise InvalidArgumentError(f"extension ulimit entry {entry!r} is not NAME=SOFT[:HARD]")
        out.append(_ulimit(name.strip().lower(), limit, "extension ulimit"))
    if not out:
        raise InvalidArgumentError(f"extension ulimit {value!r} names no limit")
    return out


def parse_gpus(value: str) -> int:
    """The ``gpus`` extension: 'all' (-1) or a positive number."""
    v = str(value).strip().lower()
    if v == "all":
        return -1
    if not v.isdigit() or int(v) < 1:
        raise InvalidArgumentError(f"extension gpus {value!r} is not 'all' or a number of GPUs")
    return int(v)


def _restart(value: str) -> RestartPolicy:
    name, _, count = str(value).strip().partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgumentError(
            f"extension restart {value!r} is not no, always, unless-stopped or on-failure[:N]")
    if count and name != "on-failure":
        raise InvalidArgumentError(f"extension restart {value!r}: only on-failure takes a count")
    return RestartPolicy(name, _parse_int(count, f"extension restart {value!r} count") if count else 0)


def _mode(key: str, value: str) -> str:
    v = str(value).strip()
    if v in _MODES[key] or (key != "uts" and v.startswith("container:") and len(v) > 10):
        return v
    allowed = ", ".join(_MODES[key]) + ("" if key == "uts" else " or container:NAME")
    raise InvalidArgumentError(f"extension {key} {value!r} is not {allowed}")


def _network(value: str) -> str:
    v = str(value).strip()
    if not v or any(c.isspace() for c in v):
        raise InvalidArgumentError(
            f"extension net {value!r} is not host, bridge, none, container:NAME or a network's name")
    return v


# -- template -> spec ---------------------------------------------------------------------------------------


def _apply_extensions(spec: ContainerSpec, extensions: Mapping[str, str]) -> None:
    unknown = [k for k in extensions if k not in EXTENSIONS]
    if unknown:
        raise UnsupportedAttributeError(
            f"JobTemplate.extensions {', '.join(map(repr, unknown))} not supported for containers; "
            f"known: {', '.join(EXTENSIONS)}")
    for key, value in extensions.items():
        if not isinstance(value, str):
            raise InvalidArgumentError(f"extension {key} {value!r} must be a string")
        if key == "stage_in_mode":
            read_only = stage_in_read_only(extensions)
            spec.binds = [dataclasses.replace(b, read_only=read_only) for b in spec.binds]
        elif key == "user":
            if not value.strip() or any(c.isspace() for c in value):
                raise InvalidArgumentError(f"extension user {value!r} is not a user name or uid[:gid]")
            spec.user = value.strip()
        elif key == "exposedPorts":
            spec.ports = parse_ports(value)
        elif key == "net":
            spec.network_mode = _network(value)
        elif key == "privileged":
            spec.privileged = parse_bool(value, "extension privileged")
        elif key == "restart":
            spec.restart = _restart(value)
        elif key in ("ipc", "uts", "pid"):
            setattr(spec, f"{key}_mode", _mode(key, value))
        elif key == "rm":
            spec.remove = parse_bool(value, "extension rm")
        elif key == "gpus":
            spec.gpus = parse_gpus(value)
        elif key == "shm-size":
            spec.shm_size = parse_size(value, "extension shm-size")
        elif key == "ulimit":
            spec.ulimits = _merge_ulimits(spec.ulimits, parse_ulimits(value))
    if spec.remove and spec.restart is not None and spec.restart.name != "no":
        raise InvalidArgumentError(
            f"extensions rm and restart {spec.restart.name!r} conflict: a container that restarts "
            "cannot be removed when it exits")


def _merge_ulimits(old: Iterable[Ulimit], new: Iterable[Ulimit]) -> list[Ulimit]:
    merged = {u.name: u for u in old}
    merged.update({u.name: u for u in new})
    return list(merged.values())


def _apply_resource_limits(spec: ContainerSpec, limits: Mapping[str, str]) -> None:
    ulimits = []
    for key, value in limits.items():
        target = RESOURCE_LIMITS.get(str(key).lower())
        if target is None:
            raise UnsupportedAttributeError(
                f"JobTemplate.resource_limits {key!r} has no container equivalent; "
                f"known: {', '.join(RESOURCE_LIMITS)}")
        what = f"JobTemplate.resource_limits {key}"
        if target == "memory":
            spec.memory = parse_size(value, what)
            if spec.memory < 6 << 20:
                raise InvalidArgumentError(f"{what} {value!r} is below the engines' minimum of 6m")
        elif target == "cpus":
            try:
                cpus = float(str(value))
            except ValueError:
                raise InvalidArgumentError(f"{what} {value!r} is not a number of CPUs") from None
            if not cpus > 0:
                raise InvalidArgumentError(f"{what} {value!r} must be more than 0")
            spec.nano_cpus = int(cpus * 1e9)
        elif target == "pids":
            spec.pids_limit = _parse_int(value, what, minimum=1)
        else:
            ulimits.append(_ulimit(target.split(":", 1)[1], str(value), what))
    # Extensions say exactly what the user wants from the engine; they win over these.
    spec.ulimits = _merge_ulimits(ulimits, spec.ulimits)


def job_labels(job_id: str | None, task_index: int | None, home: str, template: JobTemplate,
               ) -> dict[str, str]:
    """The labels of a job's container: pydrmaa2's ids, home and the submitting machine."""
    labels = {LABELS["home"]: home, LABELS["submission_machine"]: socket.gethostname()}
    if job_id is not None:
        labels[LABELS["job_id"]] = job_id
    if task_index is not None:
        labels[LABELS["task_id"]] = str(task_index)
    if template.job_name:
        labels[LABELS["job_name"]] = template.job_name
    return labels


def container_spec(template: JobTemplate, *, engine: str, job_id: str | None = None,
                   task_index: int | None = None, labels: Mapping[str, str] | None = None,
                   ) -> ContainerSpec:
    """Validate ``template`` for a container engine and map it (seed 001's JobTemplate table).

    Unknown extensions or limits raise UnsupportedAttributeError, bad values
    InvalidArgumentError; both name the offending key or value.
    """
    if not template.remote_command:
        raise InvalidArgumentError("JobTemplate.remote_command is not set: nothing to run")
    if not template.job_category:
        raise InvalidArgumentError(f"JobTemplate.job_category must name a {engine} image")
    if len(template.candidate_machines) > 1:
        raise UnsupportedAttributeError(
            f"JobTemplate.candidate_machines {template.candidate_machines!r}: a container has one "
            "hostname; give at most one machine")
    if template.rerunnable:
        raise UnsupportedAttributeError(
            f"JobTemplate.rerunnable: {engine} cannot re-run a job; see the extension 'restart'")
    if template.working_directory is not None and not template.working_directory.startswith("/"):
        raise InvalidArgumentError(
            f"JobTemplate.working_directory {template.working_directory!r} must be an absolute path "
            "inside the container")
    env = dict(template.job_environment)
    if job_id is not None:
        env["JOB_ID"] = job_id
    if task_index is not None:
        env["TASK_ID"] = str(task_index)
    binds = []
    for host, inside in template.stage_in_files.items():
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise InvalidArgumentError(
                f"JobTemplate.stage_in_files {host!r}: the container path {inside!r} must be absolute")
        if not isinstance(host, str) or not host:
            raise InvalidArgumentError(f"JobTemplate.stage_in_files key {host!r} is not a host path")
        binds.append(BindMount(os.path.abspath(host), inside))
    stage_out_pairs(template)
    spec = ContainerSpec(
        image=template.job_category,
        command=[template.remote_command, *template.args],
        environment=env,
        labels=dict(labels or {}),
        working_dir=template.working_directory,
        hostname=template.candidate_machines[0] if template.candidate_machines else None,
        binds=binds,
        stdin=template.input_path is not None,
    )
    if template.min_phys_memory is not None:
        # DRMAA2 gives min_phys_memory in KiB; the engine's soft reservation is what it guarantees.
        spec.memory_reservation = template.min_phys_memory * 1024
    _apply_resource_limits(spec, template.resource_limits)
    _apply_extensions(spec, template.extensions)
    if spec.memory and spec.memory_reservation and spec.memory_reservation > spec.memory:
        raise InvalidArgumentError(
            f"JobTemplate.min_phys_memory {template.min_phys_memory} KiB is more than the memory "
            f"limit of {spec.memory} bytes")
    if spec.remove:
        spec.labels[LABELS["rm"]] = "true"
    return spec


# -- local files --------------------------------------------------------------------------------------------


def stage_out_pairs(template: JobTemplate) -> tuple[tuple[str, str], ...]:
    """The template's stage_out_files as (host path, container path) pairs, the host path made
    absolute from the current directory. DRMAA2's direction, as the process tracker reads it:
    the key is the local path the file is copied to, the value the path the job wrote (here an
    absolute path inside the container). The host side is not checked here, as the process
    tracker does not: missing folders are created by the copy, and a copy that fails fails the
    job (see ``ContainerTracker``)."""
    pairs = []
    for host, inside in template.stage_out_files.items():
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise InvalidArgumentError(
                f"JobTemplate.stage_out_files {host!r}: the container path {inside!r} must be "
                "absolute")
        if not isinstance(host, str) or not host:
            raise InvalidArgumentError(f"JobTemplate.stage_out_files key {host!r} is not a host path")
        pairs.append((os.path.abspath(host), inside))
    return tuple(pairs)


@dataclass(frozen=True)
class LocalFiles:
    """The job's local stdin/stdout/stderr files and its stage-out destinations (host path,
    container path), as absolute paths."""

    input_path: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    join_files: bool = False
    stage_out: tuple[tuple[str, str], ...] = ()

    def create_outputs(self) -> None:
        """Create (or empty) the output files, so they exist from submission on."""
        for field_name in ("output_path", "error_path"):
            path = getattr(self, field_name)
            if path is None:
                continue
            try:
                with open(path, "wb"):
                    pass
            except OSError as e:
                raise InvalidArgumentError(
                    f"JobTemplate.{field_name} {path!r} cannot be written: {e.strerror or e}") from None


def local_files(template: JobTemplate, spec: ContainerSpec | None = None) -> LocalFiles:
    """Check the template's local paths (input readable, outputs' directories writable, stage-in
    sources present) and return them absolute, relative paths taken from the current directory."""
    def absolute(p: str | None) -> str | None:
        return None if p is None else os.path.abspath(p)

    files = LocalFiles(absolute(template.input_path), absolute(template.output_path),
                       absolute(template.error_path), bool(template.join_files),
                       stage_out_pairs(template))
    if files.input_path is not None and not (
            os.path.isfile(files.input_path) and os.access(files.input_path, os.R_OK)):
        raise InvalidArgumentError(
            f"JobTemplate.input_path {template.input_path!r} is not a readable file")
    for name in ("output_path", "error_path"):
        path = getattr(files, name)
        if path is None:
            continue
        folder = os.path.dirname(path)
        if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK) or (
                os.path.exists(path) and not os.access(path, os.W_OK)):
            raise InvalidArgumentError(
                f"JobTemplate.{name} {getattr(template, name)!r} cannot be written (is its "
                "directory there and writable?)")
    for bind in (spec.binds if spec else []):
        if not os.path.exists(bind.host_path):
            raise InvalidArgumentError(
                f"JobTemplate.stage_in_files {bind.host_path!r} does not exist on this machine")
    return files


# -- stage-out: an engine's archive unpacked on this host ---------------------------------------------


class StageOutError(Exception):
    """A stage-out that this host could not complete: the engine's archive is unreadable or
    holds an unsafe member, or the destination cannot be written. The engine is not at fault
    (not a Drmaa2Error): the job's annotation says why."""


class ChunkReader(io.RawIOBase):
    """A binary file over an iterator of byte chunks (Docker's archive stream), for tarfile."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk = memoryview(chunk)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


#: Bytes copied at a time from an archive member to its file.
_COPY_CHUNK = 1 << 16


@contextlib.contextmanager
def _on_host(path: str) -> Iterator[None]:
    """An OSError of this host's file system (never of the engine's stream) as StageOutError."""
    try:
        yield
    except OSError as e:
        raise StageOutError(f"{path}: {e.strerror or e}") from e


def extract_archive(stream: IO[bytes], destination: str) -> None:
    """Unpack an engine's tar archive of one container path (Docker's and Podman's archive
    endpoint: its first member is that path, under its base name) to ``destination``.

    A file becomes the file ``destination`` (or a file of that name in it, when
    ``destination`` is a directory, as ``cp`` and the process tracker's copy do), written
    whole or not at all; a directory's content goes into the directory ``destination``,
    created with its parents if missing and merged into if present. Members are safe by
    construction: no absolute or '..' names, nothing outside the asked-for path, symbolic links
    made as links and never followed (each folder below ``destination`` is opened with
    O_NOFOLLOW), hard links only to files of this archive, set-id bits dropped, no owners
    taken over. Device files and FIFOs are not made: they are named in the StageOutError raised
    once the rest is copied. Errors of ``stream`` (the engine) propagate as they are.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            _Extraction(destination).run(tar)
    except tarfile.TarError as e:
        raise StageOutError(f"the engine's archive cannot be read: {e}") from e


class _Extraction:
    """One archive unpacked to one destination (see extract_archive)."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.root: str | None = None
        self.root_fd: int | None = None
        self.files: set[tuple[str, ...]] = set()  # regular files made: hard links may name them
        self.dirs: list[tuple[tuple[str, ...], int, float]] = []  # made: mode and time at the end
        self.skipped: list[str] = []

    def run(self, tar: tarfile.TarFile) -> None:
        try:
            for member in tar:
                if self.root is None:
                    self.root = member.name.rstrip("/") or "/"
                    if not member.isdir():
                        self._single(tar, member)
                        continue
                    self._open_root()
                    continue
                if self.root_fd is None:
                    raise StageOutError(
                        f"the engine's archive holds {member.name!r} beside the file {self.root!r}")
                self._member(tar, member, self._parts(member.name))
            for parts, mode, mtime in reversed(self.dirs):
                fd = self._open_dir(parts)
                try:
                    with _on_host(self._shown(parts)):
                        os.fchmod(fd, (mode & 0o777) | 0o700)  # its owner may always clean up
                        os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)
        finally:
            if self.root_fd is not None:
                os.close(self.root_fd)
        if self.root is None:
            raise StageOutError("the engine's archive is empty")
        if self.skipped:
            raise StageOutError(
                f"not copied (device files or FIFOs): {', '.join(map(repr, self.skipped))}")

    # -- names ---------------------------------------------------------------------------------------
    def _parts(self, name: str) -> tuple[str, ...]:
        """A member's path below the root, checked: no '.', '..' or empty part, not outside."""
        assert self.root is not None
        name = name.rstrip("/")
        prefix = self.root.rstrip("/") + "/"
        if not name.startswith(prefix):
            raise StageOutError(f"the engine's archive member {name!r} is outside {self.root!r}")
        parts = tuple(name[len(prefix):].split("/"))
        if any(p in ("", ".", "..") for p in parts):
            raise StageOutError(f"the engine's archive member {name!r} is not a plain path")
        return parts

    def _shown(self, parts: Iterable[str]) -> str:
        return os.path.join(self.destination, *parts)

    # -- a single file (or link) -------------------------------------------------------------------------
    def _single(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """The archive of a file or link: written whole to a temporary name beside the
        destination, then renamed over it (a link or file in the way is replaced, never
        followed)."""
        target = self.destination
        if os.path.isdir(target):
            base = os.path.basename(member.name.rstrip("/"))
            if base in ("", ".", ".."):
                raise StageOutError(f"the engine's archive member {member.name!r} is not a file name")
            target = os.path.join(target, base)
        if not (member.isreg() or member.issym()):
            self.skipped.append(member.name)
            return
        parent = os.path.dirname(target) or "."
        with _on_host(parent):
            os.makedirs(parent, exist_ok=True)
        temporary = os.path.join(parent, f".{os.path.basename(target)}.pydrmaa2-{secrets.token_hex(6)}")
        try:
            if member.issym():
                with _on_host(target):
                    os.symlink(member.linkname, temporary)
            else:
                with _on_host(target):
                    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600)
                self._write(tar, member, fd, target)
            with _on_host(target):
                os.replace(temporary, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int, shown: str) -> None:
        """Copy a member's content into a file opened for it (and closes it); reads of the
        archive are outside _on_host, so an engine's error stays the engine's."""
        f = os.fdopen(fd, "wb")
        try:
            source = tar.extractfile(member)
            while source is not None and (chunk := source.read(_COPY_CHUNK)):
                with _on_host(shown):
                    f.write(chunk)
            with _on_host(shown):
                f.flush()
                os.fchmod(fd, member.mode & 0o777)  # no set-id or sticky bits from a container
                os.utime(fd, (member.mtime, member.mtime))
        finally:
            with contextlib.suppress(OSError):
                f.close()

    # -- a directory ------------------------------------------------------------------------------------
    def _open_root(self) -> None:
        """The destination directory (the user's own path: made with its parents, followed)."""
        with _on_host(self.destination):
            if os.path.exists(self.destination) and not os.path.isdir(self.destination):
                raise StageOutError(f"{self.destination}: exists and is not a directory")
            os.makedirs(self.destination, exist_ok=True)
            self.root_fd = os.open(self.destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _open_dir(self, parts: tuple[str, ...]) -> int:
        """A directory below the destination, opened one part at a time without following a
        link (a link in the way is an error, a missing part is made)."""
        assert self.root_fd is not None
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                with _on_host(self._shown(parts[:i + 1])):
                    try:
                        child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                        | os.O_CLOEXEC, dir_fd=fd)
                    except FileNotFoundError:
                        os.mkdir(part, 0o700, dir_fd=fd)
                        child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                        | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _clear(self, parent: int, name: str, shown: str) -> None:
        """Remove what is in the way of a new file or link (a directory is an error)."""
        with _on_host(shown):
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                raise StageOutError(f"{shown}: is a directory")
            os.unlink(name, dir_fd=parent)

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk()):
            self.skipped.append(member.name)
            return
        shown = self._shown(parts)
        parent = self._open_dir(parts[:-1])
        name = parts[-1]
        try:
            if member.isdir():
                with _on_host(shown):
                    try:
                        os.mkdir(name, 0o700, dir_fd=parent)
                        self.dirs.append((parts, member.mode, member.mtime))
                    except FileExistsError:
                        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                        if not stat.S_ISDIR(st.st_mode):
                            os.unlink(name, dir_fd=parent)
                            os.mkdir(name, 0o700, dir_fd=parent)
                            self.dirs.append((parts, member.mode, member.mtime))
            elif member.issym():
                self._clear(parent, name, shown)
                with _on_host(shown):
                    os.symlink(member.linkname, name, dir_fd=parent)
            elif member.islnk():
                self._link(member, parts, parent, shown)
            else:
                self._clear(parent, name, shown)
                with _on_host(shown):
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=parent)
                self._write(tar, member, fd, shown)
                self.files.add(parts)
        finally:
            os.close(parent)

    def _link(self, member: tarfile.TarInfo, parts: tuple[str, ...], parent: int,
              shown: str) -> None:
        """A hard link, to a regular file this archive made (else an error)."""
        target = self._parts(member.linkname)
        if target not in self.files:
            raise StageOutError(
                f"the engine's archive links {member.name!r} to {member.linkname!r}, which it "
                "did not hold before")
        source = self._open_dir(target[:-1])
        try:
            self._clear(parent, parts[-1], shown)
            with _on_host(shown):
                os.link(target[-1], parts[-1], src_dir_fd=source, dst_dir_fd=parent,
                        follow_symlinks=False)
        finally:
            os.close(source)
        self.files.add(parts)


# -- engine records -> DRMAA2 -----------------------------------------------------------------------


def container_state(status: str, exit_code: int | None = None, oom_killed: bool = False,
                    held: bool = False) -> JobState:
    """Seed 001's state mapping for one container (see CONTAINER_STATES)."""
    if status not in CONTAINER_STATES:
        return JobState.UNDETERMINED
    state = CONTAINER_STATES[status]
    if state is None:
        return JobState.DONE if exit_code == 0 and not oom_killed else JobState.FAILED
    if status == "created" and held:
        return JobState.QUEUED_HELD
    return state


def ended(data: Mapping[str, Any]) -> bool:
    """Whether an inspect record shows a container that has ended (exited or dead)."""
    return CONTAINER_STATES.get(data.get("State", {}).get("Status", ""), 0) is None


def inspect_state(data: Mapping[str, Any], held: bool = False) -> tuple[JobState, str]:
    """DRMAA2 state and the engine's status word (sub_state) from an inspect record."""
    st = data.get("State") or {}
    status = st.get("Status") or ""
    return container_state(status, st.get("ExitCode"), bool(st.get("OOMKilled")), held), status


_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?")


def parse_time(value: str | int | float | None) -> dt.datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds, or epoch seconds) as an aware datetime;
    Go's zero time ('0001-01-01T00:00:00Z') means unknown: None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value > 0 else None
    m = _TIME.match(value)
    if m is None or m.group(1).startswith("0001-"):
        return None
    frac = (m.group(2) or "")[:6].ljust(6, "0")
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}").astimezone(dt.timezone.utc)


def _signal_name(number: int) -> str | None:
    return signal_name(number) if 1 <= number <= 64 else None


def job_info(data: Mapping[str, Any], *, held: bool = False, terminated: bool = False,
             annotation: str | None = None, state: JobState | None = None,
             now: dt.datetime | None = None) -> JobInfo:
    """Seed 001's JobInfo mapping of one inspect record.

    ``terminated``: pydrmaa2 killed the container (so an exit of 128+N means signal N).
    ``state`` overrides the mapped state (e.g. a job ended before its container started).
    """
    st = data.get("State") or {}
    config = data.get("Config") or {}
    mapped, status = inspect_state(data, held)
    state = state or mapped
    done = ended(data)
    exit_code = st.get("ExitCode") if done else None
    oom = bool(st.get("OOMKilled"))
    started = parse_time(st.get("StartedAt"))
    finished = parse_time(st.get("FinishedAt")) if done else None
    if started and finished and started > finished:
        # Docker stamps StartedAt once its start call returns, FinishedAt at the process's exit:
        # a job briefer than that gap would seem to end before it began.
        started = finished
    sig = None
    if done and exit_code is not None and exit_code > 128 and (terminated or oom):
        sig = _signal_name(exit_code - 128)
    notes = [annotation] if annotation else []
    if oom:
        notes.append("out of memory: the container's processes were killed by the OOM killer")
    elif terminated and done:
        notes.append("terminated")
    if st.get("Error") and st.get("Error") not in notes:
        notes.append(str(st["Error"]))
    end = finished or (None if done else now or dt.datetime.now(dt.timezone.utc))
    labels = config.get("Labels") or {}
    cmd = config.get("Cmd") or []
    ext = {
        "container_id": str(data.get("Id", "")),
        "container_name": str(data.get("Name", "")).lstrip("/"),
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
        terminating_signal=sig,
        annotation="; ".join(notes) or None,
        state=state,
        sub_state=status,
        allocated_machines=[hostname] if hostname else [],
        submission_machine=labels.get(LABELS["submission_machine"]),
        job_owner=config.get("User") or "root",
        slots=1,
        wallclock_time=(end - started) if started and end and end >= started else None,
        submission_time=parse_time(data.get("Created")),
        dispatch_time=started,
        finish_time=finished,
        extensions=ext,
    )


def feed_stdin(attached: Any, path: str) -> None:
    """Copy a file into a container's attached stdin, then close it (the job sees EOF).

    ``attached`` is the engine's attach socket, bare or wrapped (docker-py's SocketIO)."""
    sock = getattr(attached, "_sock", attached)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:  # the job ended without reading all of it
        logging.getLogger("pydrmaa2.container").debug(
            "stdin of a container from %s cut short: %s", path, e)
    finally:
        with contextlib.suppress(OSError):
            attached.close()
