"""Small helpers every engine's tracker shares, written once: the owner, times, writable paths,
signals of an exit status, and this host as a DRMAA2 machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import getpass
import ipaddress
import os
import platform
import socket

import psutil

from ..errors import InvalidArgumentError
from ..info import MachineInfo, Version
from ..states import CPU, OS
from .base import signal_name

#: This host's name, as JobInfo.allocated_machines and MachineInfo.name give it.
HOSTNAME = socket.gethostname()
#: environ(): os.environ's raw data when last decoded, and its decoded copy.
_ENVIRON: tuple[dict[bytes, bytes], dict[str, str]] | None = None


@functools.cache
def owner() -> str:
    """The user running this program (JobInfo.job_owner of what it submits): read once, it
    does not change (the agent reads it for every ended job)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def timestamp(value: float | None) -> dt.datetime | None:
    """Epoch seconds as an aware UTC datetime (None stays None)."""
    return None if value is None else dt.datetime.fromtimestamp(value, dt.timezone.utc)


def check_readable(path: str | None, field: str) -> None:
    """Refuse a JobTemplate path this host cannot read, naming the field and the value."""
    if path is not None and not os.access(path, os.R_OK):
        why = "does not exist" if not os.path.exists(path) else "is not readable"
        raise InvalidArgumentError(f"JobTemplate.{field} {path!r} {why}")


def check_writable(path: str | None, field: str) -> None:
    """Refuse a JobTemplate path this host cannot write (an existing file not writable, a
    directory, or a missing or unwritable parent), naming the field and the value."""
    if path is None or path == "/dev/null":
        return
    if os.path.exists(path):
        ok, why = os.access(path, os.W_OK) and not os.path.isdir(path), "is not a writable file"
    else:
        parent = os.path.dirname(path) or "."
        ok = os.path.isdir(parent) and os.access(parent, os.W_OK)
        why = f"cannot be created (directory {parent!r} is missing or not writable)"
    if not ok:
        raise InvalidArgumentError(f"JobTemplate.{field} {path!r} {why}")


def exit_signal(exit_status: int | None) -> str | None:
    """The signal that ended a container's process: engines report death by signal N as the
    exit status 128 + N."""
    if exit_status is None or not 128 < exit_status < 128 + 65:
        return None
    return signal_name(exit_status - 128)


def local_machine() -> MachineInfo:
    """This host as a DRMAA2 machine: real sockets, cores, threads, memory, OS and architecture."""
    logical = psutil.cpu_count(logical=True) or 1
    physical = psutil.cpu_count(logical=False) or logical
    sockets = 1
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        sockets = max(1, len({line.split(":")[1].strip() for line in f
                              if line.startswith("physical id")}))
    vm = psutil.virtual_memory()
    release = platform.release().split(".")
    return MachineInfo(
        name=HOSTNAME, available=True, sockets=sockets,
        cores_per_socket=max(1, physical // sockets),
        threads_per_core=max(1, logical // physical),
        load=os.getloadavg()[0], phys_memory=vm.total,
        virt_memory=vm.total + psutil.swap_memory().total,
        machine_os=OS.LINUX if platform.system() == "Linux" else OS.OTHER_OS,
        machine_os_version=Version(release[0], release[1] if len(release) > 1 else "0"),
        machine_arch=CPU.from_machine(platform.machine()),
        extensions={"cpus": str(logical)})


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost`` included, names otherwise not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def environ() -> dict[str, str]:
    """``dict(os.environ)``, decoded again only when os.environ has changed since the last
    call (a comparison of its raw bytes): a job gets its submitter's environment, and decoding
    it each run_job cost a tenth of the call. The dict is shared: copy it to change it."""
    global _ENVIRON
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):  # not CPython's os.environ
        return dict(os.environ)
    cached = _ENVIRON
    if cached is None or cached[0] != data:
        raw = dict(data)
        cached = _ENVIRON = (raw, {os.fsdecode(k): os.fsdecode(v) for k, v in raw.items()})
    return cached[1]
