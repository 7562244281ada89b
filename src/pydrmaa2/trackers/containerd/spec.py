"""A JobTemplate as a containerd container: the template checked, the image's config read, and
the OCI runtime spec built from containerd's default Linux spec, the image config and the
template (as ``ctr run`` and ``oci.WithImageConfig`` build it)."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidArgumentError, UnsupportedAttributeError
from ...templates import JobTemplate
from ..common import HOSTNAME
from ..containers.spec import RESOURCE_LIMITS, ContainerSpec, container_spec, stage_in_read_only
from .rootfs import read_table

__all__ = ["EXTENSIONS", "Image", "normalize_image", "chain_id", "read_image", "check_template",
           "limits", "command", "bind_mounts", "runtime_spec"]

#: JobTemplate.extensions a containerd job may set.
EXTENSIONS = frozenset({"user", "network", "stage_in_mode", "ulimit"})

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
          "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# As containerd's oci.WithDefaultSpec (populateDefaultUnixSpec) for Linux.
CAPABILITIES = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
DEFAULT_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
#: What ``ctr run --net-host`` shares with a job on the host network.
HOST_NETWORK_FILES = ["/etc/hosts", "/etc/resolv.conf"]

#: The resource part of _container's ContainerSpec, as runc gets it from Docker: memory ->
#: memory.limit (and memory.swap, the same: no swap on top), memory reservation ->
#: memory.reservation, CPUs -> cpu.quota per CPU_PERIOD, pids -> pids.limit, ulimits ->
#: process.rlimits RLIMIT_<NAME> (-1: unlimited).
CPU_PERIOD = 100_000  # microseconds, Docker's
#: An rlimit of -1 ("unlimited") in the OCI spec: RLIM_INFINITY, a uint64.
RLIM_INFINITY = (1 << 64) - 1


@dataclass(frozen=True)
class Image:
    """What a job needs from an image: its name, the snapshot parent and its config."""

    name: str
    digest: str
    chain_id: str
    entrypoint: tuple[str, ...]
    env: tuple[str, ...]
    working_dir: str
    user: str


def normalize_image(name: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``, as containerd's tools normalise."""
    ref, _, digest = name.partition("@")
    first, slash, rest = ref.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        domain, path = "docker.io", ref
    else:
        domain, path = first, rest
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if ":" not in path.rsplit("/", 1)[-1] and not digest:
        path += ":latest"
    return f"{domain}/{path}" + (f"@{digest}" if digest else "")


def chain_id(diff_ids: Sequence[str]) -> str:
    """The identity of a layer stack: chainID(n) = sha256(chainID(n-1) + " " + diffID(n))."""
    chain = diff_ids[0]
    for diff in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff}".encode()).hexdigest()
    return chain


def read_image(name: str, digest: str, media_type: str,
               blob: Callable[[str, str], dict[str, Any]]) -> Image:
    """Image ``name`` whose manifest (or index) is blob ``digest``; ``blob(digest, what)`` reads
    a JSON blob of the content store."""
    doc = blob(digest, f"reading image {name!r}")
    if media_type in INDEX_TYPES or "manifests" in doc:
        arch = GOARCH.get(platform.machine().lower(), platform.machine().lower())
        wanted = [m for m in doc.get("manifests", [])
                  if m.get("platform", {}).get("os") == "linux"
                  and m.get("platform", {}).get("architecture") == arch]
        if not wanted:
            raise InvalidArgumentError(
                f"image {name!r} has no linux/{arch} manifest for this machine")
        doc = blob(wanted[0]["digest"], f"reading the linux/{arch} manifest of {name!r}")
    config = blob(doc["config"]["digest"], f"reading the config of image {name!r}")
    diff_ids = config.get("rootfs", {}).get("diff_ids") or []
    if not diff_ids:
        raise InvalidArgumentError(f"image {name!r} has no layers")
    c = config.get("config") or {}
    return Image(name=name, digest=digest, chain_id=chain_id(diff_ids),
                 entrypoint=tuple(c.get("Entrypoint") or ()),
                 env=tuple(c.get("Env") or ()), working_dir=c.get("WorkingDir") or "/",
                 user=c.get("User") or "")


