"""uge-drmaa2's enumerations and constants, with its names and values (``drmaa2.drmaa2_constants``).

IntEnums as in uge-drmaa2 (ResourceLimit is an Enum of strings); the members that pydrmaa2 also
has carry the same names as its enums, which is how values cross the boundary.
"""

from __future__ import annotations

import datetime as dt
import enum

__all__ = ["Bool", "Time", "Capability", "Cpu", "Event", "JobState", "Os", "ResourceLimit",
           "ListType", "StatusCode", "UNSET_BOOL", "UNSET_ENUM", "UNSET_NUM", "UNSET_PRIORITY",
           "UNSET_TIME", "POSIX_EPOCH", "PY_DICT_TYPE", "PY_STRING_TYPE", "PY_BYTES_TYPE"]

#: The values that stand for "not set" in the C structures of DRMAA2 (read back as None here).
UNSET_BOOL = 0
UNSET_ENUM = -1
UNSET_NUM = -1
UNSET_PRIORITY = -99999
UNSET_TIME = -3

#: uge-drmaa2's epoch: times are seconds since it, read back as naive UTC datetimes.
POSIX_EPOCH = dt.datetime(1970, 1, 1)

#: The Python types uge-drmaa2 compares values with (its Python 2 heritage).
PY_DICT_TYPE = dict
PY_STRING_TYPE = str
PY_BYTES_TYPE = bytes


class Bool(enum.IntEnum):
    """DRMAA2 booleans; template fields read back as their names, 'TRUE' or 'FALSE'."""

    FALSE = 0
    TRUE = 1


class Time(enum.IntEnum):
    """Special time values: wait timeouts and time fields (seconds otherwise)."""

    ZERO_TIME = 0
    INFINITE_TIME = -1
    NOW = -2
    UNSET_TIME = -3


class Capability(enum.IntEnum):
    """Optional DRMAA2 features (``drmaa_supports``)."""

    UNSET_CAPABILITY = -1
    ADVANCE_RESERVATION = 0
    RESERVE_SLOTS = 1
    CALLBACK = 2
    BULK_JOBS_MAXPARALLEL = 3
    JT_EMAIL = 4
    JT_STAGING = 5
    JT_DEADLINE = 6
    JT_MAXSLOTS = 7
    JT_ACCOUNTINGID = 8
    RT_STARTNOW = 9
    RT_DURATION = 10
    RT_MACHINEOS = 11
    RT_MACHINEARCH = 12


class Cpu(enum.IntEnum):
    """Processor architectures."""

    UNSET_CPU = -1
    OTHER_CPU = 0
    ALPHA = 1
    ARM = 2
    ARM64 = 3
    CELL = 4
    PARISC = 5
    PARISC64 = 6
    X86 = 7
    X64 = 8
    IA64 = 9
    MIPS = 10
    MIPS64 = 11
    PPC = 12
    PPC64 = 13
    SPARC = 14
    SPARC64 = 15
    PPC64LE = 16


class Event(enum.IntEnum):
    """Kinds of event notification."""

    UNSET_EVENT = -1
    NEW_STATE = 0
    MIGRATED = 1
    ATTRIBUTE_CHANGE = 2


class JobState(enum.IntEnum):
    """Job states; ``Job.get_state()`` returns members, ``JobInfo.job_state`` their names."""

    UNSET_JSTATE = -1
    UNDETERMINED = 0
    QUEUED = 1
    QUEUED_HELD = 2
    RUNNING = 3
    SUSPENDED = 4
    REQUEUED = 5
    REQUEUED_HELD = 6
    DONE = 7
    FAILED = 8
    RUNNING_HELD = 9


class Os(enum.IntEnum):
    """Operating systems."""

    UNSET_OS = -1
    OTHER_OS = 0
    AIX = 1
    BSD = 2
    LINUX = 3
    HPUX = 4
    IRIX = 5
    MACOS = 6
    SUNOS = 7
    TRU64 = 8
    UNIXWARE = 9
    WIN = 10
    WINNT = 11


class ResourceLimit(enum.Enum):
    """Names of ``JobTemplate.resource_limits`` keys (a plain dict of strings, as in uge-drmaa2)."""

    CORE_FILE_SIZE = "CORE_FILE_SIZE"
    CPU_TIME = "CPU_TIME"
    DATA_SIZE = "DATA_SIZE"
    FILE_SIZE = "FILE_SIZE"
    OPEN_FILES = "OPEN_FILES"
    STACK_SIZE = "STACK_SIZE"
    VIRTUAL_MEMORY = "VIRTUAL_MEMORY"
    WALLCLOCK_TIME = "WALLCLOCK_TIME"


class ListType(enum.IntEnum):
    """DRMAA2 list kinds (kept for completeness; Python lists need no type tag)."""

    UNSET_LISTTYPE = -1
    STRINGLIST = 0
    JOBLIST = 1
    QUEUEINFOLIST = 2
    MACHINEINFOLIST = 3
    SLOTINFOLIST = 4
    RESERVATIONLIST = 5


class StatusCode(enum.IntEnum):
    """DRMAA2 error codes; each exception class carries one as ``error_code``."""

    UNSET_ERROR = -1
    SUCCESS = 0
    DENIED_BY_DRMS = 1
    DRM_COMMUNICATION = 2
    TRY_LATER = 3
    SESSION_MANAGEMENT = 4
    TIMEOUT = 5
    INTERNAL = 6
    INVALID_ARGUMENT = 7
    INVALID_SESSION = 8
    INVALID_STATE = 9
    OUT_OF_RESOURCE = 10
    UNSUPPORTED_ATTRIBUTE = 11
    UNSUPPORTED_OPERATION = 12
    IMPLEMENTATION_SPECIFIC = 13
    AUTHORIZATION = 14
    LASTERROR = 15
