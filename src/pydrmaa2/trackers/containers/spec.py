"""The one JobTemplate -> container mapping of the Docker and Podman trackers (containerd reads
its resource limits too): the extensions and resource limits a container job may set, as tables,
and ``container_spec``, which validates a template into an engine-neutral ``ContainerSpec``.
The extensions are drmaa2os's Docker tracker's (its README); nothing here talks to an engine.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ...errors import InvalidArgumentError, UnsupportedAttributeError
from ...templates import JobTemplate
from .labels import LABELS
from .staging import stage_out_pairs

__all__ = [
    "EXTENSIONS", "RESOURCE_LIMITS", "ULIMIT_NAMES", "BindMount", "ContainerSpec", "PortMapping",
    "RestartPolicy", "Ulimit", "container_spec", "parse_bool", "parse_gpus", "parse_ports",
    "parse_size", "parse_ulimits", "stage_in_read_only",
]

# -- the tables ---------------------------------------------------------------------------------------

#: JobTemplate.extensions a container job may set, and what each becomes.
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
    "stage_in_mode": "how stage_in_files are mounted: 'rw' (the default, a writable bind mount) or 'ro'",
}


def stage_in_read_only(extensions: Mapping[str, str]) -> bool:
    """Whether the template asks for read-only stage-in mounts: ``extensions["stage_in_mode"]``
    is 'rw' (the default: a writable bind mount, as drmaa2os defines stage_in_files) or 'ro'.
    One meaning on Docker, Podman and containerd."""
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


def container_spec(template: JobTemplate, *, engine: str, job_id: str | None = None,
                   task_index: int | None = None, labels: Mapping[str, str] | None = None,
                   ) -> ContainerSpec:
    """Validate ``template`` for a container engine and map it (drmaa2os's JobTemplate table).

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