def check_template(template: JobTemplate, namespace: str) -> None:
    """Refuse what cannot become a container: no image or command, unknown extensions, a
    relative working directory, limits out of range."""
    if not template.job_category:
        raise InvalidArgumentError(
            "JobTemplate.job_category is not set: it names the image to run (an image of "
            f"containerd namespace {namespace!r})")
    if not template.remote_command and not template.args:
        raise InvalidArgumentError(
            "JobTemplate.remote_command (and args) are not set: nothing to run")
    unknown = sorted(set(template.extensions) - EXTENSIONS)
    if unknown:
        raise UnsupportedAttributeError(
            f"JobTemplate.extensions {unknown!r} are not known to the containerd tracker "
            f"(known: {', '.join(sorted(EXTENSIONS))})")
    network = template.extensions.get("network", "host")
    if network not in ("host", "none"):
        raise InvalidArgumentError(
            f"JobTemplate.extensions['network'] {network!r} must be 'host' or 'none'")
    wd = template.working_directory
    if wd and not wd.startswith("/") and "$" not in wd:
        raise InvalidArgumentError(
            f"JobTemplate.working_directory {wd!r} must be an absolute path in the container")
    limits(template)


def limits(template: JobTemplate) -> ContainerSpec:
    """resource_limits, min_phys_memory and the ulimit extension as the one container mapping
    reads them (_container.container_spec: the keys, values and checks of Docker and Podman),
    then checked against this machine. Unknown keys: UnsupportedAttributeError; bad values:
    InvalidArgumentError naming the field and the value."""
    ulimit = {"ulimit": template.extensions["ulimit"]} if "ulimit" in template.extensions else {}
    # Only the resource fields: the rest of the template means other things on containerd.
    spec = container_spec(JobTemplate(remote_command="-", job_category="-",
                                      min_phys_memory=template.min_phys_memory,
                                      resource_limits=dict(template.resource_limits),
                                      extensions=ulimit), engine="containerd")
    if spec.nano_cpus is not None:
        key, value = [(k, v) for k, v in template.resource_limits.items()
                      if RESOURCE_LIMITS.get(k.lower()) == "cpus"][-1]  # the one that counted
        cpus = os.cpu_count() or 1
        # Docker's range: the kernel takes a quota of at least 1 ms per 100 ms period.
        if not 10_000_000 <= spec.nano_cpus <= cpus * 1_000_000_000:
            raise InvalidArgumentError(
                f"JobTemplate.resource_limits {key} {value!r}: CPUs range from 0.01 to {cpus} "
                f"(the CPUs of this machine)")
    if spec.memory_reservation is not None:
        machine = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if spec.memory_reservation > machine:
            raise InvalidArgumentError(
                f"JobTemplate.min_phys_memory {template.min_phys_memory} KiB is more than the "
                f"{machine // 1024} KiB of memory this machine has")
    return spec


def command(template: JobTemplate, image: Image) -> list[str]:
    """The job's argv, as ``nerdctl`` and Docker make it: remote_command and args replace the
    image's Cmd and follow its Entrypoint. args without remote_command are the whole command
    (as ``ctr run IMAGE ID CMD...``, the Entrypoint unused)."""
    if template.remote_command:
        return [*image.entrypoint, template.remote_command, *template.args]
    return list(template.args)


def bind_mounts(template: JobTemplate) -> list[dict[str, Any]]:
    """stage_in_files as the spec's mounts: a writable bind mount per file, as on Docker and
    Podman (read-only with extensions stage_in_mode='ro')."""
    mode = "ro" if stage_in_read_only(template.extensions) else "rw"
    binds = []
    for src, dst in template.stage_in_files.items():
        host = os.path.abspath(src)
        if not os.path.exists(host):
            raise InvalidArgumentError(f"JobTemplate.stage_in_files source {src!r} does not exist")
        if not dst.startswith("/"):
            dst = os.path.join(template.working_directory or "/", dst)
        binds.append({"destination": dst, "type": "bind", "source": host,
                      "options": ["rbind", mode]})
    return binds


