"""DRMAA2 enumerations: job states, capabilities, events, operating systems and CPUs."""

from __future__ import annotations

import enum

__all__ = ["JobState", "Capability", "Event", "OS", "CPU"]


class JobState(enum.Enum):
    """The DRMAA2 job states."""

    UNDETERMINED = "undetermined"
    QUEUED = "queued"
    QUEUED_HELD = "queued_held"
    RUNNING = "running"
    SUSPENDED = "suspended"
    REQUEUED = "requeued"
    REQUEUED_HELD = "requeued_held"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True for DONE and FAILED: the job will not change state again."""
        return self in (JobState.DONE, JobState.FAILED)

    @property
    def is_started(self) -> bool:
        """True once the job has been dispatched (running, suspended or ended)."""
        return self in (JobState.RUNNING, JobState.SUSPENDED, JobState.DONE, JobState.FAILED)


class Capability(enum.Enum):
    """Optional DRMAA2 features a tracker may support (``supports``)."""

    ADVANCE_RESERVATION = "advance_reservation"
    RESERVE_SLOTS = "reserve_slots"
    CALLBACK = "callback"
    BULK_JOBS_MAXPARALLEL = "bulk_jobs_maxparallel"
    JOB_ARRAYS = "job_arrays"
    JT_EMAIL = "jt_email"
    JT_STAGING = "jt_staging"
    JT_DEADLINE = "jt_deadline"
    JT_MAXSLOTS = "jt_maxslots"
    JT_ACCOUNTINGID = "jt_accountingid"
    RT_STARTNOW = "rt_startnow"
    RT_DURATION = "rt_duration"
    RT_MACHINEOS = "rt_machineos"
    RT_MACHINEARCH = "rt_machinearch"


class Event(enum.Enum):
    """Kinds of notification delivered to ``register_event_notification`` callbacks."""

    NEW_STATE = "new_state"
    MIGRATED = "migrated"
    ATTRIBUTE_CHANGE = "attribute_change"


class OS(enum.Enum):
    """Operating systems as DRMAA2 names them."""

    OTHER_OS = "other"
    AIX = "aix"
    BSD = "bsd"
    LINUX = "linux"
    HPUX = "hpux"
    IRIX = "irix"
    MACOS = "macos"
    SUNOS = "sunos"
    TRU64 = "tru64"
    UNIXWARE = "unixware"
    WIN = "win"
    WINNT = "winnt"


class CPU(enum.Enum):
    """Processor architectures as DRMAA2 names them."""

    OTHER_CPU = "other"
    ALPHA = "alpha"
    ARM = "arm"
    ARM64 = "arm64"
    CELL = "cell"
    PARISC = "parisc"
    PARISC64 = "parisc64"
    X86 = "x86"
    X64 = "x64"
    IA64 = "ia64"
    MIPS = "mips"
    MIPS64 = "mips64"
    PPC = "ppc"
    PPC64 = "ppc64"
    PPC64LE = "ppc64le"
    SPARC = "sparc"
    SPARC64 = "sparc64"

    @classmethod
    def from_machine(cls, machine: str) -> CPU:
        """Map ``platform.machine()`` / ``uname -m`` spellings to a CPU."""
        m = machine.lower()
        table = {
            "x86_64": cls.X64, "amd64": cls.X64, "i386": cls.X86, "i686": cls.X86,
            "aarch64": cls.ARM64, "arm64": cls.ARM64, "armv7l": cls.ARM, "ppc64le": cls.PPC64LE,
            "ppc64": cls.PPC64, "s390x": cls.OTHER_CPU, "mips64": cls.MIPS64, "ia64": cls.IA64,
        }
        return table.get(m, cls.OTHER_CPU)