def runtime_spec(cid: str, job_id: str, template: JobTemplate, task_index: int | None,
                 image: Image, argv: list[str], binds: list[dict[str, Any]], rootfs: Sequence[Any],
                 namespace: str) -> dict[str, Any]:
    """The OCI runtime spec of container ``cid``: containerd's default Linux spec, the image
    config (its Env, WorkingDir and User), the template. Jobs share the host's network, as
    ``ctr run --net-host`` (extension network=none isolates one); extension ``user`` overrides
    the image's user."""
    env: dict[str, str] = {}
    for item in (DEFAULT_PATH, *image.env):
        key, _, value = item.partition("=")
        env[key] = value
    env.update(template.job_environment)
    env["JOB_ID"] = job_id
    if task_index is not None:
        env["TASK_ID"] = str(task_index)
    uid, gid, groups = resolve_user(template.extensions.get("user") or image.user, rootfs,
                                    image.name)
    host_network = template.extensions.get("network", "host") == "host"
    mounts = [dict(m) for m in DEFAULT_MOUNTS]
    if host_network:
        mounts += [{"destination": p, "type": "bind", "source": p, "options": ["rbind", "ro"]}
                   for p in HOST_NETWORK_FILES if os.path.exists(p)]
    mounts += binds
    namespaces = ["pid", "ipc", "uts", "mount"] + ([] if host_network else ["network"])
    resources = limits(template)
    rlimits = {"RLIMIT_NOFILE": {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}}
    for u in resources.ulimits:
        rlimits[f"RLIMIT_{u.name.upper()}"] = {
            "type": f"RLIMIT_{u.name.upper()}", "hard": _rlimit(u.hard), "soft": _rlimit(u.soft)}
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": uid, "gid": gid, **({"additionalGids": groups} if groups else {})},
            "args": argv,
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": template.working_directory or image.working_dir or "/",
            "capabilities": {k: list(CAPABILITIES)
                             for k in ("bounding", "effective", "permitted")},
            "rlimits": list(rlimits.values()),
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs"},
        "hostname": (template.candidate_machines or [HOSTNAME])[0],
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in namespaces],
            "cgroupsPath": f"/{namespace}/{cid}",
            "resources": {"devices": [{"allow": False, "access": "rwm"}],
                          **cgroup_resources(resources)},
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }


def cgroup_resources(spec: ContainerSpec) -> dict[str, Any]:
    """The OCI spec's linux.resources (but devices) for a job's limits."""
    out: dict[str, dict[str, Any]] = {}
    memory: dict[str, int] = {}
    if spec.memory is not None:
        memory["limit"] = spec.memory
        if _swap_accounting():
            memory["swap"] = spec.memory  # memory plus swap: no swap on top of the limit
    if spec.memory_reservation is not None:
        memory["reservation"] = spec.memory_reservation
    if memory:
        out["memory"] = memory
    if spec.nano_cpus is not None:
        out["cpu"] = {"quota": spec.nano_cpus * CPU_PERIOD // 1_000_000_000, "period": CPU_PERIOD}
    if spec.pids_limit is not None:
        out["pids"] = {"limit": spec.pids_limit}
    return out


def _swap_accounting() -> bool:
    """Whether this machine's cgroups limit swap (runc fails on a swap limit it cannot set;
    Docker leaves the limit out then, as this does)."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers") or os.path.exists(
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def _rlimit(value: int) -> int:
    return RLIM_INFINITY if value == -1 else value


def resolve_user(user: str, rootfs: Sequence[Any], image: str) -> tuple[int, int, list[int]]:
    """``uid[:gid]`` or ``name[:group]`` -> (uid, gid, additional gids), names looked up in the
    image's /etc/passwd and /etc/group (read from the snapshot's layers, as containerd does)."""
    if not user:
        return 0, 0, []
    name, _, group = user.partition(":")
    uid: int | None = None
    gid: int | None = None
    login = None
    for fields in read_table(rootfs, "etc/passwd"):
        if len(fields) > 3 and (fields[0] == name or fields[2] == name):
            login, uid, gid = fields[0], int(fields[2]), int(fields[3])
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgumentError(f"user {name!r} is not in /etc/passwd of image {image!r}")
        uid = int(name)
    if group:
        gid = None
        if group.isdigit():
            gid = int(group)
        else:
            for fields in read_table(rootfs, "etc/group"):
                if len(fields) > 2 and fields[0] == group:
                    gid = int(fields[2])
            if gid is None:
                raise InvalidArgumentError(f"group {group!r} is not in /etc/group of image {image!r}")
    groups: list[int] = []
    if login and not group:
        groups = [int(f[2]) for f in read_table(rootfs, "etc/group")
                  if len(f) > 3 and login in f[3].split(",") and f[2].isdigit()]
    return uid, gid or 0, groups
